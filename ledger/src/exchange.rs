//! Atomic exchange offers with MultiChain's semantics (`createrawexchange`, `appendrawexchange`,
//! `completerawexchange`, `decoderawexchange`).
//!
//! An offer is a transaction whose input `i` (a prepared coin) is signed SINGLE|ANYONECANPAY
//! together with output `i` (what its owner asks in return, paid to the owner). A counter-party
//! appends its own input/output pair; the transaction is complete when, for every asset, what the
//! inputs give equals what the outputs take. Nobody can change what either side signed.

use crate::address::Address;
use crate::amount::Amount;
use crate::chain::Chain;
use crate::error::TxError;
use crate::keys::{SecretKey, Signature};
use crate::permissions::{GlobalPerm, Permission};
use crate::sighash::{self, SighashMode};
use crate::state::{LedgerView, Utxo, read};
use crate::tx::{AssetId, Input, OutPoint, Output, TX_VERSION, Transaction};
use crate::validate::holds;
use std::collections::BTreeMap;

/// Asset quantities by asset id, raw units, no zero entries.
pub type AssetBag = BTreeMap<AssetId, Amount>;

/// Why an exchange cannot be built or decoded; the text follows MultiChain's (code −707 unless
/// the RPC layer maps it otherwise).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExchangeError {
    #[error("Too few outputs")]
    TooFewOutputs,
    #[error("Too many outputs")]
    TooManyOutputs,
    #[error("Missing inputs; Input: {input}, txid: {txid}, vout: {vout}")]
    MissingInput {
        input: u32,
        txid: crate::tx::Txid,
        vout: u32,
    },
    #[error("Wrong sighash type; Input: {input}")]
    WrongSighash { input: u32 },
    #[error("Wrong signature; Input: {input}")]
    WrongSignature { input: u32 },
    #[error("Input {input} address doesn't have send permission")]
    NoSend { input: u32 },
    #[error("Output {vout} address doesn't have receive permission")]
    NoReceive { vout: u32 },
    #[error("Address of prepared output doesn't have send/receive permission")]
    PreparedNoPermission,
    #[error("Prepared output does not belong to this key")]
    NotOwner,
    #[error("Ask must name at least one asset with a positive quantity")]
    EmptyAsk,
    #[error("Incomplete exchange")]
    Incomplete,
    #[error("quantity overflow")]
    Overflow,
    #[error(transparent)]
    Tx(#[from] TxError),
}

/// One input/output pair of an exchange.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExchangePair {
    /// What the input gives: the prepared coin's assets, its owner and outpoint.
    pub offer: AssetBag,
    pub offer_address: Address,
    pub prev: OutPoint,
    /// What the paired output takes, and who gets it.
    pub ask: AssetBag,
    pub ask_address: Address,
}

/// `decoderawexchange`: the unmatched remainders and each pair.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DecodedExchange {
    /// Assets the inputs give beyond what the outputs take (still on offer).
    pub offer: AssetBag,
    /// Assets the outputs take beyond what the inputs give (still to be supplied).
    pub ask: AssetBag,
    pub complete: bool,
    pub exchanges: Vec<ExchangePair>,
}

fn bag_of(output: &Output) -> AssetBag {
    output.assets.iter().copied().collect()
}

/// Checks a prepared coin before it goes into an exchange: unspent, owned by `key`, and its
/// address holds send and receive at `height`.
pub fn check_prepared(
    view: &(impl LedgerView + ?Sized),
    chain: &Chain,
    prev: OutPoint,
    owner: &Address,
    height: u32,
) -> Result<Utxo, ExchangeError> {
    let utxo =
        read::utxo(view, &prev)
            .map_err(TxError::from)?
            .ok_or(ExchangeError::MissingInput {
                input: 0,
                txid: prev.txid,
                vout: prev.vout,
            })?;
    if utxo.output.address != *owner {
        return Err(ExchangeError::NotOwner);
    }
    for perm in [GlobalPerm::Send, GlobalPerm::Receive] {
        if !holds(view, chain, owner, Permission::Global(perm), height)? {
            return Err(ExchangeError::PreparedNoPermission);
        }
    }
    Ok(utxo)
}

fn pair_output(key: &SecretKey, ask: &AssetBag) -> Result<Output, ExchangeError> {
    if ask.is_empty() || ask.values().any(|q| q.is_zero()) {
        return Err(ExchangeError::EmptyAsk);
    }
    Ok(Output {
        address: key.address(),
        assets: ask.iter().map(|(k, v)| (*k, *v)).collect(),
    })
}

fn push_pair(
    tx: &mut Transaction,
    prev: OutPoint,
    key: &SecretKey,
    ask: &AssetBag,
    mode: SighashMode,
    chain: &Chain,
) -> Result<(), ExchangeError> {
    tx.inputs.push(Input {
        prev,
        pubkey: key.public(),
        signature: Signature::default(),
        sighash: mode.byte(),
    });
    tx.outputs.push(pair_output(key, ask)?);
    let index = tx.inputs.len() - 1;
    if !sighash::sign_input(tx, index, mode, key, &chain.id) {
        return Err(ExchangeError::TooFewOutputs);
    }
    Ok(())
}

/// `createrawexchange`: input 0 = `prev`, output 0 = `ask` paid to the key's address, signed 0x83.
pub fn create_offer(
    prev: OutPoint,
    key: &SecretKey,
    ask: &AssetBag,
    chain: &Chain,
) -> Result<Transaction, ExchangeError> {
    let mut tx = Transaction {
        version: TX_VERSION,
        inputs: vec![],
        outputs: vec![],
        ops: vec![],
    };
    push_pair(
        &mut tx,
        prev,
        key,
        ask,
        SighashMode::SingleAnyoneCanPay,
        chain,
    )?;
    Ok(tx)
}

/// `appendrawexchange`: appends one pair signed 0x83; signs only the new input.
pub fn append_to_exchange(
    tx: &Transaction,
    prev: OutPoint,
    key: &SecretKey,
    ask: &AssetBag,
    chain: &Chain,
) -> Result<Transaction, ExchangeError> {
    check_shape(tx)?;
    let mut out = tx.clone();
    push_pair(
        &mut out,
        prev,
        key,
        ask,
        SighashMode::SingleAnyoneCanPay,
        chain,
    )?;
    Ok(out)
}

/// `completerawexchange`: appends one pair whose input is signed ALL, which seals the whole
/// transaction; refuses unless the result is complete.
pub fn complete_exchange(
    view: &(impl LedgerView + ?Sized),
    tx: &Transaction,
    prev: OutPoint,
    key: &SecretKey,
    ask: &AssetBag,
    chain: &Chain,
    height: u32,
) -> Result<Transaction, ExchangeError> {
    check_shape(tx)?;
    let mut out = tx.clone();
    out.inputs.push(Input {
        prev,
        pubkey: key.public(),
        signature: Signature::default(),
        sighash: SighashMode::ALL_BYTE,
    });
    out.outputs.push(pair_output(key, ask)?);
    let decoded = decode_exchange(view, &out, chain, height, false)?;
    if !decoded.complete {
        return Err(ExchangeError::Incomplete);
    }
    let index = out.inputs.len() - 1;
    sighash::sign_input(&mut out, index, SighashMode::All, key, &chain.id);
    Ok(out)
}

fn check_shape(tx: &Transaction) -> Result<(), ExchangeError> {
    if tx.outputs.len() < tx.inputs.len() {
        return Err(ExchangeError::TooFewOutputs);
    }
    if tx.outputs.len() > tx.inputs.len() || !tx.ops.is_empty() {
        return Err(ExchangeError::TooManyOutputs);
    }
    Ok(())
}

fn add(bag: &mut AssetBag, id: AssetId, q: Amount) -> Result<(), ExchangeError> {
    let slot = bag.entry(id).or_insert(Amount::ZERO);
    *slot = slot.checked_add(q).map_err(|_| ExchangeError::Overflow)?;
    Ok(())
}

/// `decoderawexchange`: checks every pair against `view` at `height` and nets the assets.
/// `check_last_signature = false` skips the last input's signature (used while completing).
pub fn decode_exchange(
    view: &(impl LedgerView + ?Sized),
    tx: &Transaction,
    chain: &Chain,
    height: u32,
    check_last_signature: bool,
) -> Result<DecodedExchange, ExchangeError> {
    check_shape(tx)?;
    let last = tx.inputs.len().saturating_sub(1);
    let mut body = None;
    let (mut given, mut taken) = (AssetBag::new(), AssetBag::new());
    let mut exchanges = Vec::with_capacity(tx.inputs.len());
    for (i, (input, output)) in tx.inputs.iter().zip(&tx.outputs).enumerate() {
        let idx = i as u32;
        let utxo = read::utxo(view, &input.prev)
            .map_err(TxError::from)?
            .ok_or(ExchangeError::MissingInput {
                input: idx,
                txid: input.prev.txid,
                vout: input.prev.vout,
            })?;
        match SighashMode::from_byte(input.sighash) {
            Some(SighashMode::SingleAnyoneCanPay) => {}
            Some(SighashMode::All) if i == last => {}
            _ => return Err(ExchangeError::WrongSighash { input: idx }),
        }
        let skip_sig = i == last && !check_last_signature;
        if !skip_sig
            && (!sighash::verify_input(tx, i, &chain.id, &mut body)
                || input.pubkey.address() != utxo.output.address)
        {
            return Err(ExchangeError::WrongSignature { input: idx });
        }
        if !holds(
            view,
            chain,
            &utxo.output.address,
            Permission::Global(GlobalPerm::Send),
            height,
        )? {
            return Err(ExchangeError::NoSend { input: idx });
        }
        if !holds(
            view,
            chain,
            &output.address,
            Permission::Global(GlobalPerm::Receive),
            height,
        )? {
            return Err(ExchangeError::NoReceive { vout: idx });
        }
        for (id, q) in &utxo.output.assets {
            add(&mut given, *id, *q)?;
        }
        for (id, q) in &output.assets {
            add(&mut taken, *id, *q)?;
        }
        exchanges.push(ExchangePair {
            offer: bag_of(&utxo.output),
            offer_address: utxo.output.address,
            prev: input.prev,
            ask: bag_of(output),
            ask_address: output.address,
        });
    }
    let (mut offer, mut ask) = (AssetBag::new(), AssetBag::new());
    let ids: std::collections::BTreeSet<AssetId> =
        given.keys().chain(taken.keys()).copied().collect();
    for id in ids {
        let g = given.get(&id).copied().unwrap_or_default();
        let t = taken.get(&id).copied().unwrap_or_default();
        if g > t {
            offer.insert(id, g.checked_sub(t).map_err(|_| ExchangeError::Overflow)?);
        } else if t > g {
            ask.insert(id, t.checked_sub(g).map_err(|_| ExchangeError::Overflow)?);
        }
    }
    let complete = offer.is_empty() && ask.is_empty();
    Ok(DecodedExchange {
        offer,
        ask,
        complete,
        exchanges,
    })
}

/// Whether `candidate` takes the one-pair offer `offer`: it spends the offer's outpoint and pays
/// the offer's asked output at the same index — whatever the candidate's txid.
pub fn takes_offer(offer: &Transaction, candidate: &Transaction) -> bool {
    let (Some(input), Some(output)) = (offer.inputs.first(), offer.outputs.first()) else {
        return false;
    };
    candidate
        .inputs
        .iter()
        .zip(&candidate.outputs)
        .any(|(i, o)| i.prev == input.prev && o == output)
}
