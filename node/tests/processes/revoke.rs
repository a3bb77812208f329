//! Revoking `connect` disconnects a node: no peer lists it as permitted any more and it receives
//! no new blocks, while a node that keeps `connect` follows the chain.

use crate::harness::{Node, grant_ccr, wait_synced, wait_until};
use serde_json::json;
use std::time::{Duration, Instant};

/// Whether `node`'s `getpeerinfo` lists `address` as a permitted peer.
fn permits(node: &Node, address: &str) -> bool {
    node.rpc("getpeerinfo", json!([]))
        .as_array()
        .expect("getpeerinfo returns an array")
        .iter()
        .any(|p| p["handshake"] == address && p["permitted"] == json!(true))
}

#[test]
fn revoking_connect_disconnects_the_node() {
    let admin = Node::create("admin", "revokechain");
    let seed = admin.seed();
    let n1 = Node::join("node1", &seed);
    let n2 = Node::join("node2", &seed);
    let (a1, a2) = (n1.grant_line_address(), n2.grant_line_address());
    let g1 = grant_ccr(&admin, &a1);
    let g2 = grant_ccr(&admin, &a2);
    admin.wait_confirmed(&g1, Duration::from_secs(15));
    admin.wait_confirmed(&g2, Duration::from_secs(15));
    wait_synced(&n1, &admin, Duration::from_secs(20));
    wait_synced(&n2, &admin, Duration::from_secs(20));
    wait_until(
        "the admin to list node2 as a permitted peer",
        Duration::from_secs(10),
        || {
            permits(&admin, &a2)
                .then_some(())
                .ok_or_else(|| "not yet".into())
        },
    );

    let revoke = admin.rpc("revoke", json!([a2, "connect"]));
    let revoke = revoke.as_str().expect("revoke returns a txid").to_string();
    admin.wait_confirmed(&revoke, Duration::from_secs(15));
    let perms = admin.rpc("listpermissions", json!(["connect", a2]));
    assert_eq!(perms, json!([]), "node2 still holds connect: {perms}");

    // Disconnected within a few seconds, on the admin and on node1 alike.
    wait_until(
        "no node to list node2 as a permitted peer",
        Duration::from_secs(5),
        || {
            let holders: Vec<&str> = [&admin, &n1]
                .into_iter()
                .filter(|n| permits(n, &a2))
                .map(|n| n.label.as_str())
                .collect();
            if holders.is_empty() {
                Ok(())
            } else {
                Err(format!("still permitted by {holders:?}"))
            }
        },
    );

    // It receives no new block while the chain grows by two blocks (watched for at most 15 s,
    // then one more second for a block in flight); node1 keeps following it.
    let frozen = n2.height();
    let admin_start = admin.height();
    let t0 = Instant::now();
    let mut grown_at: Option<Instant> = None;
    while grown_at.is_none_or(|t| t.elapsed() < Duration::from_secs(1)) {
        assert_eq!(
            n2.height(),
            frozen,
            "node2 received a block after its revoke"
        );
        assert!(!permits(&admin, &a2), "the admin let node2 back in");
        let now = admin.height();
        if grown_at.is_none() && now >= admin_start + 2 {
            grown_at = Some(Instant::now());
        }
        assert!(
            t0.elapsed() < Duration::from_secs(15),
            "the chain did not grow by two blocks in 15 s ({admin_start} -> {now})"
        );
        std::thread::sleep(Duration::from_millis(250));
    }
    wait_synced(&n1, &admin, Duration::from_secs(10));
    assert_eq!(n2.height(), frozen);
}
