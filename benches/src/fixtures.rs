//! Ledger fixtures shared by the benchmarks: a chain on which many addresses each own one coin of
//! an asset, so that as many independent signed transfers fit in one block (`FundedChain`), and
//! an order book with blocks of orders to match against it (`OrderBook`).

use wattle_ledger::block::Block;
use wattle_ledger::orderbook::{OrderId, OrderKind, PlaceOrder, Price};
use wattle_ledger::permissions::{GlobalPerm, NO_END, Permission};
use wattle_ledger::sighash;
use wattle_ledger::testkit::{TestChain, key, unsigned_input};
use wattle_ledger::tx::{IssueAsset, NEW_ASSET, Op, OutPoint, Output, TX_VERSION, Transaction};
use wattle_ledger::{Address, Amount, AssetId, SecretKey};

/// Raw units of the asset each holder starts with.
pub const COIN: u64 = 1_000;

/// One holder: its key, its zero-value grant coin and its coin of the asset.
pub struct Holder {
    pub key: SecretKey,
    pub grant_coin: OutPoint,
    pub asset_coin: OutPoint,
}

/// A chain (genesis, one block granting connect/send/receive to every holder, one block issuing
/// the asset with one output per holder) and its holders.
pub struct FundedChain {
    pub chain: TestChain,
    pub asset: AssetId,
    pub holders: Vec<Holder>,
}

impl FundedChain {
    /// `count` holders, `key(1)` to `key(count)`.
    pub fn new(count: u32) -> FundedChain {
        let mut chain = TestChain::new();
        let admin = chain.admin.clone();
        let keys: Vec<SecretKey> = (1..=u64::from(count)).map(key).collect();

        let perms = [GlobalPerm::Connect, GlobalPerm::Send, GlobalPerm::Receive]
            .map(Permission::Global)
            .to_vec();
        let grant_outputs = keys.iter().map(|k| Output::new(k.address(), [])).collect();
        let grants = (0..count)
            .map(|vout| Op::Grant {
                vout,
                permissions: perms.clone(),
                start: 0,
                end: NO_END,
            })
            .collect();
        let grant = chain.build(&admin, grant_outputs, vec![], grants);
        let grant_txid = grant.txid();
        chain.mine(vec![grant]).expect("grant block is valid");

        let quantity = Amount::new(COIN * u64::from(count)).expect("supply in range");
        let coin = Amount::new(COIN).expect("coin in range");
        let issue_outputs = keys
            .iter()
            .map(|k| Output::new(k.address(), [(NEW_ASSET, coin)]))
            .collect();
        let op = Op::IssueAsset(IssueAsset {
            name: "bench".to_string(),
            open: true,
            multiple: 1,
            quantity,
            fields: Default::default(),
        });
        let issue = chain.build(&admin, issue_outputs, vec![], vec![op]);
        let asset = issue.txid();
        chain.mine(vec![issue]).expect("issue block is valid");

        let holders = keys
            .into_iter()
            .zip(0..)
            .map(|(key, vout)| Holder {
                key,
                grant_coin: OutPoint {
                    txid: grant_txid,
                    vout,
                },
                asset_coin: OutPoint { txid: asset, vout },
            })
            .collect();
        FundedChain {
            chain,
            asset,
            holders,
        }
    }

    /// A signed transfer of half of holder `from`'s coin to holder `to`, change back:
    /// one input, two outputs.
    pub fn transfer(&self, from: usize, to: usize) -> Transaction {
        self.signed(from, vec![self.holders[from].asset_coin], to)
    }

    /// Like `transfer`, but also spending the holder's zero-value grant coin: two inputs, two
    /// outputs.
    pub fn transfer_two_inputs(&self, from: usize, to: usize) -> Transaction {
        let h = &self.holders[from];
        self.signed(from, vec![h.grant_coin, h.asset_coin], to)
    }

    /// A block on the tip holding one transfer from every holder to the next one.
    pub fn transfers_block(&self) -> Block {
        let n = self.holders.len();
        let txs = (0..n).map(|i| self.transfer(i, (i + 1) % n)).collect();
        self.chain.block(txs)
    }

    fn signed(&self, from: usize, coins: Vec<OutPoint>, to: usize) -> Transaction {
        let half = Amount::new(COIN / 2).expect("in range");
        let from_key = &self.holders[from].key;
        let mut tx = Transaction {
            version: TX_VERSION,
            inputs: coins.into_iter().map(unsigned_input).collect(),
            outputs: vec![
                Output::new(self.holders[to].key.address(), [(self.asset, half)]),
                Output::new(from_key.address(), [(self.asset, half)]),
            ],
            ops: vec![],
        };
        let keys: Vec<&SecretKey> = tx.inputs.iter().map(|_| from_key).collect();
        sighash::sign_all(&mut tx, &keys, &self.chain.chain.id);
        tx
    }
}

/// Resting sell orders in the order-book fixture (`OrderBook`).
pub const BOOK_MAKERS: usize = 4_000;
/// The makers' price levels: asks at 100, 101, … quote per base (maker `j` at `100 + j % 8`).
pub const BOOK_ASK_LEVELS: u64 = 8;
/// Base units each maker sells.
pub const BOOK_MAKER_QTY: u64 = 5;
/// Orders in each of the fixture's blocks (crossing buys, resting buys, cancellations).
pub const BOOK_BLOCK_ORDERS: usize = 1_000;
/// Base units each crossing buy wants: it fills against 4 or 5 makers of 5.
pub const BOOK_TAKER_WANTS: u64 = 17;
/// The crossing buys' limit (quote per base): above every ask, so each buy fills completely and
/// is refunded what the better prices save.
pub const BOOK_TAKER_LIMIT: u64 = 110;
/// Base units each resting buy wants, at limits 90..=99 quote per base (below every ask).
pub const BOOK_RESTING_WANTS: u64 = 10;
/// Owners on each side (makers `key(1..=100)`, buyers `key(101..=200)`): orders of different
/// sides never share an owner, so no self-trade is skipped.
const BOOK_OWNERS: u64 = 100;

/// An order book on an in-memory chain, and three blocks on its tip, for `orderbook/*`.
///
/// The chain: genesis; connect/send/receive for the 200 owners; an asset `base` paid out as one
/// coin per maker order (plus one spare coin per cancellation); an asset `quote` paid out as one
/// coin per buy order; then [`BOOK_MAKERS`] sell orders of [`BOOK_MAKER_QTY`] base in blocks of
/// 1,000, spread over [`BOOK_ASK_LEVELS`] price levels. Every transaction has one input and one
/// output and is signed by hand (no coin selection), so setting it up takes about a second.
///
/// The blocks (each on the same tip, each [`BOOK_BLOCK_ORDERS`] transactions of one order op):
/// - `crossing`: buys of [`BOOK_TAKER_WANTS`] base at limit [`BOOK_TAKER_LIMIT`]; each takes
///   4 or 5 makers, best price first, partially filling the last;
/// - `resting`: buys at 90..=99 that cross nothing and come to rest in 10 bid levels;
/// - `cancels`: cancellations of every fourth maker (from the middle of their levels' lists).
pub struct OrderBook {
    pub chain: TestChain,
    pub base: AssetId,
    pub quote: AssetId,
    /// The resting makers' order ids, in placement order.
    pub makers: Vec<OrderId>,
    pub crossing: Block,
    pub resting: Block,
    pub cancels: Block,
    /// Fills the `crossing` block makes (counted by a model of price-time priority).
    pub crossing_fills: u64,
}

impl OrderBook {
    pub fn new() -> OrderBook {
        let mut chain = TestChain::new();
        let admin = chain.admin.clone();
        let maker_owner = |j: usize| key(1 + j as u64 % BOOK_OWNERS);
        let buyer_owner = |t: usize| key(1 + BOOK_OWNERS + t as u64 % BOOK_OWNERS);
        let owners: Vec<SecretKey> = (1..=2 * BOOK_OWNERS).map(key).collect();

        // Permissions.
        let perms = [GlobalPerm::Connect, GlobalPerm::Send, GlobalPerm::Receive]
            .map(Permission::Global)
            .to_vec();
        let grant_outputs = owners
            .iter()
            .map(|k| Output::new(k.address(), []))
            .collect();
        let grants = (0..owners.len() as u32)
            .map(|vout| Op::Grant {
                vout,
                permissions: perms.clone(),
                start: 0,
                end: NO_END,
            })
            .collect();
        let grant = chain.build(&admin, grant_outputs, vec![], grants);
        chain.mine(vec![grant]).expect("grant block is valid");

        // The two assets, one coin per order.
        let cancelled: Vec<usize> = (0..BOOK_MAKERS).filter(|j| j % 4 == 1).collect();
        assert_eq!(cancelled.len(), BOOK_BLOCK_ORDERS);
        let mut base_coins: Vec<(Address, u64)> = (0..BOOK_MAKERS)
            .map(|j| (maker_owner(j).address(), BOOK_MAKER_QTY))
            .collect();
        base_coins.extend(cancelled.iter().map(|&j| (maker_owner(j).address(), 1)));
        let resting_limit = |r: usize| 90 + r as u64 % 10;
        let mut quote_coins: Vec<(Address, u64)> = (0..BOOK_BLOCK_ORDERS)
            .map(|t| {
                let escrow = BOOK_TAKER_WANTS * BOOK_TAKER_LIMIT;
                (buyer_owner(t).address(), escrow)
            })
            .collect();
        quote_coins.extend((0..BOOK_BLOCK_ORDERS).map(|r| {
            let escrow = BOOK_RESTING_WANTS * resting_limit(r);
            (buyer_owner(r).address(), escrow)
        }));
        let base = issue_to(&mut chain, "base", &base_coins);
        let quote = issue_to(&mut chain, "quote", &quote_coins);

        // The resting sells, in blocks of 1,000.
        let sign = |chain: &TestChain, owner: &SecretKey, coin: OutPoint, out: Output, op: Op| {
            let mut tx = Transaction {
                version: TX_VERSION,
                inputs: vec![unsigned_input(coin)],
                outputs: vec![out],
                ops: vec![op],
            };
            sighash::sign_all(&mut tx, &[owner], &chain.chain.id);
            tx
        };
        let amount = |raw: u64| Amount::new(raw).expect("in range");
        let ask_price = |j: usize| Price::new(100 + j as u64 % BOOK_ASK_LEVELS, 1);
        let sells: Vec<Transaction> = (0..BOOK_MAKERS)
            .map(|j| {
                let owner = maker_owner(j);
                let op = Op::PlaceOrder(PlaceOrder {
                    sell: base,
                    quantity: amount(BOOK_MAKER_QTY),
                    buy: quote,
                    price: ask_price(j),
                    kind: OrderKind::Sell,
                });
                let coin = OutPoint {
                    txid: base,
                    vout: j as u32,
                };
                let out = Output::new(owner.address(), []);
                sign(&chain, &owner, coin, out, op)
            })
            .collect();
        let makers: Vec<OrderId> = sells.iter().map(Transaction::txid).collect();
        for block in sells.chunks(1000) {
            chain
                .mine(block.to_vec())
                .expect("the sell orders are valid");
        }

        let buy = |t: usize, wants: u64, limit: u64, vout: usize| {
            let owner = buyer_owner(t);
            let op = Op::PlaceOrder(PlaceOrder {
                sell: quote,
                quantity: amount(wants * limit),
                buy: base,
                price: Price::new(1, limit),
                kind: OrderKind::Buy,
            });
            let coin = OutPoint {
                txid: quote,
                vout: vout as u32,
            };
            sign(&chain, &owner, coin, Output::new(owner.address(), []), op)
        };
        let crossing = (0..BOOK_BLOCK_ORDERS)
            .map(|t| buy(t, BOOK_TAKER_WANTS, BOOK_TAKER_LIMIT, t))
            .collect();
        let resting = (0..BOOK_BLOCK_ORDERS)
            .map(|r| {
                buy(
                    r,
                    BOOK_RESTING_WANTS,
                    resting_limit(r),
                    BOOK_BLOCK_ORDERS + r,
                )
            })
            .collect();
        let cancels = cancelled
            .iter()
            .enumerate()
            .map(|(c, &j)| {
                let owner = maker_owner(j);
                let coin = OutPoint {
                    txid: base,
                    vout: (BOOK_MAKERS + c) as u32,
                };
                let out = Output::new(owner.address(), [(base, amount(1))]);
                let op = Op::CancelOrder { order: makers[j] };
                sign(&chain, &owner, coin, out, op)
            })
            .collect();

        OrderBook {
            crossing: chain.block(crossing),
            resting: chain.block(resting),
            cancels: chain.block(cancels),
            crossing_fills: model_fills(),
            chain,
            base,
            quote,
            makers,
        }
    }
}

impl Default for OrderBook {
    fn default() -> Self {
        OrderBook::new()
    }
}

/// Issues an asset of the admin's paying `coins` (address, raw units), one output each; the
/// asset id is the issuing txid and coin `i` its output `i`.
fn issue_to(chain: &mut TestChain, name: &str, coins: &[(Address, u64)]) -> AssetId {
    let admin = chain.admin.clone();
    let total = coins.iter().map(|(_, q)| q).sum();
    let outputs = coins
        .iter()
        .map(|(a, q)| Output::new(*a, [(NEW_ASSET, Amount::new(*q).expect("in range"))]))
        .collect();
    let op = Op::IssueAsset(IssueAsset {
        name: name.to_string(),
        open: false,
        multiple: 1,
        quantity: Amount::new(total).expect("supply in range"),
        fields: Default::default(),
    });
    let issue = chain.build(&admin, outputs, vec![], vec![op]);
    let asset = issue.txid();
    chain.mine(vec![issue]).expect("issue block is valid");
    asset
}

/// Fills the `crossing` block makes, by a model of the book: the makers in price-time order
/// (level by level, within a level in placement order), each buy taking them in turn.
fn model_fills() -> u64 {
    let mut queue: Vec<(u64, usize)> = (0..BOOK_MAKERS)
        .map(|j| (j as u64 % BOOK_ASK_LEVELS, j))
        .collect();
    queue.sort();
    let mut left: Vec<u64> = vec![BOOK_MAKER_QTY; queue.len()];
    let (mut at, mut fills) = (0usize, 0u64);
    for _ in 0..BOOK_BLOCK_ORDERS {
        let mut wants = BOOK_TAKER_WANTS;
        while wants > 0 {
            let take = wants.min(left[at]);
            left[at] -= take;
            wants -= take;
            fills += 1;
            if left[at] == 0 {
                at += 1;
            }
        }
    }
    fills
}
