//! Opening after the block files lost records sled had committed (a disk that acknowledged an
//! fsync it did not do, or a damaged last file cut back by `blockfile`): the main chain is rolled
//! back with the undo data to the last block still on disk, and the lost blocks are forgotten,
//! in one batch. The node then fetches them again from its peers like any missing block.
//!
//! Blocks are appended when first adopted and a child is adopted only after its parent, so a
//! child's record always follows its parent's: the lost main blocks are the top of the main chain.

use super::blockfile::FilePos;
use super::index::{self, BlockEntry, meta};
use super::write::StateDelta;
use super::{Store, StoreError};
use tracing::warn;
use wattle_ledger::block::BlockId;
use wattle_ledger::codec;

impl Store {
    /// Rolls the store back to the blocks whose records end at or before `valid_end`.
    pub(super) fn recover_lost_blocks(&self, valid_end: FilePos) -> Result<(), StoreError> {
        let lost = self.lost_blocks(valid_end)?;
        let tip = self.tip()?.ok_or(StoreError::NotInitialized)?;
        let fork_height = match self.lowest_main_height(&lost)? {
            Some(0) => return Err(StoreError::LostBlocks("the genesis block is gone".into())),
            Some(h) => h - 1,
            None => tip.height,
        };
        let mut delta = StateDelta::new(self);
        let mut batch = sled::Batch::default();
        for height in (fork_height + 1..=tip.height).rev() {
            let id = self.main_tip_at(height)?.id;
            delta.revert(&self.undo(&id)?)?;
            batch.remove(index::height_key(height));
        }
        delta.check_tip(&self.main_tip_at(fork_height)?)?;
        self.unindex_txs_above(&mut batch, fork_height)?;
        for (id, _) in &lost {
            batch.remove(index::block_key(id));
            batch.remove(index::undo_key(id));
        }
        let written = delta.write(&mut batch);
        batch.insert(index::meta_key(meta::BLOCKS_END), codec::encode(&valid_end));
        warn!(
            lost = lost.len(),
            from_height = tip.height,
            to_height = fork_height,
            "the block files lost committed blocks; rolled the store back to the last block on disk"
        );
        let result = self.commit(batch, written);
        self.check_write(result)
    }

    /// The stored blocks whose records end past `valid_end`.
    fn lost_blocks(&self, valid_end: FilePos) -> Result<Vec<(BlockId, BlockEntry)>, StoreError> {
        let mut lost = Vec::new();
        for item in self.db.scan_prefix([index::BLOCK]) {
            let (key, value) = item?;
            let entry: BlockEntry = index::decode("block entry", &value)?;
            if entry.end() > valid_end {
                let id = index::decode_hash("block key", key.get(1..).unwrap_or_default())?;
                lost.push((id, entry));
            }
        }
        Ok(lost)
    }

    /// The lowest height of a main-chain block among `blocks`.
    fn lowest_main_height(
        &self,
        blocks: &[(BlockId, BlockEntry)],
    ) -> Result<Option<u32>, StoreError> {
        let mut lowest: Option<u32> = None;
        for (id, entry) in blocks {
            if self.main_id_at(entry.height)? == Some(*id) {
                lowest = Some(lowest.map_or(entry.height, |l| l.min(entry.height)));
            }
        }
        Ok(lowest)
    }

    /// Removes the transaction index entries above `height` (a scan: the lost blocks' txids are
    /// gone with them).
    fn unindex_txs_above(&self, batch: &mut sled::Batch, height: u32) -> Result<(), StoreError> {
        for item in self.db.scan_prefix([index::TX]) {
            let (key, value) = item?;
            let (at, _): (u32, u32) = index::decode("tx index entry", &value)?;
            if at > height {
                batch.remove(index::tx_key(&index::txid_of_key(&key)?));
            }
        }
        Ok(())
    }
}
