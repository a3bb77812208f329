//! The exchange's REST API over real HTTP against real nodes: three `wattled` processes (admin,
//! producer, consumer) on 127.0.0.1, their three services in this process (`serve` on port 0),
//! and every call made as a browser or script would, with a small blocking HTTP client.
//!
//! `the_paper_trade_through_the_rest_api` walks the paper's flow (connect both sites, request
//! and approve ecoin, issue energy, propose, accept, wait until done, balances moved) and, at the
//! point where each can happen, every bad input: malformed bodies, an unknown index, an ecoin
//! request approved twice, a producer without enough energy, a tampered blob, a consumer without
//! enough ecoin, an offer accepted twice, a register_bid whose transaction is not the completed
//! offer — each a clear 4xx error with nothing changed. It ends by restarting the admin service
//! on its database (every record is still there) and by running the `wattle-exchange` binary
//! against the admin's node until SIGTERM.
//!
//! `the_order_book_through_the_rest_api` trades through the chain's order book (issue 8): the
//! producer sells 10 kWh at 100 ecoin, the consumer buys 3 at 100, 5 at 110 (filled at the
//! resting 100) and 4 at 100 (2 filled, 2 rest as a bid); depth, trades, orders and balances
//! are checked after each step and on every service, then cancelling (someone else's order, a
//! filled one, a bad id, the consumer's own resting bid) and every bad input of the new
//! endpoints. The two scenarios take turns (each runs three nodes).
//!
//! `wattled` is taken from the target directory next to this test (built there with cargo if it
//! is missing or older than the node library, as `cli/tests/paper_session.rs` does).

use serde_json::{Value, json};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};
use tempfile::TempDir;
use wattle_exchange::{Role, ServiceConfig};
use wattle_node::datadir::DataDir;
use wattle_node::rpc::client::RpcClient;

const CHAIN: &str = "energybc";
/// Longest wait for a node to start, a transaction to be mined, a balance to show.
const WAIT: Duration = Duration::from_secs(30);
/// Longest wait for `cargo build` of `wattled` when it is missing.
const BUILD_TIMEOUT: Duration = Duration::from_secs(1200);

// ---------------------------------------------------------------------------------------------
// Polling and processes
// ---------------------------------------------------------------------------------------------

/// Polls `f` every 100 ms until it returns `Ok`, for at most `timeout`; then panics with `what`
/// and the last `Err`.
fn wait_until<T>(what: &str, timeout: Duration, mut f: impl FnMut() -> Result<T, String>) -> T {
    let start = Instant::now();
    loop {
        match f() {
            Ok(v) => return v,
            Err(last) if start.elapsed() >= timeout => {
                panic!("timed out after {timeout:?} waiting for {what}; last seen: {last}")
            }
            Err(_) => std::thread::sleep(Duration::from_millis(100)),
        }
    }
}

fn modified(p: &Path) -> Option<SystemTime> {
    std::fs::metadata(p).and_then(|m| m.modified()).ok()
}

/// `target/<profile>/wattled`, built with cargo if it is missing or older than the newest
/// wattle-node library in `deps/` (then it may predate a change to the node).
fn wattled() -> PathBuf {
    let exe = std::env::current_exe().expect("the test executable's path");
    let deps = exe.parent().expect("the test executable has a directory");
    let profile_dir = if deps.file_name().is_some_and(|n| n == "deps") {
        deps.parent().expect("deps/ has a parent")
    } else {
        deps
    };
    let wattled = profile_dir.join(format!("wattled{}", std::env::consts::EXE_SUFFIX));
    let newest_lib = std::fs::read_dir(profile_dir.join("deps"))
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| {
            let n = e.file_name().to_string_lossy().to_string();
            n.starts_with("libwattle_node-") && n.ends_with(".rlib")
        })
        .filter_map(|e| modified(&e.path()))
        .max();
    let stale = match (modified(&wattled), newest_lib) {
        (None, _) => true,
        (Some(w), Some(l)) => w < l,
        (Some(_), None) => false,
    };
    if stale {
        build_wattled(profile_dir, &wattled);
    }
    wattled
}

fn build_wattled(profile_dir: &Path, wattled: &Path) {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| env!("CARGO").to_string());
    let target_dir = profile_dir.parent().expect("the target directory");
    let profile = match profile_dir.file_name().and_then(|n| n.to_str()) {
        Some("debug") | None => "dev".to_string(),
        Some(other) => other.to_string(),
    };
    let mut cmd = Command::new(&cargo);
    // Cargo gives a test its package's variables (CARGO_MANIFEST_DIR, CARGO_PKG_NAME...). Build
    // scripts such as ring's rerun when those differ in cargo's own environment, so a nested
    // build that inherited them would rebuild the dependency tree (and the next `cargo test`
    // would rebuild it back): the nested cargo gets the environment the outer one had.
    let set_for_tests = [
        "CARGO_MANIFEST_",
        "CARGO_PKG_",
        "CARGO_CRATE_",
        "CARGO_BIN_",
        "CARGO_PRIMARY_PACKAGE",
        "CARGO_TARGET_TMPDIR",
        "CARGO_RUSTC_CURRENT_DIR",
        "OUT_DIR",
    ];
    for (key, _) in std::env::vars_os() {
        if set_for_tests
            .iter()
            .any(|p| key.to_string_lossy().starts_with(p))
        {
            cmd.env_remove(&key);
        }
    }
    let mut child = cmd
        .args([
            "build",
            "-p",
            "wattle-node",
            "--bin",
            "wattled",
            "--profile",
        ])
        .arg(&profile)
        .arg("--target-dir")
        .arg(target_dir)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start cargo build");
    let status = wait_until(
        "cargo build -p wattle-node --bin wattled",
        BUILD_TIMEOUT,
        || {
            child
                .try_wait()
                .ok()
                .flatten()
                .ok_or("building".to_string())
        },
    );
    assert!(
        status.success() && wattled.exists(),
        "{} is missing and `cargo build -p wattle-node --bin wattled` failed ({status})",
        wattled.display()
    );
}

type Lines = Arc<Mutex<Vec<String>>>;

fn capture(stream: impl Read + Send + 'static, into: Lines) {
    std::thread::spawn(move || {
        for line in BufReader::new(stream).lines().map_while(Result::ok) {
            into.lock().unwrap_or_else(|e| e.into_inner()).push(line);
        }
    });
}

/// One `wattled` process in its own data directory (killed on drop, also on panic).
struct Node {
    label: &'static str,
    dir: TempDir,
    child: Child,
    stdout: Lines,
    rpc: RpcClient,
    address: String,
    p2p_port: u16,
}

impl Node {
    /// The admin: creates the chain (2 s empty blocks) and starts its first node.
    fn create(wattled: &Path) -> Node {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut params = wattle_ledger::ChainParams::new(CHAIN);
        wattle_node::params_file::set(&mut params, "target-block-time", "2").expect("param");
        std::fs::create_dir_all(dir.path().join(CHAIN)).expect("chain dir");
        std::fs::write(
            dir.path().join(CHAIN).join("params.toml"),
            wattle_node::params_file::render(&params),
        )
        .expect("params.toml");
        Node::start("admin", wattled, dir, CHAIN)
    }

    /// A site joining through the admin's node (not granted anything yet).
    fn join(label: &'static str, wattled: &Path, seed: &Node) -> Node {
        let dir = tempfile::tempdir().expect("temp dir");
        let at = format!("{CHAIN}@127.0.0.1:{}", seed.p2p_port);
        Node::start(label, wattled, dir, &at)
    }

    fn start(label: &'static str, wattled: &Path, dir: TempDir, chain_arg: &str) -> Node {
        let mut child = Command::new(wattled)
            .arg(chain_arg)
            .arg(format!("-datadir={}", dir.path().display()))
            .args(["-port=0", "-rpcport=0"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("{label}: cannot start {}: {e}", wattled.display()));
        let stdout = Lines::default();
        capture(child.stdout.take().expect("piped"), stdout.clone());
        let rpc_port = wait_until(&format!("{label}'s RPC port"), WAIT, || {
            if let Ok(Some(status)) = child.try_wait() {
                panic!("{label}'s wattled exited during start-up with {status}");
            }
            stdout
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .iter()
                .find_map(|l| {
                    l.strip_prefix("Listening for API requests on port ")?
                        .split_whitespace()
                        .next()?
                        .parse::<u16>()
                        .ok()
                })
                .ok_or("not yet".to_string())
        });
        let mut rpc = RpcClient::from_datadir(
            &DataDir::new(Some(dir.path().to_path_buf()), CHAIN),
            Some(rpc_port),
        )
        .expect("the node's RPC credentials");
        rpc.timeout = Duration::from_secs(20);
        let mut node = Node {
            label,
            dir,
            child,
            stdout,
            rpc,
            address: String::new(),
            p2p_port: 0,
        };
        node.address = node.call("listaddresses", json!([]))[0]["address"]
            .as_str()
            .expect("an address")
            .to_string();
        node.p2p_port = node.call("getinfo", json!([]))["port"]
            .as_u64()
            .and_then(|p| u16::try_from(p).ok())
            .expect("a p2p port");
        node
    }

    fn call(&self, method: &str, params: Value) -> Value {
        self.rpc
            .call(method, params.clone())
            .unwrap_or_else(|e| panic!("{}: {method} {params}: {e}", self.label))
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let log = std::fs::read_to_string(self.dir.path().join(CHAIN).join("debug.log"))
                .unwrap_or_default();
            let tail: Vec<&str> = log.lines().rev().take(30).collect();
            eprintln!(
                "---- {} stdout:\n{}\n---- debug.log (last lines):\n{}",
                self.label,
                self.stdout
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .join("\n"),
                tail.into_iter().rev().collect::<Vec<_>>().join("\n")
            );
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

// ---------------------------------------------------------------------------------------------
// HTTP
// ---------------------------------------------------------------------------------------------

/// One HTTP/1.1 request (`Connection: close`) with a raw body; returns the status and the JSON
/// body (`Value::Null` if it is not JSON).
fn http(method: &str, base: &str, path: &str, body: Option<&str>) -> (u16, Value) {
    let hostport = base.trim_start_matches("http://").trim_end_matches('/');
    let mut s = TcpStream::connect(hostport).unwrap_or_else(|e| panic!("connect {base}: {e}"));
    s.set_read_timeout(Some(Duration::from_secs(90)))
        .expect("timeout");
    let body = body.unwrap_or("");
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: {hostport}\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .expect("send");
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).expect("read the reply");
    let text = String::from_utf8_lossy(&raw).to_string();
    let (head, rest) = text.split_once("\r\n\r\n").expect("an HTTP reply");
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .expect("a status");
    let rest = if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        dechunk(rest)
    } else {
        rest.to_string()
    };
    (status, serde_json::from_str(&rest).unwrap_or(Value::Null))
}

fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = body.split_once("\r\n") {
        match usize::from_str_radix(size.trim(), 16) {
            Ok(n) if n > 0 && rest.len() >= n => {
                out.push_str(&rest[..n]);
                body = rest[n..].trim_start_matches("\r\n");
            }
            _ => break,
        }
    }
    out
}

fn get(base: &str, path: &str) -> (u16, Value) {
    http("GET", base, path, None)
}

fn post(base: &str, path: &str, body: Value) -> (u16, Value) {
    http("POST", base, path, Some(&body.to_string()))
}

/// A call that must succeed: its JSON result.
fn ok(base: &str, path: &str, body: Option<Value>) -> Value {
    let (status, v) = match body {
        Some(b) => post(base, path, b),
        None => get(base, path),
    };
    assert_eq!(status, 200, "{path}: {v}");
    v
}

/// A call that must fail with `status` and error `code`; returns the message.
fn fails(base: &str, path: &str, body: Option<Value>, status: u16, code: &str) -> String {
    let (got, v) = match body {
        Some(b) => post(base, path, b),
        None => get(base, path),
    };
    assert_eq!(
        got, status,
        "{path}: expected HTTP {status} {code}, got {v}"
    );
    assert_eq!(v["error"]["code"], code, "{path}: {v}");
    let message = v["error"]["message"].as_str().unwrap_or("").to_string();
    assert!(
        !message.is_empty(),
        "{path}: an error without a message: {v}"
    );
    message
}

/// `name → (spendable, locked)` from `GET /api/balances`.
fn balances(base: &str) -> Vec<(String, f64, f64)> {
    let v = ok(base, "/api/balances", None);
    let mut out: Vec<(String, f64, f64)> = v
        .as_array()
        .expect("balances are a list")
        .iter()
        .map(|b| {
            (
                b["name"].as_str().unwrap_or("").to_string(),
                b["qty"].as_f64().unwrap_or(f64::NAN),
                b["locked"].as_f64().unwrap_or(f64::NAN),
            )
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

fn holding(base: &str, asset: &str) -> (f64, f64) {
    balances(base)
        .into_iter()
        .find(|b| b.0 == asset)
        .map(|b| (b.1, b.2))
        .unwrap_or((0.0, 0.0))
}

fn wait_holding(base: &str, who: &str, asset: &str, want: (f64, f64)) {
    wait_until(&format!("{who} to hold {want:?} {asset}"), WAIT, || {
        let have = holding(base, asset);
        if have == want {
            Ok(())
        } else {
            Err(format!("{have:?}"))
        }
    })
}

fn offers(admin: &str, query: &str) -> Vec<Value> {
    ok(admin, &format!("/api/admin/exchange_list{query}"), None)
        .as_array()
        .expect("a list")
        .clone()
}

/// The board without the confirmation counts (which grow with every block).
fn board(admin: &str) -> Vec<Value> {
    offers(admin, "?status=all")
        .into_iter()
        .map(|mut o| {
            o["confirmations"] = Value::Null;
            o
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Services
// ---------------------------------------------------------------------------------------------

/// One service running on the test's runtime.
struct Service {
    url: String,
    port: u16,
    db_dir: PathBuf,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<Result<(), String>>,
}

fn start_service(
    rt: &tokio::runtime::Runtime,
    role: Role,
    node: &Node,
    db_dir: PathBuf,
    port: u16,
) -> Service {
    let listener = rt
        .block_on(tokio::net::TcpListener::bind(("127.0.0.1", port)))
        .expect("listen");
    let port = listener.local_addr().expect("local address").port();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let config = ServiceConfig {
        role,
        rpc: node.rpc.clone(),
        db_dir: db_dir.clone(),
        exchange_url: None,
    };
    let task = rt.spawn(wattle_exchange::serve(listener, config, async {
        let _ = rx.await;
    }));
    Service {
        url: format!("http://127.0.0.1:{port}"),
        port,
        db_dir,
        stop: Some(tx),
        task,
    }
}

fn stop_service(rt: &tokio::runtime::Runtime, s: &mut Service) {
    let Some(tx) = s.stop.take() else {
        return;
    };
    let _ = tx.send(());
    let outcome = rt
        .block_on(async { tokio::time::timeout(Duration::from_secs(10), &mut s.task).await })
        .expect("the service stops within 10 s")
        .expect("the service task");
    assert_eq!(outcome, Ok(()), "the service stopped with an error");
}

// ---------------------------------------------------------------------------------------------
// The scenario
// ---------------------------------------------------------------------------------------------

struct Market {
    rt: tokio::runtime::Runtime,
    admin: Node,
    producer: Node,
    consumer: Node,
    a: Service,
    p: Service,
    c: Service,
    dbs: TempDir,
}

fn start_market() -> Market {
    let wattled = wattled();
    let admin = Node::create(&wattled);
    let producer = Node::join("producer", &wattled, &admin);
    let consumer = Node::join("consumer", &wattled, &admin);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let dbs = tempfile::tempdir().expect("temp dir");
    let a = start_service(&rt, Role::Admin, &admin, dbs.path().join("admin"), 0);
    let p = start_service(
        &rt,
        Role::Producer,
        &producer,
        dbs.path().join("producer"),
        0,
    );
    let c = start_service(
        &rt,
        Role::Consumer,
        &consumer,
        dbs.path().join("consumer"),
        0,
    );
    Market {
        rt,
        admin,
        producer,
        consumer,
        a,
        p,
        c,
        dbs,
    }
}

/// Malformed bodies and missing or mistyped fields: 400 `invalid_request` everywhere.
fn bad_bodies(m: &Market) {
    let (a, p, c) = (m.a.url.as_str(), m.p.url.as_str(), m.c.url.as_str());
    let cases: &[(&str, &str, &str)] = &[
        (a, "/api/admin/connect_node", "{"),
        (a, "/api/admin/connect_node", "[1, 2]"),
        (a, "/api/admin/connect_node", r#"{"address": "x"}"#),
        (a, "/api/admin/schedule_ecoin_issue", r#"{"address": "x"}"#),
        (
            a,
            "/api/admin/schedule_ecoin_issue",
            r#"{"address": "x", "qty": -5}"#,
        ),
        (
            a,
            "/api/admin/schedule_ecoin_issue",
            r#"{"address": "x", "qty": "lots"}"#,
        ),
        (a, "/api/admin/issue_ecoin", "{}"),
        (a, "/api/admin/issue_ecoin", r#"{"index": -1}"#),
        (a, "/api/admin/register_ask", r#"{"ask_address": "x"}"#),
        (
            a,
            "/api/admin/register_bid",
            r#"{"index": 1, "txid": "00"}"#,
        ),
        (p, "/api/producer/reg_exchange_ip", "not json"),
        (p, "/api/producer/reg_exchange_ip", r#"{"exchange": ""}"#),
        (p, "/api/producer/issue_energy", r#"{"qty": 0}"#),
        (p, "/api/producer/propose_exchange", r#"{"qty_energy": 1}"#),
        (
            p,
            "/api/producer/propose_exchange",
            r#"{"qty_energy": true, "qty_ecoin": 1}"#,
        ),
        (c, "/api/consumer/request_ecoin_issue", "{}"),
        (c, "/api/consumer/accept_exchange", r#"{"index": "seven"}"#),
    ];
    for (base, path, body) in cases {
        let (status, v) = http("POST", base, path, Some(body));
        assert_eq!(status, 400, "{path} {body}: {v}");
        assert_eq!(v["error"]["code"], "invalid_request", "{path} {body}: {v}");
    }
    let (status, v) = get(&m.a.url, "/api/admin/exchange_list?status=bogus");
    assert_eq!(
        (status, &v["error"]["code"]),
        (400, &json!("invalid_request"))
    );
    // Unknown endpoints and another role's endpoints are JSON 404s; a wrong method is a 405.
    fails(
        &m.a.url,
        "/api/producer/issue_energy",
        Some(json!({})),
        404,
        "not_found",
    );
    fails(
        &m.p.url,
        "/api/admin/issue_ecoin",
        Some(json!({"index": 1})),
        404,
        "not_found",
    );
    fails(&m.c.url, "/api/nothing", None, 404, "not_found");
    fails(&m.a.url, "/api/admin/exchange/999", None, 404, "not_found");
    fails(
        &m.a.url,
        "/api/admin/exchange/abc",
        None,
        400,
        "invalid_request",
    );
    fails(
        &m.a.url,
        "/api/admin/issue_ecoin",
        None,
        405,
        "method_not_allowed",
    );
}

/// The admin's connect_node refuses what it cannot grant; a site without an exchange says so.
fn before_connecting(m: &Market) {
    let msg = fails(
        &m.a.url,
        "/api/admin/connect_node",
        Some(json!({"address": m.producer.address, "type": "miner"})),
        400,
        "unknown_type",
    );
    assert!(msg.contains("miner"), "{msg}");
    let msg = fails(
        &m.a.url,
        "/api/admin/connect_node",
        Some(json!({"address": "not-an-address", "type": "producer"})),
        400,
        "invalid_address",
    );
    assert!(msg.contains("not-an-address"), "{msg}");
    for (base, path, body) in [
        (
            &m.p.url,
            "/api/producer/propose_exchange",
            Some(json!({"qty_energy": 1, "qty_ecoin": 1})),
        ),
        (
            &m.c.url,
            "/api/consumer/request_ecoin_issue",
            Some(json!({"qty": 1})),
        ),
        (
            &m.c.url,
            "/api/consumer/accept_exchange",
            Some(json!({"index": 1})),
        ),
        (&m.c.url, "/api/exchange_list", None),
    ] {
        let msg = fails(base, path, body, 400, "no_exchange");
        assert!(msg.contains("reg_exchange_ip"), "{msg}");
    }
    // A bad or unreachable exchange URL is refused and registers nothing.
    fails(
        &m.p.url,
        "/api/producer/reg_exchange_ip",
        Some(json!({"exchange": "ftp://x:1"})),
        400,
        "invalid_request",
    );
    fails(
        &m.p.url,
        "/api/producer/reg_exchange_ip",
        Some(json!({"exchange": "http://127.0.0.1:1"})),
        502,
        "exchange_unreachable",
    );
    assert_eq!(ok(&m.p.url, "/api/status", None)["exchange"], Value::Null);
}

/// Both sites register the exchange, which connects them.
fn connect_sites(m: &Market) {
    for (site, role, node) in [
        (&m.p, "producer", &m.producer),
        (&m.c, "consumer", &m.consumer),
    ] {
        let v = ok(
            &site.url,
            &format!("/api/{role}/reg_exchange_ip"),
            Some(json!({"exchange": format!("{}/", m.a.url)})),
        );
        assert_eq!(v["exchange"], json!(m.a.url), "{v}");
        assert_eq!(v["address"], json!(node.address));
        let status = ok(&site.url, "/api/status", None);
        assert_eq!(status["role"], role);
        assert_eq!(status["address"], json!(node.address));
        assert_eq!(status["exchange"], json!(m.a.url));
    }
    let perms = m.admin.call(
        "listpermissions",
        json!(["energy.issue", m.producer.address]),
    );
    assert_eq!(
        perms.as_array().map(Vec::len),
        Some(1),
        "energy.issue: {perms}"
    );
    let perms = m.admin.call(
        "listpermissions",
        json!(["energy.issue", m.consumer.address]),
    );
    assert_eq!(
        perms.as_array().map(Vec::len),
        Some(0),
        "a consumer has no energy.issue"
    );
    let status = ok(&m.a.url, "/api/status", None);
    assert_eq!(
        (&status["role"], &status["exchange"]),
        (&json!("admin"), &Value::Null)
    );
}

/// The consumer buys 5000 ecoin; the admin approves once. Returns the issue's txid.
fn buy_ecoin(m: &Market) -> String {
    let index = ok(
        &m.c.url,
        "/api/consumer/request_ecoin_issue",
        Some(json!({"qty": 5000})),
    )["index"]
        .as_u64()
        .expect("an index");
    // Not a whole number of ecoin: refused by the admin, passed on by the consumer's service.
    fails(
        &m.c.url,
        "/api/consumer/request_ecoin_issue",
        Some(json!({"qty": 1.5})),
        400,
        "invalid_request",
    );
    let mine = ok(&m.c.url, "/api/ecoin_requests", None);
    assert_eq!(mine.as_array().map(Vec::len), Some(1), "{mine}");
    assert_eq!(mine[0]["status"], "pending");
    assert_eq!(mine[0]["address"], json!(m.consumer.address));
    fails(
        &m.a.url,
        "/api/admin/issue_ecoin",
        Some(json!({"index": 999})),
        404,
        "not_found",
    );
    let txid = ok(
        &m.a.url,
        "/api/admin/issue_ecoin",
        Some(json!({"index": index})),
    )["txid"]
        .as_str()
        .expect("a txid")
        .to_string();
    wait_holding(&m.c.url, "the consumer", "ecoin", (5000.0, 0.0));
    let msg = fails(
        &m.a.url,
        "/api/admin/issue_ecoin",
        Some(json!({"index": index})),
        409,
        "already_issued",
    );
    assert!(msg.contains(&txid), "{msg}");
    std::thread::sleep(Duration::from_millis(800));
    assert_eq!(holding(&m.c.url, "ecoin"), (5000.0, 0.0), "issued twice");
    let all = ok(&m.a.url, "/api/admin/ecoin_requests?status=issued", None);
    assert_eq!(all[0]["txid"], json!(txid), "{all}");
    assert_eq!(
        ok(&m.a.url, "/api/admin/ecoin_requests?status=pending", None),
        json!([])
    );
    txid
}

/// The producer meters 2 kWh (the default unit once, then an explicit quantity).
fn issue_energy(m: &Market) {
    let v = wait_until(
        "the producer's energy.issue to reach its node",
        WAIT,
        || {
            let (status, v) = post(&m.p.url, "/api/producer/issue_energy", json!({}));
            match status {
                200 => Ok(v),
                403 => Err(v.to_string()),
                _ => panic!("issue_energy: {status} {v}"),
            }
        },
    );
    assert_eq!(v["qty"], json!(1), "{v}");
    ok(
        &m.p.url,
        "/api/producer/issue_energy",
        Some(json!({"qty": "1"})),
    );
    wait_holding(&m.p.url, "the producer", "energy", (2.0, 0.0));
}

/// Offers: one the producer cannot cover (refused, nothing locked), then two real ones.
fn propose(m: &Market) -> (u64, u64) {
    let msg = fails(
        &m.p.url,
        "/api/producer/propose_exchange",
        Some(json!({"qty_energy": 100, "qty_ecoin": 1})),
        400,
        "insufficient_funds",
    );
    assert!(msg.contains("energy"), "{msg}");
    assert_eq!(
        holding(&m.p.url, "energy"),
        (2.0, 0.0),
        "something was locked"
    );
    assert!(offers(&m.a.url, "").is_empty());
    let o1 = ok(
        &m.p.url,
        "/api/producer/propose_exchange",
        Some(json!({"qty_energy": 1, "qty_ecoin": 1000})),
    )["index"]
        .as_u64()
        .expect("an index");
    let o2 = ok(
        &m.p.url,
        "/api/producer/propose_exchange",
        Some(json!({"qty_energy": 1, "qty_ecoin": 6000})),
    )["index"]
        .as_u64()
        .expect("an index");
    assert_eq!(holding(&m.p.url, "energy"), (0.0, 2.0));
    let open = offers(&m.a.url, "?status=open");
    assert_eq!(open.len(), 2, "{open:?}");
    let first = &open[0];
    assert_eq!(first["index"], json!(o1));
    assert_eq!(first["ask_address"], json!(m.producer.address));
    assert_eq!(first["bid_address"], Value::Null);
    assert_eq!(first["offer"], json!({"asset": "energy", "qty": 1}));
    assert_eq!(first["ask"], json!({"asset": "ecoin", "qty": 1000}));
    assert_eq!(first["price"], json!(1000));
    assert_eq!(
        (&first["status"], &first["txid"]),
        (&json!("open"), &Value::Null)
    );
    // The sites see the same board through their own services.
    let seen = ok(&m.c.url, "/api/exchange_list?status=open", None);
    assert_eq!(seen.as_array().map(Vec::len), Some(2), "{seen}");
    (o1, o2)
}

/// register_ask: tampered blobs, someone else's offer, the same coin twice — nothing listed.
fn bad_asks(m: &Market, o1: u64) {
    let before = board(&m.a.url);
    let blob = ok(&m.a.url, &format!("/api/admin/exchange/{o1}"), None)["blob"]
        .as_str()
        .expect("a blob")
        .to_string();
    let n = blob.len();
    for at in [n / 4, n / 2, 3 * n / 4, n - 1] {
        let mut tampered = blob.clone().into_bytes();
        tampered[at] = if tampered[at] == b'0' { b'1' } else { b'0' };
        let tampered = String::from_utf8(tampered).expect("hex");
        fails(
            &m.a.url,
            "/api/admin/register_ask",
            Some(json!({"ask_address": m.producer.address, "blob": tampered})),
            400,
            "invalid_offer",
        );
    }
    fails(
        &m.a.url,
        "/api/admin/register_ask",
        Some(json!({"ask_address": m.producer.address, "blob": "zz"})),
        400,
        "invalid_offer",
    );
    let msg = fails(
        &m.a.url,
        "/api/admin/register_ask",
        Some(json!({"ask_address": m.consumer.address, "blob": blob})),
        400,
        "invalid_offer",
    );
    assert!(msg.contains("belongs to"), "{msg}");
    fails(
        &m.a.url,
        "/api/admin/register_ask",
        Some(json!({"ask_address": m.producer.address, "blob": blob})),
        409,
        "already_listed",
    );
    assert_eq!(board(&m.a.url), before, "a bad ask changed the board");
}

/// The consumer cannot pay offer 2 (6000 > 5000 ecoin): refused, nothing sent, nothing locked.
fn cannot_afford(m: &Market, o2: u64) {
    let board_before = board(&m.a.url);
    let msg = fails(
        &m.c.url,
        "/api/consumer/accept_exchange",
        Some(json!({"index": o2})),
        400,
        "insufficient_funds",
    );
    assert!(msg.contains("ecoin"), "{msg}");
    fails(
        &m.c.url,
        "/api/consumer/accept_exchange",
        Some(json!({"index": 999})),
        404,
        "not_found",
    );
    assert_eq!(holding(&m.c.url, "ecoin"), (5000.0, 0.0));
    assert_eq!(holding(&m.c.url, "energy"), (0.0, 0.0));
    let locks = m.consumer.call("listlockunspent", json!([]));
    assert_eq!(locks, json!([]), "a coin stayed locked");
    assert_eq!(board(&m.a.url), board_before);
}

/// The trade: the consumer accepts offer 1; the admin marks it done once mined. Returns its txid.
fn trade(m: &Market, o1: u64) -> String {
    let v = ok(
        &m.c.url,
        "/api/consumer/accept_exchange",
        Some(json!({"index": o1})),
    );
    let txid = v["txid"].as_str().expect("a txid").to_string();
    assert!(v["status"] == "pending" || v["status"] == "done", "{v}");
    let done = wait_until("the offer to be listed as done", WAIT, || {
        let done = offers(&m.a.url, "?status=done");
        match done.first() {
            Some(o) if o["index"] == json!(o1) => Ok(o.clone()),
            _ => Err(format!("{done:?}")),
        }
    });
    assert_eq!(done["txid"], json!(txid));
    assert_eq!(done["bid_address"], json!(m.consumer.address));
    assert!(done["confirmations"].as_u64().unwrap_or(0) >= 1, "{done}");
    wait_holding(&m.p.url, "the producer", "ecoin", (1000.0, 0.0));
    wait_holding(&m.c.url, "the consumer", "energy", (1.0, 0.0));
    assert_eq!(holding(&m.c.url, "ecoin"), (4000.0, 0.0));
    assert_eq!(
        holding(&m.p.url, "energy"),
        (0.0, 1.0),
        "offer 2 keeps its kWh locked"
    );
    txid
}

/// Accepting offer 1 again, and bids that are not offer 1 completed: errors, nothing changed.
fn bad_bids(m: &Market, o1: u64, o2: u64, trade_txid: &str, ecoin_txid: &str) {
    let board_before = board(&m.a.url);
    let (pb, cb) = (balances(&m.p.url), balances(&m.c.url));
    let msg = fails(
        &m.c.url,
        "/api/consumer/accept_exchange",
        Some(json!({"index": o1})),
        409,
        "already_taken",
    );
    assert!(msg.contains("not open"), "{msg}");
    let bid = |index: u64, txid: &str, address: &str| json!({"index": index, "bid_address": address, "txid": txid});
    let c = m.consumer.address.as_str();
    let msg = fails(
        &m.a.url,
        "/api/admin/register_bid",
        Some(bid(o2, ecoin_txid, c)),
        400,
        "invalid_bid",
    );
    assert!(msg.contains("does not spend"), "{msg}");
    let msg = fails(
        &m.a.url,
        "/api/admin/register_bid",
        Some(bid(o2, trade_txid, c)),
        400,
        "invalid_bid",
    );
    assert!(msg.contains("does not spend"), "{msg}");
    fails(
        &m.a.url,
        "/api/admin/register_bid",
        Some(bid(o1, ecoin_txid, c)),
        409,
        "already_taken",
    );
    fails(
        &m.a.url,
        "/api/admin/register_bid",
        Some(bid(999, trade_txid, c)),
        404,
        "not_found",
    );
    fails(
        &m.a.url,
        "/api/admin/register_bid",
        Some(bid(o2, "xyz", c)),
        400,
        "invalid_bid",
    );
    // Registering the real bid again is harmless (the consumer's service may retry).
    let again = ok(
        &m.a.url,
        "/api/admin/register_bid",
        Some(bid(o1, trade_txid, c)),
    );
    assert_eq!(again["status"], "done");
    assert_eq!(board(&m.a.url), board_before, "a bad bid changed the board");
    assert_eq!((balances(&m.p.url), balances(&m.c.url)), (pb, cb));
}

/// Filters of exchange_list, at the admin and forwarded by a site.
fn filters(m: &Market, o1: u64, o2: u64) {
    let p = &m.producer.address;
    let c = &m.consumer.address;
    let idx = |l: Vec<Value>| l.iter().map(|o| o["index"].clone()).collect::<Vec<_>>();
    assert_eq!(
        idx(offers(&m.a.url, &format!("?ask_address={p}"))),
        vec![json!(o1), json!(o2)]
    );
    assert_eq!(
        idx(offers(&m.a.url, &format!("?bid_address={c}"))),
        vec![json!(o1)]
    );
    assert_eq!(
        idx(offers(&m.a.url, &format!("?status=open&ask_address={p}"))),
        vec![json!(o2)]
    );
    assert_eq!(
        idx(offers(&m.a.url, &format!("?ask_address={c}"))),
        Vec::<Value>::new()
    );
    let seen = ok(
        &m.p.url,
        &format!("/api/exchange_list?status=done&bid_address={c}"),
        None,
    );
    assert_eq!(seen.as_array().map(Vec::len), Some(1), "{seen}");
    fails(
        &m.p.url,
        "/api/exchange_list?status=bogus",
        None,
        400,
        "invalid_request",
    );
}

/// disablerawtransaction on the producer's node spends the offered coin: the admin's watcher
/// marks the offer `cancelled`, and accepting it is refused with nothing sent.
fn cancel_offer(m: &Market, o2: u64) {
    let entry = ok(&m.a.url, &format!("/api/admin/exchange/{o2}"), None);
    let blob = entry["blob"]
        .as_str()
        .expect("the entry has its blob")
        .to_string();
    let txid = m.producer.call("disablerawtransaction", json!([blob]));
    assert!(txid.as_str().is_some_and(|t| t.len() == 64), "{txid}");
    wait_until(
        "the offer listed as cancelled",
        Duration::from_secs(30),
        || {
            let l = offers(&m.a.url, "?status=cancelled");
            if l.iter().any(|o| o["index"] == json!(o2)) {
                Ok(())
            } else {
                Err(format!("{l:?}"))
            }
        },
    );
    assert!(offers(&m.a.url, "?status=open").is_empty());
    let before = balances(&m.c.url);
    let msg = fails(
        &m.c.url,
        "/api/consumer/accept_exchange",
        Some(json!({"index": o2})),
        409,
        "cancelled",
    );
    assert!(msg.contains("cancelled"), "{msg}");
    assert_eq!(balances(&m.c.url), before, "nothing was spent");
}

/// The admin service restarts on its database: the same records, the next index follows.
fn restart_admin(m: &mut Market) {
    let board_before = board(&m.a.url);
    let requests_before = ok(&m.a.url, "/api/admin/ecoin_requests", None);
    let (port, db) = (m.a.port, m.a.db_dir.clone());
    stop_service(&m.rt, &mut m.a);
    // The same port, so that the sites' registered URL still reaches it.
    m.a = start_service(&m.rt, Role::Admin, &m.admin, db, port);
    assert_eq!(board(&m.a.url), board_before);
    assert_eq!(
        ok(&m.a.url, "/api/admin/ecoin_requests", None),
        requests_before
    );
    let next = ok(
        &m.c.url,
        "/api/consumer/request_ecoin_issue",
        Some(json!({"qty": 1})),
    )["index"]
        .clone();
    assert_eq!(next, json!(2), "the request counter survived the restart");
}

/// The binary serves the admin's node until SIGTERM.
fn binary_serves_until_sigterm(m: &Market) {
    let db = m.dbs.path().join("binary");
    let mut child = Command::new(env!("CARGO_BIN_EXE_wattle-exchange"))
        .args(["--role", "admin", CHAIN])
        .arg(format!("-datadir={}", m.admin.dir.path().display()))
        .arg(format!("-rpcport={}", m.admin.rpc.port))
        .args(["--listen", "127.0.0.1:0"])
        .arg(format!("--db={}", db.display()))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start wattle-exchange");
    let lines = Lines::default();
    capture(child.stdout.take().expect("piped"), lines.clone());
    let url = wait_until("wattle-exchange to print its URL", WAIT, || {
        if let Ok(Some(s)) = child.try_wait() {
            panic!("wattle-exchange exited with {s}");
        }
        lines
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .find_map(|l| {
                let at = l.find("http://")?;
                l[at..]
                    .split_whitespace()
                    .next()
                    .map(|u| u.trim_end_matches('/').to_string())
            })
            .ok_or("not yet".to_string())
    });
    let status = ok(&url, "/api/status", None);
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let exit = wait_until("wattle-exchange to stop after SIGTERM", WAIT, || {
        child.try_wait().ok().flatten().ok_or("running".to_string())
    });
    assert_eq!(status["role"], "admin");
    assert_eq!(status["address"], json!(m.admin.address));
    assert!(
        exit.success(),
        "wattle-exchange exited with {exit} after SIGTERM"
    );
    assert!(db.exists(), "no database at {}", db.display());
}

/// The scenarios run one at a time: each has three nodes, and the machine has two cores.
fn one_market_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    static MARKETS: Mutex<()> = Mutex::new(());
    MARKETS.lock().unwrap_or_else(|e| e.into_inner())
}

#[test]
fn the_paper_trade_through_the_rest_api() {
    let _turn = one_market_at_a_time();
    let started = Instant::now();
    let step = |what: &str| eprintln!("{:>6} ms  {what}", started.elapsed().as_millis());
    let mut m = start_market();
    step("nodes and services started");
    bad_bodies(&m);
    before_connecting(&m);
    step("bad bodies, unconnected sites");
    connect_sites(&m);
    step("sites connected");
    let ecoin_txid = buy_ecoin(&m);
    step("ecoin requested and issued once");
    issue_energy(&m);
    step("energy issued");
    let (o1, o2) = propose(&m);
    step("offers proposed");
    bad_asks(&m, o1);
    step("bad asks refused");
    cannot_afford(&m, o2);
    step("unaffordable offer refused");
    let trade_txid = trade(&m, o1);
    step("trade done");
    bad_bids(&m, o1, o2, &trade_txid, &ecoin_txid);
    filters(&m, o1, o2);
    step("bad bids refused, filters");
    restart_admin(&mut m);
    step("admin service restarted");
    binary_serves_until_sigterm(&m);
    step("binary served until SIGTERM");
    cancel_offer(&m, o2);
    step("a disabled offer cancelled");
    for s in [&mut m.a, &mut m.p, &mut m.c] {
        stop_service(&m.rt, s);
    }
    eprintln!("the whole scenario took {:?}", started.elapsed());
}

// ---------------------------------------------------------------------------------------------
// The order book
// ---------------------------------------------------------------------------------------------

/// The book of a service, without its height: `(asks, bids)` as `(price, qty, value, orders)`.
fn depth(base: &str) -> (Vec<[f64; 4]>, Vec<[f64; 4]>) {
    let v = ok(base, "/api/orderbook", None);
    assert_eq!(
        (&v["base"], &v["quote"]),
        (&json!("energy"), &json!("ecoin")),
        "{v}"
    );
    let side = |k: &str| -> Vec<[f64; 4]> {
        v[k].as_array()
            .unwrap_or_else(|| panic!("{k} is a list: {v}"))
            .iter()
            .map(|l| ["price", "qty", "value", "orders"].map(|f| l[f].as_f64().unwrap_or(f64::NAN)))
            .collect()
    };
    (side("asks"), side("bids"))
}

/// Waits until every service shows this depth (the nodes apply the block one after another).
fn wait_depth(m: &Market, asks: &[[f64; 4]], bids: &[[f64; 4]]) {
    for (who, base) in [
        ("admin", &m.a.url),
        ("producer", &m.p.url),
        ("consumer", &m.c.url),
    ] {
        wait_until(
            &format!("the {who}'s book to show asks {asks:?}, bids {bids:?}"),
            WAIT,
            || {
                let have = depth(base);
                if have == (asks.to_vec(), bids.to_vec()) {
                    Ok(())
                } else {
                    Err(format!("{have:?}"))
                }
            },
        );
    }
}

/// Places an order through a site's service: the order as matching left it.
fn place(base: &str, side: &str, qty: Value, price: Value) -> Value {
    let path = match side {
        "sell" => "/api/producer/sell_order",
        _ => "/api/consumer/buy_order",
    };
    let v = ok(base, path, Some(json!({"qty": qty, "price": price})));
    let txid = v["txid"].as_str().unwrap_or_default();
    assert_eq!(txid.len(), 64, "{v}");
    assert_eq!(
        v["order"]["id"],
        json!(txid),
        "the order id is its txid: {v}"
    );
    assert_eq!(v["order"]["side"], side, "{v}");
    v["order"].clone()
}

/// `(filled, remaining, status)` of an order.
fn progress(o: &Value) -> (f64, f64, String) {
    (
        o["filled"].as_f64().unwrap_or(f64::NAN),
        o["remaining"].as_f64().unwrap_or(f64::NAN),
        o["status"].as_str().unwrap_or("?").to_string(),
    )
}

/// Bad requests of the order-book endpoints that need no market: 400 `invalid_request`, and
/// the other role's endpoints are not there.
fn bad_order_requests(m: &Market) {
    let (p, c) = (m.p.url.as_str(), m.c.url.as_str());
    let cases: &[(&str, &str, &str)] = &[
        (p, "/api/producer/sell_order", "{"),
        (p, "/api/producer/sell_order", "[]"),
        (p, "/api/producer/sell_order", r#"{"qty": 1}"#),
        (p, "/api/producer/sell_order", r#"{"price": 100}"#),
        (p, "/api/producer/sell_order", r#"{"qty": 0, "price": 100}"#),
        (p, "/api/producer/sell_order", r#"{"qty": 1, "price": -5}"#),
        (
            p,
            "/api/producer/sell_order",
            r#"{"qty": "lots", "price": 100}"#,
        ),
        (
            p,
            "/api/producer/sell_order",
            r#"{"qty": 1, "price": 0.000000001}"#,
        ),
        (
            c,
            "/api/consumer/buy_order",
            r#"{"qty": true, "price": 100}"#,
        ),
        (c, "/api/consumer/buy_order", r#"{"qty": 1, "price": null}"#),
        (c, "/api/consumer/cancel_order", "{}"),
        (c, "/api/consumer/cancel_order", r#"{"order": ""}"#),
        (c, "/api/consumer/cancel_order", r#"{"order": "xyz"}"#),
        (p, "/api/producer/cancel_order", r#"{"order": 7}"#),
    ];
    for (base, path, body) in cases {
        let (status, v) = http("POST", base, path, Some(body));
        assert_eq!(status, 400, "{path} {body}: {v}");
        assert_eq!(v["error"]["code"], "invalid_request", "{path} {body}: {v}");
        assert!(
            v["error"]["message"]
                .as_str()
                .is_some_and(|t| !t.is_empty()),
            "{v}"
        );
    }
    for (base, path) in [
        (p, "/api/orderbook?levels=0"),
        (p, "/api/orderbook?levels=101"),
        (c, "/api/orderbook?levels=many"),
        (c, "/api/trades?count=0"),
        (c, "/api/trades?count=-1"),
        (p, "/api/orders?status=done"),
        (p, "/api/orders?count=1001"),
        (c, "/api/orders?address=1Someone"),
    ] {
        fails(base, path, None, 400, "invalid_request");
    }
    // A producer does not buy, a consumer does not sell, the admin does neither.
    let order = json!({"qty": 1, "price": 100});
    fails(
        p,
        "/api/consumer/buy_order",
        Some(order.clone()),
        404,
        "not_found",
    );
    fails(
        c,
        "/api/producer/sell_order",
        Some(order.clone()),
        404,
        "not_found",
    );
    fails(
        &m.a.url,
        "/api/producer/sell_order",
        Some(order),
        404,
        "not_found",
    );
    fails(
        &m.a.url,
        "/api/admin/cancel_order",
        Some(json!({})),
        404,
        "not_found",
    );
    fails(
        p,
        "/api/producer/sell_order",
        None,
        405,
        "method_not_allowed",
    );
}

#[test]
fn the_order_book_through_the_rest_api() {
    let _turn = one_market_at_a_time();
    let started = Instant::now();
    let step = |what: &str| eprintln!("{:>6} ms  {what}", started.elapsed().as_millis());
    let m = start_market();
    step("nodes and services started");

    // Before the exchange issued its assets there is no market: empty reads, orders refused.
    assert_eq!(depth(&m.c.url), (vec![], vec![]));
    assert_eq!(ok(&m.c.url, "/api/trades", None), json!([]));
    assert_eq!(ok(&m.p.url, "/api/orders", None), json!([]));
    let msg = fails(
        &m.p.url,
        "/api/producer/sell_order",
        Some(json!({"qty": 1, "price": 100})),
        400,
        "no_market",
    );
    assert!(msg.contains("reg_exchange_ip"), "{msg}");
    bad_order_requests(&m);
    step("no market yet; bad requests refused");

    connect_sites(&m);
    buy_ecoin(&m);
    wait_until(
        "the producer's energy.issue to reach its node",
        WAIT,
        || {
            let (status, v) = post(&m.p.url, "/api/producer/issue_energy", json!({"qty": 10}));
            match status {
                200 => Ok(v),
                403 => Err(v.to_string()),
                _ => panic!("issue_energy: {status} {v}"),
            }
        },
    );
    wait_holding(&m.p.url, "the producer", "energy", (10.0, 0.0));
    step("sites connected, 5000 ecoin and 10 kWh issued");

    // Orders the sites cannot make as asked: nothing is placed.
    let (p, c) = (m.p.url.as_str(), m.c.url.as_str());
    let refused: &[(&str, &str, Value, &str, &str)] = &[
        (
            p,
            "sell_order",
            json!({"qty": 0.0001, "price": 100}),
            "invalid_request",
            "0.001",
        ),
        (
            p,
            "sell_order",
            json!({"qty": 0.001, "price": 100}),
            "invalid_request",
            "0.1 ecoin",
        ),
        (
            c,
            "buy_order",
            json!({"qty": 1.5, "price": 3}),
            "invalid_request",
            "4.5 ecoin",
        ),
        (
            p,
            "sell_order",
            json!({"qty": 11, "price": 100}),
            "insufficient_funds",
            "10 kWh",
        ),
        (
            c,
            "buy_order",
            json!({"qty": 100, "price": 100}),
            "insufficient_funds",
            "10000 ecoin",
        ),
    ];
    for (base, what, body, code, says) in refused {
        let role = if *base == p { "producer" } else { "consumer" };
        let msg = fails(
            base,
            &format!("/api/{role}/{what}"),
            Some(body.clone()),
            400,
            code,
        );
        assert!(msg.contains(says), "{what} {body}: {msg}");
    }
    assert_eq!(holding(p, "energy"), (10.0, 0.0));
    assert_eq!(holding(c, "ecoin"), (5000.0, 0.0));
    assert_eq!(ok(p, "/api/orders", None), json!([]));
    step("impossible orders refused");

    // The producer's 10 kWh at 100 rest in the book.
    let sell = place(p, "sell", json!(10), json!(100));
    assert_eq!(progress(&sell), (0.0, 10.0, "open".into()), "{sell}");
    assert_eq!(sell["owner"], json!(m.producer.address));
    assert_eq!(
        (sell["qty"].as_f64(), sell["price"].as_f64()),
        (Some(10.0), Some(100.0))
    );
    let sell_id = sell["id"].as_str().unwrap_or_default().to_string();
    wait_depth(&m, &[[100.0, 10.0, 1000.0, 1.0]], &[]);
    assert_eq!(holding(p, "energy"), (0.0, 0.0), "the 10 kWh are in escrow");
    step("sell order resting");

    // Three bids: 3 at 100 (filled), 5 at 110 (filled at the resting 100), 4 at 100 (2 filled).
    let b1 = place(c, "buy", json!(3), json!(100));
    assert_eq!(progress(&b1), (3.0, 0.0, "filled".into()), "{b1}");
    wait_depth(&m, &[[100.0, 7.0, 700.0, 1.0]], &[]);
    wait_holding(c, "the consumer", "ecoin", (4700.0, 0.0));
    let b2 = place(c, "buy", json!(5), json!(110));
    assert_eq!(progress(&b2), (5.0, 0.0, "filled".into()), "{b2}");
    let fill = &b2["trades"][0];
    assert_eq!(
        (
            fill["price"].as_f64(),
            fill["qty"].as_f64(),
            fill["value"].as_f64()
        ),
        (Some(100.0), Some(5.0), Some(500.0)),
        "a bid at 110 fills at the resting 100: {b2}"
    );
    wait_holding(c, "the consumer", "ecoin", (4200.0, 0.0));
    let b3 = place(c, "buy", json!("4"), json!("100"));
    assert_eq!(progress(&b3), (2.0, 2.0, "open".into()), "{b3}");
    let b3_id = b3["id"].as_str().unwrap_or_default().to_string();
    wait_depth(&m, &[], &[[100.0, 2.0, 200.0, 1.0]]);
    wait_holding(c, "the consumer", "energy", (10.0, 0.0));
    wait_holding(c, "the consumer", "ecoin", (3800.0, 0.0));
    wait_holding(p, "the producer", "ecoin", (1000.0, 0.0));
    assert_eq!(holding(p, "energy"), (0.0, 0.0));
    step("three bids: fills 3, 5 and 2; 2 rest");

    // The trades, newest first, the same on every service.
    let trades = ok(&m.a.url, "/api/trades", None);
    let shown: Vec<(f64, f64, f64)> = trades
        .as_array()
        .expect("a list")
        .iter()
        .map(|t| {
            assert_eq!(t["seller"], json!(m.producer.address), "{t}");
            assert_eq!(t["buyer"], json!(m.consumer.address), "{t}");
            assert_eq!(t["side"], "buy", "{t}");
            assert_eq!(t["maker"], json!(sell_id), "{t}");
            assert_eq!(t["txid"], t["taker"], "{t}");
            let f = |k: &str| t[k].as_f64().unwrap_or(f64::NAN);
            (f("qty"), f("price"), f("value"))
        })
        .collect();
    assert_eq!(
        shown,
        vec![
            (2.0, 100.0, 200.0),
            (5.0, 100.0, 500.0),
            (3.0, 100.0, 300.0)
        ]
    );
    assert_eq!(trades[0]["txid"], json!(b3_id));
    let latest = ok(c, "/api/trades?count=1", None);
    assert_eq!(latest.as_array().map(Vec::len), Some(1), "{latest}");
    assert_eq!(latest[0]["txid"], json!(b3_id));
    for base in [p, c] {
        wait_until("every service to list the same trades", WAIT, || {
            let seen = ok(base, "/api/trades", None);
            if seen == trades {
                Ok(())
            } else {
                Err(seen.to_string())
            }
        });
    }
    let filled = ok(p, "/api/orders?status=all", None);
    assert_eq!(filled.as_array().map(Vec::len), Some(1), "{filled}");
    assert_eq!(
        progress(&filled[0]),
        (10.0, 0.0, "filled".into()),
        "{filled}"
    );
    assert_eq!(filled[0]["fills"], json!(3));
    step("trades listed everywhere");

    // Cancelling: a bad id, an unknown order, someone else's, a filled one, then the own bid.
    let before = (balances(p), balances(c));
    let unknown = "ab".repeat(32);
    let cancel = |base: &str, role: &str, order: &str| {
        post(
            base,
            &format!("/api/{role}/cancel_order"),
            json!({"order": order}),
        )
    };
    let (status, v) = cancel(p, "producer", &unknown);
    assert_eq!(
        (status, &v["error"]["code"]),
        (404, &json!("not_found")),
        "{v}"
    );
    let (status, v) = cancel(p, "producer", &b3_id);
    assert_eq!(
        (status, &v["error"]["code"]),
        (403, &json!("not_permitted")),
        "{v}"
    );
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap_or("")
            .contains(&m.consumer.address),
        "{v}"
    );
    let (status, v) = cancel(p, "producer", &sell_id);
    assert_eq!(
        (status, &v["error"]["code"]),
        (409, &json!("order_closed")),
        "{v}"
    );
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap_or("")
            .contains("filled"),
        "{v}"
    );
    assert_eq!(
        (balances(p), balances(c)),
        before,
        "a refused cancel changed a balance"
    );
    wait_depth(&m, &[], &[[100.0, 2.0, 200.0, 1.0]]);
    let v = ok(
        c,
        "/api/consumer/cancel_order",
        Some(json!({"order": b3_id.to_uppercase()})),
    );
    assert_eq!(v["order"]["id"], json!(b3_id), "{v}");
    assert_eq!(progress(&v["order"]), (2.0, 0.0, "cancelled".into()), "{v}");
    assert_eq!(v["txid"].as_str().map(str::len), Some(64), "{v}");
    wait_holding(c, "the consumer", "ecoin", (4000.0, 0.0));
    wait_depth(&m, &[], &[]);
    let (status, v) = cancel(c, "consumer", &b3_id);
    assert_eq!(
        (status, &v["error"]["code"]),
        (409, &json!("order_closed")),
        "{v}"
    );
    step("cancelling checked; the resting bid cancelled, its 200 ecoin back");

    // Order lists: a site's own, newest first, by status; the admin's of every owner.
    let ids = |v: Value| -> Vec<Value> {
        v.as_array()
            .expect("a list")
            .iter()
            .map(|o| o["id"].clone())
            .collect()
    };
    let (b1_id, b2_id) = (b1["id"].clone(), b2["id"].clone());
    assert_eq!(
        ids(ok(c, "/api/orders", None)),
        vec![json!(b3_id), b2_id.clone(), b1_id.clone()]
    );
    assert_eq!(
        ids(ok(c, "/api/orders?status=filled", None)),
        vec![b2_id.clone(), b1_id]
    );
    assert_eq!(
        ids(ok(c, "/api/orders?status=cancelled", None)),
        vec![json!(b3_id)]
    );
    assert_eq!(
        ids(ok(c, "/api/orders?status=all&count=1", None)),
        vec![json!(b3_id)]
    );
    assert_eq!(ok(c, "/api/orders?status=open", None), json!([]));
    assert_eq!(ids(ok(p, "/api/orders", None)), vec![json!(sell_id)]);
    assert_eq!(
        ok(&m.a.url, "/api/orders", None).as_array().map(Vec::len),
        Some(4)
    );
    assert_eq!(ok(&m.a.url, "/api/orders?status=open", None), json!([]));
    let theirs = ok(
        &m.a.url,
        &format!("/api/orders?address={}", m.producer.address),
        None,
    );
    assert_eq!(ids(theirs), vec![json!(sell_id)]);

    // The end: every kWh and every ecoin where the trades put them.
    assert_eq!(holding(p, "energy"), (0.0, 0.0));
    assert_eq!(holding(p, "ecoin"), (1000.0, 0.0));
    assert_eq!(holding(c, "energy"), (10.0, 0.0));
    assert_eq!(holding(c, "ecoin"), (4000.0, 0.0));
    step("order lists and final balances");
    let mut m = m;
    for s in [&mut m.a, &mut m.p, &mut m.c] {
        stop_service(&m.rt, s);
    }
    eprintln!("the order-book scenario took {:?}", started.elapsed());
}

#[test]
fn the_binary_explains_itself_and_refuses_bad_command_lines() {
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_wattle-exchange"))
            .args(args)
            .output()
            .expect("run wattle-exchange")
    };
    let help = run(&["--help"]);
    let text = String::from_utf8_lossy(&help.stdout);
    assert!(help.status.success());
    for word in [
        "--role",
        "admin|producer|consumer",
        "-datadir",
        "--listen",
        "--exchange",
        "Ctrl-C",
    ] {
        assert!(
            text.contains(word),
            "--help does not mention {word}:\n{text}"
        );
    }
    let bad = run(&["--role", "boss", CHAIN, "--listen", "127.0.0.1:0"]);
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("unknown role"));
    let dir = tempfile::tempdir().expect("temp dir");
    let missing = run(&[
        "--role",
        "admin",
        CHAIN,
        &format!("-datadir={}", dir.path().display()),
        "--listen",
        "127.0.0.1:0",
    ]);
    assert!(!missing.status.success());
    let err = String::from_utf8_lossy(&missing.stderr);
    assert!(
        err.contains("RPC settings") && err.contains("wattle.conf"),
        "{err}"
    );
}
