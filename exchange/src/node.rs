//! The service's own node, over JSON-RPC: the blocking [`RpcClient`] run on tokio's blocking
//! pool, plus the few composite reads every role needs (its address, balances, confirmations,
//! waiting for a transaction to be mined).

use crate::error::ApiError;
use crate::qty::{Qty, units_of};
use serde_json::{Value, json};
use std::sync::OnceLock;
use std::time::{Duration, Instant};
use wattle_node::rpc::client::{CallError, RpcClient};

/// How long the service waits for one of its own transactions to be mined. Blocks follow a
/// waiting transaction within `block-interval` (100 ms by default), so this is generous.
pub const CONFIRM_TIMEOUT: Duration = Duration::from_secs(30);

/// How often a wait polls the node.
const POLL: Duration = Duration::from_millis(100);

/// A handle on the node: cheap to clone (the address is cached once known).
#[derive(Clone)]
pub struct Node {
    rpc: RpcClient,
    address: std::sync::Arc<OnceLock<String>>,
}

impl Node {
    pub fn new(rpc: RpcClient) -> Node {
        Node {
            rpc,
            address: Default::default(),
        }
    }

    /// The chain's name.
    pub fn chain(&self) -> &str {
        &self.rpc.chain
    }

    /// One RPC call, with the node's error as it came.
    /// decoderawexchange (verbose), waiting up to `wait` while the node answers "Missing inputs"
    /// (the offered coin's block may still be on its way); the last error otherwise.
    pub async fn decode_exchange(&self, blob: &str, wait: Duration) -> Result<Value, CallError> {
        let deadline = Instant::now() + wait;
        loop {
            match self
                .try_call("decoderawexchange", json!([blob, true]))
                .await
            {
                Err(CallError::Rpc { message, .. })
                    if message.contains("Missing inputs") && Instant::now() < deadline =>
                {
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                other => return other,
            }
        }
    }

    pub async fn try_call(&self, method: &'static str, params: Value) -> Result<Value, CallError> {
        let rpc = self.rpc.clone();
        tokio::task::spawn_blocking(move || rpc.call(method, params))
            .await
            .unwrap_or_else(|e| Err(CallError::Transport(format!("RPC task failed: {e}"))))
    }

    /// One RPC call; a failure becomes an [`ApiError`] classified by its code.
    pub async fn call(&self, method: &'static str, params: Value) -> Result<Value, ApiError> {
        self.try_call(method, params)
            .await
            .map_err(|e| ApiError::node(method, e))
    }

    /// The node's first wallet address: its identity on the chain (paper §3.1,
    /// `listaddresses()[0]["address"]`).
    pub async fn address(&self) -> Result<String, ApiError> {
        if let Some(a) = self.address.get() {
            return Ok(a.clone());
        }
        let v = self.call("listaddresses", json!([])).await?;
        let a = v
            .get(0)
            .and_then(|e| e.get("address"))
            .and_then(Value::as_str)
            .ok_or_else(|| node_answer("listaddresses", &v))?
            .to_string();
        Ok(self.address.get_or_init(|| a).clone())
    }

    /// Current block height.
    pub async fn height(&self) -> Result<u64, ApiError> {
        let v = self.call("getblockcount", json!([])).await?;
        v.as_u64().ok_or_else(|| node_answer("getblockcount", &v))
    }

    /// Balances of `address` counting unconfirmed coins: `[{name, qty, locked}]`, where `qty` is
    /// what can be spent now and `locked` what sits in prepared (offered) coins.
    pub async fn balances(&self, address: &str) -> Result<Vec<Value>, ApiError> {
        let free = self
            .call("getaddressbalances", json!([address, 0, false]))
            .await?;
        let all = self
            .call("getaddressbalances", json!([address, 0, true]))
            .await?;
        let free = free.as_array().cloned().unwrap_or_default();
        let all = all.as_array().cloned().unwrap_or_default();
        let name_of = |e: &Value| e.get("name").and_then(Value::as_str).map(str::to_string);
        let mut out = Vec::new();
        for e in &all {
            let Some(name) = name_of(e) else { continue };
            let total = units_of(&e["qty"]);
            let spendable = free
                .iter()
                .find(|f| name_of(f).as_deref() == Some(name.as_str()))
                .map(|f| f["qty"].clone())
                .unwrap_or(json!(0));
            let locked = total.saturating_sub(units_of(&spendable));
            out.push(json!({
                "name": name,
                "qty": spendable,
                "locked": units_json(locked),
                "assetref": e.get("assetref").cloned().unwrap_or(Value::Null),
            }));
        }
        Ok(out)
    }

    /// The spendable quantity of `asset` at `address`, in 10^-8 units.
    pub async fn spendable(&self, address: &str, asset: &str) -> Result<u64, ApiError> {
        let v = self
            .call("getaddressbalances", json!([address, 0, false]))
            .await?;
        Ok(v.as_array()
            .into_iter()
            .flatten()
            .filter(|e| e.get("name").and_then(Value::as_str) == Some(asset))
            .map(|e| units_of(&e["qty"]))
            .sum())
    }

    /// Confirmations of `txid` on this node: `Some(0)` in the mempool, `None` if unknown.
    pub async fn confirmations(&self, txid: &str) -> Result<Option<u64>, ApiError> {
        match self.try_call("getrawtransaction", json!([txid, 1])).await {
            Ok(v) => Ok(Some(
                v.get("confirmations").and_then(Value::as_u64).unwrap_or(0),
            )),
            Err(CallError::Rpc { .. }) => Ok(None),
            Err(e) => Err(ApiError::node("getrawtransaction", e)),
        }
    }

    /// Waits until `txid` is in a block on this node.
    pub async fn wait_confirmed(&self, txid: &str, what: &str) -> Result<(), ApiError> {
        let deadline = Instant::now() + CONFIRM_TIMEOUT;
        loop {
            if self.confirmations(txid).await?.is_some_and(|c| c >= 1) {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(ApiError::timeout(format!(
                    "{what} ({txid}) was not confirmed within {} s",
                    CONFIRM_TIMEOUT.as_secs()
                )));
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Releases a prepared coin (best effort: the caller is already reporting another error).
    pub async fn unlock(&self, txid: &str, vout: u64) {
        let r = self
            .try_call("lockunspent", json!([true, [{"txid": txid, "vout": vout}]]))
            .await;
        if let Err(e) = r {
            tracing::warn!(%txid, vout, "could not unlock a prepared coin: {e}");
        }
    }
}

/// 10^-8 units as a JSON number in shortest form.
fn units_json(units: u64) -> Value {
    wattle_ledger::Amount::new(units)
        .ok()
        .map(|a| wattle_ledger::amount::format_quantity(a, 100_000_000))
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or(json!(0))
}

/// The node answered something we cannot read.
pub fn node_answer(method: &str, v: &Value) -> ApiError {
    ApiError::new(
        axum::http::StatusCode::BAD_GATEWAY,
        "node_error",
        format!("unexpected answer from the node to {method}: {v}"),
    )
}

/// `{"txid": .., "vout": ..}` of a prepared coin.
pub fn outpoint(v: &Value, method: &str) -> Result<(String, u64), ApiError> {
    match (
        v.get("txid").and_then(Value::as_str),
        v.get("vout").and_then(Value::as_u64),
    ) {
        (Some(t), Some(n)) => Ok((t.to_string(), n)),
        _ => Err(node_answer(method, v)),
    }
}

/// The text of a txid answer.
pub fn txid_of(v: &Value, method: &str) -> Result<String, ApiError> {
    v.as_str()
        .map(str::to_string)
        .ok_or_else(|| node_answer(method, v))
}

/// Shows 10^-8 units as a decimal (for messages).
pub fn show_units(units: u64) -> String {
    units_json(units).to_string()
}

/// Whether `q` is at most what `have` (10^-8 units) covers.
pub fn covers(have: u64, q: &Qty) -> bool {
    have >= q.units()
}
