//! The JSON-RPC server core, wire-compatible with MultiChain (MULTICHAIN.md §1.5): HTTP `POST`
//! on any path, Basic auth, `{method, params, id, chain_name}` requests (`id` and `chain_name`
//! optional), `{result, error, id}` replies with `error` always present, batches, MultiChain's
//! HTTP statuses and error codes, and a request-size limit (413).

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use futures::future::BoxFuture;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;

/// A JSON-RPC error: MultiChain's code and message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RpcError {
    pub code: i64,
    pub message: String,
}

impl RpcError {
    pub fn new(code: i64, message: impl Into<String>) -> RpcError {
        RpcError {
            code,
            message: message.into(),
        }
    }
}

/// Error codes (MULTICHAIN.md §1.7).
pub mod code {
    pub const INVALID_REQUEST: i64 = -32600;
    pub const METHOD_NOT_FOUND: i64 = -32601;
    pub const INTERNAL_ERROR: i64 = -32603;
    pub const PARSE_ERROR: i64 = -32700;
    pub const MISC_ERROR: i64 = -1;
    pub const TYPE_ERROR: i64 = -3;
    pub const WALLET_ERROR: i64 = -4;
    pub const INVALID_ADDRESS_OR_KEY: i64 = -5;
    pub const WALLET_INSUFFICIENT_FUNDS: i64 = -6;
    pub const INVALID_PARAMETER: i64 = -8;
    pub const DATABASE_ERROR: i64 = -20;
    pub const DESERIALIZATION_ERROR: i64 = -22;
    pub const VERIFY_REJECTED: i64 = -26;
    pub const VERIFY_ALREADY_IN_CHAIN: i64 = -27;
    pub const IN_WARMUP: i64 = -28;
    pub const NOT_ALLOWED: i64 = -701;
    pub const NOT_SUPPORTED: i64 = -702;
    pub const INSUFFICIENT_PERMISSIONS: i64 = -704;
    pub const DUPLICATE_NAME: i64 = -705;
    pub const EXCHANGE_ERROR: i64 = -707;
    pub const ENTITY_NOT_FOUND: i64 = -708;
    pub const WALLET_ADDRESS_NOT_FOUND: i64 = -709;
    pub const TX_NOT_FOUND: i64 = -710;
    pub const BLOCK_NOT_FOUND: i64 = -711;
    pub const INPUTS_NOT_MINE: i64 = -714;
    pub const WALLET_OUTPUT_NOT_FOUND: i64 = -715;
    pub const WALLET_NO_UNSPENT_OUTPUTS: i64 = -716;
}

/// Runs one method call.
pub type Dispatch =
    Arc<dyn Fn(String, Vec<Value>) -> BoxFuture<'static, Result<Value, RpcError>> + Send + Sync>;

/// What the server needs: credentials, the chain name and the dispatcher.
#[derive(Clone)]
pub struct ServerConfig {
    pub user: String,
    pub password: String,
    pub chain_name: String,
    pub max_body_bytes: usize,
    pub server_name: String,
}

#[derive(Clone)]
struct Ctx {
    config: Arc<ServerConfig>,
    dispatch: Dispatch,
}

/// The router: every path, POST only.
pub fn router(config: ServerConfig, dispatch: Dispatch) -> Router {
    let limit = config.max_body_bytes;
    let ctx = Ctx {
        config: Arc::new(config),
        dispatch,
    };
    Router::new()
        .fallback(handle)
        .with_state(ctx)
        .layer(DefaultBodyLimit::max(limit))
}

/// Serves on `listener` until `shutdown` resolves.
pub async fn serve(
    listener: tokio::net::TcpListener,
    config: ServerConfig,
    dispatch: Dispatch,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router(config, dispatch))
        .with_graceful_shutdown(shutdown)
        .await
}

fn reply(status: StatusCode, body: &Value, server: &str) -> Response {
    let mut text = body.to_string();
    text.push('\n');
    let mut resp = (status, text).into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    if let Ok(v) = HeaderValue::from_str(server) {
        resp.headers_mut().insert(header::SERVER, v);
    }
    resp
}

fn error_object(e: &RpcError, id: Value) -> Value {
    json!({"result": null, "error": {"code": e.code, "message": e.message}, "id": id})
}

/// MultiChain's statuses: 400 for -32600, 404 for -32601, 500 for any other error.
fn status_for(code: i64) -> StatusCode {
    match code {
        code::INVALID_REQUEST => StatusCode::BAD_REQUEST,
        code::METHOD_NOT_FOUND => StatusCode::NOT_FOUND,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

fn authorized(headers: &HeaderMap, config: &ServerConfig) -> bool {
    let Some(value) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let Some(encoded) = value.strip_prefix("Basic ") else {
        return false;
    };
    let Ok(decoded) = base64::engine::general_purpose::STANDARD.decode(encoded.trim()) else {
        return false;
    };
    let expected = format!("{}:{}", config.user, config.password);
    // Compare in constant time over the longer length.
    let (a, b) = (decoded.as_slice(), expected.as_bytes());
    let mut diff = a.len() ^ b.len();
    for i in 0..a.len().max(b.len()) {
        diff |= (a.get(i).copied().unwrap_or(0) ^ b.get(i).copied().unwrap_or(0)) as usize;
    }
    diff == 0
}

async fn handle(
    State(ctx): State<Ctx>,
    method: Method,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let server = ctx.config.server_name.clone();
    if method != Method::POST {
        return (
            StatusCode::METHOD_NOT_ALLOWED,
            "JSONRPC server handles only POST requests\n",
        )
            .into_response();
    }
    if !authorized(&headers, &ctx.config) {
        if headers.contains_key(header::AUTHORIZATION) {
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        let mut resp = (StatusCode::UNAUTHORIZED, "401 Unauthorized\n").into_response();
        resp.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Basic realm=\"jsonrpc\""),
        );
        return resp;
    }
    let request: Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(_) => {
            let e = RpcError::new(code::PARSE_ERROR, "Parse error");
            return reply(status_for(e.code), &error_object(&e, Value::Null), &server);
        }
    };
    match request {
        Value::Array(items) => {
            let mut replies = Vec::with_capacity(items.len());
            for item in items {
                replies.push(call_one(&ctx, item).await.0);
            }
            reply(StatusCode::OK, &Value::Array(replies), &server)
        }
        single => {
            let (body, status) = call_one(&ctx, single).await;
            reply(status, &body, &server)
        }
    }
}

/// Validates one request object and runs it: the reply object and its HTTP status.
async fn call_one(ctx: &Ctx, request: Value) -> (Value, StatusCode) {
    let Value::Object(obj) = request else {
        let e = RpcError::new(code::INVALID_REQUEST, "Invalid Request object");
        return (error_object(&e, Value::Null), status_for(e.code));
    };
    let id = obj.get("id").cloned().unwrap_or(Value::Null);
    let fail = |e: RpcError, id: Value| (error_object(&e, id), status_for(e.code));
    let method = match obj.get("method") {
        Some(Value::String(m)) => m.clone(),
        None => return fail(RpcError::new(code::INVALID_REQUEST, "Missing method"), id),
        Some(_) => {
            return fail(
                RpcError::new(code::INVALID_REQUEST, "Method must be a string"),
                id,
            );
        }
    };
    let params = match obj.get("params") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(a)) => a.clone(),
        Some(_) => {
            return fail(
                RpcError::new(code::INVALID_REQUEST, "Params must be an array"),
                id,
            );
        }
    };
    match obj.get("chain_name") {
        None | Some(Value::Null) => {}
        Some(Value::String(name)) if *name == ctx.config.chain_name => {}
        Some(_) => return fail(RpcError::new(code::INVALID_REQUEST, "Wrong chain name"), id),
    }
    match (ctx.dispatch)(method, params).await {
        Ok(result) => (
            json!({"result": result, "error": null, "id": id}),
            StatusCode::OK,
        ),
        Err(e) => fail(e, id),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::http::Request;
    use tower::ServiceExt;

    fn app() -> Router {
        let config = ServerConfig {
            user: "multichainrpc".into(),
            password: "pw".into(),
            chain_name: "energybc".into(),
            max_body_bytes: 1024,
            server_name: "wattle-json-rpc/test".into(),
        };
        let dispatch: Dispatch = Arc::new(|method: String, params: Vec<Value>| {
            Box::pin(async move {
                match method.as_str() {
                    "echo" => Ok(Value::Array(params)),
                    "fail" => Err(RpcError::new(code::INVALID_PARAMETER, "bad")),
                    _ => Err(RpcError::new(code::METHOD_NOT_FOUND, "Method not found")),
                }
            })
        });
        router(config, dispatch)
    }

    async fn send(body: &str, auth: Option<&str>, method: Method) -> (StatusCode, String) {
        let mut req = Request::builder().method(method).uri("/anything");
        if let Some(a) = auth {
            req = req.header(
                "Authorization",
                format!(
                    "Basic {}",
                    base64::engine::general_purpose::STANDARD.encode(a)
                ),
            );
        }
        let resp = app()
            .oneshot(req.body(Body::from(body.to_string())).unwrap())
            .await
            .unwrap();
        let status = resp.status();
        let bytes = axum::body::to_bytes(resp.into_body(), 1 << 20)
            .await
            .unwrap();
        (status, String::from_utf8_lossy(&bytes).into_owned())
    }

    const OK: Option<&str> = Some("multichainrpc:pw");

    #[tokio::test]
    async fn envelope_statuses_and_errors() {
        let (s, b) = send(
            r#"{"method":"echo","params":[1,"a"],"id":7,"chain_name":"energybc"}"#,
            OK,
            Method::POST,
        )
        .await;
        assert_eq!(s, StatusCode::OK);
        assert_eq!(
            serde_json::from_str::<Value>(&b).unwrap(),
            json!({"result":[1,"a"],"error":null,"id":7})
        );
        let (s, b) = send(r#"{"method":"echo"}"#, OK, Method::POST).await;
        assert_eq!(s, StatusCode::OK);
        assert!(
            b.contains(r#""id":null"#) && b.contains(r#""result":[]"#),
            "{b}"
        );
        let (s, b) = send(r#"{"method":"nope","params":[],"id":1}"#, OK, Method::POST).await;
        assert_eq!(s, StatusCode::NOT_FOUND);
        assert!(b.contains("-32601"));
        let (s, _) = send(r#"{"method":"fail","id":1}"#, OK, Method::POST).await;
        assert_eq!(s, StatusCode::INTERNAL_SERVER_ERROR);
        let (s, b) = send(
            r#"{"method":"echo","chain_name":"other"}"#,
            OK,
            Method::POST,
        )
        .await;
        assert_eq!(s, StatusCode::BAD_REQUEST);
        assert!(b.contains("Wrong chain name"));
        let (s, b) = send(r#"{"method":"echo","params":{"a":1}}"#, OK, Method::POST).await;
        assert_eq!(s, StatusCode::BAD_REQUEST);
        assert!(b.contains("Params must be an array"));
        let (s, b) = send(r#"{"method":5}"#, OK, Method::POST).await;
        assert_eq!(s, StatusCode::BAD_REQUEST);
        assert!(b.contains("-32600"));
        let (s, b) = send("{not json", OK, Method::POST).await;
        assert_eq!(s, StatusCode::INTERNAL_SERVER_ERROR);
        assert!(b.contains("-32700"));
    }

    #[tokio::test]
    async fn batches_auth_size_and_method() {
        let (s, b) = send(
            r#"[{"method":"echo","params":[1],"id":1},{"method":"nope","id":2}]"#,
            OK,
            Method::POST,
        )
        .await;
        assert_eq!(s, StatusCode::OK);
        let v: Value = serde_json::from_str(&b).unwrap();
        assert_eq!(v[0]["result"], json!([1]));
        assert_eq!(v[1]["error"]["code"], json!(-32601));
        let (s, _) = send(r#"{"method":"echo"}"#, None, Method::POST).await;
        assert_eq!(s, StatusCode::UNAUTHORIZED);
        let (s, _) = send(
            r#"{"method":"echo"}"#,
            Some("multichainrpc:wrong"),
            Method::POST,
        )
        .await;
        assert_eq!(s, StatusCode::UNAUTHORIZED);
        let (s, _) = send(&"x".repeat(5000), OK, Method::POST).await;
        assert_eq!(s, StatusCode::PAYLOAD_TOO_LARGE);
        let (s, _) = send("", OK, Method::GET).await;
        assert_eq!(s, StatusCode::METHOD_NOT_ALLOWED);
    }
}
