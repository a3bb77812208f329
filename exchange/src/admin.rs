//! The admin's site endpoints (paper §3.2): `connect_node` grants a site onto the chain, and the
//! ecoin purchase queue — `schedule_ecoin_issue` records a request, `issue_ecoin` approves it
//! (issuemore ecoin to the requester, at most once per request). The offer board is in
//! [`crate::offers`].

use crate::api::{ApiResult, Service, Shared, de_index, de_text, now_secs, parse, query};
use crate::db::{EcoinRequest, RequestStatus};
use crate::error::ApiError;
use crate::node::txid_of;
use crate::qty::Qty;
use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{StatusCode, Uri};
use serde::Deserialize;
use serde_json::{Value, json};
use wattle_node::rpc::client::CallError;

/// Custom fields of an issue, as (key, value) pairs.
type Fields = [(&'static str, &'static str); 3];

/// The paper's assets (§2): name, smallest unit, custom fields of the first issue.
const PAPER_ASSETS: [(&str, &str, Fields); 2] = [
    (
        "energy",
        "0.001",
        [
            ("origin", "KW"),
            ("stage", "0"),
            ("purpose", "periodic generation"),
        ],
    ),
    (
        "ecoin",
        "1",
        [("origin", "KRW"), ("stage", "0"), ("purpose", "ecoin sale")],
    ),
];

/// The custom fields of an approved ecoin issue (as in the paper's replay).
fn ecoin_fields() -> Value {
    json!({"origin": "KRW", "stage": "n", "approval": "KEP"})
}

/// Issues the paper's assets the first time they are needed, if the chain lacks them, and
/// waits until they are mined (a grant of `energy.issue` needs the asset).
pub async fn ensure_assets(s: &Service) -> Result<(), ApiError> {
    let mut ready = s.assets_ready.lock().await;
    if *ready {
        return Ok(());
    }
    let me = s.node.address().await?;
    let mut issued = Vec::new();
    for (name, unit, fields) in PAPER_ASSETS {
        match s.node.try_call("listassets", json!([name])).await {
            Ok(_) => continue,
            Err(CallError::Rpc { code: -708, .. }) => {}
            Err(e) => return Err(ApiError::node("listassets", e)),
        }
        let unit: Value = serde_json::from_str(unit).unwrap_or(json!(1));
        let fields: serde_json::Map<String, Value> = fields
            .iter()
            .map(|(k, v)| (k.to_string(), json!(v)))
            .collect();
        let v = s
            .node
            .call(
                "issuefrom",
                json!([me, me, {"name": name, "open": true}, 0, unit, 0, fields]),
            )
            .await?;
        let txid = txid_of(&v, "issuefrom")?;
        tracing::info!(asset = name, %txid, "issued the paper's asset");
        issued.push(txid);
    }
    for txid in issued {
        s.node
            .wait_confirmed(&txid, "the issue of the paper's assets")
            .await?;
    }
    *ready = true;
    Ok(())
}

/// 400 `invalid_address` unless the node accepts `address` as an address of this chain.
pub async fn check_address(s: &Service, address: &str) -> Result<(), ApiError> {
    match s
        .node
        .try_call("getaddressbalances", json!([address, 0]))
        .await
    {
        Ok(_) => Ok(()),
        Err(CallError::Rpc { code: -5, .. }) => Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_address",
            format!("{address:?} is not a valid address on this chain"),
        )),
        Err(e) => Err(ApiError::node("getaddressbalances", e)),
    }
}

#[derive(Deserialize)]
struct ConnectNode {
    #[serde(deserialize_with = "de_text")]
    address: String,
    #[serde(rename = "type", deserialize_with = "de_text")]
    kind: String,
}

/// `POST /api/admin/connect_node {address, type}`: grants connect,send,receive (and
/// `energy.issue` to a producer) and answers once the grants are mined.
pub async fn connect_node(State(s): State<Shared>, body: Bytes) -> ApiResult {
    let req: ConnectNode = parse(&body)?;
    let producer = match req.kind.as_str() {
        "producer" => true,
        "consumer" => false,
        other => {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "unknown_type",
                format!("unknown node type {other:?}: expected \"producer\" or \"consumer\""),
            ));
        }
    };
    check_address(&s, &req.address).await?;
    ensure_assets(&s).await?;
    let mut grants = vec!["connect,send,receive"];
    if producer {
        grants.push("energy.issue");
    }
    let mut txids = Vec::new();
    for permissions in grants {
        let v = s
            .node
            .call("grant", json!([req.address, permissions]))
            .await?;
        txids.push(txid_of(&v, "grant")?);
    }
    for txid in &txids {
        s.node.wait_confirmed(txid, "the grant").await?;
    }
    tracing::info!(address = %req.address, kind = %req.kind, "connected a site");
    Ok(Json(
        json!({"address": req.address, "type": req.kind, "txids": txids}),
    ))
}

/// The multiple (1 / smallest unit) of `asset`.
async fn multiple_of(s: &Service, asset: &'static str) -> Result<u32, ApiError> {
    let v = s.node.call("listassets", json!([asset])).await?;
    v.get(0)
        .and_then(|a| a.get("multiple"))
        .and_then(Value::as_u64)
        .and_then(|m| u32::try_from(m).ok())
        .ok_or_else(|| crate::node::node_answer("listassets", &v))
}

#[derive(Deserialize)]
struct Schedule {
    #[serde(deserialize_with = "de_text")]
    address: String,
    qty: Qty,
}

/// `POST /api/admin/schedule_ecoin_issue {address, qty}` → `{index}`.
pub async fn schedule_ecoin_issue(State(s): State<Shared>, body: Bytes) -> ApiResult {
    let req: Schedule = parse(&body)?;
    check_address(&s, &req.address).await?;
    ensure_assets(&s).await?;
    if !req.qty.fits_multiple(multiple_of(&s, "ecoin").await?) {
        return Err(ApiError::invalid(format!(
            "qty {} is not a whole number of ecoin units",
            req.qty
        )));
    }
    let at = now_secs();
    let index =
        s.db.add_request(|index| EcoinRequest {
            index,
            address: req.address.clone(),
            qty: req.qty.clone(),
            status: RequestStatus::Pending,
            txid: None,
            requested_at: at,
        })
        .await?;
    tracing::info!(index, address = %req.address, qty = %req.qty, "ecoin request scheduled");
    Ok(Json(json!({"index": index})))
}

#[derive(Deserialize)]
struct IssueEcoin {
    #[serde(deserialize_with = "de_index")]
    index: u64,
}

/// `POST /api/admin/issue_ecoin {index}` → `{index, txid}`: issuemore ecoin to the requester.
pub async fn issue_ecoin(State(s): State<Shared>, body: Bytes) -> ApiResult {
    let req: IssueEcoin = parse(&body)?;
    ensure_assets(&s).await?;
    // Held from the check to the record's update: a request is issued at most once.
    let _writing = s.writes.lock().await;
    let mut r = s
        .db
        .request(req.index)?
        .ok_or_else(|| ApiError::not_found(format!("there is no ecoin request {}", req.index)))?;
    if r.status == RequestStatus::Issued {
        return Err(ApiError::conflict(
            "already_issued",
            format!(
                "ecoin request {} was already issued (transaction {})",
                r.index,
                r.txid.as_deref().unwrap_or("?")
            ),
        ));
    }
    // Marked issued before the node is asked: should the service die half-way, the request
    // shows as issued without a txid (to be checked on chain), never as pending again.
    r.status = RequestStatus::Issued;
    s.db.put_request(&r).await?;
    let issued = s
        .node
        .call(
            "issuemore",
            json!([r.address, "ecoin", r.qty.json(), 0, ecoin_fields()]),
        )
        .await
        .and_then(|v| txid_of(&v, "issuemore"));
    let txid = match issued {
        Ok(t) => t,
        Err(e) => {
            r.status = RequestStatus::Pending;
            s.db.put_request(&r).await?;
            return Err(e);
        }
    };
    r.txid = Some(txid.clone());
    s.db.put_request(&r).await.map_err(|e| {
        ApiError::storage(format!(
            "request {} was issued in {txid} but its txid was not recorded: {}",
            r.index, e.message
        ))
    })?;
    tracing::info!(index = r.index, %txid, "ecoin issued");
    Ok(Json(json!({"index": r.index, "txid": txid})))
}

#[derive(Deserialize)]
struct RequestFilter {
    status: Option<String>,
    address: Option<String>,
}

/// `GET /api/admin/ecoin_requests?status=pending|issued|all&address=..`.
pub async fn ecoin_requests(State(s): State<Shared>, uri: Uri) -> ApiResult {
    let f: RequestFilter = query(&uri)?;
    let wanted = match f.status.as_deref().unwrap_or("all") {
        "all" | "" => None,
        "pending" => Some(RequestStatus::Pending),
        "issued" => Some(RequestStatus::Issued),
        other => {
            return Err(ApiError::invalid(format!(
                "unknown status {other:?}: expected pending, issued or all"
            )));
        }
    };
    let list: Vec<EcoinRequest> =
        s.db.requests()?
            .into_iter()
            .filter(|r| wanted.is_none_or(|w| r.status == w))
            .filter(|r| {
                f.address
                    .as_deref()
                    .is_none_or(|a| a.is_empty() || r.address == a)
            })
            .collect();
    Ok(Json(serde_json::to_value(list).unwrap_or(json!([]))))
}
