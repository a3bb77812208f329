//! The store's writes: the genesis block and branch switches. Each is checked in full first (nothing is written for a branch
//! that does not fit the stored chain or changesets that do not match the stored state), then
//! appends and fsyncs its new block records, then makes ONE sled batch and flushes it.

use super::addresses::Written;
use super::blockfile::BlockFiles;
use super::index::{self, BlockEntry, meta};
use super::{Store, StoreError};
use std::collections::BTreeMap;
use wattle_consensus::BranchBlock;
use wattle_consensus::schedule::IN_TURN_WEIGHT;
use wattle_ledger::block::{Block, BlockId};
use wattle_ledger::codec;
use wattle_ledger::hash::Hash256;
use wattle_ledger::state::{Changeset, StateKey, StateValue, TipInfo};
use wattle_ledger::tx::Txid;

/// The net effect of replaying changesets on the stored state. Each change must start from the
/// value the key has at that point of the replay (as `MemoryView::apply` demands).
pub(super) struct StateDelta<'a> {
    store: &'a Store,
    original: BTreeMap<StateKey, Option<StateValue>>,
    current: BTreeMap<StateKey, Option<StateValue>>,
}

impl<'a> StateDelta<'a> {
    pub(super) fn new(store: &'a Store) -> StateDelta<'a> {
        StateDelta {
            store,
            original: BTreeMap::new(),
            current: BTreeMap::new(),
        }
    }

    fn step(
        &mut self,
        key: &StateKey,
        from: &Option<StateValue>,
        to: &Option<StateValue>,
        new_output: bool,
    ) -> Result<(), StoreError> {
        let now = match self.current.get(key) {
            Some(v) => v.clone(),
            // An output its block creates: no coin can be stored under its key (its transaction
            // spends a coin, so its txid is new: see `Overlay::put_new`), so it is not looked
            // up. A rollback in the same switch that removed it has put it in `current` above.
            None if new_output => {
                self.original.insert(key.clone(), None);
                None
            }
            None => {
                let stored = self.store.state_get(key)?;
                self.original.insert(key.clone(), stored.clone());
                stored
            }
        };
        if now != *from {
            return Err(StoreError::StateMismatch {
                key: format!("{key:?}"),
            });
        }
        self.current.insert(key.clone(), to.clone());
        Ok(())
    }

    /// Undoes a block's changes.
    pub(super) fn revert(&mut self, changes: &Changeset) -> Result<(), StoreError> {
        for (key, c) in &changes.changes {
            self.step(key, &c.new, &c.old, false)?;
        }
        Ok(())
    }

    /// Applies a block's changes.
    pub(super) fn apply(&mut self, changes: &Changeset) -> Result<(), StoreError> {
        for (key, c) in &changes.changes {
            let new_output = matches!(key, StateKey::Utxo(_)) && c.old.is_none() && c.new.is_some();
            self.step(key, &c.old, &c.new, new_output)?;
        }
        Ok(())
    }

    /// Checks that the resulting state's `Tip` names `tip`.
    pub(super) fn check_tip(&mut self, tip: &TipInfo) -> Result<(), StoreError> {
        let expected = Some(StateValue::Tip(tip.clone()));
        let result = match self.current.get(&StateKey::Tip) {
            Some(v) => v.clone(),
            None => self.store.state_get(&StateKey::Tip)?,
        };
        if result != expected {
            return Err(StoreError::BadBranch(format!(
                "the changesets leave the state's tip at {result:?}, not at the branch tip {tip:?}"
            )));
        }
        Ok(())
    }

    /// Adds the writes that change something to `batch`; returns them with their values
    /// before (for the state cache and the address index).
    pub(super) fn write(mut self, batch: &mut sled::Batch) -> Vec<Written> {
        let mut written = Vec::with_capacity(self.current.len());
        for (key, value) in self.current {
            let original = self.original.remove(&key).unwrap_or(None);
            if original == value {
                continue;
            }
            match &value {
                Some(v) => batch.insert(index::state_key(&key), codec::encode(v)),
                None => batch.remove(index::state_key(&key)),
            }
            written.push((key, original, value));
        }
        written
    }
}

/// A checked branch switch: the ids of the blocks involved and the tip it leads to.
struct BranchPlan {
    fork_height: u32,
    applied: Vec<BlockId>,
    new_tip: TipInfo,
}

impl Store {
    /// Stores the genesis block and the state it creates (`apply_genesis`'s changeset), making
    /// the store hold this chain. Refuses if the store already holds a chain.
    pub fn init_genesis(&self, genesis: &Block, changes: &Changeset) -> Result<(), StoreError> {
        let mut files = self.writer()?;
        if self.is_initialized() || self.db.get(index::meta_key(meta::GENESIS))?.is_some() {
            return Err(StoreError::AlreadyInitialized);
        }
        if genesis.header.height != 0 {
            return Err(StoreError::BadBranch(
                "the genesis block has height 0".into(),
            ));
        }
        let id = genesis.header.id(&Hash256::ZERO);
        let tip = TipInfo {
            height: 0,
            id,
            timestamp_ms: genesis.header.timestamp_ms,
        };
        let mut delta = StateDelta::new(self);
        delta.apply(changes)?;
        delta.check_tip(&tip)?;
        let result = (|| {
            let mut batch = sled::Batch::default();
            let loc = files.append(&codec::encode(genesis))?;
            files.sync()?;
            let entry = BlockEntry::new(loc, 0, IN_TURN_WEIGHT, tip.timestamp_ms);
            batch.insert(index::block_key(&id), codec::encode(&entry));
            batch.insert(index::undo_key(&id), codec::encode(&Changeset::default()));
            batch.insert(index::height_key(0), &id.0[..]);
            index_txs(&mut batch, genesis, 0);
            let written = delta.write(&mut batch);
            batch.insert(index::meta_key(meta::GENESIS), &id.0[..]);
            batch.insert(
                index::meta_key(meta::LAST_FINAL),
                codec::encode(&(0u32, id)),
            );
            batch.insert(
                index::meta_key(meta::BLOCKS_END),
                codec::encode(&files.end()),
            );
            self.commit(batch, written)
        })();
        self.check_write(result)?;
        let _ = self.chain_id.set(id);
        Ok(())
    }

    /// Makes the branch ending with `apply` the main chain in ONE write: undoes `rollback`
    /// (newest first, starting with the current tip) and applies `apply` (oldest first, the first
    /// one's parent being the block `rollback` leads back to, or the tip if `rollback` is empty).
    /// New blocks are appended to the block files; blocks stored before (a branch adopted
    /// again) are not. Every change must start from the stored value and the result's `Tip`
    /// must name the new tip block; otherwise nothing is written. A failed write leaves the
    /// store refusing further writes: stop the node.
    pub fn adopt(&self, rollback: &[BranchBlock], apply: &[BranchBlock]) -> Result<(), StoreError> {
        self.adopt_with_meta(rollback, apply, &[])
    }

    /// `adopt`, also writing meta values in the same batch: a miner records
    /// `meta::LAST_SIGNED` together with the block it signed (DESIGN §4.7), so that no crash can
    /// separate the two. The names the store keeps itself are refused.
    pub fn adopt_with_meta(
        &self,
        rollback: &[BranchBlock],
        apply: &[BranchBlock],
        meta_values: &[(&str, &[u8])],
    ) -> Result<(), StoreError> {
        if let Some((name, _)) = meta_values.iter().find(|(n, _)| meta::RESERVED.contains(n)) {
            return Err(StoreError::ReservedMeta(name.to_string()));
        }
        if rollback.is_empty() && apply.is_empty() && meta_values.is_empty() {
            return Ok(());
        }
        let mut files = self.writer()?;
        let plan = self.plan_branch(rollback, apply)?;
        let mut delta = StateDelta::new(self);
        for b in rollback {
            delta.revert(&b.changes)?;
        }
        for b in apply {
            delta.apply(&b.changes)?;
        }
        delta.check_tip(&plan.new_tip)?;
        let result = (|| {
            let mut batch = sled::Batch::default();
            let appended = self.store_blocks(&mut files, apply, &plan.applied, &mut batch)?;
            self.index_branch(&mut batch, rollback, apply, &plan);
            let written = delta.write(&mut batch);
            if appended {
                let end = codec::encode(&files.end());
                batch.insert(index::meta_key(meta::BLOCKS_END), end);
            }
            for (name, value) in meta_values {
                batch.insert(index::meta_key(name), *value);
            }
            self.commit(batch, written)
        })();
        self.check_write(result)
    }

    /// Checks that `rollback` walks down the main chain from the tip and `apply` builds on the
    /// block it reaches, one height at a time.
    fn plan_branch(
        &self,
        rollback: &[BranchBlock],
        apply: &[BranchBlock],
    ) -> Result<BranchPlan, StoreError> {
        let tip = self.tip()?.ok_or(StoreError::NotInitialized)?;
        for (i, b) in rollback.iter().enumerate() {
            let height = b.block.header.height;
            if height == 0 || tip.height.checked_sub(i as u32) != Some(height) {
                let why = format!("rollback[{i}] has height {height}, tip is {}", tip.height);
                return Err(StoreError::BadBranch(why));
            }
            if self.main_id_at(height)? != Some(self.id_of(&b.block)) {
                let why = format!("rollback[{i}] is not the main block at height {height}");
                return Err(StoreError::BadBranch(why));
            }
        }
        let fork_height = tip.height - rollback.len() as u32;
        if let Some(bytes) = self.meta_get(meta::LAST_FINAL)? {
            let (final_height, _): (u32, BlockId) = index::decode("last_final", &bytes)?;
            if fork_height < final_height {
                let why = format!("it rolls back below the final height {final_height}");
                return Err(StoreError::BadBranch(why));
            }
        }
        let mut new_tip = self.main_tip_at(fork_height)?;
        let mut applied = Vec::with_capacity(apply.len());
        for (i, b) in apply.iter().enumerate() {
            let h = &b.block.header;
            if h.prev != new_tip.id || h.height != new_tip.height + 1 {
                return Err(StoreError::BadBranch(format!(
                    "apply[{i}] (height {}) does not build on {} at height {}",
                    h.height, new_tip.id, new_tip.height
                )));
            }
            let id = self.id_of(&b.block);
            applied.push(id);
            new_tip = TipInfo {
                height: h.height,
                id,
                timestamp_ms: h.timestamp_ms,
            };
        }
        Ok(BranchPlan {
            fork_height,
            applied,
            new_tip,
        })
    }

    /// The tip the state has when the main block at `height` is the last one.
    pub(super) fn main_tip_at(&self, height: u32) -> Result<TipInfo, StoreError> {
        let missing = |what: &str| StoreError::Decode {
            what: "main chain",
            why: format!("no {what} for the main block at height {height}"),
        };
        let id = self.main_id_at(height)?.ok_or_else(|| missing("id"))?;
        let entry = self.block_entry(&id)?.ok_or_else(|| missing("entry"))?;
        Ok(TipInfo {
            height,
            id,
            timestamp_ms: entry.timestamp_ms,
        })
    }

    /// Appends the blocks not stored yet (then fsyncs) and writes every applied block's entry
    /// and undo data. Returns whether anything was appended.
    fn store_blocks(
        &self,
        files: &mut BlockFiles,
        apply: &[BranchBlock],
        ids: &[BlockId],
        batch: &mut sled::Batch,
    ) -> Result<bool, StoreError> {
        let mut appended = false;
        let mut entries = Vec::with_capacity(apply.len());
        for (b, id) in apply.iter().zip(ids) {
            let h = &b.block.header;
            let loc = match self.block_entry(id)? {
                Some(entry) => entry.loc(),
                None => {
                    appended = true;
                    files.append(&codec::encode(b.block.as_ref()))?
                }
            };
            entries.push(BlockEntry::new(loc, h.height, b.weight, h.timestamp_ms));
        }
        if appended {
            files.sync()?;
        }
        for ((b, id), entry) in apply.iter().zip(ids).zip(entries) {
            batch.insert(index::block_key(id), codec::encode(&entry));
            batch.insert(index::undo_key(id), codec::encode(&b.changes));
        }
        Ok(appended)
    }

    /// The height and transaction index writes of a branch switch.
    fn index_branch(
        &self,
        batch: &mut sled::Batch,
        rollback: &[BranchBlock],
        apply: &[BranchBlock],
        plan: &BranchPlan,
    ) {
        let mut heights: BTreeMap<u32, Option<BlockId>> = BTreeMap::new();
        let mut txs: BTreeMap<Txid, Option<(u32, u32)>> = BTreeMap::new();
        for b in rollback {
            heights.insert(b.block.header.height, None);
            for tx in &b.block.txs {
                txs.insert(tx.txid(), None);
            }
        }
        for (b, id) in apply.iter().zip(&plan.applied) {
            let height = b.block.header.height;
            heights.insert(height, Some(*id));
            for (i, tx) in b.block.txs.iter().enumerate() {
                txs.insert(tx.txid(), Some((height, i as u32)));
            }
        }
        debug_assert!(heights.keys().all(|h| *h > plan.fork_height));
        for (height, id) in heights {
            match id {
                Some(id) => batch.insert(index::height_key(height), &id.0[..]),
                None => batch.remove(index::height_key(height)),
            }
        }
        for (txid, at) in txs {
            match at {
                Some(at) => batch.insert(index::tx_key(&txid), codec::encode(&at)),
                None => batch.remove(index::tx_key(&txid)),
            }
        }
    }

    /// Applies one batch and flushes it to disk; `state` are the state changes it writes, for
    /// the cache (which forgets everything if the write fails) and the address index.
    pub(super) fn commit(&self, batch: sled::Batch, state: Vec<Written>) -> Result<(), StoreError> {
        self.cache.begin_write();
        let result = self
            .db
            .apply_batch(batch)
            .and_then(|_| self.db.flush().map(|_| ()));
        match result {
            Ok(()) => {
                self.addresses.apply(&state);
                self.cache
                    .finish_write(state.into_iter().map(|(k, _, new)| (k, new)).collect());
                Ok(())
            }
            Err(e) => {
                self.cache.clear();
                Err(e.into())
            }
        }
    }
}

/// Indexes a block's transactions at `height`.
fn index_txs(batch: &mut sled::Batch, block: &Block, height: u32) {
    for (i, tx) in block.txs.iter().enumerate() {
        batch.insert(
            index::tx_key(&tx.txid()),
            codec::encode(&(height, i as u32)),
        );
    }
}
