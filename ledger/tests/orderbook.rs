//! The order book (`orderbook`, issue 8): the worked example of the issue, one test per rule
//! (T6 and S9 for orders, S4 with escrow, lots, self-trade, permissions, cancellation, undo),
//! and a property test over random order streams.
//!
//! Units in the unit tests: energy has `multiple` 1000 (raw 1000 = 1 kWh) and ecoin `multiple`
//! 100 (raw 100 = 1 ecoin). "100 ecoin per kWh" is 10 raw ecoin per raw energy: an energy seller's
//! price 10/1; a buyer paying up to P ecoin per kWh has price 10/P (raw energy per raw ecoin).

use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::{Config, FileFailurePersistence, TestCaseError, TestRunner};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;
use wattle_ledger::apply::apply_tx;
use wattle_ledger::error::{BlockError, TxError};
use wattle_ledger::orderbook::{
    self, Depth, LevelDepth, MAX_VISITS, OrderFilter, OrderId, OrderKind, OrderRecord, OrderStatus,
    PlaceOrder, Price, TradeRecord, settlement_txid,
};
use wattle_ledger::permissions::{GlobalPerm, Permission};
use wattle_ledger::sighash;
use wattle_ledger::state::{MemoryView, Overlay, StateKey, StateValue, read};
use wattle_ledger::testkit::{TestChain, key, unsigned_input};
use wattle_ledger::tx::{AssetId, Op, OutPoint, Output, TX_VERSION, Transaction};
use wattle_ledger::validate::TxContext;
use wattle_ledger::{Address, Amount, SecretKey};

fn amount(raw: u64) -> Amount {
    Amount::new(raw).expect("test amounts are in range")
}

fn csr() -> Vec<Permission> {
    [GlobalPerm::Connect, GlobalPerm::Send, GlobalPerm::Receive]
        .map(Permission::Global)
        .to_vec()
}

fn receive() -> Permission {
    Permission::Global(GlobalPerm::Receive)
}

// ============================================================================ unit tests

/// The admin, a producer (`key(1)`) holding 50 kWh and three consumers (`key(2..=4)`) holding
/// 2000 ecoin each, all with connect/send/receive.
struct Fx {
    t: TestChain,
    admin: SecretKey,
    producer: SecretKey,
    consumers: [SecretKey; 3],
    energy: AssetId,
    ecoin: AssetId,
}

const PRODUCER_ENERGY: u64 = 50_000;
const CONSUMER_ECOIN: u64 = 200_000;

fn fixture() -> Fx {
    let mut t = TestChain::new();
    let admin = t.admin.clone();
    let producer = key(1);
    let consumers = [key(2), key(3), key(4)];
    for k in [&producer, &consumers[0], &consumers[1], &consumers[2]] {
        let g = t.grant(&admin, k.address(), &csr());
        t.mine(vec![g]).unwrap();
    }
    let issue = t.issue(
        &admin,
        admin.address(),
        "energy",
        true,
        1000,
        1_000_000,
        &[],
    );
    t.mine(vec![issue]).unwrap();
    let issue = t.issue(&admin, admin.address(), "ecoin", true, 100, 10_000_000, &[]);
    t.mine(vec![issue]).unwrap();
    let (energy, ecoin) = (t.asset_id("energy"), t.asset_id("ecoin"));
    let pay = t.transfer(&admin, producer.address(), energy, PRODUCER_ENERGY);
    t.mine(vec![pay]).unwrap();
    for c in &consumers {
        let pay = t.transfer(&admin, c.address(), ecoin, CONSUMER_ECOIN);
        t.mine(vec![pay]).unwrap();
    }
    Fx {
        t,
        admin,
        producer,
        consumers,
        energy,
        ecoin,
    }
}

impl Fx {
    /// The producer's ask: `kwh` kWh at `ecoin_per_kwh` each.
    fn ask(&self, kwh: u64, ecoin_per_kwh: u64) -> Transaction {
        self.ask_by(&self.producer, kwh, ecoin_per_kwh)
    }

    fn ask_by(&self, who: &SecretKey, kwh: u64, ecoin_per_kwh: u64) -> Transaction {
        self.t.place_order(
            who,
            self.energy,
            kwh * 1000,
            self.ecoin,
            Price::new(ecoin_per_kwh * 100, 1000),
            OrderKind::Sell,
        )
    }

    /// A buy order: `kwh` kWh, paying at most `ecoin_per_kwh` each (escrow kwh × price).
    fn bid(&self, who: &SecretKey, kwh: u64, ecoin_per_kwh: u64) -> Transaction {
        self.t.place_order(
            who,
            self.ecoin,
            kwh * ecoin_per_kwh * 100,
            self.energy,
            Price::new(1000, ecoin_per_kwh * 100),
            OrderKind::Buy,
        )
    }

    fn balance(&self, who: &SecretKey, asset: AssetId) -> u64 {
        self.t.balance(&who.address(), &asset).raw()
    }

    fn order(&self, id: &OrderId) -> OrderRecord {
        read::order(&self.t.state, id)
            .unwrap()
            .expect("order exists")
    }

    fn depth(&self) -> Depth {
        orderbook::depth(&self.t.state, &self.energy, &self.ecoin, 20).unwrap()
    }

    /// Trades of the energy/ecoin market, oldest first.
    fn trades(&self) -> Vec<TradeRecord> {
        let mut all =
            orderbook::recent_trades(&self.t.state, &self.energy, &self.ecoin, 1000).unwrap();
        all.reverse();
        all
    }

    fn refuse(&mut self, tx: Transaction) -> TxError {
        let before = self.t.state.clone();
        let block = self.t.block(vec![tx]);
        match self.t.commit(&block) {
            Err(BlockError::Tx { error, .. }) => {
                assert_eq!(self.t.state, before, "a refused block changes nothing");
                error
            }
            other => panic!("expected a refused transaction, got {other:?}"),
        }
    }
}

/// Per asset: every UTXO plus every open order's escrow equals what was issued.
fn assert_conserved(t: &TestChain, assets: &[AssetId]) {
    for asset in assets {
        let issued = read::asset(&t.state, asset).unwrap().unwrap().total.raw() as u128;
        let mut held: u128 = 0;
        for (k, v) in &t.state.map {
            match (k, v) {
                (StateKey::Utxo(_), StateValue::Utxo(u)) => {
                    held += u.output.amount_of(asset).raw() as u128
                }
                (StateKey::Order(_), StateValue::Order(o))
                    if o.status == OrderStatus::Open && o.sell == *asset =>
                {
                    held += o.remaining.raw() as u128
                }
                _ => {}
            }
        }
        assert_eq!(held, issued, "conservation of {asset}");
    }
}

/// The producer's coin of energy.
fn energy_coin(fx: &Fx) -> OutPoint {
    fx.t.utxos_of(&fx.producer.address())
        .into_iter()
        .find(|(_, u)| !u.output.amount_of(&fx.energy).is_zero())
        .expect("the producer holds energy")
        .0
}

fn coin(t: &TestChain, outpoint: &OutPoint) -> Output {
    read::utxo(&t.state, outpoint)
        .unwrap()
        .expect("coin exists")
        .output
}

#[test]
fn worked_example_fills_three_five_and_two_and_the_rest_of_the_third_bid_rests() {
    let mut fx = fixture();
    // A producer sells 10 energy at 100 ecoin each.
    let ask = fx.ask(10, 100);
    let ask_id = ask.txid();
    fx.t.mine(vec![ask]).unwrap();
    assert_eq!(
        fx.balance(&fx.producer, fx.energy),
        PRODUCER_ENERGY - 10_000
    );
    assert_eq!(fx.order(&ask_id).remaining.raw(), 10_000);
    // Three consumers bid for 3, 5 and 4 at 100 or more (100, 110, 120), in one block.
    let [c1, c2, c3] = fx.consumers.clone();
    let bids = vec![
        fx.bid(&c1, 3, 100),
        fx.bid(&c2, 5, 110),
        fx.bid(&c3, 4, 120),
    ];
    let ids: Vec<OrderId> = bids.iter().map(Transaction::txid).collect();
    fx.t.mine(bids).unwrap();

    // Fills are 3, 5 and 2 kWh, each at the producer's price (100 ecoin per kWh).
    let trades = fx.trades();
    let fills: Vec<(OrderId, OrderId, u64, u64)> = trades
        .iter()
        .map(|t| (t.maker, t.taker, t.maker_gave.raw(), t.taker_gave.raw()))
        .collect();
    assert_eq!(
        fills,
        vec![
            (ask_id, ids[0], 3000, 30_000),
            (ask_id, ids[1], 5000, 50_000),
            (ask_id, ids[2], 2000, 20_000),
        ]
    );
    // The producer's order is filled; it was paid 1000 ecoin in three coins.
    let ask = fx.order(&ask_id);
    assert_eq!(ask.status, OrderStatus::Filled);
    assert_eq!(
        (ask.sold.raw(), ask.bought.raw(), ask.fills),
        (10_000, 100_000, 3)
    );
    assert_eq!(fx.balance(&fx.producer, fx.ecoin), 100_000);
    for t in &trades {
        assert_eq!(
            coin(&fx.t, &t.maker_payout),
            Output::new(fx.producer.address(), [(fx.ecoin, t.taker_gave)])
        );
        assert_eq!(t.maker_payout.txid, settlement_txid(&t.taker));
    }
    // Consumers 1 and 2 are done; consumer 2 paid 100, not its 110: the 50 over came back.
    let c1_order = fx.order(&ids[0]);
    assert_eq!(c1_order.status, OrderStatus::Filled);
    assert_eq!((c1_order.bought.raw(), c1_order.refunded.raw()), (3000, 0));
    let c2_order = fx.order(&ids[1]);
    assert_eq!(c2_order.status, OrderStatus::Filled);
    assert_eq!(
        (c2_order.sold.raw(), c2_order.refunded.raw()),
        (50_000, 5000)
    );
    assert_eq!(
        coin(
            &fx.t,
            &OutPoint {
                txid: settlement_txid(&ids[1]),
                vout: 0
            }
        ),
        Output::new(
            c2.address(),
            [(fx.energy, amount(5000)), (fx.ecoin, amount(5000))]
        )
    );
    // The third consumer's remaining 2 kWh rest in the book, at its 120, with 240 ecoin escrowed;
    // the 40 ecoin its 2 filled kWh did not cost came back.
    let c3_order = fx.order(&ids[2]);
    assert_eq!(c3_order.status, OrderStatus::Open);
    assert_eq!((c3_order.bought.raw(), c3_order.target.raw()), (2000, 4000));
    assert_eq!(
        (c3_order.remaining.raw(), c3_order.refunded.raw()),
        (24_000, 4000)
    );
    assert_eq!(
        fx.depth(),
        Depth {
            asks: vec![],
            bids: vec![LevelDepth {
                price: Price::new(1, 12),
                orders: 1,
                quantity: amount(24_000),
                value: 2000,
            }],
        }
    );
    // Every balance.
    assert_eq!(
        fx.balance(&fx.producer, fx.energy),
        PRODUCER_ENERGY - 10_000
    );
    let expect = [(3000, 30_000), (5000, 50_000), (2000, 20_000 + 24_000)];
    for (c, (energy, spent)) in fx.consumers.iter().zip(expect) {
        assert_eq!(fx.balance(c, fx.energy), energy);
        assert_eq!(fx.balance(c, fx.ecoin), CONSUMER_ECOIN - spent);
    }
    assert_conserved(&fx.t, &[fx.energy, fx.ecoin]);

    // Listing: by owner, by market and status; an order's fills.
    let open = OrderFilter {
        market: Some((fx.ecoin, fx.energy)),
        status: Some(OrderStatus::Open),
        ..OrderFilter::default()
    };
    let listed = orderbook::list_orders(&fx.t.state, &open).unwrap();
    assert_eq!(
        listed.iter().map(|o| o.id).collect::<Vec<_>>(),
        vec![ids[2]]
    );
    let mine = OrderFilter {
        owner: Some(fx.producer.address()),
        ..OrderFilter::default()
    };
    let listed = orderbook::list_orders(&fx.t.state, &mine).unwrap();
    assert_eq!(listed, vec![ask]);
    let all = orderbook::list_orders(&fx.t.state, &OrderFilter::default()).unwrap();
    assert_eq!(
        all.iter().map(|o| o.seq).collect::<Vec<_>>(),
        vec![0, 1, 2, 3]
    );
    assert_eq!(
        orderbook::order_trades(&fx.t.state, &ask_id).unwrap(),
        trades
    );
    assert_eq!(
        orderbook::order_trades(&fx.t.state, &ids[2]).unwrap(),
        vec![trades[2].clone()]
    );
}

#[test]
fn worked_example_with_sell_orders_at_exactly_the_ask() {
    // The same trade with consumers selling ecoin (sell orders) at exactly 100.
    let mut fx = fixture();
    fx.t.mine(vec![fx.ask(10, 100)]).unwrap();
    let [c1, c2, c3] = fx.consumers.clone();
    let sell = |fx: &Fx, who: &SecretKey, kwh: u64| {
        fx.t.place_order(
            who,
            fx.ecoin,
            kwh * 10_000,
            fx.energy,
            Price::new(1, 10),
            OrderKind::Sell,
        )
    };
    let bids = vec![sell(&fx, &c1, 3), sell(&fx, &c2, 5), sell(&fx, &c3, 4)];
    let third = bids[2].txid();
    fx.t.mine(bids).unwrap();
    let got: Vec<u64> = fx.trades().iter().map(|t| t.maker_gave.raw()).collect();
    assert_eq!(got, vec![3000, 5000, 2000]);
    let rest = fx.order(&third);
    assert_eq!(
        (rest.status, rest.remaining.raw()),
        (OrderStatus::Open, 20_000)
    );
    assert_eq!(fx.depth().bids[0].value, 2000);
}

#[test]
fn a_taker_sells_into_resting_bids_best_price_first_at_their_prices() {
    let mut fx = fixture();
    let [c1, c2, c3] = fx.consumers.clone();
    let bids = vec![
        fx.bid(&c1, 3, 100),
        fx.bid(&c2, 5, 110),
        fx.bid(&c3, 4, 120),
    ];
    let ids: Vec<OrderId> = bids.iter().map(Transaction::txid).collect();
    fx.t.mine(bids).unwrap();
    assert_eq!(
        fx.depth()
            .bids
            .iter()
            .map(|l| l.price.inverse())
            .collect::<Vec<_>>(),
        vec![Price::new(12, 1), Price::new(11, 1), Price::new(10, 1)]
    );
    // The producer asks 100 for 10 kWh: it sells 4 at 120, 5 at 110 and 1 at 100.
    let ask = fx.ask(10, 100);
    let ask_id = ask.txid();
    fx.t.mine(vec![ask]).unwrap();
    let fills: Vec<(OrderId, u64, u64)> = fx
        .trades()
        .iter()
        .map(|t| (t.maker, t.maker_gave.raw(), t.taker_gave.raw()))
        .collect();
    assert_eq!(
        fills,
        vec![
            (ids[2], 48_000, 4000),
            (ids[1], 55_000, 5000),
            (ids[0], 10_000, 1000)
        ]
    );
    let ask = fx.order(&ask_id);
    assert_eq!(
        (ask.status, ask.bought.raw()),
        (OrderStatus::Filled, 113_000)
    );
    assert_eq!(fx.balance(&fx.producer, fx.ecoin), 113_000);
    let first = fx.order(&ids[0]);
    assert_eq!(
        (first.status, first.remaining.raw(), first.bought.raw()),
        (OrderStatus::Open, 20_000, 1000)
    );
    assert_conserved(&fx.t, &[fx.energy, fx.ecoin]);
}

#[test]
fn equal_prices_fill_oldest_first_across_blocks_and_within_a_block() {
    let mut fx = fixture();
    let [c1, c2, c3] = fx.consumers.clone();
    let early = fx.bid(&c2, 2, 100);
    fx.t.mine(vec![early.clone()]).unwrap();
    let later = vec![fx.bid(&c3, 2, 100), fx.bid(&c1, 2, 100)];
    fx.t.mine(later.clone()).unwrap();
    fx.t.mine(vec![fx.ask(5, 90)]).unwrap();
    let makers: Vec<(OrderId, u64)> = fx
        .trades()
        .iter()
        .map(|t| (t.maker, t.taker_gave.raw()))
        .collect();
    assert_eq!(
        makers,
        vec![
            (early.txid(), 2000),
            (later[0].txid(), 2000),
            (later[1].txid(), 1000)
        ]
    );
}

#[test]
fn an_order_does_not_cross_a_worse_price() {
    let mut fx = fixture();
    fx.t.mine(vec![fx.ask(10, 101)]).unwrap();
    let c1 = fx.consumers[0].clone();
    let bid = fx.bid(&c1, 3, 100);
    let id = bid.txid();
    fx.t.mine(vec![bid]).unwrap();
    assert!(fx.trades().is_empty());
    assert_eq!(fx.order(&id).status, OrderStatus::Open);
    let d = fx.depth();
    assert_eq!((d.asks.len(), d.bids.len()), (1, 1));
}

#[test]
fn an_owner_never_trades_with_itself_its_resting_order_keeps_its_place() {
    let mut fx = fixture();
    let [c1, ..] = fx.consumers.clone();
    // The producer also holds ecoin.
    let pay =
        fx.t.transfer(&fx.admin, fx.producer.address(), fx.ecoin, 100_000);
    fx.t.mine(vec![pay]).unwrap();
    let pay = fx.t.transfer(&fx.admin, c1.address(), fx.energy, 10_000);
    fx.t.mine(vec![pay]).unwrap();
    let own = fx.ask(5, 100);
    let other = fx.ask_by(&c1, 5, 105);
    let (own_id, other_id) = (own.txid(), other.txid());
    fx.t.mine(vec![own, other]).unwrap();
    // The producer bids 2 kWh at up to 120: it passes over its own ask at 100.
    let bid = fx.bid(&fx.producer, 2, 120);
    let bid_id = bid.txid();
    fx.t.mine(vec![bid]).unwrap();
    let trades = fx.trades();
    assert_eq!(trades.len(), 1);
    assert_eq!(
        (trades[0].maker, trades[0].maker_gave.raw()),
        (other_id, 2000)
    );
    assert_ne!(trades[0].maker_owner, trades[0].taker_owner);
    let own = fx.order(&own_id);
    assert_eq!(
        (own.status, own.remaining.raw(), own.fills),
        (OrderStatus::Open, 5000, 0)
    );
    assert_eq!(fx.order(&bid_id).status, OrderStatus::Filled);
    // Its own ask is still first in line: the next buyer takes it.
    fx.t.mine(vec![fx.bid(&c1, 1, 120)]).unwrap();
    assert_eq!(fx.trades()[1].maker, own_id);
    // A producer bid at 104 crosses only its own ask (not the one at 105): it rests, crossed.
    let bid = fx.bid(&fx.producer, 1, 104);
    let bid_id = bid.txid();
    fx.t.mine(vec![bid]).unwrap();
    let bid = fx.order(&bid_id);
    assert_eq!((bid.status, bid.fills), (OrderStatus::Open, 0));
    assert_eq!(fx.trades().len(), 2);
    assert_conserved(&fx.t, &[fx.energy, fx.ecoin]);
}

#[test]
fn cancelling_returns_exactly_what_is_left_to_the_owner() {
    let mut fx = fixture();
    fx.t.mine(vec![fx.ask(3, 100)]).unwrap();
    let c3 = fx.consumers[2].clone();
    let bid = fx.bid(&c3, 5, 120);
    let id = bid.txid();
    fx.t.mine(vec![bid]).unwrap();
    let before = fx.order(&id);
    assert_eq!(before.remaining.raw(), 24_000);
    let ecoin_before = fx.balance(&c3, fx.ecoin);
    let cancel = fx.t.cancel_orders(&c3, &[id]);
    let cancel_id = cancel.txid();
    fx.t.mine(vec![cancel]).unwrap();
    let after = fx.order(&id);
    assert_eq!(after.status, OrderStatus::Cancelled);
    assert_eq!(after.remaining, Amount::ZERO);
    assert_eq!(after.refunded.raw(), before.refunded.raw() + 24_000);
    assert_eq!(
        coin(
            &fx.t,
            &OutPoint {
                txid: settlement_txid(&cancel_id),
                vout: 1
            }
        ),
        Output::new(c3.address(), [(fx.ecoin, amount(24_000))])
    );
    assert_eq!(fx.balance(&c3, fx.ecoin), ecoin_before + 24_000);
    assert_eq!(fx.depth(), Depth::default());
    assert!(
        fx.t.state
            .map
            .keys()
            .all(|k| !matches!(k, StateKey::Book(..) | StateKey::Level(..)))
    );
    // Once only.
    let again = fx.t.cancel_orders(&c3, &[id]);
    assert_eq!(fx.refuse(again), TxError::OrderNotOpen { order: id });
    assert_conserved(&fx.t, &[fx.energy, fx.ecoin]);
}

#[test]
fn s9_only_an_all_signer_owning_the_order_may_cancel_it() {
    let mut fx = fixture();
    let ask = fx.ask(3, 100);
    let id = ask.txid();
    fx.t.mine(vec![ask]).unwrap();
    let c1 = fx.consumers[0].clone();
    let theft = fx.t.cancel_orders(&c1, &[id]);
    assert_eq!(fx.refuse(theft), TxError::NotOrderOwner { order: id });
    let missing = wattle_ledger::hash::Hash256([7; 32]);
    let tx = fx.t.cancel_orders(&c1, &[missing]);
    assert_eq!(fx.refuse(tx), TxError::UnknownOrder { order: missing });
    let tx = fx.t.cancel_orders(&fx.producer, &[id, id]);
    assert_eq!(fx.refuse(tx), TxError::DuplicateCancel { order: id });
}

#[test]
fn a_cancel_takes_effect_before_the_placement_of_the_same_transaction() {
    let mut fx = fixture();
    let ask = fx.ask(3, 120);
    let old = ask.txid();
    fx.t.mine(vec![ask]).unwrap();
    // Re-price: cancel at 120 and ask 100 in one transaction (placement op first).
    let place = PlaceOrder {
        sell: fx.energy,
        quantity: amount(3000),
        buy: fx.ecoin,
        price: Price::new(10, 1),
        kind: OrderKind::Sell,
    };
    let tx = fx.t.build_with_escrow(
        &fx.producer,
        vec![],
        vec![],
        Some((fx.energy, amount(3000))),
        vec![Op::PlaceOrder(place), Op::CancelOrder { order: old }],
    );
    let new = tx.txid();
    fx.t.mine(vec![tx]).unwrap();
    assert_eq!(fx.order(&old).status, OrderStatus::Cancelled);
    assert_eq!(fx.order(&new).status, OrderStatus::Open);
    let d = fx.depth();
    assert_eq!(d.asks.len(), 1);
    assert_eq!(d.asks[0].price, Price::new(10, 1));
    // The refund of the cancelled ask is the first numbered output of the settlement.
    assert_eq!(
        coin(
            &fx.t,
            &OutPoint {
                txid: settlement_txid(&new),
                vout: 1
            }
        ),
        Output::new(fx.producer.address(), [(fx.energy, amount(3000))])
    );
    assert_conserved(&fx.t, &[fx.energy, fx.ecoin]);
}

#[test]
fn t6_order_ops_are_well_formed() {
    let mut fx = fixture();
    let producer = fx.producer.clone();
    let (energy, ecoin) = (fx.energy, fx.ecoin);
    let mut place = |sell: AssetId, qty: u64, buy: AssetId, price: Price, kind: OrderKind| {
        let tx = fx.t.place_order(&producer, sell, qty, buy, price, kind);
        fx.refuse(tx)
    };
    assert_eq!(
        place(energy, 10, energy, Price::new(1, 1), OrderKind::Sell),
        TxError::OrderSameAsset
    );
    assert_eq!(
        place(energy, 10, ecoin, Price::new(0, 1), OrderKind::Sell),
        TxError::BadPrice { num: 0, den: 1 }
    );
    assert_eq!(
        place(energy, 10, ecoin, Price::new(1, 0), OrderKind::Buy),
        TxError::BadPrice { num: 1, den: 0 }
    );
    // One lot of 7/30 is 30 raw units; 14/60 is the same price.
    assert_eq!(
        place(energy, 29, ecoin, Price::new(14, 60), OrderKind::Sell),
        TxError::OrderBelowLot {
            quantity: 29,
            lot: 30
        }
    );
    assert_eq!(
        place(energy, 1000, ecoin, Price::new(u64::MAX, 1), OrderKind::Buy),
        TxError::OrderTargetOverflow
    );
    assert!(
        TxError::OrderBelowLot {
            quantity: 0,
            lot: 1
        }
        .is_stateless()
    );
    // Two placements in one transaction.
    let op = Op::PlaceOrder(PlaceOrder {
        sell: fx.energy,
        quantity: amount(10),
        buy: fx.ecoin,
        price: Price::new(1, 1),
        kind: OrderKind::Sell,
    });
    let tx = fx.t.build_with_escrow(
        &fx.producer,
        vec![],
        vec![],
        Some((fx.energy, amount(20))),
        vec![op.clone(), op],
    );
    assert_eq!(fx.refuse(tx), TxError::MultipleOrders);
    // The asset being issued cannot be traded.
    let tx = fx.t.place_order(
        &fx.producer,
        fx.energy,
        10,
        wattle_ledger::tx::NEW_ASSET,
        Price::new(1, 1),
        OrderKind::Sell,
    );
    assert_eq!(fx.refuse(tx), TxError::OrderForNewAsset);
}

#[test]
fn s4_the_escrow_must_come_out_of_the_inputs() {
    let mut fx = fixture();
    // An order whose coin all comes back as change: nothing escrowed.
    let coin_op = energy_coin(&fx);
    let coin_out = coin(&fx.t, &coin_op);
    let mut tx = Transaction {
        version: TX_VERSION,
        inputs: vec![unsigned_input(coin_op)],
        outputs: vec![coin_out],
        ops: vec![Op::PlaceOrder(PlaceOrder {
            sell: fx.energy,
            quantity: amount(1000),
            buy: fx.ecoin,
            price: Price::new(10, 1),
            kind: OrderKind::Sell,
        })],
    };
    sighash::sign_all(&mut tx, &[&fx.producer], &fx.t.chain.id);
    assert!(matches!(
        fx.refuse(tx),
        TxError::Unbalanced { asset, inputs: 50_000, outputs: 51_000 } if asset == fx.energy
    ));
}

#[test]
fn s9_orders_need_known_assets_and_an_owner_who_may_receive() {
    let mut fx = fixture();
    let ghost = wattle_ledger::hash::Hash256([9; 32]);
    let tx = fx.t.place_order(
        &fx.producer,
        fx.energy,
        1000,
        ghost,
        Price::new(1, 1),
        OrderKind::Sell,
    );
    assert_eq!(fx.refuse(tx), TxError::OrderUnknownAsset { asset: ghost });
    let revoke = fx.t.revoke(&fx.admin, fx.producer.address(), &[receive()]);
    fx.t.mine(vec![revoke]).unwrap();
    // The whole coin is escrowed and the change is a zero-value output (which
    // `anyone-can-receive-empty` lets through S5), so only S9 stands in the way.
    assert!(fx.t.chain.params.anyone_can_receive_empty);
    let coin_op = energy_coin(&fx);
    let mut tx = Transaction {
        version: TX_VERSION,
        inputs: vec![unsigned_input(coin_op)],
        outputs: vec![Output::new(fx.producer.address(), [])],
        ops: vec![Op::PlaceOrder(PlaceOrder {
            sell: fx.energy,
            quantity: amount(PRODUCER_ENERGY),
            buy: fx.ecoin,
            price: Price::new(10, 1),
            kind: OrderKind::Sell,
        })],
    };
    sighash::sign_all(&mut tx, &[&fx.producer], &fx.t.chain.id);
    assert_eq!(
        fx.refuse(tx),
        TxError::NoReceiveForOrder {
            address: fx.producer.address()
        }
    );
}

#[test]
fn a_maker_whose_owner_lost_receive_is_cancelled_and_refunded_when_reached() {
    let mut fx = fixture();
    let c1 = fx.consumers[0].clone();
    let pay = fx.t.transfer(&fx.admin, c1.address(), fx.energy, 10_000);
    fx.t.mine(vec![pay]).unwrap();
    let first = fx.ask(3, 100);
    let second = fx.ask_by(&c1, 3, 105);
    let (first_id, second_id) = (first.txid(), second.txid());
    fx.t.mine(vec![first, second]).unwrap();
    let revoke = fx.t.revoke(&fx.admin, fx.producer.address(), &[receive()]);
    fx.t.mine(vec![revoke]).unwrap();
    let c2 = fx.consumers[1].clone();
    let bid = fx.bid(&c2, 2, 110);
    let bid_id = bid.txid();
    fx.t.mine(vec![bid]).unwrap();
    let first = fx.order(&first_id);
    assert_eq!(
        (first.status, first.refunded.raw()),
        (OrderStatus::Cancelled, 3000)
    );
    assert_eq!(
        coin(
            &fx.t,
            &OutPoint {
                txid: settlement_txid(&bid_id),
                vout: 1
            }
        ),
        Output::new(fx.producer.address(), [(fx.energy, amount(3000))])
    );
    let trades = fx.trades();
    assert_eq!(trades.len(), 1);
    assert_eq!(
        (trades[0].maker, trades[0].maker_gave.raw()),
        (second_id, 2000)
    );
    assert_eq!(fx.order(&bid_id).status, OrderStatus::Filled);
    assert_conserved(&fx.t, &[fx.energy, fx.ecoin]);
}

#[test]
fn fills_are_whole_lots_of_the_maker_price_and_part_lots_go_back() {
    // Raw units throughout: x and y with multiple 1.
    let mut fx = fixture();
    let admin = fx.admin.clone();
    for name in ["x", "y"] {
        let issue =
            fx.t.issue(&admin, admin.address(), name, true, 1, 1000, &[]);
        fx.t.mine(vec![issue]).unwrap();
    }
    let (x, y) = (fx.t.asset_id("x"), fx.t.asset_id("y"));
    let [c1, c2, c3] = fx.consumers.clone();
    for (to, asset) in [(&c1, x), (&c3, x), (&c2, y)] {
        let pay = fx.t.transfer(&admin, to.address(), asset, 100);
        fx.t.mine(vec![pay]).unwrap();
    }
    // The maker sells 30 x at 7 y per 3 x: lots of 3 x for 7 y.
    let maker =
        fx.t.place_order(&c1, x, 30, y, Price::new(7, 3), OrderKind::Sell);
    let maker_id = maker.txid();
    // Behind it, a worse ask with smaller lots: 2 x for 5 y.
    let worse =
        fx.t.place_order(&c3, x, 10, y, Price::new(5, 2), OrderKind::Sell);
    let worse_id = worse.txid();
    fx.t.mine(vec![maker, worse]).unwrap();
    // The taker pays up to 2.5 y per x (2 x per 5 y) with 20 y: two lots, 6 x for 14 y.
    let taker =
        fx.t.place_order(&c2, y, 20, x, Price::new(2, 5), OrderKind::Sell);
    let taker_id = taker.txid();
    fx.t.mine(vec![taker]).unwrap();
    let trades = orderbook::recent_trades(&fx.t.state, &x, &y, 10).unwrap();
    assert_eq!(trades.len(), 1);
    assert_eq!(
        (trades[0].maker_gave.raw(), trades[0].taker_gave.raw()),
        (6, 14)
    );
    // 6 y are left, less than a lot of the best maker: the taker stops there, although it could
    // pay a lot of the worse ask. It rests with one lot of its own price (5 y), crossing the
    // maker; the odd 1 y came back with its 6 x.
    assert_eq!(
        read::order(&fx.t.state, &worse_id).unwrap().unwrap().fills,
        0
    );
    let t = read::order(&fx.t.state, &taker_id).unwrap().unwrap();
    assert_eq!(
        (t.status, t.remaining.raw(), t.refunded.raw()),
        (OrderStatus::Open, 5, 1)
    );
    assert_eq!(
        coin(
            &fx.t,
            &OutPoint {
                txid: settlement_txid(&taker_id),
                vout: 0
            }
        ),
        Output::new(c2.address(), [(x, amount(6)), (y, amount(1))])
    );
    let m = read::order(&fx.t.state, &maker_id).unwrap().unwrap();
    assert_eq!((m.remaining.raw(), m.remaining.raw() % 3), (24, 0));
    // An order selling x at 2 y each meets the resting 5 y: one lot of 2 x for 5 y.
    let third =
        fx.t.place_order(&c3, x, 10, y, Price::new(2, 1), OrderKind::Sell);
    fx.t.mine(vec![third]).unwrap();
    let trades = orderbook::recent_trades(&fx.t.state, &x, &y, 10).unwrap();
    assert_eq!((trades[0].maker, trades[0].maker_gave.raw()), (taker_id, 5));
    assert_eq!(trades[0].taker_gave.raw(), 2);
    assert_conserved(&fx.t, &[x, y, fx.energy, fx.ecoin]);
}

#[test]
fn payouts_are_ordinary_coins_their_owner_can_spend() {
    let mut fx = fixture();
    fx.t.mine(vec![fx.ask(10, 100)]).unwrap();
    let c1 = fx.consumers[0].clone();
    let bid = fx.bid(&c1, 10, 100);
    let bid_id = bid.txid();
    fx.t.mine(vec![bid]).unwrap();
    // The producer's only ecoin is its payout; it pays all of it on.
    assert_eq!(fx.balance(&fx.producer, fx.ecoin), 100_000);
    let tx =
        fx.t.transfer(&fx.producer, fx.admin.address(), fx.ecoin, 100_000);
    let settlement = settlement_txid(&bid_id);
    assert!(tx.inputs.iter().any(|i| i.prev.txid == settlement));
    fx.t.mine(vec![tx]).unwrap();
    assert_eq!(fx.balance(&fx.producer, fx.ecoin), 0);
    // And the consumer's energy.
    let tx = fx.t.transfer(&c1, fx.admin.address(), fx.energy, 10_000);
    fx.t.mine(vec![tx]).unwrap();
    assert_eq!(fx.balance(&c1, fx.energy), 0);
}

#[test]
fn a_block_of_orders_undoes_exactly() {
    let mut fx = fixture();
    fx.t.mine(vec![fx.ask(10, 100)]).unwrap();
    let before = fx.t.state.clone();
    let [c1, c2, c3] = fx.consumers.clone();
    let bids = vec![
        fx.bid(&c1, 3, 100),
        fx.bid(&c2, 5, 110),
        fx.bid(&c3, 4, 120),
    ];
    let changes = fx.t.mine(bids).unwrap();
    assert!(
        changes
            .changes
            .keys()
            .any(|k| matches!(k, StateKey::TradeLog(..)))
    );
    let after = fx.t.state.clone();
    let mut s = after.clone();
    s.apply(&changes.inverse()).unwrap();
    assert_eq!(s, before);
    assert_eq!(s.state_hash(), before.state_hash());
    s.apply(&changes).unwrap();
    assert_eq!(s, after);
}

#[test]
fn one_order_visits_at_most_max_visits_resting_orders() {
    let mut fx = fixture();
    let producer = fx.producer.clone();
    let c1 = fx.consumers[0].clone();
    let pay = fx.t.transfer(&fx.admin, producer.address(), fx.ecoin, 1000);
    fx.t.mine(vec![pay]).unwrap();
    let pay = fx.t.transfer(&fx.admin, c1.address(), fx.energy, 10);
    fx.t.mine(vec![pay]).unwrap();
    // The producer rests MAX_VISITS asks of 1 raw energy at 100 ecoin per kWh in one block, and
    // a consumer asks the same price after them.
    let height = fx.t.next_height();
    let mut view = fx.t.state.clone();
    let mut asks = Vec::new();
    for _ in 0..MAX_VISITS {
        let op = Op::PlaceOrder(PlaceOrder {
            sell: fx.energy,
            quantity: amount(1),
            buy: fx.ecoin,
            price: Price::new(10, 1),
            kind: OrderKind::Sell,
        });
        let tx = build_on(
            &fx.t,
            &view,
            &producer,
            Some((fx.energy, 1)),
            vec![],
            vec![op],
        )
        .expect("the producer holds energy");
        apply_pending(&fx.t, &mut view, height, &tx).unwrap();
        asks.push(tx);
    }
    let late = fx.t.place_order(
        &c1,
        fx.energy,
        10,
        fx.ecoin,
        Price::new(10, 1),
        OrderKind::Sell,
    );
    let late_id = late.txid();
    asks.push(late);
    fx.t.mine(asks).unwrap();
    // The producer's own bid passes over its MAX_VISITS asks and stops before the consumer's.
    let bid = fx.t.place_order(
        &producer,
        fx.ecoin,
        100,
        fx.energy,
        Price::new(1, 10),
        OrderKind::Sell,
    );
    let bid_id = bid.txid();
    fx.t.mine(vec![bid]).unwrap();
    let bid = fx.order(&bid_id);
    assert_eq!(
        (bid.status, bid.fills, bid.remaining.raw()),
        (OrderStatus::Open, 0, 100)
    );
    assert_eq!(fx.order(&late_id).fills, 0);
    // Another buyer trades with the first ask straight away.
    let c2 = fx.consumers[1].clone();
    let other = fx.t.place_order(
        &c2,
        fx.ecoin,
        10,
        fx.energy,
        Price::new(1, 10),
        OrderKind::Sell,
    );
    fx.t.mine(vec![other]).unwrap();
    let trades = fx.trades();
    assert_eq!(trades.len(), 1);
    assert_eq!(trades[0].maker_owner, producer.address());
}

// ============================================================================ property test
//
// Random order streams: four owners (`key(1..=4)`) holding two assets (`a` and `b`, multiple 1),
// several blocks of random actions — sell and buy orders in both directions with random prices
// (terms 1..=12, so lots of 1 to 12 raw units) and quantities, cancels of random open orders by
// their owners, and the admin revoking or granting an owner's `receive` (which cancels its
// resting orders when the matching reaches them). Each transaction is built on the state the
// block reaches so far (`apply_tx` on the pending state), so orders placed earlier in a block
// are matched and cancelled in the same block.
//
// An independent model keeps the book as a flat list and matches by sorting it (price value,
// then the moment the order came to rest). After every block:
// - the block applied by `apply_block` equals the transaction-by-transaction pending state;
// - every order record and the market's trade log equal the model's: price-time priority, fill
//   sizes, lots, skipped own orders, refunds, statuses; owners' balances equal the model's;
// - conservation: per asset, all UTXOs plus all open escrow equal what was issued;
// - every trade is exactly at the maker's price and within the taker's limit, between two
//   different owners; each order's accounting (quantity = remaining + sold + refunded) holds;
// - a cancel's refund output holds exactly the order's remaining quantity before the cancel;
// - the book's structure: levels sorted strictly by price, FIFO lists linked both ways, totals
//   and counts right, every open order in exactly one level, in whole lots;
// - the read helpers (list_orders, depth, recent_trades) agree with the model;
// - undo: applying the block's changeset's inverse restores the previous state exactly, and
//   re-applying it gives the new state.

const OWNERS: usize = 4;

fn owner_key(i: usize) -> SecretKey {
    key(1 + i as u64)
}

fn owner_keys() -> &'static [SecretKey] {
    static KEYS: OnceLock<Vec<SecretKey>> = OnceLock::new();
    KEYS.get_or_init(|| (0..OWNERS).map(owner_key).collect())
}

fn owner_of(address: &Address) -> Option<usize> {
    owner_keys().iter().position(|k| k.address() == *address)
}

fn coins(view: &MemoryView, owner: Address) -> Vec<(OutPoint, Output)> {
    view.map
        .iter()
        .filter_map(|(k, v)| match (k, v) {
            (StateKey::Utxo(op), StateValue::Utxo(u)) if u.output.address == owner => {
                Some((*op, u.output.clone()))
            }
            _ => None,
        })
        .collect()
}

/// Applies a transaction to the pending state of the block at `height`, as `apply_block` would.
fn apply_pending(
    t: &TestChain,
    view: &mut MemoryView,
    height: u32,
    tx: &Transaction,
) -> Result<(), TxError> {
    let ctx = TxContext {
        chain: &t.chain,
        height,
        offset: 0,
        signatures_checked: true,
    };
    let mut overlay = Overlay::new(&*view);
    apply_tx(&mut overlay, tx, &ctx)?;
    let changes = overlay.into_changeset()?;
    view.apply(&changes)?;
    Ok(())
}

/// A transaction of `from` spending coins that cover `escrow` (any one coin if none), change
/// back to it, carrying `ops` and `extra` outputs first.
fn build_on(
    t: &TestChain,
    view: &MemoryView,
    from: &SecretKey,
    escrow: Option<(AssetId, u64)>,
    extra: Vec<Output>,
    ops: Vec<Op>,
) -> Option<Transaction> {
    let mut have: BTreeMap<AssetId, u64> = BTreeMap::new();
    let mut inputs = Vec::new();
    let need = escrow.map(|(_, q)| q).unwrap_or(0);
    for (op, out) in coins(view, from.address()) {
        let covered = |have: &BTreeMap<AssetId, u64>| match escrow {
            Some((asset, q)) => have.get(&asset).copied().unwrap_or(0) >= q,
            None => true,
        };
        if !inputs.is_empty() && covered(&have) {
            break;
        }
        if let Some((asset, _)) = escrow
            && out.amount_of(&asset).is_zero()
            && !inputs.is_empty()
        {
            continue;
        }
        inputs.push(unsigned_input(op));
        for (id, q) in &out.assets {
            *have.entry(*id).or_default() += q.raw();
        }
    }
    if inputs.is_empty() {
        return None;
    }
    if let Some((asset, _)) = escrow {
        let slot = have.entry(asset).or_default();
        *slot = slot.checked_sub(need)?;
    }
    let mut outputs = extra;
    outputs.push(Output::new(
        from.address(),
        have.into_iter().map(|(id, q)| (id, amount(q))),
    ));
    let mut tx = Transaction {
        version: TX_VERSION,
        inputs,
        outputs,
        ops,
    };
    let keys: Vec<&SecretKey> = tx.inputs.iter().map(|_| from).collect();
    sighash::sign_all(&mut tx, &keys, &t.chain.id);
    Some(tx)
}

// ---------------------------------------------------------------------------------- the model

fn gcd(a: u64, b: u64) -> u64 {
    if b == 0 { a } else { gcd(b, a % b) }
}

/// `a.num / a.den` against `b.num / b.den`.
fn value_cmp(a: (u64, u64), b: (u64, u64)) -> std::cmp::Ordering {
    (a.0 as u128 * b.1 as u128).cmp(&(b.0 as u128 * a.1 as u128))
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct MOrder {
    id: OrderId,
    owner: usize,
    /// Asset index sold (0 = a, 1 = b); it buys the other.
    sell: usize,
    num: u64,
    den: u64,
    buy_kind: bool,
    target: u64,
    quantity: u64,
    remaining: u64,
    sold: u64,
    bought: u64,
    refunded: u64,
    fills: u32,
    status: OrderStatus,
    /// When it came to rest (time priority).
    rested: u64,
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct MTrade {
    maker: OrderId,
    taker: OrderId,
    maker_gave: u64,
    taker_gave: u64,
}

#[derive(Clone, Debug, Default)]
struct Model {
    /// In placement order.
    orders: Vec<MOrder>,
    trades: Vec<MTrade>,
    /// [owner][asset].
    balances: [[u64; 2]; OWNERS],
    can_receive: [bool; OWNERS],
    clock: u64,
}

impl Model {
    fn cancel(&mut self, i: usize) {
        let o = &mut self.orders[i];
        o.refunded += o.remaining;
        self.balances[o.owner][o.sell] += o.remaining;
        o.remaining = 0;
        o.status = OrderStatus::Cancelled;
    }

    fn place(&mut self, mut t: MOrder) {
        self.balances[t.owner][t.sell] -= t.quantity;
        // The other side, best price first, then oldest; a snapshot: only visited orders change.
        let mut side: Vec<usize> = (0..self.orders.len())
            .filter(|&i| {
                let o = &self.orders[i];
                o.status == OrderStatus::Open && o.sell != t.sell
            })
            .collect();
        side.sort_by(|&i, &j| {
            let (a, b) = (&self.orders[i], &self.orders[j]);
            value_cmp((a.num, a.den), (b.num, b.den)).then(a.rested.cmp(&b.rested))
        });
        let done = |t: &MOrder| t.remaining == 0 || (t.buy_kind && t.bought >= t.target);
        // Every order looked at counts as a visit (crossing ones only: the first that does not
        // cross ends the matching).
        for (visits, i) in side.into_iter().enumerate() {
            if done(&t) || visits == MAX_VISITS as usize {
                break;
            }
            let m = self.orders[i].clone();
            // Crossing: maker.num × taker.num ≤ maker.den × taker.den.
            if m.num as u128 * t.num as u128 > m.den as u128 * t.den as u128 {
                break;
            }
            if m.owner == t.owner {
                bump(&SELF_SKIPS, 1);
                continue;
            }
            if !self.can_receive[m.owner] {
                bump(&PERMISSION_CANCELS, 1);
                self.cancel(i);
                continue;
            }
            let mut lots = (m.remaining / m.den).min(t.remaining / m.num);
            if t.buy_kind {
                lots = lots.min((t.target - t.bought) / m.den);
            }
            if lots == 0 {
                break;
            }
            let (gave, got) = (lots * m.den, lots * m.num);
            let m = &mut self.orders[i];
            let stop = m.remaining > gave;
            m.remaining -= gave;
            m.sold += gave;
            m.bought += got;
            m.fills += 1;
            if m.remaining == 0 {
                m.status = OrderStatus::Filled;
            }
            self.balances[m.owner][1 - m.sell] += got;
            t.remaining -= got;
            t.sold += got;
            t.bought += gave;
            t.fills += 1;
            self.trades.push(MTrade {
                maker: m.id,
                taker: t.id,
                maker_gave: gave,
                taker_gave: got,
            });
            // The maker is left with lots the taker cannot take: no worse maker may trade.
            if stop {
                break;
            }
        }
        let by_escrow = t.remaining / t.den;
        let lots = if t.buy_kind {
            by_escrow.min((t.target - t.bought) / t.num)
        } else {
            by_escrow
        };
        let refund = t.remaining - lots * t.den;
        t.refunded += refund;
        t.remaining -= refund;
        self.balances[t.owner][1 - t.sell] += t.bought;
        self.balances[t.owner][t.sell] += refund;
        if t.remaining == 0 {
            t.status = OrderStatus::Filled;
        } else {
            t.rested = self.clock;
            self.clock += 1;
        }
        self.orders.push(t);
    }
}

// ------------------------------------------------------------------------------ the generator

#[derive(Clone, Debug)]
enum Action {
    Place {
        owner: usize,
        sell: usize,
        lots: u64,
        extra: u64,
        num: u64,
        den: u64,
        buy_kind: bool,
    },
    Cancel(Index),
    /// The admin flips an owner's `receive`.
    FlipReceive(usize),
}

fn action() -> impl Strategy<Value = Action> {
    prop_oneof![
        10 => (0..OWNERS, 0..2usize, 1..=40u64, 0..12u64, 1..=12u64, 1..=12u64, any::<bool>())
            .prop_map(|(owner, sell, lots, extra, num, den, buy_kind)| Action::Place {
                owner, sell, lots, extra, num, den, buy_kind
            }),
        2 => any::<Index>().prop_map(Action::Cancel),
        1 => (0..OWNERS).prop_map(Action::FlipReceive),
    ]
}

fn plan() -> impl Strategy<Value = Vec<Vec<Action>>> {
    prop::collection::vec(prop::collection::vec(action(), 1..16), 2..9)
}

struct World {
    t: TestChain,
    assets: [AssetId; 2],
    model: Model,
}

static ORDERS_PLACED: AtomicUsize = AtomicUsize::new(0);
static TRADES: AtomicUsize = AtomicUsize::new(0);
static CANCELS: AtomicUsize = AtomicUsize::new(0);
static PERMISSION_CANCELS: AtomicUsize = AtomicUsize::new(0);
static SELF_SKIPS: AtomicUsize = AtomicUsize::new(0);

fn bump(counter: &AtomicUsize, by: usize) {
    counter.fetch_add(by, Ordering::Relaxed);
}

impl World {
    fn setup() -> World {
        let mut t = TestChain::new();
        let admin = t.admin.clone();
        for k in owner_keys() {
            let g = t.grant(&admin, k.address(), &csr());
            t.mine(vec![g]).unwrap();
        }
        for name in ["a", "b"] {
            let issue = t.issue(&admin, admin.address(), name, true, 1, 1_000_000, &[]);
            t.mine(vec![issue]).unwrap();
        }
        let assets = [t.asset_id("a"), t.asset_id("b")];
        let mut model = Model {
            can_receive: [true; OWNERS],
            ..Model::default()
        };
        for (i, k) in owner_keys().iter().enumerate() {
            for (n, asset) in assets.iter().enumerate() {
                for _ in 0..2 {
                    let pay = t.transfer(&admin, k.address(), *asset, 2000);
                    t.mine(vec![pay]).unwrap();
                    model.balances[i][n] += 2000;
                }
            }
        }
        World { t, assets, model }
    }
}

impl Clone for World {
    fn clone(&self) -> World {
        World {
            t: TestChain {
                chain: self.t.chain.clone(),
                state: self.t.state.clone(),
                admin: self.t.admin.clone(),
                genesis: self.t.genesis.clone(),
                next_time_ms: self.t.next_time_ms,
            },
            assets: self.assets,
            model: self.model.clone(),
        }
    }
}

impl World {
    fn order(&self, id: &OrderId) -> OrderRecord {
        read::order(&self.t.state, id).unwrap().unwrap()
    }

    /// One block of `actions`; returns an error message on the first broken property.
    fn step(&mut self, actions: &[Action]) -> Result<(), String> {
        let height = self.t.next_height();
        let mut pending = self.t.state.clone();
        let mut model = self.model.clone();
        let mut txs = Vec::new();
        // The refund a cancel must pay: exactly the order's remaining quantity before it.
        let mut refund: Option<(OutPoint, Output)> = None;
        for action in actions {
            let (tx, note) = match action {
                Action::Place {
                    owner,
                    sell,
                    lots,
                    extra,
                    num,
                    den,
                    buy_kind,
                } => {
                    if !model.can_receive[*owner] {
                        continue;
                    }
                    let g = gcd(*num, *den);
                    let (rn, rd) = (num / g, den / g);
                    let quantity = lots * rd + extra % rd;
                    if model.balances[*owner][*sell] < quantity {
                        continue;
                    }
                    let kind = if *buy_kind {
                        OrderKind::Buy
                    } else {
                        OrderKind::Sell
                    };
                    let op = Op::PlaceOrder(PlaceOrder {
                        sell: self.assets[*sell],
                        quantity: amount(quantity),
                        buy: self.assets[1 - *sell],
                        price: Price::new(*num, *den),
                        kind,
                    });
                    let from = &owner_keys()[*owner];
                    let Some(tx) = build_on(
                        &self.t,
                        &pending,
                        from,
                        Some((self.assets[*sell], quantity)),
                        vec![],
                        vec![op],
                    ) else {
                        return Err(format!("owner {owner} cannot pay {quantity}"));
                    };
                    let order = MOrder {
                        id: tx.txid(),
                        owner: *owner,
                        sell: *sell,
                        num: rn,
                        den: rd,
                        buy_kind: *buy_kind,
                        target: if *buy_kind { quantity * rn / rd } else { 0 },
                        quantity,
                        remaining: quantity,
                        sold: 0,
                        bought: 0,
                        refunded: 0,
                        fills: 0,
                        status: OrderStatus::Open,
                        rested: 0,
                    };
                    model.place(order);
                    bump(&ORDERS_PLACED, 1);
                    (tx, "place")
                }
                Action::Cancel(pick) => {
                    let open: Vec<usize> = (0..model.orders.len())
                        .filter(|&i| {
                            let o = &model.orders[i];
                            o.status == OrderStatus::Open && model.can_receive[o.owner]
                        })
                        .collect();
                    if open.is_empty() {
                        continue;
                    }
                    let i = open[pick.index(open.len())];
                    let o = model.orders[i].clone();
                    // Someone else may not cancel it.
                    let thief = &owner_keys()[(o.owner + 1) % OWNERS];
                    if let Some(theft) = build_on(
                        &self.t,
                        &pending,
                        thief,
                        None,
                        vec![],
                        vec![Op::CancelOrder { order: o.id }],
                    ) {
                        let mut scratch = pending.clone();
                        match apply_pending(&self.t, &mut scratch, height, &theft) {
                            Err(TxError::NotOrderOwner { .. })
                            | Err(TxError::NoReceivePermission { .. }) => {}
                            other => return Err(format!("a stranger's cancel gave {other:?}")),
                        }
                    }
                    let from = &owner_keys()[o.owner];
                    let Some(tx) = build_on(
                        &self.t,
                        &pending,
                        from,
                        None,
                        vec![],
                        vec![Op::CancelOrder { order: o.id }],
                    ) else {
                        continue;
                    };
                    let sell_asset = self.assets[o.sell];
                    let recorded = read::order(&pending, &o.id).unwrap().unwrap();
                    if recorded.remaining.raw() != o.remaining {
                        return Err(format!("before cancel: {recorded:?} vs model {o:?}"));
                    }
                    refund = Some((
                        OutPoint {
                            txid: settlement_txid(&tx.txid()),
                            vout: 1,
                        },
                        Output::new(from.address(), [(sell_asset, amount(o.remaining))]),
                    ));
                    model.cancel(i);
                    bump(&CANCELS, 1);
                    (tx, "cancel")
                }
                Action::FlipReceive(owner) => {
                    let who = owner_keys()[*owner].address();
                    let admin = self.t.admin.clone();
                    let op = if model.can_receive[*owner] {
                        Op::Revoke {
                            vout: 0,
                            permissions: vec![receive()],
                        }
                    } else {
                        Op::Grant {
                            vout: 0,
                            permissions: vec![receive()],
                            start: 0,
                            end: wattle_ledger::permissions::NO_END,
                        }
                    };
                    let Some(tx) = build_on(
                        &self.t,
                        &pending,
                        &admin,
                        None,
                        vec![Output::new(who, [])],
                        vec![op],
                    ) else {
                        return Err("the admin has no coin".into());
                    };
                    model.can_receive[*owner] = !model.can_receive[*owner];
                    (tx, "permission")
                }
            };
            apply_pending(&self.t, &mut pending, height, &tx)
                .map_err(|e| format!("{note} transaction refused: {e}"))?;
            if let Some((outpoint, expected)) = refund.take() {
                let paid = read::utxo(&pending, &outpoint).unwrap().map(|u| u.output);
                if paid != Some(expected.clone()) {
                    return Err(format!("cancel refund {paid:?}, expected {expected:?}"));
                }
            }
            txs.push(tx);
        }
        if txs.is_empty() {
            return Ok(());
        }
        let before = self.t.state.clone();
        let changes = self
            .t
            .mine(txs)
            .map_err(|e| format!("block refused: {e}"))?;
        bump(&TRADES, model.trades.len() - self.model.trades.len());
        self.model = model;

        // apply_block = the transactions one by one.
        let strip = |v: &MemoryView| {
            let mut m = v.map.clone();
            m.retain(|k, _| !matches!(k, StateKey::Tip | StateKey::LastSigned(_)));
            m
        };
        if strip(&self.t.state) != strip(&pending) {
            return Err("apply_block differs from applying the transactions one by one".into());
        }
        // Undo.
        let mut s = self.t.state.clone();
        s.apply(&changes.inverse()).map_err(|e| e.to_string())?;
        if s != before || s.state_hash() != before.state_hash() {
            return Err("the inverse changeset does not restore the state".into());
        }
        s.apply(&changes).map_err(|e| e.to_string())?;
        if s != self.t.state {
            return Err("re-applying the changeset does not give the state".into());
        }
        self.check()
    }

    fn check(&self) -> Result<(), String> {
        let state = &self.t.state;
        // Orders and trades equal the model's.
        for m in &self.model.orders {
            let o = self.order(&m.id);
            let got = (
                o.remaining.raw(),
                o.sold.raw(),
                o.bought.raw(),
                o.refunded.raw(),
                o.fills,
                o.status,
                o.target.raw(),
            );
            let want = (
                m.remaining,
                m.sold,
                m.bought,
                m.refunded,
                m.fills,
                m.status,
                m.target,
            );
            if got != want {
                return Err(format!("order {}: ledger {got:?}, model {want:?}", m.id));
            }
            if o.quantity.raw() != o.remaining.raw() + o.sold.raw() + o.refunded.raw() {
                return Err(format!("order accounting broken: {o:?}"));
            }
            if o.kind == OrderKind::Buy
                && o.status == OrderStatus::Filled
                && o.target.raw() - o.bought.raw() >= o.price.num
            {
                return Err(format!("a filled buy order is a lot or more short: {o:?}"));
            }
        }
        let [a, b] = self.assets;
        let mut trades = orderbook::recent_trades(state, &a, &b, usize::MAX).unwrap();
        trades.reverse();
        let got: Vec<MTrade> = trades
            .iter()
            .map(|t| MTrade {
                maker: t.maker,
                taker: t.taker,
                maker_gave: t.maker_gave.raw(),
                taker_gave: t.taker_gave.raw(),
            })
            .collect();
        if got != self.model.trades {
            return Err(format!(
                "trades differ:\nledger {got:?}\nmodel  {:?}",
                self.model.trades
            ));
        }
        // Limits and self-trade, from the records alone.
        for t in &trades {
            let maker = self.order(&t.maker);
            let taker = self.order(&t.taker);
            let (gave, got) = (t.maker_gave.raw() as u128, t.taker_gave.raw() as u128);
            if gave * maker.price.num as u128 != got * maker.price.den as u128
                || t.price != maker.price
            {
                return Err(format!("trade not at the maker's price: {t:?}"));
            }
            if gave * (taker.price.den as u128) < got * (taker.price.num as u128) {
                return Err(format!("trade worse than the taker's limit: {t:?}"));
            }
            if t.maker_owner == t.taker_owner || maker.owner == taker.owner {
                return Err(format!("self-trade: {t:?}"));
            }
            if t.index as usize >= trades.len() || trades[t.index as usize] != *t {
                return Err(format!("trade index wrong: {t:?}"));
            }
        }
        // Balances and conservation.
        let mut held = [[0u64; 2]; OWNERS];
        let mut total = [0u128; 2];
        for (k, v) in &state.map {
            match (k, v) {
                (StateKey::Utxo(_), StateValue::Utxo(u)) => {
                    for (n, asset) in self.assets.iter().enumerate() {
                        let q = u.output.amount_of(asset).raw();
                        total[n] += q as u128;
                        if let Some(i) = owner_of(&u.output.address) {
                            held[i][n] += q;
                        }
                    }
                }
                (StateKey::Order(_), StateValue::Order(o)) if o.status == OrderStatus::Open => {
                    let n = self.assets.iter().position(|x| *x == o.sell).unwrap();
                    total[n] += o.remaining.raw() as u128;
                }
                _ => {}
            }
        }
        if held != self.model.balances {
            return Err(format!(
                "balances: ledger {held:?}, model {:?}",
                self.model.balances
            ));
        }
        for (n, asset) in self.assets.iter().enumerate() {
            let issued = read::asset(state, asset).unwrap().unwrap().total.raw() as u128;
            if total[n] != issued {
                return Err(format!(
                    "asset {n}: {} held + escrowed, {issued} issued",
                    total[n]
                ));
            }
        }
        // The book's structure, both sides.
        let mut in_book = BTreeSet::new();
        for (sell, buy) in [(a, b), (b, a)] {
            let levels = read::book(state, &sell, &buy).unwrap().unwrap_or_default();
            if levels
                .windows(2)
                .any(|w| w[0].cmp_value(w[1]) != std::cmp::Ordering::Less)
            {
                return Err(format!("levels not strictly sorted: {levels:?}"));
            }
            for price in &levels {
                let level = read::level(state, &sell, &buy, price)
                    .unwrap()
                    .ok_or("level missing")?;
                let mut cursor = Some(level.head);
                let mut prev = None;
                let (mut count, mut quantity) = (0u32, 0u64);
                while let Some(id) = cursor {
                    let o = self.order(&id);
                    if o.prev != prev
                        || o.status != OrderStatus::Open
                        || o.price != *price
                        || (o.sell, o.buy) != (sell, buy)
                        || o.remaining.is_zero()
                        || !o.remaining.raw().is_multiple_of(price.den)
                    {
                        return Err(format!("bad order in level {price:?}: {o:?}"));
                    }
                    if !in_book.insert(id) {
                        return Err(format!("order {id} listed twice"));
                    }
                    count += 1;
                    quantity += o.remaining.raw();
                    prev = Some(id);
                    cursor = o.next;
                }
                if prev != Some(level.tail)
                    || count != level.orders
                    || quantity != level.quantity.raw()
                {
                    return Err(format!("level {price:?} totals or tail wrong: {level:?}"));
                }
            }
            // The depth helper reports the same levels, and the side in priority order.
            let side = orderbook::side_orders(state, &sell, &buy).unwrap();
            let mut model_side: Vec<&MOrder> = self
                .model
                .orders
                .iter()
                .filter(|o| o.status == OrderStatus::Open && self.assets[o.sell] == sell)
                .collect();
            model_side.sort_by(|x, y| {
                value_cmp((x.num, x.den), (y.num, y.den)).then(x.rested.cmp(&y.rested))
            });
            if side.iter().map(|o| o.id).collect::<Vec<_>>()
                != model_side.iter().map(|o| o.id).collect::<Vec<_>>()
            {
                return Err("side order differs from the model's priority".into());
            }
        }
        let open: BTreeSet<OrderId> = self
            .model
            .orders
            .iter()
            .filter(|o| o.status == OrderStatus::Open)
            .map(|o| o.id)
            .collect();
        if open != in_book {
            return Err("open orders and the book differ".into());
        }
        let depth = orderbook::depth(state, &a, &b, usize::MAX).unwrap();
        let asks: u64 = depth.asks.iter().map(|l| l.quantity.raw()).sum();
        let model_asks: u64 = self
            .model
            .orders
            .iter()
            .filter(|o| o.status == OrderStatus::Open && o.sell == 0)
            .map(|o| o.remaining)
            .sum();
        if asks != model_asks {
            return Err(format!("depth {asks} vs model {model_asks}"));
        }
        // Listing by owner and status.
        for owner in 0..OWNERS {
            let filter = OrderFilter {
                owner: Some(owner_keys()[owner].address()),
                status: Some(OrderStatus::Open),
                ..OrderFilter::default()
            };
            let listed: Vec<OrderId> = orderbook::list_orders(state, &filter)
                .unwrap()
                .iter()
                .map(|o| o.id)
                .collect();
            let want: Vec<OrderId> = self
                .model
                .orders
                .iter()
                .filter(|o| o.owner == owner && o.status == OrderStatus::Open)
                .map(|o| o.id)
                .collect();
            if listed != want {
                return Err(format!("list_orders of owner {owner} differs"));
            }
        }
        Ok(())
    }
}

fn base() -> World {
    static BASE: OnceLock<World> = OnceLock::new();
    BASE.get_or_init(World::setup).clone()
}

#[test]
fn random_order_streams_keep_conservation_priority_limits_and_undo() {
    let started = Instant::now();
    let config = Config {
        source_file: Some(file!()),
        failure_persistence: Some(Box::new(FileFailurePersistence::WithSource(
            "proptest-regressions",
        ))),
        // 96 cases by default (a few seconds in debug); PROPTEST_CASES=2000 for a longer soak.
        ..Config::with_cases(
            std::env::var("PROPTEST_CASES")
                .ok()
                .and_then(|v| v.parse().ok())
                .unwrap_or(96),
        )
    };
    let mut runner = TestRunner::new(config);
    let result = runner.run(&plan(), |blocks| {
        let mut w = base();
        w.check().map_err(TestCaseError::fail)?;
        for actions in &blocks {
            w.step(actions).map_err(TestCaseError::fail)?;
        }
        Ok(())
    });
    if let Err(e) = result {
        panic!("{e}");
    }
    let get = |c: &AtomicUsize| c.load(Ordering::Relaxed);
    eprintln!(
        "orderbook properties: {} orders, {} trades, {} cancels, {} cancelled for lost receive, \
         {} own orders passed over, in {:?}",
        get(&ORDERS_PLACED),
        get(&TRADES),
        get(&CANCELS),
        get(&PERMISSION_CANCELS),
        get(&SELF_SKIPS),
        started.elapsed()
    );
    assert!(get(&TRADES) > 0 && get(&CANCELS) > 0);
    assert!(get(&PERMISSION_CANCELS) > 0 && get(&SELF_SKIPS) > 0);
}
