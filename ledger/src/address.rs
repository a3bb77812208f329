//! Addresses: the first 20 bytes of SHA-256 of an ed25519 public key, shown in MultiChain's
//! base58 form with chain-derived version bytes and checksum, so that an address from one chain
//! is rejected by another.

use crate::hash::sha256;
use bincode::{Decode, Encode};
use std::fmt;

/// A 20-byte key hash. Everything that sorts addresses sorts these raw bytes.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Encode, Decode)]
pub struct Address(pub [u8; 20]);

impl Address {
    /// The address of an ed25519 public key.
    pub fn from_pubkey(pubkey: &[u8; 32]) -> Address {
        let digest = sha256(pubkey);
        let mut out = [0u8; 20];
        out.copy_from_slice(&digest[..20]);
        Address(out)
    }
}

impl fmt::Debug for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Address({})", hex::encode(self.0))
    }
}

/// The chain-specific part of the textual form: MultiChain's `address-pubkeyhash-version` and
/// `address-checksum-value`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AddressFormat {
    pub version: [u8; 4],
    pub checksum_value: [u8; 4],
}

/// Why a string is not an address of this chain.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AddressError {
    #[error("not base58")]
    NotBase58,
    #[error("wrong length")]
    WrongLength,
    #[error("bad checksum")]
    BadChecksum,
    #[error("address of another chain (version bytes differ)")]
    WrongVersion,
}

const VERSION_POSITIONS: [usize; 4] = [0, 6, 12, 18];
const PAYLOAD_LEN: usize = 24;

impl AddressFormat {
    /// Encodes an address: base58 of the hash with the version bytes interleaved (one before each
    /// 5-byte chunk) followed by SHA256d's first 4 bytes XOR the checksum value.
    pub fn encode(&self, address: &Address) -> String {
        let payload = self.payload(address);
        let mut bytes = payload.to_vec();
        bytes.extend_from_slice(&self.checksum(&payload));
        bs58::encode(bytes).into_string()
    }

    /// Parses an address of this chain, rejecting anything else with a precise reason.
    pub fn parse(&self, text: &str) -> Result<Address, AddressError> {
        let bytes = bs58::decode(text)
            .into_vec()
            .map_err(|_| AddressError::NotBase58)?;
        if bytes.len() != PAYLOAD_LEN + 4 {
            return Err(AddressError::WrongLength);
        }
        let (payload, check) = bytes.split_at(PAYLOAD_LEN);
        if self.checksum(payload) != check {
            return Err(AddressError::BadChecksum);
        }
        let mut hash = [0u8; 20];
        let mut h = 0;
        for (i, byte) in payload.iter().enumerate() {
            if let Some(v) = VERSION_POSITIONS.iter().position(|&p| p == i) {
                if *byte != self.version[v] {
                    return Err(AddressError::WrongVersion);
                }
            } else {
                hash[h] = *byte;
                h += 1;
            }
        }
        Ok(Address(hash))
    }

    fn payload(&self, address: &Address) -> [u8; PAYLOAD_LEN] {
        let mut out = [0u8; PAYLOAD_LEN];
        let mut h = 0;
        for (i, slot) in out.iter_mut().enumerate() {
            if let Some(v) = VERSION_POSITIONS.iter().position(|&p| p == i) {
                *slot = self.version[v];
            } else {
                *slot = address.0[h];
                h += 1;
            }
        }
        out
    }

    fn checksum(&self, payload: &[u8]) -> [u8; 4] {
        let double = sha256(&sha256(payload));
        let mut out = [0u8; 4];
        for i in 0..4 {
            out[i] = double[i] ^ self.checksum_value[i];
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fmt_a() -> AddressFormat {
        AddressFormat {
            version: [0x00, 0x5b, 0x1f, 0x3c],
            checksum_value: [0x91, 0x22, 0x07, 0xee],
        }
    }

    #[test]
    fn round_trip_and_starts_with_one() {
        let a = Address::from_pubkey(&[7; 32]);
        let s = fmt_a().encode(&a);
        assert!(s.starts_with('1'), "{s}");
        assert_eq!(fmt_a().parse(&s), Ok(a));
    }

    #[test]
    fn rejects_bad_checksum_and_other_chains() {
        let a = Address::from_pubkey(&[7; 32]);
        let s = fmt_a().encode(&a);
        let mut other = fmt_a();
        other.checksum_value = [1, 2, 3, 4];
        assert_eq!(other.parse(&s), Err(AddressError::BadChecksum));
        let mut other_version = fmt_a();
        other_version.version = [0x00, 0x11, 0x1f, 0x3c];
        // Same checksum value but different version: the checksum still matches the payload,
        // the version bytes do not.
        assert_eq!(other_version.parse(&s), Err(AddressError::WrongVersion));
        // Flip one character.
        let mut chars: Vec<char> = s.chars().collect();
        let last = chars.len() - 1;
        chars[last] = if chars[last] == '2' { '3' } else { '2' };
        let flipped: String = chars.into_iter().collect();
        assert!(fmt_a().parse(&flipped).is_err());
        assert_eq!(fmt_a().parse("0OIl"), Err(AddressError::NotBase58));
        assert_eq!(fmt_a().parse("1111"), Err(AddressError::WrongLength));
        assert_eq!(fmt_a().parse(""), Err(AddressError::WrongLength));
    }
}
