//! A transaction accepted while the only miner is away is not lost: its node gossips it again
//! (every `REANNOUNCE_AFTER` while it stays unconfirmed), so the miner, once back, confirms it.
//! Before re-announcing, such a transaction stayed in the joiner's mempool forever.

use crate::harness::{Node, grant_ccr, issue_to_self, wait_balance, wait_synced};
use serde_json::json;
use std::time::Duration;

#[test]
fn a_transaction_sent_while_the_miner_is_down_is_confirmed_after_it_returns() {
    let mut admin = Node::create("admin", "relaychain");
    let n1 = Node::join("node1", &admin.seed());
    let a1 = n1.grant_line_address();
    let g = grant_ccr(&admin, &a1);
    admin.wait_confirmed(&g, Duration::from_secs(15));
    issue_to_self(&admin, "gold", 1_000);
    let pay = admin.rpc("sendasset", json!([a1, "gold", 100]));
    admin.wait_confirmed(pay.as_str().expect("txid"), Duration::from_secs(15));
    wait_synced(&n1, &admin, Duration::from_secs(20));
    wait_balance(&n1, &a1, "gold", 100.0, Duration::from_secs(10));

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
