//! The on-chain order book (issue 8, DESIGN §8): orders rest in ledger state with what they sell
//! in escrow, and are matched inside block application, in transaction order, deterministically.
//!
//! # Orders and prices
//! `PlaceOrder { sell, quantity, buy, price, kind }` offers up to `quantity` raw units of `sell`
//! for `buy`. The limit `price` is the exact fraction `num / den`: at least `num` raw units of
//! `buy` for every `den` raw units of `sell`. It is kept reduced (gcd 1), with u64 terms;
//! prices are compared by u128 cross products, never through floating point. The two sides of a
//! market use inverse units: a producer selling energy at 100 ecoin each (raw units) has price
//! 100/1 (ecoin per energy), a consumer paying at most 110 has price 1/110 (energy per ecoin). On
//! either side the best order is the one with the LOWEST price (it asks least of the other asset).
//! An incoming order (the taker) crosses a resting one (the maker) when
//! `maker.num × taker.num ≤ maker.den × taker.den`: the maker's price is at least as good as the
//! taker's limit.
//!
//! `kind` says when an order is done:
//! - `Sell`: once all of `quantity` is sold. A better price than the limit brings more of `buy`.
//! - `Buy`: once it received its `target = floor(quantity × num / den)` of `buy` (of the reduced
//!   price), paying at most `quantity`. A better price leaves escrow over, returned at once.
//!
//! # Fills are exact: lots instead of rounding
//! A price `num/den` trades in lots of `den` units of the sell asset for `num` units of the buy
//! asset. Every fill is a whole number of lots of the MAKER's price, so it is exactly at the
//! maker's price and no quantity is ever rounded: the maker gets precisely its price, the taker
//! that price, which is at least as good as its limit. The fill is as large as the maker's
//! remaining quantity, what the taker can still pay and (for a buy order) what it still wants allow.
//! What cannot be traded in whole lots is given back rather than rounded:
//! - a placed order must hold at least one lot of its own price (T6);
//! - when an order comes to rest, its escrow is cut down to whole lots of its own price (for a buy
//!   order also to no more lots than its remaining target needs); the rest is returned to the
//!   owner in the same transaction. So a resting order always holds whole lots, and a buy order
//!   receives its target minus less than one lot of its own price;
//! - a taker that cannot pay for (or, buying, does not want) one more whole lot of the best maker
//!   stops there: it never trades with a worse maker while a better one rests. Its remainder
//!   rests (if it still holds a lot of its own price) even when it crosses that maker, so the
//!   book can stay crossed by less than one lot, until another order clears it.
//!
//! # Matching
//! An incoming order meets the resting orders of the other side best price first, then in the
//! order they came to rest (the level's FIFO list: block order, then transaction order), each at
//! the maker's price, while it crosses and until it is done. Then:
//! - **No self-trade**: the taker passes over its own owner's resting orders, which keep their
//!   place (DESIGN §8: "the older one is skipped"); the taker may come to rest crossing them.
//! - **Permissions**: the taker's owner (the first ALL signer) holds `send` (S3) and `receive`
//!   (S9) when it places. A maker is paid at fill time, so its owner must hold `send` and
//!   `receive` at that height like the parties of a transfer (S3, S5); a maker whose owner lost
//!   either is cancelled when the matching reaches it, and its escrow returned (returned escrow
//!   is not a payment: it was the owner's before, and without this it would be locked for good).
//! - **Bounded work**: one order visits at most `MAX_VISITS` resting orders (fills, skips and
//!   cancellations); then its remainder rests.
//! - Cancellations take effect before the placement of the same transaction, whatever the op
//!   order, so a transaction the rules accept always applies.
//!
//! # Outputs
//! What the book pays (fills, returned escrow) becomes ordinary coins, spendable by their owner's
//! key like any other and listed among the address's UTXOs: outputs of the settlement txid
//! `H("WATTLE/SETTLE/1" ‖ txid)` of the transaction being applied. Vout 0 is the placing owner's:
//! everything its order bought plus any escrow returned to it, in one output; vouts 1, 2, … follow
//! in the order they are made: cancellation refunds, then one payment per fill to the maker's
//! owner (the taker's sell asset) and the refunds of makers cancelled for lost permissions.
//!
//! # State (`StateKey`)
//! - `Order(id)` → `OrderRecord`, kept once closed (status, what was sold, bought and returned).
//!   The id is the txid of the placing transaction (one placement per transaction).
//! - `Book(sell, buy)` → the prices of the side's non-empty levels, best first;
//!   `Level(sell, buy, price)` → `LevelInfo`: first and last order of a doubly linked FIFO list
//!   (`OrderRecord::prev`/`next`) and the level's totals. Matching reads only keys (the
//!   `LedgerView` seam has no range scans), so navigation is by these links.
//! - `OrderLog(None, n)`, `OrderLog(Some(owner), n)` → order ids in placement order (the global
//!   `n` is the order's `seq`); `OrderLogLen(..)` their lengths.
//! - `TradeLog(lo, hi, n)` → `TradeRecord` per fill, per market (assets in ascending id order);
//!   `TradeLogLen(lo, hi)`. `OrderFill(id, k)` → the index of an order's k-th fill in that log.
//!
//! Every change is an `Overlay` write, so the block's `Changeset` carries the book's undo data.

use crate::address::Address;
use crate::amount::Amount;
use crate::error::TxError;
use crate::hash::{Hash256, tag};
use crate::permissions::{GlobalPerm, Permission};
use crate::state::{LedgerView, Overlay, StateKey, StateValue, StoreError, Utxo, read};
use crate::tx::{AssetId, Op, OutPoint, Output, Transaction, Txid};
use crate::validate::{self, TxContext};
use bincode::{Decode, Encode};
use std::cmp::Ordering;

/// An order's id: the txid of the transaction that placed it.
pub type OrderId = Txid;

/// The most resting orders one incoming order visits (fills, skipped own orders, cancellations).
pub const MAX_VISITS: u32 = 1000;

/// A limit price: `num` raw units of the buy asset for every `den` raw units of the sell asset.
/// The derived ordering compares the terms (it orders state keys); compare values with
/// [`Price::cmp_value`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Encode, Decode)]
pub struct Price {
    pub num: u64,
    pub den: u64,
}

fn gcd(mut a: u64, mut b: u64) -> u64 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

impl Price {
    pub const fn new(num: u64, den: u64) -> Price {
        Price { num, den }
    }

    /// Both terms non-zero.
    pub fn is_valid(self) -> bool {
        self.num != 0 && self.den != 0
    }

    /// The same value in lowest terms (an invalid price is returned as it is).
    pub fn reduced(self) -> Price {
        if !self.is_valid() {
            return self;
        }
        let g = gcd(self.num, self.den);
        Price::new(self.num / g, self.den / g)
    }

    /// The price seen from the other side (sell units per buy unit).
    pub fn inverse(self) -> Price {
        Price::new(self.den, self.num)
    }

    /// Compares the values (`num / den`) exactly.
    pub fn cmp_value(self, other: Price) -> Ordering {
        (u128::from(self.num) * u128::from(other.den))
            .cmp(&(u128::from(other.num) * u128::from(self.den)))
    }

    /// Whether a taker with limit `taker` (A per B) accepts a maker's price `maker` (B per A).
    pub fn crosses(maker: Price, taker: Price) -> bool {
        u128::from(maker.num) * u128::from(taker.num)
            <= u128::from(maker.den) * u128::from(taker.den)
    }
}

/// When an order is done: all of its quantity sold, or its target bought.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Encode, Decode)]
pub enum OrderKind {
    /// Sells all of `quantity`; a better price brings more of the buy asset.
    Sell,
    /// Buys `floor(quantity × price)` of the buy asset, paying at most `quantity`; a better price
    /// leaves escrow over, which is returned.
    Buy,
}

/// The `PlaceOrder` op.
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode)]
pub struct PlaceOrder {
    pub sell: AssetId,
    /// Raw units of `sell` escrowed out of the transaction's inputs.
    pub quantity: Amount,
    pub buy: AssetId,
    /// The limit: at least `price.num` of `buy` per `price.den` of `sell`.
    pub price: Price,
    pub kind: OrderKind,
}

impl PlaceOrder {
    /// What a buy order wants: `floor(quantity × num / den)` of the reduced price; zero for a
    /// sell order.
    pub fn target(&self) -> Result<Amount, TxError> {
        if !self.price.is_valid() {
            return Err(TxError::BadPrice {
                num: self.price.num,
                den: self.price.den,
            });
        }
        match self.kind {
            OrderKind::Sell => Ok(Amount::ZERO),
            OrderKind::Buy => {
                let p = self.price.reduced();
                let t = u128::from(self.quantity.raw()) * u128::from(p.num) / u128::from(p.den);
                u64::try_from(t)
                    .ok()
                    .and_then(|t| Amount::new(t).ok())
                    .ok_or(TxError::OrderTargetOverflow)
            }
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Encode, Decode)]
pub enum OrderStatus {
    /// Resting in the book.
    Open,
    /// Done by matching (sold out, or its target bought); escrow it could not use was returned.
    Filled,
    /// Cancelled by its owner, or by the matching because its owner lost `send` or `receive`.
    Cancelled,
}

impl OrderStatus {
    pub fn name(self) -> &'static str {
        match self {
            OrderStatus::Open => "open",
            OrderStatus::Filled => "filled",
            OrderStatus::Cancelled => "cancelled",
        }
    }
}

/// An order in state. Always `quantity = remaining + sold + refunded` (sell asset).
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode)]
pub struct OrderRecord {
    pub id: OrderId,
    pub owner: Address,
    pub sell: AssetId,
    pub buy: AssetId,
    /// The limit, reduced.
    pub price: Price,
    pub kind: OrderKind,
    /// Escrowed when placed.
    pub quantity: Amount,
    /// Buy orders: the buy quantity wanted; sell orders: zero.
    pub target: Amount,
    /// Still in escrow: a whole number of lots while open, zero once closed.
    pub remaining: Amount,
    /// Sell units given in fills.
    pub sold: Amount,
    /// Buy units received in fills.
    pub bought: Amount,
    /// Sell units returned to the owner (price improvement, part lots, cancellation).
    pub refunded: Amount,
    /// Number of fills (`OrderFill(id, 0..fills)`).
    pub fills: u32,
    /// Height of the block that placed it.
    pub height: u32,
    /// Position among all orders ever placed (`OrderLog(None, seq)`).
    pub seq: u64,
    pub status: OrderStatus,
    /// Height at which it was filled or cancelled.
    pub closed: Option<u32>,
    /// Neighbours in its price level's FIFO list while open.
    pub prev: Option<OrderId>,
    pub next: Option<OrderId>,
}

impl OrderRecord {
    fn is_done(&self) -> bool {
        self.remaining.is_zero() || (self.kind == OrderKind::Buy && self.bought >= self.target)
    }

    /// Whole lots of its own price the order can rest with.
    fn resting_lots(&self) -> u64 {
        let by_escrow = self.remaining.raw() / self.price.den;
        match self.kind {
            OrderKind::Sell => by_escrow,
            OrderKind::Buy => {
                let wanted = self.target.raw().saturating_sub(self.bought.raw());
                by_escrow.min(wanted / self.price.num)
            }
        }
    }
}

/// One price level of one side of a market.
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode)]
pub struct LevelInfo {
    /// First in time priority.
    pub head: OrderId,
    /// Last in time priority.
    pub tail: OrderId,
    pub orders: u32,
    /// Sum of the orders' remaining quantities (sell asset).
    pub quantity: Amount,
}

/// One fill: the maker gave `maker_gave` of `maker_sells` for `taker_gave` of `taker_sells`,
/// exactly at the maker's price.
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode)]
pub struct TradeRecord {
    /// Position in the market's trade log.
    pub index: u64,
    pub height: u32,
    pub maker: OrderId,
    /// Also the txid of the transaction that made the trade.
    pub taker: OrderId,
    pub maker_owner: Address,
    pub taker_owner: Address,
    pub maker_sells: AssetId,
    pub taker_sells: AssetId,
    /// The maker's price: `taker_sells` units per `maker_sells` units.
    pub price: Price,
    pub maker_gave: Amount,
    pub taker_gave: Amount,
    /// The output paying `taker_gave` to the maker's owner.
    pub maker_payout: OutPoint,
    /// The output paying the taker's owner (all its fills in that transaction, plus returns).
    pub taker_payout: OutPoint,
}

/// The txid of the outputs the book creates while applying transaction `txid`.
pub fn settlement_txid(txid: &Txid) -> Txid {
    Hash256::tagged(tag::SETTLE, &[&txid.0])
}

/// A market's key: its two assets in ascending id order.
pub fn market(a: AssetId, b: AssetId) -> (AssetId, AssetId) {
    if a <= b { (a, b) } else { (b, a) }
}

// ------------------------------------------------------------------------------- block application

fn broken(what: String) -> TxError {
    TxError::Store(StoreError(format!("order book inconsistent: {what}")))
}

fn add(a: Amount, b: Amount) -> Result<Amount, TxError> {
    a.checked_add(b).map_err(|_| TxError::AmountOverflow)
}

fn sub(a: Amount, b: Amount) -> Result<Amount, TxError> {
    a.checked_sub(b)
        .map_err(|_| broken(format!("{a:?} - {b:?} is negative")))
}

fn amount(raw: u64) -> Result<Amount, TxError> {
    Amount::new(raw).map_err(|_| TxError::AmountOverflow)
}

/// Writes the order ops of `tx`, already validated (S9): its cancellations, then its placement.
/// `signers` are its ALL signers; the first owns the placed order.
pub(crate) fn write_orders<V: LedgerView + ?Sized>(
    state: &mut Overlay<'_, V>,
    tx: &Transaction,
    txid: Txid,
    signers: &[Address],
    ctx: &TxContext,
) -> Result<(), TxError> {
    if !tx.ops.iter().any(Op::is_order) {
        return Ok(());
    }
    let mut book = Book {
        state,
        ctx,
        settle: settlement_txid(&txid),
        next_vout: 1,
    };
    for op in &tx.ops {
        if let Op::CancelOrder { order } = op {
            book.cancel(order)?;
        }
    }
    if let Some(place) = tx.place_order() {
        let owner = *signers.first().ok_or(TxError::UnsignedParts)?;
        book.place(place, txid, owner)?;
    }
    Ok(())
}

/// The book's writes for one transaction.
struct Book<'s, 'a, 'c, V: LedgerView + ?Sized> {
    state: &'s mut Overlay<'a, V>,
    ctx: &'s TxContext<'c>,
    settle: Txid,
    next_vout: u32,
}

impl<V: LedgerView + ?Sized> Book<'_, '_, '_, V> {
    fn order(&self, id: &OrderId) -> Result<OrderRecord, TxError> {
        read::order(&*self.state, id)?.ok_or_else(|| broken(format!("order {id} missing")))
    }

    fn put_order(&mut self, r: &OrderRecord) {
        self.state.put(
            StateKey::Order(r.id),
            StateValue::Order(Box::new(r.clone())),
        );
    }

    fn level(&self, sell: &AssetId, buy: &AssetId, price: &Price) -> Result<LevelInfo, TxError> {
        read::level(&*self.state, sell, buy, price)?
            .ok_or_else(|| broken(format!("level {price:?} of {sell}/{buy} missing")))
    }

    fn put_level(&mut self, sell: AssetId, buy: AssetId, price: Price, level: LevelInfo) {
        self.state.put(
            StateKey::Level(sell, buy, price),
            StateValue::Level(Box::new(level)),
        );
    }

    /// A new coin of the settlement txid at `vout`.
    fn pay_at(
        &mut self,
        vout: u32,
        owner: Address,
        assets: impl IntoIterator<Item = (AssetId, Amount)>,
    ) -> OutPoint {
        let outpoint = OutPoint {
            txid: self.settle,
            vout,
        };
        let utxo = Utxo {
            output: Output::new(owner, assets),
            height: self.ctx.height,
        };
        self.state
            .put(StateKey::Utxo(outpoint), StateValue::Utxo(utxo));
        outpoint
    }

    /// A new coin at the next free vout (1, 2, …; 0 is the placing owner's).
    fn pay(
        &mut self,
        owner: Address,
        assets: impl IntoIterator<Item = (AssetId, Amount)>,
    ) -> OutPoint {
        let vout = self.next_vout;
        self.next_vout += 1;
        self.pay_at(vout, owner, assets)
    }

    /// Whether the owner of a resting order may still trade (like the parties of a transfer).
    fn may_trade(&self, owner: &Address) -> Result<bool, TxError> {
        for p in [GlobalPerm::Send, GlobalPerm::Receive] {
            if !validate::holds(
                &*self.state,
                self.ctx.chain,
                owner,
                Permission::Global(p),
                self.ctx.height,
            )? {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// Appends an order at the tail of its price level (creating the level); the caller writes
    /// the order itself.
    fn append(&mut self, r: &mut OrderRecord) -> Result<(), TxError> {
        r.next = None;
        match read::level(&*self.state, &r.sell, &r.buy, &r.price)? {
            Some(mut level) => {
                let mut tail = self.order(&level.tail)?;
                tail.next = Some(r.id);
                self.put_order(&tail);
                r.prev = Some(level.tail);
                level.tail = r.id;
                level.orders += 1;
                level.quantity = add(level.quantity, r.remaining)?;
                self.put_level(r.sell, r.buy, r.price, level);
            }
            None => {
                let mut levels = read::book(&*self.state, &r.sell, &r.buy)?.unwrap_or_default();
                let at = match levels.binary_search_by(|p| p.cmp_value(r.price)) {
                    Ok(_) => return Err(broken(format!("level {:?} listed but missing", r.price))),
                    Err(at) => at,
                };
                levels.insert(at, r.price);
                self.state
                    .put(StateKey::Book(r.sell, r.buy), StateValue::Book(levels));
                r.prev = None;
                let level = LevelInfo {
                    head: r.id,
                    tail: r.id,
                    orders: 1,
                    quantity: r.remaining,
                };
                self.put_level(r.sell, r.buy, r.price, level);
            }
        }
        Ok(())
    }

    /// Takes an open order out of its level (removing the level once empty); the caller writes
    /// the order itself.
    fn unlink(&mut self, r: &mut OrderRecord) -> Result<(), TxError> {
        let mut level = self.level(&r.sell, &r.buy, &r.price)?;
        level.quantity = sub(level.quantity, r.remaining)?;
        if level.orders <= 1 {
            self.state.delete(StateKey::Level(r.sell, r.buy, r.price));
            let mut levels = read::book(&*self.state, &r.sell, &r.buy)?.unwrap_or_default();
            let at = levels
                .binary_search_by(|p| p.cmp_value(r.price))
                .map_err(|_| broken(format!("level {:?} not listed", r.price)))?;
            levels.remove(at);
            if levels.is_empty() {
                self.state.delete(StateKey::Book(r.sell, r.buy));
            } else {
                self.state
                    .put(StateKey::Book(r.sell, r.buy), StateValue::Book(levels));
            }
        } else {
            match r.prev {
                Some(p) => {
                    let mut prev = self.order(&p)?;
                    prev.next = r.next;
                    self.put_order(&prev);
                }
                None => level.head = r.next.ok_or_else(|| broken("level head".into()))?,
            }
            match r.next {
                Some(n) => {
                    let mut next = self.order(&n)?;
                    next.prev = r.prev;
                    self.put_order(&next);
                }
                None => level.tail = r.prev.ok_or_else(|| broken("level tail".into()))?,
            }
            level.orders -= 1;
            self.put_level(r.sell, r.buy, r.price, level);
        }
        r.prev = None;
        r.next = None;
        Ok(())
    }

    /// Takes an open order off the book and returns its escrow to its owner.
    fn close(&mut self, r: &mut OrderRecord, status: OrderStatus) -> Result<(), TxError> {
        self.unlink(r)?;
        let refund = r.remaining;
        r.refunded = add(r.refunded, refund)?;
        r.remaining = Amount::ZERO;
        r.status = status;
        r.closed = Some(self.ctx.height);
        if !refund.is_zero() {
            self.pay(r.owner, [(r.sell, refund)]);
        }
        self.put_order(r);
        Ok(())
    }

    fn cancel(&mut self, id: &OrderId) -> Result<(), TxError> {
        let mut r = self.order(id)?;
        if r.status != OrderStatus::Open {
            return Err(TxError::OrderNotOpen { order: *id });
        }
        self.close(&mut r, OrderStatus::Cancelled)
    }

    /// Appends `id` to the global log and to its owner's; returns its global position.
    fn log_order(&mut self, id: OrderId, owner: Address) -> Result<u64, TxError> {
        let mut seq = 0;
        for scope in [None, Some(owner)] {
            let n = read::order_log_len(&*self.state, &scope)?.unwrap_or(0);
            self.state
                .put(StateKey::OrderLogLen(scope), StateValue::Count(n + 1));
            self.state
                .put(StateKey::OrderLog(scope, n), StateValue::OrderRef(id));
            if scope.is_none() {
                seq = n;
            }
        }
        Ok(seq)
    }

    fn place(&mut self, p: &PlaceOrder, id: OrderId, owner: Address) -> Result<(), TxError> {
        let seq = self.log_order(id, owner)?;
        let mut taker = OrderRecord {
            id,
            owner,
            sell: p.sell,
            buy: p.buy,
            price: p.price.reduced(),
            kind: p.kind,
            quantity: p.quantity,
            target: p.target()?,
            remaining: p.quantity,
            sold: Amount::ZERO,
            bought: Amount::ZERO,
            refunded: Amount::ZERO,
            fills: 0,
            height: self.ctx.height,
            seq,
            status: OrderStatus::Open,
            closed: None,
            prev: None,
            next: None,
        };
        let own_payout = OutPoint {
            txid: self.settle,
            vout: 0,
        };
        self.match_order(&mut taker, own_payout)?;
        // What cannot rest in whole lots of the order's own price goes back to its owner.
        let keep = amount(taker.resting_lots() * taker.price.den)?;
        let refund = sub(taker.remaining, keep)?;
        taker.refunded = add(taker.refunded, refund)?;
        taker.remaining = keep;
        if keep.is_zero() {
            taker.status = OrderStatus::Filled;
            taker.closed = Some(self.ctx.height);
        } else {
            self.append(&mut taker)?;
        }
        if !taker.bought.is_zero() || !refund.is_zero() {
            self.pay_at(
                own_payout.vout,
                owner,
                [(taker.buy, taker.bought), (taker.sell, refund)],
            );
        }
        self.put_order(&taker);
        Ok(())
    }

    /// Matches an incoming order against the other side of its market (module doc, "Matching").
    fn match_order(
        &mut self,
        taker: &mut OrderRecord,
        own_payout: OutPoint,
    ) -> Result<(), TxError> {
        // Makers sell what the taker buys, for what it sells.
        let (sell, buy) = (taker.buy, taker.sell);
        let mut level: Option<Price> = None;
        let mut cursor: Option<OrderId> = None;
        let mut visits = 0;
        while !taker.is_done() && visits < MAX_VISITS {
            let id = match cursor {
                Some(id) => id,
                None => {
                    // The first order of the next level (the best one to start with).
                    let levels = read::book(&*self.state, &sell, &buy)?.unwrap_or_default();
                    let from = match level {
                        None => 0,
                        Some(done) => {
                            levels.partition_point(|p| p.cmp_value(done) != Ordering::Greater)
                        }
                    };
                    let Some(&price) = levels.get(from) else {
                        break;
                    };
                    if !Price::crosses(price, taker.price) {
                        break;
                    }
                    level = Some(price);
                    self.level(&sell, &buy, &price)?.head
                }
            };
            visits += 1;
            let mut maker = self.order(&id)?;
            cursor = maker.next;
            if maker.owner == taker.owner {
                continue;
            }
            if !self.may_trade(&maker.owner)? {
                self.close(&mut maker, OrderStatus::Cancelled)?;
                continue;
            }
            let price = maker.price;
            let mut lots =
                (maker.remaining.raw() / price.den).min(taker.remaining.raw() / price.num);
            if taker.kind == OrderKind::Buy {
                let wanted = taker.target.raw().saturating_sub(taker.bought.raw());
                lots = lots.min(wanted / price.den);
            }
            if lots == 0 {
                break;
            }
            // Both products are bounded by a remaining quantity: no overflow.
            let gave = amount(lots * price.den)?;
            let got = amount(lots * price.num)?;
            self.fill(&mut maker, taker, gave, got, own_payout)?;
            if !maker.remaining.is_zero() {
                // The taker cannot pay for (or no longer wants) one more whole lot of the best
                // maker: it stops here rather than trade with a worse one.
                break;
            }
        }
        Ok(())
    }

    /// One fill: the maker gives `gave` of its sell asset, the taker `got` of its own.
    fn fill(
        &mut self,
        maker: &mut OrderRecord,
        taker: &mut OrderRecord,
        gave: Amount,
        got: Amount,
        own_payout: OutPoint,
    ) -> Result<(), TxError> {
        let mut level = self.level(&maker.sell, &maker.buy, &maker.price)?;
        level.quantity = sub(level.quantity, gave)?;
        self.put_level(maker.sell, maker.buy, maker.price, level);
        maker.remaining = sub(maker.remaining, gave)?;
        maker.sold = add(maker.sold, gave)?;
        maker.bought = add(maker.bought, got)?;
        taker.remaining = sub(taker.remaining, got)?;
        taker.sold = add(taker.sold, got)?;
        taker.bought = add(taker.bought, gave)?;
        let maker_payout = self.pay(maker.owner, [(maker.buy, got)]);

        let (lo, hi) = market(maker.sell, maker.buy);
        let index = read::trade_log_len(&*self.state, &lo, &hi)?.unwrap_or(0);
        self.state
            .put(StateKey::TradeLogLen(lo, hi), StateValue::Count(index + 1));
        let trade = TradeRecord {
            index,
            height: self.ctx.height,
            maker: maker.id,
            taker: taker.id,
            maker_owner: maker.owner,
            taker_owner: taker.owner,
            maker_sells: maker.sell,
            taker_sells: taker.sell,
            price: maker.price,
            maker_gave: gave,
            taker_gave: got,
            maker_payout,
            taker_payout: own_payout,
        };
        self.state.put(
            StateKey::TradeLog(lo, hi, index),
            StateValue::Trade(Box::new(trade)),
        );
        for r in [&mut *maker, &mut *taker] {
            self.state
                .put(StateKey::OrderFill(r.id, r.fills), StateValue::Count(index));
            r.fills += 1;
        }

        if maker.remaining.is_zero() {
            self.unlink(maker)?;
            maker.status = OrderStatus::Filled;
            maker.closed = Some(self.ctx.height);
        }
        self.put_order(maker);
        Ok(())
    }
}

// ------------------------------------------------------------------------------------- reading

fn missing(what: String) -> StoreError {
    StoreError(format!("order book inconsistent: {what} missing"))
}

/// Which orders [`list_orders`] returns; `None` matches everything.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OrderFilter {
    pub owner: Option<Address>,
    /// Either direction: orders selling the first for the second or the second for the first.
    pub market: Option<(AssetId, AssetId)>,
    pub status: Option<OrderStatus>,
}

impl OrderFilter {
    pub fn matches(&self, r: &OrderRecord) -> bool {
        self.owner.is_none_or(|o| o == r.owner)
            && self
                .market
                .is_none_or(|(a, b)| market(a, b) == market(r.sell, r.buy))
            && self.status.is_none_or(|s| s == r.status)
    }
}

/// The orders matching `filter`, in placement order. Walks the owner's log when an owner is
/// given, otherwise every order ever placed.
pub fn list_orders(
    view: &(impl LedgerView + ?Sized),
    filter: &OrderFilter,
) -> Result<Vec<OrderRecord>, StoreError> {
    let scope = filter.owner;
    let len = read::order_log_len(view, &scope)?.unwrap_or(0);
    let mut out = Vec::new();
    for n in 0..len {
        let id = read::order_log(view, &scope, &n)?
            .ok_or_else(|| missing(format!("order log entry {n}")))?;
        let r = read::order(view, &id)?.ok_or_else(|| missing(format!("order {id}")))?;
        if filter.matches(&r) {
            out.push(r);
        }
    }
    Ok(out)
}

/// An order's fills, oldest first.
pub fn order_trades(
    view: &(impl LedgerView + ?Sized),
    id: &OrderId,
) -> Result<Vec<TradeRecord>, StoreError> {
    let Some(r) = read::order(view, id)? else {
        return Ok(Vec::new());
    };
    let (lo, hi) = market(r.sell, r.buy);
    let mut out = Vec::new();
    for k in 0..r.fills {
        let index =
            read::order_fill(view, id, &k)?.ok_or_else(|| missing(format!("fill {k} of {id}")))?;
        out.push(
            read::trade_log(view, &lo, &hi, &index)?
                .ok_or_else(|| missing(format!("trade {index}")))?,
        );
    }
    Ok(out)
}

/// The open orders selling `sell` for `buy`, in priority order (best price, then oldest).
pub fn side_orders(
    view: &(impl LedgerView + ?Sized),
    sell: &AssetId,
    buy: &AssetId,
) -> Result<Vec<OrderRecord>, StoreError> {
    let mut out = Vec::new();
    for price in read::book(view, sell, buy)?.unwrap_or_default() {
        let level = read::level(view, sell, buy, &price)?
            .ok_or_else(|| missing(format!("level {price:?}")))?;
        let mut cursor = Some(level.head);
        while let Some(id) = cursor {
            let r = read::order(view, &id)?.ok_or_else(|| missing(format!("order {id}")))?;
            cursor = r.next;
            out.push(r);
        }
    }
    Ok(out)
}

/// One price level of one side.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LevelDepth {
    /// The level's price: units of the side's buy asset per unit of its sell asset.
    pub price: Price,
    pub orders: u32,
    /// Total remaining, in the side's sell asset.
    pub quantity: Amount,
    /// What that buys at this price, in the side's buy asset (exact: levels hold whole lots).
    pub value: u128,
}

/// A market's depth, best levels first on both sides.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Depth {
    /// Orders selling `base` for `quote`; price in quote per base, lowest first.
    pub asks: Vec<LevelDepth>,
    /// Orders selling `quote` for `base`; price in base per quote, lowest first (= highest quote
    /// per base: `price.inverse()`).
    pub bids: Vec<LevelDepth>,
}

/// Up to `max_levels` price levels of each side of the (`base`, `quote`) market.
pub fn depth(
    view: &(impl LedgerView + ?Sized),
    base: &AssetId,
    quote: &AssetId,
    max_levels: usize,
) -> Result<Depth, StoreError> {
    let side = |sell: &AssetId, buy: &AssetId| -> Result<Vec<LevelDepth>, StoreError> {
        let mut out = Vec::new();
        for price in read::book(view, sell, buy)?
            .unwrap_or_default()
            .into_iter()
            .take(max_levels)
        {
            let level = read::level(view, sell, buy, &price)?
                .ok_or_else(|| missing(format!("level {price:?}")))?;
            out.push(LevelDepth {
                price,
                orders: level.orders,
                quantity: level.quantity,
                value: u128::from(level.quantity.raw()) * u128::from(price.num)
                    / u128::from(price.den),
            });
        }
        Ok(out)
    };
    Ok(Depth {
        asks: side(base, quote)?,
        bids: side(quote, base)?,
    })
}

/// The last `count` trades between `a` and `b` (either order), newest first.
pub fn recent_trades(
    view: &(impl LedgerView + ?Sized),
    a: &AssetId,
    b: &AssetId,
    count: usize,
) -> Result<Vec<TradeRecord>, StoreError> {
    let (lo, hi) = market(*a, *b);
    let len = read::trade_log_len(view, &lo, &hi)?.unwrap_or(0);
    let mut out = Vec::new();
    for n in (0..len).rev().take(count) {
        out.push(
            read::trade_log(view, &lo, &hi, &n)?.ok_or_else(|| missing(format!("trade {n}")))?,
        );
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prices_reduce_compare_and_cross_exactly() {
        assert_eq!(Price::new(200, 2).reduced(), Price::new(100, 1));
        assert_eq!(Price::new(0, 5).reduced(), Price::new(0, 5));
        assert_eq!(
            Price::new(1, 3).cmp_value(Price::new(2, 6)),
            Ordering::Equal
        );
        assert_eq!(Price::new(1, 3).cmp_value(Price::new(1, 2)), Ordering::Less);
        // Terms near u64::MAX compare without overflow.
        assert_eq!(
            Price::new(u64::MAX, u64::MAX - 1).cmp_value(Price::new(u64::MAX - 1, u64::MAX - 2)),
            Ordering::Less
        );
        // 100 ecoin per energy meets a bid of 1 energy per 100 ecoin (equal), and per 110.
        assert!(Price::crosses(Price::new(100, 1), Price::new(1, 100)));
        assert!(Price::crosses(Price::new(100, 1), Price::new(1, 110)));
        assert!(!Price::crosses(Price::new(100, 1), Price::new(1, 99)));
        assert_eq!(Price::new(3, 7).inverse(), Price::new(7, 3));
    }

    #[test]
    fn a_buy_order_targets_the_floor_of_quantity_times_price() {
        let place = |quantity, price, kind| PlaceOrder {
            sell: Hash256([1; 32]),
            quantity: Amount::new(quantity).unwrap(),
            buy: Hash256([2; 32]),
            price,
            kind,
        };
        let t = |p: PlaceOrder| p.target().unwrap().raw();
        assert_eq!(t(place(440, Price::new(1, 110), OrderKind::Buy)), 4);
        assert_eq!(t(place(449, Price::new(2, 220), OrderKind::Buy)), 4);
        assert_eq!(t(place(449, Price::new(2, 220), OrderKind::Sell)), 0);
        assert_eq!(
            place(u64::MAX >> 1, Price::new(3, 1), OrderKind::Buy).target(),
            Err(TxError::OrderTargetOverflow)
        );
        assert!(matches!(
            place(1, Price::new(1, 0), OrderKind::Buy).target(),
            Err(TxError::BadPrice { .. })
        ));
    }

    #[test]
    fn markets_are_unordered_pairs() {
        let (a, b) = (Hash256([1; 32]), Hash256([2; 32]));
        assert_eq!(market(a, b), (a, b));
        assert_eq!(market(b, a), (a, b));
    }
}
