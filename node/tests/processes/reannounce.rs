//! A transaction accepted while the only miner is away is not lost: its node gossips it again
//! (every `REANNOUNCE_AFTER` while it stays unconfirmed), so the miner, once back, confirms it.
//! Before re-announcing, such a transaction stayed in the joiner's mempool forever.

use crate::harness::{Node, grant_ccr, issue_to_self, wait_balance, wait_synced};
use serde_json::json;
use std::time::Duration;

/// An admin (the only miner) and a joined node granted connect,send,receive holding 100 gold;
/// returns them and the joiner's address.
fn admin_and_funded_joiner(chain: &str) -> (Node, Node, String) {
    let admin = Node::create("admin", chain);
    let n1 = Node::join("node1", &admin.seed());
    let a1 = n1.grant_line_address();
    let g = grant_ccr(&admin, &a1);
    admin.wait_confirmed(&g, Duration::from_secs(15));
    issue_to_self(&admin, "gold", 1_000);
    let pay = admin.rpc("sendasset", json!([a1, "gold", 100]));
    admin.wait_confirmed(pay.as_str().expect("txid"), Duration::from_secs(15));
    wait_synced(&n1, &admin, Duration::from_secs(20));
    wait_balance(&n1, &a1, "gold", 100.0, Duration::from_secs(10));
    (admin, n1, a1)
}

#[test]
fn a_transaction_sent_while_the_miner_is_down_is_confirmed_after_it_returns() {
    let (mut admin, n1, a1) = admin_and_funded_joiner("relaychain");

    // The miner goes away; node1 accepts a payment it cannot relay to anyone.
    let back = admin.address();
    admin.kill();
    let txid = n1
        .rpc("sendasset", json!([back, "gold", 7]))
        .as_str()
        .expect("sendasset returns a txid")
        .to_string();
    assert_eq!(
        n1.confirmations(&txid),
        Some(0),
        "node1 holds it unconfirmed"
    );

    // The miner returns with an empty mempool; only a re-announcement can bring it the payment.
    admin.restart();
    admin.wait_confirmed(&txid, Duration::from_secs(30));
    n1.wait_confirmed(&txid, Duration::from_secs(10));
    wait_balance(&n1, &a1, "gold", 93.0, Duration::from_secs(10));
}

/// A coin prepared with `preparelockunspent` stays locked while its transaction waits for a
/// block, even when blocks without it are committed meanwhile (the lock used to be dropped as
/// "spent" because the coin was not in the committed state yet).
#[test]
fn a_prepared_coin_stays_locked_while_blocks_pass_it_by() {
    let (mut admin, n1, a1) = admin_and_funded_joiner("lockchain");

    // The miner goes away; node1 prepares an offer's coin that no block can confirm yet.
    admin.kill();
    let prepared = n1.rpc("preparelockunspent", json!([{"gold": 5}]));
    let (txid, vout) = (
        prepared["txid"].as_str().expect("txid").to_string(),
        prepared["vout"].as_u64().expect("vout"),
    );
    let locked = |n: &Node| {
        n.rpc("listlockunspent", json!([]))
            .as_array()
            .expect("listlockunspent returns a list")
            .iter()
            .any(|l| l["txid"] == txid.as_str() && l["vout"] == vout)
    };
    assert!(locked(&n1), "the prepared coin is locked");

    // Back, the miner at once confirms something else: node1 commits blocks without the
    // prepared transaction, which only arrives later (re-announced).
    admin.restart();
    let other = admin.rpc("sendasset", json!([a1, "gold", 1]));
    let other = other.as_str().expect("txid").to_string();
    n1.wait_confirmed(&other, Duration::from_secs(30));
    admin.wait_confirmed(&txid, Duration::from_secs(30));
    n1.wait_confirmed(&txid, Duration::from_secs(10));
    assert!(
        locked(&n1),
        "the prepared coin lost its lock while its transaction waited"
    );
}
