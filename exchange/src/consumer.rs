//! The consumer's endpoints (paper §3.4): `request_ecoin_issue` asks the exchange for ecoin and
//! `accept_exchange` completes an offer from the board and reports it to the exchange.

use crate::api::{ApiResult, Service, Shared, de_index, parse};
use crate::db::Side;
use crate::error::ApiError;
use crate::node::{outpoint, show_units, txid_of};
use crate::qty::Qty;
use crate::{remote, site};
use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};
use std::time::Duration;
use wattle_node::rpc::client::CallError;

#[derive(Deserialize)]
struct RequestEcoin {
    qty: Qty,
}

/// `POST /api/consumer/request_ecoin_issue {qty}` → `{index}`: the exchange's
/// `schedule_ecoin_issue` with this site's address.
pub async fn request_ecoin_issue(State(s): State<Shared>, body: Bytes) -> ApiResult {
    let req: RequestEcoin = parse(&body)?;
    let exchange = site::exchange(&s)?;
    let me = s.node.address().await?;
    let v = remote::call(
        &exchange,
        "/api/admin/schedule_ecoin_issue",
        Some(json!({"address": me, "qty": req.qty})),
    )
    .await?;
    Ok(Json(
        json!({"index": v.get("index").cloned().unwrap_or(Value::Null)}),
    ))
}

#[derive(Deserialize)]
struct Accept {
    #[serde(deserialize_with = "de_index")]
    index: u64,
}

/// The one asset of a side of the decoded blob.
fn side_of(pair: &Value, key: &str) -> Result<Side, ApiError> {
    let assets = pair[key]["assets"].as_array().cloned().unwrap_or_default();
    match assets.as_slice() {
        [a] => Ok(Side {
            asset: a["name"].as_str().unwrap_or("").to_string(),
            qty: Qty::from_value(&a["qty"]).map_err(|e| bad_listing(&e))?,
        }),
        _ => Err(bad_listing("the offer is not one asset for another")),
    }
}

fn bad_listing(why: &str) -> ApiError {
    ApiError::new(
        StatusCode::BAD_GATEWAY,
        "exchange_error",
        format!("the exchange listed an offer this node cannot use: {why}"),
    )
}

/// decoderawexchange (verbose) on this site's node, waiting a little for the offered coin's
/// block to arrive; a spent coin means someone else took the offer.
async fn decode(s: &Service, index: u64, blob: &str) -> Result<Value, ApiError> {
    match s.node.decode_exchange(blob, Duration::from_secs(10)).await {
        Ok(v) => Ok(v),
        Err(CallError::Rpc { message, .. })
            if message.contains("spent") || message.contains("Conflicts") =>
        {
            Err(ApiError::conflict(
                "already_taken",
                format!("offer {index} is no longer available: {message}"),
            ))
        }
        Err(e) => Err(ApiError::node("decoderawexchange", e)),
    }
}

/// `POST /api/consumer/accept_exchange {index}` → `{index, txid, status}`.
///
/// Reads the offer from the exchange, checks it is open and what it gives and asks, checks this
/// site holds the asked ecoin, preparelockunspent it, appendrawexchange, sendrawtransaction,
/// then register_bid at the exchange. Until the transaction is sent, any failure unlocks the
/// prepared coin and nothing has changed hands.
pub async fn accept_exchange(State(s): State<Shared>, body: Bytes) -> ApiResult {
    let req: Accept = parse(&body)?;
    let exchange = site::exchange(&s)?;
    let me = s.node.address().await?;
    let _trading = s.writes.lock().await;
    let listed = remote::call(
        &exchange,
        &format!("/api/admin/exchange/{}", req.index),
        None,
    )
    .await?;
    if listed["status"].as_str() == Some("cancelled") {
        return Err(ApiError::conflict(
            "cancelled",
            format!(
                "offer {} was cancelled: its coin was spent by another transaction",
                req.index
            ),
        ));
    }
    if listed["status"].as_str() != Some("open") {
        return Err(ApiError::conflict(
            "already_taken",
            format!(
                "offer {} is not open (status {}, transaction {})",
                req.index, listed["status"], listed["txid"]
            ),
        ));
    }
    let blob = listed["blob"]
        .as_str()
        .ok_or_else(|| bad_listing("no blob"))?
        .to_string();
    let decoded = decode(&s, req.index, &blob).await?;
    let pair = decoded["exchanges"].get(0).cloned().unwrap_or(Value::Null);
    let (gets, pays) = (side_of(&pair, "offer")?, side_of(&pair, "ask")?);
    let listed_as = |k: &str, side: &Side| {
        listed[k]["asset"].as_str() == Some(side.asset.as_str())
            && Qty::from_value(&listed[k]["qty"]).is_ok_and(|q| q.units() == side.qty.units())
    };
    if !listed_as("offer", &gets) || !listed_as("ask", &pays) {
        return Err(bad_listing("the listing does not match the offer's blob"));
    }
    let have = s.node.spendable(&me, &pays.asset).await?;
    if have < pays.qty.units() {
        return Err(ApiError::insufficient(format!(
            "not enough {}: this site has {}, offer {} asks {}",
            pays.asset,
            show_units(have),
            req.index,
            pays.qty
        )));
    }
    let prep = s
        .node
        .call(
            "preparelockunspentfrom",
            json!([me, {pays.asset.clone(): pays.qty.json()}]),
        )
        .await?;
    let (coin, vout) = outpoint(&prep, "preparelockunspentfrom")?;
    let txid = match complete_and_send(&s, &blob, &coin, vout, &gets).await {
        Ok(t) => t,
        Err(e) => {
            s.node.unlock(&coin, vout).await;
            return Err(e);
        }
    };
    tracing::info!(index = req.index, %txid, "offer accepted, exchange sent");
    let bid = json!({"index": req.index, "bid_address": me, "txid": txid});
    let registered = register_bid(&exchange, bid).await.map_err(|e| {
        ApiError::new(
            e.status,
            &e.code,
            format!(
                "the exchange transaction {txid} was sent, but the exchange did not register it: {}",
                e.message
            ),
        )
    })?;
    Ok(Json(json!({
        "index": req.index,
        "txid": txid,
        "status": registered.get("status").cloned().unwrap_or(Value::Null),
    })))
}

/// appendrawexchange with the prepared coin, then sendrawtransaction; returns the txid.
async fn complete_and_send(
    s: &Service,
    blob: &str,
    coin: &str,
    vout: u64,
    gets: &Side,
) -> Result<String, ApiError> {
    let app = s
        .node
        .call(
            "appendrawexchange",
            json!([blob, coin, vout, {gets.asset.clone(): gets.qty.json()}]),
        )
        .await?;
    if app["complete"].as_bool() != Some(true) {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_exchange",
            "the exchange would not be complete with this coin (the node says so)",
        ));
    }
    let hex = app["hex"].clone();
    let sent = s.node.call("sendrawtransaction", json!([hex])).await?;
    txid_of(&sent, "sendrawtransaction")
}

/// register_bid at the exchange; retried a few times if the exchange cannot be reached.
async fn register_bid(exchange: &remote::BaseUrl, bid: Value) -> Result<Value, ApiError> {
    let mut attempt = 0;
    loop {
        attempt += 1;
        match remote::call(exchange, "/api/admin/register_bid", Some(bid.clone())).await {
            Err(e) if e.code == "exchange_unreachable" && attempt < 3 => {
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            other => return other,
        }
    }
}
