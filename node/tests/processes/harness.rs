//! A small harness around real `wattled` processes: a chain directory with parameters, a child
//! process whose stdout and stderr are captured by background threads, the ports it printed, a
//! JSON-RPC helper, bounded polling, SIGKILL, graceful `stop`, and a `Drop` that never leaves a
//! process behind (and prints the node's output and log tail when the test failed).

use serde_json::{Value, json};
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tempfile::TempDir;
use wattle_node::datadir::DataDir;
use wattle_node::rpc::client::{CallError, RpcClient};

/// Longest wait for a node to print its RPC port.
const START_TIMEOUT: Duration = Duration::from_secs(40);
/// Longest wait for a node to exit after `stop` or SIGKILL.
const EXIT_TIMEOUT: Duration = Duration::from_secs(20);
/// Longest wait for one JSON-RPC answer.
const RPC_TIMEOUT: Duration = Duration::from_secs(15);
/// Empty blocks come this often (seconds) in test chains: `target-block-time`.
pub const BLOCK_TIME_SECS: u64 = 2;

/// Polls `f` every 50 ms until it returns `Ok`, for at most `timeout`; then panics with `what` and
/// the last `Err` (the state seen last), so a test fails with a clear message and never hangs.
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

/// Writes `ROOT/CHAIN/params.toml` as `wattle-util create CHAIN -target-block-time=2` does,
/// defaults otherwise (one admin, who is the only miner).
pub fn create_chain(root: &Path, chain: &str) {
    let mut params = wattle_ledger::ChainParams::new(chain);
    wattle_node::params_file::set(
        &mut params,
        "target-block-time",
        &BLOCK_TIME_SECS.to_string(),
    )
    .expect("target-block-time is a valid parameter");
    params.validate().expect("test chain parameters are valid");
    let dir = root.join(chain);
    std::fs::create_dir_all(&dir).expect("create the chain directory");
    std::fs::write(
        dir.join("params.toml"),
        wattle_node::params_file::render(&params),
    )
    .expect("write params.toml");
}

/// Lines a child printed, filled by a background thread.
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

/// One `wattled` node: its data directory (removed on drop), the current process and its output.
pub struct Node {
    pub label: String,
    pub chain: String,
    dir: TempDir,
    child: Option<Child>,
    stdout: Lines,
    stderr: Lines,
    pub rpc_port: u16,
    pub p2p_port: u16,
    client: RpcClient,
    /// How many times this node was started (for messages).
    pub starts: u32,
    /// Environment variables set for every start of the process (e.g. `RUST_LOG`).
    env: Vec<(String, String)>,
    /// The length of `debug.log` when the current process was started.
    log_start: u64,
}

impl Node {
    /// Creates a chain in a fresh data directory and starts its first node (the admin).
    pub fn create(label: &str, chain: &str) -> Node {
        Node::create_with_env(label, chain, &[])
    }

    /// `create` with environment variables for every start of the process.
    pub fn create_with_env(label: &str, chain: &str, env: &[(&str, &str)]) -> Node {
        let dir = tempfile::tempdir().expect("temp dir");
        create_chain(dir.path(), chain);
        Node::launch(label, chain, dir, chain, 0, env)
    }

    /// `create` in a given (empty) data directory, e.g. one on a small file system.
    pub fn create_in(label: &str, chain: &str, dir: TempDir) -> Node {
        create_chain(dir.path(), chain);
        Node::launch(label, chain, dir, chain, 0, &[])
    }

    /// Starts a new node in a fresh data directory that joins through `seed` (`CHAIN@HOST:PORT`).
    pub fn join(label: &str, seed: &str) -> Node {
        Node::join_with_env(label, seed, &[])
    }

    /// `join` with environment variables for every start of the process.
    pub fn join_with_env(label: &str, seed: &str, env: &[(&str, &str)]) -> Node {
        let chain = seed.split('@').next().expect("seed has a chain name");
        let dir = tempfile::tempdir().expect("temp dir");
        Node::launch(label, chain, dir, seed, 0, env)
    }

    fn launch(
        label: &str,
        chain: &str,
        dir: TempDir,
        chain_arg: &str,
        port: u16,
        env: &[(&str, &str)],
    ) -> Node {
        let mut node = Node {
            label: label.to_string(),
            chain: chain.to_string(),
            dir,
            child: None,
            stdout: Lines::default(),
            stderr: Lines::default(),
            rpc_port: 0,
            p2p_port: 0,
            client: RpcClient {
                host: "127.0.0.1".into(),
                port: 0,
                user: String::new(),
                password: String::new(),
                chain: chain.to_string(),
                timeout: RPC_TIMEOUT,
            },
            starts: 0,
            env: env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            log_start: 0,
        };
        node.spawn(chain_arg, port, &[]);
        node
    }

    pub fn root(&self) -> &Path {
        self.dir.path()
    }

    fn chain_dir(&self) -> PathBuf {
        self.root().join(&self.chain)
    }

    /// Starts the process and waits until it prints its RPC port; then reads its p2p port from
    /// `getinfo`.
    fn spawn(&mut self, chain_arg: &str, port: u16, extra: &[&str]) {
        assert!(self.child.is_none(), "{}: already running", self.label);
        self.stdout = Lines::default();
        self.stderr = Lines::default();
        self.log_start = std::fs::metadata(self.log_path()).map_or(0, |m| m.len());
        let mut child = Command::new(env!("CARGO_BIN_EXE_wattled"))
            .arg(chain_arg)
            .arg(format!("-datadir={}", self.root().display()))
            .arg(format!("-port={port}"))
            .arg("-rpcport=0")
            .args(extra)
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn wattled");
        capture(child.stdout.take().unwrap(), self.stdout.clone());
        capture(child.stderr.take().unwrap(), self.stderr.clone());
        self.child = Some(child);
        self.starts += 1;
        let label = self.label.clone();
        let rpc_port = wait_until(
            &format!("{label} to print its RPC port"),
            START_TIMEOUT,
            || {
                if let Some(status) = self.exited() {
                    panic!(
                        "{label} exited during start-up with {status}\n{}",
                        self.diagnostics()
                    );
                }
                self.stdout_lines()
                    .iter()
                    .find_map(|l| {
                        l.strip_prefix("Listening for API requests on port ")?
                            .split_whitespace()
                            .next()?
                            .parse::<u16>()
                            .ok()
                    })
                    .ok_or_else(|| format!("stdout so far: {:?}", self.stdout_lines()))
            },
        );
        self.rpc_port = rpc_port;
        self.client = RpcClient::from_datadir(
            &DataDir::new(Some(self.root().into()), &self.chain),
            Some(rpc_port),
        )
        .unwrap_or_else(|e| panic!("{label}: {e}"));
        self.client.timeout = RPC_TIMEOUT;
        let info = self.rpc("getinfo", json!([]));
        self.p2p_port = info["port"]
            .as_u64()
            .and_then(|p| u16::try_from(p).ok())
            .unwrap_or_else(|| panic!("{label}: getinfo has no port: {info}"));
        assert_ne!(self.p2p_port, 0, "{label}: getinfo reports port 0");
    }

    /// Restarts a stopped or killed node with plain `wattled CHAIN -datadir=DIR` (no seed: a
    /// joiner remembers it), on the same p2p port so that peers that know it find it again.
    pub fn restart(&mut self) {
        self.restart_with(&[]);
    }

    /// `restart` with more options (e.g. `-reindex`).
    pub fn restart_with(&mut self, extra: &[&str]) {
        let chain = self.chain.clone();
        let port = self.p2p_port;
        self.spawn(&chain, port, extra);
    }

    /// Runs `wattled` on this (stopped) node's data directory with `extra` options and waits at
    /// most `timeout` for it to exit: (exit status, or `None` if it was still running and was
    /// killed; stdout; stderr). For starts that are expected to fail.
    pub fn run_to_exit(&self, extra: &[&str], timeout: Duration) -> (Option<ExitStatus>, String) {
        assert!(self.child.is_none(), "{}: still running", self.label);
        let mut child = Command::new(env!("CARGO_BIN_EXE_wattled"))
            .arg(&self.chain)
            .arg(format!("-datadir={}", self.root().display()))
            .arg("-port=0")
            .arg("-rpcport=0")
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn wattled");
        let output = Lines::default();
        capture(child.stdout.take().unwrap(), output.clone());
        capture(child.stderr.take().unwrap(), output.clone());
        let deadline = Instant::now() + timeout;
        let status = loop {
            if let Some(status) = child.try_wait().expect("wait for wattled") {
                break Some(status);
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        // The capture threads end with the pipes; give them a moment to take the last lines.
        std::thread::sleep(Duration::from_millis(100));
        let text = output.lock().unwrap().join("\n");
        (status, text)
    }

    /// Everything the current process printed on stdout so far.
    pub fn stdout_lines(&self) -> Vec<String> {
        self.stdout.lock().unwrap().clone()
    }

    /// Everything the current process printed on stderr so far.
    pub fn stderr_lines(&self) -> Vec<String> {
        self.stderr.lock().unwrap().clone()
    }

    /// Forgets a process that exited by itself (so that it can be started again).
    pub fn forget_exited(&mut self) {
        assert!(self.exited().is_some(), "{}: still running", self.label);
        self.child = None;
    }

    /// The exit status if the process has exited.
    pub fn exited(&mut self) -> Option<ExitStatus> {
        self.child.as_mut()?.try_wait().ok().flatten()
    }

    /// The node's `debug.log` (appended to by every start).
    pub fn log_path(&self) -> PathBuf {
        self.chain_dir().join("debug.log")
    }

    /// What the current process wrote to `debug.log` so far.
    pub fn log_since_start(&self) -> String {
        let log = std::fs::read(self.log_path()).unwrap_or_default();
        let from = usize::try_from(self.log_start)
            .unwrap_or(usize::MAX)
            .min(log.len());
        String::from_utf8_lossy(&log[from..]).into_owned()
    }

    /// A JSON-RPC client for the current process (its RPC port changes at every start).
    pub fn client(&self) -> RpcClient {
        self.client.clone()
    }

    /// The seed address the admin printed: `CHAIN@127.0.0.1:PORT`.
    pub fn seed(&self) -> String {
        let prefix = format!("wattled {}@", self.chain);
        let line = self
            .stdout_lines()
            .into_iter()
            .find(|l| l.starts_with(&prefix))
            .unwrap_or_else(|| {
                panic!(
                    "{} printed no `wattled CHAIN@HOST:PORT` line:\n{}",
                    self.label,
                    self.diagnostics()
                )
            });
        let seed = line.trim_start_matches("wattled ").trim().to_string();
        assert_eq!(
            seed,
            format!("{}@127.0.0.1:{}", self.chain, self.p2p_port),
            "{}: the printed seed does not name the node's p2p port",
            self.label
        );
        seed
    }

    /// The address in the line a joiner printed for the admin:
    /// `wattle-cli CHAIN grant ADDR connect,send,receive`.
    pub fn grant_line_address(&self) -> String {
        let prefix = format!("wattle-cli {} grant ", self.chain);
        self.stdout_lines()
            .iter()
            .find_map(|l| {
                l.strip_prefix(&prefix)?
                    .strip_suffix(" connect,send,receive")
                    .map(str::to_string)
            })
            .unwrap_or_else(|| {
                panic!(
                    "{} printed no `{prefix}ADDR connect,send,receive` line:\n{}",
                    self.label,
                    self.diagnostics()
                )
            })
    }

    /// A JSON-RPC call that may fail.
    pub fn try_rpc(&self, method: &str, params: Value) -> Result<Value, CallError> {
        self.client.call(method, params)
    }

    /// A JSON-RPC call that must succeed.
    pub fn rpc(&self, method: &str, params: Value) -> Value {
        match self.client.call(method, params.clone()) {
            Ok(v) => v,
            Err(e) => panic!("{}: {method} {params} failed: {e}", self.label),
        }
    }

    /// `getblockcount`: the tip height (0 = only the genesis block).
    pub fn height(&self) -> u64 {
        let v = self.rpc("getblockcount", json!([]));
        v.as_u64()
            .unwrap_or_else(|| panic!("{}: getblockcount returned {v}", self.label))
    }

    /// The hash of the block at `height` on this node's main chain.
    pub fn block_hash(&self, height: u64) -> String {
        let v = self.rpc("getblockhash", json!([height]));
        v.as_str()
            .unwrap_or_else(|| panic!("{}: getblockhash returned {v}", self.label))
            .to_string()
    }

    /// `(height, hash)` of the tip, read consistently (retried if a block arrives in between).
    pub fn tip(&self) -> (u64, String) {
        loop {
            let h = self.height();
            let hash = self.block_hash(h);
            if self.height() == h {
                return (h, hash);
            }
        }
    }

    /// How much of `asset` `address` holds, as this node sees it (confirmed coins only).
    pub fn balance(&self, address: &str, asset: &str) -> f64 {
        let v = self.rpc("getaddressbalances", json!([address]));
        v.as_array()
            .unwrap_or_else(|| panic!("{}: getaddressbalances returned {v}", self.label))
            .iter()
            .filter(|b| b["name"] == asset)
            .map(|b| b["qty"].as_f64().expect("qty is a number"))
            .sum()
    }

    /// Confirmations of `txid` on this node (0 in the mempool, `None` if unknown).
    pub fn confirmations(&self, txid: &str) -> Option<u64> {
        match self.try_rpc("getrawtransaction", json!([txid, 1])) {
            Ok(v) => Some(v["confirmations"].as_u64().unwrap_or(0)),
            Err(CallError::Rpc { .. }) => None,
            Err(e) => panic!("{}: getrawtransaction {txid}: {e}", self.label),
        }
    }

    /// Waits until `txid` has at least one confirmation on this node.
    pub fn wait_confirmed(&self, txid: &str, timeout: Duration) {
        wait_until(
            &format!("{} to confirm {txid}", self.label),
            timeout,
            || match self.confirmations(txid) {
                Some(c) if c >= 1 => Ok(()),
                other => Err(format!("confirmations {other:?}")),
            },
        )
    }

    /// The wallet's addresses (`listaddresses`).
    pub fn addresses(&self) -> Vec<String> {
        let v = self.rpc("listaddresses", json!([]));
        v.as_array()
            .unwrap_or_else(|| panic!("{}: listaddresses returned {v}", self.label))
            .iter()
            .map(|a| a["address"].as_str().expect("address").to_string())
            .collect()
    }

    /// The node's first wallet address (its identity).
    pub fn address(&self) -> String {
        self.addresses()
            .into_iter()
            .next()
            .unwrap_or_else(|| panic!("{}: empty wallet", self.label))
    }

    /// Kills the process with SIGKILL (no chance to flush or clean up) and reaps it.
    pub fn kill(&mut self) {
        let mut child = self.child.take().expect("the node is running");
        child.kill().expect("SIGKILL");
        let status = child.wait().expect("reap the killed node");
        assert!(
            !status.success(),
            "{}: a SIGKILLed process exited successfully?",
            self.label
        );
    }

    /// Stops the node with the `stop` RPC and waits until it exits with status 0.
    pub fn stop(&mut self) {
        self.rpc("stop", json!([]));
        let label = self.label.clone();
        let status = wait_until(&format!("{label} to exit after stop"), EXIT_TIMEOUT, || {
            self.exited().ok_or_else(|| "still running".to_string())
        });
        assert!(
            status.success(),
            "{label} exited with {status} after stop\n{}",
            self.diagnostics()
        );
        self.child = None;
    }

    /// The node's stdout, stderr and the tail of its debug.log, for failure messages.
    pub fn diagnostics(&self) -> String {
        let log = std::fs::read_to_string(self.log_path()).unwrap_or_default();
        let tail: Vec<&str> = log.lines().rev().take(40).collect();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        format!(
            "---- {} (start #{}) stdout:\n{}\n---- stderr:\n{}\n---- debug.log (last 40 lines):\n{}\n----",
            self.label,
            self.starts,
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

/// Issues `qty` whole units of a new asset `name` from `node`'s first address to itself and waits
/// until it is confirmed there. Returns the txid.
pub fn issue_to_self(node: &Node, name: &str, qty: u64) -> String {
    let me = node.address();
    let txid = node.rpc("issue", json!([me, name, qty, 1]));
    let txid = txid.as_str().expect("issue returns a txid").to_string();
    node.wait_confirmed(&txid, Duration::from_secs(15));
    txid
}

/// Grants `connect,send,receive` to `address` from `admin`; returns the txid.
pub fn grant_ccr(admin: &Node, address: &str) -> String {
    admin
        .rpc("grant", json!([address, "connect,send,receive"]))
        .as_str()
        .expect("grant returns a txid")
        .to_string()
}

/// Waits until `node` has the same block as `reference` at `reference`'s current tip height.
pub fn wait_synced(node: &Node, reference: &Node, timeout: Duration) -> (u64, String) {
    let (h, hash) = reference.tip();
    wait_until(
        &format!("{} to reach {}'s height {h}", node.label, reference.label),
        timeout,
        || {
            let mine = node.height();
            if mine >= h && node.block_hash(h) == hash {
                Ok(())
            } else {
                Err(format!("{} is at height {mine}", node.label))
            }
        },
    );
    (h, hash)
}

/// Waits until `node` holds exactly `qty` of `asset` at `address` (confirmed).
pub fn wait_balance(node: &Node, address: &str, asset: &str, qty: f64, timeout: Duration) {
    wait_until(
        &format!("{} to show {qty} {asset} at {address}", node.label),
        timeout,
        || {
            let b = node.balance(address, asset);
            if b == qty {
                Ok(())
            } else {
                Err(format!("balance {b}"))
            }
        },
    )
}
