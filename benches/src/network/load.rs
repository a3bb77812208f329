//! Throughput: independent pre-signed transfers submitted for a fixed time over several
//! kept-alive connections, and the rate at which they end up in a block on every node.
//!
//! Submitted = accepted by `sendrawtransaction`. A reply "mempool full" (or the per-address
//! quota) is not a rejection: the thread waits 20 ms and sends the same transfers again, until
//! the time is up. Confirmed = in a block on every node: the admin's new blocks are read
//! (`getblock HEIGHT 1`) and their benchmark transfers counted; a block counts once every node's
//! block count has reached it (their hashes at that height are compared with the admin's at the
//! end).

use crate::cluster::{Node, PATIENCE, call, session_height, usage};
use crate::network::coins::Signed;
use serde_json::{Value, json};
use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use wattle_node::rpc::client::{RpcClient, Session};

/// How the transfers are submitted.
#[derive(Clone, Copy, Debug)]
pub struct Config {
    /// How long transfers are submitted.
    pub window: Duration,
    /// Submitting threads, each with one kept-alive connection per target node.
    pub conns: usize,
    /// Transfers per HTTP request (1: single calls; more: JSON-RPC batches).
    pub batch: usize,
    /// Every node in turn, or only the admin.
    pub all_nodes: bool,
}

/// CPU time and peak memory of one node.
#[derive(Clone, Copy, Debug)]
pub struct Usage {
    pub cpu_s: f64,
    pub peak_rss_kb: u64,
}

/// What the phase measured.
pub struct Outcome {
    pub pool: usize,
    pub accepted: usize,
    pub rejected: usize,
    pub rejections: Vec<String>,
    pub full_retries: usize,
    /// First submission until the last reply.
    pub submit_secs: f64,
    /// The pool ran out before the time was up.
    pub exhausted: bool,
    pub window_secs: f64,
    /// Transfers in a block on every node by the end of the window.
    pub confirmed_in_window: usize,
    /// Transfers in a block on every node at the end.
    pub confirmed: usize,
    /// When the last accepted transfer was in a block on every node (None: some never were).
    pub all_confirmed_secs: Option<f64>,
    pub blocks: u64,
    /// Per node, over the phase (CPU) and the process's life (peak RSS).
    pub usage: Vec<Usage>,
    /// CPU seconds of this benchmark process over the phase (submission and polling).
    pub client_cpu_s: f64,
    /// (seconds, accepted, confirmed on all) about once a second.
    pub timeline: Vec<(f64, usize, usize)>,
}

impl Outcome {
    pub fn submitted_rate(&self) -> f64 {
        self.accepted as f64 / self.submit_secs.max(1e-9)
    }
    pub fn confirmed_rate(&self) -> f64 {
        self.confirmed_in_window as f64 / self.window_secs.max(1e-9)
    }

    pub fn to_json(&self) -> Value {
        let r = |x: f64| (x * 100.0).round() / 100.0;
        json!({
            "pool": self.pool,
            "window_s": r(self.window_secs),
            "accepted": self.accepted,
            "rejected": self.rejected,
            "rejections": self.rejections,
            "mempool_full_retries": self.full_retries,
            "submit_s": r(self.submit_secs),
            "pool_exhausted": self.exhausted,
            "submitted_tx_per_s": r(self.submitted_rate()),
            "confirmed_in_window": self.confirmed_in_window,
            "confirmed_tx_per_s": r(self.confirmed_rate()),
            "confirmed_at_end": self.confirmed,
            "all_confirmed_s": self.all_confirmed_secs.map(r),
            "blocks": self.blocks,
            "client_cpu_s": r(self.client_cpu_s),
            "nodes": self.usage.iter().enumerate().map(|(i, u)| json!({
                "node": i, "cpu_s": r(u.cpu_s), "peak_rss_kb": u.peak_rss_kb,
            })).collect::<Vec<_>>(),
            "timeline": self.timeline.iter().map(|(t, a, c)| json!({
                "t_s": r(*t), "accepted": a, "confirmed": c,
            })).collect::<Vec<_>>(),
        })
    }
}

/// A reply that means "not now" rather than "no".
fn busy(message: &str) -> bool {
    message.contains("mempool full") || message.contains("too many unconfirmed")
}

/// Sends `chunk` in one request (a single call, or a JSON-RPC batch); returns the transfers that
/// were not accepted, by index in `chunk`, with the reason.
pub fn submit(node: &mut Session, chunk: &[&Signed]) -> Vec<(usize, String)> {
    if let [one] = chunk {
        return match node.call("sendrawtransaction", json!([one.hex])) {
            Ok(v) if v.as_str() == Some(one.txid.as_str()) => vec![],
            Ok(v) => vec![(0, format!("{}: returned {v}", one.txid))],
            Err(e) => vec![(0, format!("{}: {e}", one.txid))],
        };
    }
    let body: Vec<Value> = chunk
        .iter()
        .enumerate()
        .map(|(id, s)| json!({"method": "sendrawtransaction", "params": [s.hex], "id": id}))
        .collect();
    let all_failed = |why: String| {
        chunk
            .iter()
            .enumerate()
            .map(|(i, s)| (i, format!("{}: {why}", s.txid)))
            .collect()
    };
    let reply = match node.post(&Value::Array(body).to_string()) {
        Ok(r) => r,
        Err(e) => return all_failed(format!("{e:?}")),
    };
    let Ok(Value::Array(replies)) = serde_json::from_str(&reply.body) else {
        return all_failed(format!("HTTP {}: {}", reply.status, reply.body.trim()));
    };
    let mut by_id = vec![None; chunk.len()];
    for r in &replies {
        if let Some(slot) = r
            .get("id")
            .and_then(Value::as_u64)
            .and_then(|id| by_id.get_mut(id as usize))
        {
            *slot = Some(r);
        }
    }
    let mut failed = Vec::new();
    for (i, (s, r)) in chunk.iter().zip(by_id).enumerate() {
        match r {
            Some(r) if r.get("result").and_then(Value::as_str) == Some(s.txid.as_str()) => {}
            Some(r) => {
                let e = r.get("error").unwrap_or(&Value::Null);
                let message = e.get("message").and_then(Value::as_str).unwrap_or("");
                failed.push((i, format!("{}: {message} ({e})", s.txid)));
            }
            None => failed.push((i, format!("{}: no reply in the batch", s.txid))),
        }
    }
    failed
}

/// Submits `chunk` until every transfer in it is accepted or refused for good, retrying those
/// refused as busy every 20 ms until `deadline`. Returns (accepted, busy retries, refused).
pub fn submit_until(
    node: &mut Session,
    chunk: &[&Signed],
    deadline: Instant,
) -> (usize, usize, Vec<String>) {
    let (mut accepted, mut retries) = (0, 0);
    let mut left: Vec<&Signed> = chunk.to_vec();
    loop {
        let failed = submit(node, &left);
        accepted += left.len() - failed.len();
        let (again, refused): (Vec<_>, Vec<_>) = failed.into_iter().partition(|(_, m)| busy(m));
        let refused: Vec<String> = refused.into_iter().map(|(_, m)| m).collect();
        if again.is_empty() || Instant::now() >= deadline {
            return (accepted, retries, refused);
        }
        retries += again.len();
        left = again.iter().map(|(i, _)| left[*i]).collect();
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Runs the phase on `nodes` (the first is the admin, the only miner) with `pool`. Also returns
/// the transfers of the pool that were never sent (still valid, for a later phase).
pub fn run(
    nodes: &[Node],
    pool: Vec<Signed>,
    cfg: Config,
) -> Result<(Outcome, Vec<Signed>), String> {
    let wanted: HashSet<String> = pool.iter().map(|s| s.txid.clone()).collect();
    let pool = Arc::new(pool);
    let admin = &nodes[0].rpc;
    let start_height = crate::cluster::height(admin)?;
    let cpu_before: Vec<f64> = nodes
        .iter()
        .map(|n| usage(n.pid).map_or(0.0, |u| u.0))
        .collect();
    let client_before = usage(std::process::id()).map_or(0.0, |u| u.0);
    let targets: Vec<RpcClient> = if cfg.all_nodes {
        nodes.iter().map(|n| n.rpc.clone()).collect()
    } else {
        vec![admin.clone()]
    };

    let next = Arc::new(AtomicUsize::new(0));
    let accepted = Arc::new(AtomicUsize::new(0));
    let retries = Arc::new(AtomicUsize::new(0));
    let finished = Arc::new(AtomicUsize::new(0));
    let exhausted = Arc::new(AtomicBool::new(false));
    let refused = Arc::new(Mutex::new((0usize, Vec::<String>::new())));
    let start = Instant::now();
    let deadline = start + cfg.window;
    let mut threads = Vec::new();
    for _ in 0..cfg.conns {
        let (pool, next, accepted, retries, finished, exhausted, refused, targets) = (
            pool.clone(),
            next.clone(),
            accepted.clone(),
            retries.clone(),
            finished.clone(),
            exhausted.clone(),
            refused.clone(),
            targets.clone(),
        );
        let batch = cfg.batch;
        threads.push(std::thread::spawn(move || {
            let mut sessions: Vec<Session> = targets.into_iter().map(Session::new).collect();
            while Instant::now() < deadline {
                let i = next.fetch_add(batch, Ordering::Relaxed);
                if i >= pool.len() {
                    exhausted.store(true, Ordering::Relaxed);
                    break;
                }
                let chunk: Vec<&Signed> = pool[i..(i + batch).min(pool.len())].iter().collect();
                let n = sessions.len();
                let node = &mut sessions[(i / batch) % n];
                let (ok, again, bad) = submit_until(node, &chunk, deadline);
                accepted.fetch_add(ok, Ordering::Relaxed);
                retries.fetch_add(again, Ordering::Relaxed);
                if !bad.is_empty() {
                    let mut r = refused.lock().unwrap_or_else(|e| e.into_inner());
                    r.0 += bad.len();
                    let room = 5usize.saturating_sub(r.1.len());
                    let port = node.client.port;
                    r.1.extend(
                        bad.into_iter()
                            .take(room)
                            .map(|m| format!("port {port}: {m}")),
                    );
                }
            }
            finished.fetch_add(1, Ordering::Relaxed);
            Instant::now()
        }));
    }

    // Follow the admin's blocks and every node's block count.
    let mut sessions: Vec<Session> = nodes.iter().map(|n| Session::new(n.rpc.clone())).collect();
    let mut counts: Vec<usize> = Vec::new(); // benchmark transfers in block start_height + 1 + i
    let mut hashes: Vec<String> = Vec::new();
    let (mut admin_seen, mut common) = (start_height, start_height);
    let (mut confirmed, mut in_window) = (0usize, 0usize);
    let mut timeline = Vec::new();
    let mut next_sample = 1.0;
    let mut last_progress = Instant::now();
    let mut all_confirmed = None;
    loop {
        let h0 = session_height(&mut sessions[0])?;
        for h in admin_seen + 1..=h0 {
            let block = sessions[0]
                .call("getblock", json!([h, 1]))
                .map_err(|e| format!("getblock {h} on the admin: {e}"))?;
            let txs = block.get("tx").and_then(Value::as_array);
            counts.push(
                txs.into_iter()
                    .flatten()
                    .filter(|t| t.as_str().is_some_and(|t| wanted.contains(t)))
                    .count(),
            );
            hashes.push(
                block
                    .get("hash")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string(),
            );
        }
        admin_seen = admin_seen.max(h0);
        let mut low = admin_seen;
        for s in &mut sessions[1..] {
            low = low.min(session_height(s)?);
        }
        while common < low {
            confirmed += counts[(common - start_height) as usize];
            common += 1;
            last_progress = Instant::now();
        }
        let t = start.elapsed().as_secs_f64();
        let submitted = accepted.load(Ordering::Relaxed);
        if t <= cfg.window.as_secs_f64() {
            in_window = confirmed;
        }
        if t >= next_sample {
            timeline.push((t, submitted, confirmed));
            next_sample = t.floor() + 1.0;
        }
        let done = finished.load(Ordering::Relaxed) == cfg.conns;
        if done && confirmed >= accepted.load(Ordering::Relaxed) {
            all_confirmed = Some(t);
            timeline.push((t, submitted, confirmed));
            break;
        }
        if done && last_progress.elapsed() > PATIENCE {
            eprintln!(
                "netbench: throughput: no transfer confirmed for {PATIENCE:?}; stopping with {confirmed} of {} confirmed on every node",
                accepted.load(Ordering::Relaxed)
            );
            break;
        }
        if Instant::now() > deadline + PATIENCE * 5 {
            return Err(format!(
                "throughput: still not done {:?} after the window ({confirmed} confirmed on every node)",
                PATIENCE * 5
            ));
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    let submit_end = threads
        .into_iter()
        .map(|t| {
            t.join()
                .map_err(|_| "a submitting thread panicked".to_string())
        })
        .collect::<Result<Vec<_>, _>>()?
        .into_iter()
        .max()
        .unwrap_or(start);
    // Every node's block at the common height must be the admin's.
    if common > start_height {
        let want = &hashes[(common - start_height - 1) as usize];
        for (i, n) in nodes.iter().enumerate().skip(1) {
            let got = call(&n.rpc, "getblockhash", json!([common]))?;
            if got.as_str() != Some(want.as_str()) {
                return Err(format!(
                    "node {i} has block {got} at height {common}, the admin {want}"
                ));
            }
        }
    }
    let client_cpu_s = usage(std::process::id()).map_or(0.0, |u| u.0) - client_before;
    let usage: Vec<Usage> = nodes
        .iter()
        .zip(&cpu_before)
        .map(|(n, before)| {
            let (cpu, hwm) = usage(n.pid).unwrap_or((*before, 0));
            Usage {
                cpu_s: cpu - before,
                peak_rss_kb: hwm,
            }
        })
        .collect();
    let (rejected, rejections) = refused.lock().unwrap_or_else(|e| e.into_inner()).clone();
    let unsent = next.load(Ordering::Relaxed).min(pool.len());
    let pool_len = pool.len();
    let leftover = match Arc::try_unwrap(pool) {
        Ok(mut all) => all.split_off(unsent),
        Err(shared) => shared[unsent..].to_vec(),
    };
    let outcome = Outcome {
        pool: pool_len,
        accepted: accepted.load(Ordering::Relaxed),
        rejected,
        rejections,
        full_retries: retries.load(Ordering::Relaxed),
        submit_secs: submit_end.duration_since(start).as_secs_f64(),
        exhausted: exhausted.load(Ordering::Relaxed),
        window_secs: cfg.window.as_secs_f64(),
        confirmed_in_window: in_window,
        confirmed,
        all_confirmed_secs: all_confirmed,
        blocks: admin_seen - start_height,
        client_cpu_s,
        usage,
        timeline,
    };
    Ok((outcome, leftover))
}
