//! The JSON-RPC server core, wire-compatible with MultiChain (MULTICHAIN.md §1.5): HTTP `POST`
//! on any path, Basic auth, `{method, params, id, chain_name}` requests (`id` and `chain_name`
//! optional), `{result, error, id}` replies with `error` always present, batches, MultiChain's
//! HTTP statuses and error codes, and a request-size limit (413).
//!
//! Against hostile clients (issue 7, point 4):
//! - addresses outside `rpcallowip` (loopback is always allowed) get 403 on every request
//!   (`access`);
//! - the credentials are compared in constant time (SHA-256 of both sides, then `subtle`), and a
//!   wrong password is answered 401 after 250 ms, slept asynchronously so other clients go on;
//! - at most `max_connections` connections are open at once: further ones wait in the listen
//!   backlog (logged);
//! - at most `work_queue` requests are handled at once: further ones get 503 "Work queue depth
//!   exceeded" (logged), as MultiChain 2.x does with a full work queue;
//! - a client must send a request's head within `timeout` (slowloris), its body within
//!   `timeout` (408 otherwise), and read the reply without stalling for `timeout`; an idle
//!   kept-alive connection is closed after `timeout`.

use crate::rpc::access::AllowList;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, DefaultBodyLimit, FromRequest, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use futures::future::BoxFuture;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use subtle::ConstantTimeEq;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::{Semaphore, watch};

/// How long a failed login waits before its 401 (bitcoind's 250 ms).
pub const FAILED_LOGIN_DELAY: Duration = Duration::from_millis(250);

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

/// Per-server limits on what clients may hold (see the module documentation).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Connections open at once; at the limit new connections wait to be accepted.
    pub max_connections: usize,
    /// Requests handled at once (authenticated, body being read or call running); beyond: 503.
    pub work_queue: usize,
    /// Longest wait for a request head, a request body, an idle kept-alive connection's next
    /// request, or a stalled write of the reply.
    pub timeout: Duration,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_connections: 128,
            work_queue: 64,
            timeout: Duration::from_secs(30),
        }
    }
}

/// What the server needs: credentials, the chain name, the dispatcher's limits and who may
/// connect.
#[derive(Clone)]
pub struct ServerConfig {
    pub user: String,
    pub password: String,
    pub chain_name: String,
    pub max_body_bytes: usize,
    pub server_name: String,
    pub allow: AllowList,
    pub limits: Limits,
}

#[derive(Clone)]
struct Ctx {
    config: Arc<ServerConfig>,
    /// SHA-256 of `user:password`, what a request's credentials are compared with.
    credential: [u8; 32],
    work: Arc<Semaphore>,
    dispatch: Dispatch,
}

/// The router: every path, POST only.
pub fn router(config: ServerConfig, dispatch: Dispatch) -> Router {
    let limit = config.max_body_bytes;
    let credential = Sha256::digest(format!("{}:{}", config.user, config.password)).into();
    let ctx = Ctx {
        work: Arc::new(Semaphore::new(config.limits.work_queue.max(1))),
        config: Arc::new(config),
        credential,
        dispatch,
    };
    Router::new()
        .fallback(handle)
        .with_state(ctx)
        .layer(DefaultBodyLimit::max(limit))
}

/// Serves on every listener until `shutdown` resolves; then stops accepting, lets the requests
/// in progress finish and closes idle connections.
pub async fn serve(
    listeners: Vec<tokio::net::TcpListener>,
    config: ServerConfig,
    dispatch: Dispatch,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let limits = config.limits.clone();
    let allow = Arc::new(config.allow.clone());
    let app = router(config, dispatch);
    let max = limits.max_connections.max(1);
    let open = Arc::new(Semaphore::new(max));
    let (stop_tx, stop_rx) = watch::channel(false);
    let accepting: Vec<_> = listeners
        .into_iter()
        .map(|listener| {
            tokio::spawn(accept_loop(
                listener,
                app.clone(),
                allow.clone(),
                open.clone(),
                limits.clone(),
                stop_rx.clone(),
            ))
        })
        .collect();
    shutdown.await;
    let _ = stop_tx.send(true);
    for task in accepting {
        let _ = task.await;
    }
    // Every connection holds a permit until it is closed.
    let _ = open.acquire_many(max as u32).await;
    Ok(())
}

/// Resolves once the server is stopping.
async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}

async fn accept_loop(
    listener: tokio::net::TcpListener,
    app: Router,
    allow: Arc<AllowList>,
    open: Arc<Semaphore>,
    limits: Limits,
    mut stop: watch::Receiver<bool>,
) {
    let mut last_warning: Option<Instant> = None;
    loop {
        let permit = match open.clone().try_acquire_owned() {
            Ok(p) => p,
            Err(_) => {
                if last_warning.is_none_or(|t| t.elapsed() >= Duration::from_secs(10)) {
                    tracing::warn!(
                        "JSON-RPC: {} connections are open (the -rpcmaxconnections limit); new connections wait",
                        limits.max_connections
                    );
                    last_warning = Some(Instant::now());
                }
                tokio::select! {
                    p = open.clone().acquire_owned() => match p {
                        Ok(p) => p,
                        Err(_) => return,
                    },
                    _ = stopped(&mut stop) => return,
                }
            }
        };
        let (stream, peer) = tokio::select! {
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(e) => {
                    // Out of file descriptors and the like: wait instead of spinning.
                    tracing::warn!("JSON-RPC: accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = stopped(&mut stop) => return,
        };
        let _ = stream.set_nodelay(true);
        let (app, allow, limits, stop) = (app.clone(), allow.clone(), limits.clone(), stop.clone());
        tokio::spawn(async move {
            serve_connection(stream, peer, app, &allow, &limits, stop).await;
            drop(permit);
        });
    }
}

/// 403 for an address outside `rpcallowip` (bitcoind answers so before reading anything).
fn forbidden() -> Response {
    let mut resp = (StatusCode::FORBIDDEN, "403 Forbidden\n").into_response();
    resp.headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    resp
}

async fn serve_connection(
    stream: tokio::net::TcpStream,
    peer: SocketAddr,
    app: Router,
    allow: &AllowList,
    limits: &Limits,
    mut stop: watch::Receiver<bool>,
) {
    let allowed = allow.allows(peer.ip());
    if !allowed {
        tracing::warn!(
            "JSON-RPC: refused a connection from {} (not allowed by -rpcallowip)",
            peer.ip()
        );
    }
    let service = hyper::service::service_fn(move |mut req: hyper::Request<_>| {
        let app = app.clone();
        async move {
            if !allowed {
                return Ok::<_, std::convert::Infallible>(forbidden());
            }
            req.extensions_mut().insert(ConnectInfo(peer));
            tower::ServiceExt::oneshot(app, req).await
        }
    });
    let io = hyper_util::rt::TokioIo::new(WriteTimeout::new(stream, limits.timeout));
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(limits.timeout)
        .keep_alive(allowed);
    let conn = builder.serve_connection(io, service);
    tokio::pin!(conn);
    let mut stopping = false;
    loop {
        tokio::select! {
            r = conn.as_mut() => {
                if let Err(e) = r {
                    tracing::debug!("JSON-RPC: connection from {peer} closed: {e}");
                }
                return;
            }
            _ = stopped(&mut stop), if !stopping => {
                stopping = true;
                conn.as_mut().graceful_shutdown();
            }
        }
    }
}

/// A stream whose writes fail once one has been stalled for `timeout` (a client that does not
/// read its reply cannot hold the connection).
struct WriteTimeout<S> {
    inner: S,
    timeout: Duration,
    stalled: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl<S> WriteTimeout<S> {
    fn new(inner: S, timeout: Duration) -> WriteTimeout<S> {
        WriteTimeout {
            inner,
            timeout,
            stalled: None,
        }
    }

    /// After the inner stream answered `poll`: clears the timer on progress, starts it on a
    /// stall, and fails once it has run out.
    fn watch<T>(
        &mut self,
        poll: Poll<std::io::Result<T>>,
        cx: &mut Context<'_>,
    ) -> Poll<std::io::Result<T>> {
        if poll.is_ready() {
            self.stalled = None;
            return poll;
        }
        let timeout = self.timeout;
        let timer = self
            .stalled
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(timeout)));
        if timer.as_mut().poll(cx).is_ready() {
            self.stalled = None;
            return Poll::Ready(Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "the client stopped reading its reply",
            )));
        }
        Poll::Pending
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for WriteTimeout<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for WriteTimeout<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let this = self.get_mut();
        let poll = Pin::new(&mut this.inner).poll_write(cx, buf);
        this.watch(poll, cx)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let this = self.get_mut();
        let poll = Pin::new(&mut this.inner).poll_write_vectored(cx, bufs);
        this.watch(poll, cx)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        let poll = Pin::new(&mut this.inner).poll_flush(cx);
        this.watch(poll, cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        let poll = Pin::new(&mut this.inner).poll_shutdown(cx);
        this.watch(poll, cx)
    }
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

/// Whether `given` (the decoded `user:password` of a request) is the expected credential,
/// whose SHA-256 is `expected`. Both sides are hashed first, so the comparison takes the same
/// time whatever the lengths and wherever the first difference is, and `ct_eq` compares the
/// digests without an early exit.
fn credential_matches(given: &[u8], expected: &[u8; 32]) -> bool {
    let given = Sha256::digest(given);
    bool::from(given.as_slice().ct_eq(expected.as_slice()))
}

fn authorized(headers: &HeaderMap, expected: &[u8; 32]) -> bool {
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
    credential_matches(&decoded, expected)
}

fn peer_of(req: &Request) -> String {
    req.extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip().to_string())
        .unwrap_or_else(|| "an unknown address".into())
}

async fn handle(State(ctx): State<Ctx>, req: Request) -> Response {
    let server = ctx.config.server_name.clone();
    if req.method() != Method::POST {
        return (
            StatusCode::METHOD_NOT_ALLOWED,
            "JSONRPC server handles only POST requests\n",
        )
            .into_response();
    }
    if !authorized(req.headers(), &ctx.credential) {
        if req.headers().contains_key(header::AUTHORIZATION) {
            tracing::warn!(
                "JSON-RPC: incorrect password attempt from {}",
                peer_of(&req)
            );
            // An async sleep: only this request waits.
            tokio::time::sleep(FAILED_LOGIN_DELAY).await;
        }
        let mut resp = (StatusCode::UNAUTHORIZED, "401 Unauthorized\n").into_response();
        resp.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Basic realm=\"jsonrpc\""),
        );
        return resp;
    }
    let Ok(_working) = ctx.work.clone().try_acquire_owned() else {
        tracing::warn!(
            "JSON-RPC: request from {} rejected because {} requests are being handled (the -rpcworkqueue limit)",
            peer_of(&req),
            ctx.config.limits.work_queue
        );
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            "Work queue depth exceeded\n",
        )
            .into_response();
    };
    let peer = peer_of(&req);
    let body = match tokio::time::timeout(ctx.config.limits.timeout, Bytes::from_request(req, &()))
        .await
    {
        Ok(Ok(body)) => body,
        Ok(Err(rejection)) => return rejection.into_response(),
        Err(_) => {
            tracing::info!(
                "JSON-RPC: closing the connection from {peer}: the request body did not arrive within {:?}",
                ctx.config.limits.timeout
            );
            let mut resp = (StatusCode::REQUEST_TIMEOUT, "408 Request Timeout\n").into_response();
            resp.headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
            return resp;
        }
    };
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

    fn config(limits: Limits) -> ServerConfig {
        ServerConfig {
            user: "multichainrpc".into(),
            password: "pw".into(),
            chain_name: "energybc".into(),
            max_body_bytes: 1024,
            server_name: "wattle-json-rpc/test".into(),
            allow: AllowList::default(),
            limits,
        }
    }

    fn dispatch() -> Dispatch {
        Arc::new(|method: String, params: Vec<Value>| {
            Box::pin(async move {
                match method.as_str() {
                    "echo" => Ok(Value::Array(params)),
                    "fail" => Err(RpcError::new(code::INVALID_PARAMETER, "bad")),
                    // A reply far larger than any socket buffer.
                    "big" => Ok(Value::String("x".repeat(64 << 20))),
                    _ => Err(RpcError::new(code::METHOD_NOT_FOUND, "Method not found")),
                }
            })
        })
    }

    fn app() -> Router {
        router(config(Limits::default()), dispatch())
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

    // ---- Hostile clients, over real sockets -------------------------------------------------

    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpStream;

    /// A running server on 127.0.0.1 and the way to stop it.
    struct Running {
        port: u16,
        stop: Option<tokio::sync::oneshot::Sender<()>>,
        task: tokio::task::JoinHandle<std::io::Result<()>>,
    }

    impl Running {
        async fn start(limits: Limits) -> Running {
            let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
                .await
                .unwrap();
            let port = listener.local_addr().unwrap().port();
            let (tx, rx) = tokio::sync::oneshot::channel::<()>();
            let task = tokio::spawn(serve(vec![listener], config(limits), dispatch(), async {
                let _ = rx.await;
            }));
            Running {
                port,
                stop: Some(tx),
                task,
            }
        }

        async fn connect(&self) -> TcpStream {
            TcpStream::connect(("127.0.0.1", self.port)).await.unwrap()
        }

        /// Stops the server and checks that it finishes promptly.
        async fn stop(mut self) {
            let _ = self.stop.take().unwrap().send(());
            tokio::time::timeout(Duration::from_secs(5), &mut self.task)
                .await
                .expect("the server stops within 5 s")
                .unwrap()
                .unwrap();
        }
    }

    fn basic(credential: &str) -> String {
        base64::engine::general_purpose::STANDARD.encode(credential)
    }

    fn request(body: &str, credential: &str, keep_alive: bool) -> String {
        format!(
            "POST / HTTP/1.1\r\nHost: x\r\nConnection: {}\r\nAuthorization: Basic {}\r\nContent-Length: {}\r\n\r\n{body}",
            if keep_alive { "keep-alive" } else { "close" },
            basic(credential),
            body.len()
        )
    }

    const CALL: &str = r#"{"method":"echo","params":[1],"id":1}"#;

    /// Sends one `Connection: close` request and reads until the server closes: (status, text).
    async fn exchange(port: u16, raw: &str) -> (u16, String) {
        let mut s = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
        s.write_all(raw.as_bytes()).await.unwrap();
        read_all(&mut s).await
    }

    async fn read_all(s: &mut TcpStream) -> (u16, String) {
        let mut out = Vec::new();
        let _ = tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut out))
            .await
            .expect("the reply comes within 10 s");
        let text = String::from_utf8_lossy(&out).into_owned();
        let status = text
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        (status, text)
    }

    /// Whether the server closed `s` (EOF or reset) within `within`, ignoring anything it sent.
    async fn closed_within(s: &mut TcpStream, within: Duration) -> bool {
        let mut buf = [0u8; 4096];
        let deadline = tokio::time::Instant::now() + within;
        loop {
            match tokio::time::timeout_at(deadline, s.read(&mut buf)).await {
                Err(_) => return false,
                Ok(Ok(0)) | Ok(Err(_)) => return true,
                Ok(Ok(_)) => {}
            }
        }
    }

    #[test]
    fn credentials_compare_by_digest() {
        let expected: [u8; 32] = Sha256::digest(b"multichainrpc:pw").into();
        assert!(credential_matches(b"multichainrpc:pw", &expected));
        for wrong in [
            &b"multichainrpc:pX"[..],
            b"multichainrpc:p",
            b"multichainrpc:pww",
            b"",
            b"Multichainrpc:pw",
            b"multichainrpc:pw\0",
        ] {
            assert!(!credential_matches(wrong, &expected), "{wrong:?}");
        }
    }

    /// A wrong password waits 250 ms before its 401, but the wait is asynchronous: on this
    /// single-threaded runtime, eight failed logins at once still finish in about 250 ms, and a
    /// good request sent meanwhile is answered at once. A blocking sleep would serialise them.
    #[tokio::test]
    async fn failed_logins_are_delayed_without_blocking_others() {
        let server = Running::start(Limits::default()).await;
        let port = server.port;
        let t0 = Instant::now();
        let bad: Vec<_> = (0..8)
            .map(|i| {
                tokio::spawn(async move {
                    let (status, text) = exchange(
                        port,
                        &request(CALL, &format!("multichainrpc:wrong{i}"), false),
                    )
                    .await;
                    (status, text, t0.elapsed())
                })
            })
            .collect();
        tokio::time::sleep(Duration::from_millis(50)).await;
        let t1 = Instant::now();
        let (status, text) = exchange(port, &request(CALL, "multichainrpc:pw", false)).await;
        let good_took = t1.elapsed();
        assert_eq!(status, 200, "{text}");
        assert!(
            good_took < Duration::from_millis(150),
            "a good request waited {good_took:?} behind failed logins"
        );
        for b in bad {
            let (status, text, took) = b.await.unwrap();
            assert_eq!(status, 401, "{text}");
            assert!(
                text.contains("WWW-Authenticate: Basic realm=\"jsonrpc\"")
                    || text.contains("www-authenticate: Basic realm=\"jsonrpc\""),
                "{text}"
            );
            assert!(
                took >= FAILED_LOGIN_DELAY,
                "a failed login answered in {took:?}"
            );
        }
        let all = t0.elapsed();
        assert!(
            all < Duration::from_millis(800),
            "8 concurrent failed logins took {all:?}: the delay blocks"
        );
        server.stop().await;
    }

    /// An address outside rpcallowip gets 403 on every request, before any authentication;
    /// an allowed one is served.
    #[tokio::test]
    async fn addresses_outside_rpcallowip_get_403() {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
            .await
            .unwrap();
        let port = listener.local_addr().unwrap().port();
        let allow = AllowList::new(crate::rpc::access::Subnet::parse_list("10.0.0.0/8").unwrap());
        let app = router(config(Limits::default()), dispatch());
        // The connection really comes from 127.0.0.1; the server is told it comes from `peer`.
        for (peer, want) in [
            ("198.51.100.7:5000", 403),
            ("10.1.2.3:5000", 200),
            ("[::ffff:10.9.9.9]:1", 200),
            ("[fd00::1]:1", 403),
        ] {
            let client = tokio::spawn(exchange(
                port,
                request(CALL, "multichainrpc:pw", false).leak(),
            ));
            let (stream, _) = listener.accept().await.unwrap();
            let (_tx, rx) = watch::channel(false);
            serve_connection(
                stream,
                peer.parse().unwrap(),
                app.clone(),
                &allow,
                &Limits::default(),
                rx,
            )
            .await;
            let (status, text) = client.await.unwrap();
            assert_eq!(status, want, "{peer}: {text}");
            if want == 403 {
                assert!(
                    !text.contains("\"result\""),
                    "{peer}: a refused call ran: {text}"
                );
            }
        }
    }

    /// With the work queue full (one request whose body is still coming), another request gets
    /// 503 "Work queue depth exceeded"; once the first completes, requests are served again.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_full_work_queue_answers_503() {
        let server = Running::start(Limits {
            work_queue: 1,
            ..Limits::default()
        })
        .await;
        let full = request(CALL, "multichainrpc:pw", false);
        let (head, body) = full.split_at(full.len() - 10);
        // Should the probe overtake the holder and take the slot first, the holder gets the
        // 503: try again with a new one.
        let mut found = None;
        for _ in 0..10 {
            let mut holder = server.connect().await;
            holder.write_all(head.as_bytes()).await.unwrap();
            tokio::time::sleep(Duration::from_millis(100)).await;
            let (status, text) = exchange(server.port, &full).await;
            if status == 503 {
                found = Some((holder, text));
                break;
            }
            assert_eq!(status, 200, "{text}");
        }
        let (mut holder, text) =
            found.expect("a second request while the first holds the only slot gets 503");
        assert!(text.contains("Work queue depth exceeded"), "{text}");
        holder.write_all(body.as_bytes()).await.unwrap();
        let (status, text) = read_all(&mut holder).await;
        assert_eq!(status, 200, "the held request completes: {text}");
        let (status, text) = exchange(server.port, &full).await;
        assert_eq!(status, 200, "served again after the slot is free: {text}");
        server.stop().await;
    }

    /// At the connection limit new connections wait (they are not refused) and are served as
    /// soon as one closes.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn connections_beyond_the_limit_wait() {
        let server = Running::start(Limits {
            max_connections: 2,
            ..Limits::default()
        })
        .await;
        let mut idle = vec![server.connect().await, server.connect().await];
        let mut waiting = server.connect().await;
        waiting
            .write_all(request(CALL, "multichainrpc:pw", false).as_bytes())
            .await
            .unwrap();
        let mut buf = [0u8; 64];
        assert!(
            tokio::time::timeout(Duration::from_millis(400), waiting.read(&mut buf))
                .await
                .is_err(),
            "a third connection was served while two were open (limit 2)"
        );
        drop(idle.pop());
        let t = Instant::now();
        let (status, text) = read_all(&mut waiting).await;
        assert_eq!(status, 200, "{text}");
        assert!(
            t.elapsed() < Duration::from_secs(2),
            "served {:?} after a slot freed",
            t.elapsed()
        );
        drop(idle);
        server.stop().await;
    }

    /// Slowloris: a head dribbled in byte by byte, a body that stops half way, an idle
    /// kept-alive connection and a client that never reads its reply are all cut off after the
    /// timeout; the server is still there for others.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn slow_clients_are_cut_off_after_the_timeout() {
        let timeout = Duration::from_millis(300);
        let server = Running::start(Limits {
            max_connections: 4,
            timeout,
            ..Limits::default()
        })
        .await;
        // A head dribbled in, one byte every 50 ms, forever.
        let mut slow = server.connect().await;
        let dribble = "POST / HTTP/1.1\r\nHost: x\r\nX-Padding: ".to_string() + &"a".repeat(1000);
        let t = Instant::now();
        let mut cut = false;
        for b in dribble.bytes() {
            if slow.write_all(&[b]).await.is_err() {
                cut = true;
                break;
            }
            if closed_within(&mut slow, Duration::from_millis(50)).await {
                cut = true;
                break;
            }
            assert!(
                t.elapsed() < Duration::from_secs(5),
                "a dribbled head held its connection for 5 s"
            );
        }
        assert!(cut, "a dribbled head was never cut off");
        assert!(
            t.elapsed() >= timeout,
            "cut off before the timeout: {:?}",
            t.elapsed()
        );

        // A body that stops: 408 after the timeout.
        let full = request(CALL, "multichainrpc:pw", false);
        let mut stuck = server.connect().await;
        stuck
            .write_all(&full.as_bytes()[..full.len() - 5])
            .await
            .unwrap();
        let t = Instant::now();
        let (status, text) = read_all(&mut stuck).await;
        assert_eq!(status, 408, "{text}");
        assert!(t.elapsed() < Duration::from_secs(3), "{:?}", t.elapsed());

        // An idle kept-alive connection: one request, then nothing.
        let mut idle = server.connect().await;
        idle.write_all(request(CALL, "multichainrpc:pw", true).as_bytes())
            .await
            .unwrap();
        assert!(
            closed_within(&mut idle, Duration::from_secs(3)).await,
            "an idle connection stayed open"
        );

        server.stop().await;
    }

    /// A client that asks for a reply larger than the socket buffers and never reads it: its
    /// stalled write is cut after the timeout, which frees the only connection slot.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_client_that_never_reads_its_reply_is_cut_off() {
        let server = Running::start(Limits {
            max_connections: 1,
            timeout: Duration::from_millis(300),
            ..Limits::default()
        })
        .await;
        let mut deaf = server.connect().await;
        deaf.write_all(request(r#"{"method":"big","id":1}"#, "multichainrpc:pw", false).as_bytes())
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(100)).await;
        let t = Instant::now();
        let mut next = server.connect().await;
        next.write_all(request(CALL, "multichainrpc:pw", false).as_bytes())
            .await
            .unwrap();
        let mut out = Vec::new();
        tokio::time::timeout(Duration::from_secs(5), next.read_to_end(&mut out))
            .await
            .expect("the next client is served once the deaf one is cut off")
            .unwrap();
        assert!(
            String::from_utf8_lossy(&out).starts_with("HTTP/1.1 200"),
            "{}",
            String::from_utf8_lossy(&out)
        );
        assert!(
            t.elapsed() >= Duration::from_millis(200),
            "served before the deaf client was cut: {:?}",
            t.elapsed()
        );
        drop(deaf);
        server.stop().await;
    }

    /// Stopping the server does not wait for idle connections.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn stop_closes_idle_connections() {
        let server = Running::start(Limits::default()).await;
        let mut idle = server.connect().await;
        idle.write_all(request(CALL, "multichainrpc:pw", true).as_bytes())
            .await
            .unwrap();
        let mut buf = [0u8; 512];
        let n = idle.read(&mut buf).await.unwrap();
        assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
        let t = Instant::now();
        server.stop().await;
        assert!(
            t.elapsed() < Duration::from_secs(1),
            "stop took {:?}",
            t.elapsed()
        );
    }
}
