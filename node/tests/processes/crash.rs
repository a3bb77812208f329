//! SIGKILL in the middle of a stream of transactions: the killed node restarts with plain
//! `wattled CHAIN -datadir=DIR`, opens a consistent store and catches up; the admin (the only
//! miner) killed the same way keeps its chain.

use crate::harness::{Node, grant_ccr, issue_to_self, wait_synced, wait_until};
use serde_json::json;
use std::collections::BTreeMap;
use std::time::Duration;

/// Transactions per stream, and after how many the victim is killed.
const STREAM: u64 = 30;
const KILL_AFTER: u64 = 15;
/// Pause between submissions: several transactions per block (block-interval is 100 ms), the
/// stream spans several blocks.
const PACE: Duration = Duration::from_millis(40);

/// Sends `qty` gold from the admin to `to`; returns the txid.
fn send(admin: &Node, to: &str, qty: u64) -> String {
    admin
        .rpc("sendasset", json!([to, "gold", qty]))
        .as_str()
        .expect("sendasset returns a txid")
        .to_string()
}

/// Every block hash from 0 to `height` on `node`.
fn hashes(node: &Node, height: u64) -> Vec<String> {
    (0..=height).map(|h| node.block_hash(h)).collect()
}

/// Waits until both nodes agree on the tip and on `address`'s gold balance; returns it.
fn wait_agree(a: &Node, b: &Node, address: &str) -> f64 {
    wait_until(
        &format!("{} and {} to agree", a.label, b.label),
        Duration::from_secs(20),
        || {
            let (ta, tb) = (a.tip(), b.tip());
            let (ba, bb) = (a.balance(address, "gold"), b.balance(address, "gold"));
            if ta == tb && ba == bb {
                Ok(ba)
            } else {
                Err(format!(
                    "{}: tip {ta:?} balance {ba}; {}: tip {tb:?} balance {bb}",
                    a.label, b.label
                ))
            }
        },
    )
}

#[test]
fn sigkill_mid_stream_then_restart_catches_up_and_keeps_the_chain() {
    let mut admin = Node::create("admin", "crashchain");
    let mut n1 = Node::join("node1", &admin.seed());
    let a1 = n1.grant_line_address();
    let g = grant_ccr(&admin, &a1);
    admin.wait_confirmed(&g, Duration::from_secs(15));
    wait_synced(&n1, &admin, Duration::from_secs(20));
    issue_to_self(&admin, "gold", 1_000_000);

    // Part 1: node 1 is killed in the middle of a stream of transactions paying it.
    let mut sent: BTreeMap<String, u64> = BTreeMap::new();
    let mut n1_height_at_kill = 0;
    for i in 1..=STREAM {
        sent.insert(send(&admin, &a1, i), i);
        if i == KILL_AFTER {
            n1_height_at_kill = n1.height();
            n1.kill();
        }
        std::thread::sleep(PACE);
    }
    let expected: u64 = (1..=STREAM).sum();
    for txid in sent.keys() {
        admin.wait_confirmed(txid, Duration::from_secs(20));
    }
    assert_eq!(admin.balance(&a1, "gold"), expected as f64);
    let admin_height = admin.height();
    assert!(
        admin_height > n1_height_at_kill,
        "the admin committed no block after node1 was killed"
    );

    // Restarted without the seed argument: it remembers the seed, opens its store and catches
    // up to exactly the admin's chain.
    n1.restart();
    assert!(
        !n1.stdout_lines()
            .iter()
            .any(|l| l.contains("Retrieving blockchain parameters")),
        "the restart joined again instead of opening its store"
    );
    let (h, _) = wait_synced(&n1, &admin, Duration::from_secs(30));
    assert!(h >= admin_height);
    assert_eq!(
        hashes(&n1, h),
        hashes(&admin, h),
        "node1's chain differs from the admin's"
    );
    let balance = wait_agree(&n1, &admin, &a1);
    assert_eq!(
        balance, expected as f64,
        "node1's balance after the restart"
    );
    for txid in sent.keys() {
        n1.wait_confirmed(txid, Duration::from_secs(5));
    }

    // Part 2: the admin, the only miner (and the sender), is killed in the middle of a stream.
    for i in 1..=KILL_AFTER {
        sent.insert(send(&admin, &a1, 1000 + i), 1000 + i);
        std::thread::sleep(PACE);
    }
    // What the admin reports just before it dies: its tip and the confirmed payments.
    let tip_before_kill = admin.tip();
    let confirmed_before_kill: Vec<String> = sent
        .keys()
        .filter(|t| admin.confirmations(t).is_some_and(|c| c >= 1))
        .cloned()
        .collect();
    // A burst right before the kill, so that the miner dies with a non-empty mempool, likely
    // while it writes a block.
    for j in 1..=5 {
        sent.insert(send(&admin, &a1, 2000 + j), 2000 + j);
    }
    admin.kill();
    assert!(
        confirmed_before_kill.len() as u64 > STREAM,
        "the admin confirmed none of the second stream before the kill"
    );

    admin.restart();
    let (h_before, hash_before) = tip_before_kill;
    eprintln!(
        "node1 killed at height {n1_height_at_kill}, admin then at {admin_height}; admin killed at \
         height {h_before} with {} of {} payments confirmed",
        confirmed_before_kill.len(),
        sent.len()
    );
    let h_after = admin.height();
    assert!(
        h_after >= h_before,
        "the admin's chain went back from {h_before} to {h_after} after SIGKILL"
    );
    assert_eq!(
        admin.block_hash(h_before),
        hash_before,
        "the admin's block at {h_before} changed across the SIGKILL"
    );
    for txid in &confirmed_before_kill {
        match admin.confirmations(txid) {
            Some(c) if c >= 1 => {}
            other => {
                panic!("{txid} was confirmed before the SIGKILL, now: confirmations {other:?}")
            }
        }
    }
    // The chain continues from there: the admin produces again and node1 follows it.
    wait_until(
        "the admin to produce after its restart",
        Duration::from_secs(20),
        || {
            let h = admin.height();
            if h > h_after.max(h_before) {
                Ok(())
            } else {
                Err(format!("height {h}"))
            }
        },
    );
    let (h, _) = wait_synced(&n1, &admin, Duration::from_secs(30));
    assert_eq!(hashes(&n1, h), hashes(&admin, h));
    // The admin's wallet still works after the crash: a new payment is confirmed on both.
    let last = send(&admin, &a1, 7);
    sent.insert(last.clone(), 7);
    admin.wait_confirmed(&last, Duration::from_secs(20));
    n1.wait_confirmed(&last, Duration::from_secs(20));
    // Once nothing is pending, every payment either confirmed on both nodes or never happened:
    // both report the sum of the confirmed ones.
    wait_until("both mempools to empty", Duration::from_secs(20), || {
        let sizes = [&admin, &n1].map(|n| n.rpc("getmempoolinfo", json!([]))["size"].clone());
        if sizes.iter().all(|s| *s == json!(0)) {
            Ok(())
        } else {
            Err(format!("mempool sizes {sizes:?}"))
        }
    });
    let balance = wait_agree(&n1, &admin, &a1);
    let confirmed_sum: u64 = sent
        .iter()
        .filter(|(t, _)| {
            let (ca, cn) = (admin.confirmations(t), n1.confirmations(t));
            assert_eq!(
                ca.is_some_and(|c| c >= 1),
                cn.is_some_and(|c| c >= 1),
                "{t}: confirmations {ca:?} on the admin, {cn:?} on node1"
            );
            ca.is_some_and(|c| c >= 1)
        })
        .map(|(_, q)| q)
        .sum();
    assert_eq!(balance, confirmed_sum as f64);
}
