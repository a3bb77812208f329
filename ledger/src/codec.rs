//! The one canonical encoding of every ledger object.
//!
//! bincode 2 with a single fixed configuration (little-endian, variable-length integers).
//! Decoding is strict: it runs under a size limit, rejects trailing bytes, and rejects any input
//! whose re-encoding differs from it (bincode accepts non-minimal integers), so that every object
//! has exactly one byte string and therefore exactly one hash.

use bincode::config::{Configuration, LittleEndian, Varint};
use bincode::{Decode, Encode};

/// The largest object the decoder accepts (a block at the maximum block size plus slack).
pub const MAX_DECODE_BYTES: usize = 64 * 1024 * 1024;

type Config = Configuration<LittleEndian, Varint, bincode::config::Limit<MAX_DECODE_BYTES>>;

const CONFIG: Config = bincode::config::standard()
    .with_little_endian()
    .with_variable_int_encoding()
    .with_limit::<MAX_DECODE_BYTES>();

/// Why bytes could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("malformed encoding: {0}")]
    Malformed(String),
    #[error("{0} trailing bytes after the object")]
    TrailingBytes(usize),
    #[error("non-canonical encoding")]
    NonCanonical,
    #[error("object of {size} bytes exceeds the limit of {limit}")]
    TooLarge { size: usize, limit: usize },
}

/// Encodes a value canonically.
pub fn encode<T: Encode>(value: &T) -> Vec<u8> {
    // Encoding into a Vec cannot fail for our types: they contain no maps with failing keys and
    // the only error source is the size limit, which no in-memory object we build can reach.
    bincode::encode_to_vec(value, CONFIG).unwrap_or_default()
}

/// The length of a value's canonical encoding.
pub fn encoded_len<T: Encode>(value: &T) -> usize {
    let mut writer = bincode::enc::write::SizeWriter::default();
    match bincode::encode_into_writer(value, &mut writer, CONFIG) {
        Ok(()) => writer.bytes_written,
        Err(_) => 0,
    }
}

/// Decodes a value, accepting only its canonical encoding and at most `limit` bytes.
pub fn decode_with_limit<T: Decode<()> + Encode>(
    bytes: &[u8],
    limit: usize,
) -> Result<T, DecodeError> {
    if bytes.len() > limit {
        return Err(DecodeError::TooLarge {
            size: bytes.len(),
            limit,
        });
    }
    let (value, used): (T, usize) = bincode::decode_from_slice(bytes, CONFIG)
        .map_err(|e| DecodeError::Malformed(e.to_string()))?;
    if used != bytes.len() {
        return Err(DecodeError::TrailingBytes(bytes.len() - used));
    }
    if encode(&value) != bytes {
        return Err(DecodeError::NonCanonical);
    }
    Ok(value)
}

/// Decodes a value, accepting only its canonical encoding.
pub fn decode<T: Decode<()> + Encode>(bytes: &[u8]) -> Result<T, DecodeError> {
    decode_with_limit(bytes, MAX_DECODE_BYTES)
}

/// Decodes a value from a hex string (as sent over JSON-RPC).
pub fn decode_hex<T: Decode<()> + Encode>(text: &str) -> Result<T, DecodeError> {
    let bytes =
        hex::decode(text.trim()).map_err(|e| DecodeError::Malformed(format!("bad hex: {e}")))?;
    decode(&bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_trailing_bytes() {
        let mut bytes = encode(&(7u32, 9u64));
        bytes.push(0);
        assert_eq!(
            decode::<(u32, u64)>(&bytes),
            Err(DecodeError::TrailingBytes(1))
        );
    }

    #[test]
    fn rejects_non_minimal_integers() {
        // 5 encoded as a u16 varint (tag 251 + 2 bytes) instead of the single byte 5.
        let bytes = [251u8, 5, 0];
        assert_eq!(decode::<u32>(&bytes), Err(DecodeError::NonCanonical));
        assert_eq!(decode::<u32>(&[5]), Ok(5));
    }

    #[test]
    fn rejects_oversize_and_garbage() {
        assert!(matches!(
            decode_with_limit::<Vec<u8>>(&[3, 1, 2, 3], 2),
            Err(DecodeError::TooLarge { .. })
        ));
        assert!(matches!(
            decode::<Vec<u8>>(&[200]),
            Err(DecodeError::Malformed(_))
        ));
        assert!(matches!(
            decode::<bool>(&[2]),
            Err(DecodeError::Malformed(_))
        ));
        assert!(matches!(
            decode_hex::<u32>("zz"),
            Err(DecodeError::Malformed(_))
        ));
    }

    #[test]
    fn encoded_len_matches_encoding() {
        let v = (vec![1u8; 300], String::from("energy"), 1u64 << 40);
        assert_eq!(encoded_len(&v), encode(&v).len());
    }
}
