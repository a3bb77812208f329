//! Ledger state as keys and values, the `LedgerView` seam between rules and storage, the
//! `Changeset` a block produces (with undo data), and in-memory and overlay views.

use crate::address::Address;
use crate::amount::Amount;
use crate::block::BlockId;
use crate::codec;
use crate::orderbook::{LevelInfo, OrderId, OrderRecord, Price, TradeRecord};
use crate::permissions::{GlobalPerm, PermRecord, Permission};
use crate::tx::{AssetId, OutPoint, Output, Txid};
use bincode::{Decode, Encode};
use std::collections::{BTreeMap, HashSet};

/// The chain tip the state corresponds to.
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode)]
pub struct TipInfo {
    pub height: u32,
    pub id: BlockId,
    pub timestamp_ms: u64,
}

/// An unspent output and the height of the block that created it.
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode)]
pub struct Utxo {
    pub output: Output,
    pub height: u32,
}

/// An asset and its running totals.
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode)]
pub struct AssetInfo {
    pub id: AssetId,
    pub name: String,
    pub open: bool,
    pub multiple: u32,
    pub fields: BTreeMap<String, String>,
    pub issuer: Address,
    /// Height and byte offset of the issue transaction: the asset reference `H-O-P`.
    pub height: u32,
    pub offset: u32,
    /// Raw units issued so far.
    pub total: Amount,
    /// Number of issuances (the first included).
    pub issue_count: u32,
}

impl AssetInfo {
    /// MultiChain's asset reference `H-O-P`: P is the first two txid bytes read little-endian.
    pub fn assetref(&self) -> String {
        let p = self.id.0[0] as u32 + 256 * self.id.0[1] as u32;
        format!("{}-{}-{}", self.height, self.offset, p)
    }
}

/// One issuance of an asset (the first, or a follow-on).
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode)]
pub struct IssueRecord {
    pub txid: Txid,
    pub quantity: Amount,
    pub fields: BTreeMap<String, String>,
    pub issuers: Vec<Address>,
}

/// A pending admin vote: what range the admin voted the permission to.
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode)]
pub struct Vote {
    pub admin: Address,
    pub start: u32,
    pub end: u32,
}

/// Every key of ledger state. The encoding's leading variant index makes each kind a key prefix.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Encode, Decode)]
pub enum StateKey {
    Tip,
    Utxo(OutPoint),
    Asset(AssetId),
    /// Lower-cased name → asset id.
    AssetName(String),
    AssetIssue(AssetId, u32),
    Perm(Address, Permission),
    /// Pending admin-consensus votes for (target, permission).
    Votes(Address, GlobalPerm),
    /// Every address that has a record for an admin-consensus permission (admin, mine, activate).
    Holders(GlobalPerm),
    /// The last height each miner signed (the diversity rule).
    LastSigned(Address),
    // The order book (`orderbook`). New variants go last: the index is the store's key prefix.
    /// An order, open or closed, by id.
    Order(OrderId),
    /// The prices of the non-empty levels of the orders selling the first asset for the second,
    /// best (lowest) first.
    Book(AssetId, AssetId),
    /// One price level of that side: its first and last order (a FIFO list) and totals.
    Level(AssetId, AssetId, Price),
    /// The n-th order (from 0) placed on the chain (`None`) or by one owner (`Some`).
    OrderLog(Option<Address>, u64),
    /// How many entries that log has.
    OrderLogLen(Option<Address>),
    /// The n-th trade (from 0) of a market: the two assets in ascending id order.
    TradeLog(AssetId, AssetId, u64),
    /// How many entries that log has.
    TradeLogLen(AssetId, AssetId),
    /// The n-th fill (from 0) of an order: the index of its trade in the market's log.
    OrderFill(OrderId, u32),
}

/// A ledger state value. The large records an order book or an asset issue writes are boxed:
/// every changeset entry holds two values and the state cache one, and an enum is as large as
/// its largest variant, so an inline 300-byte order record made each coin's entry 600 bytes
/// (the changesets of a node's recent blocks took most of its memory). Boxing does not change
/// the encoding.
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode)]
pub enum StateValue {
    Tip(TipInfo),
    Utxo(Utxo),
    Asset(Box<AssetInfo>),
    AssetName(AssetId),
    AssetIssue(Box<IssueRecord>),
    Perm(PermRecord),
    Votes(Vec<Vote>),
    Holders(Vec<Address>),
    LastSigned(u32),
    Order(Box<OrderRecord>),
    Book(Vec<Price>),
    Level(Box<LevelInfo>),
    /// An order id (the order logs).
    OrderRef(OrderId),
    Trade(Box<TradeRecord>),
    /// A count or an index (log lengths, fill references).
    Count(u64),
}

// A coin's value (`Utxo`, 56 bytes) is the one that must stay inline; a new variant larger than
// that belongs in a `Box`.
const _: () = assert!(std::mem::size_of::<StateValue>() <= 64);

impl StateKey {
    pub fn encode(&self) -> Vec<u8> {
        codec::encode(self)
    }
}

/// A storage failure behind a view: our fault, never the peer's or the user's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("ledger store failure: {0}")]
pub struct StoreError(pub String);

/// Read access to ledger state: the one seam between the rules and storage.
pub trait LedgerView {
    fn get(&self, key: &StateKey) -> Result<Option<StateValue>, StoreError>;
}

impl<V: LedgerView + ?Sized> LedgerView for &V {
    fn get(&self, key: &StateKey) -> Result<Option<StateValue>, StoreError> {
        (**self).get(key)
    }
}

macro_rules! typed_getter {
    // A value kept boxed in `StateValue` (a large, rarely changed record), returned unboxed.
    ($name:ident, $key:ident ( $($arg:ident : $ty:ty),* ), $variant:ident, Box<$out:ty>) => {
        pub fn $name(view: &(impl LedgerView + ?Sized), $($arg: $ty),*) -> Result<Option<$out>, StoreError> {
            match view.get(&StateKey::$key($($arg.clone()),*))? {
                Some(StateValue::$variant(v)) => Ok(Some(*v)),
                Some(other) => Err(StoreError(format!("wrong value kind under {}: {other:?}", stringify!($key)))),
                None => Ok(None),
            }
        }
    };
    ($name:ident, $key:ident ( $($arg:ident : $ty:ty),* ), $variant:ident, $out:ty) => {
        pub fn $name(view: &(impl LedgerView + ?Sized), $($arg: $ty),*) -> Result<Option<$out>, StoreError> {
            match view.get(&StateKey::$key($($arg.clone()),*))? {
                Some(StateValue::$variant(v)) => Ok(Some(v)),
                Some(other) => Err(StoreError(format!("wrong value kind under {}: {other:?}", stringify!($key)))),
                None => Ok(None),
            }
        }
    };
}

/// Typed reads.
pub mod read {
    use super::*;

    pub fn tip(view: &(impl LedgerView + ?Sized)) -> Result<Option<TipInfo>, StoreError> {
        match view.get(&StateKey::Tip)? {
            Some(StateValue::Tip(t)) => Ok(Some(t)),
            Some(other) => Err(StoreError(format!("wrong value kind under Tip: {other:?}"))),
            None => Ok(None),
        }
    }
    typed_getter!(utxo, Utxo(op: &OutPoint), Utxo, Utxo);
    typed_getter!(asset, Asset(id: &AssetId), Asset, Box<AssetInfo>);
    typed_getter!(asset_issue, AssetIssue(id: &AssetId, n: &u32), AssetIssue, Box<IssueRecord>);
    typed_getter!(perm, Perm(a: &Address, p: &Permission), Perm, PermRecord);
    typed_getter!(votes, Votes(a: &Address, p: &GlobalPerm), Votes, Vec<Vote>);
    typed_getter!(holders, Holders(p: &GlobalPerm), Holders, Vec<Address>);
    typed_getter!(last_signed, LastSigned(a: &Address), LastSigned, u32);
    typed_getter!(order, Order(id: &OrderId), Order, Box<OrderRecord>);
    typed_getter!(book, Book(sell: &AssetId, buy: &AssetId), Book, Vec<Price>);
    typed_getter!(level, Level(sell: &AssetId, buy: &AssetId, price: &Price), Level, Box<LevelInfo>);
    typed_getter!(order_log, OrderLog(owner: &Option<Address>, n: &u64), OrderRef, OrderId);
    typed_getter!(order_log_len, OrderLogLen(owner: &Option<Address>), Count, u64);
    typed_getter!(trade_log, TradeLog(lo: &AssetId, hi: &AssetId, n: &u64), Trade, Box<TradeRecord>);
    typed_getter!(trade_log_len, TradeLogLen(lo: &AssetId, hi: &AssetId), Count, u64);
    typed_getter!(order_fill, OrderFill(id: &OrderId, n: &u32), Count, u64);

    pub fn asset_by_name(
        view: &(impl LedgerView + ?Sized),
        name: &str,
    ) -> Result<Option<AssetId>, StoreError> {
        match view.get(&StateKey::AssetName(name.to_lowercase()))? {
            Some(StateValue::AssetName(id)) => Ok(Some(id)),
            Some(other) => Err(StoreError(format!(
                "wrong value kind under AssetName: {other:?}"
            ))),
            None => Ok(None),
        }
    }
}

/// One key's change: its value before and after.
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode)]
pub struct Change {
    pub old: Option<StateValue>,
    pub new: Option<StateValue>,
}

/// The key-level writes of a block, each with its previous value (the undo data).
#[derive(Clone, Debug, Default, PartialEq, Eq, Encode, Decode)]
pub struct Changeset {
    pub changes: BTreeMap<StateKey, Change>,
}

impl Changeset {
    /// The changeset that rolls this one back.
    pub fn inverse(&self) -> Changeset {
        Changeset {
            changes: self
                .changes
                .iter()
                .map(|(k, c)| {
                    (
                        k.clone(),
                        Change {
                            old: c.new.clone(),
                            new: c.old.clone(),
                        },
                    )
                })
                .collect(),
        }
    }

    pub fn len(&self) -> usize {
        self.changes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.changes.is_empty()
    }
}

/// Ledger state in a `BTreeMap`: backs unit tests and simulations.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MemoryView {
    pub map: BTreeMap<StateKey, StateValue>,
}

impl MemoryView {
    pub fn new() -> MemoryView {
        MemoryView::default()
    }

    /// Applies a changeset. Every change must start from the value currently stored; a mismatch
    /// means the changeset was built on other state and nothing is written.
    pub fn apply(&mut self, changes: &Changeset) -> Result<(), StoreError> {
        for (key, change) in &changes.changes {
            if self.map.get(key) != change.old.as_ref() {
                return Err(StoreError(format!(
                    "changeset does not apply: {key:?} differs"
                )));
            }
        }
        for (key, change) in &changes.changes {
            match &change.new {
                Some(v) => self.map.insert(key.clone(), v.clone()),
                None => self.map.remove(key),
            };
        }
        Ok(())
    }

    /// A hash of the whole state, for comparing states across runs and nodes.
    pub fn state_hash(&self) -> crate::hash::Hash256 {
        let bytes = codec::encode(&self.map.iter().collect::<Vec<_>>());
        crate::hash::Hash256::tagged(b"WATTLE/STATE/1", &[&bytes])
    }
}

impl LedgerView for MemoryView {
    fn get(&self, key: &StateKey) -> Result<Option<StateValue>, StoreError> {
        Ok(self.map.get(key).cloned())
    }
}

/// Pending writes on top of a base view: reads see the writes first. Block application runs on
/// one so that each transaction sees the effects of the earlier ones; a transaction is fully
/// validated before it writes anything, and a failed block discards the whole overlay.
pub struct Overlay<'a, V: LedgerView + ?Sized> {
    base: &'a V,
    writes: BTreeMap<StateKey, Option<StateValue>>,
    /// Keys written with [`Overlay::put_new`]: absent from `base` by construction, so
    /// `into_changeset` does not read their old value.
    fresh: HashSet<StateKey>,
}

impl<'a, V: LedgerView + ?Sized> Overlay<'a, V> {
    pub fn new(base: &'a V) -> Self {
        Overlay {
            base,
            writes: BTreeMap::new(),
            fresh: HashSet::new(),
        }
    }

    /// An overlay that starts with earlier writes (e.g. the mempool's accumulated effects).
    pub fn with_writes(base: &'a V, writes: BTreeMap<StateKey, Option<StateValue>>) -> Self {
        Overlay {
            base,
            writes,
            fresh: HashSet::new(),
        }
    }

    /// The pending writes, to keep them beyond the borrow of the base.
    pub fn into_writes(self) -> BTreeMap<StateKey, Option<StateValue>> {
        self.writes
    }

    pub fn put(&mut self, key: StateKey, value: StateValue) {
        self.writes.insert(key, Some(value));
    }

    pub fn delete(&mut self, key: StateKey) {
        self.writes.insert(key, None);
    }

    /// Writes a key the base cannot hold: a new transaction's output. (Every transaction spends
    /// at least one coin, so its txid — and the keys of its outputs — never existed before it
    /// is applied.) `into_changeset` takes its old value to be absent instead of reading the
    /// base: for a store, a lookup of a key that is not there, one per output of a block.
    pub fn put_new(&mut self, key: StateKey, value: StateValue) {
        self.fresh.insert(key.clone());
        self.writes.insert(key, Some(value));
    }

    /// The writes as a changeset with undo data read from the base. Writes that leave a key as it
    /// was are dropped.
    pub fn into_changeset(self) -> Result<Changeset, StoreError> {
        let mut changes = BTreeMap::new();
        for (key, new) in self.writes {
            let old = if self.fresh.contains(&key) {
                None
            } else {
                self.base.get(&key)?
            };
            if old != new {
                changes.insert(key, Change { old, new });
            }
        }
        Ok(Changeset { changes })
    }
}

impl<V: LedgerView + ?Sized> LedgerView for Overlay<'_, V> {
    fn get(&self, key: &StateKey) -> Result<Option<StateValue>, StoreError> {
        match self.writes.get(key) {
            Some(v) => Ok(v.clone()),
            None => self.base.get(key),
        }
    }
}

/// A base view with changesets stacked on top (state at a fork point plus a branch's blocks), so
/// the node can judge a side branch by its own state.
pub struct StackedView<'a, V: LedgerView + ?Sized> {
    base: &'a V,
    top: BTreeMap<StateKey, Option<StateValue>>,
}

impl<'a, V: LedgerView + ?Sized> StackedView<'a, V> {
    pub fn new(base: &'a V) -> Self {
        StackedView {
            base,
            top: BTreeMap::new(),
        }
    }

    pub fn push(&mut self, changes: &Changeset) {
        for (k, c) in &changes.changes {
            self.top.insert(k.clone(), c.new.clone());
        }
    }
}

impl<V: LedgerView + ?Sized> LedgerView for StackedView<'_, V> {
    fn get(&self, key: &StateKey) -> Result<Option<StateValue>, StoreError> {
        match self.top.get(key) {
            Some(v) => Ok(v.clone()),
            None => self.base.get(key),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hash::Hash256;
    use std::cell::RefCell;

    /// A view that records every key it is asked for.
    struct Recording {
        inner: MemoryView,
        asked: RefCell<Vec<StateKey>>,
    }

    impl LedgerView for Recording {
        fn get(&self, key: &StateKey) -> Result<Option<StateValue>, StoreError> {
            self.asked.borrow_mut().push(key.clone());
            self.inner.get(key)
        }
    }

    fn coin(txid: u8, vout: u32) -> (StateKey, StateValue) {
        let key = StateKey::Utxo(OutPoint {
            txid: Hash256([txid; 32]),
            vout,
        });
        let value = StateValue::Utxo(Utxo {
            output: Output {
                address: Address([txid; 20]),
                assets: Vec::new(),
            },
            height: 1,
        });
        (key, value)
    }

    #[test]
    fn new_outputs_are_not_read_back_and_the_rest_is() {
        let (spent, spent_value) = coin(1, 0);
        let mut inner = MemoryView::default();
        inner.map.insert(spent.clone(), spent_value.clone());
        let base = Recording {
            inner,
            asked: RefCell::new(Vec::new()),
        };
        let (created, created_value) = coin(2, 0);
        let (created_and_spent, value) = coin(2, 1);
        let mut overlay = Overlay::new(&base);
        overlay.delete(spent.clone());
        overlay.put_new(created.clone(), created_value.clone());
        overlay.put_new(created_and_spent.clone(), value);
        overlay.delete(created_and_spent.clone());
        let changes = overlay.into_changeset().unwrap();
        // Only the spent coin was looked up; its old value comes from the base.
        assert_eq!(*base.asked.borrow(), vec![spent.clone()]);
        assert_eq!(changes.changes.len(), 2);
        assert_eq!(changes.changes[&spent].old, Some(spent_value));
        assert_eq!(changes.changes[&spent].new, None);
        assert_eq!(changes.changes[&created].old, None);
        assert_eq!(changes.changes[&created].new, Some(created_value));
        assert!(!changes.changes.contains_key(&created_and_spent));
    }
}
