//! The sync protocol `/wattle/sync/1`: one CBOR request, one CBOR response per stream.
//!
//! Byte payloads are CBOR byte strings (serde's default would write a `Vec<u8>` as an array of
//! integers, nearly doubling a block). Requests are tiny, so they get a small size limit; the
//! response limit is [`super::NetworkConfig::max_response_size`]. A payload over the limit, or
//! one that does not decode, fails that one stream (an `InboundFailure`), never the Swarm.

use libp2p::StreamProtocol;
use libp2p::request_response::{self, ProtocolSupport};
use serde::{Deserialize, Serialize};

/// Protocol name of the sync request-response protocol.
pub const SYNC_PROTOCOL: &str = "/wattle/sync/1";

/// Largest encoded request accepted.
pub(crate) const MAX_REQUEST_SIZE: u64 = 4 * 1024;

/// A sync request.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Request {
    /// Chain parameters and the genesis block. The only request unpermitted peers may make.
    GetParams,
    /// Height and hash of the tip.
    GetStatus,
    /// Up to `count` consecutive blocks starting at `from_height`.
    GetBlocks { from_height: u32, count: u32 },
}

/// A sync response.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Response {
    Params {
        #[serde(with = "bytes")]
        params: Vec<u8>,
        #[serde(with = "bytes")]
        genesis: Vec<u8>,
    },
    Status {
        height: u32,
        tip: [u8; 32],
    },
    Blocks(#[serde(with = "bytes_list")] Vec<Vec<u8>>),
    /// The request is not allowed (e.g. the peer lacks `connect`); the reason is for logs.
    Denied(String),
}

pub(crate) type SyncBehaviour = request_response::cbor::Behaviour<Request, Response>;

/// The sync behaviour with our size limits and timeout.
pub(crate) fn sync_behaviour(
    max_response_size: usize,
    timeout: std::time::Duration,
) -> SyncBehaviour {
    let codec = request_response::cbor::codec::Codec::default()
        .set_request_size_maximum(MAX_REQUEST_SIZE)
        .set_response_size_maximum(max_response_size as u64);
    request_response::Behaviour::with_codec(
        codec,
        [(StreamProtocol::new(SYNC_PROTOCOL), ProtocolSupport::Full)],
        request_response::Config::default().with_request_timeout(timeout),
    )
}

/// `Vec<u8>` as a CBOR byte string.
mod bytes {
    use serde::{Deserializer, Serializer, de};
    use std::fmt;

    pub fn serialize<S: Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(v)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        d.deserialize_byte_buf(BytesVisitor)
    }

    pub(super) struct BytesVisitor;

    impl<'de> de::Visitor<'de> for BytesVisitor {
        type Value = Vec<u8>;

        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a byte string")
        }

        fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<Vec<u8>, E> {
            Ok(v.to_vec())
        }

        fn visit_byte_buf<E: de::Error>(self, v: Vec<u8>) -> Result<Vec<u8>, E> {
            Ok(v)
        }
    }
}

/// `Vec<Vec<u8>>` as a CBOR array of byte strings.
mod bytes_list {
    use serde::de::{self, SeqAccess};
    use serde::ser::SerializeSeq;
    use serde::{Deserialize, Deserializer, Serialize, Serializer};
    use std::fmt;

    struct Item<'a>(&'a [u8]);

    impl Serialize for Item<'_> {
        fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            s.serialize_bytes(self.0)
        }
    }

    struct OwnedItem(Vec<u8>);

    impl<'de> Deserialize<'de> for OwnedItem {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            d.deserialize_byte_buf(super::bytes::BytesVisitor)
                .map(OwnedItem)
        }
    }

    pub fn serialize<S: Serializer>(v: &[Vec<u8>], s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(v.len()))?;
        for item in v {
            seq.serialize_element(&Item(item))?;
        }
        seq.end()
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Vec<u8>>, D::Error> {
        d.deserialize_seq(ListVisitor)
    }

    struct ListVisitor;

    impl<'de> de::Visitor<'de> for ListVisitor {
        type Value = Vec<Vec<u8>>;

        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("an array of byte strings")
        }

        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<Vec<u8>>, A::Error> {
            // The size hint comes from the peer: cap the pre-allocation.
            let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(1024));
            while let Some(OwnedItem(item)) = seq.next_element()? {
                out.push(item);
            }
            Ok(out)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::executor::block_on;
    use futures::io::Cursor;
    use libp2p::request_response::Codec;

    fn codec() -> request_response::cbor::codec::Codec<Request, Response> {
        request_response::cbor::codec::Codec::default()
            .set_request_size_maximum(MAX_REQUEST_SIZE)
            .set_response_size_maximum(4096)
    }

    fn encode(response: Response) -> Vec<u8> {
        let mut out = Cursor::new(Vec::new());
        let protocol = StreamProtocol::new(SYNC_PROTOCOL);
        block_on(codec().write_response(&protocol, &mut out, response)).unwrap();
        out.into_inner()
    }

    fn decode(bytes: Vec<u8>) -> std::io::Result<Response> {
        let protocol = StreamProtocol::new(SYNC_PROTOCOL);
        block_on(codec().read_response(&protocol, &mut Cursor::new(bytes)))
    }

    #[test]
    fn responses_roundtrip() {
        for r in [
            Response::Blocks(vec![vec![1, 2, 3], vec![], vec![255; 40]]),
            Response::Params {
                params: b"p".to_vec(),
                genesis: vec![0, 200],
            },
            Response::Status {
                height: 7,
                tip: [9; 32],
            },
            Response::Denied("no".into()),
        ] {
            assert_eq!(decode(encode(r.clone())).unwrap(), r);
        }
    }

    #[test]
    fn byte_payloads_are_cbor_byte_strings() {
        // As arrays of integers, 1000 bytes >= 24 would take 2000 bytes.
        let encoded = encode(Response::Blocks(vec![vec![200; 1000]]));
        assert!(encoded.len() < 1020, "{} bytes", encoded.len());
    }

    #[test]
    fn oversize_or_garbage_responses_fail_cleanly() {
        let big = encode(Response::Blocks(vec![vec![1; 5000]]));
        assert!(decode(big).is_err());
        assert!(decode(vec![0xff, 0x00, 0x13]).is_err());
        assert!(decode(Vec::new()).is_err());
    }

    #[test]
    fn requests_roundtrip() {
        let protocol = StreamProtocol::new(SYNC_PROTOCOL);
        let request = Request::GetBlocks {
            from_height: 5,
            count: 100,
        };
        let mut out = Cursor::new(Vec::new());
        block_on(codec().write_request(&protocol, &mut out, request.clone())).unwrap();
        let back = block_on(codec().read_request(&protocol, &mut Cursor::new(out.into_inner())));
        assert_eq!(back.unwrap(), request);
    }
}
