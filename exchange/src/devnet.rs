//! `wattle-exchange devnet`: the whole market on one machine. It starts an admin, a producer and
//! a consumer node (each with its own data directory, in this process) and their three exchange
//! services on 127.0.0.1, performs the paper's setup and one trade through the services' REST
//! APIs (connect both sites, request and approve ecoin, issue energy, offer, buy), then one
//! trade through the chain's order book (the producer sells 10 kWh at 100 ecoin, the consumer
//! buys 3 of them, 7 kWh stay in the book), prints the three UI addresses and runs until Ctrl-C. Then it stops every service and node; it removes
//! nothing: the data stays in the directory it printed.
//!
//! [`start`] is the same without the command line, for tests (`trade: false` leaves the
//! connecting and trading to the caller, e.g. a browser driving the UIs).

use crate::{Role, ServiceConfig};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use wattle_node::devnet::{self as nodes, CHAIN, Site};
use wattle_node::rpc::client::RpcClient;

const USAGE: &str = "Usage: wattle-exchange devnet [-datadir=DIR] [-exit]

Starts an admin, a producer and a consumer node and their exchange services on 127.0.0.1,
performs the paper's setup and one trade (1 kWh of energy for 1000 ecoin) through the services,
then one through the order book (10 kWh offered at 100 ecoin per kWh, 3 kWh bought, 7 kWh left
in the book), prints the address of each service's browser UI, and runs until Ctrl-C.

  -datadir=DIR  keep everything in DIR (default: a new directory under the system's temporary
                directory); a directory used before is started again without a new trade
  -exit         stop after the trade instead of waiting for Ctrl-C
  -help         this text";

/// A running devnet: three nodes and three services.
pub struct Devnet {
    pub admin_url: String,
    pub producer_url: String,
    pub consumer_url: String,
    pub root: PathBuf,
    sites: Vec<Site>,
    nodes: Vec<tokio::task::JoinHandle<Result<(), String>>>,
    services: Vec<RunningService>,
}

/// A service's stop signal and its task.
type RunningService = (
    tokio::sync::oneshot::Sender<()>,
    tokio::task::JoinHandle<Result<(), String>>,
);

impl Devnet {
    /// Stops the services, then the nodes (each with its `stop` command), and waits for them.
    pub async fn stop(self) {
        for (stop, task) in self.services {
            let _ = stop.send(());
            let _ = tokio::time::timeout(Duration::from_secs(10), task).await;
        }
        for (site, task) in self.sites.into_iter().zip(self.nodes) {
            let rpc = site.rpc.clone();
            let _ = tokio::task::spawn_blocking(move || rpc.call("stop", json!([]))).await;
            let _ = tokio::time::timeout(Duration::from_secs(10), task).await;
        }
    }
}

/// Starts the three nodes and services under `root`. The admin's node creates the chain (or
/// reopens it); the producer and consumer nodes join through it but are not granted anything:
/// connecting is the first step of a trade. With `trade`, performs the paper's setup and one
/// trade through the services and waits until the admin lists it as done.
pub async fn start(root: &Path, trade: bool) -> Result<Devnet, String> {
    nodes::write_params(root)?;
    let (admin, admin_task) = nodes::start("admin", root, None).await?;
    let port = call(&admin, "getinfo", json!([])).await?["port"]
        .as_u64()
        .unwrap_or(0) as u16;
    let seed = Some(("127.0.0.1".to_string(), port));
    let (producer, producer_task) = nodes::start("producer", root, seed.clone()).await?;
    let (consumer, consumer_task) = nodes::start("consumer", root, seed).await?;
    let mut devnet = Devnet {
        admin_url: String::new(),
        producer_url: String::new(),
        consumer_url: String::new(),
        root: root.to_path_buf(),
        sites: Vec::new(),
        nodes: vec![admin_task, producer_task, consumer_task],
        services: Vec::new(),
    };
    let mut urls = Vec::new();
    for (site, role) in [
        (&admin, Role::Admin),
        (&producer, Role::Producer),
        (&consumer, Role::Consumer),
    ] {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
            .await
            .map_err(|e| format!("cannot listen for the {role} service: {e}"))?;
        let port = listener.local_addr().map_err(|e| e.to_string())?.port();
        let config = ServiceConfig {
            role,
            rpc: site.rpc.clone(),
            db_dir: site.dir.join(CHAIN).join(format!("exchange-{role}")),
            exchange_url: None,
        };
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(crate::serve(listener, config, async {
            let _ = stop_rx.await;
        }));
        devnet.services.push((stop_tx, task));
        urls.push(format!("http://127.0.0.1:{port}/"));
    }
    devnet.admin_url = urls[0].clone();
    devnet.producer_url = urls[1].clone();
    devnet.consumer_url = urls[2].clone();
    devnet.sites = vec![admin, producer, consumer];
    if trade {
        let (a, p, c) = (
            devnet.admin_url.clone(),
            devnet.producer_url.clone(),
            devnet.consumer_url.clone(),
        );
        let sites: Vec<(String, RpcClient)> = devnet
            .sites
            .iter()
            .map(|s| (s.role.to_string(), s.rpc.clone()))
            .collect();
        let mut outcome = paper_trade(&a, &p, &c, &sites).await;
        if outcome.is_ok() {
            outcome = order_book_trade(&p, &c, &sites).await;
        }
        if let Err(e) = outcome {
            devnet.stop().await;
            return Err(e);
        }
    }
    Ok(devnet)
}

async fn call(site: &Site, method: &'static str, params: Value) -> Result<Value, String> {
    let rpc = site.rpc.clone();
    let role = site.role;
    tokio::task::spawn_blocking(move || rpc.call(method, params))
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| format!("{role} {method}: {e}"))
}

/// One REST call to a service (`body` `None` is a GET): the JSON result, or the error.
async fn rest(base: &str, path: &str, body: Option<Value>) -> Result<Value, String> {
    let url = crate::remote::BaseUrl::parse(base)?;
    crate::remote::call(&url, path, body)
        .await
        .map_err(|e| format!("{path}: {e}"))
}

/// Runs `f` until it succeeds or `timeout` passes (the last error is returned).
async fn retry<T, F: std::future::Future<Output = Result<T, String>>>(
    what: &str,
    timeout: Duration,
    mut f: impl FnMut() -> F,
) -> Result<T, String> {
    let deadline = Instant::now() + timeout;
    loop {
        match f().await {
            Ok(v) => return Ok(v),
            Err(e) if Instant::now() >= deadline => return Err(format!("{what}: {e}")),
            Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
}

/// Waits until `txid` is in a block on every node.
async fn confirmed_everywhere(sites: &[(String, RpcClient)], txid: &str) -> Result<(), String> {
    for (role, rpc) in sites {
        retry(
            &format!("{txid} confirmed on the {role} node"),
            Duration::from_secs(60),
            || {
                let (rpc, txid) = (rpc.clone(), txid.to_string());
                async move {
                    let v = tokio::task::spawn_blocking(move || {
                        rpc.call("getrawtransaction", json!([txid, 1]))
                    })
                    .await
                    .map_err(|e| e.to_string())?
                    .map_err(|e| e.to_string())?;
                    if v["confirmations"].as_u64().unwrap_or(0) >= 1 {
                        Ok(())
                    } else {
                        Err("unconfirmed".to_string())
                    }
                }
            },
        )
        .await?;
    }
    Ok(())
}

fn show(role: &str, what: &str, v: &Value) {
    let text = v.to_string();
    let shown = match text.char_indices().nth(100) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text,
    };
    println!("{role}> {what}\n   {shown}");
}

async fn balances(base: &str) -> Result<String, String> {
    let v = rest(base, "/api/balances", None).await?;
    Ok(nodes::format_balances(&v))
}

/// The paper's setup and one trade, through the three services.
async fn paper_trade(
    admin: &str,
    producer: &str,
    consumer: &str,
    sites: &[(String, RpcClient)],
) -> Result<(), String> {
    let exchange = json!({ "exchange": admin.trim_end_matches('/') });
    let v = rest(
        producer,
        "/api/producer/reg_exchange_ip",
        Some(exchange.clone()),
    )
    .await?;
    show(
        "P",
        "reg_exchange_ip (the admin grants connect,send,receive,energy.issue)",
        &v,
    );
    let v = rest(consumer, "/api/consumer/reg_exchange_ip", Some(exchange)).await?;
    show(
        "C",
        "reg_exchange_ip (the admin grants connect,send,receive)",
        &v,
    );

    // The joined nodes sync once granted; the next steps need their permissions on chain.
    let v = retry("ecoin request", Duration::from_secs(60), || {
        rest(
            consumer,
            "/api/consumer/request_ecoin_issue",
            Some(json!({"qty": 20000})),
        )
    })
    .await?;
    show("C", "request_ecoin_issue 20000", &v);
    let v = rest(
        admin,
        "/api/admin/issue_ecoin",
        Some(json!({"index": v["index"]})),
    )
    .await?;
    show("A", "issue_ecoin (approve the request)", &v);
    confirmed_everywhere(sites, v["txid"].as_str().unwrap_or("")).await?;

    let v = retry("energy issue", Duration::from_secs(60), || {
        rest(producer, "/api/producer/issue_energy", Some(json!({})))
    })
    .await?;
    show("P", "issue_energy", &v);
    confirmed_everywhere(sites, v["txid"].as_str().unwrap_or("")).await?;
    println!(
        "   producer holds {}; consumer holds {}",
        balances(producer).await?,
        balances(consumer).await?
    );

    let v = rest(
        producer,
        "/api/producer/propose_exchange",
        Some(json!({"qty_energy": 1, "qty_ecoin": 1000})),
    )
    .await?;
    show("P", "propose_exchange 1 kWh for 1000 ecoin", &v);
    let index = v["index"].clone();
    let sent = Instant::now();
    let v = rest(
        consumer,
        "/api/consumer/accept_exchange",
        Some(json!({"index": index})),
    )
    .await?;
    show("C", "accept_exchange", &v);
    let txid = v["txid"].as_str().unwrap_or("").to_string();
    confirmed_everywhere(sites, &txid).await?;
    println!(
        "   the exchange is confirmed on all three nodes {} ms after it was sent",
        sent.elapsed().as_millis()
    );
    retry(
        "the offer listed as done",
        Duration::from_secs(30),
        || async {
            let list = rest(admin, "/api/admin/exchange_list?status=done", None).await?;
            let done = list
                .as_array()
                .is_some_and(|l| l.iter().any(|e| e["index"] == index && e["txid"] == txid));
            if done {
                Ok(())
            } else {
                Err(format!("not yet: {list}"))
            }
        },
    )
    .await?;
    println!(
        "   producer holds {}; consumer holds {}",
        balances(producer).await?,
        balances(consumer).await?
    );
    Ok(())
}

/// One trade through the order book, leaving the book with an ask: the producer issues and
/// sells 10 kWh at 100 ecoin per kWh, the consumer buys 3 kWh of it (at up to 110).
async fn order_book_trade(
    producer: &str,
    consumer: &str,
    sites: &[(String, RpcClient)],
) -> Result<(), String> {
    let v = rest(
        producer,
        "/api/producer/issue_energy",
        Some(json!({"qty": 10})),
    )
    .await?;
    show("P", "issue_energy 10 kWh", &v);
    confirmed_everywhere(sites, v["txid"].as_str().unwrap_or("")).await?;
    let v = rest(
        producer,
        "/api/producer/sell_order",
        Some(json!({"qty": 10, "price": 100})),
    )
    .await?;
    show(
        "P",
        "sell_order 10 kWh at 100 ecoin/kWh (rests in the order book)",
        &summary(&v["order"]),
    );
    let v = rest(
        consumer,
        "/api/consumer/buy_order",
        Some(json!({"qty": 3, "price": 110})),
    )
    .await?;
    show(
        "C",
        "buy_order 3 kWh at up to 110 ecoin/kWh (filled at 100)",
        &summary(&v["order"]),
    );
    let book = rest(consumer, "/api/orderbook", None).await?;
    let asks: Vec<String> = book["asks"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|l| format!("{} kWh at {}", l["qty"], l["price"]))
        .collect();
    println!("   the order book asks: {}", asks.join(", "));
    println!(
        "   producer holds {}; consumer holds {}",
        balances(producer).await?,
        balances(consumer).await?
    );
    Ok(())
}

/// An order's progress, short enough for one line.
fn summary(order: &Value) -> Value {
    json!({
        "side": order["side"],
        "qty": order["qty"],
        "price": order["price"],
        "filled": order["filled"],
        "remaining": order["remaining"],
        "status": order["status"],
    })
}

/// `wattle-exchange devnet [-datadir=DIR] [-exit]`.
pub fn run(args: &[String]) -> std::process::ExitCode {
    let mut datadir = None;
    let mut exit = false;
    for a in args {
        match a.as_str() {
            "-help" | "--help" | "-h" | "-?" => {
                println!("{USAGE}");
                return std::process::ExitCode::SUCCESS;
            }
            "-exit" | "--exit" => exit = true,
            _ => match a
                .strip_prefix("-datadir=")
                .or_else(|| a.strip_prefix("--datadir="))
            {
                Some(d) if !d.is_empty() => datadir = Some(PathBuf::from(d)),
                _ => {
                    eprintln!("Error: unknown argument {a}\n\n{USAGE}");
                    return std::process::ExitCode::from(1);
                }
            },
        }
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("Error: cannot start the runtime: {e}");
            return std::process::ExitCode::from(1);
        }
    };
    match runtime.block_on(main(datadir, exit)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("Error: {e}");
            std::process::ExitCode::from(1)
        }
    }
}

async fn main(datadir: Option<PathBuf>, exit: bool) -> Result<(), String> {
    let root = match datadir {
        Some(d) => d,
        None => std::env::temp_dir().join(format!("wattle-devnet-{}", std::process::id())),
    };
    let fresh = !root.join("admin").join(CHAIN).join("params.toml").exists();
    println!("Wattle devnet in {}", root.display());
    // Ctrl-C during the set-up stops it too (the nodes are stopped in order below).
    let devnet = tokio::select! {
        d = start(&root, fresh) => d?,
        _ = tokio::signal::ctrl_c() => return Err("interrupted".into()),
    };
    if !fresh {
        println!("(this directory has traded before; started again without a new trade)");
    }
    println!();
    for (role, url) in [
        ("admin", &devnet.admin_url),
        ("producer", &devnet.producer_url),
        ("consumer", &devnet.consumer_url),
    ] {
        println!("{role:<9} {url}");
    }
    if !exit {
        println!("\nThe market keeps running; press Ctrl-C to stop it.");
        let _ = tokio::signal::ctrl_c().await;
        println!("Stopping...");
    }
    devnet.stop().await;
    println!("Stopped. The data stays in {}", root.display());
    Ok(())
}
