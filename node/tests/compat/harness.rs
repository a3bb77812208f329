//! The harness of the compatibility suite: a real `wattled` process in a temporary data
//! directory (killed on drop), a raw HTTP/1.1 client over `std::net::TcpStream` that can send any
//! bytes and returns status, headers and body, and JSON-RPC helpers that check MultiChain's reply
//! envelope on every call (`{"result", "error", "id"}` in that order, the id echoed, the HTTP
//! status that goes with the error code). Every wait is bounded.

use base64::Engine as _;
use serde_json::{Value, json};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tempfile::TempDir;

/// Longest wait for a node to print its RPC port.
const START_TIMEOUT: Duration = Duration::from_secs(40);
/// Longest wait for one HTTP exchange.
pub const IO_TIMEOUT: Duration = Duration::from_secs(30);
/// Longest wait for a transaction to be confirmed.
pub const CONFIRM_TIMEOUT: Duration = Duration::from_secs(30);
/// `target-block-time` of the test chains (seconds): an empty block comes at least this often.
pub const BLOCK_TIME_SECS: u64 = 2;
/// The chain name of every test chain.
pub const CHAIN: &str = "compat";

/// Polls `f` every 50 ms until it returns `Ok`, for at most `timeout`; then panics with `what`
/// and the last state seen.
pub fn wait_until<T>(what: &str, timeout: Duration, mut f: impl FnMut() -> Result<T, String>) -> T {
    let start = Instant::now();
    loop {
        match f() {
            Ok(v) => return v,
            Err(last) if start.elapsed() >= timeout => {
                panic!("timed out after {timeout:?} waiting for {what}; last seen: {last}")
            }
            Err(_) => std::thread::sleep(Duration::from_millis(50)),
        }
    }
}

// ------------------------------------------------------------------------------------------------
// Raw HTTP

/// One HTTP reply as read off the socket.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    /// Header names in lower case, values trimmed, in the order received.
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The body as JSON (panics with the body if it is not JSON).
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| {
            panic!(
                "HTTP {} body is not JSON ({e}): {:?}",
                self.status, self.body
            )
        })
    }
}

/// `Basic base64(user:password)`.
pub fn basic(user: &str, password: &str) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
    )
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Decodes a chunked body; `None` while it is incomplete.
fn dechunk(mut body: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let line_end = find(body, b"\r\n")?;
        let size_text = std::str::from_utf8(&body[..line_end]).ok()?;
        let size = usize::from_str_radix(size_text.split(';').next()?.trim(), 16).ok()?;
        body = &body[line_end + 2..];
        if size == 0 {
            return Some(out);
        }
        if body.len() < size + 2 {
            return None;
        }
        out.extend_from_slice(&body[..size]);
        body = &body[size + 2..];
    }
}

/// Reads one HTTP reply from `stream`: up to `Content-Length`, the last chunk, or EOF.
pub fn read_reply(stream: &mut TcpStream) -> std::io::Result<Reply> {
    let mut raw = Vec::new();
    let mut buf = [0u8; 65536];
    loop {
        if let Some(end) = find(&raw, b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&raw[..end]).into_owned();
            let body = &raw[end + 4..];
            let mut lines = head.split("\r\n");
            let status_line = lines.next().unwrap_or("");
            let status: u16 = status_line
                .split_whitespace()
                .nth(1)
                .and_then(|s| s.parse().ok())
                .ok_or_else(|| {
                    std::io::Error::other(format!("bad status line: {status_line:?}"))
                })?;
            let headers: Vec<(String, String)> = lines
                .filter_map(|l| l.split_once(':'))
                .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
                .collect();
            let get = |n: &str| headers.iter().find(|(k, _)| k == n).map(|(_, v)| v.clone());
            let complete = if let Some(len) = get("content-length") {
                let len: usize = len.parse().map_err(std::io::Error::other)?;
                (body.len() >= len).then(|| body[..len].to_vec())
            } else if get("transfer-encoding").is_some_and(|v| v.contains("chunked")) {
                dechunk(body)
            } else {
                None
            };
            if let Some(body) = complete {
                return Ok(Reply {
                    status,
                    headers,
                    body: String::from_utf8_lossy(&body).into_owned(),
                });
            }
        }
        let n = stream.read(&mut buf)?;
        if n == 0 {
            // EOF: whatever came is the reply (a body without length runs to the close).
            let end = find(&raw, b"\r\n\r\n")
                .ok_or_else(|| std::io::Error::other("connection closed before the headers"))?;
            let head = String::from_utf8_lossy(&raw[..end]).into_owned();
            let mut lines = head.split("\r\n");
            let status = lines
                .next()
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|s| s.parse().ok())
                .ok_or_else(|| std::io::Error::other("bad status line"))?;
            let headers = lines
                .filter_map(|l| l.split_once(':'))
                .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
                .collect();
            return Ok(Reply {
                status,
                headers,
                body: String::from_utf8_lossy(&raw[end + 4..]).into_owned(),
            });
        }
        raw.extend_from_slice(&buf[..n]);
    }
}

/// Connects to the node's RPC port with read/write timeouts.
pub fn connect(port: u16) -> TcpStream {
    let stream = TcpStream::connect(("127.0.0.1", port))
        .unwrap_or_else(|e| panic!("connect to 127.0.0.1:{port}: {e}"));
    stream.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    stream.set_write_timeout(Some(IO_TIMEOUT)).unwrap();
    stream
}

/// Sends `request` (complete raw bytes) on a new connection and reads the reply.
pub fn exchange(port: u16, request: &[u8]) -> Reply {
    let mut stream = connect(port);
    stream
        .write_all(request)
        .unwrap_or_else(|e| panic!("write the request: {e}"));
    read_reply(&mut stream).unwrap_or_else(|e| panic!("read the reply: {e}"))
}

/// Builds an HTTP/1.1 request the way multichain-cli does (`Host`, `Connection: close`,
/// `Content-Type`, `Content-Length`, `Accept`, `User-Agent`), plus `headers`.
pub fn request_bytes(method: &str, path: &str, headers: &[(&str, String)], body: &[u8]) -> Vec<u8> {
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\nAccept: application/json\r\nUser-Agent: multichain-json-rpc/compat-test\r\n",
        body.len()
    );
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    let mut out = head.into_bytes();
    out.extend_from_slice(body);
    out
}

// ------------------------------------------------------------------------------------------------
// JSON-RPC

/// A JSON-RPC error as the node sent it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RpcErr {
    pub code: i64,
    pub message: String,
}

/// Checks MultiChain's reply envelope for a single request with `id`: `{"result", "error", "id"}`
/// in that order, the id echoed, `result` null when `error` is set, and the HTTP status that goes
/// with the outcome (200; 400 for -32600, 404 for -32601, 500 otherwise). `status` is `None`
/// inside a batch (the batch itself is 200).
pub fn check_envelope(
    what: &str,
    v: &Value,
    id: &Value,
    status: Option<u16>,
) -> Result<Value, RpcErr> {
    let obj = v
        .as_object()
        .unwrap_or_else(|| panic!("{what}: the reply is not an object: {v}"));
    let keys: Vec<&str> = obj.keys().map(String::as_str).collect();
    assert_eq!(keys, ["result", "error", "id"], "{what}: reply keys: {v}");
    assert_eq!(&obj["id"], id, "{what}: the id was not echoed: {v}");
    match &obj["error"] {
        Value::Null => {
            if let Some(s) = status {
                assert_eq!(s, 200, "{what}: a successful call must be HTTP 200: {v}");
            }
            Ok(obj["result"].clone())
        }
        Value::Object(e) => {
            let ekeys: Vec<&str> = e.keys().map(String::as_str).collect();
            assert_eq!(ekeys, ["code", "message"], "{what}: error keys: {v}");
            assert_eq!(
                obj["result"],
                Value::Null,
                "{what}: result must be null on error: {v}"
            );
            let code = e["code"]
                .as_i64()
                .unwrap_or_else(|| panic!("{what}: error code is not an integer: {v}"));
            let message = e["message"]
                .as_str()
                .unwrap_or_else(|| panic!("{what}: error message is not a string: {v}"))
                .to_string();
            if let Some(s) = status {
                let want = match code {
                    -32600 => 400,
                    -32601 => 404,
                    _ => 500,
                };
                assert_eq!(s, want, "{what}: HTTP status for error {code}: {v}");
            }
            Err(RpcErr { code, message })
        }
        other => panic!("{what}: error is neither null nor an object: {other}"),
    }
}

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// Connection settings of one node's JSON-RPC server (cheap to clone into threads).
#[derive(Clone, Debug)]
pub struct Endpoint {
    pub port: u16,
    pub user: String,
    pub password: String,
    pub chain: String,
}

impl Endpoint {
    pub fn auth(&self) -> String {
        basic(&self.user, &self.password)
    }

    /// POSTs `body` to `/` with the right credentials.
    pub fn post(&self, body: &str) -> Reply {
        exchange(
            self.port,
            &request_bytes(
                "POST",
                "/",
                &[("Authorization", self.auth())],
                body.as_bytes(),
            ),
        )
    }

    /// Calls `method` with a fresh numeric id and the chain name, as multichain-cli 1.0 does,
    /// and checks the envelope.
    pub fn call(&self, method: &str, params: Value) -> Result<Value, RpcErr> {
        let id = json!(NEXT_ID.fetch_add(1, Ordering::Relaxed));
        let body = json!({"method": method, "params": params, "id": id, "chain_name": self.chain});
        let reply = self.post(&body.to_string());
        assert!(
            reply.body.ends_with('\n'),
            "{method}: the reply does not end with a newline: {:?}",
            reply.body
        );
        assert_eq!(
            reply.header("content-type"),
            Some("application/json"),
            "{method}: content type"
        );
        check_envelope(
            &format!("{method} {params}"),
            &reply.json(),
            &id,
            Some(reply.status),
        )
    }

    /// A call that must succeed.
    pub fn ok(&self, method: &str, params: Value) -> Value {
        self.call(method, params.clone())
            .unwrap_or_else(|e| panic!("{method} {params} failed: {e:?}"))
    }

    /// A call that must fail: its error.
    pub fn fail(&self, method: &str, params: Value) -> RpcErr {
        match self.call(method, params.clone()) {
            Ok(v) => panic!("{method} {params} succeeded with {v}, expected an error"),
            Err(e) => e,
        }
    }

    /// A call that must fail with exactly `code` and `message`.
    #[track_caller]
    pub fn expect_err(&self, method: &str, params: Value, code: i64, message: &str) {
        let e = self.fail(method, params.clone());
        assert_eq!(
            (e.code, e.message.as_str()),
            (code, message),
            "{method} {params}: wrong error"
        );
    }

    /// A call that must fail with `code` and a message starting with `prefix`.
    #[track_caller]
    pub fn expect_err_prefix(&self, method: &str, params: Value, code: i64, prefix: &str) {
        let e = self.fail(method, params.clone());
        assert!(
            e.code == code && e.message.starts_with(prefix),
            "{method} {params}: expected error {code} \"{prefix}...\", got {e:?}"
        );
    }

    /// A call that must return a txid (64 hex digits).
    pub fn txid(&self, method: &str, params: Value) -> String {
        let v = self.ok(method, params.clone());
        let t = v
            .as_str()
            .unwrap_or_else(|| panic!("{method} {params} returned {v}, expected a txid"));
        assert!(
            is_txid(t),
            "{method} {params} returned {t:?}, expected a txid"
        );
        t.to_string()
    }

    pub fn height(&self) -> u64 {
        let v = self.ok("getblockcount", json!([]));
        v.as_u64()
            .unwrap_or_else(|| panic!("getblockcount returned {v}"))
    }

    /// The wallet's addresses, first one first (`listaddresses`).
    pub fn addresses(&self) -> Vec<String> {
        self.ok("listaddresses", json!([]))
            .as_array()
            .expect("listaddresses returns an array")
            .iter()
            .map(|a| a["address"].as_str().expect("address").to_string())
            .collect()
    }

    /// The node's first wallet address (the genesis admin on the creator).
    pub fn address(&self) -> String {
        self.addresses().remove(0)
    }

    /// Waits until `txid` has at least one confirmation.
    pub fn wait_confirmed(&self, txid: &str) {
        wait_until(
            &format!("{txid} to be confirmed"),
            CONFIRM_TIMEOUT,
            || match self.call("getrawtransaction", json!([txid, 1])) {
                Ok(v) if v["confirmations"].as_u64().unwrap_or(0) >= 1 => Ok(()),
                other => Err(format!("{other:?}")),
            },
        )
    }

    /// Waits until the mempool is empty (everything sent so far is in a block).
    pub fn wait_mempool_empty(&self) {
        wait_until("an empty mempool", CONFIRM_TIMEOUT, || {
            let v = self.ok("getmempoolinfo", json!([]));
            if v["size"] == json!(0) {
                Ok(())
            } else {
                Err(v.to_string())
            }
        })
    }
}

pub fn is_txid(t: &str) -> bool {
    t.len() == 64
        && t.bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
}

/// The keys of a JSON object, in order.
pub fn keys(v: &Value) -> Vec<String> {
    v.as_object()
        .unwrap_or_else(|| panic!("not an object: {v}"))
        .keys()
        .cloned()
        .collect()
}

// ------------------------------------------------------------------------------------------------
// The node process

type Lines = Arc<Mutex<Vec<String>>>;

fn capture(stream: impl Read + Send + 'static, into: Lines) {
    std::thread::spawn(move || {
        for line in BufReader::new(stream).lines() {
            match line {
                Ok(l) => into.lock().unwrap().push(l),
                Err(_) => break,
            }
        }
    });
}

/// Writes `ROOT/compat/params.toml`: default parameters (one admin, who is the only miner) with
/// `target-block-time` = `BLOCK_TIME_SECS` and random address bytes, as `wattle-util create` does.
fn create_chain(root: &Path, adjust: impl FnOnce(&mut wattle_ledger::ChainParams)) {
    let mut params = wattle_ledger::ChainParams::new(CHAIN);
    let mut bytes = [0u8; 7];
    rand::fill(&mut bytes);
    params.address_pubkeyhash_version = [0x00, bytes[0], bytes[1], bytes[2]];
    params.address_checksum_value = [bytes[3], bytes[4], bytes[5], bytes[6]];
    wattle_node::params_file::set(
        &mut params,
        "target-block-time",
        &BLOCK_TIME_SECS.to_string(),
    )
    .expect("target-block-time is a parameter");
    adjust(&mut params);
    params.validate().expect("test chain parameters are valid");
    std::fs::create_dir_all(root.join(CHAIN)).expect("chain directory");
    std::fs::write(
        root.join(CHAIN).join("params.toml"),
        wattle_node::params_file::render(&params),
    )
    .expect("write params.toml");
}

/// One `wattled` process with its own temporary data directory; killed on drop.
pub struct Node {
    pub label: String,
    dir: TempDir,
    child: Option<Child>,
    stdout: Lines,
    stderr: Lines,
    pub rpc: Endpoint,
    pub p2p_port: u16,
}

impl std::ops::Deref for Node {
    type Target = Endpoint;
    fn deref(&self) -> &Endpoint {
        &self.rpc
    }
}

impl Node {
    /// Creates a new chain and starts its first node (whose wallet holds the genesis admin).
    pub fn create(label: &str) -> Node {
        Node::create_with(label, |_| {})
    }

    /// Like `create`, with the chain parameters adjusted by `adjust` first.
    pub fn create_with(label: &str, adjust: impl FnOnce(&mut wattle_ledger::ChainParams)) -> Node {
        let dir = tempfile::tempdir().expect("temp dir");
        create_chain(dir.path(), adjust);
        Node::spawn(label, dir, CHAIN, &[])
    }

    /// Creates a new chain, lets `prepare` write into its chain directory (e.g. a `wattle.conf`)
    /// and starts its first node with the extra command-line `args`.
    pub fn create_custom(label: &str, prepare: impl FnOnce(&Path), args: &[String]) -> Node {
        let dir = tempfile::tempdir().expect("temp dir");
        create_chain(dir.path(), |_| {});
        prepare(&dir.path().join(CHAIN));
        Node::spawn(label, dir, CHAIN, args)
    }

    /// Starts a node that joins `seed` (`CHAIN@HOST:PORT`) with a fresh wallet.
    pub fn join(label: &str, seed: &str) -> Node {
        let dir = tempfile::tempdir().expect("temp dir");
        Node::spawn(label, dir, seed, &[])
    }

    fn spawn(label: &str, dir: TempDir, chain_arg: &str, args: &[String]) -> Node {
        let stdout = Lines::default();
        let stderr = Lines::default();
        let mut child = Command::new(env!("CARGO_BIN_EXE_wattled"))
            .arg(chain_arg)
            .arg(format!("-datadir={}", dir.path().display()))
            .args(["-port=0", "-rpcport=0"])
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn wattled");
        capture(child.stdout.take().unwrap(), stdout.clone());
        capture(child.stderr.take().unwrap(), stderr.clone());
        let mut node = Node {
            label: label.to_string(),
            dir,
            child: Some(child),
            stdout,
            stderr,
            rpc: Endpoint {
                port: 0,
                user: String::new(),
                password: String::new(),
                chain: CHAIN.to_string(),
            },
            p2p_port: 0,
        };
        let port = wait_until(
            &format!("{label} to print its RPC port"),
            START_TIMEOUT,
            || {
                if let Some(status) = node
                    .child
                    .as_mut()
                    .and_then(|c| c.try_wait().ok().flatten())
                {
                    panic!(
                        "{label} exited during start-up with {status}\n{}",
                        node.diagnostics()
                    );
                }
                node.stdout_lines()
                    .iter()
                    .find_map(|l| {
                        l.strip_prefix("Listening for API requests on port ")?
                            .split_whitespace()
                            .next()?
                            .parse::<u16>()
                            .ok()
                    })
                    .ok_or_else(|| format!("stdout so far: {:?}", node.stdout_lines()))
            },
        );
        let conf = wattle_node::datadir::RpcConf::read(&node.chain_dir().join("wattle.conf"))
            .unwrap_or_else(|e| panic!("{label}: {e}"));
        node.rpc.port = port;
        node.rpc.user = conf.user;
        node.rpc.password = conf.password;
        let info = node.ok("getinfo", json!([]));
        node.p2p_port = info["port"]
            .as_u64()
            .and_then(|p| u16::try_from(p).ok())
            .unwrap_or_else(|| panic!("{label}: getinfo has no port: {info}"));
        node
    }

    pub fn chain_dir(&self) -> PathBuf {
        self.dir.path().join(CHAIN)
    }

    pub fn stdout_lines(&self) -> Vec<String> {
        self.stdout.lock().unwrap().clone()
    }

    /// `CHAIN@127.0.0.1:PORT`, the seed other nodes join through.
    pub fn seed(&self) -> String {
        format!("{CHAIN}@127.0.0.1:{}", self.p2p_port)
    }

    /// The exit status once the process has exited (waits at most `timeout`).
    pub fn wait_exit(&mut self, timeout: Duration) -> std::process::ExitStatus {
        let label = self.label.clone();
        let child = self.child.as_mut().expect("the node is running");
        let status = wait_until(&format!("{label} to exit"), timeout, || {
            child
                .try_wait()
                .map_err(|e| e.to_string())?
                .ok_or_else(|| "still running".to_string())
        });
        self.child = None;
        status
    }

    /// Whether the process is still running.
    pub fn running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| c.try_wait().ok().flatten().is_none())
    }

    pub fn diagnostics(&self) -> String {
        let log = std::fs::read_to_string(self.chain_dir().join("debug.log")).unwrap_or_default();
        let tail: Vec<&str> = log.lines().rev().take(40).collect();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        format!(
            "---- {} stdout:\n{}\n---- stderr:\n{}\n---- debug.log (last 40 lines):\n{}\n----",
            self.label,
            self.stdout_lines().join("\n"),
            self.stderr.lock().unwrap().join("\n"),
            tail.join("\n")
        )
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("{}", self.diagnostics());
        }
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
