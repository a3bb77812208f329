//! The three browser UIs in headless Chromium, driven as a user would: a devnet (three nodes and
//! three exchange services, nothing granted yet) is started in this process, Chromium opens the
//! admin, producer and consumer pages, and the test types into fields and clicks buttons over the
//! DevTools protocol for the whole trade: both sites connect to the exchange, the consumer
//! requests ecoin and the admin approves it, the producer issues energy and offers 1 kWh for
//! 1000 ecoin, the consumer buys it. Every step waits (bounded) for its effect to show in the
//! pages, which refresh by themselves; at the end each page must show the trade as done with its
//! transaction id and confirmations, and the new balances. Then the same market trades through
//! the chain's order book (issue 8), alongside: the producer posts a sell order of 1 kWh at 200
//! ecoin, the consumer a buy order of 0.4 kWh at up to 250 that fills part of it at 200; every page
//! shows the trade and the 0.6 kWh left in the book, the balances move by the fill (the consumer
//! gets back what its limit held beyond the fill's price), an order that comes to a fraction of
//! an ecoin is refused with the reason, and the producer cancels the rest from its page.
//! Screenshots of the pages at each key step go to `target/screenshots/`.
//!
//! Needs the `chromium` binary (Debian package `chromium`; `.ci/run` installs it). Without it the
//! test fails, saying so.

use serde_json::{Value, json};
use std::io::{BufRead, BufReader};
use std::net::TcpStream;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};
use tungstenite::{Message, WebSocket};
use wattle_exchange::devnet;

/// Bound for one step's effect to show (a block or two, plus the pages' polling).
const STEP: Duration = Duration::from_secs(30);
/// Bound for one DevTools reply.
const CDP_REPLY: Duration = Duration::from_secs(20);

type Res<T> = Result<T, String>;

#[test]
fn a_whole_trade_through_the_three_browser_uis() {
    let started = Instant::now();
    let dir = tempfile::tempdir().expect("a temporary directory");
    let runtime = Runtime(Some(
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("a tokio runtime"),
    ));
    let net = runtime
        .block_on(devnet::start(&dir.path().join("market"), false))
        .unwrap_or_else(|e| panic!("the devnet did not start: {e}"));
    println!("devnet up in {:.1} s", started.elapsed().as_secs_f64());
    let outcome = Browser::launch(dir.path()).and_then(|mut b| trade(&mut b, &net, started));
    runtime.block_on(net.stop());
    if let Err(e) = outcome {
        panic!("{e}");
    }
    println!(
        "the whole trade through the browser took {:.1} s",
        started.elapsed().as_secs_f64()
    );
}

/// The tokio runtime of the devnet; on a panic it is shut down without waiting for ever.
struct Runtime(Option<tokio::runtime::Runtime>);

impl Runtime {
    fn block_on<F: std::future::Future>(&self, f: F) -> F::Output {
        match &self.0 {
            Some(rt) => rt.block_on(f),
            None => unreachable!("the runtime lives until drop"),
        }
    }
}

impl Drop for Runtime {
    fn drop(&mut self) {
        if let Some(rt) = self.0.take() {
            rt.shutdown_timeout(Duration::from_secs(5));
        }
    }
}

/// The scenario. Each step names itself in its error.
fn trade(b: &mut Browser, net: &devnet::Devnet, t0: Instant) -> Res<()> {
    let log = |what: &str| println!("[{:>5.1} s] {what}", t0.elapsed().as_secs_f64());
    let admin = b.open("admin", &net.admin_url)?;
    let producer = b.open("producer", &net.producer_url)?;
    let consumer = b.open("consumer", &net.consumer_url)?;
    let mut addresses = Vec::new();
    for tab in [&admin, &producer, &consumer] {
        let address = b.wait_for(tab, "its address and block height", READY, STEP)?;
        let role = b.eval(tab, "document.body.dataset.role")?;
        if role != json!(tab.role) {
            return Err(format!("the {} page says it is {role}", tab.role));
        }
        addresses.push(address.as_str().unwrap_or_default().to_string());
    }
    let producer_address = addresses[1].clone();
    let consumer_address = addresses[2].clone();
    log("the three pages show their role, address and block height");
    b.shoot_all(&[&admin, &producer, &consumer], "01-start")?;

    // 1. Both sites register the exchange; the admin connects them (grants are mined first).
    let exchange = net.admin_url.trim_end_matches('/').to_string();
    for tab in [&producer, &consumer] {
        b.fill(tab, "exchange-url", &exchange)?;
        b.act(tab, "connect")?;
        b.wait_for(tab, "the exchange shown as connected", CONNECTED, STEP)?;
    }
    log("producer and consumer connected to the exchange");
    b.shoot_all(&[&admin, &producer, &consumer], "02-connected")?;

    // 2. The consumer asks for 20000 ecoin; the admin approves it.
    b.act_until_ok(&consumer, "request", &[("request-qty", "20000")])?;
    let request = b.wait_for(
        &consumer,
        "the ecoin request listed as pending",
        "(() => { const r = document.querySelector('#requests tr[data-status=pending]');
                  return r ? r.id.replace('request-row-', '') : null; })()",
        STEP,
    )?;
    let request = request.as_str().unwrap_or_default().to_string();
    let approve = format!("approve-{request}");
    b.wait_for(
        &admin,
        &format!("the request with an Approve button (#{approve}) for the consumer"),
        &format!(
            "(() => {{ const b = document.getElementById({approve:?});
                      const row = b && b.closest('tr');
                      return row && row.querySelector('[data-full={consumer_address:?}]') ? true : null; }})()"
        ),
        STEP,
    )?;
    b.shoot(&admin, "03-ecoin-request")?;
    b.act(&admin, &approve)?;
    b.wait_for(
        &consumer,
        "20000 ecoin in the balance",
        &balances_are(0, 0, 20000, 0),
        STEP,
    )?;
    log("the admin approved the ecoin request; the consumer holds 20000 ecoin");
    b.shoot_all(&[&admin, &consumer], "04-ecoin-issued")?;

    // 3. The producer generates 2 kWh (two issues of 1 kWh).
    for n in 1..=2 {
        b.act_until_ok(&producer, "issue-energy", &[])?;
        b.wait_for(
            &producer,
            &format!("{n} kWh of energy in the balance"),
            &balances_are(n, 0, 0, 0),
            STEP,
        )?;
    }
    log("the producer issued 2 kWh");

    // 4. An offer larger than the holdings is refused, and the page says why.
    b.fill(&producer, "offer-energy", "5000")?;
    b.fill(&producer, "offer-ecoin", "1")?;
    match b.act(&producer, "offer") {
        Err(message) if message.contains("failed:") => {
            log(&format!("an oversized offer is refused: {message}"))
        }
        other => {
            return Err(format!(
                "offering 5000 kWh while holding 2 should show an error, got {other:?}"
            ));
        }
    }
    b.shoot(&producer, "05-refused-offer")?;

    // 5. The producer offers 1 kWh for 1000 ecoin.
    b.act_until_ok(
        &producer,
        "offer",
        &[("offer-energy", "1"), ("offer-ecoin", "1000")],
    )?;
    let offer = b.wait_for(
        &producer,
        "its own open offer on the board",
        "(() => { const r = document.querySelector('#offers tr.mine[data-status=open]');
                  return r ? r.id.replace('offer-row-', '') : null; })()",
        STEP,
    )?;
    let offer = offer.as_str().unwrap_or_default().to_string();
    let price = b.eval(
        &producer,
        &format!("document.querySelector('#offer-row-{offer} td.price').textContent"),
    )?;
    if price != json!("1,000") {
        return Err(format!(
            "offer #{offer} shows the price {price}, not 1,000 (ecoin per kWh)"
        ));
    }
    b.wait_for(
        &producer,
        "1 kWh spendable and 1 kWh locked in the offer",
        &balances_are(1, 1, 0, 0),
        STEP,
    )?;
    let buy = format!("buy-{offer}");
    b.wait_for(
        &consumer,
        &format!("the offer with a Buy button (#{buy})"),
        &format!("document.getElementById({buy:?}) ? true : null"),
        STEP,
    )?;
    log(&format!(
        "offer #{offer} (1 kWh for 1000 ecoin) is on the board"
    ));
    b.shoot_all(&[&producer, &consumer], "06-offer")?;

    // 6. The consumer buys it; every page shows the trade done, with its transaction.
    b.act(&consumer, &buy)?;
    let mut txids = Vec::new();
    for tab in [&consumer, &producer, &admin] {
        let txid = b.wait_for(
            tab,
            &format!("offer #{offer} in the trade history as done, confirmed"),
            &format!(
                "(() => {{ const r = document.getElementById('trade-row-{offer}');
                          const c = document.getElementById('confirmations-{offer}');
                          const t = r && r.querySelector('.txid');
                          return r && r.querySelector('.status.done') && t
                              && Number(c && c.dataset.confirmations) >= 1 ? t.dataset.full : null; }})()"
            ),
            STEP,
        )?;
        txids.push(txid.as_str().unwrap_or_default().to_string());
    }
    let txid = &txids[0];
    if txid.len() != 64
        || !txid.chars().all(|c| c.is_ascii_hexdigit())
        || txids.iter().any(|t| t != txid)
    {
        return Err(format!(
            "the pages show different or malformed trade transactions: {txids:?}"
        ));
    }
    log(&format!("the trade is done and confirmed: {txid}"));

    // 7. The balances each page shows.
    b.wait_for(
        &producer,
        "1 kWh left, 1000 ecoin received",
        &balances_are(1, 0, 1000, 0),
        STEP,
    )?;
    b.wait_for(
        &consumer,
        "1 kWh received, 19000 ecoin left",
        &balances_are(1, 0, 19000, 0),
        STEP,
    )?;
    let board = b.eval(
        &consumer,
        &format!("document.getElementById({buy:?}) === null"),
    )?;
    if board != json!(true) {
        return Err(format!(
            "offer #{offer} can still be bought after the trade"
        ));
    }
    log("balances: producer 1 kWh + 1000 ecoin, consumer 1 kWh + 19000 ecoin");
    b.shoot_all(&[&admin, &producer, &consumer], "07-traded")?;

    // 8. The order book: the producer posts its last kWh at 200 ecoin; every page shows the ask.
    let pages = [&admin, &producer, &consumer];
    let posted = b.act_until_ok(
        &producer,
        "place-order",
        &[("order-qty", "1"), ("order-price", "200")],
    )?;
    if !posted.contains("resting in the order book") {
        return Err(format!(
            "the sell order should rest in the book; the page said: {posted}"
        ));
    }
    for tab in pages {
        b.wait_for(
            tab,
            "the ask of 1 kWh at 200",
            &book_is(&[(200.0, 1.0, 1)], &[]),
            STEP,
        )?;
    }
    let sell = b.wait_for(
        &producer,
        "its open sell order in Your orders",
        "(() => { const r = document.querySelector('#orders tr[data-status=open][data-side=sell]');
                  return r ? r.id.replace('order-row-', '') : null; })()",
        STEP,
    )?;
    let sell = sell.as_str().unwrap_or_default().to_string();
    b.wait_for(
        &producer,
        "1 kWh held by the order, 1000 ecoin",
        &format!(
            "{} && {}",
            balances_are(0, 0, 1000, 0),
            held_in_orders("energy", 1)
        ),
        STEP,
    )?;
    log(&format!(
        "sell order {sell} (1 kWh at 200 ecoin/kWh) rests in the book"
    ));
    b.shoot_all(&pages, "08-sell-order")?;

    // 9. An order that comes to a fraction of an ecoin is refused, with the reason.
    b.fill(&consumer, "order-qty", "0.001")?;
    b.fill(&consumer, "order-price", "100")?;
    match b.act(&consumer, "place-order") {
        Err(message) if message.contains("0.1 ecoin") => {
            log(&format!("a buy order of 0.1 ecoin is refused: {message}"))
        }
        other => {
            return Err(format!(
                "a buy order of 0.001 kWh at 100 should be refused for its 0.1 ecoin, got {other:?}"
            ));
        }
    }

    // 10. The consumer bids 0.4 kWh at up to 250: filled at once at the ask's 200.
    let bought = b.act_until_ok(
        &consumer,
        "place-order",
        &[("order-qty", "0.4"), ("order-price", "250")],
    )?;
    if !bought.contains("filled at once: 0.4 kWh for 80 ecoin") {
        return Err(format!(
            "the buy order should fill at once; the page said: {bought}"
        ));
    }
    let trade_row = format!(
        "(() => {{ const rows = document.querySelectorAll('#book-trades tr.trade');
                  const r = rows[0];
                  return rows.length === 1 && Number(r.dataset.qty) === 0.4 && Number(r.dataset.price) === 200
                      && r.dataset.buyer === {consumer_address:?} && r.dataset.seller === {producer_address:?}
                      ? r.dataset.txid : null; }})()"
    );
    let mut fills = Vec::new();
    for tab in pages {
        let txid = b.wait_for(
            tab,
            "the trade of 0.4 kWh at 200 in Recent trades",
            &trade_row,
            STEP,
        )?;
        fills.push(txid.as_str().unwrap_or_default().to_string());
        b.wait_for(
            tab,
            "0.6 kWh left at 200 in the book",
            &book_is(&[(200.0, 0.6, 1)], &[]),
            STEP,
        )?;
    }
    if fills[0].len() != 64 || fills.iter().any(|t| t != &fills[0]) {
        return Err(format!(
            "the pages show different or malformed trades: {fills:?}"
        ));
    }
    b.wait_for(
        &producer,
        "its sell order 0.4 filled, 0.6 left",
        &format!(
            "(() => {{ const r = document.getElementById('order-row-{sell}');
                      return r && r.dataset.status === 'open' && Number(r.dataset.filled) === 0.4
                          && Number(r.dataset.remaining) === 0.6 ? true : null; }})()"
        ),
        STEP,
    )?;
    b.wait_for(
        &consumer,
        "its buy order filled",
        "(() => { const r = document.querySelector('#orders tr[data-side=buy]');
                  return r && r.dataset.status === 'filled' && Number(r.dataset.filled) === 0.4 ? true : null; })()",
        STEP,
    )?;
    // The producer got 0.4 × 200 = 80 ecoin; the consumer paid 80 of the 100 its limit held.
    b.wait_for(
        &producer,
        "1080 ecoin, 0.6 kWh held by the order",
        &format!(
            "{} && {}",
            balances_are(0, 0, 1080, 0),
            held_in_orders("energy", 0.6)
        ),
        STEP,
    )?;
    b.wait_for(
        &consumer,
        "1.4 kWh and 18920 ecoin",
        &format!(
            "{} && {}",
            balances_are(1.4, 0, 18920, 0),
            held_in_orders("ecoin", 0)
        ),
        STEP,
    )?;
    log(&format!(
        "the bid filled 0.4 kWh at 200 ({}); 0.6 kWh rest",
        fills[0]
    ));
    b.shoot_all(&pages, "09-partial-fill")?;

    // 11. The producer cancels the rest: the book is empty and its 0.6 kWh come back.
    let cancelled = b.act(&producer, &format!("cancel-{sell}"))?;
    log(&format!("cancelled: {cancelled}"));
    for tab in pages {
        b.wait_for(tab, "an empty order book", &book_is(&[], &[]), STEP)?;
    }
    b.wait_for(
        &producer,
        "the order cancelled and 0.6 kWh back",
        &format!(
            "(() => {{ const r = document.getElementById('order-row-{sell}');
                      return r && r.dataset.status === 'cancelled' && !document.getElementById('cancel-{sell}')
                          ? true : null; }})() && {}",
            balances_are(0.6, 0, 1080, 0)
        ),
        STEP,
    )?;
    // The paper's whole-offer history is still there.
    b.wait_for(
        &consumer,
        "the whole offer still in the trade history",
        &format!("document.querySelector('#trade-row-{offer} .status.done') ? true : null"),
        STEP,
    )?;
    log("the rest cancelled: producer 0.6 kWh + 1080 ecoin, consumer 1.4 kWh + 18920 ecoin");
    b.shoot_all(&pages, "10-cancelled")?;
    Ok(())
}

/// True once the page's order book shows exactly these levels (price, kWh, orders), best first.
fn book_is(asks: &[(f64, f64, u32)], bids: &[(f64, f64, u32)]) -> String {
    let side = |levels: &[(f64, f64, u32)]| {
        let inner: Vec<String> = levels
            .iter()
            .map(|(p, q, n)| format!("[{p},{q},{n}]"))
            .collect();
        format!("[{}]", inner.join(","))
    };
    format!(
        "(() => {{ const side = (id) => [...document.querySelectorAll('#' + id + ' tr.level')]
                      .map((r) => [Number(r.dataset.price), Number(r.dataset.qty), Number(r.dataset.orders)]);
                  return JSON.stringify([side('book-asks'), side('book-bids')]) === {:?} ? true : null; }})()",
        format!("[{},{}]", side(asks), side(bids))
    )
}

/// True once the page's balance of `asset` says `qty` is held by its open orders.
fn held_in_orders(asset: &str, qty: impl std::fmt::Display) -> String {
    format!(
        "(() => {{ const b = document.getElementById('balance-{asset}');
                  return b && Number(b.dataset.inOrders) === {qty} ? true : null; }})()"
    )
}

/// The page is loaded and has talked to its service: its address (or null).
const READY: &str = "(() => { const a = document.getElementById('address');
    const h = document.getElementById('height');
    return a && a.dataset.full && h && /^[0-9]+$/.test(h.textContent) ? a.dataset.full : null; })()";

const CONNECTED: &str = "(() => { const s = document.getElementById('exchange-status');
    return s && s.className === 'connected' ? s.textContent : null; })()";

/// True once the page's balances are exactly these (spendable and locked, energy then ecoin).
fn balances_are(
    energy: impl std::fmt::Display,
    energy_locked: impl std::fmt::Display,
    ecoin: impl std::fmt::Display,
    ecoin_locked: impl std::fmt::Display,
) -> String {
    format!(
        "(() => {{ const q = (a, k) => {{ const b = document.getElementById('balance-' + a);
                                        return b ? Number(b.dataset[k]) : NaN; }};
                  return q('energy', 'qty') === {energy} && q('energy', 'locked') === {energy_locked}
                      && q('ecoin', 'qty') === {ecoin} && q('ecoin', 'locked') === {ecoin_locked} ? true : null; }})()"
    )
}

/// What a page shows right now, for error messages.
const SUMMARY: &str = "(() => { const t = (id) => { const e = document.getElementById(id);
        return e ? e.innerText.replace(/\\s+/g, ' ').trim() : null; };
    return { height: t('height'), exchange: t('exchange-status'), notice: t('notice'),
             balances: t('balances'), requests: t('requests'), offers: t('offers'),
             history: t('history'), asks: t('book-asks'), bids: t('book-bids'),
             trades: t('book-trades'), orders: t('orders') }; })()";

/// One page, attached over the browser's DevTools connection.
struct Tab {
    role: &'static str,
    session: String,
}

/// A headless Chromium and one DevTools websocket to it; killed (with its helpers) on drop.
struct Browser {
    ws: WebSocket<TcpStream>,
    next_id: u64,
    shots: PathBuf,
    /// Dropped after `Browser::drop` has asked Chromium to close.
    _chromium: Killer,
}

impl Browser {
    fn launch(scratch: &Path) -> Res<Browser> {
        let profile = scratch.join("chromium-profile");
        let mut chromium = Command::new("chromium")
            .args([
                "--headless=new",
                "--no-sandbox",
                "--disable-gpu",
                "--remote-debugging-address=127.0.0.1",
                "--remote-debugging-port=0",
                "--no-first-run",
                "--no-default-browser-check",
                "--disable-extensions",
                "--disable-background-networking",
                "--disable-background-timer-throttling",
                "--disable-backgrounding-occluded-windows",
                "--disable-renderer-backgrounding",
                "--window-size=1280,1000",
            ])
            .arg(format!("--user-data-dir={}", profile.display()))
            .arg("about:blank")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .process_group(0)
            .spawn()
            .map_err(|e| {
                format!(
                    "cannot start chromium ({e}): this test needs the `chromium` binary \
                     (Debian: apt-get install chromium; .ci/run installs it)"
                )
            })?;
        let stderr = chromium.stderr.take();
        let chromium = Killer(Some(chromium));
        let (tx, rx) = mpsc::channel::<String>();
        std::thread::spawn(move || {
            // Keep draining so that Chromium never blocks on a full pipe.
            if let Some(stderr) = stderr {
                for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                    let _ = tx.send(line);
                }
            }
        });
        let url = devtools_url(&rx)?;
        let ws = connect(&url)?;
        let shots = screenshot_dir()?;
        Ok(Browser {
            ws,
            next_id: 0,
            shots,
            _chromium: chromium,
        })
    }

    /// One DevTools command (on a page's session, or on the browser); its `result`.
    fn call(&mut self, session: Option<&str>, method: &str, params: Value) -> Res<Value> {
        self.next_id += 1;
        let id = self.next_id;
        let mut message = json!({ "id": id, "method": method, "params": params });
        if let Some(s) = session {
            message["sessionId"] = json!(s);
        }
        self.ws
            .send(Message::text(message.to_string()))
            .map_err(|e| format!("DevTools {method}: cannot send: {e}"))?;
        let deadline = Instant::now() + CDP_REPLY;
        while Instant::now() < deadline {
            let text = match self.ws.read() {
                Ok(Message::Text(t)) => t,
                Ok(_) => continue,
                Err(tungstenite::Error::Io(e))
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) =>
                {
                    continue;
                }
                Err(e) => return Err(format!("DevTools {method}: the connection failed: {e}")),
            };
            let reply: Value = serde_json::from_str(text.as_str()).map_err(|e| {
                format!("DevTools {method}: a reply that is not JSON ({e}): {text}")
            })?;
            if reply.get("id").and_then(Value::as_u64) != Some(id) {
                continue; // an event, or a late reply to an earlier command
            }
            if let Some(error) = reply.get("error") {
                return Err(format!("DevTools {method} failed: {error}"));
            }
            return Ok(reply.get("result").cloned().unwrap_or(Value::Null));
        }
        Err(format!("DevTools {method}: no reply within {CDP_REPLY:?}"))
    }

    /// Opens `url` in a new page of 1280×1000.
    fn open(&mut self, role: &'static str, url: &str) -> Res<Tab> {
        let target = self.call(
            None,
            "Target.createTarget",
            json!({ "url": "about:blank", "newWindow": true, "width": 1280, "height": 1000 }),
        )?;
        let target = target["targetId"]
            .as_str()
            .ok_or(format!("Target.createTarget gave no targetId: {target}"))?
            .to_string();
        let attached = self.call(
            None,
            "Target.attachToTarget",
            json!({ "targetId": target, "flatten": true }),
        )?;
        let session = attached["sessionId"]
            .as_str()
            .ok_or(format!(
                "Target.attachToTarget gave no sessionId: {attached}"
            ))?
            .to_string();
        let nav = self.call(Some(&session), "Page.navigate", json!({ "url": url }))?;
        if let Some(e) = nav.get("errorText").and_then(Value::as_str) {
            return Err(format!("the {role} page at {url} did not load: {e}"));
        }
        Ok(Tab { role, session })
    }

    /// Evaluates a JavaScript expression in the page; its value (promises are awaited).
    fn eval(&mut self, tab: &Tab, expression: &str) -> Res<Value> {
        let r = self.call(
            Some(&tab.session),
            "Runtime.evaluate",
            json!({ "expression": expression, "returnByValue": true, "awaitPromise": true }),
        )?;
        if let Some(ex) = r.get("exceptionDetails") {
            let text = ex["exception"]["description"]
                .as_str()
                .or(ex["text"].as_str())
                .unwrap_or("?");
            return Err(format!(
                "the {} page threw: {text}\n  in: {expression}",
                tab.role
            ));
        }
        Ok(r["result"].get("value").cloned().unwrap_or(Value::Null))
    }

    /// Evaluates `expression` every 250 ms until its value is truthy; that value.
    fn wait_for(
        &mut self,
        tab: &Tab,
        what: &str,
        expression: &str,
        timeout: Duration,
    ) -> Res<Value> {
        let deadline = Instant::now() + timeout;
        loop {
            let v = self.eval(tab, expression)?;
            let truthy =
                !matches!(&v, Value::Null | Value::Bool(false)) && v != json!("") && v != json!(0);
            if truthy {
                return Ok(v);
            }
            if Instant::now() >= deadline {
                let shown = self.eval(tab, SUMMARY).unwrap_or_else(|e| json!(e));
                let _ = self.shoot(tab, "failure");
                return Err(format!(
                    "the {} page did not show {what} within {timeout:?}; it shows: {shown:#}",
                    tab.role
                ));
            }
            std::thread::sleep(Duration::from_millis(250));
        }
    }

    /// Types `value` into the input `id` (as the page's own listeners would see it).
    fn fill(&mut self, tab: &Tab, id: &str, value: &str) -> Res<()> {
        let done = self.eval(
            tab,
            &format!(
                "(() => {{ const e = document.getElementById({id:?}); if (!e) return false;
                          e.focus(); e.value = {value:?};
                          e.dispatchEvent(new Event('input', {{ bubbles: true }}));
                          e.dispatchEvent(new Event('change', {{ bubbles: true }}));
                          e.blur(); return e.value === {value:?}; }})()"
            ),
        )?;
        if done != json!(true) {
            return Err(format!(
                "the {} page has no input #{id} taking {value:?}",
                tab.role
            ));
        }
        Ok(())
    }

    /// Clicks the button `id` once it is enabled and waits for the page's notice about it: its
    /// text if it reports success, `Err(text)` if it reports an error. The button must be
    /// disabled while the request runs.
    fn act(&mut self, tab: &Tab, id: &str) -> Res<String> {
        let seq = |b: &mut Browser| -> Res<u64> {
            let v = b.eval(tab, "Number(document.getElementById('notice').dataset.seq)")?;
            v.as_u64().ok_or(format!(
                "the {} page has no #notice[data-seq]: {v}",
                tab.role
            ))
        };
        let before = seq(self)?;
        let click = format!(
            "(() => {{ const b = document.getElementById({id:?});
                      if (!b) return 'missing'; if (b.disabled) return 'disabled';
                      b.click(); return b.disabled ? 'clicked' : 'not disabled while running'; }})()"
        );
        let deadline = Instant::now() + STEP;
        loop {
            match self.eval(tab, &click)?.as_str() {
                Some("clicked") => break,
                Some("missing") | Some("disabled") if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(250));
                }
                other => {
                    return Err(format!(
                        "clicking #{id} on the {} page: {other:?}",
                        tab.role
                    ));
                }
            }
        }
        let outcome = self.wait_for(
            tab,
            &format!("a notice about #{id}"),
            &format!(
                "(() => {{ const n = document.getElementById('notice');
                          return Number(n.dataset.seq) > {before}
                              ? [n.dataset.kind, document.getElementById('notice-text').textContent] : null; }})()"
            ),
            // Connecting waits for the grants to be mined; buying for the admin's check.
            STEP * 2,
        )?;
        let kind = outcome[0].as_str().unwrap_or_default();
        let text = outcome[1].as_str().unwrap_or_default().to_string();
        self.wait_for(
            tab,
            &format!("#{id} enabled again after its request"),
            &format!("(() => {{ const b = document.getElementById({id:?}); return !b || !b.disabled; }})()"),
            Duration::from_secs(5),
        )?;
        match kind {
            "ok" => Ok(text),
            _ => Err(text),
        }
    }

    /// Fills `inputs` and clicks `id` until the page reports success (a site's permissions
    /// reach its node a block after the admin grants them, so the first tries may be refused).
    fn act_until_ok(&mut self, tab: &Tab, id: &str, inputs: &[(&str, &str)]) -> Res<String> {
        let deadline = Instant::now() + STEP;
        loop {
            for (input, value) in inputs {
                self.fill(tab, input, value)?;
            }
            match self.act(tab, id) {
                Ok(text) => return Ok(text),
                Err(e) if Instant::now() < deadline => {
                    println!("  {} #{id} refused, retrying: {e}", tab.role);
                    std::thread::sleep(Duration::from_secs(1));
                }
                Err(e) => {
                    return Err(format!("#{id} on the {} page kept failing: {e}", tab.role));
                }
            }
        }
    }

    /// Saves a PNG of the whole page as `target/screenshots/browser-<step>-<role>.png`.
    fn shoot(&mut self, tab: &Tab, step: &str) -> Res<PathBuf> {
        // Typing scrolls; the picture starts at the top of the page.
        self.eval(
            tab,
            "window.scrollTo(0, 0); document.activeElement && document.activeElement.blur()",
        )?;
        let metrics = self.call(Some(&tab.session), "Page.getLayoutMetrics", json!({}))?;
        let size = &metrics["cssContentSize"];
        let width = size["width"].as_f64().unwrap_or(1280.0).max(1.0);
        let height = size["height"].as_f64().unwrap_or(1000.0).clamp(1.0, 8000.0);
        let shot = self.call(
            Some(&tab.session),
            "Page.captureScreenshot",
            json!({
                "format": "png",
                "captureBeyondViewport": true,
                "clip": { "x": 0, "y": 0, "width": width, "height": height, "scale": 1 },
            }),
        )?;
        let data = shot["data"]
            .as_str()
            .ok_or(format!("Page.captureScreenshot gave no data: {shot}"))?;
        let png = base64_decode(data)?;
        let path = self.shots.join(format!("browser-{step}-{}.png", tab.role));
        std::fs::write(&path, png).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        println!("  screenshot {}", path.display());
        Ok(path)
    }

    fn shoot_all(&mut self, tabs: &[&Tab], step: &str) -> Res<()> {
        for tab in tabs {
            self.shoot(tab, step)?;
        }
        Ok(())
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.call(None, "Browser.close", json!({}));
    }
}

/// Kills Chromium's whole process group (the browser and its helper processes) on drop.
struct Killer(Option<Child>);

impl Drop for Killer {
    fn drop(&mut self) {
        if let Some(mut child) = self.0.take() {
            let deadline = Instant::now() + Duration::from_secs(3);
            while Instant::now() < deadline && matches!(child.try_wait(), Ok(None)) {
                std::thread::sleep(Duration::from_millis(50));
            }
            // The group id is the browser's pid (process_group(0)); helpers may outlive it.
            let _ = Command::new("kill")
                .args(["-KILL", "--", &format!("-{}", child.id())])
                .stderr(Stdio::null())
                .status();
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Reads Chromium's `DevTools listening on ws://...` line.
fn devtools_url(lines: &mpsc::Receiver<String>) -> Res<String> {
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut seen = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match lines.recv_timeout(left) {
            Ok(line) => {
                if let Some(url) = line.trim().strip_prefix("DevTools listening on ") {
                    return Ok(url.to_string());
                }
                seen.push(line);
            }
            Err(_) => {
                return Err(format!(
                    "chromium printed no DevTools address within 30 s; its output:\n{}",
                    seen.join("\n")
                ));
            }
        }
    }
}

/// Opens the DevTools websocket (reads time out every 500 ms so that no wait is unbounded).
fn connect(url: &str) -> Res<WebSocket<TcpStream>> {
    let hostport = url
        .strip_prefix("ws://")
        .and_then(|rest| rest.split('/').next())
        .ok_or(format!("an unexpected DevTools address: {url}"))?;
    let stream =
        TcpStream::connect(hostport).map_err(|e| format!("cannot connect to {url}: {e}"))?;
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .map_err(|e| e.to_string())?;
    let (ws, _) = tungstenite::client::client(url, stream)
        .map_err(|e| format!("the DevTools websocket handshake with {url} failed: {e}"))?;
    ws.get_ref()
        .set_read_timeout(Some(Duration::from_millis(500)))
        .map_err(|e| e.to_string())?;
    Ok(ws)
}

/// `<target dir>/screenshots`, created. The test binary is `<target dir>/<profile>/deps/…`.
fn screenshot_dir() -> Res<PathBuf> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let target = exe
        .ancestors()
        .nth(3)
        .filter(|_| exe.parent().is_some_and(|d| d.ends_with("deps")))
        .map(Path::to_path_buf)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"));
    let dir = target.join("screenshots");
    std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    // Only this run's pictures (other tests' files in the directory stay).
    for old in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
        let name = old.file_name().to_string_lossy().to_string();
        if name.starts_with("browser-") && name.ends_with(".png") {
            let _ = std::fs::remove_file(old.path());
        }
    }
    Ok(dir)
}

/// Standard base64 (as DevTools sends screenshots).
fn base64_decode(text: &str) -> Res<Vec<u8>> {
    let mut out = Vec::with_capacity(text.len() / 4 * 3);
    let (mut acc, mut bits) = (0u32, 0u32);
    for c in text.bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            b'=' | b'\n' | b'\r' => continue,
            _ => return Err(format!("not base64: byte {c}")),
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Ok(out)
}
