//! SHA-256 hashes with a domain tag per kind of object, and the transaction Merkle root.

use bincode::{Decode, Encode};
use sha2::{Digest, Sha256};
use std::fmt;

/// Domain tags: every hash and every signed message starts with one, so that bytes meant for one
/// purpose can never be taken for another.
pub mod tag {
    pub const TX: &[u8] = b"WATTLE/TX/1";
    pub const BLOCK: &[u8] = b"WATTLE/BLOCK/1";
    pub const SIGHASH: &[u8] = b"WATTLE/SIGHASH/1";
    pub const MERKLE_NODE: &[u8] = b"WATTLE/MERKLE/1";
    pub const PARAMS: &[u8] = b"WATTLE/PARAMS/1";
    pub const BLOCK_SIG: &[u8] = b"WATTLE/BLOCKSIG/1";
    /// The txid of the outputs that the order book creates while applying a transaction.
    pub const SETTLE: &[u8] = b"WATTLE/SETTLE/1";
}

/// A 32-byte SHA-256 hash, shown as lowercase hex.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Encode, Decode)]
pub struct Hash256(pub [u8; 32]);

impl Hash256 {
    pub const ZERO: Hash256 = Hash256([0; 32]);

    /// H(tag ‖ parts...).
    pub fn tagged(tag: &[u8], parts: &[&[u8]]) -> Hash256 {
        let mut h = Sha256::new();
        h.update(tag);
        for p in parts {
            h.update(p);
        }
        Hash256(h.finalize().into())
    }

    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// Parses 64 hex digits (either case).
    pub fn from_hex(text: &str) -> Result<Hash256, HashParseError> {
        let bytes = hex::decode(text).map_err(|_| HashParseError)?;
        let arr: [u8; 32] = bytes.try_into().map_err(|_| HashParseError)?;
        Ok(Hash256(arr))
    }

    pub fn is_zero(&self) -> bool {
        self.0 == [0; 32]
    }
}

/// The text is not 64 hex digits.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("expected 64 hexadecimal digits")]
pub struct HashParseError;

impl fmt::Display for Hash256 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for Hash256 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.to_hex())
    }
}

/// The plain SHA-256 of some bytes (used for addresses).
pub fn sha256(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

/// Binary Merkle root of the given leaves. An odd node at any level is paired with itself
/// (as Bitcoin does); a duplicated leaf list therefore cannot be hidden because transaction ids in
/// a block must be unique (a separate rule). The empty list has the zero root.
pub fn merkle_root(leaves: &[Hash256]) -> Hash256 {
    if leaves.is_empty() {
        return Hash256::ZERO;
    }
    let mut level: Vec<Hash256> = leaves.to_vec();
    while level.len() > 1 {
        level = level
            .chunks(2)
            .map(|pair| {
                let right = pair.get(1).unwrap_or(&pair[0]);
                Hash256::tagged(tag::MERKLE_NODE, &[&pair[0].0, &right.0])
            })
            .collect();
    }
    level[0]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trip_and_errors() {
        let h = Hash256::tagged(tag::TX, &[b"x"]);
        assert_eq!(Hash256::from_hex(&h.to_hex()), Ok(h));
        assert_eq!(Hash256::from_hex(&h.to_hex().to_uppercase()), Ok(h));
        assert!(Hash256::from_hex("abc").is_err());
        assert!(Hash256::from_hex(&"g".repeat(64)).is_err());
    }

    #[test]
    fn domain_tags_separate_hashes() {
        assert_ne!(
            Hash256::tagged(tag::TX, &[b"x"]),
            Hash256::tagged(tag::BLOCK, &[b"x"])
        );
    }

    #[test]
    fn merkle_root_shapes() {
        let a = Hash256::tagged(tag::TX, &[b"a"]);
        let b = Hash256::tagged(tag::TX, &[b"b"]);
        let c = Hash256::tagged(tag::TX, &[b"c"]);
        assert_eq!(merkle_root(&[]), Hash256::ZERO);
        assert_eq!(merkle_root(&[a]), a);
        let ab = Hash256::tagged(tag::MERKLE_NODE, &[&a.0, &b.0]);
        assert_eq!(merkle_root(&[a, b]), ab);
        let cc = Hash256::tagged(tag::MERKLE_NODE, &[&c.0, &c.0]);
        assert_eq!(
            merkle_root(&[a, b, c]),
            Hash256::tagged(tag::MERKLE_NODE, &[&ab.0, &cc.0])
        );
        assert_ne!(merkle_root(&[a, b]), merkle_root(&[b, a]));
    }
}
