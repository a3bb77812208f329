//! The key layout of the store's one sled tree, and the values kept under each prefix.
//!
//! | key                                  | value                                      |
//! |--------------------------------------|--------------------------------------------|
//! | `s` ‖ `StateKey::encode()`           | `codec::encode(StateValue)`: ledger state  |
//! | `h` ‖ height (u32 big-endian)        | block id (32 bytes): the main chain        |
//! | `b` ‖ block id                       | `codec::encode(BlockEntry)`: every stored block |
//! | `u` ‖ block id                       | `codec::encode(Changeset)`: undo data      |
//! | `t` ‖ txid                           | `codec::encode((height, index))`: main-chain transactions |
//! | `m` ‖ name (UTF-8)                   | raw bytes: meta values (see [`meta`])      |
//!
//! The chain tip is the ledger state key `StateKey::Tip`: every write checks that it names the
//! block the height index ends with, so there is one source of truth for it.
//!
//! Heights are big-endian so that the `h` entries iterate in height order. A `StateKey`'s
//! canonical encoding starts with its variant index (one byte below 251), so the keys of one kind
//! of state share the prefix `s` ‖ kind (see [`kind`]).

use super::StoreError;
use super::blockfile::{FilePos, RecordLoc};
use bincode::{Decode, Encode};
use wattle_ledger::block::BlockId;
use wattle_ledger::codec;
use wattle_ledger::hash::Hash256;
use wattle_ledger::state::StateKey;
use wattle_ledger::tx::Txid;

pub(crate) const STATE: u8 = b's';
pub(crate) const HEIGHT: u8 = b'h';
pub(crate) const BLOCK: u8 = b'b';
pub(crate) const UNDO: u8 = b'u';
pub(crate) const TX: u8 = b't';
pub(crate) const META: u8 = b'm';
/// The address index of earlier versions (`a` + address + outpoint), removed on open: the
/// index is now kept in memory (`store/addresses.rs`).
pub(crate) const OLD_ADDRESS_UTXO: u8 = b'a';

/// The first byte of each `StateKey` variant's encoding: the argument of `Store::scan`.
pub mod kind {
    pub const TIP: u8 = 0;
    pub const UTXO: u8 = 1;
    pub const ASSET: u8 = 2;
    pub const ASSET_NAME: u8 = 3;
    pub const ASSET_ISSUE: u8 = 4;
    pub const PERM: u8 = 5;
    pub const VOTES: u8 = 6;
    pub const HOLDERS: u8 = 7;
    pub const LAST_SIGNED: u8 = 8;
}

/// Names of meta values. The store writes `GENESIS` and `BLOCKS_END` itself and refuses
/// `meta_put` on them; the others belong to the node.
pub mod meta {
    /// The genesis block id (= the chain id), 32 bytes. Present once the store is initialised.
    pub const GENESIS: &str = "genesis";
    /// `codec::encode(FilePos)`: the end of the last block record the store committed.
    pub const BLOCKS_END: &str = "blocks_end";
    /// `codec::encode((height: u32, id: BlockId))`: the last final block (genesis until a
    /// finality rule exists); branch switches never roll back below it.
    pub const LAST_FINAL: &str = "last_final";
    /// The last block this node signed (crash safety of a miner, DESIGN §4.7).
    pub const LAST_SIGNED: &str = "last_signed";
    /// The chain parameters.
    pub const PARAMS: &str = "params";

    pub(crate) const RESERVED: [&str; 2] = [GENESIS, BLOCKS_END];
}

/// Where a stored block lives and what fork choice needs to know about it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Encode, Decode)]
pub struct BlockEntry {
    pub file: u32,
    /// Offset of the record (its header) in the file.
    pub offset: u64,
    /// Length of the encoded block (the record's payload).
    pub len: u32,
    pub height: u32,
    /// The weight the block adds to its branch (fork choice).
    pub weight: u64,
    pub timestamp_ms: u64,
}

impl BlockEntry {
    pub fn new(loc: RecordLoc, height: u32, weight: u64, timestamp_ms: u64) -> BlockEntry {
        BlockEntry {
            file: loc.file,
            offset: loc.offset,
            len: loc.len,
            height,
            weight,
            timestamp_ms,
        }
    }

    pub fn loc(&self) -> RecordLoc {
        RecordLoc {
            file: self.file,
            offset: self.offset,
            len: self.len,
        }
    }

    /// The position just past this block's record.
    pub fn end(&self) -> FilePos {
        self.loc().end()
    }
}

fn prefixed(prefix: u8, rest: &[u8]) -> Vec<u8> {
    let mut key = Vec::with_capacity(1 + rest.len());
    key.push(prefix);
    key.extend_from_slice(rest);
    key
}

pub(crate) fn state_key(key: &StateKey) -> Vec<u8> {
    prefixed(STATE, &key.encode())
}

pub(crate) fn height_key(height: u32) -> Vec<u8> {
    prefixed(HEIGHT, &height.to_be_bytes())
}

pub(crate) fn block_key(id: &BlockId) -> Vec<u8> {
    prefixed(BLOCK, &id.0)
}

pub(crate) fn undo_key(id: &BlockId) -> Vec<u8> {
    prefixed(UNDO, &id.0)
}

pub(crate) fn tx_key(txid: &Txid) -> Vec<u8> {
    prefixed(TX, &txid.0)
}

pub(crate) fn meta_key(name: &str) -> Vec<u8> {
    prefixed(META, name.as_bytes())
}

/// Strict decoding of a stored value: a failure is a store error naming what was being read.
pub(crate) fn decode<T: bincode::Decode<()> + Encode>(
    what: &'static str,
    bytes: &[u8],
) -> Result<T, StoreError> {
    codec::decode(bytes).map_err(|e| StoreError::Decode {
        what,
        why: e.to_string(),
    })
}

/// A 32-byte hash stored raw (block ids under `h` and `m genesis`).
pub(crate) fn decode_hash(what: &'static str, bytes: &[u8]) -> Result<Hash256, StoreError> {
    let raw: [u8; 32] = bytes.try_into().map_err(|_| StoreError::Decode {
        what,
        why: format!("expected 32 bytes, found {}", bytes.len()),
    })?;
    Ok(Hash256(raw))
}

/// The txid bytes of a `t` key.
pub(crate) fn txid_of_key(key: &[u8]) -> Result<Txid, StoreError> {
    decode_hash("tx index key", key.get(1..).unwrap_or_default())
}
