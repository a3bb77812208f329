//! The genesis block: one transaction with no inputs that grants every global permission to the
//! admin and creates the admin's first (zero-value) coin. Its header's `prev` is the hash of the
//! chain parameters, so the chain id — the genesis block's id — commits to them.

use crate::block::{BLOCK_VERSION, Block};
use crate::chain::Chain;
use crate::error::BlockError;
use crate::hash::Hash256;
use crate::keys::SecretKey;
use crate::params::ChainParams;
use crate::permissions::{GlobalPerm, NO_END, PermRecord, Permission};
use crate::state::{Change, Changeset, StateKey, StateValue, TipInfo, Utxo};
use crate::tx::{Op, OutPoint, Output, TX_VERSION, Transaction};

/// The genesis transaction for an admin address.
pub fn genesis_tx(admin: crate::address::Address) -> Transaction {
    Transaction {
        version: TX_VERSION,
        inputs: vec![],
        outputs: vec![Output {
            address: admin,
            assets: vec![],
        }],
        ops: vec![Op::Grant {
            vout: 0,
            permissions: GlobalPerm::ALL
                .iter()
                .map(|p| Permission::Global(*p))
                .collect(),
            start: 0,
            end: NO_END,
        }],
    }
}

/// Builds and signs the genesis block for `params`, with `admin` as the first admin and miner.
pub fn genesis_block(params: &ChainParams, admin: &SecretKey, timestamp_ms: u64) -> Block {
    let mut block = Block::build(
        params.hash(),
        0,
        timestamp_ms,
        vec![genesis_tx(admin.address())],
        admin,
        &Hash256::ZERO,
    );
    block.header.version = BLOCK_VERSION;
    block
}

/// Checks a genesis block against `params` and returns the chain and the initial state.
pub fn apply_genesis(
    params: &ChainParams,
    block: &Block,
) -> Result<(Chain, Changeset), BlockError> {
    let bad = |why: &str| Err(BlockError::Genesis(why.to_string()));
    params
        .validate()
        .map_err(|e| BlockError::Genesis(e.to_string()))?;
    let h = &block.header;
    if h.version != BLOCK_VERSION || h.height != 0 {
        return bad("version must be 1 and height 0");
    }
    if h.prev != params.hash() {
        return bad("the block does not commit to these chain parameters");
    }
    let admin = h.miner.address();
    if block.txs != vec![genesis_tx(admin)] {
        return bad("the genesis transaction must grant every permission to the signer");
    }
    if block.compute_merkle_root() != h.merkle_root {
        return Err(BlockError::BadMerkleRoot);
    }
    if !h.signature_is_valid(&Hash256::ZERO) {
        return Err(BlockError::BadSignature);
    }
    let chain = Chain {
        params: params.clone(),
        id: h.id(&Hash256::ZERO),
    };
    let tx = &block.txs[0];
    let mut changes = Changeset::default();
    let mut put = |k: StateKey, v: StateValue| {
        changes.changes.insert(
            k,
            Change {
                old: None,
                new: Some(v),
            },
        );
    };
    put(
        StateKey::Utxo(OutPoint {
            txid: tx.txid(),
            vout: 0,
        }),
        StateValue::Utxo(Utxo {
            output: tx.outputs[0].clone(),
            height: 0,
        }),
    );
    for p in GlobalPerm::ALL {
        let rec = PermRecord {
            start: 0,
            end: NO_END,
            admins: vec![admin],
        };
        put(
            StateKey::Perm(admin, Permission::Global(p)),
            StateValue::Perm(rec),
        );
        if p.needs_consensus() {
            put(StateKey::Holders(p), StateValue::Holders(vec![admin]));
        }
    }
    put(StateKey::LastSigned(admin), StateValue::LastSigned(0));
    put(
        StateKey::Tip,
        StateValue::Tip(TipInfo {
            height: 0,
            id: chain.id,
            timestamp_ms: h.timestamp_ms,
        }),
    );
    Ok((chain, changes))
}
