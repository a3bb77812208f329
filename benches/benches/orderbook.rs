//! `orderbook/*`: matching throughput through block application (issue 8). Each benchmark applies
//! one block of 1,000 order transactions with `apply_block` to the same in-memory pre-state, a book
//! of 4,000 resting sell orders over 8 price levels (`fixtures::OrderBook`):
//! - `crossing`: buys that each fill against 4 or 5 makers, the last one partially;
//! - `resting`: buys below every ask, which only come to rest (10 new bid levels);
//! - `cancels`: cancellations of resting orders from the middle of their levels.
//!
//! `apply_block/*` verifies every signature (`NoCache`), like `ledger/apply_block`;
//! `apply_block_sigs_cached/*` passes every txid as already verified, as a node does for the
//! transactions it checked when they entered its mempool, so what is left is the ledger's work.
//! Throughput is in orders (`Throughput::Elements(1000)`); fills per second are orders per
//! second × `BOOK_FILLS_PER_BLOCK` / 1,000, checked below.
//!
//! The setup asserts that every block is valid and does what it is meant to: the crossing block
//! makes exactly the fills of a model of price-time priority and fills every buy; the resting
//! block makes no fill and rests every buy; the cancellations close exactly their orders. So the
//! benchmark cannot silently measure rejected blocks or orders that do nothing.

use criterion::{BenchmarkId, Criterion, SamplingMode, Throughput};
use std::collections::HashSet;
use std::hint::black_box;
use std::time::Duration;
use wattle_benches::fixtures::{
    BOOK_ASK_LEVELS, BOOK_BLOCK_ORDERS, BOOK_MAKERS, BOOK_TAKER_WANTS, OrderBook,
};
use wattle_ledger::block::Block;
use wattle_ledger::orderbook::{self, OrderStatus};
use wattle_ledger::state::read;
use wattle_ledger::{MemoryView, NoCache, Txid, apply_block};

/// Fills the crossing block makes: 1,000 buys of 17 base take 3,400 makers of 5 whole, and
/// split one maker at each of the 800 boundaries between buys that are not a multiple of 5.
const BOOK_FILLS_PER_BLOCK: u64 = 4_200;

/// The state after `block`, which must be valid.
fn after(book: &OrderBook, block: &Block, what: &str) -> MemoryView {
    let chain = &book.chain;
    let changes = apply_block(&chain.state, block, &chain.chain, &NoCache)
        .unwrap_or_else(|e| panic!("the {what} block is valid: {e:?}"));
    eprintln!(
        "orderbook: the {what} block writes {} state keys",
        changes.len()
    );
    let mut state = chain.state.clone();
    state.apply(&changes).expect("the changes apply");
    state
}

fn trades(book: &OrderBook, state: &MemoryView) -> u64 {
    let (lo, hi) = orderbook::market(book.base, book.quote);
    read::trade_log_len(state, &lo, &hi)
        .expect("state reads")
        .unwrap_or(0)
}

/// (levels, orders) of each side: asks (selling base), bids (selling quote).
fn sides(book: &OrderBook, state: &MemoryView) -> ((usize, u32), (usize, u32)) {
    let d = orderbook::depth(state, &book.base, &book.quote, 100).expect("state reads");
    let count = |side: &[orderbook::LevelDepth]| (side.len(), side.iter().map(|l| l.orders).sum());
    (count(&d.asks), count(&d.bids))
}

fn status(state: &MemoryView, id: &Txid) -> orderbook::OrderRecord {
    read::order(state, id)
        .expect("state reads")
        .expect("the order exists")
}

/// The checks described in the module doc.
fn check(book: &OrderBook) {
    let pre = &book.chain.state;
    let makers = BOOK_MAKERS as u32;
    assert_eq!(
        sides(book, pre),
        ((BOOK_ASK_LEVELS as usize, makers), (0, 0)),
        "the pre-state rests every maker"
    );
    assert_eq!(trades(book, pre), 0);

    let s = after(book, &book.crossing, "crossing");
    assert_eq!(book.crossing_fills, BOOK_FILLS_PER_BLOCK);
    assert_eq!(
        trades(book, &s),
        BOOK_FILLS_PER_BLOCK,
        "the crossing block makes the model's fills"
    );
    for tx in &book.crossing.txs {
        let o = status(&s, &tx.txid());
        assert_eq!(o.status, OrderStatus::Filled);
        assert_eq!(o.bought.raw(), BOOK_TAKER_WANTS);
    }
    let taken = (BOOK_BLOCK_ORDERS as u64 * BOOK_TAKER_WANTS).div_ceil(5) as u32;
    let ((_, asks), (_, bids)) = sides(book, &s);
    assert_eq!(
        (asks, bids),
        (makers - taken, 0),
        "the makers taken are gone"
    );

    let s = after(book, &book.resting, "resting");
    assert_eq!(trades(book, &s), 0, "the resting block makes no fill");
    assert_eq!(
        sides(book, &s),
        (
            (BOOK_ASK_LEVELS as usize, makers),
            (10, BOOK_BLOCK_ORDERS as u32)
        ),
        "every buy rests, in 10 levels"
    );
    for tx in &book.resting.txs {
        assert_eq!(status(&s, &tx.txid()).status, OrderStatus::Open);
    }

    let s = after(book, &book.cancels, "cancels");
    let ((_, asks), _) = sides(book, &s);
    assert_eq!(
        asks,
        makers - BOOK_BLOCK_ORDERS as u32,
        "one order closed per cancellation"
    );
    for (j, id) in book.makers.iter().enumerate() {
        let want = if j % 4 == 1 {
            OrderStatus::Cancelled
        } else {
            OrderStatus::Open
        };
        assert_eq!(status(&s, id).status, want);
    }
}

pub fn bench(c: &mut Criterion) {
    let book = OrderBook::new();
    check(&book);
    let chain = &book.chain;
    let mut group = c.benchmark_group("orderbook");
    group.throughput(Throughput::Elements(BOOK_BLOCK_ORDERS as u64));
    group.sample_size(20);
    group.sampling_mode(SamplingMode::Flat);
    group.measurement_time(Duration::from_secs(5));
    let blocks = [
        ("crossing", &book.crossing),
        ("resting", &book.resting),
        ("cancels", &book.cancels),
    ];
    for (name, block) in blocks {
        group.bench_function(BenchmarkId::new("apply_block", name), |b| {
            b.iter(|| {
                apply_block(
                    black_box(&chain.state),
                    black_box(block),
                    &chain.chain,
                    &NoCache,
                )
            })
        });
    }
    for (name, block) in blocks {
        let verified: HashSet<Txid> = block.txs.iter().map(|tx| tx.txid()).collect();
        group.bench_function(BenchmarkId::new("apply_block_sigs_cached", name), |b| {
            b.iter(|| {
                apply_block(
                    black_box(&chain.state),
                    black_box(block),
                    &chain.chain,
                    &verified,
                )
            })
        });
    }
    group.finish();
}
