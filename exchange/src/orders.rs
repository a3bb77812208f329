//! The on-chain order book of energy for ecoin (issue 8): every site reads the book's depth,
//! the recent trades and orders from its own node (the book is ledger state, the same on every
//! node); a producer posts sell orders, a consumer buy orders, and each cancels its own.
//!
//! Orders are matched by the chain itself, inside block application (price-time priority, each
//! fill at the resting order's price, partial fills, the remainder rests): the service only
//! checks the request, places it with the node's `placeorder`, waits until it is mined and
//! answers with the order as the chain left it (already partly or wholly filled, or resting).
//!
//! Quantities are energy in kWh (display units) and prices ecoin per kWh; both are passed to the
//! node as the client wrote them. An order must come to a whole number of ecoin: `qty × price`
//! is what the ledger's lots are made of (a price `num/den` in raw units trades `den` units of
//! energy for `num` of ecoin, and `qty × price` is whole ecoin exactly when `qty` is a whole
//! number of such lots), so nothing is ever rounded or silently refunded at placement.

use crate::Role;
use crate::api::{ApiResult, Service, Shared, de_text, parse, query};
use crate::error::ApiError;
use crate::node::{node_answer, show_units, txid_of};
use crate::producer::{ECOIN, ENERGY};
use crate::qty::Qty;
use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{StatusCode, Uri};
use serde::Deserialize;
use serde_json::{Map, Value, json};
use wattle_ledger::Amount;
use wattle_ledger::amount::format_quantity;
use wattle_node::rpc::client::CallError;

/// The market's base asset: what is sold and bought (kWh).
pub const BASE: &str = ENERGY;
/// The market's quote asset: what prices are in.
pub const QUOTE: &str = ECOIN;

/// 10^8: units of [`Qty::units`] per display unit.
const FINEST: u128 = 100_000_000;

/// Price levels per side shown unless `levels` says otherwise, and the most a request may ask.
pub const DEFAULT_LEVELS: u32 = 20;
pub const MAX_LEVELS: u32 = 100;
/// Trades listed unless `count` says otherwise, and the most a request may ask.
pub const DEFAULT_TRADES: u32 = 50;
pub const MAX_TRADES: u32 = 500;
/// Orders listed unless `count` says otherwise, and the most a request may ask.
pub const DEFAULT_ORDERS: u32 = 100;
pub const MAX_ORDERS: u32 = 1000;

/// Which side of the book an order is on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    /// Sells energy for ecoin (a producer's).
    Sell,
    /// Buys energy with ecoin (a consumer's).
    Buy,
}

impl Side {
    pub fn as_str(self) -> &'static str {
        match self {
            Side::Sell => "sell",
            Side::Buy => "buy",
        }
    }
}

// ------------------------------------------------------------------------------ pure parts

/// `qty × price` in units of 10^-8 (ecoin), when it is exact and fits; `None` otherwise.
pub fn total_units(qty: &Qty, price: &Qty) -> Option<u64> {
    let product = u128::from(qty.units()) * u128::from(price.units());
    if product % FINEST != 0 {
        return None;
    }
    u64::try_from(product / FINEST)
        .ok()
        .filter(|t| Amount::new(*t).is_ok())
}

/// Units of 10^-8 as decimal text ("0.5", "1000").
pub fn units_text(units: u64) -> String {
    Amount::new(units)
        .map(|a| format_quantity(a, FINEST as u32))
        .unwrap_or_else(|_| units.to_string())
}

/// The display unit of one raw unit of an asset with `multiple` (e.g. 1000 → "0.001").
fn smallest(multiple: u32) -> String {
    units_text((FINEST / u128::from(multiple.max(1))) as u64)
}

/// Checks an order of `qty` kWh at `price` ecoin per kWh against the assets' multiples (raw
/// units per display unit): `qty` a whole number of energy units and `qty × price` a whole
/// number of ecoin units. Returns the total, in units of 10^-8 ecoin.
pub fn check_order(
    qty: &Qty,
    price: &Qty,
    base_multiple: u32,
    quote_multiple: u32,
) -> Result<u64, ApiError> {
    if !qty.fits_multiple(base_multiple) {
        return Err(ApiError::invalid(format!(
            "qty {qty} kWh is not a whole number of {BASE} units (the smallest is {} kWh)",
            smallest(base_multiple)
        )));
    }
    let whole =
        |t: u64| Qty::parse(&units_text(t)).is_ok_and(|total| total.fits_multiple(quote_multiple));
    match total_units(qty, price) {
        Some(t) if whole(t) => Ok(t),
        Some(t) => Err(ApiError::invalid(format!(
            "{qty} kWh at {price} {QUOTE} per kWh comes to {} {QUOTE}, but {QUOTE} is traded in \
             whole units of {}: choose a quantity and price whose total (qty × price) is a whole \
             number of {QUOTE}",
            units_text(t),
            smallest(quote_multiple)
        ))),
        None => Err(ApiError::invalid(format!(
            "{qty} kWh at {price} {QUOTE} per kWh does not come to a whole number of {QUOTE} \
             (or is too large): choose a quantity and price whose total (qty × price) is a whole \
             number of {QUOTE}"
        ))),
    }
}

/// An order id (the txid that placed it): 64 hex digits, lower-cased.
pub fn order_id(text: &str) -> Result<String, ApiError> {
    let t = text.trim();
    if t.len() == 64 && t.bytes().all(|b| b.is_ascii_hexdigit()) {
        Ok(t.to_ascii_lowercase())
    } else {
        Err(ApiError::invalid(format!(
            "{text:?} is not an order id (the 64 hex digits of the transaction that placed it)"
        )))
    }
}

/// A number-or-string field of the node's answer, as it came (`null` if absent).
fn field(v: &Value, names: &[&str]) -> Value {
    names
        .iter()
        .find_map(|n| v.get(*n).filter(|x| !x.is_null()).cloned())
        .unwrap_or(Value::Null)
}

/// `a × b` of two decimal JSON quantities, exactly, as a JSON number (`null` if not exact).
fn product(a: &Value, b: &Value) -> Value {
    match (Qty::from_value(a), Qty::from_value(b)) {
        (Ok(a), Ok(b)) => total_units(&a, &b)
            .and_then(|t| serde_json::from_str(&units_text(t)).ok())
            .unwrap_or(Value::Null),
        _ => Value::Null,
    }
}

/// One price level of `getorderbook`: `{price, qty, value, orders}` (`qty` in kWh, `value` =
/// qty × price in ecoin).
pub fn level(v: &Value) -> Value {
    let price = field(v, &["price"]);
    let qty = field(v, &["quantity", "qty"]);
    let value = match field(v, &["value"]) {
        Value::Null => product(&qty, &price),
        given => given,
    };
    json!({"price": price, "qty": qty, "value": value, "orders": field(v, &["orders"])})
}

/// The node's `getorderbook` answer as the service's `{base, quote, asks, bids}` (best first).
pub fn book(v: &Value) -> Value {
    let side = |k: &str| -> Vec<Value> {
        v.get(k)
            .and_then(Value::as_array)
            .map(|l| l.iter().map(level).collect())
            .unwrap_or_default()
    };
    json!({"base": BASE, "quote": QUOTE, "asks": side("asks"), "bids": side("bids")})
}

/// One trade of `listtrades`: `{txid, height, time, side, price, qty, value, buyer, seller,
/// maker, taker}` — the node's fields, with `quantity` named `qty` like every quantity of this
/// API (`value` = qty × price, computed if the node did not give it).
pub fn trade(v: &Value) -> Value {
    let mut out = renamed(v);
    let value = product(&field(v, &["quantity", "qty"]), &field(v, &["price"]));
    if let Value::Object(m) = &mut out {
        m.entry("value").or_insert(value);
    }
    out
}

/// One order of `listorders` / `getorder`: the node's fields with `quantity` named `qty` (also
/// in its `trades`, if listed).
pub fn order(v: &Value) -> Value {
    let mut out = renamed(v);
    if let Some(Value::Array(trades)) = out.get_mut("trades") {
        for t in trades.iter_mut() {
            *t = trade(t);
        }
    }
    out
}

/// `quantity` → `qty` in an object (other fields as they came).
fn renamed(v: &Value) -> Value {
    match v {
        Value::Object(m) => {
            let mut out = Map::new();
            for (k, x) in m {
                let k = if k == "quantity" { "qty" } else { k.as_str() };
                out.insert(k.to_string(), x.clone());
            }
            Value::Object(out)
        }
        other => other.clone(),
    }
}

/// Newest first: by height (descending), the node's order otherwise kept reversed (the node
/// lists oldest first).
fn newest_first(mut list: Vec<Value>) -> Vec<Value> {
    list.reverse();
    list.sort_by_key(|t| std::cmp::Reverse(t.get("height").and_then(Value::as_u64)));
    list
}

/// The status filter of an order list.
fn order_status(s: Option<&str>) -> Result<&'static str, ApiError> {
    match s.unwrap_or("all") {
        "" | "all" => Ok("all"),
        "open" => Ok("open"),
        "filled" => Ok("filled"),
        "cancelled" => Ok("cancelled"),
        other => Err(ApiError::invalid(format!(
            "unknown status {other:?}: expected open, filled, cancelled or all"
        ))),
    }
}

/// A count parameter within `1..=max` (`default` when absent).
fn bounded(v: Option<u32>, name: &str, default: u32, max: u32) -> Result<u32, ApiError> {
    match v {
        None => Ok(default),
        Some(n) if (1..=max).contains(&n) => Ok(n),
        Some(n) => Err(ApiError::invalid(format!(
            "{name} must be between 1 and {max}, got {n}"
        ))),
    }
}

// ------------------------------------------------------------------------------ node calls

/// The multiple (raw units per display unit) of `asset`, cached (it never changes). 400
/// `no_market` while the chain does not have the asset yet.
async fn multiple(s: &Service, asset: &'static str) -> Result<u32, ApiError> {
    if let Some(m) = s.multiples.lock().ok().and_then(|m| m.get(asset).copied()) {
        return Ok(m);
    }
    let v = match s.node.try_call("listassets", json!([asset])).await {
        Ok(v) => v,
        // "Asset with this reference not found".
        Err(CallError::Rpc { code: -708, .. }) => Value::Null,
        Err(e) => return Err(ApiError::node("listassets", e)),
    };
    let m = v
        .get(0)
        .and_then(|a| a.get("multiple"))
        .and_then(Value::as_u64)
        .and_then(|m| u32::try_from(m).ok())
        .filter(|m| *m > 0)
        .ok_or_else(no_market)?;
    if let Ok(mut cache) = s.multiples.lock() {
        cache.insert(asset.to_string(), m);
    }
    Ok(m)
}

fn no_market() -> ApiError {
    ApiError::new(
        StatusCode::BAD_REQUEST,
        "no_market",
        format!(
            "there is no {BASE}/{QUOTE} market yet: the exchange issues both assets when it \
             connects the first site (POST /api/{{producer,consumer}}/reg_exchange_ip)"
        ),
    )
}

/// A read of the market: `null` while the node does not know one of its assets (error -708:
/// the exchange has not issued it yet, or its issue is not mined yet).
async fn read_market(s: &Service, method: &'static str, params: Value) -> Result<Value, ApiError> {
    match s.node.try_call(method, params).await {
        Ok(v) => Ok(v),
        Err(CallError::Rpc { code: -708, .. }) => Ok(Value::Null),
        Err(e) => Err(ApiError::node(method, e)),
    }
}

/// The list a read answered (none for `null`).
fn list_of<'v>(v: &'v Value, method: &str) -> Result<&'v [Value], ApiError> {
    match v {
        Value::Null => Ok(&[]),
        Value::Array(l) => Ok(l),
        other => Err(node_answer(method, other)),
    }
}

/// A refusal of `placeorder` / `cancelorder`, with the site's situation explained.
fn trade_error(s: &Service, method: &str, e: CallError) -> ApiError {
    match e {
        CallError::Rpc {
            code: -704,
            message,
        } => ApiError::new(
            StatusCode::FORBIDDEN,
            "not_permitted",
            format!(
                "this {} may not trade (yet): {message}; it needs send and receive, which the \
                 exchange grants when the site connects (POST /api/{}/reg_exchange_ip)",
                s.role, s.role
            ),
        ),
        e => ApiError::node(method, e),
    }
}

/// `listorders` of `owner` (or `*`) in this market with `status`: the newest `count`, newest
/// first, each as [`order`].
async fn list_orders(
    s: &Service,
    owner: &str,
    status: &str,
    count: u32,
) -> Result<Vec<Value>, ApiError> {
    let v = read_market(s, "listorders", json!([owner, BASE, QUOTE, status, count])).await?;
    let list = list_of(&v, "listorders")?;
    Ok(newest_first(list.iter().map(order).collect()))
}

/// One order by id (`getorder`, confirmed state), `None` if the chain does not have it.
async fn get_order(s: &Service, id: &str) -> Result<Option<Value>, ApiError> {
    match s.node.try_call("getorder", json!([id])).await {
        Ok(v) if v.is_object() => Ok(Some(order(&v))),
        Ok(v) => Err(node_answer("getorder", &v)),
        Err(CallError::Rpc { code: -708, .. }) => Ok(None),
        Err(e) => Err(ApiError::node("getorder", e)),
    }
}

// ------------------------------------------------------------------------------ endpoints

#[derive(Deserialize)]
struct BookQuery {
    levels: Option<u32>,
}

/// `GET /api/orderbook?levels=N` → `{base, quote, asks: [{price, qty, value, orders}], bids,
/// height}`, best price first on each side (asks lowest, bids highest); empty while the chain
/// has no market.
pub async fn orderbook(State(s): State<Shared>, uri: Uri) -> ApiResult {
    let q: BookQuery = query(&uri)?;
    let levels = bounded(q.levels, "levels", DEFAULT_LEVELS, MAX_LEVELS)?;
    let height = s.node.height().await?;
    let v = read_market(&s, "getorderbook", json!([BASE, QUOTE, levels])).await?;
    if !(v.is_null() || v.is_object()) {
        return Err(node_answer("getorderbook", &v));
    }
    let mut out = book(&v);
    out["height"] = json!(height);
    Ok(Json(out))
}

#[derive(Deserialize)]
struct TradesQuery {
    count: Option<u32>,
}

/// `GET /api/trades?count=N` → the market's latest trades, newest first: `[{txid, height, time,
/// side, price, qty, value, buyer, seller, maker, taker}]` (`side`: the incoming order's).
pub async fn trades(State(s): State<Shared>, uri: Uri) -> ApiResult {
    let q: TradesQuery = query(&uri)?;
    let count = bounded(q.count, "count", DEFAULT_TRADES, MAX_TRADES)?;
    let v = read_market(&s, "listtrades", json!([BASE, QUOTE, count])).await?;
    let list = list_of(&v, "listtrades")?;
    Ok(Json(Value::Array(newest_first(
        list.iter().map(trade).collect(),
    ))))
}

#[derive(Deserialize)]
struct OrdersQuery {
    status: Option<String>,
    count: Option<u32>,
    address: Option<String>,
}

/// `GET /api/orders?status=open|filled|cancelled|all&count=N` → this site's orders in the
/// market, newest first. The admin's lists every owner's (or `address`'s).
pub async fn orders(State(s): State<Shared>, uri: Uri) -> ApiResult {
    let q: OrdersQuery = query(&uri)?;
    let status = order_status(q.status.as_deref())?;
    let count = bounded(q.count, "count", DEFAULT_ORDERS, MAX_ORDERS)?;
    let owner = match (s.role, q.address.as_deref().map(str::trim)) {
        (Role::Admin, Some(a)) if !a.is_empty() => a.to_string(),
        (Role::Admin, _) => "*".to_string(),
        (_, Some(a)) if !a.is_empty() => {
            return Err(ApiError::invalid(
                "a site lists its own orders: `address` is for the exchange's service",
            ));
        }
        _ => s.node.address().await?,
    };
    let list = list_orders(&s, &owner, status, count).await?;
    Ok(Json(Value::Array(list)))
}

#[derive(Deserialize)]
struct Place {
    qty: Qty,
    price: Qty,
}

/// `POST /api/producer/sell_order {qty, price}` → `{order, txid}`.
pub async fn sell_order(State(s): State<Shared>, body: Bytes) -> ApiResult {
    place(&s, Side::Sell, &body).await
}

/// `POST /api/consumer/buy_order {qty, price}` → `{order, txid}`.
pub async fn buy_order(State(s): State<Shared>, body: Bytes) -> ApiResult {
    place(&s, Side::Buy, &body).await
}

/// Checks the order, places it, waits until it is mined (and matched) and answers with the
/// order as the chain left it.
async fn place(s: &Service, side: Side, body: &Bytes) -> ApiResult {
    let req: Place = parse(body)?;
    let (bm, qm) = (multiple(s, BASE).await?, multiple(s, QUOTE).await?);
    let total = check_order(&req.qty, &req.price, bm, qm)?;
    let me = s.node.address().await?;
    let txid = {
        let _trading = s.writes.lock().await;
        let (asset, need) = match side {
            Side::Sell => (BASE, req.qty.units()),
            Side::Buy => (QUOTE, total),
        };
        let have = s.node.spendable(&me, asset).await?;
        if have < need {
            return Err(ApiError::insufficient(match side {
                Side::Sell => format!(
                    "not enough {BASE}: this site has {} kWh to sell, the order is for {} kWh",
                    show_units(have),
                    req.qty
                ),
                Side::Buy => format!(
                    "not enough {QUOTE}: {} kWh at {} {QUOTE} per kWh costs {} {QUOTE}, this \
                     site has {}",
                    req.qty,
                    req.price,
                    units_text(total),
                    show_units(have)
                ),
            }));
        }
        let params = json!([
            me,
            side.as_str(),
            BASE,
            req.qty.json(),
            QUOTE,
            req.price.json()
        ]);
        let v = s
            .node
            .try_call("placeorder", params)
            .await
            .map_err(|e| trade_error(s, "placeorder", e))?;
        sent_txid(&v, "placeorder")?
    };
    tracing::info!(%txid, side = side.as_str(), qty = %req.qty, price = %req.price, "order placed");
    s.node.wait_confirmed(&txid, "the order").await?;
    let order = get_order(s, &txid).await?.unwrap_or(Value::Null);
    Ok(Json(json!({"order": order, "txid": txid})))
}

/// The txid of a `placeorder` / `cancelorder` answer (a string, or an object holding one).
fn sent_txid(v: &Value, method: &str) -> Result<String, ApiError> {
    match v.get("txid") {
        Some(t) => txid_of(t, method),
        None => txid_of(v, method),
    }
}

#[derive(Deserialize)]
struct Cancel {
    #[serde(deserialize_with = "de_text")]
    order: String,
}

/// `POST /api/{producer,consumer}/cancel_order {order}` → `{order, txid}`: cancels one of this
/// site's open orders; what is left of it comes back to the site once the cancel is mined.
pub async fn cancel_order(State(s): State<Shared>, body: Bytes) -> ApiResult {
    let req: Cancel = parse(&body)?;
    let id = order_id(&req.order)?;
    let me = s.node.address().await?;
    let txid = {
        let _trading = s.writes.lock().await;
        // The node checks all this too; asking first gives the clearer answer. An order the
        // chain does not have yet (placed moments ago) is left to the node's own check.
        if let Some(found) = get_order(&s, &id).await? {
            let owner = found.get("owner").and_then(Value::as_str).unwrap_or("");
            if owner != me {
                return Err(ApiError::new(
                    StatusCode::FORBIDDEN,
                    "not_permitted",
                    format!("order {id} belongs to {owner}, not to this site ({me})"),
                ));
            }
            let status = found.get("status").and_then(Value::as_str).unwrap_or("");
            if status != "open" {
                return Err(closed(&id, status));
            }
        }
        let v = s
            .node
            .try_call("cancelorder", json!([me, id]))
            .await
            .map_err(|e| match e {
                CallError::Rpc { code: -708, .. } => ApiError::not_found(format!(
                    "there is no order {id} (the id is the txid that placed the order)"
                )),
                CallError::Rpc {
                    code: -701,
                    message,
                } if message.contains("not open") => closed(&id, &message),
                e => trade_error(&s, "cancelorder", e),
            })?;
        sent_txid(&v, "cancelorder")?
    };
    tracing::info!(%txid, order = %id, "order cancelled");
    s.node.wait_confirmed(&txid, "the cancellation").await?;
    let order = get_order(&s, &id).await?.unwrap_or(Value::Null);
    Ok(Json(json!({"order": order, "txid": txid})))
}

/// 409 `order_closed`.
fn closed(id: &str, status: &str) -> ApiError {
    ApiError::conflict(
        "order_closed",
        format!("order {id} is {status}: only an open order can be cancelled"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(t: &str) -> Qty {
        Qty::parse(t).unwrap()
    }

    #[test]
    fn totals_are_exact_products() {
        assert_eq!(total_units(&q("3"), &q("100")), Some(300 * 100_000_000));
        assert_eq!(total_units(&q("0.4"), &q("250")), Some(100 * 100_000_000));
        assert_eq!(total_units(&q("1.5"), &q("3")), Some(450_000_000));
        // 0.00000001 × 0.5 is below the finest unit: not exact.
        assert_eq!(total_units(&q("0.00000001"), &q("0.5")), None);
        assert_eq!(units_text(450_000_000), "4.5");
        assert_eq!(smallest(1000), "0.001");
        assert_eq!(smallest(1), "1");
    }

    #[test]
    fn orders_must_come_to_whole_units_of_both_assets() {
        // energy: 0.001 kWh (multiple 1000); ecoin: 1 (multiple 1).
        assert_eq!(
            check_order(&q("10"), &q("100"), 1000, 1),
            Ok(1000 * 100_000_000)
        );
        assert!(check_order(&q("0.4"), &q("200"), 1000, 1).is_ok());
        let e = check_order(&q("0.0001"), &q("100"), 1000, 1).unwrap_err();
        assert_eq!(
            (e.status, e.code.as_str()),
            (StatusCode::BAD_REQUEST, "invalid_request")
        );
        assert!(e.message.contains("0.001 kWh"), "{}", e.message);
        let e = check_order(&q("1.5"), &q("3"), 1000, 1).unwrap_err();
        assert!(e.message.contains("4.5 ecoin"), "{}", e.message);
        let e = check_order(&q("0.001"), &q("100"), 1000, 1).unwrap_err();
        assert!(e.message.contains("0.1 ecoin"), "{}", e.message);
        // A divisible quote asset takes fractions.
        assert!(check_order(&q("1.5"), &q("3"), 1000, 100).is_ok());
        // Too large to represent.
        assert!(check_order(&q("90000000000"), &q("90000000000"), 1, 1).is_err());
    }

    #[test]
    fn order_ids_are_64_hex_digits() {
        let id = "AB".repeat(32);
        assert_eq!(order_id(&format!(" {id} ")), Ok("ab".repeat(32)));
        for bad in ["", "xyz", &"g".repeat(64), &"a".repeat(63)] {
            assert_eq!(order_id(bad).unwrap_err().code, "invalid_request", "{bad}");
        }
    }

    #[test]
    fn the_nodes_answers_take_the_services_shapes() {
        let node = json!({
            "base": "energy", "quote": "ecoin",
            "asks": [{"price": 100, "quantity": 7.5, "orders": 2}],
            "bids": [{"price": 90, "quantity": 0.4, "orders": 1}, {"price": 80, "quantity": 1, "orders": 1}],
        });
        let b = book(&node);
        assert_eq!(
            b["asks"],
            json!([{"price": 100, "qty": 7.5, "orders": 2, "value": 750}])
        );
        assert_eq!(
            b["bids"][0],
            json!({"price": 90, "qty": 0.4, "orders": 1, "value": 36})
        );
        assert_eq!(b["bids"].as_array().map(Vec::len), Some(2));
        assert_eq!(
            (&b["base"], &b["quote"]),
            (&json!("energy"), &json!("ecoin"))
        );
        let empty = book(&Value::Null);
        assert_eq!(
            (empty["asks"].clone(), empty["bids"].clone()),
            (json!([]), json!([]))
        );

        let node_trade = json!({"price": 100, "quantity": 3, "buyer": "1C", "seller": "1P",
                                "height": 7, "txid": "aa"});
        assert_eq!(
            trade(&node_trade),
            json!({"price": 100, "qty": 3, "value": 300, "buyer": "1C", "seller": "1P",
                   "height": 7, "txid": "aa"})
        );
        let given = trade(&json!({"price": 100, "quantity": 3, "value": 299}));
        assert_eq!(given["value"], json!(299), "the node's value is kept");
        let o = order(
            &json!({"id": "aa", "side": "sell", "quantity": 10, "remaining": 7,
                               "status": "open", "trades": [node_trade]}),
        );
        assert_eq!(o["qty"], json!(10));
        assert!(o.get("quantity").is_none());
        assert_eq!(o["trades"][0]["qty"], json!(3));
        assert_eq!(o["trades"][0]["value"], json!(300));
    }

    #[test]
    fn a_market_the_node_does_not_know_reads_as_empty() {
        assert_eq!(
            list_of(&Value::Null, "listtrades").map(<[Value]>::len),
            Ok(0)
        );
        assert_eq!(
            list_of(&json!([1, 2]), "listtrades").map(<[Value]>::len),
            Ok(2)
        );
        let e = list_of(&json!({"no": "list"}), "listtrades").unwrap_err();
        assert_eq!(
            (e.status, e.code.as_str()),
            (StatusCode::BAD_GATEWAY, "node_error")
        );
    }

    #[test]
    fn lists_are_newest_first() {
        let list = vec![
            json!({"height": 5, "n": 1}),
            json!({"height": 5, "n": 2}),
            json!({"height": 9, "n": 3}),
        ];
        let n: Vec<Value> = newest_first(list).iter().map(|t| t["n"].clone()).collect();
        assert_eq!(n, vec![json!(3), json!(2), json!(1)]);
    }

    #[test]
    fn filters_and_counts_are_checked() {
        assert_eq!(order_status(None), Ok("all"));
        assert_eq!(order_status(Some("filled")), Ok("filled"));
        assert_eq!(
            order_status(Some("done")).unwrap_err().code,
            "invalid_request"
        );
        assert_eq!(bounded(None, "count", 50, 500), Ok(50));
        assert_eq!(bounded(Some(500), "count", 50, 500), Ok(500));
        assert!(bounded(Some(0), "count", 50, 500).is_err());
        assert!(bounded(Some(501), "count", 50, 500).is_err());
    }
}
