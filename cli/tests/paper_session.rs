//! The paper's section 2 CLI session, replayed with real processes on three nodes.
//!
//! Admin A, producer P and consumer C each run `wattled` in their own temporary data directory;
//! every step is the paper's command with `multichain-util` / `multichaind` / `multichain-cli`
//! renamed to `wattle-util` / `wattled` / `wattle-cli` and every argument as in the paper (plain
//! ASCII quotes). The only additions are what a test on one machine needs: `-datadir=` (one
//! directory per node), `-port=0 -rpcport=0` for the daemons (any free port; the test reads the
//! ports the daemon prints), `-rpcport=N -requestout=null` for the CLI, and
//! `-target-block-time=2` at `wattle-util create` so that confirmations take seconds. Between
//! steps the test polls (with a timeout) for the confirmations the paper's flow relies on, e.g. a
//! grant before the joiner acts on it. Every result is checked against the shapes in
//! MULTICHAIN.md, including the order of the keys of the exchange results.

use serde_json::Value;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tempfile::TempDir;

const CHAIN: &str = "energybc";
/// Longest wait for one `wattle-cli` or `wattle-util` run.
const CLI_TIMEOUT: Duration = Duration::from_secs(30);
/// Longest wait for a daemon to print its RPC port, or to exit after `stop`.
const DAEMON_TIMEOUT: Duration = Duration::from_secs(60);
/// Longest wait for a transaction to be confirmed on a node (blocks come every 2 s).
const CONFIRM_TIMEOUT: Duration = Duration::from_secs(60);
/// Longest wait for `cargo build` of `wattled` when it is missing.
const BUILD_TIMEOUT: Duration = Duration::from_secs(1200);

// ---------------------------------------------------------------------------------------------
// Processes
// ---------------------------------------------------------------------------------------------

/// What a finished command printed.
struct Output {
    status: ExitStatus,
    stdout: String,
    stderr: String,
}

fn read_to_end_thread(
    stream: Option<impl Read + Send + 'static>,
) -> std::thread::JoinHandle<String> {
    std::thread::spawn(move || {
        let mut text = String::new();
        if let Some(mut s) = stream {
            let mut bytes = Vec::new();
            let _ = s.read_to_end(&mut bytes);
            text = String::from_utf8_lossy(&bytes).into_owned();
        }
        text
    })
}

/// Runs `cmd` to completion, killing it and failing after `timeout`.
fn run_bounded(mut cmd: Command, timeout: Duration, what: &str) -> Output {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {what}: {e}"));
    let out = read_to_end_thread(child.stdout.take());
    let err = read_to_end_thread(child.stderr.take());
    let deadline = Instant::now() + timeout;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() >= deadline => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("{what} did not finish within {timeout:?}");
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(10)),
            Err(e) => panic!("waiting for {what}: {e}"),
        }
    };
    Output {
        status,
        stdout: out.join().unwrap_or_default(),
        stderr: err.join().unwrap_or_default(),
    }
}

/// Polls `f` every 200 ms until it returns `Ok`, for at most `timeout`; then fails with `what` and
/// the last `Err`.
fn wait_until<T>(what: &str, timeout: Duration, mut f: impl FnMut() -> Result<T, String>) -> T {
    let start = Instant::now();
    loop {
        match f() {
            Ok(v) => return v,
            Err(last) if start.elapsed() >= timeout => {
                panic!("timed out after {timeout:?} waiting for {what}; last seen: {last}")
            }
            Err(_) => std::thread::sleep(Duration::from_millis(200)),
        }
    }
}

/// The three binaries: wattle-cli and wattle-util from this package, wattled from wattle-node,
/// found next to wattle-cli (and built there if it is missing or older than wattle-cli).
struct Bins {
    cli: PathBuf,
    util: PathBuf,
    wattled: PathBuf,
}

fn bins() -> Bins {
    let cli = PathBuf::from(env!("CARGO_BIN_EXE_wattle-cli"));
    let util = PathBuf::from(env!("CARGO_BIN_EXE_wattle-util"));
    let profile_dir = cli
        .parent()
        .expect("the wattle-cli binary has a directory")
        .to_path_buf();
    let wattled = profile_dir.join(format!("wattled{}", std::env::consts::EXE_SUFFIX));
    // wattle-cli and wattled both link wattle-node: a wattled older than the wattle-cli that
    // cargo just built may predate a change to the node, so it is rebuilt too (a no-op if fresh).
    let modified = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    let stale = match (modified(&wattled), modified(&cli)) {
        (None, _) => true,
        (Some(w), Some(c)) => w < c,
        (Some(_), None) => false,
    };
    if stale {
        build_wattled(&profile_dir, &wattled);
    }
    Bins { cli, util, wattled }
}

/// Builds `wattled` into the same target directory and profile as this test.
fn build_wattled(profile_dir: &Path, wattled: &Path) {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| env!("CARGO").to_string());
    let target_dir = profile_dir
        .parent()
        .expect("the profile directory has a parent (the target directory)");
    let profile = match profile_dir.file_name().and_then(|n| n.to_str()) {
        Some("debug") | None => "dev".to_string(),
        Some(other) => other.to_string(),
    };
    let mut cmd = Command::new(&cargo);
    cmd.args([
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
    .current_dir(env!("CARGO_MANIFEST_DIR"));
    let out = run_bounded(
        cmd,
        BUILD_TIMEOUT,
        "cargo build -p wattle-node --bin wattled",
    );
    assert!(
        out.status.success() && wattled.exists(),
        "{} is missing and `{cargo} build -p wattle-node --bin wattled --profile {profile} \
         --target-dir {}` failed ({}):\n{}\n{}",
        wattled.display(),
        target_dir.display(),
        out.status,
        out.stdout,
        out.stderr
    );
}

/// Lines a daemon printed, filled by a background thread.
type Lines = Arc<Mutex<Vec<String>>>;

fn capture(stream: impl Read + Send + 'static, into: Lines) {
    std::thread::spawn(move || {
        for line in BufReader::new(stream).lines() {
            match line {
                Ok(l) => into.lock().unwrap_or_else(|e| e.into_inner()).push(l),
                Err(_) => break,
            }
        }
    });
}

/// One node: its data directory, its `wattled` process (killed on drop) and its ports.
struct Node {
    label: &'static str,
    dir: TempDir,
    child: Option<Child>,
    stdout: Lines,
    stderr: Lines,
    rpc_port: u16,
    cli: PathBuf,
    wattled: PathBuf,
}

impl Node {
    fn new(label: &'static str, bins: &Bins) -> Node {
        Node {
            label,
            dir: tempfile::Builder::new()
                .prefix(&format!("paper-session-{label}-"))
                .tempdir()
                .expect("create a temp dir"),
            child: None,
            stdout: Lines::default(),
            stderr: Lines::default(),
            rpc_port: 0,
            cli: bins.cli.clone(),
            wattled: bins.wattled.clone(),
        }
    }

    fn datadir_arg(&self) -> String {
        format!("-datadir={}", self.dir.path().display())
    }

    /// `wattled ARGS -datadir=DIR -port=0 -rpcport=0`; waits until it prints its RPC port and
    /// returns everything it printed by then.
    fn start(&mut self, args: &[&str]) -> Vec<String> {
        assert!(self.child.is_none(), "{}: already running", self.label);
        self.stdout = Lines::default();
        self.stderr = Lines::default();
        let mut child = Command::new(&self.wattled)
            .args(args)
            .arg(self.datadir_arg())
            .args(["-port=0", "-rpcport=0"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("{}: cannot start wattled: {e}", self.label));
        capture(child.stdout.take().expect("piped"), self.stdout.clone());
        capture(child.stderr.take().expect("piped"), self.stderr.clone());
        self.child = Some(child);
        let label = self.label;
        self.rpc_port = wait_until(
            &format!("{label}'s wattled to print its RPC port"),
            DAEMON_TIMEOUT,
            || {
                if let Some(status) = self.exited() {
                    panic!("{label}'s wattled exited during start-up with {status}");
                }
                self.printed()
                    .iter()
                    .find_map(|l| {
                        l.strip_prefix("Listening for API requests on port ")?
                            .split_whitespace()
                            .next()?
                            .parse::<u16>()
                            .ok()
                    })
                    .ok_or_else(|| format!("stdout so far: {:?}", self.printed()))
            },
        );
        assert_ne!(self.rpc_port, 0, "{label}: RPC port 0 printed");
        self.printed()
    }

    fn printed(&self) -> Vec<String> {
        self.stdout
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    fn exited(&mut self) -> Option<ExitStatus> {
        self.child.as_mut()?.try_wait().ok().flatten()
    }

    /// `wattle-cli energybc -datadir=DIR -rpcport=N -requestout=null ARGS`.
    fn cli(&self, args: &[&str]) -> Output {
        let mut cmd = Command::new(&self.cli);
        cmd.arg(CHAIN)
            .arg(self.datadir_arg())
            .arg(format!("-rpcport={}", self.rpc_port))
            .arg("-requestout=null")
            .args(args);
        run_bounded(
            cmd,
            CLI_TIMEOUT,
            &format!("{}> wattle-cli {CHAIN} {}", self.label, args.join(" ")),
        )
    }

    /// Runs a command that must succeed; returns its stdout without the final newline.
    fn ok(&self, args: &[&str]) -> String {
        let out = self.cli(args);
        assert!(
            out.status.success(),
            "{}> wattle-cli {CHAIN} {} failed ({}):\nstdout: {}\nstderr: {}",
            self.label,
            args.join(" "),
            out.status,
            out.stdout,
            out.stderr
        );
        out.stdout.trim_end_matches('\n').to_string()
    }

    /// Runs a command that must succeed and print JSON; returns it parsed.
    fn json(&self, args: &[&str]) -> Value {
        let text = self.ok(args);
        serde_json::from_str(&text).unwrap_or_else(|e| {
            panic!(
                "{}> wattle-cli {CHAIN} {}: not JSON ({e}):\n{text}",
                self.label,
                args.join(" ")
            )
        })
    }

    /// A command that sends a transaction: its output is one txid.
    fn txid(&self, args: &[&str]) -> String {
        let txid = self.ok(args);
        assert_txid(&txid, &format!("{}> {}", self.label, args[0]));
        txid
    }

    /// Waits until `txid` is in a block on this node (`getrawtransaction TXID 1` shows
    /// `confirmations` of at least 1); returns the verbose transaction.
    fn wait_confirmed(&self, txid: &str, what: &str) -> Value {
        wait_until(
            &format!("{what} ({txid}) to be confirmed on {}", self.label),
            CONFIRM_TIMEOUT,
            || {
                let out = self.cli(&["getrawtransaction", txid, "1"]);
                if !out.status.success() {
                    return Err(out.stderr);
                }
                let tx: Value = serde_json::from_str(&out.stdout).map_err(|e| e.to_string())?;
                match tx["confirmations"].as_u64() {
                    Some(c) if c >= 1 => Ok(tx),
                    _ => Err(format!("confirmations: {}", tx["confirmations"])),
                }
            },
        )
    }

    /// `wattle-cli energybc stop`, then waits for the process to exit.
    fn stop(&mut self) {
        let said = self.ok(&["stop"]);
        assert!(
            said.contains("stopping"),
            "{}: stop said {said:?}",
            self.label
        );
        let label = self.label;
        let status = wait_until(
            &format!("{label}'s wattled to exit after stop"),
            DAEMON_TIMEOUT,
            || self.exited().ok_or_else(|| "still running".to_string()),
        );
        assert!(status.success(), "{label}: wattled exited with {status}");
        self.child = None;
    }

    fn diagnostics(&self) -> String {
        let log = std::fs::read_to_string(self.dir.path().join(CHAIN).join("debug.log"))
            .unwrap_or_default();
        let tail: Vec<&str> = log.lines().rev().take(40).collect();
        format!(
            "--- {} stdout:\n{}\n--- {} stderr:\n{}\n--- {} debug.log (last lines):\n{}",
            self.label,
            self.printed().join("\n"),
            self.label,
            self.stderr
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .join("\n"),
            self.label,
            tail.into_iter().rev().collect::<Vec<_>>().join("\n")
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

// ---------------------------------------------------------------------------------------------
// Shapes
// ---------------------------------------------------------------------------------------------

fn is_hex(s: &str) -> bool {
    !s.is_empty()
        && s.len().is_multiple_of(2)
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

fn assert_txid(s: &str, what: &str) {
    assert!(
        s.len() == 64 && is_hex(s),
        "{what}: expected a txid (64 lowercase hex digits), got {s:?}"
    );
}

/// A Base58 address as MultiChain prints it.
fn assert_address(s: &str, what: &str) {
    const BASE58: &str = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz";
    assert!(
        (26..=50).contains(&s.len()) && s.chars().all(|c| BASE58.contains(c)),
        "{what}: expected a Base58 address, got {s:?}"
    );
}

/// An asset reference `H-O-P`.
fn assert_assetref(v: &Value, what: &str) -> String {
    let s = v
        .as_str()
        .unwrap_or_else(|| panic!("{what}: assetref is not a string: {v}"));
    let parts: Vec<&str> = s.split('-').collect();
    assert!(
        parts.len() == 3
            && parts
                .iter()
                .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit())),
        "{what}: assetref {s:?} is not H-O-P"
    );
    s.to_string()
}

fn keys(v: &Value) -> Vec<&str> {
    v.as_object()
        .unwrap_or_else(|| panic!("expected an object, got {v}"))
        .keys()
        .map(String::as_str)
        .collect()
}

fn assert_keys(v: &Value, expected: &[&str], what: &str) {
    assert_eq!(keys(v), expected, "{what}: keys (in order) of {v}");
}

/// A JSON number equal to `expected`.
fn assert_qty(v: &Value, expected: f64, what: &str) {
    assert!(
        v.is_number() && v.as_f64() == Some(expected),
        "{what}: expected the number {expected}, got {v}"
    );
}

/// Asset ids: name → assetref, learnt from the first results that show them.
#[derive(Default)]
struct Refs {
    energy: Option<String>,
    ecoin: Option<String>,
}

impl Refs {
    fn check(&mut self, name: &str, assetref: &Value, what: &str) {
        let r = assert_assetref(assetref, what);
        let slot = match name {
            "energy" => &mut self.energy,
            "ecoin" => &mut self.ecoin,
            other => panic!("{what}: unexpected asset {other:?}"),
        };
        match slot {
            Some(known) => assert_eq!(&r, known, "{what}: assetref of {name}"),
            None => *slot = Some(r),
        }
    }
}

/// An asset list `[{name, assetref, qty}]` holding exactly `expected` (name, qty), any order.
fn assert_assets(v: &Value, expected: &[(&str, f64)], refs: &mut Refs, what: &str) {
    let list = v
        .as_array()
        .unwrap_or_else(|| panic!("{what}: expected an array, got {v}"));
    assert_eq!(
        list.len(),
        expected.len(),
        "{what}: expected {expected:?}, got {v}"
    );
    for (name, qty) in expected {
        let entry = list
            .iter()
            .find(|e| e["name"] == *name)
            .unwrap_or_else(|| panic!("{what}: no {name} entry in {v}"));
        assert_keys(entry, &["name", "assetref", "qty"], what);
        refs.check(name, &entry["assetref"], what);
        assert_qty(&entry["qty"], *qty, &format!("{what}: {name} qty"));
    }
}

/// getmultibalances (all the wallet's addresses): `{ADDR: [...], "total": [...]}` with the
/// wallet's one address first, both lists holding exactly `expected`.
fn assert_multibalances(
    v: &Value,
    addr: &str,
    expected: &[(&str, f64)],
    refs: &mut Refs,
    what: &str,
) {
    assert_keys(v, &[addr, "total"], what);
    assert_assets(&v[addr], expected, refs, &format!("{what} [{addr}]"));
    assert_assets(&v["total"], expected, refs, &format!("{what} [total]"));
}

/// The `offer` / `ask` of decoderawexchange: `{amount: 0, assets: [...]}`.
fn assert_side(v: &Value, expected: &[(&str, f64)], refs: &mut Refs, what: &str) {
    assert_keys(v, &["amount", "assets"], what);
    assert_qty(&v["amount"], 0.0, &format!("{what} amount"));
    assert_assets(&v["assets"], expected, refs, what);
}

/// `{txid, vout}` of preparelockunspent(from).
fn outpoint(v: &Value, what: &str) -> (String, String) {
    assert_keys(v, &["txid", "vout"], what);
    let txid = v["txid"]
        .as_str()
        .unwrap_or_else(|| panic!("{what}: txid is not a string: {v}"));
    assert_txid(txid, what);
    let vout = v["vout"]
        .as_u64()
        .unwrap_or_else(|| panic!("{what}: vout is not an unsigned integer: {v}"));
    (txid.to_string(), vout.to_string())
}

/// The line `PREFIX<rest>` a daemon printed; returns `<rest>`.
fn printed_after<'a>(lines: &'a [String], prefix: &str, who: &str) -> &'a str {
    lines
        .iter()
        .find_map(|l| l.strip_prefix(prefix))
        .unwrap_or_else(|| panic!("{who} printed no line starting {prefix:?}: {lines:#?}"))
}

/// A joiner's first run: it fetches the parameters, prints its address in the grant command for
/// the admin, and keeps running. Returns addr_of_X.
fn join(node: &mut Node, seed: &str) -> String {
    let chain_at_seed = format!("{CHAIN}@{seed}");
    let printed = node.start(&[&chain_at_seed, "-daemon"]);
    let who = format!("{}> wattled {chain_at_seed} -daemon", node.label);
    printed_after(
        &printed,
        &format!("Retrieving blockchain parameters from the seed node {seed}"),
        &who,
    );
    // `… multichain-cli energybc grant addr_of_P connect,send,receive`
    let addr = printed
        .iter()
        .find_map(|l| {
            l.strip_prefix(&format!("wattle-cli {CHAIN} grant "))?
                .strip_suffix(" connect,send,receive")
        })
        .unwrap_or_else(|| {
            panic!(
                "{who}: no `wattle-cli {CHAIN} grant ADDR connect,send,receive` line: {printed:#?}"
            )
        })
        .to_string();
    assert_address(&addr, &who);
    addr
}

/// `X> multichaind energybc -daemon` once the grant is confirmed: the joiner restarts as a member
/// and prints `… multichaind energybc@IP:PORT`.
fn rejoin(node: &mut Node, grant_txid: &str) {
    node.wait_confirmed(grant_txid, "the connect,send,receive grant");
    node.stop();
    let printed = node.start(&[CHAIN, "-daemon"]);
    let who = format!("{}> wattled {CHAIN} -daemon", node.label);
    printed_after(
        &printed,
        "Other nodes can connect to this node using:",
        &who,
    );
    let seed = printed_after(&printed, &format!("wattled {CHAIN}@"), &who);
    let info = node.json(&["getinfo"]);
    assert_eq!(
        info["nodeaddress"],
        format!("{CHAIN}@{seed}").as_str(),
        "{who}: getinfo nodeaddress vs the printed address"
    );
}

// ---------------------------------------------------------------------------------------------
// The session
// ---------------------------------------------------------------------------------------------

#[test]
fn paper_section_2_cli_session_on_three_nodes() {
    let started = Instant::now();
    let bins = bins();
    let mut a = Node::new("A", &bins);
    let mut p = Node::new("P", &bins);
    let mut c = Node::new("C", &bins);
    let mut refs = Refs::default();

    // 2.1 Creating blockchain.
    // A> multichain-util create energybc      (+ -target-block-time=2: 2-second blocks)
    let mut create = Command::new(&bins.util);
    create
        .args(["create", CHAIN])
        .arg(a.datadir_arg())
        .arg("-target-block-time=2");
    let out = run_bounded(create, CLI_TIMEOUT, "A> wattle-util create energybc");
    assert!(
        out.status.success() && out.stdout.contains("successfully generated"),
        "wattle-util create failed ({}):\n{}\n{}",
        out.status,
        out.stdout,
        out.stderr
    );
    // A> multichaind energybc -daemon
    // "Other nodes can connect to this node using:multichaind energybc@172.17.0.1:6823"
    let printed = a.start(&[CHAIN, "-daemon"]);
    printed_after(&printed, "Other nodes can connect to this node using:", "A");
    let seed = printed_after(&printed, &format!("wattled {CHAIN}@"), "A").to_string();
    let info = a.json(&["getinfo"]);
    assert_eq!(info["nodeaddress"], format!("{CHAIN}@{seed}").as_str());
    assert!(
        seed.starts_with("127.0.0.1:"),
        "A printed seed {seed:?}, expected 127.0.0.1:PORT"
    );
    // A> multichain-cli energybc listaddresses    → [{"address": addr_of_A, "ismine": true}]
    let listed = a.json(&["listaddresses"]);
    let list = listed.as_array().expect("listaddresses is an array");
    assert_eq!(list.len(), 1, "A has one address: {listed}");
    assert_keys(&list[0], &["address", "ismine"], "A listaddresses");
    assert_eq!(list[0]["ismine"], true);
    let addr_a = list[0]["address"]
        .as_str()
        .expect("address is a string")
        .to_string();
    assert_address(&addr_a, "A listaddresses");

    // 2.2 Creating assets (quantity 0: the assets exist, nothing is issued yet).
    let energy_txid = a.txid(&[
        "issuefrom",
        &addr_a,
        &addr_a,
        r#"{"name":"energy","open":true}"#,
        "0",
        "0.001",
        "0",
        r#"{"origin":"KW", "stage":"0", "purpose":"periodic generation"}"#,
    ]);
    let ecoin_txid = a.txid(&[
        "issuefrom",
        &addr_a,
        &addr_a,
        r#"{"name":"ecoin","open":true}"#,
        "0",
        "1",
        "0",
        r#"{"origin":"KRW", "stage":"0", "purpose":"ecoin sale"}"#,
    ]);

    // 2.3 Connection of producer nodes.
    // P> multichaind energybc@172.17.0.2:6823 -daemon
    let addr_p = join(&mut p, &seed);
    // A> multichain-cli energybc grant addr_of_P connect,send,receive
    let grant_p = a.txid(&["grant", &addr_p, "connect,send,receive"]);
    // P> multichaind energybc -daemon
    rejoin(&mut p, &grant_p);
    assert_eq!(
        p.json(&["listaddresses"]),
        serde_json::json!([{"address": addr_p, "ismine": true}]),
        "P's wallet address is the one it printed"
    );

    // 2.4 Connection of consumer nodes (the same steps).
    let addr_c = join(&mut c, &seed);
    let grant_c = a.txid(&["grant", &addr_c, "connect,send,receive"]);
    rejoin(&mut c, &grant_c);
    assert_eq!(
        c.json(&["listaddresses"]),
        serde_json::json!([{"address": addr_c, "ismine": true}]),
        "C's wallet address is the one it printed"
    );
    assert!(
        addr_a != addr_p && addr_p != addr_c && addr_a != addr_c,
        "three distinct addresses"
    );

    // The assets are confirmed, and P knows them, before P acts on energy.
    p.wait_confirmed(&energy_txid, "the energy issuance");
    p.wait_confirmed(&ecoin_txid, "the ecoin issuance");

    // 2.5 Granting producer nodes to reissue "energy". Without the grant, P may not: -704, and
    // "from this wallet" because issuemore is issuemorefrom with from-address "*" in MultiChain.
    let issuemore_p = [
        "issuemore",
        addr_p.as_str(),
        "energy",
        "1",
        "0",
        r#"{"origin":"KW", "stage":"n", "approval":"KEP"}"#,
    ];
    let refused = p.cli(&issuemore_p);
    assert!(
        !refused.status.success()
            && refused.stdout.is_empty()
            && refused.stderr.contains("error code: -704")
            && refused.stderr.contains(
                "error message:\nIssuing more units for this asset is not allowed from this wallet"
            ),
        "P's issuemore before the energy.issue grant: {} / {:?} / {:?}",
        refused.status,
        refused.stdout,
        refused.stderr
    );
    // A> multichain-cli energybc grantfrom addr_of_A addr_of_P energy.issue
    let grant_issue = a.txid(&["grantfrom", &addr_a, &addr_p, "energy.issue"]);
    p.wait_confirmed(&grant_issue, "the energy.issue grant");
    // P> multichain-cli energybc issuemore addr_of_P energy 1 0 '{"origin":"KW", ...}'
    let more_energy = p.txid(&issuemore_p);
    p.wait_confirmed(&more_energy, "P's issuemore of energy");
    // P> multichain-cli energybc getmultibalances    → energy 1
    let bal = p.json(&["getmultibalances"]);
    assert_multibalances(&bal, &addr_p, &[("energy", 1.0)], &mut refs, "2.5 P");

    // 2.6 Purchasing "ecoin" of consumer nodes.
    // A> multichain-cli energybc issuemore addr_of_C ecoin 20000 0 '{"origin":"KRW", ...}'
    let more_ecoin = a.txid(&[
        "issuemore",
        &addr_c,
        "ecoin",
        "20000",
        "0",
        r#"{"origin":"KRW", "stage":"n", "approval":"KEP"}"#,
    ]);
    c.wait_confirmed(&more_ecoin, "A's issuemore of ecoin to C");
    // C> multichain-cli energybc getmultibalances    → ecoin 20000
    let bal = c.json(&["getmultibalances"]);
    assert_multibalances(&bal, &addr_c, &[("ecoin", 20000.0)], &mut refs, "2.6 C");

    // 2.7 Sales of "energy" asset in producer node.
    let bal = p.json(&["getmultibalances"]);
    assert_multibalances(&bal, &addr_p, &[("energy", 1.0)], &mut refs, "2.7 P");
    // P> multichain-cli energybc preparelockunspent '{"energy":1}'    → {"txid": a1b2…, "vout": #1}
    let prepared = p.json(&["preparelockunspent", r#"{"energy":1}"#]);
    let (txid1, vout1) = outpoint(&prepared, "P preparelockunspent");
    // P> multichain-cli energybc createrawexchange a1b2… #1 '{"ecoin":1000}'    → blob1
    let blob1 = p.ok(&["createrawexchange", &txid1, &vout1, r#"{"ecoin":1000}"#]);
    assert!(
        is_hex(&blob1),
        "createrawexchange prints a hex blob: {blob1:?}"
    );

    // 2.8 Purchasing "energy" asset in consumer node (the offer's input is known to C).
    c.wait_confirmed(&txid1, "P's prepared energy output");
    // C> multichain-cli energybc decoderawexchange blob1
    let decoded = c.json(&["decoderawexchange", &blob1]);
    assert_keys(
        &decoded,
        &[
            "offer",
            "ask",
            "requiredfee",
            "candisable",
            "cancomplete",
            "complete",
        ],
        "decoderawexchange blob1",
    );
    assert_side(
        &decoded["offer"],
        &[("energy", 1.0)],
        &mut refs,
        "blob1 offer",
    );
    assert_side(
        &decoded["ask"],
        &[("ecoin", 1000.0)],
        &mut refs,
        "blob1 ask",
    );
    assert_qty(&decoded["requiredfee"], 0.0, "blob1 requiredfee");
    assert_eq!(decoded["candisable"], false, "C cannot spend P's input");
    assert_eq!(decoded["cancomplete"], true, "C holds 20000 ecoin");
    assert_eq!(decoded["complete"], false);
    // C> multichain-cli energybc gettotalbalances 0    (the paper prints 10000; C holds 20000)
    let total = c.json(&["gettotalbalances", "0"]);
    assert_assets(
        &total,
        &[("ecoin", 20000.0)],
        &mut refs,
        "C gettotalbalances 0",
    );
    // C> multichain-cli energybc preparelockunspentfrom addr_of_C '{"ecoin":1000}'
    let prepared = c.json(&["preparelockunspentfrom", &addr_c, r#"{"ecoin":1000}"#]);
    let (txid3, vout3) = outpoint(&prepared, "C preparelockunspentfrom");
    // C> multichain-cli energybc appendrawexchange blob1 a3b4… #3 '{"energy":1}'
    //    → {"hex": blob2, "complete": true}
    let appended = c.json(&[
        "appendrawexchange",
        &blob1,
        &txid3,
        &vout3,
        r#"{"energy":1}"#,
    ]);
    assert_keys(&appended, &["hex", "complete"], "appendrawexchange");
    assert_eq!(appended["complete"], true, "appendrawexchange: {appended}");
    let blob2 = appended["hex"]
        .as_str()
        .expect("appendrawexchange hex is a string")
        .to_string();
    assert!(is_hex(&blob2) && blob2 != blob1, "blob2 is a new hex blob");
    // Not in the paper: the completed exchange decodes as in MultiChain's appendix.
    let decoded = c.json(&["decoderawexchange", &blob2]);
    assert_keys(
        &decoded,
        &[
            "offer",
            "ask",
            "completedfee",
            "requiredfee",
            "candisable",
            "cancomplete",
            "complete",
        ],
        "decoderawexchange blob2",
    );
    assert_side(&decoded["offer"], &[], &mut refs, "blob2 offer");
    assert_side(&decoded["ask"], &[], &mut refs, "blob2 ask");
    assert_qty(&decoded["completedfee"], 0.0, "blob2 completedfee");
    assert_qty(&decoded["requiredfee"], 0.0, "blob2 requiredfee");
    assert_eq!(decoded["candisable"], true, "C can spend its own input");
    assert_eq!(decoded["cancomplete"], true);
    assert_eq!(decoded["complete"], true);
    // C> multichain-cli energybc sendrawtransaction blob2    → txid
    let trade = c.txid(&["sendrawtransaction", &blob2]);

    // The trade is confirmed, with the same content, on all three nodes.
    let mut block = None;
    for node in [&a, &p, &c] {
        let tx = node.wait_confirmed(&trade, "the exchange");
        let what = format!("{}: getrawtransaction {trade} 1", node.label);
        match &block {
            None => block = Some(tx["blockhash"].clone()),
            Some(b) => assert_eq!(&tx["blockhash"], b, "{what}: blockhash"),
        }
        let vin = tx["vin"].as_array().expect("vin is an array");
        let spent: Vec<(&str, u64)> = vin
            .iter()
            .map(|i| {
                (
                    i["txid"].as_str().unwrap_or(""),
                    i["vout"].as_u64().unwrap_or(9),
                )
            })
            .collect();
        assert_eq!(
            spent,
            [
                (txid1.as_str(), vout1.parse::<u64>().unwrap()),
                (txid3.as_str(), vout3.parse::<u64>().unwrap())
            ],
            "{what}: the inputs are the two prepared outputs"
        );
        let vout = tx["vout"].as_array().expect("vout is an array");
        assert_eq!(vout.len(), 2, "{what}: one output per side");
        for (n, to, name, qty, raw) in [
            (0, &addr_p, "ecoin", 1000.0, 1000),
            (1, &addr_c, "energy", 1.0, 1000),
        ] {
            assert_eq!(vout[n]["address"], to.as_str(), "{what}: vout {n} address");
            let assets = vout[n]["assets"].as_array().expect("assets is an array");
            assert_eq!(assets.len(), 1, "{what}: vout {n} assets");
            let e = &assets[0];
            assert_keys(
                e,
                &["name", "issuetxid", "assetref", "qty", "raw", "type"],
                &what,
            );
            assert_eq!(e["name"], name, "{what}: vout {n}");
            let issuetxid = if name == "energy" {
                &energy_txid
            } else {
                &ecoin_txid
            };
            assert_eq!(e["issuetxid"], issuetxid.as_str(), "{what}: vout {n}");
            refs.check(name, &e["assetref"], &what);
            assert_qty(&e["qty"], qty, &format!("{what}: vout {n} qty"));
            assert_eq!(e["raw"], raw, "{what}: vout {n} raw");
            assert_eq!(e["type"], "transfer", "{what}: vout {n} type");
        }
    }

    // Final balances. P: 1000 ecoin, and no energy entry: getmultibalances lists the assets the
    // wallet's outputs hold, so an asset with no output is absent (MultiChain adds a 0 entry only
    // when the asset is named in the assets parameter). C: 1 energy and 19000 ecoin.
    let bal = p.json(&["getmultibalances"]);
    assert_multibalances(&bal, &addr_p, &[("ecoin", 1000.0)], &mut refs, "final P");
    let bal = c.json(&["getmultibalances"]);
    assert_multibalances(
        &bal,
        &addr_c,
        &[("energy", 1.0), ("ecoin", 19000.0)],
        &mut refs,
        "final C",
    );
    // Both issuances and follow-ons are the same on all three nodes.
    for node in [&a, &p, &c] {
        let assets = node.json(&["listassets"]);
        let list = assets.as_array().expect("listassets is an array");
        assert_eq!(list.len(), 2, "{}: listassets {assets}", node.label);
        for (name, txid, qty, multiple, details) in [
            (
                "energy",
                &energy_txid,
                1.0,
                1000,
                serde_json::json!({"origin":"KW", "stage":"0", "purpose":"periodic generation"}),
            ),
            (
                "ecoin",
                &ecoin_txid,
                20000.0,
                1,
                serde_json::json!({"origin":"KRW", "stage":"0", "purpose":"ecoin sale"}),
            ),
        ] {
            let what = format!("{}: listassets {name}", node.label);
            let e = list
                .iter()
                .find(|e| e["name"] == name)
                .unwrap_or_else(|| panic!("{what}: missing in {assets}"));
            assert_eq!(e["issuetxid"], txid.as_str(), "{what}");
            refs.check(name, &e["assetref"], &what);
            assert_eq!(e["multiple"], multiple, "{what}: multiple");
            assert_eq!(e["open"], true, "{what}: open");
            assert_qty(&e["issueqty"], qty, &format!("{what}: issueqty"));
            assert_eq!(e["issuecount"], 2, "{what}: issuecount");
            assert_eq!(e["details"], details, "{what}: details (any order)");
        }
    }

    // A CLI error: an unknown command exits non-zero with MultiChain's error lines on stderr.
    let bad = a.cli(&["nosuchcommand"]);
    assert!(
        !bad.status.success()
            && bad.stdout.is_empty()
            && bad
                .stderr
                .contains("error code: -32601\nerror message:\nMethod not found"),
        "unknown command: {} / {:?} / {:?}",
        bad.status,
        bad.stdout,
        bad.stderr
    );

    eprintln!(
        "paper session: 3 nodes, exchange {trade} confirmed in {:.1} s",
        started.elapsed().as_secs_f64()
    );
}
