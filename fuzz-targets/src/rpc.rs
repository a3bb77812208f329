//! JSON-RPC: the server's request parsing (body → envelope → method and params), every
//! command's parameter parsing on a node state, `decoderawexchange`'s hex input, and the
//! client's reading of a node's HTTP reply.

use std::sync::{Arc, OnceLock};

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use serde_json::Value;
use tower::ServiceExt;
use wattle_ledger::codec;
use wattle_ledger::tx::Transaction;
use wattle_node::fuzzing::{dispatch_on_state, parse_http_reply, rpc_result_of};
use wattle_node::rpc::access::AllowList;
use wattle_node::rpc::methods::command_names;
use wattle_node::rpc::server::{self, Dispatch, Limits, RpcError, ServerConfig, code};

use crate::fixture::{fixture, with_fixture, with_fixture_as_is};

const USER: &str = "multichainrpc";
const PASSWORD: &str = "fuzz";
/// The body limit of the fixture's server (a node's is twice the block size plus 1 MB).
pub const MAX_BODY: usize = 1 << 20;

fn router() -> axum::Router {
    static ROUTER: OnceLock<axum::Router> = OnceLock::new();
    ROUTER
        .get_or_init(|| {
            let dispatch: Dispatch = Arc::new(|method: String, params: Vec<Value>| {
                Box::pin(async move {
                    with_fixture_as_is(|fx| dispatch_on_state(&mut fx.state, &method, &params))
                })
            });
            let config = ServerConfig {
                user: USER.into(),
                password: PASSWORD.into(),
                chain_name: "fuzzchain".into(),
                max_body_bytes: MAX_BODY,
                server_name: "wattle-json-rpc/fuzz".into(),
                allow: AllowList::new(Vec::new()),
                limits: Limits::default(),
            };
            server::router(config, dispatch)
        })
        .clone()
}

thread_local! {
    static RUNTIME: tokio::runtime::Runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
}

/// Posts `body` to the server with valid credentials: the status and the reply body.
pub fn post(body: &[u8]) -> (StatusCode, Vec<u8>) {
    let request = Request::builder()
        .method(Method::POST)
        .uri("/")
        .header(
            "Authorization",
            "Basic bXVsdGljaGFpbnJwYzpmdXp6", // multichainrpc:fuzz
        )
        .body(Body::from(body.to_vec()))
        .expect("request builds");
    RUNTIME.with(|rt| {
        rt.block_on(async {
            let response = router().oneshot(request).await.expect("infallible");
            let status = response.status();
            let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
                .await
                .expect("reply body");
            (status, bytes.to_vec())
        })
    })
}

/// The status MultiChain gives a reply object.
fn status_of(reply: &Value) -> StatusCode {
    match reply["error"]["code"].as_i64() {
        None => StatusCode::OK,
        Some(code::INVALID_REQUEST) => StatusCode::BAD_REQUEST,
        Some(code::METHOD_NOT_FOUND) => StatusCode::NOT_FOUND,
        Some(_) => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

fn check_reply_object(reply: &Value, request: &Value) {
    let obj = reply.as_object().expect("a reply is an object");
    assert!(obj.contains_key("result") && obj.contains_key("error") && obj.contains_key("id"));
    assert!(obj["result"].is_null() || obj["error"].is_null());
    let id = match request {
        Value::Object(m) => m.get("id").cloned().unwrap_or(Value::Null),
        _ => Value::Null,
    };
    assert_eq!(obj["id"], id);
    if let Some(e) = obj["error"].as_object() {
        assert!(e["code"].is_i64() && e["message"].is_string(), "{e:?}");
    }
}

/// `rpc_request`: a request body through the server (envelope, batches, dispatch to the real
/// commands on the fixture node). The reply is JSON with `result`, `error` and `id` for each
/// request (a batch answers 200 with one reply per item), statuses as MultiChain's; a body
/// that is not JSON is a parse error (-32700).
pub fn rpc_request(data: &[u8]) {
    drop(fixture()); // reset once for the whole body
    let (status, body) = post(data);
    if data.len() > MAX_BODY {
        assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
        return;
    }
    let reply: Value = serde_json::from_slice(&body).expect("the reply is JSON");
    match serde_json::from_slice::<Value>(data) {
        Err(_) => {
            assert_eq!(reply["error"]["code"], Value::from(code::PARSE_ERROR));
            assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
        }
        Ok(Value::Array(items)) => {
            assert_eq!(status, StatusCode::OK);
            let replies = reply.as_array().expect("a batch gets an array");
            assert_eq!(replies.len(), items.len());
            for (r, q) in replies.iter().zip(&items) {
                check_reply_object(r, q);
            }
        }
        Ok(request) => {
            check_reply_object(&reply, &request);
            assert_eq!(status, status_of(&reply));
        }
    }
}

/// The parameters a fuzz input stands for: a JSON array, another JSON value as the only
/// parameter, or else lines of text as string parameters.
pub fn params_of(data: &[u8]) -> Vec<Value> {
    match serde_json::from_slice::<Value>(data) {
        Ok(Value::Array(a)) => a,
        Ok(v) => vec![v],
        Err(_) => String::from_utf8_lossy(data)
            .split('\n')
            .map(|l| Value::String(l.to_string()))
            .collect(),
    }
}

fn check_error(e: &RpcError) {
    assert!(e.code < 0, "{e:?}");
    assert!(!e.message.is_empty(), "{e:?}");
}

/// `rpc_commands`: the first byte picks a command, the rest are its parameters
/// ([`params_of`]); the command runs on the fixture node. Errors carry a negative code and a
/// message; whatever enters the mempool passes the stateless rules.
pub fn rpc_commands(data: &[u8]) {
    let Some((&pick, rest)) = data.split_first() else {
        return;
    };
    let names: Vec<&str> = command_names().collect();
    let method = names[pick as usize % names.len()];
    let params = params_of(rest);
    with_fixture(|fx| {
        let s = &mut fx.state;
        match dispatch_on_state(s, method, &params) {
            Ok(v) => {
                let _ = v.to_string();
            }
            Err(e) => check_error(&e),
        }
        for tx in s.mempool.transactions() {
            wattle_ledger::validate::check_stateless(tx, &s.chain)
                .expect("the mempool holds only valid transactions");
        }
    })
}

/// `decoderawexchange`: the command's hex parameter. The low bits of the first byte choose how
/// the rest becomes the parameter: as the hex text itself, hex-encoded, or decoded as a
/// transaction whose inputs are moved onto the fixture's coins (so that the exchange checks
/// are reached); bit 2 sets `verbose`. Hex that is no transaction is error -22; otherwise the
/// answer agrees with the ledger's `decode_exchange` on the same chain in memory.
pub fn decoderawexchange(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let verbose = mode & 4 != 0;
    let (tc, info) = crate::ledger::memory_chain();
    let text = match mode & 3 {
        0 => String::from_utf8_lossy(rest).into_owned(),
        1 => hex::encode(rest),
        _ => {
            let Ok(mut tx) = codec::decode::<Transaction>(rest) else {
                return;
            };
            let coins: Vec<_> = tc
                .utxos_of(&wattle_ledger::testkit::key(1).address())
                .into_iter()
                .map(|(op, _)| op)
                .chain([info.prepared])
                .collect();
            for input in &mut tx.inputs {
                input.prev = coins[input.prev.vout as usize % coins.len()];
            }
            tx.to_hex()
        }
    };
    let params = vec![Value::String(text.clone()), Value::Bool(verbose)];
    let answer = with_fixture(|fx| dispatch_on_state(&mut fx.state, "decoderawexchange", &params));
    let Ok(tx) = codec::decode_hex::<Transaction>(&text) else {
        let e = answer.expect_err("not a transaction");
        assert_eq!(e.code, code::DESERIALIZATION_ERROR, "{e:?}");
        return;
    };
    let ledger =
        wattle_ledger::exchange::decode_exchange(&tc.state, &tx, &tc.chain, tc.next_height(), true);
    match (&answer, &ledger) {
        (Ok(v), Ok(d)) => {
            for key in [
                "offer",
                "ask",
                "requiredfee",
                "candisable",
                "cancomplete",
                "complete",
            ] {
                assert!(v.get(key).is_some(), "no {key} in {v}");
            }
            assert_eq!(v["complete"], Value::Bool(d.complete));
            assert_eq!(v.get("exchanges").is_some(), verbose);
            let listed = |side: &str| v[side]["assets"].as_array().map(Vec::len);
            assert_eq!(listed("offer"), Some(d.offer.len()));
            assert_eq!(listed("ask"), Some(d.ask.len()));
        }
        (Err(e), Err(_)) => check_error(e),
        other => panic!("the node and the ledger disagree: {other:?}"),
    }
}

/// `http_reply`: the JSON-RPC client's parsing of a node's HTTP reply and of its body.
pub fn http_reply(data: &[u8]) {
    let Ok(reply) = parse_http_reply(data) else {
        return;
    };
    let text = String::from_utf8_lossy(data);
    let (head, body) = text.split_once("\r\n\r\n").expect("parsed: it has a head");
    let chunked = head.to_ascii_lowercase().contains("transfer-encoding:");
    if !chunked {
        assert_eq!(reply.body, body);
    }
    let _ = rpc_result_of(reply);
}
