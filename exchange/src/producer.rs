//! The producer's endpoints (paper §3.3): `issue_energy` meters generation onto the chain and
//! `propose_exchange` offers energy for ecoin on the exchange's board.

use crate::api::{ApiResult, Shared, parse};
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
use wattle_node::rpc::client::CallError;

/// The energy asset's name.
pub const ENERGY: &str = "energy";
/// The money asset's name.
pub const ECOIN: &str = "ecoin";
/// What one `issue_energy` without `qty` issues: 1 kWh (the paper's `UNIT_OF_ENERGY_ISSUE`).
pub const ENERGY_UNIT: &str = "1";

#[derive(Deserialize)]
struct IssueEnergy {
    qty: Option<Qty>,
}

/// `POST /api/producer/issue_energy {}` or `{qty}` → `{txid, qty}`: issuemore energy to this
/// site's address.
pub async fn issue_energy(State(s): State<Shared>, body: Bytes) -> ApiResult {
    let req: IssueEnergy = parse(&body)?;
    let qty = match req.qty {
        Some(q) => q,
        None => Qty::parse(ENERGY_UNIT).map_err(ApiError::invalid)?,
    };
    let me = s.node.address().await?;
    let fields = json!({"origin": "KW", "stage": "n", "approval": "KEP"});
    let v = s
        .node
        .try_call("issuemore", json!([me, ENERGY, qty.json(), 0, fields]))
        .await
        .map_err(|e| match e {
            CallError::Rpc {
                code: -704,
                message,
            } => ApiError::new(
                StatusCode::FORBIDDEN,
                "not_permitted",
                format!(
                    "this producer may not issue energy (yet): {message}; it needs energy.issue \
                     from the admin (POST /api/producer/reg_exchange_ip) and a synced node"
                ),
            ),
            e => ApiError::node("issuemore", e),
        })?;
    let txid = txid_of(&v, "issuemore")?;
    tracing::info!(%txid, qty = %qty, "energy issued");
    Ok(Json(json!({"txid": txid, "qty": qty})))
}

#[derive(Deserialize)]
struct Propose {
    qty_energy: Qty,
    qty_ecoin: Qty,
}

/// `POST /api/producer/propose_exchange {qty_energy, qty_ecoin}` → `{index, coin}`.
///
/// preparelockunspent the energy, wait until that coin is mined (other nodes decode the offer
/// against their chain), createrawexchange asking for the ecoin, register_ask at the exchange.
/// If any step after the lock fails, the coin is unlocked again.
pub async fn propose_exchange(State(s): State<Shared>, body: Bytes) -> ApiResult {
    let req: Propose = parse(&body)?;
    let exchange = site::exchange(&s)?;
    let me = s.node.address().await?;
    let _trading = s.writes.lock().await;
    let have = s.node.spendable(&me, ENERGY).await?;
    if have < req.qty_energy.units() {
        return Err(ApiError::insufficient(format!(
            "not enough energy: this site has {} kWh to offer, the offer needs {}",
            show_units(have),
            req.qty_energy
        )));
    }
    let prep = s
        .node
        .call(
            "preparelockunspentfrom",
            json!([me, {ENERGY: req.qty_energy.json()}]),
        )
        .await?;
    let (txid, vout) = outpoint(&prep, "preparelockunspentfrom")?;
    match offer_coin(&s, &exchange, &me, &txid, vout, &req).await {
        Ok(index) => {
            tracing::info!(%index, "offered {} kWh for {} ecoin", req.qty_energy, req.qty_ecoin);
            Ok(Json(
                json!({"index": index, "coin": {"txid": txid, "vout": vout}}),
            ))
        }
        Err(e) => {
            s.node.unlock(&txid, vout).await;
            Err(e)
        }
    }
}

/// The steps after the lock: returns the exchange's index for the offer.
async fn offer_coin(
    s: &crate::api::Service,
    exchange: &remote::BaseUrl,
    me: &str,
    txid: &str,
    vout: u64,
    req: &Propose,
) -> Result<Value, ApiError> {
    s.node.wait_confirmed(txid, "the offered coin").await?;
    // The node drops the lock of a prepared coin that was still unconfirmed when an earlier
    // block was committed (`Wallet::forget_spent`): lock it again now that it is mined.
    s.node
        .call(
            "lockunspent",
            json!([false, [{"txid": txid, "vout": vout}]]),
        )
        .await?;
    let blob = s
        .node
        .call(
            "createrawexchange",
            json!([txid, vout, {ECOIN: req.qty_ecoin.json()}]),
        )
        .await?;
    let blob = txid_of(&blob, "createrawexchange")?;
    let listed = remote::call(
        exchange,
        "/api/admin/register_ask",
        Some(json!({"ask_address": me, "blob": blob})),
    )
    .await?;
    listed.get("index").cloned().ok_or_else(|| {
        ApiError::new(
            StatusCode::BAD_GATEWAY,
            "exchange_error",
            format!("the exchange answered register_ask with {listed}"),
        )
    })
}
