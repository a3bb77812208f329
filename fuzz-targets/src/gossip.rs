//! The two gossip topics as the node receives them: a batch of transactions (the counterpart of
//! `chain::encode_tx_batch`) and a block, each from a permitted peer, judged by the node.

use wattle_ledger::codec;
use wattle_ledger::{Block, Transaction};
use wattle_node::chain::{Action, encode_tx_batch};
use wattle_node::network::{MessageId, NetEvent, Verdict};

use crate::fixture::with_fixture;

/// The verdicts the node reported on `msg_id`.
fn reports(outbox: &[Action], msg_id: &MessageId) -> Vec<Verdict> {
    outbox
        .iter()
        .filter_map(|a| match a {
            Action::Report(id, _, v) if id == msg_id => Some(*v),
            _ => None,
        })
        .collect()
}

/// `gossip_tx_batch`: exactly one verdict per message; Reject for bytes that do not decode or
/// an empty batch, never Reject for a batch whose transactions all pass the stateless rules,
/// and Accept only if a transaction entered the pool.
pub fn gossip_tx_batch(data: &[u8]) {
    with_fixture(|fx| {
        let s = &mut fx.state;
        let limit = s.chain.params.maximum_block_size as usize;
        let decoded = codec::decode_with_limit::<Vec<Transaction>>(data, limit);
        crate::ledger::check_strict(data, &decoded);
        if let Ok(txs) = &decoded {
            assert_eq!(encode_tx_batch(txs), data);
        }
        let msg_id = MessageId::new(b"fuzz-tx");
        s.on_net_event(NetEvent::Tx {
            peer: fx.peer,
            msg_id: msg_id.clone(),
            bytes: data.to_vec(),
        });
        let verdicts = reports(&s.outbox, &msg_id);
        assert_eq!(verdicts.len(), 1, "one verdict per message: {verdicts:?}");
        let verdict = verdicts[0];
        match &decoded {
            Err(_) => assert_eq!(verdict, Verdict::Reject),
            Ok(txs) if txs.is_empty() => assert_eq!(verdict, Verdict::Reject),
            Ok(txs) => {
                let all_valid = txs.iter().all(|tx| {
                    wattle_ledger::validate::check_stateless(tx, &s.chain).is_ok()
                        && wattle_ledger::validate::check_signatures(tx, &s.chain).is_ok()
                });
                if all_valid {
                    assert_ne!(
                        verdict,
                        Verdict::Reject,
                        "a stateless-valid batch was rejected"
                    );
                }
                if verdict == Verdict::Accept {
                    assert!(!s.mempool.is_empty());
                }
            }
        }
    })
}

/// `gossip_block`: at most one verdict (a block held as an orphan waits for its parent),
/// Reject for bytes that do not decode, and Accept only for a correctly signed block.
pub fn gossip_block(data: &[u8]) {
    with_fixture(|fx| {
        let s = &mut fx.state;
        let limit = s.chain.params.maximum_block_size as usize;
        let decoded = codec::decode_with_limit::<Block>(data, limit);
        crate::ledger::check_strict(data, &decoded);
        let msg_id = MessageId::new(b"fuzz-block");
        s.on_net_event(NetEvent::Block {
            peer: fx.peer,
            msg_id: msg_id.clone(),
            bytes: data.to_vec(),
        });
        let verdicts = reports(&s.outbox, &msg_id);
        assert!(verdicts.len() <= 1, "{verdicts:?}");
        match &decoded {
            Err(_) => assert_eq!(verdicts, [Verdict::Reject]),
            Ok(block) => {
                if verdicts == [Verdict::Accept] {
                    assert!(block.header.signature_is_valid(&s.chain.id));
                    assert_eq!(block.compute_merkle_root(), block.header.merkle_root);
                }
            }
        }
    })
}
