//! Model test: the sled store against `MemoryView` (kept by a `TestChain`) over random
//! operations — new blocks (grants, revokes, issues, transfers), rollbacks of the last k blocks
//! alone or with an alternative block, adopting a rolled-back branch again, and reopening the
//! store. After every step all state, the tip, the height and transaction indexes and
//! `recent` must agree with the model.

use super::tests::{branch, id_of, init};
use super::*;
use proptest::prelude::*;
use std::collections::{BTreeMap, BTreeSet};
use wattle_ledger::address::Address;
use wattle_ledger::keys::SecretKey;
use wattle_ledger::permissions::{GlobalPerm, Permission};
use wattle_ledger::testkit::{TestChain, key};
use wattle_ledger::tx::{AssetId, Transaction};
use wattle_ledger::validate;

/// Small block files, so that the test also rolls to new files.
const FILE_LIMIT: u64 = 4096;

/// A transaction to try, interpreted against the state when the block is built.
#[derive(Clone, Debug)]
struct TxSeed {
    kind: u8,
    a: u8,
    b: u8,
    qty: u16,
}

#[derive(Clone, Debug)]
enum Step {
    /// A new block on the tip.
    Extend { txs: Vec<TxSeed>, weight: u64 },
    /// Roll back the last `depth` blocks (at most the chain above genesis), alone or replaced
    /// by one alternative block.
    Rollback { depth: u8, alt: Option<Vec<TxSeed>> },
    /// Adopt again the branch rolled back last, if it still builds on the tip.
    Readopt,
    /// Close and reopen the store.
    Reopen,
}

fn tx_seed() -> impl Strategy<Value = TxSeed> {
    (any::<u8>(), any::<u8>(), any::<u8>(), any::<u16>()).prop_map(|(kind, a, b, qty)| TxSeed {
        kind,
        a,
        b,
        qty,
    })
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        6 => (prop::collection::vec(tx_seed(), 0..6), 1u64..3)
            .prop_map(|(txs, weight)| Step::Extend { txs, weight }),
        2 => (1u8..5, prop::option::of(prop::collection::vec(tx_seed(), 0..3)))
            .prop_map(|(depth, alt)| Step::Rollback { depth, alt }),
        1 => Just(Step::Readopt),
        1 => Just(Step::Reopen),
    ]
}

struct Model {
    t: TestChain,
    /// The main chain, genesis first (with an empty changeset, as `recent` returns it).
    main: Vec<BranchBlock>,
    /// The branch rolled back last, oldest first.
    stale: Vec<BranchBlock>,
    /// Every txid ever adopted.
    seen: BTreeSet<wattle_ledger::tx::Txid>,
    people: Vec<SecretKey>,
    assets: u32,
}

impl Model {
    fn new() -> Model {
        let t = TestChain::new();
        let genesis = branch(t.genesis.clone(), Changeset::default(), 2);
        let people = vec![t.admin.clone(), key(1), key(2), key(3)];
        Model {
            seen: t.genesis.txs.iter().map(Transaction::txid).collect(),
            t,
            main: vec![genesis],
            stale: Vec::new(),
            people,
            assets: 0,
        }
    }

    fn holds(&self, who: &Address, perm: GlobalPerm) -> bool {
        let height = self.t.next_height();
        validate::holds(
            &self.t.state,
            &self.t.chain,
            who,
            Permission::Global(perm),
            height,
        )
        .unwrap_or(false)
    }

    /// What `who` holds of each asset.
    fn balances(&self, who: &Address) -> BTreeMap<AssetId, u64> {
        let mut out: BTreeMap<AssetId, u64> = BTreeMap::new();
        for (_, u) in self.t.utxos_of(who) {
            for (id, q) in &u.output.assets {
                *out.entry(*id).or_default() += q.raw();
            }
        }
        out
    }

    /// Builds the transactions the seeds ask for where the state allows them; each sender
    /// signs at most one transaction per block (they all spend the tip's coins).
    fn txs(&mut self, seeds: &[TxSeed]) -> Vec<Transaction> {
        let mut busy = BTreeSet::new();
        seeds.iter().filter_map(|s| self.tx(s, &mut busy)).collect()
    }

    fn tx(&mut self, s: &TxSeed, busy: &mut BTreeSet<Address>) -> Option<Transaction> {
        let admin = self.people[0].clone();
        let user = self.people[1 + s.a as usize % 3].clone();
        let perms =
            [GlobalPerm::Send, GlobalPerm::Receive, GlobalPerm::Issue].map(Permission::Global);
        match s.kind % 7 {
            0 | 1 if busy.insert(admin.address()) => {
                Some(self.t.grant(&admin, user.address(), &perms))
            }
            2 => {
                let issuer = self.people[s.b as usize % 4].clone();
                let to = self.people[s.a as usize % 4].address();
                if !self.holds(&issuer.address(), GlobalPerm::Issue)
                    || !self.holds(&issuer.address(), GlobalPerm::Send)
                    || !self.holds(&to, GlobalPerm::Receive)
                    || !busy.insert(issuer.address())
                {
                    return None;
                }
                self.assets += 1;
                let name = format!("asset{}", self.assets);
                let qty = 1 + u64::from(s.qty);
                Some(
                    self.t
                        .issue(&issuer, to, &name, s.b.is_multiple_of(2), 1000, qty, &[]),
                )
            }
            3..=5 => self.transfer(s, busy),
            6 if self.holds(&user.address(), GlobalPerm::Send)
                && !busy.contains(&user.address())
                && busy.insert(admin.address()) =>
            {
                // The revoked user may not send later in this block either.
                busy.insert(user.address());
                let send = [Permission::Global(GlobalPerm::Send)];
                Some(self.t.revoke(&admin, user.address(), &send))
            }
            _ => None,
        }
    }

    fn transfer(&self, s: &TxSeed, busy: &mut BTreeSet<Address>) -> Option<Transaction> {
        let from = &self.people[s.a as usize % 4];
        let to = self.people[(s.a as usize / 4) % 4].address();
        let holdings = self.balances(&from.address());
        let (asset, have) = holdings.iter().nth(s.b as usize % holdings.len().max(1))?;
        if !self.holds(&from.address(), GlobalPerm::Send)
            || !self.holds(&to, GlobalPerm::Receive)
            || !busy.insert(from.address())
        {
            return None;
        }
        let qty = 1 + u64::from(s.qty) % have;
        Some(self.t.transfer(from, to, *asset, qty))
    }

    /// Builds and commits a block on the model's tip.
    fn new_block(&mut self, seeds: &[TxSeed], weight: u64) -> BranchBlock {
        let txs = self.txs(seeds);
        let block = self.t.block(txs);
        let changes = self.t.commit(&block).expect("generated blocks are valid");
        self.seen.extend(block.txs.iter().map(Transaction::txid));
        branch(block, changes, weight)
    }
}

fn run_step(store: &Store, m: &mut Model, step: &Step) {
    match step {
        Step::Extend { txs, weight } => {
            let b = m.new_block(txs, *weight);
            store.adopt(&[], std::slice::from_ref(&b)).unwrap();
            m.main.push(b);
        }
        Step::Rollback { depth, alt } => {
            let depth = (*depth as usize).min(m.main.len() - 1);
            if depth == 0 {
                return;
            }
            let rollback: Vec<BranchBlock> = m.main.split_off(m.main.len() - depth);
            let rollback: Vec<BranchBlock> = rollback.into_iter().rev().collect();
            for b in &rollback {
                m.t.state.apply(&b.changes.inverse()).unwrap();
            }
            let apply: Vec<BranchBlock> = alt.iter().map(|seeds| m.new_block(seeds, 2)).collect();
            store.adopt(&rollback, &apply).unwrap();
            m.main.extend(apply);
            m.stale = rollback.into_iter().rev().collect();
        }
        Step::Readopt => {
            let tip = m.t.tip().id;
            if m.stale.first().is_none_or(|b| b.block.header.prev != tip) {
                return;
            }
            for b in &m.stale {
                m.t.state.apply(&b.changes).unwrap();
            }
            store.adopt(&[], &m.stale).unwrap();
            m.main.append(&mut m.stale);
        }
        // Handled by the caller, which owns the store.
        Step::Reopen => {}
    }
}

fn check(store: &Store, m: &Model) {
    let all: BTreeMap<StateKey, StateValue> = store.scan_prefix(&[]).unwrap().into_iter().collect();
    assert_eq!(all, m.t.state.map, "state");
    for k in [kind::UTXO, kind::PERM, kind::ASSET] {
        let listed = store.scan(k).unwrap();
        assert!(listed.iter().all(|(key, _)| key.encode()[0] == k));
        let expected =
            m.t.state
                .map
                .keys()
                .filter(|key| key.encode()[0] == k)
                .count();
        assert_eq!(listed.len(), expected, "scan of kind {k}");
    }
    // The address index lists exactly each address's unspent outputs.
    let mut by_address: BTreeMap<wattle_ledger::Address, Vec<_>> = BTreeMap::new();
    for (k, v) in &m.t.state.map {
        if let (StateKey::Utxo(op), StateValue::Utxo(u)) = (k, v) {
            by_address
                .entry(u.output.address)
                .or_default()
                .push((*op, u.clone()));
        }
    }
    for (address, expected) in &by_address {
        assert_eq!(&store.utxos_of(address).unwrap(), expected, "address index");
    }
    assert!(
        store
            .utxos_of(&wattle_ledger::Address([0xee; 20]))
            .unwrap()
            .is_empty()
    );
    assert_eq!(store.tip().unwrap(), Some(m.t.tip()), "tip");
    let mut on_main = BTreeSet::new();
    for (h, b) in m.main.iter().enumerate() {
        let h = h as u32;
        assert_eq!(store.main_id_at(h).unwrap(), Some(id_of(&m.t, &b.block)));
        for (i, tx) in b.block.txs.iter().enumerate() {
            let txid = tx.txid();
            assert_eq!(store.tx_location(&txid).unwrap(), Some((h, i as u32)));
            on_main.insert(txid);
        }
    }
    assert_eq!(store.main_id_at(m.main.len() as u32).unwrap(), None);
    for txid in m.seen.difference(&on_main) {
        assert_eq!(store.tx_location(txid).unwrap(), None);
    }
    let recent = store.recent(3).unwrap();
    let tail = &m.main[m.main.len().saturating_sub(3)..];
    assert_eq!(recent.len(), tail.len());
    for (got, want) in recent.iter().zip(tail) {
        assert_eq!(got.block, want.block);
        assert_eq!(got.changes, want.changes);
        assert_eq!(got.weight, want.weight);
    }
    for b in &m.stale {
        let got = store.block_by_id(&id_of(&m.t, &b.block)).unwrap();
        assert_eq!(got, Some((b.block.header.height, (*b.block).clone())));
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn store_matches_memory_view(steps in prop::collection::vec(step(), 1..60)) {
        let dir = tempfile::tempdir().unwrap();
        let mut m = Model::new();
        let mut store = init(dir.path(), &m.t, FILE_LIMIT);
        check(&store, &m);
        for s in &steps {
            if let Step::Reopen = s {
                // sled allows one open handle per directory: close, then open.
                drop(store);
                store = Store::open_with_file_limit(dir.path(), FILE_LIMIT).unwrap();
            } else {
                run_step(&store, &mut m, s);
            }
            check(&store, &m);
        }
        if std::env::var("STORE_MODEL_STATS").is_ok() {
            let txs: usize = m.main.iter().map(|b| b.block.txs.len()).sum();
            eprintln!("steps {} height {} txs {} seen {} keys {} assets {}", steps.len(), m.main.len() - 1, txs, m.seen.len(), m.t.state.map.len(), m.assets);
        }
    }
}
