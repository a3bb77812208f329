//! What producer and consumer services share (paper §3.3, §3.4): `reg_exchange_ip` registers the
//! exchange (the admin service) and connects this site through it, and the board and request
//! lists are read through this service, so a site's browser only talks to its own service.

use crate::api::{ApiResult, Service, Shared, de_text, parse};
use crate::error::ApiError;
use crate::remote::{self, BaseUrl};
use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{StatusCode, Uri};
use serde::Deserialize;
use serde_json::{Value, json};

/// The registered exchange, or 400 `no_exchange`.
pub fn exchange(s: &Service) -> Result<BaseUrl, ApiError> {
    let url = s.db.exchange_url()?.ok_or_else(|| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "no_exchange",
            format!(
                "no exchange is registered: POST /api/{}/reg_exchange_ip {{\"exchange\": \"http://HOST:PORT\"}} first",
                s.role
            ),
        )
    })?;
    BaseUrl::parse(&url).map_err(ApiError::storage)
}

#[derive(Deserialize)]
struct RegExchange {
    #[serde(deserialize_with = "de_text")]
    exchange: String,
}

/// `POST /api/{producer,consumer}/reg_exchange_ip {exchange}`: asks the admin service at
/// `exchange` to `connect_node` this site (its node's address, its role as the type) and, once
/// it agreed, stores the URL. The URL is stored only then, so a refused or unreachable exchange
/// leaves the previous registration in place.
pub async fn reg_exchange_ip(State(s): State<Shared>, body: Bytes) -> ApiResult {
    let req: RegExchange = parse(&body)?;
    let base = BaseUrl::parse(&req.exchange).map_err(ApiError::invalid)?;
    let address = s.node.address().await?;
    let connected = remote::call(
        &base,
        "/api/admin/connect_node",
        Some(json!({"address": address, "type": s.role.as_str()})),
    )
    .await?;
    s.db.set_exchange_url(&base.text()).await?;
    tracing::info!(exchange = %base.text(), "registered the exchange and connected through it");
    Ok(Json(json!({
        "exchange": base.text(),
        "address": address,
        "type": s.role.as_str(),
        "txids": connected.get("txids").cloned().unwrap_or(Value::Null),
    })))
}

/// `GET /api/exchange_list?..`: the exchange's list, same query.
pub async fn exchange_list(State(s): State<Shared>, uri: Uri) -> ApiResult {
    let base = exchange(&s)?;
    let q = uri.query().map(|q| format!("?{q}")).unwrap_or_default();
    let path = format!("/api/admin/exchange_list{q}");
    Ok(Json(remote::call(&base, &path, None).await?))
}

#[derive(Deserialize)]
struct RequestFilter {
    status: Option<String>,
}

/// `GET /api/ecoin_requests?status=..`: this site's ecoin requests at the exchange.
pub async fn ecoin_requests(State(s): State<Shared>, uri: Uri) -> ApiResult {
    let f: RequestFilter = crate::api::query(&uri)?;
    let base = exchange(&s)?;
    let address = s.node.address().await?;
    let mut path = format!("/api/admin/ecoin_requests?address={}", encode(&address));
    if let Some(st) = f.status {
        path.push_str(&format!("&status={}", encode(&st)));
    }
    Ok(Json(remote::call(&base, &path, None).await?))
}

/// Percent-encodes a query value.
fn encode(v: &str) -> String {
    v.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}
