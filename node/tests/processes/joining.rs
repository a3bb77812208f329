//! Joining through the seed address, the connect permission, and asset transfers between three
//! real nodes.

use crate::harness::{
    BLOCK_TIME_SECS, Node, grant_ccr, issue_to_self, wait_balance, wait_synced, wait_until,
};
use serde_json::json;
use std::time::{Duration, Instant};
use wattle_node::rpc::client::CallError;

#[test]
fn nodes_join_through_the_seed_and_transfers_confirm_everywhere() {
    let admin = Node::create("admin", "joinchain");
    let seed = admin.seed();
    let n1 = Node::join("node1", &seed);
    let n2 = Node::join("node2", &seed);

    // Each joiner printed the grant line with its own (wallet) address.
    let a1 = n1.grant_line_address();
    let a2 = n2.grant_line_address();
    assert_ne!(a1, a2);
    for (node, addr) in [(&n1, &a1), (&n2, &a2)] {
        let listed = node.addresses();
        assert!(
            listed.contains(addr),
            "{}: listaddresses {listed:?} lacks the printed {addr}",
            node.label
        );
        assert_eq!(&node.address(), addr, "the identity is the first address");
    }
    let admin_addr = admin.address();

    // Before the grant: no blocks reach them while the admin's chain grows, and what they submit
    // is refused.
    let start_height = admin.height();
    let watch = Duration::from_secs(2 * BLOCK_TIME_SECS + 1);
    let t0 = Instant::now();
    while t0.elapsed() < watch {
        for node in [&n1, &n2] {
            assert_eq!(
                node.height(),
                0,
                "{} received a block before its grant",
                node.label
            );
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    let grown = admin.height();
    assert!(
        grown > start_height,
        "the admin's chain did not grow while we watched ({start_height} -> {grown})"
    );
    for (node, addr) in [(&n1, &a1), (&n2, &a2)] {
        match node.try_rpc("issue", json!([addr, "sneaky", 10, 1])) {
            Err(CallError::Rpc { .. }) => {}
            other => panic!(
                "{}: issue before the grant was not refused: {other:?}",
                node.label
            ),
        }
        match node.try_rpc("grant", json!([addr, "connect"])) {
            Err(CallError::Rpc { .. }) => {}
            other => panic!(
                "{}: a self-grant before the grant was not refused: {other:?}",
                node.label
            ),
        }
        assert_eq!(node.height(), 0);
    }
    assert_eq!(
        admin.rpc("getmempoolinfo", json!([]))["size"],
        json!(0),
        "something from the joiners reached the admin's mempool"
    );
    // The admin sees them (they may fetch the parameters) but not as permitted peers.
    for peer in admin.rpc("getpeerinfo", json!([])).as_array().unwrap() {
        if peer["handshake"] == a1.as_str() || peer["handshake"] == a2.as_str() {
            assert_eq!(peer["permitted"], json!(false), "{peer}");
        }
    }

    // The grant: both sync to the admin's chain.
    let g1 = grant_ccr(&admin, &a1);
    let g2 = grant_ccr(&admin, &a2);
    admin.wait_confirmed(&g1, Duration::from_secs(15));
    admin.wait_confirmed(&g2, Duration::from_secs(15));
    for node in [&n1, &n2] {
        wait_synced(node, &admin, Duration::from_secs(20));
        node.wait_confirmed(&g1, Duration::from_secs(10));
        node.wait_confirmed(&g2, Duration::from_secs(10));
    }

    // An asset issued by the admin and sent to node 1 is confirmed on all three.
    issue_to_self(&admin, "gold", 1000);
    let send = admin.rpc("sendasset", json!([a1, "gold", 100]));
    let send = send.as_str().expect("txid").to_string();
    for node in [&admin, &n1, &n2] {
        node.wait_confirmed(&send, Duration::from_secs(20));
        wait_balance(node, &a1, "gold", 100.0, Duration::from_secs(10));
        wait_balance(node, &admin_addr, "gold", 900.0, Duration::from_secs(10));
    }

    // Node 1 sends part of it to node 2, submitted on node 1: confirmed on all three.
    let onward = n1.rpc("sendasset", json!([a2, "gold", 30]));
    let onward = onward.as_str().expect("txid").to_string();
    for node in [&n1, &admin, &n2] {
        node.wait_confirmed(&onward, Duration::from_secs(20));
        wait_balance(node, &a1, "gold", 70.0, Duration::from_secs(10));
        wait_balance(node, &a2, "gold", 30.0, Duration::from_secs(10));
        wait_balance(node, &admin_addr, "gold", 900.0, Duration::from_secs(10));
    }
    // All three are on one chain.
    let (h, hash) = wait_synced(&n1, &admin, Duration::from_secs(10));
    wait_until(
        "node2 to have the same block",
        Duration::from_secs(10),
        || {
            if n2.height() >= h && n2.block_hash(h) == hash {
                Ok(())
            } else {
                Err(format!("node2 at {}", n2.height()))
            }
        },
    );
}
