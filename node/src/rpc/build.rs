//! Building and submitting wallet transactions for RPC commands, with MultiChain's errors.

use super::server::{RpcError, code};
use crate::chain::NodeState;
use crate::mempool::MempoolError;
use crate::wallet::{WalletError, select_coins};
use wattle_ledger::address::Address;
use wattle_ledger::error::TxError;
use wattle_ledger::exchange::AssetBag;
use wattle_ledger::permissions::{GlobalPerm, Permission};
use wattle_ledger::sighash;
use wattle_ledger::tx::{AssetId, Op, Output, TX_VERSION, Transaction, Txid};
use wattle_ledger::{Amount, SecretKey};

/// A mempool refusal as MultiChain reports it.
pub fn mempool_error(e: MempoolError) -> RpcError {
    match e {
        MempoolError::Invalid(TxError::MissingInput { .. }) => {
            RpcError::new(code::VERIFY_ALREADY_IN_CHAIN, "missing inputs")
        }
        MempoolError::Duplicate => RpcError::new(code::VERIFY_REJECTED, "txn-already-in-mempool"),
        MempoolError::Invalid(e) => RpcError::new(code::VERIFY_REJECTED, e.to_string()),
        other => RpcError::new(code::VERIFY_REJECTED, other.to_string()),
    }
}

fn wallet_error(e: WalletError) -> RpcError {
    match e {
        WalletError::InsufficientFunds => {
            RpcError::new(code::WALLET_INSUFFICIENT_FUNDS, "Insufficient funds")
        }
        WalletError::NoCoins => {
            RpcError::new(code::WALLET_NO_UNSPENT_OUTPUTS, "No unspent output found")
        }
        WalletError::File { .. } => RpcError::new(code::WALLET_ERROR, e.to_string()),
    }
}

/// The key of a wallet address: −709 if it is not ours.
pub fn key_of(s: &NodeState, address: &Address) -> Result<SecretKey, RpcError> {
    s.wallet.key_for(address).cloned().ok_or_else(|| {
        RpcError::new(
            code::WALLET_ADDRESS_NOT_FOUND,
            "from-address is not found in this wallet",
        )
    })
}

/// Checks `from` is ours and may sign: −709 / −704.
pub fn check_sender(s: &NodeState, from: &Address) -> Result<SecretKey, RpcError> {
    let key = key_of(s, from)?;
    if !s.holds(from, Permission::Global(GlobalPerm::Send)) {
        return Err(RpcError::new(
            code::INSUFFICIENT_PERMISSIONS,
            "from-address doesn't have send permission",
        ));
    }
    Ok(key)
}

/// The first wallet address that holds send and every permission in `needs` (any of each group).
pub fn pick_sender(
    s: &NodeState,
    needs: &[&[Permission]],
    what: &str,
) -> Result<Address, RpcError> {
    for a in s.wallet.addresses() {
        let ok = s.holds(&a, Permission::Global(GlobalPerm::Send))
            && needs.iter().all(|any| any.iter().any(|p| s.holds(&a, *p)));
        if ok {
            return Ok(a);
        }
    }
    Err(RpcError::new(
        code::INSUFFICIENT_PERMISSIONS,
        format!("This wallet doesn't have addresses with {what} permission"),
    ))
}

/// Checks a destination may receive assets: −704.
pub fn check_receiver(s: &NodeState, to: &Address) -> Result<(), RpcError> {
    if !s.holds(to, Permission::Global(GlobalPerm::Receive)) {
        return Err(RpcError::new(
            code::INSUFFICIENT_PERMISSIONS,
            "Destination address doesn't have receive permission",
        ));
    }
    Ok(())
}

/// Builds a transaction from `from`: `first` outputs (grantees, new-asset outputs), then
/// `payments`, then change to `from`; signs every input ALL.
pub fn build(
    s: &NodeState,
    from: &Address,
    first: Vec<Output>,
    payments: &[(Address, AssetId, Amount)],
    ops: Vec<Op>,
) -> Result<Transaction, RpcError> {
    let mut need = AssetBag::new();
    let mut outputs = first;
    for (to, id, q) in payments {
        let slot = need.entry(*id).or_insert(Amount::ZERO);
        *slot = slot
            .checked_add(*q)
            .map_err(|_| RpcError::new(code::INVALID_PARAMETER, "Asset quantity out of range"))?;
        outputs.push(Output::new(*to, [(*id, *q)]));
    }
    build_funded(s, from, outputs, &need, ops)
}

/// Builds a transaction with `outputs` whose funded assets total `need`, picking coins of
/// `from`, adding change to `from`, and signing every input ALL.
pub fn build_funded(
    s: &NodeState,
    from: &Address,
    mut outputs: Vec<Output>,
    need: &AssetBag,
    ops: Vec<Op>,
) -> Result<Transaction, RpcError> {
    let key = check_sender(s, from)?;
    let coins = s.wallet_coins(&[*from], false, 0);
    let (picked, change) = select_coins(&coins, need).map_err(|e| {
        if matches!(e, WalletError::NoCoins) && !s.wallet_coins(&[*from], true, 0).is_empty() {
            RpcError::new(
                code::WALLET_INSUFFICIENT_FUNDS,
                "Insufficient funds, but there are locked unspent outputs",
            )
        } else {
            wallet_error(e)
        }
    })?;
    // A transaction that needs no assets (grant, revoke, issue) spends a coin only to be signed:
    // hand it back, zero-value if it carried nothing, or the sender has no coin left to sign its
    // next transaction with (there are no coinbase outputs; genesis makes the admin one coin).
    if !change.is_empty() || outputs.is_empty() || need.is_empty() {
        outputs.push(Output::new(*from, change));
    }
    let mut tx = Transaction {
        version: TX_VERSION,
        inputs: picked
            .iter()
            .map(|c| wattle_ledger::tx::Input::unsigned(c.outpoint))
            .collect(),
        outputs,
        ops,
    };
    let keys: Vec<&SecretKey> = tx.inputs.iter().map(|_| &key).collect();
    sighash::sign_all(&mut tx, &keys, &s.chain.id);
    Ok(tx)
}

/// Builds, submits and relays; returns the txid.
pub fn send(
    s: &mut NodeState,
    from: &Address,
    first: Vec<Output>,
    payments: &[(Address, AssetId, Amount)],
    ops: Vec<Op>,
) -> Result<Txid, RpcError> {
    let tx = build(s, from, first, payments, ops)?;
    s.submit(tx, true).map_err(mempool_error)
}
