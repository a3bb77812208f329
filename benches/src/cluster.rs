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
use wattle_node::rpc::client::{CallError, RpcClient, Session};

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
    confirmed_reply(node.call("getrawtransaction", json!([txid, 1])), node.port)
}

/// [`confirmed`] over a kept-alive connection.
pub fn session_confirmed(node: &mut Session, txid: &str) -> Result<bool, String> {
    let reply = node.call("getrawtransaction", json!([txid, 1]));
    confirmed_reply(reply, node.client.port)
}

fn confirmed_reply(reply: Result<Value, CallError>, port: u16) -> Result<bool, String> {
    match reply {
        Ok(v) => Ok(v
            .get("confirmations")
            .and_then(Value::as_i64)
            .is_some_and(|c| c >= 1)),
        Err(CallError::Rpc { .. }) => Ok(false),
        Err(e) => Err(format!("getrawtransaction on port {port}: {e}")),
    }
}

pub fn height(node: &RpcClient) -> Result<u64, String> {
    height_reply(node.call("getblockcount", json!([])), node.port)
}

/// [`height`] over a kept-alive connection.
pub fn session_height(node: &mut Session) -> Result<u64, String> {
    let reply = node.call("getblockcount", json!([]));
    height_reply(reply, node.client.port)
}

fn height_reply(reply: Result<Value, CallError>, port: u16) -> Result<u64, String> {
    reply
        .map_err(|e| format!("getblockcount on port {port}: {e}"))?
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

// ------------------------------------------------------------------ clusters

/// Writes `params` into the admin's data directory (`root/node0`), starts the admin, then
/// `count - 1` joiners (`root/node1`...) that join through its seed address, each granted
/// connect,send,receive by the admin as soon as it has printed its address.
pub fn start_cluster(
    wattled: &Path,
    root: &Path,
    params: &wattle_ledger::ChainParams,
    count: usize,
) -> Result<Vec<Node>, String> {
    let chain = params.chain_name.as_str();
    let admin_dir = root.join("node0");
    let chain_dir = DataDir::new(Some(admin_dir.clone()), chain).chain_dir();
    std::fs::create_dir_all(&chain_dir).map_err(|e| format!("{}: {e}", chain_dir.display()))?;
    std::fs::write(
        chain_dir.join("params.toml"),
        wattle_node::params_file::render(params),
    )
    .map_err(|e| e.to_string())?;
    let admin = start_node(wattled, &admin_dir, chain, &[chain.to_string()])?;
    let mut nodes = vec![admin];
    for i in 1..count {
        let node = start_joiner(wattled, &root.join(format!("node{i}")), &nodes[0])?;
        nodes.push(node);
    }
    Ok(nodes)
}

/// Starts a node that joins through `admin`'s seed address and has the admin grant it
/// connect,send,receive.
pub fn start_joiner(wattled: &Path, datadir: &Path, admin: &Node) -> Result<Node, String> {
    let seed = admin
        .seed
        .clone()
        .ok_or("the admin did not print its seed address")?;
    let node = start_node(
        wattled,
        datadir,
        &admin.rpc.chain,
        std::slice::from_ref(&seed),
    )?;
    let addr = node
        .grant_address
        .clone()
        .ok_or("a joiner did not print its grant line")?;
    call(&admin.rpc, "grant", json!([addr, "connect,send,receive"]))?;
    Ok(node)
}

/// Waits until every node has the first node's block count.
pub fn wait_equal_heights(nodes: &[Node], what: &str) -> Result<u64, String> {
    let mut h0 = 0;
    wait_for(what, || {
        h0 = height(&nodes[0].rpc)?;
        for n in &nodes[1..] {
            if height(&n.rpc)? != h0 {
                return Ok(false);
            }
        }
        Ok(true)
    })?;
    Ok(h0)
}

/// The chain id (genesis hash) that signatures commit to.
pub fn chain_id(node: &RpcClient) -> Result<wattle_ledger::Hash256, String> {
    call(node, "getblockchainparams", json!([]))?
        .get("genesis-hash")
        .and_then(Value::as_str)
        .and_then(|h| wattle_ledger::Hash256::from_hex(h).ok())
        .ok_or_else(|| "getblockchainparams has no genesis-hash".to_string())
}

/// Asks `nodes` to stop, waits up to 10 s for their processes to exit, then kills what is left;
/// they are no longer in `CHILDREN` afterwards.
pub fn stop_nodes(nodes: &[Node]) {
    for n in nodes {
        let _ = n.rpc.call("stop", json!([]));
    }
    let pids: Vec<u32> = nodes.iter().map(|n| n.pid).collect();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let mut children = CHILDREN.lock().unwrap_or_else(|e| e.into_inner());
        children.retain_mut(|c| !pids.contains(&c.id()) || matches!(c.try_wait(), Ok(None)));
        let running = children.iter().filter(|c| pids.contains(&c.id())).count();
        if running == 0 {
            return;
        }
        if Instant::now() > deadline {
            for c in children.iter_mut().filter(|c| pids.contains(&c.id())) {
                let _ = c.kill();
                let _ = c.wait();
            }
            children.retain(|c| !pids.contains(&c.id()));
            return;
        }
        drop(children);
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The load average (1, 5, 15 minutes) from /proc/loadavg.
pub fn load_average() -> Option<[f64; 3]> {
    let text = std::fs::read_to_string("/proc/loadavg").ok()?;
    let mut it = text.split_whitespace().map(|w| w.parse::<f64>().ok());
    Some([it.next()??, it.next()??, it.next()??])
}
