//! The state transition: `apply_block(view, block, chain) -> Changeset`, pure. A bad block never
//! touches state; a good one yields the key-level writes with their undo data.
//!
//! Block rules, in order (tests cite them):
//! - **B1 version/size**: header version 1; encoded block ≤ `maximum-block-size`.
//! - **B2 parent**: builds on the current tip at the next height.
//! - **B3 timestamp**: strictly after the parent's (the future-drift check needs a clock and lives
//!   in the consensus engine).
//! - **B4 merkle**: the header commits to the transactions; no txid appears twice.
//! - **B5 miner**: the signer holds `mine` at the block's height.
//! - **B6 diversity**: the signer is not barred by the mining-diversity rule.
//! - **B7 signature**: the header signature verifies for this chain.
//! - **B8 transactions**: every transaction is valid (see `validate`) in order, each seeing the
//!   effects of the ones before it.

use crate::address::Address;
use crate::block::{BLOCK_VERSION, Block};
use crate::chain::Chain;
use crate::codec;
use crate::error::{BlockError, TxError};
use crate::mining;
use crate::orderbook;
use crate::permissions::{AssetPerm, GlobalPerm, NO_END, PermRecord, Permission, required_admins};
use crate::state::{
    AssetInfo, IssueRecord, LedgerView, Overlay, StateKey, StateValue, TipInfo, Utxo, Vote, read,
};
use crate::tx::{NEW_ASSET, Op, Output, Transaction, Txid};
use crate::validate::{self, Checked, TxContext};
use std::collections::{BTreeSet, HashSet};

/// Transactions whose signatures this node already verified (checked once per node, by txid).
pub trait SignatureCache {
    fn contains(&self, txid: &Txid) -> bool;
}

/// No signature has been verified yet.
pub struct NoCache;

impl SignatureCache for NoCache {
    fn contains(&self, _: &Txid) -> bool {
        false
    }
}

impl SignatureCache for HashSet<Txid> {
    fn contains(&self, txid: &Txid) -> bool {
        HashSet::contains(self, txid)
    }
}

/// Validates `tx` against `state` and writes its effects into it. Nothing is written on error.
pub fn apply_tx<V: LedgerView + ?Sized>(
    state: &mut Overlay<'_, V>,
    tx: &Transaction,
    ctx: &TxContext,
) -> Result<Txid, TxError> {
    let checked = validate::validate_tx(state, tx, ctx)?;
    let txid = tx.txid();
    write_tx(state, tx, txid, &checked, ctx)?;
    Ok(txid)
}

/// An output as stored: the new-asset id replaced by the issuing transaction's id.
pub fn stored_output(out: &Output, txid: Txid) -> Output {
    if out.assets.iter().any(|(id, _)| *id == NEW_ASSET) {
        Output::new(
            out.address,
            out.assets
                .iter()
                .map(|(id, q)| (if *id == NEW_ASSET { txid } else { *id }, *q)),
        )
    } else {
        out.clone()
    }
}

fn write_tx<V: LedgerView + ?Sized>(
    state: &mut Overlay<'_, V>,
    tx: &Transaction,
    txid: Txid,
    checked: &Checked,
    ctx: &TxContext,
) -> Result<(), TxError> {
    for input in &tx.inputs {
        state.delete(StateKey::Utxo(input.prev));
    }
    for (vout, out) in tx.outputs.iter().enumerate() {
        let utxo = Utxo {
            output: stored_output(out, txid),
            height: ctx.height,
        };
        state.put_new(
            StateKey::Utxo(crate::tx::OutPoint {
                txid,
                vout: vout as u32,
            }),
            StateValue::Utxo(utxo),
        );
    }
    // The issue op goes first, so that its issuers are judged on the state S7 judged, before a
    // grant or revoke of this same transaction changes them (otherwise a transaction `validate`
    // accepts could fail here). It writes no permission those ops can name, so nothing else moves.
    let (issue_ops, permission_ops): (Vec<&Op>, Vec<&Op>) =
        tx.ops.iter().partition(|op| op.is_issue());
    for op in issue_ops.into_iter().chain(permission_ops) {
        match op {
            Op::IssueAsset(issue) => write_new_asset(state, issue, txid, checked, ctx)?,
            Op::IssueMore {
                asset,
                quantity,
                fields,
            } => write_issue_more(state, *asset, *quantity, fields, txid, checked, ctx)?,
            Op::Grant { .. } | Op::Revoke { .. } => {
                write_permission_op(state, tx, op, checked, ctx)?
            }
            Op::PlaceOrder(_) | Op::CancelOrder { .. } => {}
        }
    }
    // Order ops last: their payments are judged on the permissions this transaction leaves.
    orderbook::write_orders(state, tx, txid, &checked.all_signers, ctx)
}

fn signers_holding<V: LedgerView + ?Sized>(
    state: &Overlay<'_, V>,
    ctx: &TxContext,
    signers: &[Address],
    perm: Permission,
) -> Result<Vec<Address>, TxError> {
    let mut out = Vec::new();
    for s in signers {
        if validate::holds(state, ctx.chain, s, perm, ctx.height)? {
            out.push(*s);
        }
    }
    Ok(out)
}

fn write_new_asset<V: LedgerView + ?Sized>(
    state: &mut Overlay<'_, V>,
    issue: &crate::tx::IssueAsset,
    txid: Txid,
    checked: &Checked,
    ctx: &TxContext,
) -> Result<(), TxError> {
    let issuers = signers_holding(
        state,
        ctx,
        &checked.all_signers,
        Permission::Global(GlobalPerm::Issue),
    )?;
    let issuer = *issuers.first().ok_or(TxError::NoIssuePermission)?;
    let info = AssetInfo {
        id: txid,
        name: issue.name.clone(),
        open: issue.open,
        multiple: issue.multiple,
        fields: issue.fields.clone(),
        issuer,
        height: ctx.height,
        offset: ctx.offset,
        total: issue.quantity,
        issue_count: 1,
    };
    state.put(StateKey::Asset(txid), StateValue::Asset(Box::new(info)));
    state.put(
        StateKey::AssetName(issue.name.to_lowercase()),
        StateValue::AssetName(txid),
    );
    let record = IssueRecord {
        txid,
        quantity: issue.quantity,
        fields: issue.fields.clone(),
        issuers,
    };
    state.put(
        StateKey::AssetIssue(txid, 0),
        StateValue::AssetIssue(Box::new(record)),
    );
    for perm in AssetPerm::ALL {
        let rec = PermRecord {
            start: 0,
            end: NO_END,
            admins: vec![issuer],
        };
        state.put(
            StateKey::Perm(issuer, Permission::Asset(txid, perm)),
            StateValue::Perm(rec),
        );
    }
    Ok(())
}

fn write_issue_more<V: LedgerView + ?Sized>(
    state: &mut Overlay<'_, V>,
    asset: crate::tx::AssetId,
    quantity: crate::amount::Amount,
    fields: &std::collections::BTreeMap<String, String>,
    txid: Txid,
    checked: &Checked,
    ctx: &TxContext,
) -> Result<(), TxError> {
    let mut info = read::asset(state, &asset)?.ok_or(TxError::UnknownAsset { asset })?;
    info.total = info
        .total
        .checked_add(quantity)
        .map_err(|_| TxError::SupplyOverflow { asset })?;
    let index = info.issue_count;
    info.issue_count += 1;
    let issuers = signers_holding(
        state,
        ctx,
        &checked.all_signers,
        Permission::Asset(asset, AssetPerm::Issue),
    )?;
    let record = IssueRecord {
        txid,
        quantity,
        fields: fields.clone(),
        issuers,
    };
    state.put(StateKey::Asset(asset), StateValue::Asset(Box::new(info)));
    state.put(
        StateKey::AssetIssue(asset, index),
        StateValue::AssetIssue(Box::new(record)),
    );
    Ok(())
}

fn write_permission_op<V: LedgerView + ?Sized>(
    state: &mut Overlay<'_, V>,
    tx: &Transaction,
    op: &Op,
    checked: &Checked,
    ctx: &TxContext,
) -> Result<(), TxError> {
    let Some((vout, perms, start, end)) = op.permission_change() else {
        return Ok(());
    };
    let grantee = tx.outputs[vout as usize].address;
    for perm in perms {
        let mut granters = Vec::new();
        for auth in validate::authorities_for(*perm) {
            for s in signers_holding(state, ctx, &checked.all_signers, auth)? {
                if !granters.contains(&s) {
                    granters.push(s);
                }
            }
        }
        set_permission(state, ctx, grantee, *perm, start, end, &granters)?;
    }
    Ok(())
}

/// Sets a permission, through admin consensus where MultiChain requires it.
fn set_permission<V: LedgerView + ?Sized>(
    state: &mut Overlay<'_, V>,
    ctx: &TxContext,
    grantee: Address,
    perm: Permission,
    start: u32,
    end: u32,
    granters: &[Address],
) -> Result<(), TxError> {
    let mut admins = granters.to_vec();
    if let Permission::Global(g) = perm
        && g.needs_consensus()
    {
        if ctx.height >= ctx.chain.params.setup_first_blocks {
            match tally_votes(state, ctx, grantee, g, start, end, granters)? {
                Some(agreeing) => admins = agreeing,
                None => return Ok(()), // pending
            }
        }
        let mut holders = read::holders(state, &g)?.unwrap_or_default();
        if let Err(pos) = holders.binary_search(&grantee) {
            holders.insert(pos, grantee);
            state.put(StateKey::Holders(g), StateValue::Holders(holders));
        }
    }
    let record = PermRecord { start, end, admins };
    state.put(StateKey::Perm(grantee, perm), StateValue::Perm(record));
    Ok(())
}

/// Records the granters' votes; returns the agreeing admins once there are enough of them (the
/// votes are then consumed), or `None` while the change is pending.
fn tally_votes<V: LedgerView + ?Sized>(
    state: &mut Overlay<'_, V>,
    ctx: &TxContext,
    grantee: Address,
    perm: GlobalPerm,
    start: u32,
    end: u32,
    granters: &[Address],
) -> Result<Option<Vec<Address>>, TxError> {
    let admin = Permission::Global(GlobalPerm::Admin);
    let mut current_admins = BTreeSet::new();
    for a in read::holders(state, &GlobalPerm::Admin)?.unwrap_or_default() {
        if read::perm(state, &a, &admin)?.is_some_and(|r| r.holds_at(ctx.height)) {
            current_admins.insert(a);
        }
    }
    let mut votes = read::votes(state, &grantee, &perm)?.unwrap_or_default();
    for g in granters.iter().filter(|g| current_admins.contains(g)) {
        votes.retain(|v| v.admin != *g);
        votes.push(Vote {
            admin: *g,
            start,
            end,
        });
    }
    let agreeing: Vec<Address> = votes
        .iter()
        .filter(|v| v.start == start && v.end == end && current_admins.contains(&v.admin))
        .map(|v| v.admin)
        .collect();
    let required = required_admins(
        current_admins.len() as u32,
        ctx.chain.consensus_fraction(perm),
    );
    if agreeing.len() as u32 >= required {
        state.delete(StateKey::Votes(grantee, perm));
        Ok(Some(agreeing))
    } else {
        state.put(StateKey::Votes(grantee, perm), StateValue::Votes(votes));
        Ok(None)
    }
}

fn check_header<V: LedgerView + ?Sized>(
    view: &V,
    block: &Block,
    chain: &Chain,
) -> Result<TipInfo, BlockError> {
    let h = &block.header;
    if h.version != BLOCK_VERSION {
        return Err(BlockError::BadVersion { got: h.version });
    }
    let size = codec::encoded_len(block);
    if size > chain.params.maximum_block_size as usize {
        return Err(BlockError::TooLarge {
            size,
            limit: chain.params.maximum_block_size as usize,
        });
    }
    let tip = read::tip(view)?.ok_or(BlockError::NoTip)?;
    if h.prev != tip.id {
        return Err(BlockError::WrongParent {
            expected: tip.id,
            got: h.prev,
        });
    }
    if h.height != tip.height.wrapping_add(1) {
        return Err(BlockError::WrongHeight {
            expected: tip.height.wrapping_add(1),
            got: h.height,
        });
    }
    if h.timestamp_ms <= tip.timestamp_ms {
        return Err(BlockError::TimestampNotIncreasing {
            parent: tip.timestamp_ms,
            got: h.timestamp_ms,
        });
    }
    Ok(tip)
}

fn check_merkle(block: &Block, txids: &[Txid]) -> Result<(), BlockError> {
    let mut seen = HashSet::with_capacity(txids.len());
    for txid in txids {
        if !seen.insert(*txid) {
            return Err(BlockError::DuplicateTxid { txid: *txid });
        }
    }
    if crate::hash::merkle_root(txids) != block.header.merkle_root {
        return Err(BlockError::BadMerkleRoot);
    }
    Ok(())
}

fn check_miner<V: LedgerView + ?Sized>(
    view: &V,
    block: &Block,
    chain: &Chain,
) -> Result<(), BlockError> {
    let height = block.header.height;
    let address = block.header.miner.address();
    if !chain.anyone_can(GlobalPerm::Mine) {
        let miners = mining::miners_at(view, height)?;
        if !miners.contains(&address) {
            return Err(BlockError::MinerNotPermitted { address });
        }
        if let Some((last, next)) =
            mining::barred_until(view, chain, &address, height, miners.len() as u32)?
        {
            return Err(BlockError::MinerBarred {
                address,
                last,
                next,
            });
        }
    }
    if !block.header.signature_is_valid(&chain.id) {
        return Err(BlockError::BadSignature);
    }
    Ok(())
}

/// B8's stateless half: T1–T9 for every transaction not already in the signature cache.
fn check_transactions_stateless(
    block: &Block,
    txids: &[Txid],
    chain: &Chain,
    cache: &impl SignatureCache,
) -> Result<(), BlockError> {
    for (index, (tx, txid)) in block.txs.iter().zip(txids).enumerate() {
        let fail = |error| BlockError::Tx {
            index,
            txid: *txid,
            error,
        };
        validate::check_stateless(tx, chain).map_err(fail)?;
        if !cache.contains(txid) {
            validate::check_signatures(tx, chain).map_err(fail)?;
        }
    }
    Ok(())
}

/// Validates `block` on top of `view`'s tip and returns its changes. Pure: nothing is written.
pub fn apply_block<V: LedgerView + ?Sized>(
    view: &V,
    block: &Block,
    chain: &Chain,
    cache: &impl SignatureCache,
) -> Result<crate::state::Changeset, BlockError> {
    check_header(view, block, chain)?;
    let txids = block.txids();
    check_merkle(block, &txids)?;
    check_miner(view, block, chain)?;
    check_transactions_stateless(block, &txids, chain, cache)?;
    let height = block.header.height;
    let offsets = block.tx_offsets();
    let mut state = Overlay::new(view);
    for (index, tx) in block.txs.iter().enumerate() {
        let ctx = TxContext {
            chain,
            height,
            offset: offsets[index],
            signatures_checked: true,
        };
        let checked =
            validate::check_against_state(&state, tx, &ctx).map_err(|error| BlockError::Tx {
                index,
                txid: txids[index],
                error,
            })?;
        write_tx(&mut state, tx, txids[index], &checked, &ctx).map_err(|error| BlockError::Tx {
            index,
            txid: txids[index],
            error,
        })?;
    }
    let miner = block.header.miner.address();
    state.put(StateKey::LastSigned(miner), StateValue::LastSigned(height));
    let tip = TipInfo {
        height,
        id: block.header.id(&chain.id),
        timestamp_ms: block.header.timestamp_ms,
    };
    state.put(StateKey::Tip, StateValue::Tip(tip));
    Ok(state.into_changeset()?)
}
