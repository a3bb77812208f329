//! A graceful `stop` and a restart keep the chain, the wallet and the balances.

use crate::harness::{Node, issue_to_self, wait_balance, wait_until};
use serde_json::{Value, json};
use std::time::Duration;

#[test]
fn stop_and_restart_keeps_chain_wallet_and_balances() {
    let mut admin = Node::create("admin", "restartchain");
    let me = admin.address();
    issue_to_self(&admin, "gold", 500);
    let second = admin.rpc("getnewaddress", json!([]));
    let second = second
        .as_str()
        .expect("getnewaddress returns an address")
        .to_string();
    let g = admin.rpc("grant", json!([second, "send,receive"]));
    admin.wait_confirmed(g.as_str().unwrap(), Duration::from_secs(15));
    let pay = admin.rpc("sendasset", json!([second, "gold", 120]));
    admin.wait_confirmed(pay.as_str().unwrap(), Duration::from_secs(15));
    wait_balance(&admin, &second, "gold", 120.0, Duration::from_secs(5));

    let addresses = admin.addresses();
    assert_eq!(addresses.len(), 2);
    let (h, hash) = admin.tip();
    let balances = |n: &Node| -> Vec<Value> {
        [&me, &second]
            .iter()
            .map(|a| n.rpc("getaddressbalances", json!([a])))
            .collect()
    };
    let before = balances(&admin);
    let assets = admin.rpc("listassets", json!(["gold"]));

    admin.stop();
    admin.restart();

    assert_eq!(
        admin.addresses(),
        addresses,
        "the wallet changed across the restart"
    );
    let h_after = admin.height();
    assert!(h_after >= h, "the chain went back from {h} to {h_after}");
    assert_eq!(
        admin.block_hash(h),
        hash,
        "the block at {h} changed across the restart"
    );
    assert_eq!(
        balances(&admin),
        before,
        "balances changed across the restart"
    );
    assert_eq!(admin.rpc("listassets", json!(["gold"])), assets);
    assert_eq!(admin.balance(&me, "gold"), 380.0);

    // The chain goes on and both keys still sign: the second address pays some back.
    wait_until(
        "a new block after the restart",
        Duration::from_secs(15),
        || {
            let now = admin.height();
            (now > h_after).then_some(()).ok_or(format!("height {now}"))
        },
    );
    let back = admin.rpc("sendassetfrom", json!([second, me, "gold", 20]));
    admin.wait_confirmed(back.as_str().unwrap(), Duration::from_secs(15));
    wait_balance(&admin, &me, "gold", 400.0, Duration::from_secs(5));
    wait_balance(&admin, &second, "gold", 100.0, Duration::from_secs(5));
    let grant = admin.rpc("grant", json!([second, "issue"]));
    admin.wait_confirmed(grant.as_str().unwrap(), Duration::from_secs(15));
}
