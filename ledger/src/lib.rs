//! Wattle's ledger: a pure (no I/O) UTXO multi-asset ledger with MultiChain's permissions, atomic
//! exchange transactions, validation rules and the block state transition.
//!
//! Layout: `codec` (the one canonical encoding), `hash`, `keys`, `address`, `amount`, `tx`,
//! `sighash`, `permissions`, `params`, `chain`, `block`, `genesis`, `state` (the `LedgerView` seam,
//! `Changeset`, in-memory and overlay views), `validate` (transaction rules T1–T9, S1–S9), `apply`
//! (block rules B1–B8 and `apply_block`), `orderbook` (orders, matching inside block application,
//! and the book's read helpers), `mining` (miner set and diversity) and `exchange` (offers with
//! MultiChain's semantics).

pub mod address;
pub mod amount;
pub mod apply;
pub mod block;
pub mod chain;
pub mod codec;
pub mod error;
pub mod exchange;
pub mod genesis;
pub mod hash;
pub mod keys;
pub mod mining;
pub mod orderbook;
pub mod params;
pub mod permissions;
pub mod sighash;
pub mod state;
pub mod testkit;
pub mod tx;
pub mod validate;

pub use address::{Address, AddressFormat};
pub use amount::Amount;
pub use apply::{NoCache, SignatureCache, apply_block, apply_tx};
pub use block::{Block, BlockHeader, BlockId};
pub use chain::Chain;
pub use error::{BlockError, TxError};
pub use genesis::{apply_genesis, genesis_block};
pub use hash::Hash256;
pub use keys::{PublicKey, SecretKey, Signature};
pub use params::ChainParams;
pub use permissions::{AssetPerm, GlobalPerm, Permission};
pub use sighash::{ChainId, SighashMode};
pub use state::{Changeset, LedgerView, MemoryView, Overlay, StateKey, StateValue};
pub use tx::{AssetId, Input, Op, OutPoint, Output, Transaction, Txid};
pub use validate::{TxContext, validate_tx};
