//! Sync: the chain is extended to the wanted number of transactions as fast as the admin takes
//! them, then a fresh node joins through the admin's seed address, is granted, and is timed until
//! its block count equals the admin's.
//!
//! The chain is built in rounds of transfers along "lanes": each lane is a coin, and round r+1
//! spends the outputs of round r. A round is signed (one thread, ahead of the submission) while
//! the one before it is submitted in JSON-RPC batches over several connections to the admin;
//! the next round is sent once every transfer of the previous one was accepted, so the mempool
//! always holds the coins a transfer spends.

use crate::cluster::{Node, PATIENCE, call, height, start_node, usage, wait_confirmed_everywhere};
use crate::network::coins::{Coin, Signed, Wallet};
use crate::network::latency::{Stats, stats, stats_json};
use crate::network::load::submit_until;
use serde_json::{Value, json};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, mpsc};
use std::time::{Duration, Instant};
use wattle_node::datadir::DataDir;
use wattle_node::rpc::client::Session;

/// Transfers per JSON-RPC batch while building.
const BUILD_BATCH: usize = 250;

/// Transactions, blocks and bytes of a chain.
#[derive(Clone, Copy, Debug, Default)]
pub struct ChainSize {
    /// Blocks after genesis (= the block count).
    pub height: u64,
    pub txs: usize,
    pub bytes: usize,
}

/// Counts the transactions and bytes of `node`'s blocks 0..=`to`.
pub fn chain_size(node: &Node, to: u64) -> Result<ChainSize, String> {
    let mut s = Session::new(node.rpc.clone());
    let mut size = ChainSize {
        height: to,
        ..ChainSize::default()
    };
    for h in 0..=to {
        let b = s
            .call("getblock", json!([h, 1]))
            .map_err(|e| format!("getblock {h}: {e}"))?;
        size.txs += b.get("tx").and_then(Value::as_array).map_or(0, Vec::len);
        size.bytes += b.get("size").and_then(Value::as_u64).unwrap_or(0) as usize;
    }
    Ok(size)
}

/// Adds `transfers` transfers to the admin's chain, `conns` connections at a time: first those of
/// `ready` (independent, already signed), then rounds along `lanes`. Waits until the admin's
/// mempool is empty. Returns the seconds it took.
pub fn build(
    admin: &Node,
    wallet: &Wallet,
    mut ready: Vec<Signed>,
    lanes: Vec<Coin>,
    transfers: usize,
    conns: usize,
) -> Result<f64, String> {
    let start = Instant::now();
    let width = lanes.len().max(1);
    let (tx, rx) = mpsc::sync_channel::<Vec<Signed>>(2);
    let done = AtomicUsize::new(0);
    std::thread::scope(|s| -> Result<(), String> {
        s.spawn(move || {
            ready.truncate(transfers);
            let mut left = transfers - ready.len();
            let mut ready = ready.into_iter();
            loop {
                let round: Vec<Signed> = ready.by_ref().take(width).collect();
                if round.is_empty() {
                    break;
                }
                if tx.send(round).is_err() {
                    return;
                }
            }
            let mut lanes = lanes;
            while left > 0 {
                let here = left.min(width);
                let (round, next): (Vec<Signed>, Vec<Coin>) =
                    lanes[..here].iter().map(|c| wallet.transfer(*c)).unzip();
                lanes[..here].copy_from_slice(&next);
                if tx.send(round).is_err() {
                    return;
                }
                left -= here;
            }
        });
        let mut last_report = Instant::now();
        for round in rx {
            submit_round(admin, &round, conns)?;
            let d = done.fetch_add(round.len(), Ordering::Relaxed) + round.len();
            if last_report.elapsed() >= Duration::from_secs(10) {
                last_report = Instant::now();
                let secs = start.elapsed().as_secs_f64();
                println!(
                    "  built {d} of {transfers} transfers in {secs:.0} s ({:.0} tx/s accepted)",
                    d as f64 / secs
                );
            }
        }
        Ok(())
    })?;
    // Wait until the admin has mined everything.
    let mut last = (usize::MAX, Instant::now());
    loop {
        let size = call(&admin.rpc, "getmempoolinfo", json!([]))?
            .get("size")
            .and_then(Value::as_u64)
            .unwrap_or(0) as usize;
        if size == 0 {
            break;
        }
        if size < last.0 {
            last = (size, Instant::now());
        } else if last.1.elapsed() > PATIENCE {
            return Err(format!(
                "the admin's mempool stayed at {size} transactions for {PATIENCE:?}"
            ));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Ok(start.elapsed().as_secs_f64())
}

/// Submits one round to the admin over `conns` connections; every transfer must be accepted.
fn submit_round(admin: &Node, round: &[Signed], conns: usize) -> Result<(), String> {
    let next = AtomicUsize::new(0);
    let refused = Mutex::new(Vec::<String>::new());
    let deadline = Instant::now() + PATIENCE;
    std::thread::scope(|s| {
        for _ in 0..conns {
            s.spawn(|| {
                let mut session = Session::new(admin.rpc.clone());
                loop {
                    let i = next.fetch_add(BUILD_BATCH, Ordering::Relaxed);
                    let Some(part) = round.get(i..(i + BUILD_BATCH).min(round.len())) else {
                        break;
                    };
                    if part.is_empty() {
                        break;
                    }
                    let chunk: Vec<&Signed> = part.iter().collect();
                    let (ok, _, bad) = submit_until(&mut session, &chunk, deadline);
                    if ok < chunk.len() {
                        let mut r = refused.lock().unwrap_or_else(|e| e.into_inner());
                        r.extend(bad);
                        if r.is_empty() {
                            r.push(format!("the mempool stayed full for {PATIENCE:?}"));
                        }
                        break;
                    }
                }
            });
        }
    });
    let refused = refused.into_inner().unwrap_or_else(|e| e.into_inner());
    match refused.first() {
        None => Ok(()),
        Some(first) => Err(format!(
            "building the chain: the admin refused {} transfers, e.g. {first}",
            refused.len()
        )),
    }
}

/// What the join measured.
pub struct Joined {
    pub chain: ChainSize,
    /// From the start of the process until the grant was sent.
    pub start_to_grant_s: f64,
    /// From its first block committed to its last, and the transactions of the blocks after the
    /// first (from its debug.log: its RPC waits while it applies a batch of blocks).
    pub applying: Option<(f64, usize)>,
    /// From the grant until its block count equalled the admin's.
    pub catch_up_s: f64,
    /// The fresh node's answers to `getblockcount` while it caught up (one call every 50 ms):
    /// how long its RPC waits for the chain actor while it judges fetched blocks.
    pub rpc: Stats,
    pub cpu_s: f64,
    pub peak_rss_kb: u64,
    pub admin_cpu_s: f64,
}

impl Joined {
    /// Transactions per second of catching up, counted from the grant.
    pub fn rate(&self) -> f64 {
        self.chain.txs as f64 / self.catch_up_s.max(1e-9)
    }
    /// Transactions per second while it applied blocks (first commit to last).
    pub fn applying_rate(&self) -> Option<f64> {
        self.applying
            .filter(|(s, _)| *s > 0.0)
            .map(|(s, txs)| txs as f64 / s)
    }

    pub fn to_json(&self) -> Value {
        let r = |x: f64| (x * 100.0).round() / 100.0;
        json!({
            "chain_height": self.chain.height,
            "chain_txs": self.chain.txs,
            "chain_bytes": self.chain.bytes,
            "start_to_grant_s": r(self.start_to_grant_s),
            "applying_s": self.applying.map(|a| r(a.0)),
            "applying_tx_per_s": self.applying_rate().map(r),
            "catch_up_s": r(self.catch_up_s),
            "tx_per_s": r(self.rate()),
            "getblockcount_while_syncing": stats_json(&self.rpc),
            "fresh_node_cpu_s": r(self.cpu_s),
            "fresh_node_peak_rss_kb": self.peak_rss_kb,
            "admin_cpu_s": r(self.admin_cpu_s),
        })
    }
}

/// Starts a fresh node in `datadir` that joins through the admin, grants it, and waits until its
/// block count equals the admin's.
pub fn join(wattled: &Path, datadir: &Path, admin: &Node) -> Result<Joined, String> {
    let seed = admin
        .seed
        .clone()
        .ok_or("the admin did not print its seed address")?;
    let started = Instant::now();
    let fresh = start_node(
        wattled,
        datadir,
        &admin.rpc.chain,
        std::slice::from_ref(&seed),
    )?;
    let addr = fresh
        .grant_address
        .clone()
        .ok_or("the fresh node did not print its grant line")?;
    let admin_cpu = usage(admin.pid).map_or(0.0, |u| u.0);
    let granted = Instant::now();
    let grant = call(&admin.rpc, "grant", json!([addr, "connect,send,receive"]))?;
    let grant = grant.as_str().unwrap_or_default().to_string();
    wait_confirmed_everywhere(
        std::slice::from_ref(admin),
        &grant,
        "the fresh node's grant",
    )?;
    let target = height(&admin.rpc)?;

    // The fresh node's RPC waits for its chain actor, which judges fetched blocks 50 ms at a
    // time: long timeouts all the same, errors are retried, and its debug.log (a line per block
    // committed) growing counts as progress too.
    let mut client = fresh.rpc.clone();
    client.timeout = PATIENCE;
    let mut session = Session::new(client);
    let log = DataDir::new(Some(datadir.to_path_buf()), &admin.rpc.chain).log_path();
    let log_len = || std::fs::metadata(&log).map_or(0, |m| m.len());
    let (mut seen, mut logged, mut progress) = (0u64, log_len(), Instant::now());
    let mut last_error = String::new();
    let mut answers = Vec::new();
    let trace = std::env::var_os("NETBENCH_TRACE_RPC").is_some();
    let catch_up = loop {
        let asked = Instant::now();
        let answer = session.call("getblockcount", json!([]));
        let took = asked.elapsed();
        answers.push(took);
        if trace {
            let at = asked.duration_since(granted).as_secs_f64();
            eprintln!(
                "getblockcount at {at:.3} s: {:.1} ms",
                took.as_secs_f64() * 1e3
            );
        }
        match answer {
            Ok(v) => {
                let h = v.as_u64().unwrap_or(0);
                if h > seen {
                    seen = h;
                    progress = Instant::now();
                }
                if h >= target {
                    break granted.elapsed().as_secs_f64();
                }
            }
            Err(e) => last_error = e.to_string(),
        }
        if log_len() > logged {
            logged = log_len();
            progress = Instant::now();
        }
        if progress.elapsed() > PATIENCE {
            return Err(format!(
                "the fresh node stayed at height {seen} of {target} for {PATIENCE:?} (last error: {last_error}; see {})",
                datadir.display()
            ));
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let (cpu_s, peak_rss_kb) = usage(fresh.pid).unwrap_or((0.0, 0));
    let admin_cpu_s = usage(admin.pid).map_or(0.0, |u| u.0) - admin_cpu;
    let chain = chain_size(admin, target)?;
    Ok(Joined {
        chain,
        start_to_grant_s: granted.duration_since(started).as_secs_f64(),
        applying: applying_time(
            &DataDir::new(Some(datadir.to_path_buf()), &admin.rpc.chain),
            target,
        ),
        catch_up_s: catch_up,
        rpc: stats(&answers),
        cpu_s,
        peak_rss_kb,
        admin_cpu_s,
    })
}

/// Seconds from the first "block committed" line of a node's debug.log to the one of block `to`,
/// and the transactions of the blocks after the first. (Later lines are the admin's new blocks,
/// e.g. an empty one every empty-block-interval.)
fn applying_time(dir: &DataDir, to: u64) -> Option<(f64, usize)> {
    let log = std::fs::read_to_string(dir.log_path()).ok()?;
    let mut commits = log
        .lines()
        .filter(|l| l.contains("block committed"))
        .filter_map(|l| {
            let stamp = seconds_of_day(l.split_whitespace().next()?)?;
            let field = |name: &str| {
                l.split_whitespace()
                    .find_map(|w| w.strip_prefix(name)?.parse::<usize>().ok())
            };
            Some((stamp, field("height=")?, field("txs=")?))
        })
        .take_while(|(_, h, _)| *h as u64 <= to)
        .map(|(stamp, _, txs)| (stamp, txs));
    let (first, _) = commits.next()?;
    let (mut last, mut txs) = (first, 0);
    for (t, n) in commits {
        // A run across midnight (UTC) wraps around.
        last = if t < last - 43_200.0 { t + 86_400.0 } else { t };
        txs += n;
    }
    Some((last - first, txs))
}

/// `2026-11-25T07:04:44.484398Z` -> seconds since midnight.
fn seconds_of_day(stamp: &str) -> Option<f64> {
    let time = stamp.split_once('T')?.1.trim_end_matches('Z');
    let mut parts = time.split(':');
    let h: f64 = parts.next()?.parse().ok()?;
    let m: f64 = parts.next()?.parse().ok()?;
    let s: f64 = parts.next()?.parse().ok()?;
    Some(h * 3600.0 + m * 60.0 + s)
}
