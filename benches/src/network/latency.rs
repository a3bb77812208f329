//! Confirmation latency: transfers sent with `sendrawtransaction` to the admin, each timed until
//! every node reports it with at least one confirmation (`getrawtransaction TXID 1`).
//!
//! Two modes: sequential (the next transfer is sent once the previous one is confirmed on every
//! node) and a steady rate (transfers sent on schedule, whatever is still unconfirmed).

use crate::cluster::{Node, PATIENCE, call, session_confirmed, session_height};
use crate::network::coins::Signed;
use serde_json::{Value, json};
use std::time::{Duration, Instant};
use wattle_node::rpc::client::Session;

/// One measured transfer: times since just before its `sendrawtransaction` call.
pub struct Sample {
    txid: String,
    /// Wall-clock time of the submission (ms since the Unix epoch), to match the nodes' logs.
    sent_unix_ms: f64,
    /// The `sendrawtransaction` round trip.
    submit: Duration,
    /// When each node was first seen to hold it in a block.
    confirmed: Vec<Duration>,
}

impl Sample {
    pub fn txid(&self) -> &str {
        &self.txid
    }

    fn everywhere(&self) -> Duration {
        self.confirmed.iter().copied().max().unwrap_or_default()
    }
}

struct Pending {
    txid: String,
    sent_unix_ms: f64,
    start: Instant,
    submit: Duration,
    confirmed: Vec<Option<Duration>>,
}

#[derive(Clone, Copy, Debug)]
pub enum Mode {
    Sequential,
    Rate(f64),
}

/// Sends `txs` to the first node and polls every node until each is confirmed on all. Returns
/// the samples and the mean duration of a polling round (the figures' resolution). With a
/// `deadline`, nothing more is sent after it (what was sent is still waited for).
///
/// A node is asked about its unconfirmed transfers only when its block count has changed since
/// the last poll (and, as a safety net, every 100 ms), so that polling costs one
/// `getblockcount` call per node and round however many transfers are in flight.
pub fn run_phase(
    nodes: &[Node],
    txs: &[Signed],
    mode: Mode,
    poll: Duration,
    deadline: Option<Instant>,
) -> Result<(Vec<Sample>, Duration), String> {
    let (mut rounds, mut polling) = (0u32, Duration::ZERO);
    let n = nodes.len();
    // Kept-alive connections for polling: with many nodes, a connection per call costs more.
    let mut sessions: Vec<Session> = nodes.iter().map(|n| Session::new(n.rpc.clone())).collect();
    let mut samples = Vec::with_capacity(txs.len());
    let mut pending: Vec<Pending> = Vec::new();
    let mut next = 0usize;
    let mut seen_height: Vec<Option<u64>> = vec![None; n];
    let mut last_full = Instant::now();
    let phase_start = Instant::now();
    let send_time = |i: usize| match mode {
        Mode::Sequential => None,
        Mode::Rate(r) => Some(phase_start + Duration::from_secs_f64(i as f64 / r)),
    };
    let open = |now: Instant| deadline.is_none_or(|d| now < d);
    while (next < txs.len() && open(Instant::now())) || !pending.is_empty() {
        let now = Instant::now();
        let due = next < txs.len()
            && open(now)
            && match mode {
                Mode::Sequential => pending.is_empty(),
                Mode::Rate(_) => send_time(next).is_some_and(|t| t <= now),
            };
        if due {
            let Signed { hex, txid } = &txs[next];
            let sent_unix_ms = unix_ms();
            let start = Instant::now();
            let got = call(&nodes[0].rpc, "sendrawtransaction", json!([hex]))?;
            let submit = start.elapsed();
            if got.as_str() != Some(txid.as_str()) {
                return Err(format!(
                    "sendrawtransaction returned {got}, expected {txid}"
                ));
            }
            pending.push(Pending {
                txid: txid.clone(),
                sent_unix_ms,
                start,
                submit,
                confirmed: vec![None; n],
            });
            next += 1;
        }

        let round = Instant::now();
        rounds += u32::from(!pending.is_empty());
        let full = last_full.elapsed() >= Duration::from_millis(100);
        if full {
            last_full = round;
        }
        for (i, node) in sessions.iter_mut().enumerate() {
            if pending.iter().all(|p| p.confirmed[i].is_some()) {
                continue;
            }
            let h = session_height(node)?;
            if seen_height[i] == Some(h) && !full {
                continue;
            }
            seen_height[i] = Some(h);
            for p in pending.iter_mut().filter(|p| p.confirmed[i].is_none()) {
                if session_confirmed(node, &p.txid)? {
                    p.confirmed[i] = Some(p.start.elapsed());
                }
            }
        }
        polling += round.elapsed();
        let mut k = 0;
        while k < pending.len() {
            if pending[k].confirmed.iter().all(Option::is_some) {
                let p = pending.remove(k);
                samples.push(Sample {
                    txid: p.txid,
                    sent_unix_ms: p.sent_unix_ms,
                    submit: p.submit,
                    confirmed: p.confirmed.into_iter().flatten().collect(),
                });
            } else if pending[k].start.elapsed() > PATIENCE {
                return Err(format!(
                    "transaction {} not confirmed on every node within {PATIENCE:?} (confirmed on: {:?})",
                    pending[k].txid, pending[k].confirmed
                ));
            } else {
                k += 1;
            }
        }

        // Sequential: send the next one at once when nothing is pending.
        if matches!(mode, Mode::Sequential) && pending.is_empty() {
            continue;
        }
        let mut wake = round + poll;
        if let Some(t) = send_time(next).filter(|_| next < txs.len()) {
            wake = wake.min(t);
        }
        let now = Instant::now();
        if wake > now {
            std::thread::sleep(wake - now);
        }
    }
    Ok((samples, polling / rounds.max(1)))
}

fn unix_ms() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64() * 1e3)
        .unwrap_or(0.0)
}

/// min, median, p90, p99, max, mean in ms (nearest-rank percentiles).
#[derive(Clone, Copy, Debug)]
pub struct Stats {
    pub count: usize,
    pub min: f64,
    pub median: f64,
    pub p90: f64,
    pub p99: f64,
    pub max: f64,
    pub mean: f64,
}

pub fn stats(values: &[Duration]) -> Stats {
    let mut ms: Vec<f64> = values.iter().map(|d| d.as_secs_f64() * 1e3).collect();
    ms.sort_by(f64::total_cmp);
    let rank = |p: f64| {
        let i = ((p / 100.0) * ms.len() as f64).ceil() as usize;
        ms.get(i.saturating_sub(1)).copied().unwrap_or(f64::NAN)
    };
    Stats {
        count: ms.len(),
        min: ms.first().copied().unwrap_or(f64::NAN),
        median: rank(50.0),
        p90: rank(90.0),
        p99: rank(99.0),
        max: ms.last().copied().unwrap_or(f64::NAN),
        mean: ms.iter().sum::<f64>() / ms.len().max(1) as f64,
    }
}

pub fn stats_json(s: &Stats) -> Value {
    let r = |x: f64| (x * 10.0).round() / 10.0;
    json!({
        "count": s.count, "min_ms": r(s.min), "median_ms": r(s.median), "p90_ms": r(s.p90),
        "p99_ms": r(s.p99), "max_ms": r(s.max), "mean_ms": r(s.mean),
    })
}

pub fn print_row(label: &str, s: &Stats) {
    println!(
        "{label:<34} {:>5} {:>8.1} {:>8.1} {:>8.1} {:>8.1} {:>8.1} {:>8.1}",
        s.count, s.min, s.median, s.p90, s.p99, s.max, s.mean
    );
}

/// The report of one phase: the headline (confirmed on every node) and its breakdown.
pub fn report(name: &str, samples: &[Sample]) -> (Value, Stats) {
    let all: Vec<Duration> = samples.iter().map(Sample::everywhere).collect();
    let submit: Vec<Duration> = samples.iter().map(|s| s.submit).collect();
    let first: Vec<Duration> = samples.iter().map(|s| s.confirmed[0]).collect();
    let headline = stats(&all);
    print_row(&format!("{name}: confirmed on all nodes"), &headline);
    print_row("  sendrawtransaction round trip", &stats(&submit));
    print_row("  confirmed on the submitting node", &stats(&first));
    let mut per_node = Vec::new();
    let n = samples.first().map_or(0, |s| s.confirmed.len());
    for i in 1..n {
        let v: Vec<Duration> = samples.iter().map(|s| s.confirmed[i]).collect();
        let st = stats(&v);
        // With many nodes the JSON file has every node; the table only the first few.
        if i < 4 {
            print_row(&format!("  confirmed on node {i}"), &st);
        }
        per_node.push(stats_json(&st));
    }
    if n > 4 {
        println!("  (confirmed on nodes 4..{}: see the JSON file)", n - 1);
    }
    let ms = |d: &Duration| (d.as_secs_f64() * 1e4).round() / 10.0;
    let each: Vec<Value> = samples
        .iter()
        .map(|s| {
            json!({
                "txid": s.txid,
                "sent_unix_ms": (s.sent_unix_ms * 10.0).round() / 10.0,
                "submit_ms": ms(&s.submit),
                "confirmed_ms": s.confirmed.iter().map(ms).collect::<Vec<_>>(),
            })
        })
        .collect();
    let value = json!({
        "phase": name,
        "samples": each,
        "confirmed_on_all": stats_json(&headline),
        "sendrawtransaction": stats_json(&stats(&submit)),
        "confirmed_on_submitter": stats_json(&stats(&first)),
        "confirmed_on_joiners": per_node,
    });
    (value, headline)
}
