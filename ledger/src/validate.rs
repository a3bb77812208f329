//! Transaction validation rules, one small function each, applied by `validate_tx` in this order.
//! Tests cite the rule by its number.
//!
//! Stateless (a peer relaying a transaction that breaks one of these is at fault):
//! - **T1 version**: `version == 1`.
//! - **T2 inputs-outputs**: at least one input (replay protection; only genesis has none) and at
//!   least one output.
//! - **T3 limits**: encoded size ≤ `max-std-tx-size`; input and output counts within limits.
//! - **T4 output-assets**: each output's assets are strictly sorted by id, with no zero quantity;
//!   the new-asset id appears only in a transaction that issues an asset.
//! - **T5 unique-inputs**: no outpoint is spent twice by one transaction.
//! - **T6 ops**: at most one issue op; asset names, units and fields are well formed; a grant or
//!   revoke names an existing, empty output not named by another op, a non-empty list of distinct
//!   permissions and a range with `start < end` (revokes: `[0, 0)`). At most one `PlaceOrder`:
//!   two different assets, neither the one being issued, a price with non-zero terms, a quantity
//!   of at least one lot of the (reduced) price, and for a buy order a target ≤ 2^63−1;
//!   `CancelOrder`s name distinct orders.
//! - **T7 sighash**: every input's mode is ALL (0x01) or SINGLE|ANYONECANPAY (0x83); a 0x83 input
//!   has an output at its own index.
//! - **T8 signed-coverage**: a transaction without an ALL input has exactly one output per input and
//!   no ops, so nothing in it is unsigned.
//! - **T9 signatures**: every signature verifies strictly for its mode and this chain.
//!
//! Against state at height `h` (the block that will contain the transaction):
//! - **S1 inputs-exist**: every input spends an unspent output.
//! - **S2 input-owner**: the input's key hashes to the output's address.
//! - **S3 send-permission**: every input address holds `send` at `h`.
//! - **S4 conservation**: per asset, Σ outputs = Σ inputs (checked arithmetic), except the asset of
//!   the issue op: Σ outputs = Σ inputs + quantity, and the asset an order sells: Σ outputs +
//!   the escrowed quantity = Σ inputs.
//! - **S5 receive-permission**: an output carrying assets goes to an address holding `receive`
//!   (zero-value outputs too unless `anyone-can-receive-empty`; grant outputs never need it).
//! - **S6 zero-value-outputs**: a zero-value output is a grant/revoke output or change to an input's
//!   address.
//! - **S7 issue**: a new asset needs an ALL input holding `issue` and an unused name; a follow-on
//!   needs an existing open asset, an ALL input holding `ASSET.issue`, and keeps the supply ≤ 2^63−1.
//! - **S8 grant-authority**: every granted or revoked permission is backed by an ALL input holding
//!   the authority for it (`activate` or `admin` for connect/send/receive, `admin` for the other
//!   global ones, `ASSET.admin` for per-asset ones).
//! - **S9 orders**: a placed order's assets exist and its owner (the first ALL signer, who holds
//!   `send` by S3) holds `receive`, since fills are paid to it; a cancelled order exists, is open
//!   and belongs to an ALL signer.

use crate::address::Address;
use crate::amount::{Amount, is_valid_multiple};
use crate::chain::Chain;
use crate::codec;
use crate::error::TxError;
use crate::orderbook::{OrderStatus, PlaceOrder};
use crate::permissions::{AssetPerm, GlobalPerm, Permission};
use crate::sighash::{self, SighashMode};
use crate::state::{LedgerView, Utxo, read};
use crate::tx::{AssetId, NEW_ASSET, Op, TX_VERSION, Transaction};
use std::collections::{BTreeMap, BTreeSet};

/// Longest asset name, in bytes.
pub const MAX_ASSET_NAME: usize = 32;
/// Largest encoded custom-fields map, in bytes.
pub const MAX_FIELDS_BYTES: usize = 4096;

/// Where and how a transaction is being judged.
#[derive(Clone, Copy, Debug)]
pub struct TxContext<'a> {
    pub chain: &'a Chain,
    /// Height of the block that will contain the transaction (mempool: tip + 1).
    pub height: u32,
    /// Byte offset of the transaction in its block (for asset references; 0 in the mempool).
    pub offset: u32,
    /// The signatures were already verified (signature cache hit).
    pub signatures_checked: bool,
}

/// What the state checks learned, for `apply` to write.
#[derive(Debug)]
pub struct Checked {
    pub spent: Vec<Utxo>,
    /// Distinct addresses of the ALL-signed inputs, in input order.
    pub all_signers: Vec<Address>,
}

// ---------------------------------------------------------------- stateless rules

pub fn check_version(tx: &Transaction) -> Result<(), TxError> {
    if tx.version != TX_VERSION {
        return Err(TxError::BadVersion { got: tx.version });
    }
    Ok(())
}

pub fn check_inputs_outputs(tx: &Transaction) -> Result<(), TxError> {
    if tx.inputs.is_empty() {
        return Err(TxError::NoInputs);
    }
    if tx.outputs.is_empty() {
        return Err(TxError::NoOutputs);
    }
    Ok(())
}

pub fn check_limits(tx: &Transaction, chain: &Chain) -> Result<(), TxError> {
    let p = &chain.params;
    let size = codec::encoded_len(tx);
    if size > p.max_std_tx_size as usize {
        return Err(TxError::TooLarge {
            size,
            limit: p.max_std_tx_size as usize,
        });
    }
    if tx.inputs.len() > p.max_tx_inputs as usize {
        return Err(TxError::TooMany {
            what: "inputs",
            count: tx.inputs.len(),
            limit: p.max_tx_inputs as usize,
        });
    }
    if tx.outputs.len() > p.max_tx_outputs as usize {
        return Err(TxError::TooMany {
            what: "outputs",
            count: tx.outputs.len(),
            limit: p.max_tx_outputs as usize,
        });
    }
    Ok(())
}

pub fn check_output_assets(tx: &Transaction) -> Result<(), TxError> {
    let issues_new = tx.ops.iter().any(|op| matches!(op, Op::IssueAsset(_)));
    for (vout, out) in tx.outputs.iter().enumerate() {
        let vout = vout as u32;
        if out.assets.windows(2).any(|w| w[0].0 >= w[1].0) {
            return Err(TxError::OutputAssetsUnsorted { vout });
        }
        if out.assets.iter().any(|(_, q)| q.is_zero()) {
            return Err(TxError::ZeroAssetAmount { vout });
        }
        if !issues_new && out.assets.iter().any(|(id, _)| *id == NEW_ASSET) {
            return Err(TxError::NewAssetWithoutIssue { vout });
        }
    }
    Ok(())
}

pub fn check_unique_inputs(tx: &Transaction) -> Result<(), TxError> {
    let mut seen = BTreeSet::new();
    for input in &tx.inputs {
        if !seen.insert(input.prev) {
            return Err(TxError::DuplicateInput { prev: input.prev });
        }
    }
    Ok(())
}

pub fn check_ops(tx: &Transaction) -> Result<(), TxError> {
    if tx.ops.iter().filter(|op| op.is_issue()).count() > 1 {
        return Err(TxError::MultipleIssueOps);
    }
    if tx
        .ops
        .iter()
        .filter(|op| matches!(op, Op::PlaceOrder(_)))
        .count()
        > 1
    {
        return Err(TxError::MultipleOrders);
    }
    let mut grantees = BTreeSet::new();
    let mut cancels = BTreeSet::new();
    for op in &tx.ops {
        match op {
            Op::IssueAsset(issue) => {
                check_asset_name(&issue.name)?;
                if !is_valid_multiple(issue.multiple) {
                    return Err(TxError::InvalidMultiple {
                        multiple: issue.multiple,
                    });
                }
                check_fields(&issue.fields)?;
            }
            Op::IssueMore { asset, fields, .. } => {
                if *asset == NEW_ASSET {
                    return Err(TxError::IssueMoreOfNewAsset);
                }
                check_fields(fields)?;
            }
            Op::Grant { .. } | Op::Revoke { .. } => check_permission_op(tx, op, &mut grantees)?,
            Op::PlaceOrder(place) => check_place_order(place)?,
            Op::CancelOrder { order } => {
                if !cancels.insert(*order) {
                    return Err(TxError::DuplicateCancel { order: *order });
                }
            }
        }
    }
    Ok(())
}

/// T6 for an order: assets, price, at least one lot, a target that fits.
pub fn check_place_order(place: &PlaceOrder) -> Result<(), TxError> {
    if place.sell == place.buy {
        return Err(TxError::OrderSameAsset);
    }
    if place.sell == NEW_ASSET || place.buy == NEW_ASSET {
        return Err(TxError::OrderForNewAsset);
    }
    if !place.price.is_valid() {
        return Err(TxError::BadPrice {
            num: place.price.num,
            den: place.price.den,
        });
    }
    let lot = place.price.reduced().den;
    if place.quantity.raw() < lot {
        return Err(TxError::OrderBelowLot {
            quantity: place.quantity.raw(),
            lot,
        });
    }
    place.target().map(|_| ())
}

fn check_permission_op(
    tx: &Transaction,
    op: &Op,
    grantees: &mut BTreeSet<u32>,
) -> Result<(), TxError> {
    let Some((vout, perms, start, end)) = op.permission_change() else {
        return Ok(());
    };
    let output = tx
        .outputs
        .get(vout as usize)
        .ok_or(TxError::GrantOutputOutOfRange { vout })?;
    if !output.is_zero_value() {
        return Err(TxError::GrantOutputNotEmpty { vout });
    }
    if !grantees.insert(vout) {
        return Err(TxError::DuplicateGrantOutput { vout });
    }
    let distinct: BTreeSet<_> = perms.iter().collect();
    if perms.is_empty() || distinct.len() != perms.len() {
        return Err(TxError::BadPermissionList);
    }
    if perms
        .iter()
        .any(|p| matches!(p, Permission::Asset(id, _) if *id == NEW_ASSET))
    {
        return Err(TxError::PermissionForNewAsset);
    }
    if matches!(op, Op::Grant { .. }) && start >= end {
        return Err(TxError::BadGrantRange { start, end });
    }
    Ok(())
}

/// Asset names: 1 to 32 bytes, no control characters, not `*`, not shaped like an asset reference.
pub fn check_asset_name(name: &str) -> Result<(), TxError> {
    let bad = |reason| {
        Err(TxError::InvalidAssetName {
            name: name.to_string(),
            reason,
        })
    };
    if name.is_empty() {
        return bad("empty");
    }
    if name.len() > MAX_ASSET_NAME {
        return Err(TxError::FieldsTooLarge);
    }
    if name.chars().any(char::is_control) || name.trim() != name {
        return bad("control characters or surrounding spaces");
    }
    if name == "*" {
        return bad("reserved");
    }
    let parts: Vec<&str> = name.split('-').collect();
    if parts.len() == 3
        && parts
            .iter()
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
    {
        return bad("shaped like an asset reference");
    }
    Ok(())
}

fn check_fields(fields: &BTreeMap<String, String>) -> Result<(), TxError> {
    if codec::encoded_len(fields) > MAX_FIELDS_BYTES {
        return Err(TxError::FieldsTooLarge);
    }
    Ok(())
}

pub fn check_sighash_modes(tx: &Transaction) -> Result<(), TxError> {
    for (i, input) in tx.inputs.iter().enumerate() {
        match SighashMode::from_byte(input.sighash) {
            None => {
                return Err(TxError::UnknownSighash {
                    input: i as u32,
                    byte: input.sighash,
                });
            }
            Some(SighashMode::SingleAnyoneCanPay) if i >= tx.outputs.len() => {
                return Err(TxError::SingleWithoutOutput { input: i as u32 });
            }
            Some(_) => {}
        }
    }
    Ok(())
}

pub fn check_signed_coverage(tx: &Transaction) -> Result<(), TxError> {
    let has_all = tx.inputs.iter().any(|i| i.sighash == SighashMode::ALL_BYTE);
    if !has_all && (tx.outputs.len() != tx.inputs.len() || !tx.ops.is_empty()) {
        return Err(TxError::UnsignedParts);
    }
    Ok(())
}

pub fn check_signatures(tx: &Transaction, chain: &Chain) -> Result<(), TxError> {
    let mut body = None;
    for i in 0..tx.inputs.len() {
        if !sighash::verify_input(tx, i, &chain.id, &mut body) {
            return Err(TxError::BadSignature { input: i as u32 });
        }
    }
    Ok(())
}

/// T1–T8: everything that needs neither state nor signatures.
pub fn check_stateless(tx: &Transaction, chain: &Chain) -> Result<(), TxError> {
    check_version(tx)?;
    check_inputs_outputs(tx)?;
    check_limits(tx, chain)?;
    check_output_assets(tx)?;
    check_unique_inputs(tx)?;
    check_ops(tx)?;
    check_sighash_modes(tx)?;
    check_signed_coverage(tx)
}

// ---------------------------------------------------------------- state rules

/// Whether `address` holds `perm` at `height` (an `anyone-can-*` parameter switches the check off).
pub fn holds(
    view: &(impl LedgerView + ?Sized),
    chain: &Chain,
    address: &Address,
    perm: Permission,
    height: u32,
) -> Result<bool, TxError> {
    if let Permission::Global(g) = perm
        && chain.anyone_can(g)
    {
        return Ok(true);
    }
    Ok(read::perm(view, address, &perm)?.is_some_and(|r| r.holds_at(height)))
}

pub fn check_inputs_exist(
    view: &(impl LedgerView + ?Sized),
    tx: &Transaction,
) -> Result<Vec<Utxo>, TxError> {
    let mut spent = Vec::with_capacity(tx.inputs.len());
    for (i, input) in tx.inputs.iter().enumerate() {
        match read::utxo(view, &input.prev)? {
            Some(u) => spent.push(u),
            None => {
                return Err(TxError::MissingInput {
                    input: i as u32,
                    prev: input.prev,
                });
            }
        }
    }
    Ok(spent)
}

pub fn check_input_owner(tx: &Transaction, spent: &[Utxo]) -> Result<(), TxError> {
    for (i, (input, utxo)) in tx.inputs.iter().zip(spent).enumerate() {
        if input.pubkey.address() != utxo.output.address {
            return Err(TxError::WrongKey { input: i as u32 });
        }
    }
    Ok(())
}

pub fn check_send_permission(
    view: &(impl LedgerView + ?Sized),
    spent: &[Utxo],
    ctx: &TxContext,
) -> Result<(), TxError> {
    for (i, utxo) in spent.iter().enumerate() {
        let address = utxo.output.address;
        if !holds(
            view,
            ctx.chain,
            &address,
            Permission::Global(GlobalPerm::Send),
            ctx.height,
        )? {
            return Err(TxError::NoSendPermission {
                input: i as u32,
                address,
            });
        }
    }
    Ok(())
}

/// Per-asset sums with checked arithmetic.
fn sum_assets<'a>(
    outputs: impl Iterator<Item = &'a crate::tx::Output>,
) -> Result<BTreeMap<AssetId, Amount>, TxError> {
    let mut sums: BTreeMap<AssetId, Amount> = BTreeMap::new();
    for out in outputs {
        for (id, qty) in &out.assets {
            let slot = sums.entry(*id).or_insert(Amount::ZERO);
            *slot = slot
                .checked_add(*qty)
                .map_err(|_| TxError::AmountOverflow)?;
        }
    }
    Ok(sums)
}

pub fn check_conservation(tx: &Transaction, spent: &[Utxo]) -> Result<(), TxError> {
    let mut ins = sum_assets(spent.iter().map(|u| &u.output))?;
    let mut outs = sum_assets(tx.outputs.iter())?;
    match tx.issue_op() {
        Some(Op::IssueAsset(issue)) => {
            ins.insert(NEW_ASSET, issue.quantity);
        }
        Some(Op::IssueMore {
            asset, quantity, ..
        }) => {
            let slot = ins.entry(*asset).or_insert(Amount::ZERO);
            *slot = slot
                .checked_add(*quantity)
                .map_err(|_| TxError::AmountOverflow)?;
        }
        _ => {}
    }
    if let Some(place) = tx.place_order() {
        let slot = outs.entry(place.sell).or_insert(Amount::ZERO);
        *slot = slot
            .checked_add(place.quantity)
            .map_err(|_| TxError::AmountOverflow)?;
    }
    ins.retain(|_, q| !q.is_zero());
    let ids: BTreeSet<&AssetId> = ins.keys().chain(outs.keys()).collect();
    for id in ids {
        let i = ins.get(id).copied().unwrap_or(Amount::ZERO);
        let o = outs.get(id).copied().unwrap_or(Amount::ZERO);
        if i != o {
            return Err(TxError::Unbalanced {
                asset: *id,
                inputs: i.raw(),
                outputs: o.raw(),
            });
        }
    }
    Ok(())
}

fn grant_outputs(tx: &Transaction) -> BTreeSet<u32> {
    tx.ops
        .iter()
        .filter_map(|op| op.permission_change().map(|(vout, ..)| vout))
        .collect()
}

pub fn check_receive_permission(
    view: &(impl LedgerView + ?Sized),
    tx: &Transaction,
    ctx: &TxContext,
) -> Result<(), TxError> {
    let grants = grant_outputs(tx);
    for (vout, out) in tx.outputs.iter().enumerate() {
        let vout = vout as u32;
        let exempt = grants.contains(&vout)
            || (out.is_zero_value() && ctx.chain.params.anyone_can_receive_empty);
        if !exempt
            && !holds(
                view,
                ctx.chain,
                &out.address,
                Permission::Global(GlobalPerm::Receive),
                ctx.height,
            )?
        {
            return Err(TxError::NoReceivePermission {
                vout,
                address: out.address,
            });
        }
    }
    Ok(())
}

pub fn check_zero_value_outputs(tx: &Transaction, spent: &[Utxo]) -> Result<(), TxError> {
    let grants = grant_outputs(tx);
    let input_addresses: BTreeSet<Address> = spent.iter().map(|u| u.output.address).collect();
    for (vout, out) in tx.outputs.iter().enumerate() {
        let vout = vout as u32;
        if out.is_zero_value() && !grants.contains(&vout) && !input_addresses.contains(&out.address)
        {
            return Err(TxError::ZeroValueOutputNotAllowed { vout });
        }
    }
    Ok(())
}

/// Distinct addresses of ALL-signed inputs, in input order.
pub fn all_signers(tx: &Transaction) -> Vec<Address> {
    let mut out: Vec<Address> = Vec::new();
    for input in tx
        .inputs
        .iter()
        .filter(|i| i.sighash == SighashMode::ALL_BYTE)
    {
        let a = input.pubkey.address();
        if !out.contains(&a) {
            out.push(a);
        }
    }
    out
}

/// The first ALL signer holding `perm`, if any.
pub fn signer_holding(
    view: &(impl LedgerView + ?Sized),
    ctx: &TxContext,
    signers: &[Address],
    perm: Permission,
) -> Result<Option<Address>, TxError> {
    for s in signers {
        if holds(view, ctx.chain, s, perm, ctx.height)? {
            return Ok(Some(*s));
        }
    }
    Ok(None)
}

pub fn check_issue(
    view: &(impl LedgerView + ?Sized),
    tx: &Transaction,
    signers: &[Address],
    ctx: &TxContext,
) -> Result<(), TxError> {
    match tx.issue_op() {
        Some(Op::IssueAsset(issue)) => {
            if signer_holding(view, ctx, signers, Permission::Global(GlobalPerm::Issue))?.is_none()
            {
                return Err(TxError::NoIssuePermission);
            }
            if read::asset_by_name(view, &issue.name)?.is_some() {
                return Err(TxError::DuplicateAssetName {
                    name: issue.name.clone(),
                });
            }
        }
        Some(Op::IssueMore {
            asset, quantity, ..
        }) => {
            let info = read::asset(view, asset)?.ok_or(TxError::UnknownAsset { asset: *asset })?;
            if !info.open {
                return Err(TxError::AssetClosed { asset: *asset });
            }
            if signer_holding(
                view,
                ctx,
                signers,
                Permission::Asset(*asset, AssetPerm::Issue),
            )?
            .is_none()
            {
                return Err(TxError::NoAssetIssuePermission { asset: *asset });
            }
            info.total
                .checked_add(*quantity)
                .map_err(|_| TxError::SupplyOverflow { asset: *asset })?;
        }
        _ => {}
    }
    Ok(())
}

/// The permission a signer needs to grant or revoke `perm`, best first.
pub fn authorities_for(perm: Permission) -> Vec<Permission> {
    match perm {
        Permission::Global(g) if g.activate_may_grant() => {
            vec![
                Permission::Global(GlobalPerm::Admin),
                Permission::Global(GlobalPerm::Activate),
            ]
        }
        Permission::Global(_) => vec![Permission::Global(GlobalPerm::Admin)],
        Permission::Asset(id, _) => vec![Permission::Asset(id, AssetPerm::Admin)],
    }
}

pub fn check_grant_authority(
    view: &(impl LedgerView + ?Sized),
    tx: &Transaction,
    signers: &[Address],
    ctx: &TxContext,
) -> Result<(), TxError> {
    for op in &tx.ops {
        let Some((_, perms, ..)) = op.permission_change() else {
            continue;
        };
        for perm in perms {
            if let Permission::Asset(id, _) = perm
                && read::asset(view, id)?.is_none()
            {
                return Err(TxError::UnknownAsset { asset: *id });
            }
            let mut ok = false;
            for auth in authorities_for(*perm) {
                if signer_holding(view, ctx, signers, auth)?.is_some() {
                    ok = true;
                    break;
                }
            }
            if !ok {
                return Err(TxError::NoGrantAuthority { permission: *perm });
            }
        }
    }
    Ok(())
}

/// S9: the order ops against state (the matching itself happens in `orderbook` when applying).
pub fn check_orders(
    view: &(impl LedgerView + ?Sized),
    tx: &Transaction,
    signers: &[Address],
    ctx: &TxContext,
) -> Result<(), TxError> {
    for op in &tx.ops {
        match op {
            Op::PlaceOrder(place) => {
                for asset in [place.sell, place.buy] {
                    if read::asset(view, &asset)?.is_none() {
                        return Err(TxError::OrderUnknownAsset { asset });
                    }
                }
                // T8 gives a transaction with ops an ALL input, so there is a first ALL signer.
                let owner = *signers.first().ok_or(TxError::UnsignedParts)?;
                if !holds(
                    view,
                    ctx.chain,
                    &owner,
                    Permission::Global(GlobalPerm::Receive),
                    ctx.height,
                )? {
                    return Err(TxError::NoReceiveForOrder { address: owner });
                }
            }
            Op::CancelOrder { order } => {
                let record =
                    read::order(view, order)?.ok_or(TxError::UnknownOrder { order: *order })?;
                if record.status != OrderStatus::Open {
                    return Err(TxError::OrderNotOpen { order: *order });
                }
                if !signers.contains(&record.owner) {
                    return Err(TxError::NotOrderOwner { order: *order });
                }
            }
            _ => {}
        }
    }
    Ok(())
}

/// S1–S9 against `view` at `ctx.height`.
pub fn check_against_state(
    view: &(impl LedgerView + ?Sized),
    tx: &Transaction,
    ctx: &TxContext,
) -> Result<Checked, TxError> {
    let spent = check_inputs_exist(view, tx)?;
    check_input_owner(tx, &spent)?;
    check_send_permission(view, &spent, ctx)?;
    check_conservation(tx, &spent)?;
    check_receive_permission(view, tx, ctx)?;
    check_zero_value_outputs(tx, &spent)?;
    let signers = all_signers(tx);
    check_issue(view, tx, &signers, ctx)?;
    check_grant_authority(view, tx, &signers, ctx)?;
    check_orders(view, tx, &signers, ctx)?;
    Ok(Checked {
        spent,
        all_signers: signers,
    })
}

/// Every rule, in order: T1–T8, T9 unless the signatures were already checked, then S1–S9.
pub fn validate_tx(
    view: &(impl LedgerView + ?Sized),
    tx: &Transaction,
    ctx: &TxContext,
) -> Result<Checked, TxError> {
    check_stateless(tx, ctx.chain)?;
    if !ctx.signatures_checked {
        check_signatures(tx, ctx.chain)?;
    }
    check_against_state(view, tx, ctx)
}
