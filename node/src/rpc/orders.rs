//! The order-book commands (issue 8, DESIGN §8): `placeorder`, `cancelorder`, `listorders`,
//! `getorder`, `getorderbook` and `listtrades`.
//!
//! Users see a market (base, quote): prices are quote per one base and quantities are base, in
//! display units (`price`). The ledger's orders are symmetric (`sell`, `buy`, a price in buy per
//! sell); a sell order sells the base, a buy order sells the quote with `OrderKind::Buy`. Reads
//! show confirmed state (the book as of the tip); placing and cancelling see the mempool too, so
//! an order just placed can be cancelled at once.

use super::args::{Args, address, address_list, number, type_error};
use super::build::{self, mempool_error};
use super::convert::find_asset;
use super::price::{Market, OrderTermsError, Side, mul_floor};
use super::server::{RpcError, code};
use crate::chain::NodeState;
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;
use wattle_ledger::exchange::AssetBag;
use wattle_ledger::orderbook::{
    self, OrderFilter, OrderKind, OrderRecord, OrderStatus, TradeRecord,
};
use wattle_ledger::permissions::{GlobalPerm, Permission};
use wattle_ledger::state::{AssetInfo, read};
use wattle_ledger::tx::{AssetId, Op};
use wattle_ledger::{Address, Amount, Hash256};

type R = Result<Value, RpcError>;

fn invalid(text: impl Into<String>) -> RpcError {
    RpcError::new(code::INVALID_PARAMETER, text)
}

fn terms_error(e: OrderTermsError) -> RpcError {
    invalid(e.to_string())
}

fn store_error(e: impl std::fmt::Display) -> RpcError {
    RpcError::new(code::MISC_ERROR, e.to_string())
}

fn market_of(base: &AssetInfo, quote: &AssetInfo) -> Result<Market, RpcError> {
    if base.id == quote.id {
        return Err(invalid("Base and quote should be different assets"));
    }
    Ok(Market {
        base: base.id,
        base_multiple: base.multiple,
        quote: quote.id,
        quote_multiple: quote.multiple,
    })
}

/// An order id parameter: a txid.
fn order_id(text: &str) -> Result<Hash256, RpcError> {
    Hash256::from_hex(text.trim())
        .map_err(|_| invalid(format!("Invalid order id, should be a txid: {text}")))
}

/// placeorder (from-address, side, base, quantity, quote, price) → txid (= the order id).
pub fn placeorder(s: &mut NodeState, a: &Args) -> R {
    let from = address(&s.chain.params.address_format(), a.str(0)?)?;
    build::key_of(s, &from)?;
    let side_text = a.str(1)?;
    let side = Side::parse(side_text)
        .ok_or_else(|| invalid(format!("Invalid side, should be sell or buy: {side_text}")))?;
    let base = find_asset(s, a.str(2)?)?;
    let quote = find_asset(s, a.str(4)?)?;
    let market = market_of(&base, &quote)?;
    let quantity = market
        .parse_base_quantity(&a.quantity(3)?)
        .map_err(terms_error)?;
    let price = match a.params.get(5) {
        Some(Value::Number(n)) => market.parse_price(&n.to_string()),
        Some(v) => return Err(type_error(v, "real")),
        None => return Err(RpcError::new(code::MISC_ERROR, "missing parameter")),
    }
    .map_err(terms_error)?;
    let place = market
        .place_order(side, quantity, price)
        .map_err(terms_error)?;
    // Fills are paid to the owner: it needs receive as well as send (ledger S9).
    if !s.holds(&from, Permission::Global(GlobalPerm::Receive)) {
        return Err(RpcError::new(
            code::INSUFFICIENT_PERMISSIONS,
            "from-address doesn't have receive permission",
        ));
    }
    let need: AssetBag = [(place.sell, place.quantity)].into_iter().collect();
    let tx = build::build_funded(s, &from, vec![], &need, vec![Op::PlaceOrder(place)])?;
    let txid = s.submit(tx, true).map_err(mempool_error)?;
    Ok(Value::String(txid.to_hex()))
}

/// cancelorder (from-address, order-id) → txid. The from-address must own the order.
pub fn cancelorder(s: &mut NodeState, a: &Args) -> R {
    let fmt = s.chain.params.address_format();
    let from = address(&fmt, a.str(0)?)?;
    build::key_of(s, &from)?;
    let id = order_id(a.str(1)?)?;
    // The mempool's view: an order placed or cancelled there counts.
    let record = read::order(&s.mempool.view(&*s.store), &id)
        .map_err(store_error)?
        .ok_or_else(|| {
            RpcError::new(
                code::ENTITY_NOT_FOUND,
                format!("Order with this id not found: {}", id.to_hex()),
            )
        })?;
    if record.owner != from {
        return Err(RpcError::new(
            code::NOT_ALLOWED,
            format!(
                "Order {} belongs to {}, not to from-address",
                id.to_hex(),
                fmt.encode(&record.owner)
            ),
        ));
    }
    if record.status != OrderStatus::Open {
        return Err(RpcError::new(
            code::NOT_ALLOWED,
            format!("Order is {}, not open", record.status.name()),
        ));
    }
    let tx = build::build_funded(
        s,
        &from,
        vec![],
        &AssetBag::new(),
        vec![Op::CancelOrder { order: id }],
    )?;
    let txid = s.submit(tx, true).map_err(mempool_error)?;
    Ok(Value::String(txid.to_hex()))
}

/// Asset records by id, read once per command.
struct Assets<'s> {
    s: &'s NodeState,
    seen: BTreeMap<AssetId, Option<AssetInfo>>,
}

impl<'s> Assets<'s> {
    fn new(s: &'s NodeState) -> Assets<'s> {
        Assets {
            s,
            seen: BTreeMap::new(),
        }
    }

    fn get(&mut self, id: &AssetId) -> Result<AssetInfo, RpcError> {
        let s = self.s;
        let entry = match self.seen.get(id) {
            Some(e) => e.clone(),
            None => {
                let e = read::asset(&*s.store, id).map_err(store_error)?;
                self.seen.insert(*id, e.clone());
                e
            }
        };
        entry.ok_or_else(|| store_error(format!("asset {} of an order is missing", id.to_hex())))
    }

    fn market(&mut self, base: &AssetId, quote: &AssetId) -> Result<(Market, Names), RpcError> {
        let (b, q) = (self.get(base)?, self.get(quote)?);
        Ok((
            market_of(&b, &q)?,
            Names {
                base: b.name,
                quote: q.name,
            },
        ))
    }
}

struct Names {
    base: String,
    quote: String,
}

/// The Unix time of the main-chain block at `height`.
fn block_time(s: &NodeState, height: u32) -> Value {
    s.store
        .main_id_at(height)
        .ok()
        .flatten()
        .and_then(|id| s.store.block_entry(&id).ok().flatten())
        .map_or(Value::Null, |e| json!(e.timestamp_ms / 1000))
}

/// Which asset a listed order is shown against.
#[derive(Clone, Copy)]
enum Anchor {
    /// The order's own view: a sell order sells the base, a buy order buys it.
    Kind,
    Base(AssetId),
    Quote(AssetId),
}

/// (side, base, quote) of an order seen from `anchor`.
fn orient(r: &OrderRecord, anchor: Anchor) -> (Side, AssetId, AssetId) {
    let sells_base = match anchor {
        Anchor::Kind => r.kind == OrderKind::Sell,
        Anchor::Base(b) => r.sell == b,
        Anchor::Quote(q) => r.sell != q,
    };
    if sells_base {
        (Side::Sell, r.sell, r.buy)
    } else {
        (Side::Buy, r.buy, r.sell)
    }
}

/// One order as `listorders` shows it: quantities in the base, the price in quote per base.
fn order_json(s: &NodeState, assets: &mut Assets, r: &OrderRecord, anchor: Anchor) -> R {
    let (side, base, quote) = orient(r, anchor);
    let (m, names) = assets.market(&base, &quote)?;
    let open = r.status == OrderStatus::Open;
    let (price, quantity, remaining, filled) = match side {
        Side::Sell => (
            r.price,
            r.quantity,
            if open { r.remaining } else { Amount::ZERO },
            r.sold,
        ),
        Side::Buy => {
            // A buy order wants its target; one that sells the quote outright (a raw
            // transaction's `Sell` kind) is shown by what its escrow buys at its limit.
            let wanted = match r.kind {
                OrderKind::Buy => r.target,
                OrderKind::Sell => mul_floor(r.quantity, r.price),
            };
            let left = mul_floor(r.remaining, r.price)
                .min(wanted.checked_sub(r.bought).unwrap_or(Amount::ZERO));
            (
                r.price.inverse(),
                wanted,
                if open { left } else { Amount::ZERO },
                r.bought,
            )
        }
    };
    let fmt = s.chain.params.address_format();
    Ok(json!({
        "id": r.id.to_hex(),
        "owner": fmt.encode(&r.owner),
        "side": side.name(),
        "base": names.base,
        "quote": names.quote,
        "price": number(&m.format_price(price)),
        "quantity": number(&m.format_base(quantity)),
        "remaining": number(&m.format_base(remaining)),
        "filled": number(&m.format_base(filled)),
        "status": r.status.name(),
        "height": r.height,
        "time": block_time(s, r.height),
        "closedheight": r.closed,
        "fills": r.fills,
    }))
}

/// One fill as `listtrades` shows it, in the market whose base is `base`.
fn trade_json(s: &NodeState, assets: &mut Assets, t: &TradeRecord, base: &AssetId) -> R {
    let fmt = s.chain.params.address_format();
    // The maker sold the base (the taker bought it), or the other way round.
    let (maker, taker) = (t.maker_owner, t.taker_owner);
    let (quote, price, qty, value, buyer, seller, side) = if t.maker_sells == *base {
        let (qty, value) = (t.maker_gave, t.taker_gave);
        (t.taker_sells, t.price, qty, value, taker, maker, Side::Buy)
    } else {
        let (qty, value) = (t.taker_gave, t.maker_gave);
        (
            t.maker_sells,
            t.price.inverse(),
            qty,
            value,
            maker,
            taker,
            Side::Sell,
        )
    };
    let (m, _) = assets.market(base, &quote)?;
    Ok(json!({
        "txid": t.taker.to_hex(),
        "height": t.height,
        "time": block_time(s, t.height),
        "side": side.name(),
        "price": number(&m.format_price(price)),
        "quantity": number(&m.format_base(qty)),
        "value": number(&m.format_quote(value)),
        "buyer": fmt.encode(&buyer),
        "seller": fmt.encode(&seller),
        "maker": t.maker.to_hex(),
        "taker": t.taker.to_hex(),
    }))
}

/// An optional asset filter: absent or `"*"` for any.
fn asset_or_any(s: &NodeState, a: &Args, i: usize) -> Result<Option<AssetInfo>, RpcError> {
    match a.opt_str(i)? {
        None | Some("*") => Ok(None),
        Some(ident) => find_asset(s, ident).map(Some),
    }
}

fn status_filter(text: Option<&str>) -> Result<Option<OrderStatus>, RpcError> {
    match text.map(str::to_ascii_lowercase).as_deref() {
        None | Some("open") => Ok(Some(OrderStatus::Open)),
        Some("filled") => Ok(Some(OrderStatus::Filled)),
        Some("cancelled") => Ok(Some(OrderStatus::Cancelled)),
        Some("all") | Some("*") => Ok(None),
        Some(other) => Err(invalid(format!(
            "Invalid status, should be open, filled, cancelled or all: {other}"
        ))),
    }
}

/// listorders (addresses="*", base="*", quote="*", status="open", count=all, start=-count).
pub fn listorders(s: &NodeState, a: &Args) -> R {
    let fmt = s.chain.params.address_format();
    let owners: Option<Vec<Address>> = match a.get(0) {
        None => None,
        Some(Value::String(x)) if x == "*" => None,
        Some(v) => Some(address_list(&fmt, v)?),
    };
    let base = asset_or_any(s, a, 1)?;
    let quote = asset_or_any(s, a, 2)?;
    if let (Some(b), Some(q)) = (&base, &quote) {
        market_of(b, q)?;
    }
    let status = status_filter(a.opt_str(3)?)?;
    let filter = OrderFilter {
        owner: owners.as_ref().filter(|o| o.len() == 1).map(|o| o[0]),
        market: base.as_ref().zip(quote.as_ref()).map(|(b, q)| (b.id, q.id)),
        status,
    };
    let involves = |r: &OrderRecord, x: &Option<AssetInfo>| {
        x.as_ref().is_none_or(|x| r.sell == x.id || r.buy == x.id)
    };
    let orders: Vec<OrderRecord> = orderbook::list_orders(&*s.store, &filter)
        .map_err(store_error)?
        .into_iter()
        .filter(|r| owners.as_ref().is_none_or(|o| o.contains(&r.owner)))
        .filter(|r| involves(r, &base) && involves(r, &quote))
        .collect();
    let anchor = match (&base, &quote) {
        (Some(b), _) => Anchor::Base(b.id),
        (None, Some(q)) => Anchor::Quote(q.id),
        (None, None) => Anchor::Kind,
    };
    let range = a.window(4, i32::MAX as i64, orders.len())?;
    let mut assets = Assets::new(s);
    let out = orders[range]
        .iter()
        .map(|r| order_json(s, &mut assets, r, anchor))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Value::Array(out))
}

/// getorder (order-id) → the order as listorders shows it, with its fills under `trades`.
pub fn getorder(s: &NodeState, a: &Args) -> R {
    let id = order_id(a.str(0)?)?;
    let r = read::order(&*s.store, &id)
        .map_err(store_error)?
        .ok_or_else(|| {
            RpcError::new(
                code::ENTITY_NOT_FOUND,
                format!("Order with this id not found: {}", id.to_hex()),
            )
        })?;
    let mut assets = Assets::new(s);
    let mut out = order_json(s, &mut assets, &r, Anchor::Kind)?;
    let (_, base, _) = orient(&r, Anchor::Kind);
    let trades = orderbook::order_trades(&*s.store, &id)
        .map_err(store_error)?
        .iter()
        .map(|t| trade_json(s, &mut assets, t, &base))
        .collect::<Result<Vec<_>, _>>()?;
    if let Value::Object(m) = &mut out {
        m.insert("trades".into(), Value::Array(trades));
    }
    Ok(out)
}

fn market_params(s: &NodeState, a: &Args) -> Result<(AssetInfo, AssetInfo, Market), RpcError> {
    let base = find_asset(s, a.str(0)?)?;
    let quote = find_asset(s, a.str(1)?)?;
    let market = market_of(&base, &quote)?;
    Ok((base, quote, market))
}

fn amount_u128(v: u128) -> Amount {
    Amount::new(u64::try_from(v).unwrap_or(u64::MAX)).unwrap_or(Amount::MAX)
}

/// getorderbook (base, quote, levels=20) → {base, quote, asks, bids}, each level
/// {price, quantity, value, orders}, best first.
pub fn getorderbook(s: &NodeState, a: &Args) -> R {
    let (base, quote, m) = market_params(s, a)?;
    let levels = a.int_or(2, 20)?;
    if levels < 0 {
        return Err(invalid("Invalid levels, should be non-negative"));
    }
    let depth = orderbook::depth(
        &*s.store,
        &base.id,
        &quote.id,
        usize::try_from(levels).unwrap_or(usize::MAX),
    )
    .map_err(store_error)?;
    // Asks sell the base at quote per base; bids sell the quote at base per quote, so their
    // level quantity is quote and their value base.
    let asks: Vec<Value> = depth
        .asks
        .iter()
        .map(|l| {
            json!({
                "price": number(&m.format_price(l.price)),
                "quantity": number(&m.format_base(l.quantity)),
                "value": number(&m.format_quote(amount_u128(l.value))),
                "orders": l.orders,
            })
        })
        .collect();
    let bids: Vec<Value> = depth
        .bids
        .iter()
        .map(|l| {
            json!({
                "price": number(&m.format_price(l.price.inverse())),
                "quantity": number(&m.format_base(amount_u128(l.value))),
                "value": number(&m.format_quote(l.quantity)),
                "orders": l.orders,
            })
        })
        .collect();
    let mut out = Map::new();
    out.insert("base".into(), Value::String(base.name));
    out.insert("quote".into(), Value::String(quote.name));
    out.insert("asks".into(), Value::Array(asks));
    out.insert("bids".into(), Value::Array(bids));
    Ok(Value::Object(out))
}

/// listtrades (base, quote, count=10, start=-count) → the market's fills, oldest first.
pub fn listtrades(s: &NodeState, a: &Args) -> R {
    let (base, quote, _) = market_params(s, a)?;
    let (lo, hi) = orderbook::market(base.id, quote.id);
    let len = read::trade_log_len(&*s.store, &lo, &hi)
        .map_err(store_error)?
        .unwrap_or(0);
    let range = a.window(2, 10, usize::try_from(len).unwrap_or(usize::MAX))?;
    let mut assets = Assets::new(s);
    let mut out = Vec::with_capacity(range.len());
    for n in range {
        let t = read::trade_log(&*s.store, &lo, &hi, &(n as u64))
            .map_err(store_error)?
            .ok_or_else(|| store_error(format!("trade {n} missing")))?;
        out.push(trade_json(s, &mut assets, &t, &base.id)?);
    }
    Ok(Value::Array(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_parse_with_open_by_default() {
        assert_eq!(status_filter(None).unwrap(), Some(OrderStatus::Open));
        assert_eq!(
            status_filter(Some("open")).unwrap(),
            Some(OrderStatus::Open)
        );
        assert_eq!(
            status_filter(Some("Filled")).unwrap(),
            Some(OrderStatus::Filled)
        );
        assert_eq!(
            status_filter(Some("cancelled")).unwrap(),
            Some(OrderStatus::Cancelled)
        );
        assert_eq!(status_filter(Some("all")).unwrap(), None);
        assert_eq!(status_filter(Some("*")).unwrap(), None);
        let e = status_filter(Some("closed")).unwrap_err();
        assert_eq!(e.code, code::INVALID_PARAMETER);
    }

    #[test]
    fn order_ids_are_txids() {
        let id = Hash256([7; 32]);
        assert_eq!(order_id(&id.to_hex()).unwrap(), id);
        assert_eq!(order_id("xyz").unwrap_err().code, code::INVALID_PARAMETER);
        assert_eq!(order_id("").unwrap_err().code, code::INVALID_PARAMETER);
    }

    fn record(sell: u8, buy: u8, kind: OrderKind) -> OrderRecord {
        OrderRecord {
            id: Hash256([9; 32]),
            owner: Address([1; 20]),
            sell: Hash256([sell; 32]),
            buy: Hash256([buy; 32]),
            price: wattle_ledger::orderbook::Price::new(1, 10),
            kind,
            quantity: Amount::ZERO,
            target: Amount::ZERO,
            remaining: Amount::ZERO,
            sold: Amount::ZERO,
            bought: Amount::ZERO,
            refunded: Amount::ZERO,
            fills: 0,
            height: 1,
            seq: 0,
            status: OrderStatus::Open,
            closed: None,
            prev: None,
            next: None,
        }
    }

    #[test]
    fn orders_are_shown_from_the_requested_side() {
        let (e, c) = (Hash256([1; 32]), Hash256([2; 32]));
        let sell = record(1, 2, OrderKind::Sell);
        let buy = record(2, 1, OrderKind::Buy);
        assert_eq!(orient(&sell, Anchor::Kind), (Side::Sell, e, c));
        assert_eq!(orient(&buy, Anchor::Kind), (Side::Buy, e, c));
        assert_eq!(orient(&buy, Anchor::Base(e)), (Side::Buy, e, c));
        assert_eq!(orient(&buy, Anchor::Base(c)), (Side::Sell, c, e));
        assert_eq!(orient(&sell, Anchor::Quote(c)), (Side::Sell, e, c));
        assert_eq!(orient(&sell, Anchor::Quote(e)), (Side::Buy, c, e));
        // A raw transaction's sell order of the quote is a buy of the base.
        let sells_quote = record(2, 1, OrderKind::Sell);
        assert_eq!(orient(&sells_quote, Anchor::Base(e)), (Side::Buy, e, c));
    }
}
