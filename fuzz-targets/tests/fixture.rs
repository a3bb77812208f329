//! The fixture chain and the order-book seeds are what their documentation says, so that the
//! fuzzers start from inputs that reach matching, resting, self-trade skips, cancellations and
//! makers that lost a permission.

use wattle_fuzz_targets::ledger::memory_chain;
use wattle_fuzz_targets::seeds::{order_blocks, order_txs};
use wattle_ledger::apply::{NoCache, apply_block};
use wattle_ledger::orderbook::{self, OrderStatus};
use wattle_ledger::state::LedgerView;
use wattle_ledger::state::read;
use wattle_ledger::validate::{self, TxContext};

fn status(state: &(impl LedgerView + ?Sized), i: usize) -> (OrderStatus, u32) {
    let (_, info) = memory_chain();
    let r = read::order(state, &info.orders[i])
        .expect("reads")
        .expect("the order exists");
    (r.status, r.fills)
}

/// The fixture chain's state after `block`.
fn applied(block: &wattle_ledger::Block) -> wattle_ledger::testkit::TestChain {
    let (mut tc, _, _) = wattle_fuzz_targets::fixture::build_chain();
    tc.commit(block).expect("applies");
    tc
}

#[test]
fn the_fixture_book_is_as_documented() {
    let (tc, info) = memory_chain();
    use OrderStatus::*;
    let expected = [
        (Open, 0),
        (Open, 0),
        (Open, 0),
        (Open, 1),
        (Open, 0),
        (Filled, 1),
        (Cancelled, 0),
    ];
    assert_eq!(info.orders.len(), expected.len());
    for (i, e) in expected.iter().enumerate() {
        assert_eq!(status(&tc.state, i), *e, "order {i}");
    }
    let energy = tc.asset_id("energy");
    let ecoin = tc.asset_id("ecoin");
    assert_eq!(
        orderbook::side_orders(&tc.state, &energy, &ecoin)
            .unwrap()
            .len(),
        3
    );
    assert_eq!(
        orderbook::side_orders(&tc.state, &ecoin, &energy)
            .unwrap()
            .len(),
        2
    );
}

#[test]
fn order_seeds_are_valid_or_invalid_as_documented() {
    let (tc, _) = memory_chain();
    let ctx = TxContext {
        chain: &tc.chain,
        height: tc.next_height(),
        offset: 0,
        signatures_checked: false,
    };
    let txs = order_txs();
    for (i, tx) in txs.iter().enumerate() {
        let verdict = validate::validate_tx(&tc.state, tx, &ctx);
        // The last three: less than one lot, a cancelled order, another owner's orders.
        assert_eq!(
            verdict.is_ok(),
            i < txs.len() - 3,
            "order tx {i}: {verdict:?}"
        );
    }
    for (i, block) in order_blocks().iter().enumerate() {
        apply_block(&tc.state, block, &tc.chain, &NoCache)
            .unwrap_or_else(|e| panic!("order block {i}: {e:?}"));
    }
}

#[test]
fn the_sweep_skips_its_own_order_and_cancels_a_maker_without_receive() {
    let (_, info) = memory_chain();
    let blocks = order_blocks();
    // [sweep]: key(1)'s and key(3)'s asks filled, key(2)'s own ask at 6 untouched.
    let after = applied(&blocks[2]);
    assert_eq!(status(&after.state, 0).0, OrderStatus::Filled);
    assert_eq!(status(&after.state, 1).0, OrderStatus::Filled);
    assert_eq!(status(&after.state, 2), (OrderStatus::Open, 0));
    let sweep = read::order(&after.state, &info.sweep.txid())
        .unwrap()
        .unwrap();
    assert_eq!(sweep.status, OrderStatus::Open, "rests after the skip");
    assert_eq!(sweep.fills, 2);
    // [revoke, sweep]: key(3)'s ask is cancelled by the matching instead.
    let after = applied(&blocks[3]);
    assert_eq!(status(&after.state, 1), (OrderStatus::Cancelled, 0));
}
