//! `throughput`: confirmed transactions per second on real `wattled` processes on 127.0.0.1.
//!
//! It starts an admin node and two joiners (granted connect,send,receive), gives a key of its own
//! admin rights and an asset, and then, in a few large transactions it signs itself, grants
//! connect,send,receive to `--txs` addresses of its own and pays each one coin. Once that is
//! confirmed on every node it signs one transfer per address (each address pays its coin to the
//! next one: all independent), and submits them with `sendrawtransaction` from `--conns` threads,
//! to the three nodes in turn or only to the admin (`--submit-to`).
//!
//! Confirmed tx/s = transfers / (time from the first submission until the last of them is in a
//! block on every node), detected by following each node's new blocks (`getblockcount`,
//! `getblockhash`, `getblock HASH 1`). Also reported: the rate at which RPC accepted them, the
//! rejections, and each node's CPU time. The nodes are killed at the end and on an error.
//!
//! It builds nothing: `cargo build --release -p wattle-node -p wattle-benches`, then
//! `target/release/throughput` (see `--help`). The harness (node start, signals, reaping) is a
//! copy of `netbench`'s.

use serde_json::{Value, json};
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use wattle_benches::cluster::*;
use wattle_ledger::address::AddressFormat;
use wattle_ledger::amount::Amount;
use wattle_ledger::keys::SecretKey;
use wattle_ledger::permissions::{GlobalPerm, NO_END, Permission};
use wattle_ledger::sighash;
use wattle_ledger::tx::{Input, Op, OutPoint, Output, TX_VERSION, Transaction};
use wattle_ledger::{ChainParams, Hash256};
use wattle_node::datadir::DataDir;
use wattle_node::rpc::client::{RpcClient, Session};

const CHAIN: &str = "throughput";
/// Addresses granted or paid per setup transaction (below max-tx-outputs, 10000, with change).
const PER_TX: usize = 5_000;

const USAGE: &str =
    "Usage: throughput [--wattled PATH] [--txs N] [--conns C] [--submit-to all|admin]
                  [--batch B] [--keep]

Starts 3 real wattled processes on 127.0.0.1 (an admin and 2 joiners), funds N addresses, signs
one independent transfer per address, submits them with sendrawtransaction over C connections,
and measures confirmed tx/s: N / (first submission .. last transfer confirmed on all 3 nodes).

  --wattled PATH   the node binary (default: wattled next to this executable)
  --txs N          transfers (default 20000)
  --conns C        concurrent submitting threads, each with one kept-alive connection per node (default 8)
  --submit-to T    all: the 3 nodes in turn (default); admin: the admin only
  --batch B        transfers per HTTP request, as a JSON-RPC batch (default 1: single calls)
  --keep           keep the nodes' data directories (debug.log) and print where they are";

// ------------------------------------------------------------------ setup

// ------------------------------------------------------------------ options

struct Options {
    wattled: PathBuf,
    txs: usize,
    conns: usize,
    all_nodes: bool,
    batch: usize,
    keep: bool,
}

fn parse_options() -> Result<Options, String> {
    let exe_dir = std::env::current_exe()
        .ok()
        .and_then(|p| p.parent().map(Path::to_path_buf))
        .unwrap_or_default();
    let mut o = Options {
        wattled: exe_dir.join("wattled"),
        txs: 20_000,
        conns: 8,
        all_nodes: true,
        batch: 1,
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
            "--txs" => {
                let v = value()?;
                o.txs = v.parse().ok().filter(|n| *n >= 2).ok_or_else(|| bad(&v))?
            }
            "--conns" => {
                let v = value()?;
                o.conns = v.parse().ok().filter(|n| *n >= 1).ok_or_else(|| bad(&v))?
            }
            "--submit-to" => {
                let v = value()?;
                o.all_nodes = match v.as_str() {
                    "all" => true,
                    "admin" => false,
                    _ => return Err(bad(&v)),
                }
            }
            "--batch" => {
                let v = value()?;
                o.batch = v.parse().ok().filter(|n| *n >= 1).ok_or_else(|| bad(&v))?
            }
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

fn main() -> std::process::ExitCode {
    let _reaper = Reaper;
    watch_signals();
    match run() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(_) if INTERRUPTED.load(Ordering::SeqCst) => std::process::ExitCode::from(130),
        Err(e) => {
            eprintln!("throughput: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn run() -> Result<(), String> {
    let o = parse_options()?;
    let root = tempfile::Builder::new()
        .prefix("throughput-")
        .tempdir()
        .map_err(|e| format!("cannot create a temporary directory: {e}"))?;
    if !o.keep {
        CLEANUP
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(root.path().to_path_buf());
    }
    let result = bench(&o, root.path());
    kill_all();
    if o.keep {
        let path = root.keep();
        println!("\ndata directories kept in {}", path.display());
    }
    result
}

// ------------------------------------------------------------------ setup

/// The key of benchmark address `i`.
fn key_of(i: usize) -> SecretKey {
    let mut b = [7u8; 32];
    b[..8].copy_from_slice(&(i as u64).to_le_bytes());
    SecretKey::from_bytes(&b)
}

/// Sends `txs` to `node` and waits until the last is confirmed on every node in `on`.
fn submit_and_confirm(
    node: &RpcClient,
    on: &[Node],
    txs: &[Transaction],
    what: &str,
) -> Result<(), String> {
    for tx in txs {
        call(node, "sendrawtransaction", json!([tx.to_hex()]))
            .map_err(|e| format!("{what}: {e}"))?;
    }
    for tx in txs {
        wait_confirmed_everywhere(on, &tx.txid().to_hex(), what)?;
    }
    Ok(())
}

/// Sends `chunk` as one JSON-RPC batch of `sendrawtransaction` calls; returns the rejections.
fn submit_batch(node: &mut Session, chunk: &[(String, String)]) -> Vec<String> {
    let body: Vec<Value> = chunk
        .iter()
        .enumerate()
        .map(|(id, (hex, _))| json!({"method": "sendrawtransaction", "params": [hex], "id": id}))
        .collect();
    let body = Value::Array(body).to_string();
    let reply = match node.post(&body) {
        Ok(r) => r,
        Err(e) => return chunk.iter().map(|(_, t)| format!("{t}: {e:?}")).collect(),
    };
    let replies: Vec<Value> = match serde_json::from_str(&reply.body) {
        Ok(Value::Array(a)) => a,
        _ => {
            return chunk
                .iter()
                .map(|(_, t)| format!("{t}: HTTP {}: {}", reply.status, reply.body.trim()))
                .collect();
        }
    };
    let mut errors = Vec::new();
    for (id, (_, txid)) in chunk.iter().enumerate() {
        let r = replies
            .iter()
            .find(|r| r.get("id").and_then(Value::as_u64) == Some(id as u64));
        match r {
            Some(r) if r.get("result").and_then(Value::as_str) == Some(txid.as_str()) => {}
            Some(r) => errors.push(format!(
                "{txid}: {}",
                r.get("error").unwrap_or(&Value::Null)
            )),
            None => errors.push(format!("{txid}: no reply in the batch")),
        }
    }
    errors
}

/// Txids of the transactions in blocks `from..=to` of `node`.
fn block_txids(node: &RpcClient, from: u64, to: u64) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    for h in from..=to {
        let hash = call(node, "getblockhash", json!([h]))?;
        let block = call(node, "getblock", json!([hash, 1]))?;
        for t in block
            .get("tx")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if let Some(s) = t.as_str() {
                out.push(s.to_string());
            }
        }
    }
    Ok(out)
}

fn bench(o: &Options, root: &Path) -> Result<(), String> {
    let params = ChainParams::new(CHAIN);
    let fmt: AddressFormat = params.address_format();
    let k = o.txs;
    println!(
        "throughput: 3 nodes on 127.0.0.1, {} (block-interval {} ms), {k} transfers over {} connections to {}, {} per request",
        o.wattled.display(),
        params.block_interval_ms,
        o.conns,
        if o.all_nodes {
            "all 3 nodes"
        } else {
            "the admin"
        },
        o.batch
    );

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
    for i in 1..3 {
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
    let admin_rpc = nodes[0].rpc.clone();

    // The benchmark's own key: admin (to grant), send, receive, and the asset.
    let key = SecretKey::from_bytes(b"throughput: the benchmark's key!");
    let me = key.address();
    let me_text = fmt.encode(&me);
    call(&admin_rpc, "grant", json!([me_text, "send,receive,admin"]))?;
    let batches = k.div_ceil(PER_TX);
    let issue = call(
        &admin_rpc,
        "issue",
        json!([me_text, "throughput", (k + batches) as u64]),
    )?;
    let asset_hex = issue.as_str().ok_or("issue did not return a txid")?;
    let asset = Hash256::from_hex(asset_hex).map_err(|_| "bad txid from issue")?;
    wait_confirmed_everywhere(&nodes[..1], asset_hex, "the issue to be confirmed")?;
    let chain_id = call(&admin_rpc, "getblockchainparams", json!([]))?
        .get("genesis-hash")
        .and_then(Value::as_str)
        .and_then(|h| Hash256::from_hex(h).ok())
        .ok_or("getblockchainparams has no genesis-hash")?;
    let one = Amount::new(1).map_err(|_| "amount out of range")?;

    // Split: one coin of the key's per setup transaction (grants and payments).
    let mut split = Transaction {
        version: TX_VERSION,
        inputs: vec![Input::unsigned(OutPoint {
            txid: asset,
            vout: 0,
        })],
        outputs: (0..2 * batches)
            .map(|b| {
                let n = if b < batches {
                    1
                } else {
                    (k - (b - batches) * PER_TX).min(PER_TX) as u64
                };
                Output::new(me, [(asset, Amount::new(n).unwrap_or(one))])
            })
            .collect(),
        ops: vec![],
    };
    sighash::sign_all(&mut split, &[&key], &chain_id);
    let split_txid = split.txid();
    submit_and_confirm(&admin_rpc, &nodes, &[split], "the split")?;

    let keys: Vec<SecretKey> = (0..k).map(key_of).collect();
    let addrs: Vec<_> = keys.iter().map(SecretKey::address).collect();
    let perms = vec![
        Permission::Global(GlobalPerm::Connect),
        Permission::Global(GlobalPerm::Send),
        Permission::Global(GlobalPerm::Receive),
    ];
    // Grants: zero-value outputs to the addresses, one Grant op each, the coin back to the key.
    let mut grants = Vec::new();
    let mut pays = Vec::new();
    for (b, chunk) in addrs.chunks(PER_TX).enumerate() {
        let mut outputs: Vec<Output> = chunk.iter().map(|a| Output::new(*a, [])).collect();
        outputs.push(Output::new(me, [(asset, one)]));
        let ops = (0..chunk.len() as u32)
            .map(|vout| Op::Grant {
                vout,
                permissions: perms.clone(),
                start: 0,
                end: NO_END,
            })
            .collect();
        let mut g = Transaction {
            version: TX_VERSION,
            inputs: vec![Input::unsigned(OutPoint {
                txid: split_txid,
                vout: b as u32,
            })],
            outputs,
            ops,
        };
        sighash::sign_all(&mut g, &[&key], &chain_id);
        grants.push(g);
        let mut p = Transaction {
            version: TX_VERSION,
            inputs: vec![Input::unsigned(OutPoint {
                txid: split_txid,
                vout: (batches + b) as u32,
            })],
            outputs: chunk
                .iter()
                .map(|a| Output::new(*a, [(asset, one)]))
                .collect(),
            ops: vec![],
        };
        sighash::sign_all(&mut p, &[&key], &chain_id);
        pays.push(p);
    }
    submit_and_confirm(&admin_rpc, &nodes, &grants, "the grants")?;
    submit_and_confirm(&admin_rpc, &nodes, &pays, "the payments")?;
    wait_for("equal block counts", || {
        let h0 = height(&nodes[0].rpc)?;
        for n in &nodes[1..] {
            if height(&n.rpc)? != h0 {
                return Ok(false);
            }
        }
        Ok(true)
    })?;
    let start_height = height(&admin_rpc)?;
    println!(
        "setup: {k} addresses granted and funded, 3 nodes synced at height {start_height} in {:.1} s",
        setup_start.elapsed().as_secs_f64()
    );

    // Sign every transfer before timing anything: address i pays its coin to address i+1.
    let sign_start = Instant::now();
    let pay_txids: Vec<Hash256> = pays.iter().map(Transaction::txid).collect();
    let mut signed = Vec::with_capacity(k);
    for i in 0..k {
        let b = i / PER_TX;
        let mut tx = Transaction {
            version: TX_VERSION,
            inputs: vec![Input::unsigned(OutPoint {
                txid: pay_txids[b],
                vout: (i % PER_TX) as u32,
            })],
            outputs: vec![Output::new(addrs[(i + 1) % k], [(asset, one)])],
            ops: vec![],
        };
        sighash::sign_all(&mut tx, &[&keys[i]], &chain_id);
        signed.push((tx.to_hex(), tx.txid().to_hex()));
    }
    println!(
        "signed {k} transfers in {:.2} s",
        sign_start.elapsed().as_secs_f64()
    );
    let wanted: HashSet<String> = signed.iter().map(|(_, t)| t.clone()).collect();
    let signed = Arc::new(signed);
    let cpu_before: Vec<f64> = nodes
        .iter()
        .map(|n| usage(n.pid).map_or(0.0, |u| u.0))
        .collect();

    // Submit from `conns` threads; each takes the next transfer from a shared counter.
    let next = Arc::new(AtomicUsize::new(0));
    let rejected = Arc::new(Mutex::new(Vec::<String>::new()));
    let clients: Vec<RpcClient> = if o.all_nodes {
        nodes.iter().map(|n| n.rpc.clone()).collect()
    } else {
        vec![admin_rpc.clone()]
    };
    let batch = o.batch;
    let start = Instant::now();
    let mut threads = Vec::new();
    for _ in 0..o.conns {
        let (signed, next, rejected, clients) = (
            signed.clone(),
            next.clone(),
            rejected.clone(),
            clients.clone(),
        );
        threads.push(std::thread::spawn(move || {
            // One kept-alive connection per node and thread.
            let mut sessions: Vec<Session> = clients.into_iter().map(Session::new).collect();
            loop {
                let i = next.fetch_add(batch, Ordering::Relaxed);
                let Some(chunk) = signed.get(i..(i + batch).min(signed.len())) else {
                    break;
                };
                if chunk.is_empty() {
                    break;
                }
                let n = sessions.len();
                let node = &mut sessions[(i / batch) % n];
                let mut errors = Vec::new();
                if batch == 1 {
                    let (hex, txid) = &chunk[0];
                    match node.call("sendrawtransaction", json!([hex])) {
                        Ok(v) if v.as_str() == Some(txid.as_str()) => {}
                        Ok(v) => errors.push(format!("{txid}: returned {v}")),
                        Err(e) => errors.push(format!("{txid}: {e}")),
                    }
                } else {
                    errors = submit_batch(node, chunk);
                }
                if !errors.is_empty() {
                    let mut r = rejected.lock().unwrap_or_else(|e| e.into_inner());
                    r.extend(
                        errors
                            .into_iter()
                            .map(|e| format!("port {}: {e}", node.client.port)),
                    );
                }
            }
            Instant::now()
        }));
    }

    // Meanwhile follow every node's new blocks until each holds all the transfers.
    let mut seen = [start_height; 3];
    let mut found = [0usize; 3];
    let mut done_at: Vec<Option<Duration>> = vec![None; 3];
    let mut last_progress = Instant::now();
    while done_at.iter().any(Option::is_none) {
        for (i, n) in nodes.iter().enumerate() {
            if done_at[i].is_some() {
                continue;
            }
            let h = height(&n.rpc)?;
            if h > seen[i] {
                let txids = block_txids(&n.rpc, seen[i] + 1, h)?;
                let new = txids.iter().filter(|t| wanted.contains(*t)).count();
                if new > 0 {
                    last_progress = Instant::now();
                }
                found[i] += new;
                seen[i] = h;
                if found[i] >= k {
                    done_at[i] = Some(start.elapsed());
                }
            }
        }
        let rejects = rejected.lock().unwrap_or_else(|e| e.into_inner()).len();
        if next.load(Ordering::Relaxed) >= k && found.iter().all(|f| f + rejects >= k) {
            break;
        }
        if last_progress.elapsed() > PATIENCE {
            return Err(format!(
                "no new transfer confirmed for {PATIENCE:?}; found per node: {found:?} of {k}, {} submitted, {} rejected",
                next.load(Ordering::Relaxed).min(k),
                rejected.lock().unwrap_or_else(|e| e.into_inner()).len()
            ));
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let confirmed_all = done_at
        .iter()
        .map(|d| d.unwrap_or_else(|| start.elapsed()))
        .max()
        .unwrap_or_default();
    let submit_end = threads
        .into_iter()
        .filter_map(|t| t.join().ok())
        .max()
        .unwrap_or(start);
    let submit_secs = submit_end.duration_since(start).as_secs_f64();
    let rejected = rejected.lock().unwrap_or_else(|e| e.into_inner()).clone();
    let accepted = k - rejected.len();
    let secs = confirmed_all.as_secs_f64();
    println!(
        "\nsubmitted: {accepted} accepted, {} rejected in {submit_secs:.2} s: {:.0} tx/s accepted by RPC",
        rejected.len(),
        accepted as f64 / submit_secs
    );
    for r in rejected.iter().take(5) {
        println!("  rejected: {r}");
    }
    for (i, d) in done_at.iter().enumerate() {
        println!(
            "node {i}: all {} confirmed after {:.2} s, at height {}",
            found[i],
            d.unwrap_or_default().as_secs_f64(),
            seen[i]
        );
    }
    println!(
        "confirmed on all 3 nodes: {accepted} transfers in {secs:.2} s (first submission to last confirmation): {:.0} tx/s",
        accepted as f64 / secs
    );
    println!("in {} blocks", seen[0] - start_height);
    println!("\nnode   CPU s (measured phase)  peak RSS MB");
    for (i, n) in nodes.iter().enumerate() {
        if let Some((cpu, hwm)) = usage(n.pid) {
            println!(
                "{i:<4} {:>10.2} ({:>3.0}% of the run) {:>10.1}",
                cpu - cpu_before[i],
                100.0 * (cpu - cpu_before[i]) / secs,
                hwm as f64 / 1024.0
            );
        }
    }
    Ok(())
}
