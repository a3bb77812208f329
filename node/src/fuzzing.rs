//! Entry points for the fuzz targets (`fuzz-targets/`, `fuzz/`) into parsers that are otherwise
//! private: the sync protocol's CBOR codec with the node's size limits, the JSON-RPC client's
//! HTTP reply parser, and running one RPC command on a [`NodeState`] without the chain actor.
//! Not an API: nothing else should call these.

use crate::chain::NodeState;
use crate::network::protocol::{MAX_REQUEST_SIZE, SYNC_PROTOCOL, SyncCodec, SyncRequest};
use crate::network::{Request, Response};
use crate::rpc::client::{CallError, HttpError, HttpReply, RpcClient};
use crate::rpc::server::RpcError;
use futures::executor::block_on;
use futures::io::Cursor;
use libp2p::StreamProtocol;
use libp2p::request_response::Codec as _;
use serde_json::Value;

/// The largest sync request the node accepts.
pub const MAX_SYNC_REQUEST: usize = MAX_REQUEST_SIZE as usize;

fn protocol() -> StreamProtocol {
    StreamProtocol::new(SYNC_PROTOCOL)
}

/// Reads one sync request from a stream's bytes with the node's codec; a request the codec reads
/// as invalid (too large, undecodable) is an `InvalidData` error.
pub fn decode_sync_request(bytes: &[u8]) -> std::io::Result<Request> {
    let mut codec = SyncCodec::new(MAX_REQUEST_SIZE, 0);
    match block_on(codec.read_request(&protocol(), &mut Cursor::new(bytes)))? {
        SyncRequest::Valid(request) => Ok(request),
        SyncRequest::Invalid(reason) => {
            Err(std::io::Error::new(std::io::ErrorKind::InvalidData, reason))
        }
    }
}

/// Reads one sync response (at most `max_response` bytes) from a stream's bytes with the node's
/// codec.
pub fn decode_sync_response(bytes: &[u8], max_response: usize) -> std::io::Result<Response> {
    let mut codec = SyncCodec::new(MAX_REQUEST_SIZE, max_response as u64);
    block_on(codec.read_response(&protocol(), &mut Cursor::new(bytes)))
}

/// The bytes the node's codec writes for a request.
pub fn encode_sync_request(request: Request) -> std::io::Result<Vec<u8>> {
    let mut codec = SyncCodec::new(MAX_REQUEST_SIZE, 0);
    let mut out = Cursor::new(Vec::new());
    block_on(codec.write_request(&protocol(), &mut out, SyncRequest::Valid(request)))?;
    Ok(out.into_inner())
}

/// The bytes the node's codec writes for a response.
pub fn encode_sync_response(response: Response) -> std::io::Result<Vec<u8>> {
    let mut codec = SyncCodec::new(MAX_REQUEST_SIZE, u64::MAX);
    let mut out = Cursor::new(Vec::new());
    block_on(codec.write_response(&protocol(), &mut out, response))?;
    Ok(out.into_inner())
}

/// The JSON-RPC client's parser of a whole HTTP reply (the chunked path).
pub fn parse_http_reply(raw: &[u8]) -> Result<HttpReply, HttpError> {
    crate::rpc::client::parse_reply(raw)
}

/// The JSON-RPC client's reading of a reply body: the result or the node's error.
pub fn rpc_result_of(reply: HttpReply) -> Result<Value, CallError> {
    RpcClient::result_of(reply)
}

/// Runs one JSON-RPC command on the node state (see `rpc::methods::dispatch_on_state`).
pub fn dispatch_on_state(
    s: &mut NodeState,
    method: &str,
    params: &[Value],
) -> Result<Value, RpcError> {
    crate::rpc::methods::dispatch_on_state(s, method, params, "fuzz")
}
