//! `netbench`: the network benchmark on real `wattled` processes on 127.0.0.1.
//!
//! It starts an admin node and `--nodes - 1` joiners (each joins through the admin's seed address
//! and is granted connect,send,receive; only the admin mines), funds addresses of its own in a few
//! large transactions it signs itself, and runs the phases asked for (all by default):
//! confirmation latency, throughput for a fixed time, and a fresh node's sync of a long chain;
//! on request also confirmation latency under a load of order-book orders (`--orders`).
//! It prints a table and writes the figures as JSON. The nodes are stopped at the end, and killed
//! on an error, a panic, SIGINT, SIGTERM or SIGHUP. See `--help` and BENCHMARKS.md.
//!
//! It builds nothing: `cargo build --release -p wattle-node -p wattle-benches`, then
//! `target/release/netbench`.

use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};
use wattle_benches::cluster::*;
use wattle_benches::network::coins::{self, Signed};
use wattle_benches::network::latency::{self, Mode, Stats};
use wattle_benches::network::load::{self, Outcome};
use wattle_benches::network::orders;
use wattle_benches::network::sync::{self, Joined};
use wattle_ledger::ChainParams;

const CHAIN: &str = "netbench";
/// Coins (lanes) the sync phase's chain is built along: transfers per round.
const LANES: usize = 10_000;

const USAGE: &str = "Usage: netbench [--nodes N] [--latency] [--throughput] [--sync] [--orders]
                [--seconds S] [--sync-txs M] [--json PATH] [--keep] [more options below]

Starts N real wattled processes on 127.0.0.1: an admin (the only miner) and N-1 nodes that join
through the admin's seed address and are granted connect,send,receive. It funds 1,000 addresses
of its own with coins of an asset (in transactions of up to 9,999 outputs that it signs itself)
and runs the phases asked for, by default the first three, in this order:

  --latency     confirmation latency: pre-signed transfers sent with sendrawtransaction to the
                admin, each timed until getrawtransaction shows it in a block on every node
                (polled every --poll-ms); --warmup unmeasured transfers, then --txs sequential
                ones (the next is sent when the previous one is confirmed everywhere), then --txs
                at a steady --rate. Printed: min, median, p90, p99, max, mean in ms.
  --throughput  for --seconds, --conns threads submit pre-signed independent transfers (a pool
                of --seconds x --max-rate, signed before the clock starts) to the nodes in turn
                over kept-alive connections. Submitted tx/s = accepted by sendrawtransaction per
                second; confirmed tx/s = transfers in a block on every node within the time, per
                second; also when the last accepted one was in a block everywhere, and each
                node's CPU seconds over the phase and peak RSS. A 'mempool full' reply is retried.
  --orders      (not in the default set; runs after --latency) for --seconds, a background
                load of pre-signed PlaceOrder transactions (crossing sells and buys of two assets
                of their own, from 50 + 50 addresses, one coin each) at --order-rate per second,
                sent to the nodes in turn (a thread per node) with sendrawtransaction; meanwhile
                sequential probes, alternately an order and a transfer, are timed as in
                --latency (--warmup unmeasured, then up to --txs of each until the time is up).
                Printed: the probes' latency, the load actually sent, the orders per block, the
                fills (the confirmed orders replayed in block order through the ledger in
                memory), node CPU.
  --sync        stops the joiners, extends the chain to --sync-txs transactions (first the
                throughput pool's unsent transfers, then rounds of 10,000 transfers, each spending
                an output of the round before; sent in JSON-RPC batches to the admin), then starts
                a fresh node that joins through the admin's seed, grants it, and times it until
                its block count equals the admin's. Printed: the chain (transactions, blocks, MB),
                time to catch up after the grant, tx/s, the time between its first and last block
                commit in its debug.log, and its CPU and peak RSS; and how long its answers to
                getblockcount (one call every 50 ms) took meanwhile (NETBENCH_TRACE_RPC=1: each
                call's time, to stderr).

Options:
  --nodes N         number of nodes, admin included (default 3)
  --json PATH       where to write the figures (default target/netbench-N.json beside the
                    release directory of this executable)
  --keep            keep the nodes' data directories (debug.log) and print where they are
  --wattled PATH    the node binary (default: wattled next to this executable)
 latency:
  --txs N           measured transfers per latency mode (default 200)
  --rate R          transfers per second in the steady mode (default 20; 0 skips it)
  --warmup N        unmeasured sequential transfers first (default 10)
  --poll-ms MS      polling interval (default 5)
 throughput:
  --seconds S       how long transfers are submitted (default 60)
  --conns C         submitting threads, each with one connection per target node (default 8)
  --batch B         transfers per HTTP request, as a JSON-RPC batch (default 1: single calls)
  --submit-to T     all: every node in turn (default); admin: the admin only
  --max-rate R      transfers pre-signed per second of --seconds (default 10000); if the pool
                    runs out before the time is up the phase says so
 orders:
  --order-rate R    orders per second of the background load (default 100); its time is
                    --seconds (at most 9,999 orders per side: rate x (seconds + 5) <= ~20,000)
 sync:
  --sync-txs M      transactions in the chain the fresh node syncs (default 1000000), counting
                    those of the earlier phases and of the setup

Every wait is bounded (120 s without progress); it exits non-zero with a message on any error.
Build first: cargo build --release -p wattle-node -p wattle-benches";

struct Options {
    wattled: PathBuf,
    nodes: usize,
    latency: bool,
    throughput: bool,
    sync: bool,
    orders: bool,
    order_rate: f64,
    txs: usize,
    rate: f64,
    warmup: usize,
    poll: Duration,
    seconds: f64,
    conns: usize,
    batch: usize,
    all_nodes: bool,
    max_rate: f64,
    sync_txs: usize,
    json: PathBuf,
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
        latency: false,
        throughput: false,
        sync: false,
        orders: false,
        order_rate: 100.0,
        txs: 200,
        rate: 20.0,
        warmup: 10,
        poll: Duration::from_millis(5),
        seconds: 60.0,
        conns: 8,
        batch: 1,
        all_nodes: true,
        max_rate: 10_000.0,
        sync_txs: 1_000_000,
        json: PathBuf::new(),
        keep: false,
    };
    let mut json = None;
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
        let count = |v: String, min: usize| -> Result<usize, String> {
            let n: usize = v.replace('_', "").parse().map_err(|_| bad(&v))?;
            if n < min { Err(bad(&v)) } else { Ok(n) }
        };
        let real = |v: String, positive: bool| -> Result<f64, String> {
            let x: f64 = v.parse().map_err(|_| bad(&v))?;
            if !x.is_finite() || x < 0.0 || (positive && x == 0.0) {
                Err(bad(&v))
            } else {
                Ok(x)
            }
        };
        match name.as_str() {
            "--wattled" => o.wattled = PathBuf::from(value()?),
            "--nodes" => o.nodes = count(value()?, 1)?,
            "--latency" => o.latency = true,
            "--throughput" => o.throughput = true,
            "--sync" => o.sync = true,
            "--orders" => o.orders = true,
            "--order-rate" => o.order_rate = real(value()?, true)?,
            "--txs" => o.txs = count(value()?, 1)?,
            "--rate" => o.rate = real(value()?, false)?,
            "--warmup" => o.warmup = count(value()?, 0)?,
            "--poll-ms" => o.poll = Duration::from_millis(count(value()?, 1)? as u64),
            "--seconds" => o.seconds = real(value()?, true)?,
            "--conns" => o.conns = count(value()?, 1)?,
            "--batch" => o.batch = count(value()?, 1)?,
            "--submit-to" => {
                let v = value()?;
                o.all_nodes = match v.as_str() {
                    "all" => true,
                    "admin" => false,
                    _ => return Err(bad(&v)),
                }
            }
            "--max-rate" => o.max_rate = real(value()?, true)?,
            "--sync-txs" => o.sync_txs = count(value()?, 1)?,
            "--json" => json = Some(PathBuf::from(value()?)),
            "--keep" => o.keep = true,
            "--help" | "-h" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            other => return Err(format!("unknown argument {other}\n\n{USAGE}")),
        }
    }
    if !(o.latency || o.throughput || o.sync || o.orders) {
        (o.latency, o.throughput, o.sync) = (true, true, true);
    }
    o.json = json.unwrap_or_else(|| {
        // target/release/netbench -> target/netbench-N.json
        let target = exe_dir
            .parent()
            .map_or_else(|| PathBuf::from("target"), Path::to_path_buf);
        target.join(format!("netbench-{}.json", o.nodes))
    });
    if !o.wattled.is_file() {
        return Err(format!(
            "{} not found: build it with `cargo build --release -p wattle-node` or pass --wattled PATH",
            o.wattled.display()
        ));
    }
    Ok(o)
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

/// What the phases measured, for the summary table and the JSON file.
#[derive(Default)]
struct Figures {
    latency: Vec<(String, Stats, Duration)>,
    latency_json: Vec<Value>,
    throughput: Option<Outcome>,
    built: Option<(usize, f64)>,
    sync: Option<Joined>,
    orders: Option<orders::Outcome>,
}

fn secs(since: Instant) -> f64 {
    since.elapsed().as_secs_f64()
}

fn bench(o: &Options, root: &Path) -> Result<(), String> {
    let params = ChainParams::new(CHAIN);
    let load_before = load_average();
    println!(
        "netbench: {} nodes on 127.0.0.1, {} (block-interval {} ms, empty-block-interval {} ms); {} cores, load average {}",
        o.nodes,
        o.wattled.display(),
        params.block_interval_ms,
        params.empty_block_interval_ms,
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        load_before.map_or("?".into(), |l| format!(
            "{:.2} {:.2} {:.2}",
            l[0], l[1], l[2]
        ))
    );

    // Setup: the nodes, and coins for every phase.
    let setup = Instant::now();
    let mut nodes = start_cluster(&o.wattled, root, &params, o.nodes)?;
    let latency_coins = if o.latency {
        o.warmup + o.txs * if o.rate > 0.0 { 2 } else { 1 }
    } else {
        0
    };
    let pool_size = if o.throughput {
        (o.seconds * o.max_rate).ceil() as usize
    } else {
        0
    };
    let lanes = if o.sync { o.sync_txs.min(LANES) } else { 0 };
    let order_cfg = orders::Config {
        window: Duration::from_secs_f64(o.seconds),
        rate: o.order_rate,
        warmup: o.warmup,
        txs: o.txs,
        poll: o.poll,
    };
    // (load orders, probe orders = probe transfers)
    let (order_load, order_probes) = if o.orders {
        orders::plan_sizes(&order_cfg)
    } else {
        (0, 0)
    };
    let (wallet, groups) = coins::fund(
        &nodes,
        &params,
        &[latency_coins, pool_size, lanes, order_probes],
    )?;
    let mut groups = groups.into_iter();
    let mut group = || groups.next().unwrap_or_default();
    let (latency_coins, pool_coins, lane_coins, probe_coins) = (group(), group(), group(), group());
    let book = if o.orders {
        Some(orders::fund(
            &nodes,
            &params,
            &wallet,
            order_load + order_probes,
        )?)
    } else {
        None
    };
    let h = wait_equal_heights(&nodes, "the nodes to sync the setup")?;
    println!(
        "setup: {} nodes synced at height {h}, {} coins on {} addresses{}, in {:.1} s",
        nodes.len(),
        latency_coins.len() + pool_coins.len() + lane_coins.len() + probe_coins.len(),
        coins::KEYS,
        book.as_ref().map_or(String::new(), |b| format!(
            ", {} orders funded and signed",
            b.signed.len()
        )),
        secs(setup)
    );

    let mut f = Figures::default();
    // Transfers of the throughput pool that were never sent: the sync phase's chain uses them.
    let mut leftover = Vec::new();
    if o.latency {
        let signed: Vec<Signed> = wallet
            .transfers(&latency_coins)
            .into_iter()
            .map(|(s, _)| s)
            .collect();
        let (warm, rest) = signed.split_at(o.warmup);
        let (seq_txs, rate_txs) = rest.split_at(o.txs);
        latency::run_phase(&nodes, warm, Mode::Sequential, o.poll, None)?;
        println!(
            "\n{:<34} {:>5} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8}",
            "latency (ms)", "txs", "min", "median", "p90", "p99", "max", "mean"
        );
        let mut phases = vec![("sequential".to_string(), seq_txs, Mode::Sequential)];
        if o.rate > 0.0 {
            phases.push((format!("{} tx/s", o.rate), rate_txs, Mode::Rate(o.rate)));
        }
        for (name, txs, mode) in phases {
            let started = Instant::now();
            let (samples, round) = latency::run_phase(&nodes, txs, mode, o.poll, None)?;
            let (value, headline) = latency::report(&name, &samples);
            println!(
                "  ({} transfers in {:.1} s; a polling round of the {} nodes took {:.1} ms on average)",
                samples.len(),
                secs(started),
                nodes.len(),
                round.as_secs_f64() * 1e3
            );
            f.latency.push((name, headline, round));
            f.latency_json.push(value);
        }
    }

    if let Some(book) = &book {
        let transfers: Vec<Signed> = wallet
            .transfers(&probe_coins)
            .into_iter()
            .map(|(s, _)| s)
            .collect();
        println!(
            "\norders: {} orders/s for {} s in the background ({} orders signed), probes alternately an order and a transfer",
            o.order_rate, o.seconds, order_load
        );
        let out = orders::run(&nodes, &wallet, book, order_load, &transfers, order_cfg)?;
        f.orders = Some(out);
    }

    if o.throughput {
        let signing = Instant::now();
        let pool: Vec<Signed> = wallet
            .transfers(&pool_coins)
            .into_iter()
            .map(|(s, _)| s)
            .collect();
        println!(
            "\nthroughput: signed {} transfers in {:.1} s; submitting for {} s over {} connections to {}, {} per request",
            pool.len(),
            secs(signing),
            o.seconds,
            o.conns,
            if o.all_nodes {
                "every node"
            } else {
                "the admin"
            },
            o.batch
        );
        let cfg = load::Config {
            window: Duration::from_secs_f64(o.seconds),
            conns: o.conns,
            batch: o.batch,
            all_nodes: o.all_nodes,
        };
        let (out, unsent) = load::run(&nodes, pool, cfg)?;
        leftover = unsent;
        for r in &out.rejections {
            println!("  refused: {r}");
        }
        f.throughput = Some(out);
    }

    if o.sync {
        println!("\nsync: stopping the {} joiners", nodes.len() - 1);
        stop_nodes(&nodes[1..]);
        nodes.truncate(1);
        let admin = &nodes[0];
        let now = sync::chain_size(admin, height(&admin.rpc)?)?;
        // The fresh node's grant adds one transaction.
        let wanted = o.sync_txs.saturating_sub(now.txs + 1);
        println!(
            "sync: the chain has {} transactions; adding {wanted} transfers",
            now.txs
        );
        if wanted > 0 {
            let took = sync::build(
                admin,
                &wallet,
                std::mem::take(&mut leftover),
                lane_coins,
                wanted,
                o.conns.min(4),
            )?;
            println!(
                "sync: built in {took:.1} s ({:.0} tx/s)",
                wanted as f64 / took
            );
            f.built = Some((wanted, took));
        }
        f.sync = Some(sync::join(&o.wattled, &root.join("fresh"), admin)?);
    }

    let load_after = load_average();
    print_summary(o, &f);
    let r2 = |x: f64| (x * 100.0).round() / 100.0;
    let out = json!({
        "nodes": o.nodes,
        "cores": std::thread::available_parallelism().map_or(0, |n| n.get()),
        "load_average_before": load_before,
        "load_average_after": load_after,
        "block_interval_ms": params.block_interval_ms,
        "latency": {
            "poll_ms": o.poll.as_millis() as u64,
            "phases": f.latency_json,
        },
        "throughput": f.throughput.as_ref().map(|t| {
            let mut v = t.to_json();
            v["conns"] = json!(o.conns);
            v["batch"] = json!(o.batch);
            v["submit_to"] = json!(if o.all_nodes { "all" } else { "admin" });
            v
        }),
        "orders": f.orders.as_ref().map(orders::Outcome::to_json),
        "sync": f.sync.as_ref().map(|s| {
            let mut v = s.to_json();
            v["built_transfers"] = json!(f.built.map_or(0, |b| b.0));
            v["build_s"] = json!(f.built.map(|b| r2(b.1)));
            v
        }),
    });
    if let Some(dir) = o.json.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    let text = serde_json::to_string_pretty(&out).map_err(|e| e.to_string())?;
    std::fs::write(&o.json, text + "\n").map_err(|e| format!("{}: {e}", o.json.display()))?;
    println!("\nfigures written to {}", o.json.display());

    stop_nodes(&nodes);
    Ok(())
}

fn print_summary(o: &Options, f: &Figures) {
    let n = o.nodes;
    println!("\n==== netbench: {n} nodes on 127.0.0.1 ====");
    if !f.latency.is_empty() {
        println!(
            "\nlatency, ms: sendrawtransaction on the admin until in a block on all {n} nodes"
        );
        println!(
            "  {:<14} {:>5} {:>8} {:>8} {:>8} {:>8} {:>8} {:>10}",
            "mode", "txs", "min", "median", "p90", "p99", "max", "poll round"
        );
        for (name, s, round) in &f.latency {
            println!(
                "  {name:<14} {:>5} {:>8.1} {:>8.1} {:>8.1} {:>8.1} {:>8.1} {:>10.1}",
                s.count,
                s.min,
                s.median,
                s.p90,
                s.p99,
                s.max,
                round.as_secs_f64() * 1e3
            );
        }
    }
    if let Some(out) = &f.orders {
        orders::print_summary(out, n);
    }
    if let Some(t) = &f.throughput {
        println!(
            "\nthroughput: {} s, {} connections, {} per request, to {}",
            o.seconds,
            o.conns,
            o.batch,
            if o.all_nodes {
                "every node"
            } else {
                "the admin"
            }
        );
        println!(
            "  submitted {:>9.0} tx/s  ({} accepted in {:.1} s, {} refused, {} 'mempool full' retries{})",
            t.submitted_rate(),
            t.accepted,
            t.submit_secs,
            t.rejected,
            t.full_retries,
            if t.exhausted {
                "; THE POOL RAN OUT: raise --max-rate"
            } else {
                ""
            }
        );
        println!(
            "  confirmed {:>9.0} tx/s  ({} in a block on all {n} nodes within the {} s, in {} blocks in all)",
            t.confirmed_rate(),
            t.confirmed_in_window,
            o.seconds,
            t.blocks
        );
        match t.all_confirmed_secs {
            Some(s) => println!(
                "  all {} accepted in a block on every node after {s:.1} s: {:.0} tx/s",
                t.accepted,
                t.accepted as f64 / s
            ),
            None => println!(
                "  only {} of {} accepted were in a block on every node at the end",
                t.confirmed, t.accepted
            ),
        }
        println!(
            "  this benchmark process: {:.1} CPU s (submitting and polling)",
            t.client_cpu_s
        );
        println!("  node   CPU s  CPU % of the phase  peak RSS MB");
        let phase = t.all_confirmed_secs.unwrap_or(t.window_secs);
        for (i, u) in t.usage.iter().enumerate() {
            println!(
                "  {i:<4} {:>7.1} {:>19.0} {:>12.1}",
                u.cpu_s,
                100.0 * u.cpu_s / phase,
                u.peak_rss_kb as f64 / 1024.0
            );
        }
    }
    if let Some(s) = &f.sync {
        println!("\nsync: a fresh node joins through the admin's seed (the joiners stopped)");
        println!(
            "  chain       {} transactions in {} blocks, {:.1} MB{}",
            s.chain.txs,
            s.chain.height,
            s.chain.bytes as f64 / 1e6,
            f.built.map_or(String::new(), |(k, t)| format!(
                " ({k} transfers added in {t:.0} s: {:.0} tx/s)",
                k as f64 / t
            ))
        );
        println!(
            "  caught up   {:.1} s after its grant: {:.0} tx/s ({:.1} s from start to grant{})",
            s.catch_up_s,
            s.rate(),
            s.start_to_grant_s,
            match (s.applying, s.applying_rate()) {
                (Some((t, _)), Some(r)) =>
                    format!("; its debug.log: first to last block commit {t:.1} s, {r:.0} tx/s"),
                _ => String::new(),
            }
        );
        println!(
            "  its RPC     getblockcount every 50 ms while it caught up: {} answers, median {:.1} ms, p99 {:.1}, max {:.1}",
            s.rpc.count, s.rpc.median, s.rpc.p99, s.rpc.max
        );
        println!(
            "  fresh node  CPU {:.1} s, peak RSS {:.1} MB; admin CPU {:.1} s meanwhile",
            s.cpu_s,
            s.peak_rss_kb as f64 / 1024.0,
            s.admin_cpu_s
        );
    }
}
