//! A real `wattled` process in its own network namespace (`ip netns exec`, which execs the
//! daemon, through `setpriv --pdeathsig KILL` when available: the child is the node itself). It listens for peers on its data address and for
//! JSON-RPC on its control address (`-rpcallowip` = the test's end of the control link). Its
//! output is captured; `Drop` kills it and prints its output and log tail if the test failed.

use crate::fabric::{Host, P2P_PORT};
use serde_json::{Value, json};
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tempfile::TempDir;
use wattle_node::datadir::DataDir;
use wattle_node::rpc::client::{CallError, RpcClient};

const START_TIMEOUT: Duration = Duration::from_secs(40);
const RPC_TIMEOUT: Duration = Duration::from_secs(15);
/// Logging: `chain=debug` shows produced blocks and re-announcements
/// (`WATTLE_PARTITION_RUST_LOG` replaces it).
const RUST_LOG: &str = "info,libp2p=warn,wattle_node::chain=debug";

/// Polls `f` every 20 ms until it returns `Ok`, for at most `timeout`; then panics with `what`
/// and the last `Err`.
pub fn wait_until<T>(what: &str, timeout: Duration, mut f: impl FnMut() -> Result<T, String>) -> T {
    let start = Instant::now();
    loop {
        match f() {
            Ok(v) => return v,
            Err(last) if start.elapsed() >= timeout => {
                panic!("timed out after {timeout:?} waiting for {what}; last seen: {last}")
            }
            Err(_) => std::thread::sleep(Duration::from_millis(20)),
        }
    }
}

type Lines = Arc<Mutex<Vec<String>>>;

/// `setpriv --pdeathsig KILL` (util-linux) in front of the daemon when it is there: the node
/// gets SIGKILL when the test thread that started it ends, so a test process killed with
/// SIGKILL (no `Drop`) leaves no node behind, and its namespaces are swept at the next start.
fn die_with_parent() -> &'static [&'static str] {
    static PREFIX: std::sync::OnceLock<&'static [&'static str]> = std::sync::OnceLock::new();
    PREFIX.get_or_init(|| {
        let works = Command::new("setpriv")
            .args(["--pdeathsig", "KILL", "true"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if works {
            &["setpriv", "--pdeathsig", "KILL"]
        } else {
            &[]
        }
    })
}

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

pub struct Node {
    pub label: String,
    pub chain: String,
    pub host: Host,
    dir: TempDir,
    child: Option<Child>,
    stdout: Lines,
    stderr: Lines,
    client: RpcClient,
}

impl Node {
    /// Starts `wattled CHAIN_ARG` on `host`, with `params_toml` written first if this node
    /// creates the chain, dialling `addnode` peers too.
    pub fn start(
        label: &str,
        chain: &str,
        host: &Host,
        chain_arg: &str,
        params_toml: Option<&str>,
        addnode: &[String],
    ) -> Node {
        let dir = tempfile::tempdir().expect("temp dir");
        if let Some(text) = params_toml {
            let cdir = dir.path().join(chain);
            std::fs::create_dir_all(&cdir).expect("chain dir");
            std::fs::write(cdir.join("params.toml"), text).expect("params.toml");
        }
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &host.netns])
            .args(die_with_parent())
            .arg(env!("CARGO_BIN_EXE_wattled"))
            .arg(chain_arg)
            .arg(format!("-datadir={}", dir.path().display()))
            .arg(format!("-bind={}", host.data_ip))
            .arg(format!("-port={P2P_PORT}"))
            .arg(format!("-externalip={}", host.data_ip))
            .arg("-rpcport=0")
            .arg(format!("-rpcallowip={}", host.ctl_peer_ip))
            .arg(format!("-rpcbind={}", host.ctl_ip));
        for peer in addnode {
            cmd.arg(format!("-addnode={peer}"));
        }
        let mut child = cmd
            .env(
                "RUST_LOG",
                std::env::var("WATTLE_PARTITION_RUST_LOG").unwrap_or_else(|_| RUST_LOG.into()),
            )
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn ip netns exec wattled");
        let (stdout, stderr) = (Lines::default(), Lines::default());
        capture(child.stdout.take().unwrap(), stdout.clone());
        capture(child.stderr.take().unwrap(), stderr.clone());
        let mut node = Node {
            label: label.to_string(),
            chain: chain.to_string(),
            host: host.clone(),
            dir,
            child: Some(child),
            stdout,
            stderr,
            client: RpcClient {
                host: host.ctl_ip.clone(),
                port: 0,
                user: String::new(),
                password: String::new(),
                chain: chain.to_string(),
                timeout: RPC_TIMEOUT,
            },
        };
        let rpc_port = wait_until(
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
        let mut client = RpcClient::from_datadir(
            &DataDir::new(Some(node.root().into()), chain),
            Some(rpc_port),
        )
        .unwrap_or_else(|e| panic!("{label}: {e}"));
        client.host = host.ctl_ip.clone();
        client.timeout = RPC_TIMEOUT;
        node.client = client;
        node
    }

    pub fn root(&self) -> &Path {
        self.dir.path()
    }

    pub fn log_path(&self) -> PathBuf {
        self.root().join(&self.chain).join("debug.log")
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    pub fn stdout_lines(&self) -> Vec<String> {
        self.stdout.lock().unwrap().clone()
    }

    pub fn stderr_lines(&self) -> Vec<String> {
        self.stderr.lock().unwrap().clone()
    }

    /// The address a joiner printed for the admin's grant command.
    pub fn grant_line_address(&self) -> String {
        let prefix = format!("wattle-cli {} grant ", self.chain);
        wait_until(
            &format!("{} to print its grant line", self.label),
            Duration::from_secs(10),
            || {
                self.stdout_lines()
                    .iter()
                    .find_map(|l| {
                        l.strip_prefix(&prefix)?
                            .strip_suffix(" connect,send,receive")
                            .map(str::to_string)
                    })
                    .ok_or_else(|| "no grant line yet".to_string())
            },
        )
    }

    pub fn try_rpc(&self, method: &str, params: Value) -> Result<Value, CallError> {
        self.client.call(method, params)
    }

    pub fn rpc(&self, method: &str, params: Value) -> Value {
        match self.client.call(method, params.clone()) {
            Ok(v) => v,
            Err(e) => panic!("{}: {method} {params} failed: {e}", self.label),
        }
    }

    pub fn height(&self) -> u64 {
        let v = self.rpc("getblockcount", json!([]));
        v.as_u64()
            .unwrap_or_else(|| panic!("{}: getblockcount returned {v}", self.label))
    }

    pub fn block_hash(&self, height: u64) -> String {
        let v = self.rpc("getblockhash", json!([height]));
        v.as_str()
            .unwrap_or_else(|| panic!("{}: getblockhash returned {v}", self.label))
            .to_string()
    }

    /// `getblockhash`, `None` when the chain is not that high (any more: a reorganisation to a
    /// heavier but shorter branch lowers the tip).
    pub fn try_block_hash(&self, height: u64) -> Option<String> {
        match self.try_rpc("getblockhash", json!([height])) {
            Ok(v) => v.as_str().map(str::to_string),
            Err(CallError::Rpc { .. }) => None,
            Err(e) => panic!("{}: getblockhash {height}: {e}", self.label),
        }
    }

    /// `(height, hash)` of the tip, read consistently (again if the chain moved in between).
    pub fn tip(&self) -> (u64, String) {
        loop {
            let h = self.height();
            if let Some(hash) = self.try_block_hash(h)
                && self.height() == h
            {
                return (h, hash);
            }
        }
    }

    /// The main chain from `from` to the tip, `(height, hash, block)`, read consistently.
    pub fn chain_from(&self, from: u64) -> Vec<(u64, String, wattle_ledger::block::Block)> {
        'again: loop {
            let (tip, tip_hash) = self.tip();
            let mut out = Vec::new();
            for h in from..=tip {
                let Some(hash) = self.try_block_hash(h) else {
                    continue 'again;
                };
                let block = self.block_by_hash(&hash);
                out.push((h, hash, block));
            }
            if self.tip() == (tip, tip_hash.clone()) && out.last().is_none_or(|l| l.1 == tip_hash) {
                return out;
            }
        }
    }

    /// A block by its id (also off the main chain), decoded.
    pub fn block_by_hash(&self, hash: &str) -> wattle_ledger::block::Block {
        let hex = self.rpc("getblock", json!([hash, 0]));
        wattle_ledger::codec::decode_hex(hex.as_str().expect("block hex"))
            .unwrap_or_else(|e| panic!("{}: block {hash} does not decode: {e}", self.label))
    }

    pub fn mempool_size(&self) -> u64 {
        self.rpc("getmempoolinfo", json!([]))["size"]
            .as_u64()
            .expect("mempool size")
    }

    /// Confirmed balance of `asset` at `address` (any address).
    pub fn balance(&self, address: &str, asset: &str) -> f64 {
        let v = self.rpc("getaddressbalances", json!([address]));
        v.as_array()
            .unwrap_or_else(|| panic!("{}: getaddressbalances returned {v}", self.label))
            .iter()
            .filter(|b| b["name"] == asset)
            .map(|b| b["qty"].as_f64().expect("qty is a number"))
            .sum()
    }

    /// Confirmations of `txid` (0: in the mempool; `None`: unknown here).
    pub fn confirmations(&self, txid: &str) -> Option<u64> {
        match self.try_rpc("getrawtransaction", json!([txid, 1])) {
            Ok(v) => Some(v["confirmations"].as_u64().unwrap_or(0)),
            Err(CallError::Rpc { .. }) => None,
            Err(e) => panic!("{}: getrawtransaction {txid}: {e}", self.label),
        }
    }

    /// Permitted peers (`getpeerinfo`).
    pub fn permitted_peers(&self) -> usize {
        self.rpc("getpeerinfo", json!([]))
            .as_array()
            .map_or(0, |a| a.iter().filter(|p| p["permitted"] == true).count())
    }

    pub fn address(&self) -> String {
        let v = self.rpc("listaddresses", json!([]));
        v[0]["address"]
            .as_str()
            .unwrap_or_else(|| panic!("{}: listaddresses returned {v}", self.label))
            .to_string()
    }

    pub fn diagnostics(&self) -> String {
        let log = self.log();
        let tail: Vec<&str> = log.lines().rev().take(60).collect();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        format!(
            "---- {} ({}) stdout:\n{}\n---- stderr:\n{}\n---- debug.log (last 60 lines):\n{}\n----",
            self.label,
            self.host.netns,
            self.stdout_lines().join("\n"),
            self.stderr_lines().join("\n"),
            tail.join("\n")
        )
    }

    /// Copies the node's debug.log to `dir` (for `WATTLE_PARTITION_LOGS`).
    pub fn keep_log(&self, dir: &Path, prefix: &str) {
        let _ = std::fs::create_dir_all(dir);
        let _ = std::fs::copy(
            self.log_path(),
            dir.join(format!("{prefix}{}-debug.log", self.label)),
        );
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("{}", self.diagnostics());
            if let Ok(dir) = std::env::var("WATTLE_PARTITION_LOGS") {
                self.keep_log(Path::new(&dir), &format!("{}-failed-", self.host.netns));
            }
        }
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
