//! `wattled devnet`: a local network on 127.0.0.1 — an admin, a producer and a consumer node,
//! each with its own data directory — that replays the paper's setup and one trade over
//! JSON-RPC, prints every step, and keeps running until Ctrl-C (or exits with `-exit`).
//!
//! Its building blocks (`fresh_params`, `write_params`, `start`, `Site`, `wait_confirmed`,
//! `wait_synced`) are public: `wattle-exchange devnet` runs the same nodes under its services.

use crate::daemon::{self, Options, Started};
use crate::datadir::DataDir;
use crate::rpc::client::{CallError, RpcClient};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use wattle_ledger::ChainParams;

/// The devnet's chain name (the paper's).
pub const CHAIN: &str = "energybc";

/// A devnet node: its role, data directory and RPC client.
pub struct Site {
    pub role: &'static str,
    pub dir: PathBuf,
    pub rpc: RpcClient,
    pub address: String,
}

impl Site {
    pub fn call(&self, method: &str, params: Value) -> Result<Value, String> {
        self.rpc
            .call(method, params)
            .map_err(|e: CallError| format!("{} {method}: {e}", self.role))
    }
}

/// Parameters of a new devnet chain: the paper's chain name, random address version and
/// checksum bytes, empty blocks every 5 s.
pub fn fresh_params() -> ChainParams {
    let mut p = ChainParams::new(CHAIN);
    let mut bytes = [0u8; 7];
    rand::fill(&mut bytes);
    p.address_pubkeyhash_version = [0x00, bytes[0], bytes[1], bytes[2]];
    p.address_checksum_value = [bytes[3], bytes[4], bytes[5], bytes[6]];
    p.empty_block_interval_ms = 5_000;
    p
}

/// Starts a node in this process: `role` names its data directory under `root`; `seed` joins
/// an existing chain. Returns once its JSON-RPC server is up, with the task running it.
pub async fn start(
    role: &'static str,
    root: &Path,
    seed: Option<(String, u16)>,
) -> Result<(Site, tokio::task::JoinHandle<Result<(), String>>), String> {
    let dir = root.join(role);
    let opts = Options {
        chain: CHAIN.into(),
        seed,
        datadir: Some(dir.clone()),
        port: Some(0),
        rpcport: Some(0),
        shortoutput: true,
        ..Options::default()
    };
    let (tx, rx) = tokio::sync::oneshot::channel::<Started>();
    let task = tokio::spawn(daemon::run(opts, Some(tx)));
    let started = rx.await.map_err(|_| {
        format!(
            "the {role} node did not start (see {}/{CHAIN}/debug.log)",
            dir.display()
        )
    })?;
    let rpc = RpcClient::from_datadir(
        &DataDir::new(Some(dir.clone()), CHAIN),
        Some(started.rpc_port),
    )?;
    Ok((
        Site {
            role,
            dir,
            rpc,
            address: started.address,
        },
        task,
    ))
}

/// Waits until `txid` is in a block on every site.
pub fn wait_confirmed(sites: &[&Site], txid: &str) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(60);
    for s in sites {
        loop {
            let confirmed = s
                .call("getrawtransaction", json!([txid, 1]))
                .ok()
                .and_then(|v| v.get("confirmations").and_then(Value::as_u64))
                .is_some_and(|c| c >= 1);
            if confirmed {
                break;
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "transaction {txid} not confirmed on the {} node",
                    s.role
                ));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    Ok(())
}

/// Waits until every site has the same block count.
pub fn wait_synced(sites: &[&Site]) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let heights: Vec<u64> = sites
            .iter()
            .filter_map(|s| s.call("getblockcount", json!([])).ok()?.as_u64())
            .collect();
        if heights.len() == sites.len() && heights.windows(2).all(|w| w[0] == w[1]) {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(format!("nodes did not sync: heights {heights:?}"));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn step(what: &str, site: &Site, method: &str, params: Value) -> Result<Value, String> {
    let started = Instant::now();
    let v = site.call(method, params)?;
    let text = match &v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    let shown = match text.char_indices().nth(100) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text,
    };
    println!(
        "{}> {what}\n   {shown}  ({} ms)",
        &site.role[..1].to_uppercase(),
        started.elapsed().as_millis()
    );
    Ok(v)
}

fn balances(site: &Site) -> Result<String, String> {
    let v = site.call("getaddressbalances", json!([site.address, 0]))?;
    Ok(format_balances(&v))
}

/// `[{name, qty}, ...]` as "QTY NAME, QTY NAME" ("nothing" when empty).
pub fn format_balances(v: &Value) -> String {
    let parts: Vec<String> = v
        .as_array()
        .map(|a| {
            a.iter()
                .map(|e| format!("{} {}", e["qty"], e["name"].as_str().unwrap_or("?")))
                .collect()
        })
        .unwrap_or_default();
    if parts.is_empty() {
        "nothing".into()
    } else {
        parts.join(", ")
    }
}

/// The paper's setup and one trade (Oh et al. 2017, §2), over JSON-RPC.
fn replay(a: &Site, p: &Site, c: &Site) -> Result<(), String> {
    let all = [a, p, c];
    step(
        &format!("grant {} connect,send,receive", p.address),
        a,
        "grant",
        json!([p.address, "connect,send,receive"]),
    )?;
    let t = step(
        &format!("grant {} connect,send,receive", c.address),
        a,
        "grant",
        json!([c.address, "connect,send,receive"]),
    )?;
    wait_confirmed(&[a], t.as_str().unwrap_or(""))?;
    wait_synced(&all)?;
    let fields = json!({"origin": "KW", "stage": "0", "purpose": "periodic generation"});
    step(
        "issuefrom A A {\"name\":\"energy\",\"open\":true} 0 0.001 0 {...}",
        a,
        "issuefrom",
        json!([a.address, a.address, {"name": "energy", "open": true}, 0, 0.001, 0, fields]),
    )?;
    let fields = json!({"origin": "KRW", "stage": "0", "purpose": "ecoin sale"});
    let t = step(
        "issuefrom A A {\"name\":\"ecoin\",\"open\":true} 0 1 0 {...}",
        a,
        "issuefrom",
        json!([a.address, a.address, {"name": "ecoin", "open": true}, 0, 1, 0, fields]),
    )?;
    wait_confirmed(&[a], t.as_str().unwrap_or(""))?;
    let t = step(
        &format!("grantfrom A {} energy.issue", p.address),
        a,
        "grantfrom",
        json!([a.address, p.address, "energy.issue"]),
    )?;
    wait_confirmed(&all, t.as_str().unwrap_or(""))?;
    let t = step(
        "issuemore P energy 1 0 {...}",
        p,
        "issuemore",
        json!([p.address, "energy", 1, 0, {"origin": "KW", "stage": "n", "approval": "KEP"}]),
    )?;
    wait_confirmed(&all, t.as_str().unwrap_or(""))?;
    let t = step(
        &format!("issuemore {} ecoin 20000 0 {{...}}", c.address),
        a,
        "issuemore",
        json!([c.address, "ecoin", 20000, 0, {"origin": "KRW", "stage": "n", "approval": "KEP"}]),
    )?;
    wait_confirmed(&all, t.as_str().unwrap_or(""))?;
    println!(
        "   producer holds {}; consumer holds {}",
        balances(p)?,
        balances(c)?
    );
    let prep = step(
        "preparelockunspent {\"energy\":1}",
        p,
        "preparelockunspent",
        json!([{"energy": 1}]),
    )?;
    // The consumer decodes the offer against its own node: wait until the prepared coin is
    // in a block there.
    wait_confirmed(&all, prep["txid"].as_str().unwrap_or(""))?;
    let blob1 = step(
        "createrawexchange TXID VOUT {\"ecoin\":1000}",
        p,
        "createrawexchange",
        json!([prep["txid"], prep["vout"], {"ecoin": 1000}]),
    )?;
    let d = step(
        "decoderawexchange blob1",
        c,
        "decoderawexchange",
        json!([blob1]),
    )?;
    println!(
        "   offer {} / ask {} / complete {}",
        d["offer"]["assets"], d["ask"]["assets"], d["complete"]
    );
    let prep = step(
        "preparelockunspentfrom C {\"ecoin\":1000}",
        c,
        "preparelockunspentfrom",
        json!([c.address, {"ecoin": 1000}]),
    )?;
    let app = step(
        "appendrawexchange blob1 TXID VOUT {\"energy\":1}",
        c,
        "appendrawexchange",
        json!([blob1, prep["txid"], prep["vout"], {"energy": 1}]),
    )?;
    let sent = Instant::now();
    let txid = step(
        "sendrawtransaction blob2",
        c,
        "sendrawtransaction",
        json!([app["hex"]]),
    )?;
    wait_confirmed(&all, txid.as_str().unwrap_or(""))?;
    println!(
        "   the exchange is confirmed on all three nodes {} ms after sendrawtransaction",
        sent.elapsed().as_millis()
    );
    println!(
        "   producer holds {}; consumer holds {}",
        balances(p)?,
        balances(c)?
    );
    Ok(())
}

/// Writes fresh chain parameters for the admin node under `root`, unless it has some already
/// (a devnet directory used before keeps its chain).
pub fn write_params(root: &Path) -> Result<(), String> {
    let admin_dir = DataDir::new(Some(root.join("admin")), CHAIN);
    if !admin_dir.params_path().exists() {
        std::fs::create_dir_all(admin_dir.chain_dir())
            .map_err(|e| format!("cannot create {}: {e}", admin_dir.chain_dir().display()))?;
        crate::datadir::write_atomic(
            &admin_dir.params_path(),
            crate::params_file::render(&fresh_params()).as_bytes(),
        )
        .map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// Runs the devnet. `-datadir=DIR` keeps the nodes' files in DIR (default: a new temporary
/// directory); `-exit` stops after the trade instead of waiting for Ctrl-C.
pub async fn run(opts: Options, exit_after: bool) -> Result<(), String> {
    let root = match &opts.datadir {
        Some(d) => d.clone(),
        None => std::env::temp_dir().join(format!("wattle-devnet-{}", std::process::id())),
    };
    write_params(&root)?;
    println!("Wattle devnet in {}", root.display());
    let (admin, admin_task) = start("admin", &root, None).await?;
    let port = admin.call("getinfo", json!([]))?["port"]
        .as_u64()
        .unwrap_or(0) as u16;
    let seed = Some(("127.0.0.1".to_string(), port));
    let (producer, producer_task) = start("producer", &root, seed.clone()).await?;
    let (consumer, consumer_task) = start("consumer", &root, seed).await?;
    for s in [&admin, &producer, &consumer] {
        println!(
            "{:<9} {}  rpc 127.0.0.1:{}  wattle-cli {CHAIN} -datadir={} ...",
            s.role,
            s.address,
            s.rpc.port,
            s.dir.display()
        );
    }
    let clients = [
        admin.rpc.clone(),
        producer.rpc.clone(),
        consumer.rpc.clone(),
    ];
    let fresh = admin.call("listassets", json!(["energy"])).is_err();
    let outcome = if fresh {
        let (a, p, c) = (admin, producer, consumer);
        tokio::task::spawn_blocking(move || replay(&a, &p, &c))
            .await
            .map_err(|e| e.to_string())
            .and_then(|r| r)
    } else {
        println!("(the devnet in this directory already traded; not replaying)");
        Ok(())
    };
    if let Err(e) = &outcome {
        eprintln!("Error: {e}");
    }
    if outcome.is_ok() && !exit_after {
        println!("\nThe network keeps running; press Ctrl-C to stop it.");
        let _ = tokio::signal::ctrl_c().await;
    }
    // Stop all three nodes.
    for (task, client) in [admin_task, producer_task, consumer_task]
        .into_iter()
        .zip(clients)
    {
        let _ = tokio::task::spawn_blocking(move || client.call("stop", json!([]))).await;
        let _ = tokio::time::timeout(Duration::from_secs(10), task).await;
    }
    outcome
}
