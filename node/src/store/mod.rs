//! The node's store: blocks in append-only, checksummed block files (`blocks/NNNNN.dat`), and
//! everything derived from them — ledger state, the main-chain height index, block locations and
//! weights, undo data, the transaction index and meta values — in one sled tree under key
//! prefixes (layout in [`index`]).
//!
//! Writes (DESIGN §5): a branch switch appends its new blocks to the block files and fsyncs them,
//! then makes every derived change in ONE `sled::Batch` followed by a flush. Nothing is visible
//! before the batch, and a crash leaves either the old or the new branch. A failed write marks the
//! store failed: it refuses further writes and the node must stop.
//!
//! Opening checks the last block file (`blockfile`): a torn record at its end is cut off, damage
//! anywhere else is an error; if the files lost blocks sled had committed, the main chain is
//! rolled back to the last block still on disk (`recover`).
//!
//! Only the chain actor writes; any number of readers may share the store (it is `Sync`). Each
//! single read sees a whole batch or none of it; a reader that needs several reads from one state
//! (e.g. tip and a balance) can check that the tip did not change in between.

mod addresses;
mod blockfile;
mod cache;
mod index;
mod recover;
mod write;

#[cfg(test)]
mod model_tests;
#[cfg(test)]
mod tests;

pub use blockfile::{FilePos, MAX_FILE_BYTES, RecordLoc, Records};
pub use index::{BlockEntry, kind, meta};

use blockfile::BlockFiles;
use index::{decode, decode_hash};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};
use wattle_consensus::BranchBlock;
use wattle_ledger::block::{Block, BlockId};
use wattle_ledger::hash::Hash256;
use wattle_ledger::state::{Changeset, LedgerView, StateKey, StateValue, TipInfo};
use wattle_ledger::tx::Txid;

/// Why the store could not do what was asked. Every variant is our fault (or the disk's): the
/// node logs it and stops rather than go on with a store that may be half-written.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("sled: {0}")]
    Sled(#[from] sled::Error),
    #[error("cannot {op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "corrupt block record in {path} at offset {offset}: {why}; the block files are damaged \
         (restore the data directory or resync the node)"
    )]
    CorruptRecord {
        path: PathBuf,
        offset: u64,
        why: String,
    },
    #[error("the block files lost data the store needs: {0}")]
    LostBlocks(String),
    #[error("undecodable {what} in the store: {why}")]
    Decode { what: &'static str, why: String },
    #[error("the store already holds a chain")]
    AlreadyInitialized,
    #[error("the store holds no chain yet")]
    NotInitialized,
    #[error("the branch does not fit the stored chain: {0}")]
    BadBranch(String),
    #[error("the changesets do not match the stored state at {key}")]
    StateMismatch { key: String },
    #[error("meta value {0:?} is written by the store itself")]
    ReservedMeta(String),
    #[error("a block of {0} bytes is too large for a block record")]
    RecordTooLarge(usize),
    #[error("an earlier write failed: the store may be half-written and refuses further writes")]
    Failed,
    #[error(
        "the database {0} is in use by another process (is another wattled or wattle-exchange running on this directory?)"
    )]
    InUse(PathBuf),
}

impl From<StoreError> for wattle_ledger::state::StoreError {
    fn from(e: StoreError) -> Self {
        wattle_ledger::state::StoreError(e.to_string())
    }
}

/// How long `open` waits for sled's file lock. A handle dropped in this process releases the
/// lock only when sled's background threads let go of it, a few milliseconds later; another
/// process holding it is reported as [`StoreError::InUse`] after this wait.
pub const LOCK_WAIT: Duration = Duration::from_secs(2);

/// Opens the sled database at `path`, waiting up to `wait` for its file lock (the exchange's
/// database opens through this too).
pub fn open_sled(path: &Path, wait: Duration) -> Result<sled::Db, StoreError> {
    let deadline = Instant::now() + wait;
    loop {
        match sled::Config::new().path(path).open() {
            Err(sled::Error::Io(e)) if is_lock_contention(&e) => {
                if Instant::now() >= deadline {
                    return Err(StoreError::InUse(path.to_path_buf()));
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            other => return Ok(other?),
        }
    }
}

/// Whether sled failed to open because another handle holds the database's file lock.
fn is_lock_contention(e: &std::io::Error) -> bool {
    e.kind() == std::io::ErrorKind::WouldBlock || e.to_string().contains("could not acquire lock")
}

/// The block files plus the sled tree derived from them.
pub struct Store {
    db: sled::Db,
    blocks_dir: PathBuf,
    /// The block-file writer; holding the lock makes a caller the only writer.
    files: Mutex<BlockFiles>,
    chain_id: OnceLock<BlockId>,
    failed: AtomicBool,
    /// Ledger state values in memory, in front of sled.
    cache: cache::StateCache,
    /// Each address's unspent outputs.
    addresses: addresses::AddressIndex,
}

impl Store {
    /// Opens the store in `dir` (`dir/blocks/` and `dir/sled/`), creating both if missing. A torn
    /// record at the end of the last block file is cut off with a warning; if the block files
    /// lost blocks sled had committed (the disk lied about an fsync), the state is rolled back
    /// to the last block still on disk, with a warning. Corruption anywhere else is an error.
    pub fn open(dir: &Path) -> Result<Store, StoreError> {
        Store::open_with_file_limit(dir, MAX_FILE_BYTES)
    }

    /// `open` with a smaller block-file size limit (tests roll files with it).
    pub(crate) fn open_with_file_limit(
        dir: &Path,
        max_file_bytes: u64,
    ) -> Result<Store, StoreError> {
        std::fs::create_dir_all(dir).map_err(|source| StoreError::Io {
            op: "create",
            path: dir.to_path_buf(),
            source,
        })?;
        let db = open_sled(&dir.join("sled"), LOCK_WAIT)?;
        let committed = match db.get(index::meta_key(meta::BLOCKS_END))? {
            Some(bytes) => Some(decode::<FilePos>("blocks_end", &bytes)?),
            None => None,
        };
        let chain_id = OnceLock::new();
        if let Some(bytes) = db.get(index::meta_key(meta::GENESIS))? {
            let _ = chain_id.set(decode_hash("genesis id", &bytes)?);
        }
        let blocks_dir = dir.join("blocks");
        let (files, valid_end) = BlockFiles::open(&blocks_dir, committed, max_file_bytes)?;
        let store = Store {
            db,
            blocks_dir,
            files: Mutex::new(files),
            chain_id,
            failed: AtomicBool::new(false),
            cache: cache::StateCache::new(cache::GENERATION),
            addresses: addresses::AddressIndex::default(),
        };
        if committed.is_some_and(|c| valid_end < c) {
            store.recover_lost_blocks(valid_end)?;
        }
        store.drop_disk_address_index()?;
        let mut utxos = Vec::new();
        for (key, value) in store.scan(kind::UTXO)? {
            if let (StateKey::Utxo(op), StateValue::Utxo(u)) = (key, value) {
                utxos.push((op, u.output.address));
            }
        }
        store.addresses.rebuild(utxos);
        Ok(store)
    }

    /// Whether the store holds a chain (`init_genesis` has run).
    pub fn is_initialized(&self) -> bool {
        self.chain_id.get().is_some()
    }

    /// The chain id (the genesis block id), once initialised.
    pub fn chain_id(&self) -> Option<BlockId> {
        self.chain_id.get().copied()
    }

    /// The main tip: the ledger state's `Tip`.
    pub fn tip(&self) -> Result<Option<TipInfo>, StoreError> {
        match self.state_get(&StateKey::Tip)? {
            None => Ok(None),
            Some(StateValue::Tip(tip)) => Ok(Some(tip)),
            Some(other) => Err(StoreError::Decode {
                what: "tip",
                why: format!("a {other:?} is stored under the Tip key"),
            }),
        }
    }

    /// The id of the main-chain block at `height`.
    pub fn main_id_at(&self, height: u32) -> Result<Option<BlockId>, StoreError> {
        match self.db.get(index::height_key(height))? {
            Some(bytes) => Ok(Some(decode_hash("height index", &bytes)?)),
            None => Ok(None),
        }
    }

    /// The main-chain block at `height`.
    pub fn block_at_height(&self, height: u32) -> Result<Option<Block>, StoreError> {
        match self.main_id_at(height)? {
            Some(id) => Ok(self.block_by_id(&id)?.map(|(_, block)| block)),
            None => Ok(None),
        }
    }

    /// Any stored block (main chain or rolled back) with its height.
    pub fn block_by_id(&self, id: &BlockId) -> Result<Option<(u32, Block)>, StoreError> {
        match self.block_entry(id)? {
            Some(entry) => Ok(Some((entry.height, self.read_block(id, &entry)?))),
            None => Ok(None),
        }
    }

    /// Where a stored block is, its height, weight and timestamp (no block-file read).
    pub fn block_entry(&self, id: &BlockId) -> Result<Option<BlockEntry>, StoreError> {
        match self.db.get(index::block_key(id))? {
            Some(bytes) => Ok(Some(decode("block entry", &bytes)?)),
            None => Ok(None),
        }
    }

    /// The (height, index in block) of a main-chain transaction.
    pub fn tx_location(&self, txid: &Txid) -> Result<Option<(u32, u32)>, StoreError> {
        match self.db.get(index::tx_key(txid))? {
            Some(bytes) => Ok(Some(decode("tx index entry", &bytes)?)),
            None => Ok(None),
        }
    }

    /// The last `n` main-chain blocks with their changesets and weights, oldest first, tip last
    /// (what `Engine::new` takes). The genesis block's changeset is empty: it cannot be undone.
    pub fn recent(&self, n: u32) -> Result<Vec<BranchBlock>, StoreError> {
        let Some(tip) = self.tip()? else {
            return Ok(Vec::new());
        };
        if n == 0 {
            return Ok(Vec::new());
        }
        let from = tip.height.saturating_sub(n - 1);
        let mut out = Vec::with_capacity((tip.height - from + 1) as usize);
        for height in from..=tip.height {
            let id = self.main_id_at(height)?.ok_or_else(|| StoreError::Decode {
                what: "height index",
                why: format!("no main block at height {height} below the tip"),
            })?;
            let entry = self.block_entry(&id)?.ok_or_else(|| StoreError::Decode {
                what: "block entry",
                why: format!("main block {id} has no entry"),
            })?;
            out.push(BranchBlock {
                block: Arc::new(self.read_block(&id, &entry)?),
                changes: self.undo(&id)?,
                weight: entry.weight,
            });
        }
        Ok(out)
    }

    /// Every state entry of one kind (`kind::UTXO`, `kind::PERM`, ...), in key-byte order.
    pub fn scan(&self, kind: u8) -> Result<Vec<(StateKey, StateValue)>, StoreError> {
        self.scan_prefix(&[kind])
    }

    /// Every state entry whose encoded `StateKey` starts with `key_prefix` (empty: all state).
    pub fn scan_prefix(
        &self,
        key_prefix: &[u8],
    ) -> Result<Vec<(StateKey, StateValue)>, StoreError> {
        let mut prefix = vec![index::STATE];
        prefix.extend_from_slice(key_prefix);
        let mut out = Vec::new();
        for item in self.db.scan_prefix(prefix) {
            let (key, value) = item?;
            out.push((
                decode("state key", &key[1..])?,
                decode("state value", &value)?,
            ));
        }
        Ok(out)
    }

    /// A meta value (see [`meta`] for the names in use).
    /// The unspent outputs of one address, in outpoint order (through the address index, so
    /// the cost follows the address's coins, not the whole UTXO set).
    pub fn utxos_of(
        &self,
        address: &wattle_ledger::Address,
    ) -> Result<Vec<(wattle_ledger::tx::OutPoint, wattle_ledger::state::Utxo)>, StoreError> {
        let mut out = Vec::new();
        for op in self.addresses.outpoints(address) {
            // A coin spent by a commit since the index was read is simply left out.
            if let Some(StateValue::Utxo(u)) = self.state_get(&StateKey::Utxo(op))? {
                out.push((op, u));
            }
        }
        Ok(out)
    }

    /// Stores written before the address index moved to memory kept it in sled (`a` keys):
    /// remove them, once.
    fn drop_disk_address_index(&self) -> Result<(), StoreError> {
        let mut batch = sled::Batch::default();
        let mut any = false;
        for item in self.db.scan_prefix([index::OLD_ADDRESS_UTXO]) {
            let (k, _) = item?;
            batch.remove(k);
            any = true;
        }
        if any {
            let _writer = self.writer()?;
            let result = self
                .db
                .apply_batch(batch)
                .and_then(|_| self.db.flush().map(|_| ()));
            self.check_write(result.map_err(StoreError::from))?;
            tracing::info!("removed the on-disk address index (now kept in memory)");
        }
        Ok(())
    }

    pub fn meta_get(&self, name: &str) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.db.get(index::meta_key(name))?.map(|v| v.to_vec()))
    }

    /// Writes a meta value and flushes it to disk. The names the store keeps itself
    /// (`meta::GENESIS`, `meta::BLOCKS_END`) are refused.
    pub fn meta_put(&self, name: &str, value: &[u8]) -> Result<(), StoreError> {
        if meta::RESERVED.contains(&name) {
            return Err(StoreError::ReservedMeta(name.to_string()));
        }
        let _writer = self.writer()?;
        let result = self
            .db
            .insert(index::meta_key(name), value)
            .and_then(|_| self.db.flush());
        self.check_write(result.map(|_| ()).map_err(StoreError::from))
    }

    /// A state value, strictly decoded.
    fn state_get(&self, key: &StateKey) -> Result<Option<StateValue>, StoreError> {
        let version = match self.cache.get(key) {
            Ok(value) => return Ok(value),
            Err(version) => version,
        };
        let value = match self.db.get(index::state_key(key))? {
            Some(bytes) => Some(decode("state value", &bytes)?),
            None => None,
        };
        self.cache.fill(key, &value, version);
        Ok(value)
    }

    /// The undo data of a stored block.
    fn undo(&self, id: &BlockId) -> Result<Changeset, StoreError> {
        match self.db.get(index::undo_key(id))? {
            Some(bytes) => decode("undo data", &bytes),
            None => Err(StoreError::Decode {
                what: "undo data",
                why: format!("block {id} has none"),
            }),
        }
    }

    /// Reads a block from the block files and checks it is the one asked for.
    fn read_block(&self, id: &BlockId, entry: &BlockEntry) -> Result<Block, StoreError> {
        let payload = blockfile::read_payload(&self.blocks_dir, &entry.loc())?;
        let block: Block = decode("block", &payload)?;
        if self.id_of(&block) != *id || block.header.height != entry.height {
            return Err(StoreError::CorruptRecord {
                path: self.blocks_dir.join(blockfile::file_name(entry.file)),
                offset: entry.offset,
                why: format!("the record holds another block than {id}"),
            });
        }
        Ok(block)
    }

    /// A block's id: the genesis block's is computed with the zero chain id (it is the chain id).
    fn id_of(&self, block: &Block) -> BlockId {
        if block.header.height == 0 {
            block.header.id(&Hash256::ZERO)
        } else {
            block.header.id(&self.chain_id().unwrap_or(Hash256::ZERO))
        }
    }

    /// Takes the write lock; refuses if an earlier write failed.
    fn writer(&self) -> Result<MutexGuard<'_, BlockFiles>, StoreError> {
        if self.failed.load(Ordering::SeqCst) {
            return Err(StoreError::Failed);
        }
        self.files.lock().map_err(|_| StoreError::Failed)
    }

    /// Marks the store failed if a write did not complete.
    fn check_write<T>(&self, result: Result<T, StoreError>) -> Result<T, StoreError> {
        if result.is_err() {
            self.failed.store(true, Ordering::SeqCst);
        }
        result
    }
}

impl LedgerView for Store {
    fn get(&self, key: &StateKey) -> Result<Option<StateValue>, wattle_ledger::state::StoreError> {
        Ok(self.state_get(key)?)
    }
}
