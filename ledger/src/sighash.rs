//! Signature hash modes.
//!
//! `sighash(tx, i) = H("WATTLE/SIGHASH/1" ‖ chain id ‖ mode ‖ body)`:
//! - `ALL` (0x01): body = `encode(tx)` with every signature zeroed, so it covers every field that
//!   exists now or is added later.
//! - `SINGLE|ANYONECANPAY` (0x83): body = `encode(version, i, inputs[i].prev, inputs[i].pubkey,
//!   outputs[i])`. Committing to `i` stops anyone reordering the pairs of an exchange or merging two
//!   exchanges. An input whose index has no output cannot be signed this way.

use crate::codec;
use crate::hash::{Hash256, tag};
use crate::keys::{SecretKey, Signature};
use crate::tx::Transaction;

/// The chain a signature is bound to: the id of its genesis block.
pub type ChainId = Hash256;

/// The two sighash modes there are.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SighashMode {
    All,
    SingleAnyoneCanPay,
}

impl SighashMode {
    pub const ALL_BYTE: u8 = 0x01;
    pub const SINGLE_ACP_BYTE: u8 = 0x83;

    pub fn from_byte(byte: u8) -> Option<SighashMode> {
        match byte {
            Self::ALL_BYTE => Some(SighashMode::All),
            Self::SINGLE_ACP_BYTE => Some(SighashMode::SingleAnyoneCanPay),
            _ => None,
        }
    }

    pub fn byte(self) -> u8 {
        match self {
            SighashMode::All => Self::ALL_BYTE,
            SighashMode::SingleAnyoneCanPay => Self::SINGLE_ACP_BYTE,
        }
    }
}

/// The body that `ALL` signs: the transaction with every signature zeroed. It does not depend on
/// the input index, so callers checking several inputs compute it once.
pub fn all_body(tx: &Transaction) -> Vec<u8> {
    let mut blank = tx.clone();
    for input in &mut blank.inputs {
        input.signature = Signature::default();
    }
    codec::encode(&blank)
}

/// The message input `index` signs in `mode`; `None` if the mode cannot apply (0x83 without a
/// paired output, or no such input).
pub fn sighash(
    tx: &Transaction,
    index: usize,
    mode: SighashMode,
    chain: &ChainId,
) -> Option<Hash256> {
    let body = match mode {
        SighashMode::All => {
            tx.inputs.get(index)?;
            all_body(tx)
        }
        SighashMode::SingleAnyoneCanPay => single_body(tx, index)?,
    };
    Some(Hash256::tagged(
        tag::SIGHASH,
        &[&chain.0, &[mode.byte()], &body],
    ))
}

/// The hash for an `ALL` input given a precomputed `all_body`.
pub fn sighash_all_from_body(body: &[u8], chain: &ChainId) -> Hash256 {
    Hash256::tagged(tag::SIGHASH, &[&chain.0, &[SighashMode::ALL_BYTE], body])
}

fn single_body(tx: &Transaction, index: usize) -> Option<Vec<u8>> {
    let input = tx.inputs.get(index)?;
    let output = tx.outputs.get(index)?;
    Some(codec::encode(&(
        tx.version,
        index as u32,
        input.prev,
        input.pubkey,
        output,
    )))
}

/// Signs input `index` of `tx` in `mode` with `key`, setting its pubkey, mode and signature.
/// Returns false (and leaves the transaction unchanged) if the mode cannot apply.
pub fn sign_input(
    tx: &mut Transaction,
    index: usize,
    mode: SighashMode,
    key: &SecretKey,
    chain: &ChainId,
) -> bool {
    let Some(input) = tx.inputs.get_mut(index) else {
        return false;
    };
    let (old_key, old_mode) = (input.pubkey, input.sighash);
    input.pubkey = key.public();
    input.sighash = mode.byte();
    match sighash(tx, index, mode, chain) {
        Some(h) => {
            tx.inputs[index].signature = key.sign(&h.0);
            true
        }
        None => {
            tx.inputs[index].pubkey = old_key;
            tx.inputs[index].sighash = old_mode;
            false
        }
    }
}

/// Signs every input of `tx` with `ALL` using the key for each input (`keys[i]`).
pub fn sign_all(tx: &mut Transaction, keys: &[&SecretKey], chain: &ChainId) {
    for (i, key) in keys.iter().enumerate() {
        if let Some(input) = tx.inputs.get_mut(i) {
            input.pubkey = key.public();
            input.sighash = SighashMode::ALL_BYTE;
        }
    }
    let body = all_body(tx);
    let h = sighash_all_from_body(&body, chain);
    for (i, key) in keys.iter().enumerate() {
        if let Some(input) = tx.inputs.get_mut(i) {
            input.signature = key.sign(&h.0);
        }
    }
}

/// Whether input `index` carries a valid signature for its declared mode.
pub fn verify_input(
    tx: &Transaction,
    index: usize,
    chain: &ChainId,
    all_body_cache: &mut Option<Vec<u8>>,
) -> bool {
    let Some(input) = tx.inputs.get(index) else {
        return false;
    };
    let Some(mode) = SighashMode::from_byte(input.sighash) else {
        return false;
    };
    let h = match mode {
        SighashMode::All => {
            let body = all_body_cache.get_or_insert_with(|| all_body(tx));
            sighash_all_from_body(body, chain)
        }
        SighashMode::SingleAnyoneCanPay => match sighash(tx, index, mode, chain) {
            Some(h) => h,
            None => return false,
        },
    };
    input.pubkey.verify(&h.0, &input.signature)
}
