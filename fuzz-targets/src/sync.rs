//! The sync protocol `/wattle/sync/1`: each request and response as the node's CBOR codec reads
//! it from a stream (with the node's size limits), then handled as the node handles it.

use wattle_ledger::{Block, Hash256, apply_genesis, codec};
use wattle_node::chain::Action;
use wattle_node::fuzzing::{
    MAX_SYNC_REQUEST, decode_sync_request, decode_sync_response, encode_sync_request,
    encode_sync_response,
};
use wattle_node::network::{ChannelId, NetEvent, NetworkConfig, Request, Response};

use crate::fixture::with_fixture;

/// The response limit a node reads with (`NetworkConfig::max_response_size`).
fn max_response() -> usize {
    NetworkConfig::new([7; 32], [0; 32]).max_response_size
}

/// `sync_request`: a request that decodes re-encodes within the limit to the same request; the
/// node answers it exactly once, `Denied` to a peer without connect (except `GetParams`), and
/// with the blocks it holds for `GetBlocks`.
pub fn sync_request(data: &[u8]) {
    let Ok(request) = decode_sync_request(data) else {
        return;
    };
    let bytes = encode_sync_request(request.clone()).expect("a request encodes");
    assert!(bytes.len() <= MAX_SYNC_REQUEST);
    assert_eq!(decode_sync_request(&bytes).expect("re-decodes"), request);
    with_fixture(|fx| {
        for (n, peer) in [fx.peer, fx.outsider].into_iter().enumerate() {
            let permitted = n == 0;
            let channel = ChannelId(n as u64 + 1);
            let s = &mut fx.state;
            s.outbox.clear();
            s.on_net_event(NetEvent::Request {
                peer,
                request: request.clone(),
                channel,
            });
            let answers: Vec<&Response> = s
                .outbox
                .iter()
                .filter_map(|a| match a {
                    Action::Respond(c, r) if *c == channel => Some(r),
                    _ => None,
                })
                .collect();
            assert_eq!(answers.len(), 1, "one answer per request");
            let response = answers[0].clone();
            match (&request, &response) {
                (Request::GetParams, Response::Params { params, genesis }) => {
                    assert_eq!(params, fx.info.params_toml.as_bytes());
                    assert_eq!(genesis, &fx.info.genesis.encode());
                }
                (_, Response::Denied(_)) if !permitted => {}
                (Request::GetStatus, Response::Status { height, .. }) => {
                    assert_eq!(*height, s.height());
                }
                (Request::GetBlocks { from_height, count }, Response::Blocks(blocks)) => {
                    assert!(blocks.len() <= (*count).min(500) as usize);
                    for (i, bytes) in blocks.iter().enumerate() {
                        let block: Block = codec::decode(bytes).expect("a stored block decodes");
                        assert_eq!(block.header.height, from_height + i as u32);
                    }
                }
                other => panic!("unexpected answer: {other:?} (permitted: {permitted})"),
            }
            let bytes = encode_sync_response(response.clone()).expect("a response encodes");
            assert_eq!(
                decode_sync_response(&bytes, max_response()).expect("re-decodes"),
                response
            );
        }
    })
}

/// `sync_response`: a response that decodes re-encodes to the same response; then `Blocks` go
/// to the node as fetched blocks, `Status` as a peer's tip, and `Params` through a joining
/// node's checks (text, `params.toml`, the genesis block and its parameters).
pub fn sync_response(data: &[u8]) {
    let Ok(response) = decode_sync_response(data, max_response()) else {
        return;
    };
    let bytes = encode_sync_response(response.clone()).expect("a response encodes");
    assert_eq!(
        decode_sync_response(&bytes, max_response()).expect("re-decodes"),
        response
    );
    match response {
        Response::Params { params, genesis } => join_checks(&params, &genesis),
        Response::Status { height, tip } => with_fixture(|fx| {
            fx.state.on_status(fx.peer, height, Hash256(tip));
        }),
        Response::Blocks(blocks) => with_fixture(|fx| {
            fx.state.on_blocks(fx.peer, blocks);
        }),
        Response::Denied(_) => {}
    }
}

/// What a joining node checks of a seed's `Params` answer (`daemon::join_through_seed`).
fn join_checks(params: &[u8], genesis: &[u8]) {
    let Ok(text) = std::str::from_utf8(params) else {
        return;
    };
    let Ok(params) = wattle_node::params_file::parse(text) else {
        return;
    };
    let Ok(genesis) = codec::decode::<Block>(genesis) else {
        return;
    };
    if let Ok((chain, changes)) = apply_genesis(&params, &genesis) {
        assert_eq!(chain.id, genesis.header.id(&Hash256::ZERO));
        assert_eq!(genesis.header.prev, params.hash());
        assert!(!changes.is_empty());
    }
}
