//! The sync protocol `/wattle/sync/1`: one CBOR request, one CBOR response per stream.
//!
//! Byte payloads are CBOR byte strings (serde's default would write a `Vec<u8>` as an array of
//! integers, nearly doubling a block). Requests are tiny, so they get a small size limit; the
//! response limit is [`super::NetworkConfig::max_response_size`]. A payload over the limit, or
//! one that does not decode, fails that one stream (an `InboundFailure`), never the Swarm.
//!
//! [`SyncCodec`] reads a whole message (to the end of the stream, at most the limit) before it
//! decodes it, so that a fault of the *peer* (too large, or complete but undecodable) is told
//! apart from a connection that broke mid-message (no penalty: an honest node may crash or
//! restart, which fails with the transport's error). A bad response fails with
//! [`std::io::ErrorKind::InvalidData`]; a bad request is read as [`SyncRequest::Invalid`], because
//! libp2p reports a request that fails to read to nobody, and the actor must see who sent it.
//!
//! A message that *ends too early* (nothing at all, or a prefix of a message) is not blamed on
//! the peer either: it fails with [`std::io::ErrorKind::UnexpectedEof`]. yamux reports a stream
//! that the other side reset (abandoned) as a clean end of stream, so a cut-short message is what
//! an honest peer's abandoned stream looks like. It happens after every network partition: a
//! request made while the link is down cannot finish its protocol negotiation, libp2p resets the
//! stream after its 10 s upgrade timeout without having written the request, and the responder
//! reads the empty stream once the link is back — one such stream per request, so a partition of
//! more than about 12 s used to ban every peer on the other side for the ban time (found by
//! `tests/partition`).

use std::io;

use futures::io::Cursor;
use futures::{AsyncRead, AsyncReadExt, AsyncWrite};
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

pub(crate) type SyncBehaviour = request_response::Behaviour<SyncCodec>;

/// A request as the codec carries it: ours are always `Valid`; a peer's bytes that are too large
/// or do not decode are read as `Invalid` (the reason, for logs).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum SyncRequest {
    Valid(Request),
    Invalid(String),
}

/// The sync behaviour with our size limits and timeout.
pub(crate) fn sync_behaviour(
    max_response_size: usize,
    timeout: std::time::Duration,
) -> SyncBehaviour {
    request_response::Behaviour::with_codec(
        SyncCodec::new(MAX_REQUEST_SIZE, max_response_size as u64),
        [(StreamProtocol::new(SYNC_PROTOCOL), ProtocolSupport::Full)],
        request_response::Config::default().with_request_timeout(timeout),
    )
}

/// libp2p's CBOR codec behind a reader that takes whole messages within a size limit (see the
/// module documentation).
#[derive(Clone)]
pub(crate) struct SyncCodec {
    inner: request_response::cbor::codec::Codec<Request, Response>,
    max_request: u64,
    max_response: u64,
}

impl SyncCodec {
    pub(crate) fn new(max_request: u64, max_response: u64) -> SyncCodec {
        let inner = request_response::cbor::codec::Codec::default()
            .set_request_size_maximum(max_request)
            .set_response_size_maximum(max_response);
        SyncCodec {
            inner,
            max_request,
            max_response,
        }
    }
}

/// The whole message: transport errors as they are, one byte over `max` as `InvalidData`.
async fn read_whole<T: AsyncRead + Unpin + Send>(io: &mut T, max: u64) -> io::Result<Vec<u8>> {
    let mut bytes = Vec::new();
    io.take(max.saturating_add(1))
        .read_to_end(&mut bytes)
        .await?;
    if bytes.len() as u64 > max {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("message over the limit of {max} bytes"),
        ));
    }
    Ok(bytes)
}

/// A complete message that does not decode is the sender's fault; one that ends too early may be
/// an abandoned stream (see the module documentation), and keeps its `UnexpectedEof`.
fn undecodable(e: io::Error) -> io::Error {
    if cut_short(&e) {
        e
    } else {
        io::Error::new(io::ErrorKind::InvalidData, e)
    }
}

/// The decoder ran out of bytes: the message ended before it was complete.
fn cut_short(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::UnexpectedEof
}

impl request_response::Codec for SyncCodec {
    type Protocol = StreamProtocol;
    type Request = SyncRequest;
    type Response = Response;

    async fn read_request<T>(
        &mut self,
        protocol: &StreamProtocol,
        io: &mut T,
    ) -> io::Result<SyncRequest>
    where
        T: AsyncRead + Unpin + Send,
    {
        let bytes = match read_whole(io, self.max_request).await {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == io::ErrorKind::InvalidData => {
                return Ok(SyncRequest::Invalid(e.to_string()));
            }
            Err(e) => return Err(e),
        };
        let mut whole = Cursor::new(bytes);
        Ok(match self.inner.read_request(protocol, &mut whole).await {
            Ok(request) => SyncRequest::Valid(request),
            // Maybe an abandoned stream: it fails, unblamed.
            Err(e) if cut_short(&e) => return Err(e),
            Err(e) => SyncRequest::Invalid(format!("undecodable: {e}")),
        })
    }

    async fn read_response<T>(
        &mut self,
        protocol: &StreamProtocol,
        io: &mut T,
    ) -> io::Result<Response>
    where
        T: AsyncRead + Unpin + Send,
    {
        let bytes = read_whole(io, self.max_response).await?;
        let mut whole = Cursor::new(bytes);
        self.inner
            .read_response(protocol, &mut whole)
            .await
            .map_err(undecodable)
    }

    async fn write_request<T>(
        &mut self,
        protocol: &StreamProtocol,
        io: &mut T,
        request: SyncRequest,
    ) -> io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        match request {
            SyncRequest::Valid(request) => self.inner.write_request(protocol, io, request).await,
            SyncRequest::Invalid(reason) => Err(io::Error::other(format!("not sent: {reason}"))),
        }
    }

    async fn write_response<T>(
        &mut self,
        protocol: &StreamProtocol,
        io: &mut T,
        response: Response,
    ) -> io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        self.inner.write_response(protocol, io, response).await
    }
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

    /// Yields `bytes`, then fails like a connection that broke.
    struct Broken(Vec<u8>);

    impl AsyncRead for Broken {
        fn poll_read(
            mut self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
            buf: &mut [u8],
        ) -> std::task::Poll<io::Result<usize>> {
            if self.0.is_empty() {
                return std::task::Poll::Ready(Err(io::ErrorKind::ConnectionReset.into()));
            }
            let n = buf.len().min(self.0.len());
            buf[..n].copy_from_slice(&self.0[..n]);
            self.0.drain(..n);
            std::task::Poll::Ready(Ok(n))
        }
    }

    #[test]
    fn the_peer_is_blamed_for_oversized_or_garbage_messages_not_for_broken_connections() {
        let protocol = StreamProtocol::new(SYNC_PROTOCOL);
        let mut sync = SyncCodec::new(MAX_REQUEST_SIZE, 4096);
        let read_request = |sync: &mut SyncCodec, bytes: Vec<u8>| {
            block_on(sync.read_request(&protocol, &mut Cursor::new(bytes)))
        };
        let mut good = Cursor::new(Vec::new());
        let status = SyncRequest::Valid(Request::GetStatus);
        block_on(sync.write_request(&protocol, &mut good, status.clone())).unwrap();
        let good = good.into_inner();
        assert_eq!(read_request(&mut sync, good.clone()).unwrap(), status);
        for (what, bytes) in [
            ("garbage", vec![0xff, 0x00, 0x13]),
            ("not a request", vec![0xa1, 0x61, 0x78, 0x01]),
            ("oversized", vec![0x42; MAX_REQUEST_SIZE as usize + 1]),
        ] {
            let read = read_request(&mut sync, bytes).unwrap();
            assert!(matches!(read, SyncRequest::Invalid(_)), "{what}: {read:?}");
        }
        let invalid = SyncRequest::Invalid("x".into());
        let mut out = Cursor::new(Vec::new());
        assert!(block_on(sync.write_request(&protocol, &mut out, invalid)).is_err());
        let big = encode(Response::Blocks(vec![vec![1; 5000]]));
        let e = block_on(sync.read_response(&protocol, &mut Cursor::new(big))).unwrap_err();
        assert_eq!(
            e.kind(),
            io::ErrorKind::InvalidData,
            "oversized response: {e}"
        );
        // A connection that breaks mid-message is not the peer's fault.
        let e =
            block_on(sync.read_request(&protocol, &mut Broken(good[..1].to_vec()))).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::ConnectionReset);
    }

    /// yamux reports a stream the other side reset as a clean end: an empty or cut-short message
    /// may be an honest peer's abandoned stream (after a partition, every request made while the
    /// link was down arrives like that), so it fails without blaming the peer: `UnexpectedEof`,
    /// never `SyncRequest::Invalid` or `InvalidData` (which cost the peer misbehaviour points).
    #[test]
    fn messages_that_end_too_early_fail_without_blaming_the_peer() {
        let protocol = StreamProtocol::new(SYNC_PROTOCOL);
        let mut sync = SyncCodec::new(MAX_REQUEST_SIZE, 4096);
        let mut request = Cursor::new(Vec::new());
        let ask = SyncRequest::Valid(Request::GetBlocks {
            from_height: 1_000,
            count: 500,
        });
        block_on(sync.write_request(&protocol, &mut request, ask)).unwrap();
        let request = request.into_inner();
        let response = encode(Response::Blocks(vec![vec![7; 300], vec![8; 300]]));
        for cut in [0, 1, request.len() - 1] {
            let bytes = request[..cut].to_vec();
            let read = block_on(sync.read_request(&protocol, &mut Cursor::new(bytes)));
            let e = read.expect_err(&format!("a request cut to {cut} bytes"));
            assert_eq!(
                e.kind(),
                io::ErrorKind::UnexpectedEof,
                "request cut to {cut}: {e}"
            );
        }
        for cut in [0, 1, 40, response.len() - 1] {
            let bytes = response[..cut].to_vec();
            let read = block_on(sync.read_response(&protocol, &mut Cursor::new(bytes)));
            let e = read.expect_err(&format!("a response cut to {cut} bytes"));
            assert_eq!(
                e.kind(),
                io::ErrorKind::UnexpectedEof,
                "response cut to {cut}: {e}"
            );
        }
        // Complete but wrong is still the sender's fault.
        let e =
            block_on(sync.read_response(&protocol, &mut Cursor::new(vec![0xa1, 0x61, 0x78, 0x01])))
                .unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidData, "not a response: {e}");
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
