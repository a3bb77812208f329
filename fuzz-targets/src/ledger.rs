//! Transaction and block decoding (the ledger codec), and the rules that judge what decodes.

use std::sync::OnceLock;

use wattle_ledger::apply::{NoCache, SignatureCache, apply_block};
use wattle_ledger::codec::{self, DecodeError};
use wattle_ledger::sighash::{self, SighashMode};
use wattle_ledger::testkit::{TestChain, key};
use wattle_ledger::validate::{self, TxContext};
use wattle_ledger::{Block, Transaction};

use crate::fixture::{ChainInfo, build_chain};

/// A signature cache that holds every transaction.
struct AllVerified;

impl SignatureCache for AllVerified {
    fn contains(&self, _: &wattle_ledger::Txid) -> bool {
        true
    }
}

/// The fixture chain in memory (no store): for rules that need state.
pub fn memory_chain() -> &'static (TestChain, ChainInfo) {
    static CHAIN: OnceLock<(TestChain, ChainInfo)> = OnceLock::new();
    CHAIN.get_or_init(|| {
        let (tc, _, info) = build_chain();
        (tc, info)
    })
}

/// Strict decoding: what decodes re-encodes to the same bytes, and a limit below the length
/// refuses.
pub fn check_strict<T: bincode::Decode<()> + bincode::Encode>(
    bytes: &[u8],
    decoded: &Result<T, DecodeError>,
) {
    if let Ok(value) = decoded {
        assert_eq!(codec::encode(value), bytes, "decoding is not canonical");
        assert_eq!(codec::encoded_len(value), bytes.len());
        if !bytes.is_empty() {
            assert!(matches!(
                codec::decode_with_limit::<T>(bytes, bytes.len() - 1),
                Err(DecodeError::TooLarge { .. })
            ));
        }
    }
}

/// Every rule a decoded transaction meets, none of which may panic.
pub fn judge_tx(tc: &TestChain, tx: &Transaction) {
    let chain = &tc.chain;
    let _ = tx.txid();
    let _ = tx.to_hex();
    let stateless = validate::check_stateless(tx, chain);
    if let Err(e) = &stateless {
        assert!(e.is_stateless(), "{e:?} from check_stateless");
    }
    // Signatures are checked only for transactions that pass T1–T8 (as the node does): each
    // check costs an ed25519 verification.
    if stateless.is_ok() {
        let _ = validate::check_signatures(tx, chain);
    }
    for i in 0..tx.inputs.len().min(4) {
        for mode in [SighashMode::All, SighashMode::SingleAnyoneCanPay] {
            let _ = sighash::sighash(tx, i, mode, &chain.id);
        }
    }
    let ctx = TxContext {
        chain,
        height: tc.next_height(),
        offset: 0,
        signatures_checked: true,
    };
    let _ = validate::check_against_state(&tc.state, tx, &ctx);
    let _ = validate::validate_tx(&tc.state, tx, &ctx);
    let _ = wattle_ledger::exchange::decode_exchange(&tc.state, tx, chain, ctx.height, false);
}

/// `tx_decode`: a transaction as `sendrawtransaction` and the exchange commands read it (the
/// canonical encoding; hex on the wire).
pub fn tx_decode(data: &[u8]) {
    let decoded = codec::decode::<Transaction>(data);
    check_strict(data, &decoded);
    let from_hex = codec::decode_hex::<Transaction>(&hex::encode(data));
    assert_eq!(from_hex.is_ok(), decoded.is_ok());
    if let Ok(tx) = decoded {
        assert_eq!(from_hex.ok().as_ref(), Some(&tx));
        judge_tx(&memory_chain().0, &tx);
    }
}

/// `block_decode`: a block as gossip and sync deliver it (`decode_with_limit` at the chain's
/// maximum block size), then judged by `apply_block` as sent and re-signed by the admin on the
/// fixture tip (so that the transaction rules are reached).
pub fn block_decode(data: &[u8]) {
    let (tc, _) = memory_chain();
    let limit = tc.chain.params.maximum_block_size as usize;
    let decoded = codec::decode_with_limit::<Block>(data, limit);
    check_strict(data, &decoded);
    let Ok(block) = decoded else {
        return;
    };
    let id = block.header.id(&tc.chain.id);
    let _ = block.header.signature_is_valid(&tc.chain.id);
    let merkle = block.compute_merkle_root();
    let offsets = block.tx_offsets();
    assert_eq!(offsets.len(), block.txs.len());
    if let Some(first) = offsets.first() {
        assert!((*first as usize) < data.len());
    }
    let verdict = apply_block(&tc.state, &block, &tc.chain, &NoCache);
    if verdict.is_ok() {
        assert_eq!(merkle, block.header.merkle_root);
        assert!(block.header.signature_is_valid(&tc.chain.id));
    }
    let _ = id;
    // The same transactions in a valid header on the tip, their signatures taken as checked
    // (as a node's signature cache does), so that every block and state rule is reached.
    let resigned = tc.block_by(&key(0), block.txs.clone());
    if let Ok(changes) = apply_block(&tc.state, &resigned, &tc.chain, &AllVerified) {
        // Applying and undoing leaves the state as it was.
        let mut state = tc.state.clone();
        state.apply(&changes).expect("changes apply");
        state.apply(&changes.inverse()).expect("undo applies");
        assert_eq!(state, tc.state);
    }
}
