//! ed25519 keys and signatures. A signature is valid exactly when `verify_strict` accepts it.

use crate::address::Address;
use bincode::{Decode, Encode};
use ed25519_dalek::{Signer, SigningKey, VerifyingKey};
use std::fmt;

/// An ed25519 public key as carried in inputs and block headers.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Encode, Decode)]
pub struct PublicKey(pub [u8; 32]);

/// An ed25519 signature.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Encode, Decode)]
pub struct Signature(pub [u8; 64]);

impl Default for Signature {
    fn default() -> Self {
        Signature([0; 64])
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({})", hex::encode(self.0))
    }
}

impl fmt::Debug for Signature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Signature({})", hex::encode(self.0))
    }
}

impl PublicKey {
    pub fn address(&self) -> Address {
        Address::from_pubkey(&self.0)
    }

    /// Strict ed25519 verification: rejects non-canonical encodings and small-order keys or R.
    pub fn verify(&self, message: &[u8], signature: &Signature) -> bool {
        let Ok(key) = VerifyingKey::from_bytes(&self.0) else {
            return false;
        };
        let sig = ed25519_dalek::Signature::from_bytes(&signature.0);
        key.verify_strict(message, &sig).is_ok()
    }
}

/// A private key. Its `Debug` output never shows the secret.
#[derive(Clone)]
pub struct SecretKey(SigningKey);

impl SecretKey {
    pub fn from_bytes(bytes: &[u8; 32]) -> SecretKey {
        SecretKey(SigningKey::from_bytes(bytes))
    }

    pub fn to_bytes(&self) -> [u8; 32] {
        self.0.to_bytes()
    }

    pub fn public(&self) -> PublicKey {
        PublicKey(self.0.verifying_key().to_bytes())
    }

    pub fn address(&self) -> Address {
        self.public().address()
    }

    pub fn sign(&self, message: &[u8]) -> Signature {
        Signature(self.0.sign(message).to_bytes())
    }
}

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretKey(for {:?})", self.public())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sign_verify_and_tamper() {
        let k = SecretKey::from_bytes(&[3; 32]);
        let sig = k.sign(b"hello");
        assert!(k.public().verify(b"hello", &sig));
        assert!(!k.public().verify(b"hellp", &sig));
        let mut bad = sig;
        bad.0[5] ^= 1;
        assert!(!k.public().verify(b"hello", &bad));
    }

    #[test]
    fn rejects_non_canonical_s() {
        // s + L is the classic malleation: same point equation, non-canonical scalar.
        const L: [u8; 32] = [
            0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9,
            0xde, 0x14, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
        ];
        let k = SecretKey::from_bytes(&[9; 32]);
        let sig = k.sign(b"m");
        let mut s = [0u8; 32];
        s.copy_from_slice(&sig.0[32..]);
        let mut carry = 0u16;
        for i in 0..32 {
            let v = s[i] as u16 + L[i] as u16 + carry;
            s[i] = v as u8;
            carry = v >> 8;
        }
        let mut mal = sig;
        mal.0[32..].copy_from_slice(&s);
        assert!(!k.public().verify(b"m", &mal));
    }

    #[test]
    fn rejects_small_order_key() {
        // The identity point: a weak key under which "signatures" verify for any message in
        // non-strict mode.
        let mut id = [0u8; 32];
        id[0] = 1;
        let sig = Signature([0; 64]);
        let mut forged = sig;
        forged.0[0] = 1; // R = identity, s = 0
        assert!(!PublicKey(id).verify(b"anything", &forged));
    }
}
