//! Confirmation latency under an order load (issue 8): while a background thread submits
//! pre-signed `PlaceOrder` transactions at a fixed rate, sequential probes are timed exactly as
//! in `latency` (from `sendrawtransaction` on the admin until `getrawtransaction` shows a
//! confirmation on every node), alternately an order and a transfer.
//!
//! The orders trade two assets of their own, `obase` and `oquote` (issued by the admin to the
//! benchmark's first address and paid out as one coin per order, of exactly its escrow), between
//! [`SELLERS`] and [`BUYERS`], two disjoint sets of the benchmark's addresses (so no self-trade is
//! ever skipped). Sides alternate in runs of 1 to 4 orders; sells ask 100..=102 quote per base,
//! buys bid up to 102..=104, so every order crosses the best resting order of the other side, if
//! any; quantities are 3..=12 base, so an order often fills against several resting ones, the
//! last one partially. Each order
//! transaction has one input (its coin) and one zero-value output back to its owner. It is sent
//! with `sendrawtransaction`, so nothing depends on the node's order RPCs.
//!
//! After the load, every accepted order is found in the admin's blocks, and the fills are counted
//! by replaying the orders, in the order the blocks hold them, through the ledger's matching in
//! memory (`wattle_ledger::testkit`): the nodes run the same deterministic code, and the ledger
//! has no RPC for trades on this branch.

use crate::cluster::{Node, PATIENCE, call, height, session_height, usage, wait_equal_heights};
use crate::network::coins::{Signed, Wallet};
use crate::network::latency::{self, Mode, Sample, Stats};
use crate::network::load::{self, Usage};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::ops::Range;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use wattle_ledger::amount::Amount;
use wattle_ledger::keys::SecretKey;
use wattle_ledger::orderbook::{self, OrderKind, OrderStatus, PlaceOrder, Price};
use wattle_ledger::permissions::{GlobalPerm, NO_END, Permission};
use wattle_ledger::sighash;
use wattle_ledger::state::read;
use wattle_ledger::testkit::TestChain;
use wattle_ledger::tx::{Input, IssueAsset, NEW_ASSET, Op, OutPoint, Output, TX_VERSION};
use wattle_ledger::{ChainParams, Hash256, Transaction};
use wattle_node::rpc::client::Session;

/// The benchmark addresses (indices into the wallet) that place sell orders.
pub const SELLERS: Range<usize> = 1..51;
/// The benchmark addresses that place buy orders.
pub const BUYERS: Range<usize> = 51..101;
/// Orders per side: one funding transaction per asset (max-tx-outputs is 10,000).
pub const MAX_PER_SIDE: usize = 9_999;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    Sell,
    Buy,
}

/// One order of the plan, in raw units (both assets are indivisible: smallest unit 1).
#[derive(Clone, Copy, Debug)]
pub struct Spec {
    pub side: Side,
    /// Index into the wallet's keys.
    pub owner: usize,
    /// Base units sold (Sell) or wanted (Buy).
    pub base: u64,
    /// Limit in quote per base.
    pub price: u64,
}

impl Spec {
    /// What the order escrows: the base it sells, or what the wanted base costs at its limit.
    fn escrow(&self) -> u64 {
        match self.side {
            Side::Sell => self.base,
            Side::Buy => self.base * self.price,
        }
    }

    fn place(&self, market: &Market) -> PlaceOrder {
        let amount = Amount::new(self.escrow()).expect("escrow in range");
        match self.side {
            // At least `price` quote per base; lot 1 base.
            Side::Sell => PlaceOrder {
                sell: market.base,
                quantity: amount,
                buy: market.quote,
                price: Price::new(self.price, 1),
                kind: OrderKind::Sell,
            },
            // At least 1 base per `price` quote; lot `price` quote; target `base`.
            Side::Buy => PlaceOrder {
                sell: market.quote,
                quantity: amount,
                buy: market.base,
                price: Price::new(1, self.price),
                kind: OrderKind::Buy,
            },
        }
    }
}

/// `count` orders: runs of 1 to 4 orders of one side, then of the other, so that an order often
/// meets several resting ones; owners cycle through their side's addresses; quantities and
/// prices from a fixed pseudo-random sequence.
pub fn specs(count: usize) -> Vec<Spec> {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move |n: u64| {
        // xorshift64
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x % n
    };
    let mut out = Vec::with_capacity(count);
    let (mut sells, mut buys) = (0usize, 0usize);
    let mut side = Side::Sell;
    while out.len() < count {
        let run = 1 + next(4) as usize;
        for _ in 0..run.min(count - out.len()) {
            let base = 3 + next(10);
            let step = next(3);
            out.push(match side {
                Side::Sell => {
                    sells += 1;
                    Spec {
                        side,
                        owner: SELLERS.start + sells % SELLERS.len(),
                        base,
                        price: 100 + step,
                    }
                }
                Side::Buy => {
                    buys += 1;
                    Spec {
                        side,
                        owner: BUYERS.start + buys % BUYERS.len(),
                        base,
                        price: 102 + step,
                    }
                }
            });
        }
        side = match side {
            Side::Sell => Side::Buy,
            Side::Buy => Side::Sell,
        };
    }
    out
}

/// The two assets.
#[derive(Clone, Copy, Debug)]
pub struct Market {
    pub base: Hash256,
    pub quote: Hash256,
}

/// The funded and signed orders: `signed[i]` places `specs[i]`.
pub struct Book {
    pub market: Market,
    pub specs: Vec<Spec>,
    pub signed: Vec<Signed>,
}

fn amount(raw: u64) -> Result<Amount, String> {
    Amount::new(raw).map_err(|_| format!("amount {raw} out of range"))
}

/// Issues the two assets to the wallet's first address, pays each order of `specs(count)` a coin
/// of exactly its escrow (one funding transaction per asset), waits until the funding is in a
/// block on the admin, and signs the orders.
pub fn fund(
    nodes: &[Node],
    params: &ChainParams,
    wallet: &Wallet,
    count: usize,
) -> Result<Book, String> {
    let specs = specs(count);
    let admin = &nodes[0].rpc;
    let fmt = params.address_format();
    let to = fmt.encode(&wallet.addrs[0]);
    let mut issued = Vec::new();
    for (name, side) in [("obase", Side::Sell), ("oquote", Side::Buy)] {
        let mine: Vec<&Spec> = specs.iter().filter(|s| s.side == side).collect();
        if mine.len() > MAX_PER_SIDE {
            return Err(format!(
                "{} orders per side, at most {MAX_PER_SIDE}: lower --order-rate or --seconds",
                mine.len()
            ));
        }
        let total: u64 = mine.iter().map(|s| s.escrow()).sum();
        let txid = call(admin, "issue", json!([to, name, total.max(1)]))?;
        let txid = txid.as_str().ok_or("issue did not return a txid")?;
        issued.push(Hash256::from_hex(txid).map_err(|_| "bad txid from issue")?);
    }
    let market = Market {
        base: issued[0],
        quote: issued[1],
    };
    for asset in &issued {
        crate::cluster::wait_confirmed_everywhere(
            &nodes[..1],
            &asset.to_hex(),
            "the order assets",
        )?;
    }
    // Coin i of the funding transaction of its side.
    let mut coins: Vec<Option<OutPoint>> = vec![None; specs.len()];
    let mut funding = Vec::new();
    for (asset, side) in [(market.base, Side::Sell), (market.quote, Side::Buy)] {
        let mine: Vec<usize> = (0..specs.len())
            .filter(|&i| specs[i].side == side)
            .collect();
        let mut tx = Transaction {
            version: TX_VERSION,
            inputs: vec![Input::unsigned(OutPoint {
                txid: asset,
                vout: 0,
            })],
            outputs: mine
                .iter()
                .map(|&i| {
                    let s = &specs[i];
                    Ok(Output::new(
                        wallet.addrs[s.owner],
                        [(asset, amount(s.escrow())?)],
                    ))
                })
                .collect::<Result<_, String>>()?,
            ops: vec![],
        };
        if tx.outputs.is_empty() {
            continue;
        }
        sighash::sign_all(&mut tx, &[&wallet.keys[0]], &wallet.chain_id);
        let txid = tx.txid();
        for (vout, &i) in mine.iter().enumerate() {
            coins[i] = Some(OutPoint {
                txid,
                vout: vout as u32,
            });
        }
        funding.push(tx);
    }
    for tx in &funding {
        call(admin, "sendrawtransaction", json!([tx.to_hex()]))
            .map_err(|e| format!("an order funding transaction: {e}"))?;
    }
    for tx in &funding {
        crate::cluster::wait_confirmed_everywhere(
            &nodes[..1],
            &tx.txid().to_hex(),
            "the order funding",
        )?;
    }
    let signed = specs
        .iter()
        .zip(&coins)
        .map(|(s, coin)| {
            let coin = coin.ok_or("an order without a coin")?;
            let tx = order_tx(s, &market, coin, &wallet.keys[s.owner], &wallet.chain_id);
            Ok(Signed {
                hex: tx.to_hex(),
                txid: tx.txid().to_hex(),
            })
        })
        .collect::<Result<_, String>>()?;
    Ok(Book {
        market,
        specs,
        signed,
    })
}

/// The order transaction: its coin in, a zero-value output back to the owner, the order op.
fn order_tx(
    spec: &Spec,
    market: &Market,
    coin: OutPoint,
    key: &SecretKey,
    chain_id: &Hash256,
) -> Transaction {
    let mut tx = Transaction {
        version: TX_VERSION,
        inputs: vec![Input::unsigned(coin)],
        outputs: vec![Output::new(key.address(), [])],
        ops: vec![Op::PlaceOrder(spec.place(market))],
    };
    sighash::sign_all(&mut tx, &[key], chain_id);
    tx
}

// ------------------------------------------------------------------ the background load

/// What the load threads did.
#[derive(Clone, Debug, Default)]
pub struct LoadReport {
    /// Orders sent (accepted or refused).
    pub sent: usize,
    /// Indices (into the load) of the orders accepted, ascending.
    pub accepted: Vec<usize>,
    /// Orders refused, and the first few messages.
    pub refused: usize,
    pub messages: Vec<String>,
    /// First send until the last reply.
    pub secs: f64,
    /// How far the sends fell behind their schedule, at worst.
    pub max_behind_ms: f64,
    /// The load ran out of orders before it was stopped.
    pub exhausted: bool,
}

struct Load {
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<LoadReport>>,
}

/// Submits `orders` at `rate` per second until stopped or out of orders: order `i` is due at
/// `i / rate` s and goes to node `i mod N`, sent by that node's thread (single
/// `sendrawtransaction` calls over one kept-alive connection), so a slow reply from one node
/// does not hold up the others. An order late for its slot is sent at once, so the rate is kept
/// on average as long as the nodes keep up.
fn start_load(nodes: &[Node], orders: Vec<Signed>, rate: f64) -> Load {
    let stop = Arc::new(AtomicBool::new(false));
    let orders = Arc::new(orders);
    let n = nodes.len();
    let start = Instant::now();
    let threads = nodes
        .iter()
        .enumerate()
        .map(|(k, node)| {
            let (flag, orders, target) = (stop.clone(), orders.clone(), node.rpc.clone());
            std::thread::spawn(move || {
                let mut session = Session::new(target);
                let mut r = LoadReport::default();
                let mut i = k;
                while !flag.load(Ordering::Relaxed) {
                    if i >= orders.len() {
                        r.exhausted = true;
                        break;
                    }
                    let due = start + Duration::from_secs_f64(i as f64 / rate);
                    let now = Instant::now();
                    if now < due {
                        std::thread::sleep((due - now).min(Duration::from_millis(5)));
                        continue;
                    }
                    r.max_behind_ms = r.max_behind_ms.max((now - due).as_secs_f64() * 1e3);
                    match load::submit(&mut session, &[&orders[i]]).into_iter().next() {
                        None => r.accepted.push(i),
                        Some((_, message)) => {
                            r.refused += 1;
                            if r.messages.len() < 5 {
                                r.messages.push(message);
                            }
                        }
                    }
                    r.sent += 1;
                    i += n;
                }
                r.secs = start.elapsed().as_secs_f64();
                r
            })
        })
        .collect();
    Load { stop, threads }
}

impl Load {
    fn stop(self) -> Result<LoadReport, String> {
        self.stop.store(true, Ordering::Relaxed);
        let mut all = LoadReport::default();
        for t in self.threads {
            let r = t
                .join()
                .map_err(|_| "an order load thread panicked".to_string())?;
            all.sent += r.sent;
            all.accepted.extend(r.accepted);
            all.refused += r.refused;
            all.messages.extend(r.messages);
            all.secs = all.secs.max(r.secs);
            all.max_behind_ms = all.max_behind_ms.max(r.max_behind_ms);
            all.exhausted |= r.exhausted;
        }
        all.accepted.sort_unstable();
        all.messages.truncate(5);
        Ok(all)
    }
}

// ------------------------------------------------------------------ the phase

#[derive(Clone, Copy, Debug)]
pub struct Config {
    /// How long the load runs (the probes stop with it).
    pub window: Duration,
    /// Orders per second.
    pub rate: f64,
    /// Unmeasured probes first.
    pub warmup: usize,
    /// Measured probes of each kind, at most.
    pub txs: usize,
    pub poll: Duration,
}

/// Orders the load needs for `window` at `rate`: its pool, with 5 s to spare (the probe in
/// flight at the end of the window is still waited for under load); what is not sent is unused.
pub fn load_orders(window: Duration, rate: f64) -> usize {
    ((window.as_secs_f64() + 5.0) * rate).ceil() as usize
}

/// The fills, replayed.
#[derive(Clone, Debug, Default)]
pub struct Matching {
    pub fills: u64,
    /// Orders done by matching (sold out or their target bought).
    pub filled: usize,
    /// Orders resting at the end (the book's remainder).
    pub open: usize,
    pub base_traded: u64,
}

pub struct Outcome {
    pub rate: f64,
    pub window_secs: f64,
    pub load: LoadReport,
    /// (name, headline, polling round) per probe kind, and their JSON.
    pub probes: Vec<(String, Stats, Duration)>,
    pub probes_json: Vec<Value>,
    /// Load orders and probe orders found in the admin's blocks.
    pub confirmed_orders: usize,
    /// Blocks from the start of the load until the last order, and the orders per block.
    pub blocks: usize,
    pub max_orders_per_block: usize,
    pub matching: Matching,
    pub usage: Vec<Usage>,
}

impl Outcome {
    pub fn load_rate(&self) -> f64 {
        self.load.sent as f64 / self.load.secs.max(1e-9)
    }

    pub fn to_json(&self) -> Value {
        let r = |x: f64| (x * 100.0).round() / 100.0;
        json!({
            "order_rate": self.rate,
            "window_s": r(self.window_secs),
            "load": {
                "sent": self.load.sent,
                "secs": r(self.load.secs),
                "orders_per_s": r(self.load_rate()),
                "refused": self.load.refused,
                "refusals": self.load.messages,
                "max_behind_schedule_ms": r(self.load.max_behind_ms),
                "exhausted": self.load.exhausted,
            },
            "probes": self.probes_json,
            "confirmed_orders": self.confirmed_orders,
            "blocks": self.blocks,
            "max_orders_per_block": self.max_orders_per_block,
            "replayed": {
                "fills": self.matching.fills,
                "orders_filled": self.matching.filled,
                "orders_open_at_end": self.matching.open,
                "base_traded": self.matching.base_traded,
            },
            "nodes": self.usage.iter().enumerate().map(|(i, u)| json!({
                "node": i, "cpu_s": r(u.cpu_s), "peak_rss_kb": u.peak_rss_kb,
            })).collect::<Vec<_>>(),
        })
    }
}

/// Runs the phase: the load of `book.signed[..load]` at `cfg.rate`, and meanwhile sequential
/// probes alternating the probe orders `book.signed[load..]` and `transfers`.
pub fn run(
    nodes: &[Node],
    wallet: &Wallet,
    book: &Book,
    load: usize,
    transfers: &[Signed],
    cfg: Config,
) -> Result<Outcome, String> {
    let admin = &nodes[0].rpc;
    let start_height = height(admin)?;
    let cpu_before: Vec<f64> = nodes
        .iter()
        .map(|n| usage(n.pid).map_or(0.0, |u| u.0))
        .collect();
    let (load_orders, probe_orders) = book.signed.split_at(load);
    let mut probes = Vec::new();
    for (o, t) in probe_orders.iter().zip(transfers) {
        probes.push(o.clone());
        probes.push(t.clone());
    }
    let warm = cfg.warmup.min(probes.len());
    let measured_end = (warm + 2 * cfg.txs).min(probes.len());

    let started = Instant::now();
    let deadline = started + cfg.window;
    let running = start_load(nodes, load_orders.to_vec(), cfg.rate);
    let probe_result = (|| {
        latency::run_phase(
            nodes,
            &probes[..warm],
            Mode::Sequential,
            cfg.poll,
            Some(deadline),
        )?;
        latency::run_phase(
            nodes,
            &probes[warm..measured_end],
            Mode::Sequential,
            cfg.poll,
            Some(deadline),
        )
    })();
    let report = running.stop()?;
    let window_secs = started.elapsed().as_secs_f64();
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
    let (samples, round) = probe_result?;

    let is_order: HashMap<&str, usize> = book
        .signed
        .iter()
        .enumerate()
        .map(|(i, s)| (s.txid.as_str(), i))
        .collect();
    let (orders, transfers): (Vec<Sample>, Vec<Sample>) = samples
        .into_iter()
        .partition(|s| is_order.contains_key(s.txid()));
    println!(
        "\n{:<34} {:>5} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8}",
        format!("latency (ms) under {} orders/s", cfg.rate),
        "txs",
        "min",
        "median",
        "p90",
        "p99",
        "max",
        "mean"
    );
    let mut out_probes = Vec::new();
    let mut probes_json = Vec::new();
    for (name, samples) in [("order", &orders), ("transfer", &transfers)] {
        if samples.is_empty() {
            continue;
        }
        let (value, headline) = latency::report(name, samples);
        out_probes.push((name.to_string(), headline, round));
        probes_json.push(value);
    }
    println!(
        "  ({} probes in {window_secs:.1} s; a polling round of the {} nodes took {:.1} ms on average)",
        orders.len() + transfers.len(),
        nodes.len(),
        round.as_secs_f64() * 1e3
    );

    // Every order sent and accepted (load and probes) must end up in a block.
    let mut wanted: HashMap<&str, usize> = report
        .accepted
        .iter()
        .map(|&i| (book.signed[i].txid.as_str(), i))
        .collect();
    for s in &orders {
        if let Some(&i) = is_order.get(s.txid()) {
            wanted.insert(&book.signed[i].txid, i);
        }
    }
    // Probe orders sent in the warm-up, and the one perhaps still pending when the deadline hit,
    // are found too: every order of the book that is in a block is replayed.
    let expected = wanted.len();
    let mut session = Session::new(admin.clone());
    let mut blocks: Vec<Vec<usize>> = Vec::new();
    let mut seen_height = start_height;
    let mut found = 0usize;
    let mut last_progress = Instant::now();
    loop {
        let h = session_height(&mut session)?;
        for hh in seen_height + 1..=h {
            let block = session
                .call("getblock", json!([hh, 1]))
                .map_err(|e| format!("getblock {hh} on the admin: {e}"))?;
            let ids: Vec<usize> = block
                .get("tx")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(|t| t.as_str().and_then(|t| is_order.get(t).copied()))
                .collect();
            found += ids
                .iter()
                .filter(|&&i| wanted.contains_key(book.signed[i].txid.as_str()))
                .count();
            blocks.push(ids);
            last_progress = Instant::now();
        }
        seen_height = h;
        if found >= expected {
            break;
        }
        if last_progress.elapsed() > PATIENCE {
            return Err(format!(
                "orders: only {found} of {expected} accepted orders in a block after {PATIENCE:?} without a new block"
            ));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    wait_equal_heights(nodes, "the nodes to hold every order")?;
    // Blocks up to the last one holding an order.
    while blocks.last().is_some_and(Vec::is_empty) {
        blocks.pop();
    }
    let matching = replay(wallet, book, &blocks)?;
    Ok(Outcome {
        rate: cfg.rate,
        window_secs,
        load: report,
        probes: out_probes,
        probes_json,
        confirmed_orders: blocks.iter().map(Vec::len).sum(),
        blocks: blocks.len(),
        max_orders_per_block: blocks.iter().map(Vec::len).max().unwrap_or(0),
        matching,
        usage,
    })
}

/// Replays the orders of `blocks` (indices into the book, in block order) through the ledger in
/// memory: the same owners, prices and quantities, each order on a coin of its own, one local
/// block per block of the nodes'. Every block must be valid.
fn replay(wallet: &Wallet, book: &Book, blocks: &[Vec<usize>]) -> Result<Matching, String> {
    let mut chain = TestChain::new();
    let admin = chain.admin.clone();
    let owners: Vec<usize> = SELLERS.chain(BUYERS).collect();
    let perms = [GlobalPerm::Connect, GlobalPerm::Send, GlobalPerm::Receive]
        .map(Permission::Global)
        .to_vec();
    let grant = chain.build(
        &admin,
        owners
            .iter()
            .map(|&o| Output::new(wallet.addrs[o], []))
            .collect(),
        vec![],
        (0..owners.len() as u32)
            .map(|vout| Op::Grant {
                vout,
                permissions: perms.clone(),
                start: 0,
                end: NO_END,
            })
            .collect(),
    );
    chain
        .mine(vec![grant])
        .map_err(|e| format!("replay: grants: {e:?}"))?;
    let mut coins: Vec<Option<OutPoint>> = vec![None; book.specs.len()];
    let mut assets = Vec::new();
    for (name, side) in [("obase", Side::Sell), ("oquote", Side::Buy)] {
        let mine: Vec<usize> = (0..book.specs.len())
            .filter(|&i| book.specs[i].side == side)
            .collect();
        let total: u64 = mine.iter().map(|&i| book.specs[i].escrow()).sum();
        let outputs = mine
            .iter()
            .map(|&i| {
                let s = &book.specs[i];
                Ok(Output::new(
                    wallet.addrs[s.owner],
                    [(NEW_ASSET, amount(s.escrow())?)],
                ))
            })
            .collect::<Result<Vec<_>, String>>()?;
        let op = Op::IssueAsset(IssueAsset {
            name: name.to_string(),
            open: false,
            multiple: 1,
            quantity: amount(total.max(1))?,
            fields: Default::default(),
        });
        let issue = chain.build(&admin, outputs, vec![], vec![op]);
        let txid = issue.txid();
        for (vout, &i) in mine.iter().enumerate() {
            coins[i] = Some(OutPoint {
                txid,
                vout: vout as u32,
            });
        }
        chain
            .mine(vec![issue])
            .map_err(|e| format!("replay: issue {name}: {e:?}"))?;
        assets.push(txid);
    }
    let market = Market {
        base: assets[0],
        quote: assets[1],
    };
    let mut ids = Vec::new();
    for block in blocks {
        let txs: Vec<Transaction> = block
            .iter()
            .map(|&i| {
                let s = &book.specs[i];
                let coin = coins[i].ok_or("replay: an order without a coin")?;
                Ok(order_tx(
                    s,
                    &market,
                    coin,
                    &wallet.keys[s.owner],
                    &chain.chain.id,
                ))
            })
            .collect::<Result<_, String>>()?;
        ids.extend(txs.iter().map(Transaction::txid));
        chain
            .mine(txs)
            .map_err(|e| format!("replay: a block of orders is invalid: {e:?}"))?;
    }
    let (lo, hi) = orderbook::market(market.base, market.quote);
    let fills = read::trade_log_len(&chain.state, &lo, &hi)
        .map_err(|e| format!("replay: {e:?}"))?
        .unwrap_or(0);
    let mut m = Matching {
        fills,
        ..Matching::default()
    };
    for id in &ids {
        let o = read::order(&chain.state, id)
            .map_err(|e| format!("replay: {e:?}"))?
            .ok_or("replay: an order is missing")?;
        match o.status {
            OrderStatus::Filled => m.filled += 1,
            OrderStatus::Open => m.open += 1,
            OrderStatus::Cancelled => {}
        }
        if o.sell == market.base {
            m.base_traded += o.sold.raw();
        }
    }
    Ok(m)
}

/// How many orders the plan needs for the phase: the load, then one probe order per probe pair.
pub fn plan_sizes(cfg: &Config) -> (usize, usize) {
    let probes = cfg.warmup.div_ceil(2) + cfg.txs + 1;
    (load_orders(cfg.window, cfg.rate), probes)
}

/// For the summary: the probes' table rows and the load's lines.
pub fn print_summary(o: &Outcome, n: usize) {
    println!(
        "\norders: a load of {} pre-signed crossing orders/s to every node in turn, for {:.1} s",
        o.rate, o.window_secs
    );
    println!(
        "  latency, ms: sequential probes, alternately an order and a transfer, sendrawtransaction on the admin until in a block on all {n} nodes"
    );
    println!(
        "  {:<14} {:>5} {:>8} {:>8} {:>8} {:>8} {:>8} {:>10}",
        "probe", "txs", "min", "median", "p90", "p99", "max", "poll round"
    );
    for (name, s, round) in &o.probes {
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
    println!(
        "  load: {} orders sent in {:.1} s ({:.1}/s; at worst {:.0} ms behind schedule), {} refused{}",
        o.load.sent,
        o.load.secs,
        o.load_rate(),
        o.load.max_behind_ms,
        o.load.refused,
        if o.load.exhausted {
            "; THE LOAD RAN OUT OF ORDERS"
        } else {
            ""
        }
    );
    for m in &o.load.messages {
        println!("    refused: {m}");
    }
    println!(
        "  {} orders (load and probes) in {} blocks, at most {} in one",
        o.confirmed_orders, o.blocks, o.max_orders_per_block
    );
    let m = &o.matching;
    println!(
        "  matching (replayed in block order): {} fills ({:.2} per order), {} orders filled, {} resting at the end, {} base traded",
        m.fills,
        m.fills as f64 / o.confirmed_orders.max(1) as f64,
        m.filled,
        m.open,
        m.base_traded
    );
    println!("  node   CPU s  CPU % of the phase  peak RSS MB");
    for (i, u) in o.usage.iter().enumerate() {
        println!(
            "  {i:<4} {:>7.1} {:>19.0} {:>12.1}",
            u.cpu_s,
            100.0 * u.cpu_s / o.window_secs.max(1e-9),
            u.peak_rss_kb as f64 / 1024.0
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The plan is what the module doc says, and its orders are valid and cross: replayed in
    /// blocks of 7, every block applies and most orders fill.
    #[test]
    fn the_plan_replays_and_crosses() {
        let specs = specs(300);
        let sells = specs.iter().filter(|s| s.side == Side::Sell).count();
        assert!((120..=180).contains(&sells), "{sells} sells of 300");
        for s in &specs {
            let (owners, prices) = match s.side {
                Side::Sell => (SELLERS, 100..=102),
                Side::Buy => (BUYERS, 102..=104),
            };
            assert!(owners.contains(&s.owner) && prices.contains(&s.price));
            assert!((3..=12).contains(&s.base));
        }
        let keys: Vec<SecretKey> = (0..BUYERS.end as u64)
            .map(wattle_ledger::testkit::key)
            .collect();
        let wallet = Wallet {
            addrs: keys.iter().map(SecretKey::address).collect(),
            keys,
            asset: Hash256::default(),
            chain_id: Hash256::default(),
        };
        let market = Market {
            base: Hash256::default(),
            quote: Hash256::default(),
        };
        let book = Book {
            market,
            specs,
            signed: vec![],
        };
        let blocks: Vec<Vec<usize>> = (0..300usize)
            .collect::<Vec<_>>()
            .chunks(7)
            .map(<[usize]>::to_vec)
            .collect();
        let m = replay(&wallet, &book, &blocks).expect("every block of orders is valid");
        assert_eq!(m.filled + m.open, 300, "no order was cancelled");
        assert!(m.filled >= 250, "{} of 300 orders filled", m.filled);
        assert!(m.fills >= 250, "{} fills", m.fills);
    }
}
