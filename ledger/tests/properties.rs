//! Property tests over random sequences of valid and invalid transactions.
//!
//! Each case starts from a fixed setup (computed once and shared): the admin `key(0)` grants
//! connect/send/receive to `key(1..=3)`, issues two or three assets (`energy` and `ecoin`, open;
//! optionally `fixed`, closed), grants `energy.issue` to `key(1)` and pays every asset to
//! `key(1..=3)`. `key(4)` and `key(5)` start with nothing. Then a random sequence of blocks, each
//! holding a random subset of randomly generated transactions:
//! - transfers between random addresses with random amounts, some exceeding what the inputs hold,
//!   some sweeping extra coins;
//! - `issuemore` by holders and non-holders of `ASSET.issue`, of open and closed assets, some
//!   close to the 2^63 − 1 supply limit so that a second one overflows;
//! - grants and revokes of connect/send/receive and `ASSET.issue`, by the admin and by others;
//! - double spends: re-spending an outpoint spent in an earlier block, or one that an earlier
//!   transaction of the same block spends;
//! - thefts: spending another address's coin with one's own key.
//!
//! Transactions are built against the state the block would reach so far, so chains of spends
//! inside one block are common; leaving some out of the block (the random subset) breaks some of
//! those chains. An independent model of the rules that matter here (unspent inputs, owner key,
//! send/receive, conservation, zero-value outputs, issue and grant authority) predicts whether
//! each block is valid, and at which transaction it fails; `commit` must agree.
//!
//! Checked after every block:
//! - (a) supply: for every asset, the sum over all UTXOs equals `AssetInfo.total`, and that total
//!   moves only by issuance (it equals the model's running sum of issued quantities);
//! - (b) no double spend: a block spending an outpoint that an earlier block spent, or spending
//!   one outpoint twice, is rejected; every outpoint an accepted block spends was unspent (or
//!   created earlier in the same block), and no spent outpoint ever reappears in the UTXO set;
//! - (c) undo: applying an accepted block's changeset and then its `inverse()` restores exactly
//!   the previous `MemoryView` (equality and `state_hash`), and re-applying the changeset gives
//!   the new state again;
//! - (d) a rejected block leaves the state byte-identical (same map, same encoding, same
//!   `state_hash`, same next timestamp);
//! - the UTXO set, asset totals and permissions equal the model's.

use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::{Config, FileFailurePersistence, TestCaseError, TestRunner};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::Instant;
use wattle_ledger::amount::MAX_AMOUNT;
use wattle_ledger::codec;
use wattle_ledger::permissions::{AssetPerm, GlobalPerm, NO_END, Permission};
use wattle_ledger::sighash;
use wattle_ledger::state::{MemoryView, StateKey, StateValue};
use wattle_ledger::testkit::{TestChain, key, unsigned_input};
use wattle_ledger::tx::{
    AssetId, IssueAsset, NEW_ASSET, Op, OutPoint, Output, TX_VERSION, Transaction,
};
use wattle_ledger::{Address, Amount, BlockError, SecretKey, validate};

/// key(0) is the admin; key(1..POPULATION) are the others.
const POPULATION: usize = 6;

fn keys() -> &'static [SecretKey] {
    static KEYS: OnceLock<Vec<SecretKey>> = OnceLock::new();
    KEYS.get_or_init(|| (0..POPULATION as u64).map(key).collect())
}

fn addr(i: usize) -> Address {
    keys()[i].address()
}

fn key_index(address: &Address) -> usize {
    (0..POPULATION)
        .find(|&i| addr(i) == *address)
        .expect("every coin belongs to the population")
}

fn amount(raw: u64) -> Amount {
    Amount::new(raw).expect("test amounts are in range")
}

// ------------------------------------------------------------------------------------ the model

/// What the rules exercised here depend on, kept independently of the ledger's state.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct Model {
    utxos: BTreeMap<OutPoint, Output>,
    /// Permissions held (every grant here is for `[0, NO_END)`; a revoke removes).
    perms: BTreeSet<(Address, Permission)>,
    assets: BTreeMap<AssetId, ModelAsset>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct ModelAsset {
    name: String,
    open: bool,
    total: u64,
}

fn signers(tx: &Transaction) -> Vec<Address> {
    let mut out: Vec<Address> = Vec::new();
    for input in &tx.inputs {
        let a = input.pubkey.address();
        if !out.contains(&a) {
            out.push(a);
        }
    }
    out
}

fn add(sums: &mut BTreeMap<AssetId, u128>, id: AssetId, qty: u64) {
    *sums.entry(id).or_default() += u128::from(qty);
}

impl Model {
    fn holds(&self, a: Address, p: Permission) -> bool {
        self.perms.contains(&(a, p))
    }

    fn any_holds(&self, who: &[Address], p: Permission) -> bool {
        who.iter().any(|a| self.holds(*a, p))
    }

    fn coins_of(&self, a: Address) -> Vec<(OutPoint, Output)> {
        self.utxos
            .iter()
            .filter(|(_, o)| o.address == a)
            .map(|(op, o)| (*op, o.clone()))
            .collect()
    }

    /// Whether `tx` is valid on this state; the reason if not. Every transaction built here is
    /// signed `ALL` by the owner of each input it claims, so T1–T9 hold by construction.
    fn check(&self, tx: &Transaction) -> Result<(), String> {
        if tx.inputs.is_empty() || tx.outputs.is_empty() {
            return Err("no inputs or no outputs".into());
        }
        let mut seen = BTreeSet::new();
        let mut ins: BTreeMap<AssetId, u128> = BTreeMap::new();
        let mut input_addresses = BTreeSet::new();
        for input in &tx.inputs {
            if !seen.insert(input.prev) {
                return Err("outpoint spent twice by one transaction".into());
            }
            let coin = self
                .utxos
                .get(&input.prev)
                .ok_or_else(|| format!("missing input: {:?}", input.prev))?;
            if input.pubkey.address() != coin.address {
                return Err("input signed by a key that does not own the coin".into());
            }
            if !self.holds(coin.address, Permission::Global(GlobalPerm::Send)) {
                return Err("input address lacks send".into());
            }
            for (id, q) in &coin.assets {
                add(&mut ins, *id, q.raw());
            }
            input_addresses.insert(coin.address);
        }
        let signers = signers(tx);
        let issues: Vec<&Op> = tx.ops.iter().filter(|op| op.is_issue()).collect();
        if issues.len() > 1 {
            return Err("two issue ops".into());
        }
        match issues.first() {
            Some(Op::IssueAsset(issue)) => {
                if !self.any_holds(&signers, Permission::Global(GlobalPerm::Issue)) {
                    return Err("issuer lacks issue".into());
                }
                let lower = issue.name.to_lowercase();
                if self.assets.values().any(|a| a.name.to_lowercase() == lower) {
                    return Err("asset name taken".into());
                }
                add(&mut ins, NEW_ASSET, issue.quantity.raw());
            }
            Some(Op::IssueMore {
                asset, quantity, ..
            }) => {
                let info = self.assets.get(asset).ok_or("issuemore of unknown asset")?;
                if !info.open {
                    return Err("issuemore of a closed asset".into());
                }
                if !self.any_holds(&signers, Permission::Asset(*asset, AssetPerm::Issue)) {
                    return Err("issuemore without ASSET.issue".into());
                }
                if u128::from(info.total) + u128::from(quantity.raw()) > u128::from(MAX_AMOUNT) {
                    return Err("supply overflow".into());
                }
                add(&mut ins, *asset, quantity.raw());
            }
            _ => {}
        }
        ins.retain(|_, q| *q != 0);
        let mut outs: BTreeMap<AssetId, u128> = BTreeMap::new();
        for out in &tx.outputs {
            for (id, q) in &out.assets {
                add(&mut outs, *id, q.raw());
            }
        }
        if ins
            .values()
            .chain(outs.values())
            .any(|s| *s > u128::from(MAX_AMOUNT))
        {
            return Err("sum overflow".into());
        }
        if ins != outs {
            return Err(format!("unbalanced: in {ins:?}, out {outs:?}"));
        }
        let grant_vouts: BTreeSet<u32> = tx
            .ops
            .iter()
            .filter_map(|op| op.permission_change().map(|(vout, ..)| vout))
            .collect();
        for (vout, out) in tx.outputs.iter().enumerate() {
            if grant_vouts.contains(&(vout as u32)) {
                continue;
            }
            if !out.assets.is_empty()
                && !self.holds(out.address, Permission::Global(GlobalPerm::Receive))
            {
                return Err(format!("output address lacks receive: vout {vout}"));
            }
            if out.assets.is_empty() && !input_addresses.contains(&out.address) {
                return Err(format!("zero-value output is not change: vout {vout}"));
            }
        }
        for op in &tx.ops {
            let Some((_, perms, ..)) = op.permission_change() else {
                continue;
            };
            for perm in perms {
                let ok = match perm {
                    Permission::Global(g) if g.activate_may_grant() => {
                        self.any_holds(&signers, Permission::Global(GlobalPerm::Admin))
                            || self.any_holds(&signers, Permission::Global(GlobalPerm::Activate))
                    }
                    Permission::Global(_) => {
                        self.any_holds(&signers, Permission::Global(GlobalPerm::Admin))
                    }
                    Permission::Asset(id, _) => {
                        self.assets.contains_key(id)
                            && self.any_holds(&signers, Permission::Asset(*id, AssetPerm::Admin))
                    }
                };
                if !ok {
                    return Err(format!("no authority to grant or revoke: {perm:?}"));
                }
            }
        }
        Ok(())
    }

    /// Applies a transaction that `check` accepted.
    fn apply(&mut self, tx: &Transaction) {
        let txid = tx.txid();
        let signers = signers(tx);
        for input in &tx.inputs {
            self.utxos.remove(&input.prev);
        }
        for (vout, out) in tx.outputs.iter().enumerate() {
            let stored = Output::new(
                out.address,
                out.assets
                    .iter()
                    .map(|(id, q)| (if *id == NEW_ASSET { txid } else { *id }, *q)),
            );
            self.utxos.insert(
                OutPoint {
                    txid,
                    vout: vout as u32,
                },
                stored,
            );
        }
        for op in &tx.ops {
            match op {
                Op::IssueAsset(issue) => {
                    let issuer = *signers
                        .iter()
                        .find(|s| self.holds(**s, Permission::Global(GlobalPerm::Issue)))
                        .expect("checked");
                    self.assets.insert(
                        txid,
                        ModelAsset {
                            name: issue.name.clone(),
                            open: issue.open,
                            total: issue.quantity.raw(),
                        },
                    );
                    for p in AssetPerm::ALL {
                        self.perms.insert((issuer, Permission::Asset(txid, p)));
                    }
                }
                Op::IssueMore {
                    asset, quantity, ..
                } => {
                    let info = self.assets.get_mut(asset).expect("checked");
                    info.total += quantity.raw();
                }
                Op::Grant {
                    vout,
                    permissions,
                    start,
                    end,
                } => {
                    assert_eq!(
                        (*start, *end),
                        (0, NO_END),
                        "the model knows open grants only"
                    );
                    let grantee = tx.outputs[*vout as usize].address;
                    for p in permissions {
                        self.perms.insert((grantee, *p));
                    }
                }
                Op::Revoke { vout, permissions } => {
                    let grantee = tx.outputs[*vout as usize].address;
                    for p in permissions {
                        self.perms.remove(&(grantee, *p));
                    }
                }
                Op::PlaceOrder(_) | Op::CancelOrder { .. } => {
                    unreachable!("order ops are tested in orderbook.rs")
                }
            }
        }
    }

    /// The state after `txs` as one block, or the index of the first invalid transaction (`None`
    /// for a block-level fault) and why.
    fn predict_block(&self, txs: &[Transaction]) -> Result<Model, (Option<usize>, String)> {
        let mut txids = BTreeSet::new();
        for tx in txs {
            if !txids.insert(tx.txid()) {
                return Err((None, "duplicate txid".into()));
            }
        }
        let mut next = self.clone();
        for (index, tx) in txs.iter().enumerate() {
            next.check(tx).map_err(|why| (Some(index), why))?;
            next.apply(tx);
        }
        Ok(next)
    }
}

// --------------------------------------------------------------------- transaction builders

/// Signs every input `ALL` with `signer`, whoever owns the coins.
fn signed(
    signer: usize,
    inputs: &[OutPoint],
    outputs: Vec<Output>,
    ops: Vec<Op>,
    t: &TestChain,
) -> Transaction {
    let mut tx = Transaction {
        version: TX_VERSION,
        inputs: inputs.iter().copied().map(unsigned_input).collect(),
        outputs,
        ops,
    };
    let k = &keys()[signer];
    let ks: Vec<&SecretKey> = tx.inputs.iter().map(|_| k).collect();
    sighash::sign_all(&mut tx, &ks, &t.chain.id);
    tx
}

/// Spends `picked` coins of `from` (as the model sees them), pays `payments`, and returns
/// whatever is left (saturating at zero, so an overspend is simply unbalanced) to `from`, as a
/// zero-value change output if nothing is left.
fn transfer(
    t: &TestChain,
    m: &Model,
    from: usize,
    picked: &[OutPoint],
    payments: &[(Address, AssetId, u64)],
) -> Transaction {
    let mut left: BTreeMap<AssetId, u64> = BTreeMap::new();
    for op in picked {
        for (id, q) in &m.utxos[op].assets {
            *left.entry(*id).or_default() += q.raw();
        }
    }
    let mut outputs = Vec::new();
    for (to, id, q) in payments {
        let slot = left.entry(*id).or_default();
        *slot = slot.saturating_sub(*q);
        outputs.push(Output::new(*to, [(*id, amount(*q))]));
    }
    outputs.push(Output::new(
        addr(from),
        left.into_iter().map(|(id, q)| (id, amount(q))),
    ));
    signed(from, picked, outputs, vec![], t)
}

/// A grant (or revoke) of `perms` to `target`, spending the first coin of `by`.
fn permission_tx(
    t: &TestChain,
    m: &Model,
    by: usize,
    target: usize,
    perms: Vec<Permission>,
    revoke: bool,
) -> Option<Transaction> {
    let (coin, out) = m.coins_of(addr(by)).into_iter().next()?;
    let op = if revoke {
        Op::Revoke {
            vout: 0,
            permissions: perms,
        }
    } else {
        Op::Grant {
            vout: 0,
            permissions: perms,
            start: 0,
            end: NO_END,
        }
    };
    let outputs = vec![
        Output {
            address: addr(target),
            assets: vec![],
        },
        Output::new(addr(by), out.assets),
    ];
    Some(signed(by, &[coin], outputs, vec![op], t))
}

fn issue_tx(
    t: &TestChain,
    m: &Model,
    by: usize,
    name: &str,
    open: bool,
    qty: u64,
) -> Option<Transaction> {
    let (coin, out) = m.coins_of(addr(by)).into_iter().next()?;
    let op = Op::IssueAsset(IssueAsset {
        name: name.to_string(),
        open,
        multiple: 1000,
        quantity: amount(qty),
        fields: BTreeMap::from([("origin".to_string(), "KW".to_string())]),
    });
    let outputs = vec![
        Output::new(addr(by), [(NEW_ASSET, amount(qty))]),
        Output::new(addr(by), out.assets),
    ];
    Some(signed(by, &[coin], outputs, vec![op], t))
}

fn issue_more_tx(
    t: &TestChain,
    m: &Model,
    by: usize,
    to: usize,
    asset: AssetId,
    qty: u64,
) -> Option<Transaction> {
    let (coin, out) = m.coins_of(addr(by)).into_iter().next()?;
    let op = Op::IssueMore {
        asset,
        quantity: amount(qty),
        fields: BTreeMap::new(),
    };
    let outputs = vec![
        Output::new(addr(to), [(asset, amount(qty))]),
        Output::new(addr(by), out.assets),
    ];
    Some(signed(by, &[coin], outputs, vec![op], t))
}

/// Spends one coin `(outpoint, output)` as its owner, paying it all to `to` (or back to the
/// owner if it carries nothing, so that the only possible fault is the coin itself).
fn respend(t: &TestChain, coin: &(OutPoint, Output), to: usize) -> Transaction {
    let owner = key_index(&coin.1.address);
    let dest = if coin.1.assets.is_empty() {
        coin.1.address
    } else {
        addr(to)
    };
    let outputs = vec![Output::new(dest, coin.1.assets.iter().copied())];
    signed(owner, &[coin.0], outputs, vec![], t)
}

// ---------------------------------------------------------------------------- random actions

#[derive(Clone, Debug)]
enum Action {
    Transfer {
        from: usize,
        to: usize,
        asset: usize,
        amount: u64,
        overspend: bool,
        sweep: usize,
    },
    IssueMore {
        by: usize,
        to: usize,
        asset: usize,
        quantity: u64,
    },
    Permission {
        by_admin: bool,
        by: usize,
        target: usize,
        /// Bit set over connect, send, receive, ASSET.issue (never 0).
        which: u8,
        asset: usize,
        revoke: bool,
    },
    /// Re-spend an outpoint that an earlier block spent.
    RespendOld { pick: Index, to: usize },
    /// Re-spend an outpoint that an earlier transaction of this block spends.
    RespendInBlock { pick: Index, to: usize },
    /// Spend someone else's coin with one's own key.
    Steal { thief: usize, pick: Index },
}

fn person() -> impl Strategy<Value = usize> {
    0..POPULATION
}

/// Mostly key(0..=3), which start out able to receive; sometimes key(4..=5), which cannot until
/// granted `receive`.
fn recipient() -> impl Strategy<Value = usize> {
    prop_oneof![6 => 0..4usize, 1 => 4..POPULATION]
}

/// Mostly small; sometimes close to the 2^63 − 1 supply limit, so that a second such issuance
/// of the same asset overflows and must be refused.
fn issue_quantity() -> impl Strategy<Value = u64> {
    prop_oneof![9 => 1..10_000u64, 1 => (MAX_AMOUNT - 2_000_000)..=MAX_AMOUNT]
}

/// Transfers, `issuemore` by the initial holders of `ASSET.issue` and grants by the admin: valid
/// unless the state says otherwise (a revoked permission, a closed asset, an unfunded sender).
fn honest_action() -> impl Strategy<Value = Action> {
    prop_oneof![
        10 => (person(), recipient(), 0..3usize, any::<u64>(), 0..3usize).prop_map(
            |(from, to, asset, amount, sweep)| Action::Transfer {
                from, to, asset, amount, overspend: false, sweep,
            }
        ),
        2 => (0..2usize, recipient(), 0..3usize, issue_quantity())
            .prop_map(|(by, to, asset, quantity)| Action::IssueMore { by, to, asset, quantity }),
        3 => (1..POPULATION, 1..16u8, 0..3usize, prop::bool::weighted(0.25)).prop_map(
            |(target, which, asset, revoke)| Action::Permission {
                by_admin: true, by: 0, target, which, asset, revoke,
            }
        ),
    ]
}

/// Anything, including overspends, `issuemore` and grants by anyone, double spends and thefts.
fn any_action() -> impl Strategy<Value = Action> {
    prop_oneof![
        8 => (person(), recipient(), 0..3usize, any::<u64>(), prop::bool::weighted(0.2), 0..3usize)
            .prop_map(|(from, to, asset, amount, overspend, sweep)| Action::Transfer {
                from, to, asset, amount, overspend, sweep,
            }),
        3 => (person(), recipient(), 0..3usize, issue_quantity())
            .prop_map(|(by, to, asset, quantity)| Action::IssueMore { by, to, asset, quantity }),
        3 => (prop::bool::weighted(0.6), 1..POPULATION, 1..POPULATION, 1..16u8, 0..3usize,
              prop::bool::weighted(0.3))
            .prop_map(|(by_admin, by, target, which, asset, revoke)| Action::Permission {
                by_admin, by, target, which, asset, revoke,
            }),
        2 => (any::<Index>(), recipient())
            .prop_map(|(pick, to)| Action::RespendOld { pick, to }),
        3 => (any::<Index>(), recipient())
            .prop_map(|(pick, to)| Action::RespendInBlock { pick, to }),
        1 => (person(), any::<Index>()).prop_map(|(thief, pick)| Action::Steal { thief, pick }),
    ]
}

#[derive(Clone, Debug)]
struct Plan {
    three_assets: bool,
    /// Blocks; each action comes with whether its transaction goes into the block.
    blocks: Vec<Vec<(Action, bool)>>,
}

fn plan() -> impl Strategy<Value = Plan> {
    let include = || prop::bool::weighted(0.9);
    let block = prop_oneof![
        prop::collection::vec((honest_action(), include()), 1..=4),
        prop::collection::vec((any_action(), include()), 1..=4),
    ];
    (any::<bool>(), prop::collection::vec(block, 1..=8)).prop_map(|(three_assets, blocks)| Plan {
        three_assets,
        blocks,
    })
}

// ------------------------------------------------------------------------------------ the world

static BLOCKS_ACCEPTED: AtomicUsize = AtomicUsize::new(0);
static BLOCKS_REJECTED: AtomicUsize = AtomicUsize::new(0);
static REJECTED_OLD_DOUBLE_SPEND: AtomicUsize = AtomicUsize::new(0);
static REJECTED_IN_BLOCK_DOUBLE_SPEND: AtomicUsize = AtomicUsize::new(0);
static TXS_ACCEPTED: AtomicUsize = AtomicUsize::new(0);
static ISSUE_MORE_ACCEPTED: AtomicUsize = AtomicUsize::new(0);
static PERMISSION_OPS_ACCEPTED: AtomicUsize = AtomicUsize::new(0);

/// Why rejected blocks failed (the model's reason for the first bad transaction), by kind.
static REJECTION_REASONS: Mutex<BTreeMap<String, usize>> = Mutex::new(BTreeMap::new());

fn note_rejection(why: &str) {
    let kind = why.split(':').next().unwrap_or(why);
    let mut reasons = REJECTION_REASONS.lock().unwrap_or_else(|e| e.into_inner());
    *reasons.entry(kind.trim().to_string()).or_default() += 1;
}

fn bump(counter: &AtomicUsize, by: usize) {
    counter.fetch_add(by, Ordering::Relaxed);
}

struct World {
    t: TestChain,
    model: Model,
    /// Every outpoint spent by an accepted block.
    spent: BTreeSet<OutPoint>,
    /// The same, with the outputs they were, in spending order (for re-spending them).
    spent_log: Vec<(OutPoint, Output)>,
    /// The assets, in issue order.
    assets: Vec<AssetId>,
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
            model: self.model.clone(),
            spent: self.spent.clone(),
            spent_log: self.spent_log.clone(),
            assets: self.assets.clone(),
        }
    }
}

fn utxos_of(state: &MemoryView) -> BTreeMap<OutPoint, Output> {
    state
        .map
        .iter()
        .filter_map(|(k, v)| match (k, v) {
            (StateKey::Utxo(op), StateValue::Utxo(u)) => Some((*op, u.output.clone())),
            _ => None,
        })
        .collect()
}

fn state_bytes(state: &MemoryView) -> Vec<u8> {
    codec::encode(&state.map.iter().collect::<Vec<_>>())
}

impl World {
    /// Genesis only; the model starts from the genesis state.
    fn genesis() -> World {
        let t = TestChain::new();
        let admin = t.admin.address();
        let model = Model {
            utxos: utxos_of(&t.state),
            perms: GlobalPerm::ALL
                .iter()
                .map(|g| (admin, Permission::Global(*g)))
                .collect(),
            assets: BTreeMap::new(),
        };
        World {
            t,
            model,
            spent: BTreeSet::new(),
            spent_log: Vec::new(),
            assets: Vec::new(),
        }
    }

    /// The shared starting point: two or three assets issued and distributed.
    fn setup(three_assets: bool) -> World {
        let mut w = World::genesis();
        let csr = [GlobalPerm::Connect, GlobalPerm::Send, GlobalPerm::Receive]
            .map(Permission::Global)
            .to_vec();
        // Block 1: connect/send/receive for key(1..=3), chained through the admin's change.
        let mut b = w.model.clone();
        let mut txs = Vec::new();
        for target in 1..=3 {
            let tx = permission_tx(&w.t, &b, 0, target, csr.clone(), false).expect("admin coin");
            b.check(&tx).expect("setup grant is valid");
            b.apply(&tx);
            txs.push(tx);
        }
        w.submit_setup(txs);
        // Block 2: the assets.
        let mut b = w.model.clone();
        let mut txs = Vec::new();
        let mut specs = vec![("energy", true, 1_000_000), ("ecoin", true, 500_000)];
        if three_assets {
            specs.push(("fixed", false, 10_000));
        }
        for (name, open, qty) in specs {
            let tx = issue_tx(&w.t, &b, 0, name, open, qty).expect("admin coin");
            b.check(&tx).expect("setup issue is valid");
            b.apply(&tx);
            w.assets.push(tx.txid());
            txs.push(tx);
        }
        w.submit_setup(txs);
        // Block 3: energy.issue for key(1), and a share of every asset for key(1..=3).
        let mut b = w.model.clone();
        let energy = w.assets[0];
        let g = permission_tx(
            &w.t,
            &b,
            0,
            1,
            vec![Permission::Asset(energy, AssetPerm::Issue)],
            false,
        )
        .expect("admin coin");
        b.check(&g).expect("setup grant is valid");
        b.apply(&g);
        let mut payments = Vec::new();
        for to in 1..=3 {
            for (i, id) in w.assets.iter().enumerate() {
                payments.push((addr(to), *id, [100_000, 50_000, 1_000][i]));
            }
        }
        let picked: Vec<OutPoint> = b.coins_of(addr(0)).into_iter().map(|(op, _)| op).collect();
        let pay = transfer(&w.t, &b, 0, &picked, &payments);
        b.check(&pay).expect("setup payment is valid");
        w.submit_setup(vec![g, pay]);
        w
    }

    fn submit_setup(&mut self, txs: Vec<Transaction>) {
        let height = self.t.next_height();
        match self.submit(txs) {
            Ok(true) => {}
            Ok(false) => panic!("setup block {height} was rejected"),
            Err(e) => panic!("setup block {height}: {e}"),
        }
    }

    /// Builds the transaction for one action against `b` (the state the block reaches so far).
    fn build(
        &self,
        action: &Action,
        b: &Model,
        in_block_spent: &[(OutPoint, Output)],
    ) -> Option<Transaction> {
        let t = &self.t;
        let asset_of = |i: usize| self.assets[i % self.assets.len()];
        match *action {
            Action::Transfer {
                from,
                to,
                asset,
                amount,
                overspend,
                sweep,
            } => {
                let asset = asset_of(asset);
                let coins = b.coins_of(addr(from));
                if coins.is_empty() {
                    return None;
                }
                let have: u64 = coins.iter().map(|(_, o)| o.amount_of(&asset).raw()).sum();
                let mut picked = Vec::new();
                let qty;
                if overspend || have == 0 {
                    picked.extend(
                        coins
                            .iter()
                            .filter(|(_, o)| !o.amount_of(&asset).is_zero())
                            .map(|(op, _)| *op),
                    );
                    if picked.is_empty() {
                        picked.push(coins[0].0);
                    }
                    let held: u64 = picked
                        .iter()
                        .map(|op| b.utxos[op].amount_of(&asset).raw())
                        .sum();
                    // More than the inputs hold (unless they already hold the maximum).
                    qty = (held + 1 + amount % 1000).min(MAX_AMOUNT);
                } else {
                    qty = 1 + amount % have;
                    let mut got = 0;
                    for (op, o) in &coins {
                        if got >= qty {
                            break;
                        }
                        let q = o.amount_of(&asset).raw();
                        if q > 0 {
                            picked.push(*op);
                            got += q;
                        }
                    }
                }
                // Sweep up to `sweep` more coins (zero-value grant coins, other assets).
                let limit = (picked.len() + sweep).min(4);
                for (op, _) in &coins {
                    if picked.len() >= limit {
                        break;
                    }
                    if !picked.contains(op) {
                        picked.push(*op);
                    }
                }
                Some(transfer(t, b, from, &picked, &[(addr(to), asset, qty)]))
            }
            Action::IssueMore {
                by,
                to,
                asset,
                quantity,
            } => issue_more_tx(t, b, by, to, asset_of(asset), quantity),
            Action::Permission {
                by_admin,
                by,
                target,
                which,
                asset,
                revoke,
            } => {
                let by = if by_admin { 0 } else { by };
                let all = [
                    Permission::Global(GlobalPerm::Connect),
                    Permission::Global(GlobalPerm::Send),
                    Permission::Global(GlobalPerm::Receive),
                    Permission::Asset(asset_of(asset), AssetPerm::Issue),
                ];
                let perms = (0..4)
                    .filter(|bit| which & (1 << bit) != 0)
                    .map(|bit| all[bit])
                    .collect();
                permission_tx(t, b, by, target, perms, revoke)
            }
            Action::RespendOld { pick, to } => {
                if self.spent_log.is_empty() {
                    return None;
                }
                Some(respend(t, pick.get(&self.spent_log), to))
            }
            Action::RespendInBlock { pick, to } => {
                if in_block_spent.is_empty() {
                    return None;
                }
                Some(respend(t, pick.get(in_block_spent), to))
            }
            Action::Steal { thief, pick } => {
                let theirs: Vec<(OutPoint, Output)> = b
                    .utxos
                    .iter()
                    .filter(|(_, o)| o.address != addr(thief))
                    .map(|(op, o)| (*op, o.clone()))
                    .collect();
                if theirs.is_empty() {
                    return None;
                }
                let (op, out) = pick.get(&theirs);
                let outputs = vec![Output::new(addr(thief), out.assets.iter().copied())];
                Some(signed(thief, &[*op], outputs, vec![], t))
            }
        }
    }

    /// Builds one block's transactions from its actions and submits the chosen subset.
    fn step(&mut self, actions: &[(Action, bool)]) -> Result<(), String> {
        let mut b = self.model.clone();
        let mut in_block_spent: Vec<(OutPoint, Output)> = Vec::new();
        let mut txs = Vec::new();
        for (action, include) in actions {
            let Some(tx) = self.build(action, &b, &in_block_spent) else {
                continue;
            };
            if b.check(&tx).is_ok() {
                for input in &tx.inputs {
                    in_block_spent.push((input.prev, b.utxos[&input.prev].clone()));
                }
                b.apply(&tx);
            }
            if *include {
                txs.push(tx);
            }
        }
        self.submit(txs).map(|_| ())
    }

    /// Commits a block of `txs` and checks every property; returns whether it was accepted.
    fn submit(&mut self, txs: Vec<Transaction>) -> Result<bool, String> {
        let before = self.t.state.clone();
        let before_hash = before.state_hash();
        let before_bytes = state_bytes(&before);
        let before_time = self.t.next_time_ms;
        let prediction = self.model.predict_block(&txs);

        let inputs: Vec<OutPoint> = txs
            .iter()
            .flat_map(|tx| tx.inputs.iter().map(|i| i.prev))
            .collect();
        let reuses_spent = inputs.iter().any(|op| self.spent.contains(op));
        let distinct: BTreeSet<&OutPoint> = inputs.iter().collect();
        let spends_twice = distinct.len() != inputs.len();

        let block = self.t.block(txs.clone());
        let accepted = match self.t.commit(&block) {
            Ok(changes) => {
                // (b) nothing spent twice.
                if reuses_spent || spends_twice {
                    return Err(format!(
                        "accepted a block that double-spends (earlier block: {reuses_spent}, \
                         within the block: {spends_twice})"
                    ));
                }
                let mut created = BTreeSet::new();
                for tx in &txs {
                    for input in &tx.inputs {
                        let was_unspent = before.map.contains_key(&StateKey::Utxo(input.prev))
                            || created.contains(&input.prev);
                        if !was_unspent {
                            return Err(format!("accepted a spend of unknown {:?}", input.prev));
                        }
                        let out = before_or_created(&before, &txs, &input.prev);
                        self.spent.insert(input.prev);
                        self.spent_log.push((input.prev, out));
                    }
                    let txid = tx.txid();
                    created
                        .extend((0..tx.outputs.len() as u32).map(|vout| OutPoint { txid, vout }));
                }
                // (c) undo restores the previous state exactly; redo gives this one again.
                let mut undone = self.t.state.clone();
                undone
                    .apply(&changes.inverse())
                    .map_err(|e| format!("inverse does not apply: {e}"))?;
                if undone != before || undone.state_hash() != before_hash {
                    return Err("applying the inverse changeset did not restore the state".into());
                }
                if state_bytes(&undone) != before_bytes {
                    return Err("the restored state encodes differently".into());
                }
                let mut redone = undone;
                redone
                    .apply(&changes)
                    .map_err(|e| format!("changeset does not re-apply: {e}"))?;
                if redone != self.t.state {
                    return Err("re-applying the changeset gave another state".into());
                }
                // A changeset carries its undo data: it cannot be applied twice.
                if self.t.state.clone().apply(&changes).is_ok() {
                    return Err("the changeset applied twice".into());
                }
                self.model = prediction.map_err(|(index, why)| {
                    format!("block accepted, but the model expected tx {index:?} to fail: {why}")
                })?;
                bump(&BLOCKS_ACCEPTED, 1);
                bump(&TXS_ACCEPTED, txs.len());
                for tx in &txs {
                    for op in &tx.ops {
                        match op {
                            Op::IssueMore { .. } => bump(&ISSUE_MORE_ACCEPTED, 1),
                            Op::Grant { .. } | Op::Revoke { .. } => {
                                bump(&PERMISSION_OPS_ACCEPTED, 1)
                            }
                            Op::IssueAsset(_) | Op::PlaceOrder(_) | Op::CancelOrder { .. } => {}
                        }
                    }
                }
                true
            }
            Err(error) => {
                // (d) untouched, byte for byte.
                if self.t.state != before
                    || self.t.state.state_hash() != before_hash
                    || state_bytes(&self.t.state) != before_bytes
                    || self.t.next_time_ms != before_time
                {
                    return Err(format!("a rejected block ({error}) changed the state"));
                }
                // The model must agree, down to the failing transaction.
                match (&prediction, &error) {
                    (Err((Some(i), _)), BlockError::Tx { index, .. }) if i == index => {}
                    (Err((None, _)), BlockError::DuplicateTxid { .. }) => {}
                    _ => {
                        return Err(format!(
                            "block rejected with {error}, but the model predicted {:?}",
                            prediction.as_ref().map(|_| "valid").map_err(|e| e.clone())
                        ));
                    }
                }
                bump(&BLOCKS_REJECTED, 1);
                if let Err((_, why)) = &prediction {
                    note_rejection(why);
                }
                if reuses_spent {
                    bump(&REJECTED_OLD_DOUBLE_SPEND, 1);
                }
                if spends_twice {
                    bump(&REJECTED_IN_BLOCK_DOUBLE_SPEND, 1);
                }
                false
            }
        };
        self.check_invariants()?;
        Ok(accepted)
    }

    /// (a) supply, (b) no spent outpoint unspent again, then agreement with the model.
    fn check_invariants(&self) -> Result<(), String> {
        let state = &self.t.state;
        let utxos = utxos_of(state);
        // (a) Σ over UTXOs of each asset = AssetInfo.total; no coin carries an unknown asset.
        let mut supply: BTreeMap<AssetId, u128> = BTreeMap::new();
        for out in utxos.values() {
            for (id, q) in &out.assets {
                add(&mut supply, *id, q.raw());
            }
        }
        let mut infos = BTreeMap::new();
        for (k, v) in &state.map {
            if let (StateKey::Asset(id), StateValue::Asset(info)) = (k, v) {
                if info.id != *id {
                    return Err(format!("asset {id} stored with id {}", info.id));
                }
                infos.insert(*id, info);
            }
        }
        for (id, info) in &infos {
            let held = supply.get(id).copied().unwrap_or(0);
            if held != u128::from(info.total.raw()) {
                return Err(format!(
                    "supply of {id}: UTXOs hold {held}, AssetInfo.total is {}",
                    info.total.raw()
                ));
            }
        }
        if let Some(id) = supply.keys().find(|id| !infos.contains_key(id)) {
            return Err(format!("UTXOs carry {id}, which is no asset"));
        }
        // (b) a spent outpoint never comes back.
        if let Some(op) = utxos.keys().find(|op| self.spent.contains(op)) {
            return Err(format!("spent outpoint {op:?} is unspent again"));
        }
        // The model: totals move only by the quantities issued, and the UTXO set and the
        // permissions are what the rules say.
        let model_assets: BTreeMap<AssetId, (bool, u64, &str)> = self
            .model
            .assets
            .iter()
            .map(|(id, a)| (*id, (a.open, a.total, a.name.as_str())))
            .collect();
        let state_assets: BTreeMap<AssetId, (bool, u64, &str)> = infos
            .iter()
            .map(|(id, i)| (*id, (i.open, i.total.raw(), i.name.as_str())))
            .collect();
        if state_assets != model_assets {
            return Err(format!(
                "assets (open, total, name): state {state_assets:?}, model {model_assets:?}"
            ));
        }
        if utxos != self.model.utxos {
            return Err("the UTXO set differs from the model's".into());
        }
        let height = self.t.next_height();
        let mut perms: Vec<Permission> = GlobalPerm::ALL.map(Permission::Global).to_vec();
        for id in &self.assets {
            perms.extend(AssetPerm::ALL.map(|p| Permission::Asset(*id, p)));
        }
        for i in 0..POPULATION {
            for p in &perms {
                let held = validate::holds(state, &self.t.chain, &addr(i), *p, height)
                    .map_err(|e| e.to_string())?;
                if held != self.model.holds(addr(i), *p) {
                    return Err(format!("key({i}) {p:?}: state says {held}"));
                }
            }
        }
        Ok(())
    }
}

/// The output an accepted block's input spent: from the state before the block, or from an
/// earlier transaction of the same block.
fn before_or_created(before: &MemoryView, txs: &[Transaction], op: &OutPoint) -> Output {
    if let Some(StateValue::Utxo(u)) = before.map.get(&StateKey::Utxo(*op)) {
        return u.output.clone();
    }
    let tx = txs
        .iter()
        .find(|tx| tx.txid() == op.txid)
        .expect("created in this block");
    wattle_ledger::apply::stored_output(&tx.outputs[op.vout as usize], op.txid)
}

fn base(three_assets: bool) -> World {
    static BASES: OnceLock<[World; 2]> = OnceLock::new();
    let bases = BASES.get_or_init(|| [World::setup(false), World::setup(true)]);
    bases[usize::from(three_assets)].clone()
}

#[test]
fn random_blocks_keep_supply_spends_undo_and_rejections_sound() {
    let started = Instant::now();
    let config = Config {
        // Failing cases are saved next to this file, in properties.proptest-regressions.
        source_file: Some(file!()),
        failure_persistence: Some(Box::new(FileFailurePersistence::WithSource(
            "proptest-regressions",
        ))),
        // 48 cases by default; PROPTEST_CASES=5000 for a longer soak.
        ..Config::with_cases(
            std::env::var("PROPTEST_CASES")
                .ok()
                .and_then(|v| v.parse().ok())
                .unwrap_or(48),
        )
    };
    let mut runner = TestRunner::new(config);
    let result = runner.run(&plan(), |plan| {
        let mut w = base(plan.three_assets);
        w.check_invariants().map_err(TestCaseError::fail)?;
        for actions in &plan.blocks {
            w.step(actions).map_err(TestCaseError::fail)?;
        }
        Ok(())
    });
    if let Err(e) = result {
        panic!("{e}");
    }
    let get = |c: &AtomicUsize| c.load(Ordering::Relaxed);
    eprintln!(
        "properties: {} blocks accepted ({} txs, {} issuemore, {} grants/revokes), {} rejected \
         ({} re-spending an earlier block's outpoint, {} spending one twice) in {:?}",
        get(&BLOCKS_ACCEPTED),
        get(&TXS_ACCEPTED),
        get(&ISSUE_MORE_ACCEPTED),
        get(&PERMISSION_OPS_ACCEPTED),
        get(&BLOCKS_REJECTED),
        get(&REJECTED_OLD_DOUBLE_SPEND),
        get(&REJECTED_IN_BLOCK_DOUBLE_SPEND),
        started.elapsed()
    );
    let reasons = REJECTION_REASONS.lock().unwrap_or_else(|e| e.into_inner());
    eprintln!("rejections by first failure: {reasons:?}");
    // The generator must exercise both outcomes and both kinds of double spend.
    assert!(get(&BLOCKS_ACCEPTED) > 0 && get(&BLOCKS_REJECTED) > 0);
    assert!(get(&REJECTED_OLD_DOUBLE_SPEND) > 0);
    assert!(get(&REJECTED_IN_BLOCK_DOUBLE_SPEND) > 0);
    assert!(get(&ISSUE_MORE_ACCEPTED) > 0 && get(&PERMISSION_OPS_ACCEPTED) > 0);
}
