//! Why a transaction or a block was refused. Each variant names the rule it breaks (see the rule
//! list in `validate`), with the values involved.

use crate::address::Address;
use crate::orderbook::OrderId;
use crate::permissions::Permission;
use crate::state::StoreError;
use crate::tx::{AssetId, OutPoint, Txid};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TxError {
    // --- stateless rules (T1..T9) ---
    #[error("T1 version: transaction version {got} is not supported")]
    BadVersion { got: u32 },
    #[error("T2 inputs-outputs: a transaction needs at least one input")]
    NoInputs,
    #[error("T2 inputs-outputs: a transaction needs at least one output")]
    NoOutputs,
    #[error("T3 limits: transaction of {size} bytes exceeds {limit}")]
    TooLarge { size: usize, limit: usize },
    #[error("T3 limits: {count} {what} exceed the limit of {limit}")]
    TooMany {
        what: &'static str,
        count: usize,
        limit: usize,
    },
    #[error("T4 output-assets: output {vout} assets are not sorted by id without duplicates")]
    OutputAssetsUnsorted { vout: u32 },
    #[error("T4 output-assets: output {vout} carries a zero quantity")]
    ZeroAssetAmount { vout: u32 },
    #[error(
        "T4 output-assets: output {vout} carries the new-asset id but the transaction issues no asset"
    )]
    NewAssetWithoutIssue { vout: u32 },
    #[error("T5 unique-inputs: outpoint {prev:?} is spent twice")]
    DuplicateInput { prev: OutPoint },
    #[error("T6 ops: at most one issue operation per transaction")]
    MultipleIssueOps,
    #[error("T6 ops: invalid asset name {name:?}: {reason}")]
    InvalidAssetName { name: String, reason: &'static str },
    #[error("T6 ops: invalid smallest unit (multiple {multiple} must divide 100000000)")]
    InvalidMultiple { multiple: u32 },
    #[error("T6 ops: invalid custom fields or asset name, too long")]
    FieldsTooLarge,
    #[error("T6 ops: issue-more must name an existing asset id")]
    IssueMoreOfNewAsset,
    #[error("T6 ops: grant output {vout} does not exist")]
    GrantOutputOutOfRange { vout: u32 },
    #[error("T6 ops: grant output {vout} must carry no assets")]
    GrantOutputNotEmpty { vout: u32 },
    #[error("T6 ops: output {vout} is the grantee of two operations")]
    DuplicateGrantOutput { vout: u32 },
    #[error("T6 ops: a grant or revoke must name at least one permission, each once")]
    BadPermissionList,
    #[error("T6 ops: grant range [{start}, {end}) is empty or reversed")]
    BadGrantRange { start: u32, end: u32 },
    #[error("T6 ops: permissions cannot be granted for the asset being issued")]
    PermissionForNewAsset,
    #[error("T6 ops: at most one order placement per transaction")]
    MultipleOrders,
    #[error("T6 ops: an order must sell one asset for another")]
    OrderSameAsset,
    #[error("T6 ops: an order cannot trade the asset being issued")]
    OrderForNewAsset,
    #[error("T6 ops: order price {num}/{den} needs a non-zero numerator and denominator")]
    BadPrice { num: u64, den: u64 },
    #[error(
        "T6 ops: order quantity {quantity} is less than one lot of its price ({lot} raw units)"
    )]
    OrderBelowLot { quantity: u64, lot: u64 },
    #[error("T6 ops: the quantity a buy order wants exceeds 2^63-1")]
    OrderTargetOverflow,
    #[error("T6 ops: order {order} is cancelled twice")]
    DuplicateCancel { order: OrderId },
    #[error("T7 sighash: input {input} has unknown sighash mode {byte:#04x}")]
    UnknownSighash { input: u32, byte: u8 },
    #[error("T7 sighash: input {input} is signed SINGLE|ANYONECANPAY but has no matching output")]
    SingleWithoutOutput { input: u32 },
    #[error(
        "T8 signed-coverage: without an ALL input a transaction needs one output per input and no operations"
    )]
    UnsignedParts,
    #[error("T9 signatures: input {input} has an invalid signature")]
    BadSignature { input: u32 },
    // --- state rules (S1..S8) ---
    #[error(
        "S1 inputs-exist: missing inputs (input {input} spends {prev:?}, which is not unspent)"
    )]
    MissingInput { input: u32, prev: OutPoint },
    #[error("S2 input-owner: input {input} is signed by a key that does not own the coin")]
    WrongKey { input: u32 },
    #[error("S3 send-permission: input {input} address has no send permission")]
    NoSendPermission { input: u32, address: Address },
    #[error(
        "S4 conservation: mismatch in input/output quantities of asset {asset} (in {inputs}, out {outputs})"
    )]
    Unbalanced {
        asset: AssetId,
        inputs: u64,
        outputs: u64,
    },
    #[error("S4 conservation: quantity overflow")]
    AmountOverflow,
    #[error(
        "S5 receive-permission: destination address of output {vout} doesn't have receive permission"
    )]
    NoReceivePermission { vout: u32, address: Address },
    #[error(
        "S6 zero-value-outputs: output {vout} carries nothing and is neither a grant nor change"
    )]
    ZeroValueOutputNotAllowed { vout: u32 },
    #[error("S7 issue: inputs don't belong to valid issuer")]
    NoIssuePermission,
    #[error("S7 issue: entity with this name already exists: {name}")]
    DuplicateAssetName { name: String },
    #[error("S7 issue: asset not found: {asset}")]
    UnknownAsset { asset: AssetId },
    #[error("S7 issue: follow-ons not allowed for this asset: {asset}")]
    AssetClosed { asset: AssetId },
    #[error("S7 issue: issuing more units for asset {asset} is not allowed from these inputs")]
    NoAssetIssuePermission { asset: AssetId },
    #[error("S7 issue: total supply of asset {asset} would exceed 2^63-1")]
    SupplyOverflow { asset: AssetId },
    #[error("S8 grant-authority: no ALL-signed input may grant or revoke {permission:?}")]
    NoGrantAuthority { permission: Permission },
    #[error("S9 orders: asset not found: {asset}")]
    OrderUnknownAsset { asset: AssetId },
    #[error("S9 orders: the order owner {address:?} has no receive permission")]
    NoReceiveForOrder { address: Address },
    #[error("S9 orders: order not found: {order}")]
    UnknownOrder { order: OrderId },
    #[error("S9 orders: order {order} is not open")]
    OrderNotOpen { order: OrderId },
    #[error("S9 orders: order {order} belongs to no ALL signer of this transaction")]
    NotOrderOwner { order: OrderId },
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl TxError {
    /// Faults that no state can cure: a peer relaying such a transaction is at fault.
    pub fn is_stateless(&self) -> bool {
        matches!(
            self,
            TxError::BadVersion { .. }
                | TxError::NoInputs
                | TxError::NoOutputs
                | TxError::TooLarge { .. }
                | TxError::TooMany { .. }
                | TxError::OutputAssetsUnsorted { .. }
                | TxError::ZeroAssetAmount { .. }
                | TxError::NewAssetWithoutIssue { .. }
                | TxError::DuplicateInput { .. }
                | TxError::MultipleIssueOps
                | TxError::InvalidAssetName { .. }
                | TxError::InvalidMultiple { .. }
                | TxError::FieldsTooLarge
                | TxError::IssueMoreOfNewAsset
                | TxError::GrantOutputOutOfRange { .. }
                | TxError::GrantOutputNotEmpty { .. }
                | TxError::DuplicateGrantOutput { .. }
                | TxError::BadPermissionList
                | TxError::BadGrantRange { .. }
                | TxError::PermissionForNewAsset
                | TxError::MultipleOrders
                | TxError::OrderSameAsset
                | TxError::OrderForNewAsset
                | TxError::BadPrice { .. }
                | TxError::OrderBelowLot { .. }
                | TxError::OrderTargetOverflow
                | TxError::DuplicateCancel { .. }
                | TxError::UnknownSighash { .. }
                | TxError::SingleWithoutOutput { .. }
                | TxError::UnsignedParts
                | TxError::BadSignature { .. }
        )
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BlockError {
    #[error("B1 version: block version {got} is not supported")]
    BadVersion { got: u32 },
    #[error("B1 size: block of {size} bytes exceeds {limit}")]
    TooLarge { size: usize, limit: usize },
    #[error("B2 parent: block builds on {got}, the tip is {expected}")]
    WrongParent {
        expected: crate::block::BlockId,
        got: crate::block::BlockId,
    },
    #[error("B2 parent: block height {got}, expected {expected}")]
    WrongHeight { expected: u32, got: u32 },
    #[error("B3 timestamp: {got} is not after the parent's {parent}")]
    TimestampNotIncreasing { parent: u64, got: u64 },
    #[error("B4 merkle: transaction root does not match")]
    BadMerkleRoot,
    #[error("B4 merkle: transaction {txid} appears twice")]
    DuplicateTxid { txid: Txid },
    #[error("B5 miner: {address:?} has no mine permission at this height")]
    MinerNotPermitted { address: Address },
    #[error("B6 diversity: {address:?} signed block {last} and may not sign again before {next}")]
    MinerBarred {
        address: Address,
        last: u32,
        next: u32,
    },
    #[error("B7 signature: block signature is invalid")]
    BadSignature,
    #[error("B8 transactions: transaction {index} ({txid}): {error}")]
    Tx {
        index: usize,
        txid: Txid,
        error: TxError,
    },
    #[error("B9 genesis: {0}")]
    Genesis(String),
    #[error("the state has no tip (no genesis applied)")]
    NoTip,
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl BlockError {
    /// Faults that make the sender of the block at fault whatever our own state (bad signature,
    /// malformed content, and — judged on the block's own branch — a signer without `mine`,
    /// which DESIGN §5 lists among the faults that get Reject).
    pub fn is_stateless(&self) -> bool {
        match self {
            BlockError::MinerNotPermitted { .. } => true,
            BlockError::BadVersion { .. }
            | BlockError::TooLarge { .. }
            | BlockError::BadMerkleRoot
            | BlockError::DuplicateTxid { .. }
            | BlockError::BadSignature
            | BlockError::Genesis(_) => true,
            BlockError::Tx { error, .. } => error.is_stateless(),
            _ => false,
        }
    }
}
