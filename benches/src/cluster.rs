//! What the network benchmarks share: starting real `wattled` processes on 127.0.0.1, killing
//! them on exit or on a signal, RPC helpers and waits, and per-process CPU and memory from /proc.

use serde_json::{Value, json};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};
use wattle_node::datadir::DataDir;
use wattle_node::rpc::client::{CallError, RpcClient};

/// Longest wait for any one thing (a node start, a sync, a confirmation).
pub const PATIENCE: Duration = Duration::from_secs(120);

/// Every node started so far; killed by `kill_all` (on drop of `Reaper`, or on a signal).
pub static CHILDREN: Mutex<Vec<Child>> = Mutex::new(Vec::new());
/// Set by a signal: errors that follow (the nodes being killed) are not worth reporting.
pub static INTERRUPTED: AtomicBool = AtomicBool::new(false);
/// Data directories to remove when interrupted (empty with `--keep`).
pub static CLEANUP: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

pub fn kill_all() {
    let mut children = CHILDREN.lock().unwrap_or_else(|e| e.into_inner());
    for child in children.iter_mut() {
        let _ = child.kill();
        let _ = child.wait();
    }
    children.clear();
}

/// Kills the nodes when dropped: at the end of `main`, on an error or while unwinding a panic.
pub struct Reaper;

impl Drop for Reaper {
    fn drop(&mut self) {
        kill_all();
    }
}

/// On SIGINT, SIGTERM or SIGHUP: kill the nodes, remove the data directories and exit.
pub fn watch_signals() {
    std::thread::spawn(|| {
        let Ok(rt) = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        else {
            return;
        };
        rt.block_on(async {
            #[cfg(unix)]
            {
                use tokio::signal::unix::{SignalKind, signal};
                let (Ok(mut term), Ok(mut hup)) = (
                    signal(SignalKind::terminate()),
                    signal(SignalKind::hangup()),
                ) else {
                    let _ = tokio::signal::ctrl_c().await;
                    return;
                };
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                    _ = hup.recv() => {}
                }
            }
            #[cfg(not(unix))]
            {
                let _ = tokio::signal::ctrl_c().await;
            }
        });
        INTERRUPTED.store(true, Ordering::SeqCst);
        eprintln!("\ninterrupted; stopping the nodes");
        kill_all();
        for dir in CLEANUP.lock().unwrap_or_else(|e| e.into_inner()).iter() {
            let _ = std::fs::remove_dir_all(dir);
        }
        std::process::exit(130);
    });
}

/// A started node: its RPC client, its address and its process id.
pub struct Node {
    pub rpc: RpcClient,
    pub pid: u32,
    /// The joiner's address from its grant line (the admin's: None).
    pub grant_address: Option<String>,
    /// `CHAIN@127.0.0.1:PORT` (admin only).
    pub seed: Option<String>,
}

/// Starts `wattled` with `args` and reads its output until it reports its RPC port.
pub fn start_node(
    wattled: &Path,
    datadir: &Path,
    chain: &str,
    args: &[String],
) -> Result<Node, String> {
    std::fs::create_dir_all(datadir).map_err(|e| format!("{}: {e}", datadir.display()))?;
    let stderr = std::fs::File::create(datadir.join("stderr.log")).map_err(|e| e.to_string())?;
    let mut all = args.to_vec();
    all.push(format!("-datadir={}", datadir.display()));
    all.push("-port=0".into());
    all.push("-rpcport=0".into());
    let mut child = Command::new(wattled)
        .args(&all)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::from(stderr))
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", wattled.display()))?;
    let pid = child.id();
    let stdout = child.stdout.take().ok_or("no stdout")?;
    CHILDREN
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push(child);

    // Drain stdout for the node's whole life (into stdout.log), passing lines on while we listen.
    let (tx, rx) = mpsc::channel::<String>();
    let log_path = datadir.join("stdout.log");
    std::thread::spawn(move || {
        let mut log = std::fs::File::create(log_path).ok();
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if let Some(f) = log.as_mut() {
                let _ = writeln!(f, "{line}");
            }
            let _ = tx.send(line);
        }
    });

    let deadline = Instant::now() + PATIENCE;
    let (mut seed, mut grant_address, mut seen) = (None, None, Vec::new());
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = match rx.recv_timeout(left) {
            Ok(l) => l,
            Err(_) => {
                return Err(format!(
                    "{} did not report its RPC port within {PATIENCE:?}; output:\n{}\n(see {})",
                    wattled.display(),
                    seen.join("\n"),
                    datadir.display()
                ));
            }
        };
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            ["wattled", s] if s.starts_with(&format!("{chain}@")) => seed = Some(s.to_string()),
            ["wattle-cli", _, "grant", addr, perms] if perms.contains("send") => {
                grant_address = Some(addr.to_string())
            }
            [
                "Listening",
                "for",
                "API",
                "requests",
                "on",
                "port",
                port,
                ..,
            ] => {
                let port: u16 = port
                    .parse()
                    .map_err(|_| format!("cannot read the RPC port in: {line}"))?;
                let dir = DataDir::new(Some(datadir.to_path_buf()), chain);
                let mut rpc = RpcClient::from_datadir(&dir, Some(port))?;
                rpc.timeout = Duration::from_secs(20);
                return Ok(Node {
                    rpc,
                    pid,
                    grant_address,
                    seed,
                });
            }
            _ => {}
        }
        seen.push(line);
    }
}

// ------------------------------------------------------------------ RPC helpers

pub fn call(node: &RpcClient, method: &str, params: Value) -> Result<Value, String> {
    node.call(method, params)
        .map_err(|e| format!("{method} on port {}: {e}", node.port))
}

/// Whether `txid` is in a block on the node's main chain. Unknown transactions are not.
pub fn confirmed(node: &RpcClient, txid: &str) -> Result<bool, String> {
    match node.call("getrawtransaction", json!([txid, 1])) {
        Ok(v) => Ok(v
            .get("confirmations")
            .and_then(Value::as_i64)
            .is_some_and(|c| c >= 1)),
        Err(CallError::Rpc { .. }) => Ok(false),
        Err(e) => Err(format!("getrawtransaction on port {}: {e}", node.port)),
    }
}

pub fn height(node: &RpcClient) -> Result<u64, String> {
    call(node, "getblockcount", json!([]))?
        .as_u64()
        .ok_or_else(|| "getblockcount: not a number".to_string())
}

/// Waits until `what` holds, checking every 20 ms.
pub fn wait_for(what: &str, mut ok: impl FnMut() -> Result<bool, String>) -> Result<(), String> {
    let deadline = Instant::now() + PATIENCE;
    while !ok()? {
        if Instant::now() > deadline {
            return Err(format!("timed out after {PATIENCE:?} waiting for {what}"));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(())
}

pub fn wait_confirmed_everywhere(nodes: &[Node], txid: &str, what: &str) -> Result<(), String> {
    wait_for(what, || {
        for n in nodes {
            if !confirmed(&n.rpc, txid)? {
                return Ok(false);
            }
        }
        Ok(true)
    })
}

/// CPU seconds (user + system) and peak resident memory (bytes) of a process, from /proc.
pub fn usage(pid: u32) -> Option<(f64, u64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = after.split_whitespace().collect();
    // After the command name: state is field 3, utime 14 and stime 15 (1-based in proc(5)).
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let hwm = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0);
    // USER_HZ is 100 on every Linux configuration that matters here.
    Some((ticks as f64 / 100.0, hwm))
}
