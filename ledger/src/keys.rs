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
        let Some(key) = decompressed(&self.0) else {
            return false;
        };
        let sig = ed25519_dalek::Signature::from_bytes(&signature.0);
        key.verify_strict(message, &sig).is_ok()
    }
}

/// Decompressed public keys, so that a key that signs again (an address spending several coins,
/// a miner's blocks) is not decompressed again: decompression is a field exponentiation, about a
/// sixth of a verification. Decompression is a pure function of the 32 bytes, so the cache
/// cannot change a verdict. Sharded by the key's first byte; a full shard is emptied.
mod key_cache {
    use ed25519_dalek::VerifyingKey;
    use std::collections::HashMap;
    use std::sync::{Mutex, OnceLock};

    const SHARDS: usize = 16;
    /// Keys per shard (each about 200 bytes): 16 x 4,096 keys, about 13 MB at most.
    /// (A handful in unit tests, so that they empty shards.)
    const SHARD_KEYS: usize = if cfg!(test) { 8 } else { 4_096 };

    type Shard = Mutex<HashMap<[u8; 32], VerifyingKey>>;

    fn shards() -> &'static [Shard; SHARDS] {
        static CACHE: OnceLock<[Shard; SHARDS]> = OnceLock::new();
        CACHE.get_or_init(|| std::array::from_fn(|_| Mutex::new(HashMap::new())))
    }

    pub(super) fn get(bytes: &[u8; 32]) -> Option<VerifyingKey> {
        let shard = &shards()[bytes[0] as usize % SHARDS];
        if let Some(key) = shard.lock().ok()?.get(bytes) {
            return Some(*key);
        }
        // Not found (or not decodable: such keys are not cached, and fail again quickly).
        let key = VerifyingKey::from_bytes(bytes).ok()?;
        if let Ok(mut map) = shard.lock() {
            if map.len() >= SHARD_KEYS {
                map.clear();
            }
            map.insert(*bytes, key);
        }
        Some(key)
    }
}

/// The decompressed key for `bytes`, if they encode a point (see `key_cache`).
fn decompressed(bytes: &[u8; 32]) -> Option<VerifyingKey> {
    key_cache::get(bytes)
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

    #[test]
    fn cached_keys_give_the_same_verdicts_as_fresh_ones() {
        // More keys than the (test-sized) cache holds, each verified three times: the first
        // check decompresses, the later ones may come from the cache or after a shard was
        // emptied; every verdict must match ed25519-dalek's own verify_strict.
        let keys: Vec<SecretKey> = (0..200u8)
            .map(|i| SecretKey::from_bytes(&[i; 32]))
            .collect();
        for round in 0..3 {
            for (i, k) in keys.iter().enumerate() {
                let msg = [i as u8, round];
                let sig = k.sign(&msg);
                let mut bad = sig;
                bad.0[40] ^= 1;
                let dalek = VerifyingKey::from_bytes(&k.public().0).unwrap();
                for s in [sig, bad] {
                    let want = dalek
                        .verify_strict(&msg, &ed25519_dalek::Signature::from_bytes(&s.0))
                        .is_ok();
                    assert_eq!(k.public().verify(&msg, &s), want);
                }
                assert!(k.public().verify(&msg, &sig));
            }
        }
        // A weak key stays refused when it comes from the cache.
        let mut id = [0u8; 32];
        id[0] = 1;
        let mut forged = Signature([0; 64]);
        forged.0[0] = 1;
        for _ in 0..3 {
            assert!(!PublicKey(id).verify(b"anything", &forged));
        }
        // Bytes that are not a point are refused every time.
        let not_a_point = (2..=255u8)
            .map(|y| {
                let mut b = [0u8; 32];
                b[0] = y;
                PublicKey(b)
            })
            .find(|k| VerifyingKey::from_bytes(&k.0).is_err())
            .expect("some small y is not on the curve");
        for _ in 0..2 {
            assert!(!not_a_point.verify(b"m", &forged));
        }
    }
}
