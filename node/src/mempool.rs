//! The mempool: valid unconfirmed transactions in arrival order. Each is validated against the tip
//! state plus the effects of the earlier pool transactions, with permissions evaluated at tip + 1.
//! After every branch switch the pool is rebuilt on the new tip: transactions of rolled-back
//! blocks come back first (in block order), and whatever no longer fits is dropped and reported as
//! conflicted.
//!
//! Bounded by count (`max_txs`, set by the node) and by bytes ([`MAX_BYTES`] of encoded
//! transactions): a transaction that does not fit is refused (`MempoolError::Full`) before it is
//! validated. Once the pool is half full, one input address may hold at most a tenth of it. A
//! rebuild after a reorganisation puts the transactions of the rolled-back blocks back first, even
//! beyond the bounds.

use std::collections::{BTreeMap, HashMap, HashSet};
use wattle_ledger::address::Address;
use wattle_ledger::apply::{SignatureCache, apply_tx};
use wattle_ledger::chain::Chain;
use wattle_ledger::error::TxError;
use wattle_ledger::state::{LedgerView, Overlay, StateKey, StateValue, StoreError};
use wattle_ledger::tx::{Transaction, Txid};
use wattle_ledger::validate::{self, TxContext};

/// Why a transaction did not enter the pool.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MempoolError {
    #[error("txn-already-in-mempool")]
    Duplicate,
    #[error("mempool full")]
    Full,
    #[error("too many unconfirmed transactions from input address")]
    AddressQuota,
    #[error("{0}")]
    Invalid(#[from] TxError),
}

/// Transactions whose signatures were checked on this node (bounded; cleared when full).
#[derive(Clone, Default)]
pub struct VerifiedSet {
    set: HashSet<Txid>,
}

const VERIFIED_MAX: usize = 200_000;

/// Default bound on the encoded size of the pool's transactions.
pub const MAX_BYTES: usize = 256 * 1024 * 1024;

impl VerifiedSet {
    pub fn insert(&mut self, txid: Txid) {
        if self.set.len() >= VERIFIED_MAX {
            self.set.clear();
        }
        self.set.insert(txid);
    }
}

impl SignatureCache for VerifiedSet {
    fn contains(&self, txid: &Txid) -> bool {
        self.set.contains(txid)
    }
}

/// Checks the stateless rules and signatures of `txs` on `threads` threads at once; returns the
/// txids of those that pass (in no particular order).
pub fn verify_in_parallel(
    txs: &[(Txid, &Transaction)],
    chain: &Chain,
    threads: usize,
) -> Vec<Txid> {
    if txs.is_empty() {
        return Vec::new();
    }
    std::thread::scope(|scope| {
        let workers: Vec<_> = txs
            .chunks(txs.len().div_ceil(threads.max(1)))
            .map(|chunk| {
                scope.spawn(move || {
                    chunk
                        .iter()
                        .filter(|(_, t)| {
                            validate::check_stateless(t, chain).is_ok()
                                && validate::check_signatures(t, chain).is_ok()
                        })
                        .map(|(id, _)| *id)
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|w| w.join().unwrap_or_default())
            .collect()
    })
}

/// State as the pool sees it: the pool's writes over the tip state.
pub struct PoolView<'a, V: LedgerView + ?Sized> {
    base: &'a V,
    writes: &'a BTreeMap<StateKey, Option<StateValue>>,
}

impl<V: LedgerView + ?Sized> LedgerView for PoolView<'_, V> {
    fn get(&self, key: &StateKey) -> Result<Option<StateValue>, StoreError> {
        match self.writes.get(key) {
            Some(v) => Ok(v.clone()),
            None => self.base.get(key),
        }
    }
}

pub struct Mempool {
    txs: Vec<(Txid, Transaction)>,
    /// Position of each transaction in `txs`.
    ids: HashMap<Txid, usize>,
    writes: BTreeMap<StateKey, Option<StateValue>>,
    per_address: HashMap<Address, usize>,
    pub verified: VerifiedSet,
    max_txs: usize,
    /// Encoded size of `txs`, and its bound.
    bytes: usize,
    max_bytes: usize,
}

impl Mempool {
    pub fn new(max_txs: usize) -> Mempool {
        Mempool {
            txs: Vec::new(),
            ids: HashMap::new(),
            writes: BTreeMap::new(),
            per_address: HashMap::new(),
            verified: VerifiedSet::default(),
            max_txs: max_txs.max(10),
            bytes: 0,
            max_bytes: MAX_BYTES,
        }
    }

    /// The same pool with another bound on its encoded size.
    pub fn with_max_bytes(mut self, max_bytes: usize) -> Mempool {
        self.max_bytes = max_bytes;
        self
    }

    pub fn len(&self) -> usize {
        self.txs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.txs.is_empty()
    }

    pub fn contains(&self, txid: &Txid) -> bool {
        self.ids.contains_key(txid)
    }

    pub fn get(&self, txid: &Txid) -> Option<&Transaction> {
        self.ids.get(txid).map(|i| &self.txs[*i].1)
    }

    pub fn transactions(&self) -> impl Iterator<Item = &Transaction> {
        self.txs.iter().map(|(_, t)| t)
    }

    /// Total encoded size of the pool.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// The pool's effects on coins: created (`Some`) and spent (`None`) outputs.
    pub fn utxo_writes(
        &self,
    ) -> impl Iterator<Item = (&wattle_ledger::tx::OutPoint, Option<&StateValue>)> {
        self.writes.iter().filter_map(|(k, v)| match k {
            StateKey::Utxo(op) => Some((op, v.as_ref())),
            _ => None,
        })
    }

    /// The state the pool sees (tip state + pool effects).
    pub fn view<'a, V: LedgerView + ?Sized>(&'a self, base: &'a V) -> PoolView<'a, V> {
        PoolView {
            base,
            writes: &self.writes,
        }
    }

    fn first_input_address(tx: &Transaction) -> Option<Address> {
        tx.inputs.first().map(|i| i.pubkey.address())
    }

    /// Checks signatures once per node (then remembered by txid).
    pub fn check_signatures(
        &mut self,
        tx: &Transaction,
        txid: Txid,
        chain: &Chain,
    ) -> Result<(), TxError> {
        if !self.verified.contains(&txid) {
            validate::check_stateless(tx, chain)?;
            validate::check_signatures(tx, chain)?;
            self.verified.insert(txid);
        }
        Ok(())
    }

    /// Validates and adds a transaction.
    pub fn add<V: LedgerView + ?Sized>(
        &mut self,
        base: &V,
        chain: &Chain,
        tip_height: u32,
        tx: Transaction,
    ) -> Result<Txid, MempoolError> {
        let txid = tx.txid();
        if self.ids.contains_key(&txid) {
            return Err(MempoolError::Duplicate);
        }
        let size = wattle_ledger::codec::encoded_len(&tx);
        if self.txs.len() >= self.max_txs || self.bytes + size > self.max_bytes {
            return Err(MempoolError::Full);
        }
        if let Some(a) = Self::first_input_address(&tx)
            && self.txs.len() >= self.max_txs / 2
            && self.per_address.get(&a).copied().unwrap_or(0) >= self.max_txs / 10
        {
            return Err(MempoolError::AddressQuota);
        }
        self.check_signatures(&tx, txid, chain)?;
        let ctx = TxContext {
            chain,
            height: tip_height + 1,
            offset: 0,
            signatures_checked: true,
        };
        let mut overlay = Overlay::with_writes(base, std::mem::take(&mut self.writes));
        // apply_tx validates fully before it writes, so a failure leaves the writes untouched.
        let result = apply_tx(&mut overlay, &tx, &ctx);
        self.writes = overlay.into_writes();
        result?;
        if let Some(a) = Self::first_input_address(&tx) {
            *self.per_address.entry(a).or_default() += 1;
        }
        self.ids.insert(txid, self.txs.len());
        self.txs.push((txid, tx));
        self.bytes += size;
        Ok(txid)
    }

    /// Rebuilds the pool on a new tip after a branch switch. `returned` are the transactions of
    /// rolled-back blocks (in block order), `included` the txids of the applied blocks. Returns the
    /// transactions that no longer fit (conflicted), with the reason.
    pub fn rebuild<V: LedgerView + ?Sized>(
        &mut self,
        base: &V,
        chain: &Chain,
        tip_height: u32,
        returned: Vec<Transaction>,
        included: &HashSet<Txid>,
    ) -> Vec<(Txid, TxError)> {
        let old = std::mem::take(&mut self.txs);
        self.ids.clear();
        self.writes.clear();
        self.per_address.clear();
        let mut conflicted = Vec::new();
        let candidates = returned.into_iter().map(|t| (t.txid(), t)).chain(old);
        let ctx = TxContext {
            chain,
            height: tip_height + 1,
            offset: 0,
            signatures_checked: true,
        };
        let mut overlay = Overlay::new(base);
        for (txid, tx) in candidates {
            if included.contains(&txid) || self.ids.contains_key(&txid) {
                continue;
            }
            if !self.verified.contains(&txid) {
                if let Err(e) = validate::check_stateless(&tx, chain)
                    .and_then(|_| validate::check_signatures(&tx, chain))
                {
                    conflicted.push((txid, e));
                    continue;
                }
                self.verified.insert(txid);
            }
            match apply_tx(&mut overlay, &tx, &ctx) {
                Ok(_) => {
                    if let Some(a) = Self::first_input_address(&tx) {
                        *self.per_address.entry(a).or_default() += 1;
                    }
                    self.ids.insert(txid, self.txs.len());
                    self.txs.push((txid, tx));
                }
                Err(e) => conflicted.push((txid, e)),
            }
        }
        self.writes = overlay.into_writes();
        self.bytes = self
            .txs
            .iter()
            .map(|(_, t)| wattle_ledger::codec::encoded_len(t))
            .sum();
        conflicted
    }

    /// Transactions for the next block, in pool order, within `max_bytes`.
    pub fn block_candidates(&self, max_bytes: usize) -> Vec<Transaction> {
        let mut out = Vec::new();
        let mut size = 0;
        for (_, tx) in &self.txs {
            let len = wattle_ledger::codec::encoded_len(tx);
            if size + len > max_bytes {
                break;
            }
            size += len;
            out.push(tx.clone());
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wattle_ledger::permissions::{GlobalPerm, Permission};
    use wattle_ledger::testkit::{TestChain, key};

    fn funded() -> (TestChain, wattle_ledger::SecretKey, wattle_ledger::AssetId) {
        let mut t = TestChain::new();
        let a = t.admin.clone();
        let u = key(1);
        let csr =
            [GlobalPerm::Connect, GlobalPerm::Send, GlobalPerm::Receive].map(Permission::Global);
        let txs = vec![t.grant(&a, u.address(), &csr)];
        t.mine(txs).unwrap();
        let txs = vec![t.issue(&a, u.address(), "energy", true, 1, 100, &[])];
        t.mine(txs).unwrap();
        let e = t.asset_id("energy");
        (t, u, e)
    }

    #[test]
    fn accepts_valid_refuses_duplicates_and_double_spends() {
        let (t, u, e) = funded();
        let mut pool = Mempool::new(100);
        let h = t.tip().height;
        let tx = t.transfer(&u, t.admin.address(), e, 10);
        pool.add(&t.state, &t.chain, h, tx.clone()).unwrap();
        assert_eq!(
            pool.add(&t.state, &t.chain, h, tx.clone()),
            Err(MempoolError::Duplicate)
        );
        let mut other = t.transfer(&u, t.admin.address(), e, 20);
        assert!(matches!(
            pool.add(&t.state, &t.chain, h, other.clone()),
            Err(MempoolError::Invalid(TxError::MissingInput { .. }))
        ));
        other.inputs[0].signature.0[0] ^= 1;
        assert!(matches!(
            pool.add(&t.state, &t.chain, h, other),
            Err(MempoolError::Invalid(TxError::BadSignature { .. }))
        ));
        assert_eq!(pool.len(), 1);
    }

    #[test]
    fn parallel_verification_passes_exactly_the_valid_transactions() {
        let (t, u, e) = funded();
        let mut txs: Vec<Transaction> = (0..40)
            .map(|i| t.transfer(&u, t.admin.address(), e, 1 + i))
            .collect();
        txs[7].inputs[0].signature.0[3] ^= 1;
        txs[31].version += 1;
        let pairs: Vec<(Txid, &Transaction)> = txs.iter().map(|t| (t.txid(), t)).collect();
        let mut expected: Vec<Txid> = pairs
            .iter()
            .enumerate()
            .filter(|(i, _)| *i != 7 && *i != 31)
            .map(|(_, (id, _))| *id)
            .collect();
        expected.sort();
        for threads in [1, 2, 3, 8, 64] {
            let mut got = verify_in_parallel(&pairs, &t.chain, threads);
            got.sort();
            assert_eq!(got, expected, "{threads} threads");
        }
        assert!(verify_in_parallel(&[], &t.chain, 4).is_empty());
    }

    #[test]
    fn rebuild_drops_what_the_chain_spent_and_keeps_the_rest() {
        let (mut t, u, e) = funded();
        let mut pool = Mempool::new(100);
        let h = t.tip().height;
        let tx = t.transfer(&u, t.admin.address(), e, 10);
        pool.add(&t.state, &t.chain, h, tx.clone()).unwrap();
        // A conflicting spend gets mined instead.
        let rival = t.transfer(&u, t.admin.address(), e, 30);
        t.mine(vec![rival]).unwrap();
        let conflicted = pool.rebuild(&t.state, &t.chain, t.tip().height, vec![], &HashSet::new());
        assert_eq!(conflicted.len(), 1);
        assert_eq!(conflicted[0].0, tx.txid());
        assert!(pool.is_empty());
        assert_eq!(pool.bytes(), 0);
    }

    #[test]
    fn the_pool_is_bounded_in_bytes() {
        let (t, u, e) = funded();
        let h = t.tip().height;
        let first = t.transfer(&u, t.admin.address(), e, 10);
        // The second spends the first's change, so both fit the pool's state.
        let change = first
            .outputs
            .iter()
            .position(|o| o.address == u.address())
            .expect("change output");
        let mut second = Transaction {
            version: first.version,
            inputs: vec![wattle_ledger::testkit::unsigned_input(
                first.outpoint(change as u32),
            )],
            outputs: vec![first.outputs[change].clone()],
            ops: vec![],
        };
        sighash_all(&mut second, &u, &t.chain);
        let sizes = [&first, &second].map(wattle_ledger::codec::encoded_len);
        // One byte short of room for both.
        let mut pool = Mempool::new(100).with_max_bytes(sizes[0] + sizes[1] - 1);
        pool.add(&t.state, &t.chain, h, first.clone()).unwrap();
        assert_eq!(pool.bytes(), sizes[0]);
        assert_eq!(
            pool.add(&t.state, &t.chain, h, second.clone()),
            Err(MempoolError::Full)
        );
        assert_eq!((pool.len(), pool.bytes()), (1, sizes[0]));
        // With room, the same transaction is accepted.
        let mut roomy = Mempool::new(100).with_max_bytes(sizes[0] + sizes[1]);
        roomy.add(&t.state, &t.chain, h, first).unwrap();
        roomy.add(&t.state, &t.chain, h, second).unwrap();
        assert_eq!(roomy.bytes(), sizes[0] + sizes[1]);
        assert_eq!(Mempool::new(100).max_bytes, MAX_BYTES);
    }

    fn sighash_all(tx: &mut Transaction, key: &wattle_ledger::SecretKey, chain: &Chain) {
        wattle_ledger::sighash::sign_all(tx, &[key], &chain.id);
    }
}
