//! `netbench`: confirmation latency on real `wattled` processes on 127.0.0.1.
//!
//! It starts an admin node and `--nodes - 1` joiners (granted connect,send,receive), waits until
//! they are synced, funds a key of its own with an asset, and signs every transfer it will send
//! before it starts timing. Each measured transfer is timed from just before the
//! `sendrawtransaction` call on the admin until every node reports it with at least one
//! confirmation (`getrawtransaction TXID 1`), polled every `--poll-ms`.
//!
//! Two phases: sequential (the next transfer is sent once the previous one is confirmed on every
//! node) and a steady rate (`--rate` transfers per second, whatever is still unconfirmed).
//! The nodes are stopped at the end, and killed on an error, a panic, SIGINT, SIGTERM or SIGHUP.
//!
//! It builds nothing: `cargo build --release -p wattle-node -p wattle-benches`, then
//! `target/release/netbench` (see `--help`).

use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};
use wattle_benches::cluster::*;
use wattle_ledger::address::{Address, AddressFormat};
use wattle_ledger::amount::Amount;
use wattle_ledger::keys::SecretKey;
use wattle_ledger::sighash;
use wattle_ledger::tx::{Input, OutPoint, Output, TX_VERSION, Transaction};
use wattle_ledger::{ChainParams, Hash256};
use wattle_node::datadir::DataDir;

const CHAIN: &str = "netbench";
/// Raw units of the asset on each pre-split coin; a transfer sends half and keeps half.
const COIN: u64 = 1_000;

const USAGE: &str = "Usage: netbench [--wattled PATH] [--nodes N] [--txs N] [--rate TX_PER_S]
                [--warmup N] [--poll-ms MS] [--json FILE] [--keep]

Starts N real wattled processes on 127.0.0.1 (an admin and N-1 joiners), and measures the time
from sendrawtransaction on the admin until the transaction is confirmed on every node.

  --wattled PATH  the node binary (default: wattled next to this executable)
  --nodes N       number of nodes (default 3)
  --txs N         measured transfers per phase (default 200)
  --rate R        transfers per second in the steady-rate phase (default 20; 0 skips the phase)
  --warmup N      unmeasured sequential transfers first (default 10)
  --poll-ms MS    polling interval (default 5)
  --json FILE     also write the figures as JSON
  --keep          keep the nodes' data directories (debug.log) and print where they are";

// ------------------------------------------------------------------ child processes
#[derive(Clone, Debug)]
// ------------------------------------------------------------------ measurement

/// One measured transfer: times since just before its `sendrawtransaction` call.
struct Sample {
    txid: String,
    /// Wall-clock time of the submission (ms since the Unix epoch), to match the nodes' logs.
    sent_unix_ms: f64,
    /// The `sendrawtransaction` round trip.
    submit: Duration,
    /// When each node was first seen to hold it in a block.
    confirmed: Vec<Duration>,
}

impl Sample {
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
enum Mode {
    Sequential,
    Rate(f64),
}

/// Sends `txs` (hex, txid) to the first node and polls every node until each is confirmed on all.
///
/// A node is asked about its unconfirmed transfers only when its block count has changed since
/// the last poll (and, as a safety net, every 100 ms), so that polling costs three
/// `getblockcount` calls per round however many transfers are in flight.
fn run_phase(
    nodes: &[Node],
    txs: &[(String, String)],
    mode: Mode,
    poll: Duration,
) -> Result<Vec<Sample>, String> {
    let n = nodes.len();
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
    while next < txs.len() || !pending.is_empty() {
        let now = Instant::now();
        let due = next < txs.len()
            && match mode {
                Mode::Sequential => pending.is_empty(),
                Mode::Rate(_) => send_time(next).is_some_and(|t| t <= now),
            };
        if due {
            let (hex, txid) = &txs[next];
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
        let full = last_full.elapsed() >= Duration::from_millis(100);
        if full {
            last_full = round;
        }
        for (i, node) in nodes.iter().enumerate() {
            if pending.iter().all(|p| p.confirmed[i].is_some()) {
                continue;
            }
            let h = height(&node.rpc)?;
            if seen_height[i] == Some(h) && !full {
                continue;
            }
            seen_height[i] = Some(h);
            for p in pending.iter_mut().filter(|p| p.confirmed[i].is_none()) {
                if confirmed(&node.rpc, &p.txid)? {
                    p.confirmed[i] = Some(p.start.elapsed());
                }
            }
        }
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
    Ok(samples)
}

fn unix_ms() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64() * 1e3)
        .unwrap_or(0.0)
}

/// min, median, p90, p99, max, mean in ms (nearest-rank percentiles).
#[derive(Clone, Copy, Debug)]
struct Stats {
    count: usize,
    min: f64,
    median: f64,
    p90: f64,
    p99: f64,
    max: f64,
    mean: f64,
}

fn stats(values: &[Duration]) -> Stats {
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

fn stats_json(s: &Stats) -> Value {
    let r = |x: f64| (x * 10.0).round() / 10.0;
    json!({
        "count": s.count, "min_ms": r(s.min), "median_ms": r(s.median), "p90_ms": r(s.p90),
        "p99_ms": r(s.p99), "max_ms": r(s.max), "mean_ms": r(s.mean),
    })
}

fn print_row(label: &str, s: &Stats) {
    println!(
        "{label:<34} {:>5} {:>8.1} {:>8.1} {:>8.1} {:>8.1} {:>8.1} {:>8.1}",
        s.count, s.min, s.median, s.p90, s.p99, s.max, s.mean
    );
}

/// The report of one phase: the headline (confirmed on every node) and its breakdown.
fn report(name: &str, samples: &[Sample]) -> Value {
    let all: Vec<Duration> = samples.iter().map(Sample::everywhere).collect();
    let submit: Vec<Duration> = samples.iter().map(|s| s.submit).collect();
    let first: Vec<Duration> = samples.iter().map(|s| s.confirmed[0]).collect();
    let headline = stats(&all);
    print_row(&format!("{name}: confirmed on all nodes"), &headline);
    print_row("  sendrawtransaction round trip", &stats(&submit));
    print_row("  confirmed on the submitting node", &stats(&first));
    let mut per_node = Vec::new();
    for i in 1..samples.first().map_or(0, |s| s.confirmed.len()) {
        let v: Vec<Duration> = samples.iter().map(|s| s.confirmed[i]).collect();
        let st = stats(&v);
        print_row(&format!("  confirmed on node {i}"), &st);
        per_node.push(stats_json(&st));
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
    json!({
        "phase": name,
        "samples": each,
        "confirmed_on_all": stats_json(&headline),
        "sendrawtransaction": stats_json(&stats(&submit)),
        "confirmed_on_submitter": stats_json(&stats(&first)),
        "confirmed_on_joiners": per_node,
    })
}

// ------------------------------------------------------------------ setup

struct Options {
    wattled: PathBuf,
    nodes: usize,
    txs: usize,
    rate: f64,
    warmup: usize,
    poll: Duration,
    json: Option<PathBuf>,
    keep: bool,
}

fn parse_options() -> Result<Options, String> {
    let exe_dir = std::env::current_exe()
        .ok()
        .and_then(|p| p.parent().map(Path::to_path_buf))
        .unwrap_or_default();
    let mut o = Options {
        wattled: exe_dir.join("wattled"),
        nodes: 3,
        txs: 200,
        rate: 20.0,
        warmup: 10,
        poll: Duration::from_millis(5),
        json: None,
        keep: false,
    };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let (name, inline) = match a.split_once('=') {
            Some((n, v)) => (n.to_string(), Some(v.to_string())),
            None => (a.clone(), None),
        };
        let mut value = || {
            inline
                .clone()
                .or_else(|| args.next())
                .ok_or_else(|| format!("{name} needs a value"))
        };
        let bad = |v: &str| format!("invalid value for {name}: {v}");
        match name.as_str() {
            "--wattled" => o.wattled = PathBuf::from(value()?),
            "--nodes" => {
                let v = value()?;
                o.nodes = v.parse().ok().filter(|n| *n >= 1).ok_or_else(|| bad(&v))?
            }
            "--txs" => {
                let v = value()?;
                o.txs = v.parse().ok().filter(|n| *n >= 1).ok_or_else(|| bad(&v))?
            }
            "--rate" => {
                let v = value()?;
                o.rate = v
                    .parse()
                    .ok()
                    .filter(|r: &f64| r.is_finite() && *r >= 0.0)
                    .ok_or_else(|| bad(&v))?
            }
            "--warmup" => {
                let v = value()?;
                o.warmup = v.parse().map_err(|_| bad(&v))?
            }
            "--poll-ms" => {
                let v = value()?;
                o.poll = Duration::from_millis(
                    v.parse().ok().filter(|n| *n >= 1).ok_or_else(|| bad(&v))?,
                )
            }
            "--json" => o.json = Some(PathBuf::from(value()?)),
            "--keep" => o.keep = true,
            "--help" | "-h" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            other => return Err(format!("unknown argument {other}\n\n{USAGE}")),
        }
    }
    if !o.wattled.is_file() {
        return Err(format!(
            "{} not found: build it with `cargo build --release -p wattle-node` or pass --wattled PATH",
            o.wattled.display()
        ));
    }
    Ok(o)
}

/// A transfer of half of a pre-split coin to `to`, the other half back: one input, two outputs.
fn transfer(
    key: &SecretKey,
    coin: OutPoint,
    asset: Hash256,
    to: Address,
    chain_id: &Hash256,
) -> Result<Transaction, String> {
    let half = Amount::new(COIN / 2).map_err(|_| "amount out of range")?;
    let mut tx = Transaction {
        version: TX_VERSION,
        inputs: vec![Input::unsigned(coin)],
        outputs: vec![
            Output::new(to, [(asset, half)]),
            Output::new(key.address(), [(asset, half)]),
        ],
        ops: vec![],
    };
    sighash::sign_all(&mut tx, &[key], chain_id);
    Ok(tx)
}

fn main() -> std::process::ExitCode {
    let _reaper = Reaper;
    watch_signals();
    match run() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(_) if INTERRUPTED.load(Ordering::SeqCst) => std::process::ExitCode::from(130),
        Err(e) => {
            eprintln!("netbench: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn run() -> Result<(), String> {
    let o = parse_options()?;
    let root = tempfile::Builder::new()
        .prefix("netbench-")
        .tempdir()
        .map_err(|e| format!("cannot create a temporary directory: {e}"))?;
    if !o.keep {
        CLEANUP
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(root.path().to_path_buf());
    }
    let result = bench(&o, root.path());
    // Stop the nodes before their data directories go.
    kill_all();
    if o.keep {
        let path = root.keep();
        println!("\ndata directories kept in {}", path.display());
    }
    result
}

fn bench(o: &Options, root: &Path) -> Result<(), String> {
    let params = ChainParams::new(CHAIN);
    let fmt: AddressFormat = params.address_format();
    println!(
        "netbench: {} nodes on 127.0.0.1, {} (block-interval {} ms, empty-block-interval {} ms, fallback-timeout {} ms)",
        o.nodes,
        o.wattled.display(),
        params.block_interval_ms,
        params.empty_block_interval_ms,
        params.fallback_timeout_ms
    );

    // The admin creates the chain with default parameters.
    let admin_dir = root.join("node0");
    let chain_dir = DataDir::new(Some(admin_dir.clone()), CHAIN).chain_dir();
    std::fs::create_dir_all(&chain_dir).map_err(|e| e.to_string())?;
    std::fs::write(
        chain_dir.join("params.toml"),
        wattle_node::params_file::render(&params),
    )
    .map_err(|e| e.to_string())?;
    let setup_start = Instant::now();
    let admin = start_node(&o.wattled, &admin_dir, CHAIN, &[CHAIN.to_string()])?;
    let seed = admin
        .seed
        .clone()
        .ok_or("the admin did not print its seed address")?;
    let mut nodes = vec![admin];
    for i in 1..o.nodes {
        let node = start_node(
            &o.wattled,
            &root.join(format!("node{i}")),
            CHAIN,
            std::slice::from_ref(&seed),
        )?;
        let addr = node
            .grant_address
            .clone()
            .ok_or("a joiner did not print its grant line")?;
        call(
            &nodes[0].rpc,
            "grant",
            json!([addr, "connect,send,receive"]),
        )?;
        nodes.push(node);
    }

    // The benchmark's own key: send and receive, and the asset, split into one coin per transfer.
    let key = SecretKey::from_bytes(b"netbench: the benchmark's key!!!");
    let me = key.address();
    let me_text = fmt.encode(&me);
    call(&nodes[0].rpc, "grant", json!([me_text, "send,receive"]))?;
    let coins = o.warmup + o.txs * if o.rate > 0.0 { 2 } else { 1 };
    let issue = call(
        &nodes[0].rpc,
        "issue",
        json!([me_text, "netbench", coins as u64 * COIN]),
    )?;
    let asset_hex = issue.as_str().ok_or("issue did not return a txid")?;
    let asset = Hash256::from_hex(asset_hex).map_err(|_| "bad txid from issue")?;
    wait_confirmed_everywhere(&nodes[..1], asset_hex, "the issue to be confirmed")?;
    let chain_params = call(&nodes[0].rpc, "getblockchainparams", json!([]))?;
    let chain_id = chain_params
        .get("genesis-hash")
        .and_then(Value::as_str)
        .and_then(|h| Hash256::from_hex(h).ok())
        .ok_or("getblockchainparams has no genesis-hash")?;
    let coin = Amount::new(COIN).map_err(|_| "amount out of range")?;
    let mut split = Transaction {
        version: TX_VERSION,
        inputs: vec![Input::unsigned(OutPoint {
            txid: asset,
            vout: 0,
        })],
        outputs: (0..coins)
            .map(|_| Output::new(me, [(asset, coin)]))
            .collect(),
        ops: vec![],
    };
    sighash::sign_all(&mut split, &[&key], &chain_id);
    let split_txid = split.txid();
    call(&nodes[0].rpc, "sendrawtransaction", json!([split.to_hex()]))?;
    // Confirmed everywhere also means every joiner was granted and has synced.
    wait_confirmed_everywhere(&nodes, &split_txid.to_hex(), "the joiners to sync")?;
    wait_for("equal block counts", || {
        let h0 = height(&nodes[0].rpc)?;
        for n in &nodes[1..] {
            if height(&n.rpc)? != h0 {
                return Ok(false);
            }
        }
        Ok(true)
    })?;
    println!(
        "setup: {} nodes synced at height {} in {:.1} s",
        nodes.len(),
        height(&nodes[0].rpc)?,
        setup_start.elapsed().as_secs_f64()
    );

    // Sign everything before timing anything.
    let to = match nodes.get(1).and_then(|n| n.grant_address.as_deref()) {
        Some(a) => fmt
            .parse(a)
            .map_err(|e| format!("bad joiner address {a}: {e:?}"))?,
        None => me,
    };
    let mut signed = Vec::with_capacity(coins);
    for vout in 0..coins as u32 {
        let tx = transfer(
            &key,
            OutPoint {
                txid: split_txid,
                vout,
            },
            asset,
            to,
            &chain_id,
        )?;
        signed.push((tx.to_hex(), tx.txid().to_hex()));
    }
    let (warm, rest) = signed.split_at(o.warmup);
    let (seq_txs, rate_txs) = rest.split_at(o.txs);

    run_phase(&nodes, warm, Mode::Sequential, o.poll)?;
    println!(
        "\n{:<34} {:>5} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8}",
        "latency (ms)", "txs", "min", "median", "p90", "p99", "max", "mean"
    );
    let mut phases = Vec::new();
    let seq = run_phase(&nodes, seq_txs, Mode::Sequential, o.poll)?;
    phases.push(report("sequential", &seq));
    if o.rate > 0.0 {
        let started = Instant::now();
        let steady = run_phase(&nodes, rate_txs, Mode::Rate(o.rate), o.poll)?;
        let secs = started.elapsed().as_secs_f64();
        phases.push(report(&format!("{} tx/s", o.rate), &steady));
        println!(
            "  ({} transfers in {secs:.1} s: {:.1} tx/s offered and confirmed)",
            steady.len(),
            steady.len() as f64 / secs
        );
    }

    let mut node_usage = Vec::new();
    println!("\nnode   CPU s  peak RSS MB");
    for (i, n) in nodes.iter().enumerate() {
        if let Some((cpu, hwm)) = usage(n.pid) {
            println!("{i:<4} {cpu:>7.2} {:>12.1}", hwm as f64 / 1024.0);
            node_usage.push(json!({"node": i, "cpu_s": cpu, "peak_rss_kb": hwm}));
        }
    }
    if let Some(path) = &o.json {
        let out = json!({
            "nodes": o.nodes,
            "poll_ms": o.poll.as_millis() as u64,
            "block_interval_ms": params.block_interval_ms,
            "phases": phases,
            "node_usage": node_usage,
        });
        let text = serde_json::to_string_pretty(&out).map_err(|e| e.to_string())?;
        std::fs::write(path, text + "\n").map_err(|e| format!("{}: {e}", path.display()))?;
    }

    // Stop the nodes cleanly; whatever is still running after 10 s is killed by the reaper.
    for n in &nodes {
        let _ = n.rpc.call("stop", json!([]));
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let running = CHILDREN
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter_mut()
            .map(|c| matches!(c.try_wait(), Ok(None)))
            .filter(|running| *running)
            .count();
        if running == 0 || Instant::now() > deadline {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(())
}
