//! The admin's offer board (paper §3.2 `register_ask`, `register_bid`, `exchange_list`).
//!
//! Rules, in the order they are applied:
//! 1. `register_ask` lists a blob only if the admin's node decodes it (a tampered blob fails its
//!    signature), it is an offer — incomplete, one input paired with one output, one asset
//!    offered for one other asset — its coin is unspent (the decoder checks), the coin belongs to
//!    `ask_address` and the paired output pays `ask_address`, and no other listing has that coin.
//! 2. `register_bid` records a bid only for an `open` offer and only if the transaction is known
//!    to the admin's node, spends the offer's coin, pays the asked asset and quantity to the
//!    offer's address in the output paired with that input, and pays the offered asset and
//!    quantity to `bid_address`. The offer becomes `pending`, or `done` if already mined.
//! 3. [`watch_bids`] (every second) and each `exchange_list` re-check registered transactions:
//!    mined → `done`; back in the mempool after a reorganisation → `pending`; unknown to the node
//!    for [`MISSES_TO_REOPEN`] checks in a row → `open` again, bid cleared. Offers with
//!    [`SETTLED_DEPTH`] confirmations are no longer watched until the service restarts.

use crate::api::{ApiResult, Service, Shared, de_index, de_text, now_secs, parse, query};
use crate::db::{Offer, OfferStatus, Side};
use crate::error::ApiError;
use crate::qty::{Qty, price, units_of};
use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{StatusCode, Uri};
use serde::Deserialize;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::time::{Duration, Instant};
use wattle_node::rpc::client::CallError;

/// Checks in a row without the bid's transaction before an offer reopens.
pub const MISSES_TO_REOPEN: u32 = 3;
/// Confirmations after which a done offer is no longer re-checked.
pub const SETTLED_DEPTH: u64 = 10;
/// How long the admin's node may take to learn a coin or transaction a site just sent.
const PROPAGATION: Duration = Duration::from_secs(10);

fn invalid_offer(message: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, "invalid_offer", message)
}

fn invalid_bid(message: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, "invalid_bid", message)
}

/// What a checked blob offers.
struct Listing {
    offer: Side,
    ask: Side,
    coin_txid: String,
    coin_vout: u64,
    pay_address: String,
}

/// decoderawexchange (verbose) on the admin's node; a coin it does not know yet (the site's
/// block may still be on its way) is waited for.
async fn decode_offer(s: &Service, blob: &str) -> Result<Value, ApiError> {
    match s.node.decode_exchange(blob, PROPAGATION).await {
        Ok(v) => Ok(v),
        Err(CallError::Rpc { code, message }) => Err(invalid_offer(format!(
            "the blob is not a valid exchange offer: {message} (node error {code})"
        ))),
        Err(e) => Err(ApiError::node("decoderawexchange", e)),
    }
}

/// The one asset of a decoded side.
fn one_asset(side: &Value, what: &str) -> Result<Side, ApiError> {
    let assets = side["assets"].as_array().cloned().unwrap_or_default();
    let [a] = assets.as_slice() else {
        return Err(invalid_offer(format!(
            "the offer must {what} exactly one asset, not {}",
            assets.len()
        )));
    };
    let asset = a["name"]
        .as_str()
        .ok_or_else(|| invalid_offer(format!("the asset the offer would {what} has no name")))?;
    let qty = Qty::from_value(&a["qty"]).map_err(|e| invalid_offer(format!("{what}: {e}")))?;
    Ok(Side {
        asset: asset.to_string(),
        qty,
    })
}

/// Rule 1 on a decoded blob.
fn check_offer(d: &Value, ask_address: &str) -> Result<Listing, ApiError> {
    if d["complete"].as_bool() != Some(false) {
        return Err(invalid_offer(
            "the blob is a complete exchange, not an offer waiting for a buyer",
        ));
    }
    let pairs = d["exchanges"].as_array().cloned().unwrap_or_default();
    let [pair] = pairs.as_slice() else {
        return Err(invalid_offer(format!(
            "an offer pairs exactly one input with one output (this blob has {})",
            pairs.len()
        )));
    };
    let offer = one_asset(&pair["offer"], "give")?;
    let ask = one_asset(&pair["ask"], "ask for")?;
    if offer.asset == ask.asset {
        return Err(invalid_offer(format!(
            "the offer gives and asks for the same asset ({})",
            offer.asset
        )));
    }
    let owner = pair["offer"]["address"].as_str().unwrap_or("");
    if owner != ask_address {
        return Err(invalid_offer(format!(
            "the offered coin belongs to {owner}, not to ask_address {ask_address}"
        )));
    }
    let pay_address = pair["ask"]["address"].as_str().unwrap_or("").to_string();
    if pay_address != ask_address {
        return Err(invalid_offer(format!(
            "the offer pays {pay_address}, not ask_address {ask_address}"
        )));
    }
    let coin_txid = pair["offer"]["txid"].as_str().unwrap_or("").to_string();
    let coin_vout = pair["offer"]["vout"]
        .as_u64()
        .ok_or_else(|| invalid_offer("the decoded offer names no coin"))?;
    Ok(Listing {
        offer,
        ask,
        coin_txid,
        coin_vout,
        pay_address,
    })
}

#[derive(Deserialize)]
struct Ask {
    #[serde(deserialize_with = "de_text")]
    ask_address: String,
    #[serde(deserialize_with = "de_text")]
    blob: String,
}

/// `POST /api/admin/register_ask {ask_address, blob}` → `{index}`.
pub async fn register_ask(State(s): State<Shared>, body: Bytes) -> ApiResult {
    let req: Ask = parse(&body)?;
    if !req.blob.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(invalid_offer("the blob is not hexadecimal"));
    }
    let decoded = decode_offer(&s, &req.blob).await?;
    let l = check_offer(&decoded, &req.ask_address)?;
    let _writing = s.writes.lock().await;
    if let Some(o) =
        s.db.offers()?
            .into_iter()
            .find(|o| o.coin_txid == l.coin_txid && o.coin_vout == l.coin_vout)
    {
        return Err(ApiError::conflict(
            "already_listed",
            format!("this coin is already offered as offer {}", o.index),
        ));
    }
    let at = now_secs();
    let index =
        s.db.add_offer(|index| Offer {
            index,
            ask_address: req.ask_address.clone(),
            blob: req.blob.clone(),
            offer: l.offer.clone(),
            ask: l.ask.clone(),
            coin_txid: l.coin_txid.clone(),
            coin_vout: l.coin_vout,
            pay_address: l.pay_address.clone(),
            status: OfferStatus::Open,
            bid_address: None,
            txid: None,
            listed_at: at,
        })
        .await?;
    tracing::info!(index, ask_address = %req.ask_address, "offer listed: {} {} for {} {}",
        l.offer.qty, l.offer.asset, l.ask.qty, l.ask.asset);
    Ok(Json(json!({"index": index})))
}

/// getrawtransaction (verbose) on the admin's node, waiting a little for one just sent.
async fn fetch_tx(s: &Service, txid: &str) -> Result<Value, ApiError> {
    let deadline = Instant::now() + PROPAGATION;
    loop {
        match s.node.try_call("getrawtransaction", json!([txid, 1])).await {
            Ok(v) => return Ok(v),
            Err(CallError::Rpc { .. }) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(CallError::Rpc { message, .. }) => {
                return Err(invalid_bid(format!(
                    "transaction {txid} is unknown to the exchange's node ({message})"
                )));
            }
            Err(e) => return Err(ApiError::node("getrawtransaction", e)),
        }
    }
}

/// Whether output `out` (verbose JSON) pays `side` to `address`.
fn pays(out: &Value, address: &str, side: &Side) -> bool {
    out["address"].as_str() == Some(address)
        && out["assets"].as_array().is_some_and(|assets| {
            assets.iter().any(|a| {
                a["name"].as_str() == Some(side.asset.as_str())
                    && units_of(&a["qty"]) == side.qty.units()
            })
        })
}

/// Rule 2 on a verbose transaction.
fn check_completion(o: &Offer, bid_address: &str, tx: &Value) -> Result<(), ApiError> {
    let txid = tx["txid"].as_str().unwrap_or("?");
    let vin = tx["vin"].as_array().cloned().unwrap_or_default();
    let vout = tx["vout"].as_array().cloned().unwrap_or_default();
    let i = vin
        .iter()
        .position(|i| {
            i["txid"].as_str() == Some(o.coin_txid.as_str())
                && i["vout"].as_u64() == Some(o.coin_vout)
        })
        .ok_or_else(|| {
            invalid_bid(format!(
                "transaction {txid} does not spend offer {}'s coin {}:{}",
                o.index, o.coin_txid, o.coin_vout
            ))
        })?;
    if !vout
        .get(i)
        .is_some_and(|out| pays(out, &o.pay_address, &o.ask))
    {
        return Err(invalid_bid(format!(
            "transaction {txid} does not pay the asked {} {} to {}",
            o.ask.qty, o.ask.asset, o.pay_address
        )));
    }
    let to_bidder = vout
        .iter()
        .enumerate()
        .any(|(j, out)| j != i && pays(out, bid_address, &o.offer));
    if !to_bidder {
        return Err(invalid_bid(format!(
            "transaction {txid} does not pay the offered {} {} to bid_address {bid_address}",
            o.offer.qty, o.offer.asset
        )));
    }
    Ok(())
}

#[derive(Deserialize)]
struct Bid {
    #[serde(deserialize_with = "de_index")]
    index: u64,
    #[serde(deserialize_with = "de_text")]
    bid_address: String,
    #[serde(deserialize_with = "de_text")]
    txid: String,
}

fn taken(o: &Offer) -> ApiError {
    if o.status == OfferStatus::Cancelled {
        return ApiError::conflict(
            "cancelled",
            format!(
                "offer {} was cancelled: its coin was spent by another transaction",
                o.index
            ),
        );
    }
    ApiError::conflict(
        "already_taken",
        format!(
            "offer {} is already taken ({}, transaction {})",
            o.index,
            o.status.as_str(),
            o.txid.as_deref().unwrap_or("?")
        ),
    )
}

/// `POST /api/admin/register_bid {index, bid_address, txid}` → `{index, status, txid}`.
pub async fn register_bid(State(s): State<Shared>, body: Bytes) -> ApiResult {
    let req: Bid = parse(&body)?;
    if req.txid.len() != 64 || !req.txid.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(invalid_bid("txid must be 64 hexadecimal digits"));
    }
    let offer = find_offer(&s, req.index)?;
    let answer = |o: &Offer| json!({"index": o.index, "status": o.status.as_str(), "txid": o.txid});
    if offer.txid.as_deref() == Some(req.txid.as_str())
        && offer.bid_address.as_deref() == Some(req.bid_address.as_str())
    {
        return Ok(Json(answer(&offer)));
    }
    if offer.status != OfferStatus::Open {
        return Err(taken(&offer));
    }
    let tx = fetch_tx(&s, &req.txid).await?;
    check_completion(&offer, &req.bid_address, &tx)?;
    let mined = tx["confirmations"].as_u64().unwrap_or(0) >= 1;
    let _writing = s.writes.lock().await;
    let mut offer = find_offer(&s, req.index)?;
    if offer.status != OfferStatus::Open {
        return Err(taken(&offer));
    }
    offer.status = if mined {
        OfferStatus::Done
    } else {
        OfferStatus::Pending
    };
    offer.bid_address = Some(req.bid_address.clone());
    offer.txid = Some(req.txid.clone());
    s.db.put_offer(&offer).await?;
    tracing::info!(index = offer.index, txid = %req.txid, status = offer.status.as_str(), "bid registered");
    Ok(Json(answer(&offer)))
}

fn find_offer(s: &Service, index: u64) -> Result<Offer, ApiError> {
    s.db.offer(index)?
        .ok_or_else(|| ApiError::not_found(format!("there is no offer {index}")))
}

/// Rule 3 for one offer: its status from what the node says about its bid's transaction.
/// Returns the (possibly updated) offer and the transaction's confirmations. Only the watcher
/// counts misses (`watching`), so that a list polled often cannot reopen an offer early.
async fn refresh(
    s: &Service,
    offer: Offer,
    watching: bool,
) -> Result<(Offer, Option<u64>), ApiError> {
    let Some(txid) = offer.txid.clone() else {
        return Ok((offer, None));
    };
    let conf = s.node.confirmations(&txid).await?;
    let target = {
        let mut misses = s.misses.lock().unwrap_or_else(|e| e.into_inner());
        match conf {
            Some(c) => {
                misses.remove(&offer.index);
                if c >= 1 {
                    OfferStatus::Done
                } else {
                    OfferStatus::Pending
                }
            }
            None if !watching => offer.status,
            None => {
                let m = misses.entry(offer.index).or_insert(0);
                *m += 1;
                if *m >= MISSES_TO_REOPEN {
                    misses.remove(&offer.index);
                    OfferStatus::Open
                } else {
                    offer.status
                }
            }
        }
    };
    if target == offer.status {
        return Ok((offer, conf));
    }
    let _writing = s.writes.lock().await;
    let mut current = find_offer(s, offer.index)?;
    if current.txid.as_deref() != Some(txid.as_str()) {
        return Ok((current, None));
    }
    if target == OfferStatus::Open {
        tracing::warn!(index = current.index, %txid, "the bid's transaction is gone: offer reopened");
        current.bid_address = None;
        current.txid = None;
    } else {
        tracing::info!(index = current.index, %txid, status = target.as_str(), "offer status changed");
    }
    current.status = target;
    s.db.put_offer(&current).await?;
    Ok((current, conf))
}

/// Whether an open offer's coin is gone: the admin's node no longer finds the blob's input
/// (spent by something else than a registered bid, e.g. `disablerawtransaction`). A node error
/// is not an answer (`None`).
async fn coin_gone(s: &Service, o: &Offer) -> Option<bool> {
    match s
        .node
        .try_call("decoderawexchange", json!([o.blob, false]))
        .await
    {
        Ok(_) => Some(false),
        Err(CallError::Rpc { message, .. }) => Some(message.contains("Missing inputs")),
        Err(_) => None,
    }
}

/// Marks an open offer `cancelled` once its coin has been gone for [`MISSES_TO_REOPEN`] checks
/// in a row (so a coin a reorganisation only briefly takes away does not cancel it).
async fn check_open(s: &Service, o: &Offer, gone_counts: &mut HashMap<u64, u32>) {
    match coin_gone(s, o).await {
        Some(true) => {}
        Some(false) | None => {
            gone_counts.remove(&o.index);
            return;
        }
    }
    let n = gone_counts.entry(o.index).or_insert(0);
    *n += 1;
    if *n < MISSES_TO_REOPEN {
        return;
    }
    gone_counts.remove(&o.index);
    let _writing = s.writes.lock().await;
    let Ok(mut current) = find_offer(s, o.index) else {
        return;
    };
    if current.status != OfferStatus::Open || current.txid.is_some() {
        return;
    }
    current.status = OfferStatus::Cancelled;
    match s.db.put_offer(&current).await {
        Ok(()) => tracing::info!(index = current.index, "offer cancelled: its coin was spent"),
        Err(e) => tracing::error!("{e}"),
    }
}

/// Re-checks pending and done offers every second, and whether open offers' coins are still
/// there, until `stop` turns true.
pub async fn watch_bids(s: Shared, mut stop: tokio::sync::watch::Receiver<bool>) {
    let mut settled = std::collections::HashSet::new();
    let mut gone_counts: HashMap<u64, u32> = HashMap::new();
    loop {
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            _ = stop.changed() => return,
        }
        let offers = match s.db.offers() {
            Ok(o) => o,
            Err(e) => {
                tracing::error!("{e}");
                continue;
            }
        };
        for o in offers {
            if o.status == OfferStatus::Open && o.txid.is_none() {
                check_open(&s, &o, &mut gone_counts).await;
                continue;
            }
            if o.txid.is_none() || settled.contains(&o.index) {
                continue;
            }
            match refresh(&s, o, true).await {
                Ok((o, Some(c))) if c >= SETTLED_DEPTH => {
                    settled.insert(o.index);
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::debug!("re-checking offers: {e}");
                    break;
                }
            }
        }
    }
}

/// One offer as the board shows it.
fn entry(o: &Offer, confirmations: Option<u64>) -> Value {
    json!({
        "index": o.index,
        "ask_address": o.ask_address,
        "bid_address": o.bid_address,
        "offer": {"asset": o.offer.asset, "qty": o.offer.qty},
        "ask": {"asset": o.ask.asset, "qty": o.ask.qty},
        "price": price(&o.offer.qty, &o.ask.qty),
        "status": o.status.as_str(),
        "txid": o.txid,
        "confirmations": confirmations,
        "blob": o.blob,
        "listed_at": o.listed_at,
    })
}

/// The offer with its status brought up to date (the node's answer, if it has one).
async fn current(s: &Service, o: Offer) -> (Offer, Option<u64>) {
    let fallback = o.clone();
    refresh(s, o, false).await.unwrap_or((fallback, None))
}

#[derive(Deserialize)]
struct ListFilter {
    status: Option<String>,
    ask_address: Option<String>,
    bid_address: Option<String>,
}

/// `GET /api/admin/exchange_list?status=open|pending|done|all&ask_address=..&bid_address=..`.
pub async fn exchange_list(State(s): State<Shared>, uri: Uri) -> ApiResult {
    let f: ListFilter = query(&uri)?;
    let wanted = match f.status.as_deref().unwrap_or("all") {
        "all" | "" => None,
        "open" => Some(OfferStatus::Open),
        "pending" => Some(OfferStatus::Pending),
        "done" => Some(OfferStatus::Done),
        "cancelled" => Some(OfferStatus::Cancelled),
        other => {
            return Err(ApiError::invalid(format!(
                "unknown status {other:?}: expected open, pending, done, cancelled or all"
            )));
        }
    };
    let same = |want: &Option<String>, have: Option<&str>| {
        want.as_deref()
            .is_none_or(|w| w.is_empty() || have == Some(w))
    };
    let mut out = Vec::new();
    for o in s.db.offers()? {
        if !same(&f.ask_address, Some(&o.ask_address)) {
            continue;
        }
        let (o, conf) = current(&s, o).await;
        if wanted.is_none_or(|w| o.status == w) && same(&f.bid_address, o.bid_address.as_deref()) {
            out.push(entry(&o, conf));
        }
    }
    Ok(Json(Value::Array(out)))
}

/// `GET /api/admin/exchange/{index}`: one offer, with its blob.
pub async fn exchange_entry(State(s): State<Shared>, Path(index): Path<String>) -> ApiResult {
    let index: u64 = index
        .parse()
        .map_err(|_| ApiError::invalid(format!("{index:?} is not an offer index")))?;
    let (o, conf) = current(&s, find_offer(&s, index)?).await;
    Ok(Json(entry(&o, conf)))
}

#[cfg(test)]
mod tests {
    use super::*;

    const P: &str = "1Producer";
    const C: &str = "1Consumer";
    const COIN: &str = "aa00000000000000000000000000000000000000000000000000000000000000";

    fn decoded() -> Value {
        json!({
            "offer": {"amount": 0, "assets": [{"name": "energy", "qty": 1}]},
            "ask": {"amount": 0, "assets": [{"name": "ecoin", "qty": 1000}]},
            "complete": false,
            "exchanges": [{
                "offer": {"amount": 0, "assets": [{"name": "energy", "qty": 1}], "address": P, "txid": COIN, "vout": 0},
                "ask": {"amount": 0, "assets": [{"name": "ecoin", "qty": 1000}], "address": P},
            }],
        })
    }

    fn code(r: Result<Listing, ApiError>) -> String {
        r.err().map(|e| e.message).unwrap_or_default()
    }

    #[test]
    fn rule_1_lists_one_asset_for_another_owned_by_ask_address() {
        let l = check_offer(&decoded(), P).unwrap();
        assert_eq!(
            (l.offer.asset.as_str(), l.ask.asset.as_str()),
            ("energy", "ecoin")
        );
        assert_eq!(
            (l.coin_txid.as_str(), l.coin_vout, l.pay_address.as_str()),
            (COIN, 0, P)
        );
        let mut d = decoded();
        d["complete"] = json!(true);
        assert!(code(check_offer(&d, P)).contains("complete"));
        let mut d = decoded();
        let pair = d["exchanges"][0].clone();
        d["exchanges"] = json!([pair.clone(), pair]);
        assert!(code(check_offer(&d, P)).contains("exactly one input"));
        let mut d = decoded();
        d["exchanges"][0]["ask"]["assets"][0]["name"] = json!("energy");
        assert!(code(check_offer(&d, P)).contains("same asset"));
        let mut d = decoded();
        d["exchanges"][0]["ask"]["assets"] = json!([]);
        assert!(code(check_offer(&d, P)).contains("exactly one asset"));
        assert!(code(check_offer(&decoded(), C)).contains("belongs to"));
        let mut d = decoded();
        d["exchanges"][0]["ask"]["address"] = json!(C);
        assert!(code(check_offer(&d, P)).contains("pays"));
    }

    fn offer() -> Offer {
        let l = check_offer(&decoded(), P).unwrap();
        Offer {
            index: 7,
            ask_address: P.into(),
            blob: "00".into(),
            offer: l.offer,
            ask: l.ask,
            coin_txid: COIN.into(),
            coin_vout: 0,
            pay_address: P.into(),
            status: OfferStatus::Open,
            bid_address: None,
            txid: None,
            listed_at: 0,
        }
    }

    fn completion() -> Value {
        json!({
            "txid": "bb",
            "vin": [{"txid": COIN, "vout": 0}, {"txid": "cc", "vout": 3}],
            "vout": [
                {"address": P, "assets": [{"name": "ecoin", "qty": 1000}]},
                {"address": C, "assets": [{"name": "energy", "qty": 1}]},
            ],
        })
    }

    #[test]
    fn rule_2_accepts_only_the_offer_completed_for_the_bidder() {
        let o = offer();
        assert!(check_completion(&o, C, &completion()).is_ok());
        let mut tx = completion();
        tx["vin"][0]["vout"] = json!(1);
        assert!(
            check_completion(&o, C, &tx)
                .unwrap_err()
                .message
                .contains("does not spend")
        );
        let mut tx = completion();
        tx["vout"][0]["assets"][0]["qty"] = json!(999);
        assert!(
            check_completion(&o, C, &tx)
                .unwrap_err()
                .message
                .contains("asked")
        );
        let mut tx = completion();
        tx["vout"][0]["address"] = json!(C);
        assert!(check_completion(&o, C, &tx).is_err());
        let e = check_completion(&o, "1Someone", &completion()).unwrap_err();
        assert!(e.message.contains("bid_address"), "{e}");
        assert_eq!(e.code, "invalid_bid");
    }
}
