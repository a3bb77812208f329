//! "Every failed command leaves balances, locks, assets and permissions as they were" (issue 4):
//! a set of failing commands, with a snapshot of everything a wallet user can see before and
//! after, a block interval of waiting, and a check that no block since holds a transaction.

use crate::harness::{BLOCK_TIME_SECS, Endpoint, Node, keys};
use serde_json::{Value, json};
use std::time::Duration;

fn s(v: &Value) -> String {
    v.as_str()
        .unwrap_or_else(|| panic!("expected a string, got {v}"))
        .to_string()
}

const NOT_IN_CHAIN_TXID: &str = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";

/// Everything a failed command could have changed, as the wallet user sees it. Confirmation
/// counts grow with every block and are left out.
fn snapshot(ep: &Endpoint) -> Vec<(&'static str, Value)> {
    let mut unspent = ep.ok("listunspent", json!([0]));
    for u in unspent.as_array_mut().unwrap() {
        u.as_object_mut().unwrap().remove("confirmations");
    }
    vec![
        (
            "gettotalbalances 0 (unlocked)",
            ep.ok("gettotalbalances", json!([0])),
        ),
        (
            "gettotalbalances 0 includeLocked",
            ep.ok("gettotalbalances", json!([0, false, true])),
        ),
        (
            "getmultibalances minconf 0",
            ep.ok("getmultibalances", json!(["*", "*", 0])),
        ),
        (
            "getmultibalances includeLocked",
            ep.ok("getmultibalances", json!(["*", "*", 0, false, true])),
        ),
        ("listlockunspent", ep.ok("listlockunspent", json!([]))),
        ("listunspent 0", unspent),
        (
            "listassets verbose",
            ep.ok("listassets", json!(["*", true])),
        ),
        (
            "listpermissions verbose",
            ep.ok("listpermissions", json!(["*", "*", true])),
        ),
        ("listaddresses", ep.ok("listaddresses", json!([]))),
        ("getmempoolinfo", ep.ok("getmempoolinfo", json!([]))),
    ]
}

fn new_address(ep: &Endpoint, perms: &str) -> String {
    let addr = s(&ep.ok("getnewaddress", json!([])));
    if !perms.is_empty() {
        ep.txid("grant", json!([addr, perms]));
    }
    addr
}

#[test]
fn failed_commands_leave_balances_locks_assets_and_permissions_as_they_were() {
    let node = Node::create("unchanged");
    let a = node.address();
    let b = new_address(&node, "send,receive");
    let c = new_address(&node, "receive");
    let d = new_address(&node, "");
    node.txid(
        "issue",
        json!([a, {"name": "gold", "open": true}, 1000, 0.01]),
    );
    node.txid("issue", json!([a, "lead", 10]));
    node.txid("issuefrom", json!([a, b, "silver", 100]));
    node.wait_mempool_empty();
    node.txid("sendasset", json!([c, "gold", 3]));
    // An open offer with its prepared output locked, and the counter-side's prepared output.
    let p = node.ok("preparelockunspent", json!([{"gold": 10}]));
    let offer = s(&node.ok(
        "createrawexchange",
        json!([p["txid"], p["vout"], {"silver": 5}]),
    ));
    let q = node.ok("preparelockunspentfrom", json!([b, {"silver": 5}]));
    node.wait_mempool_empty();
    // Every other coin of B locked too: B has silver, all of it locked.
    let b_coins: Vec<Value> = node
        .ok("listunspent", json!([0, 9999999, [b]]))
        .as_array()
        .unwrap()
        .iter()
        .map(|u| json!({"txid": u["txid"], "vout": u["vout"]}))
        .collect();
    assert!(!b_coins.is_empty());
    node.ok("lockunspent", json!([false, b_coins]));
    assert_eq!(node.ok("getaddressbalances", json!([b])), json!([]));

    let before = snapshot(&node);
    let h0 = node.height();

    let big_fields = json!({"blob": "x".repeat(10_000)});
    let failing: Vec<(&str, Value, i64)> = vec![
        // Insufficient funds, also when the coins are there but locked.
        ("sendasset", json!([a, "gold", 1_000_000]), -6),
        ("sendassettoaddress", json!([c, "gold", 1_000]), -6),
        ("sendassetfrom", json!([a, c, "gold", 1_000_000]), -6),
        ("sendassetfrom", json!([b, a, "silver", 1]), -6),
        ("preparelockunspent", json!([{"gold": 1_000_000}]), -6),
        ("preparelockunspentfrom", json!([a, {"gold": 988}]), -6),
        ("preparelockunspentfrom", json!([b, {"silver": 1}]), -6),
        // Bad addresses, also one bad entry in a list of good ones.
        ("sendasset", json!(["bad", "gold", 1]), -5),
        ("grant", json!(["bad", "connect"]), -5),
        ("grant", json!([format!("{c},{d},bad"), "send"]), -5),
        ("issue", json!(["bad", "tin", 1]), -5),
        ("issuefrom", json!([a, "bad", "tin", 1]), -5),
        // Bad permissions and parameters.
        ("grant", json!([c, "send,fly"]), -8),
        ("grant", json!([format!("{c},{c}"), "send"]), -8),
        ("revoke", json!([c, "fly"]), -8),
        ("issue", json!([a, "tin", 1, 0.3]), -8),
        ("issue", json!([a, "tin", -1]), -8),
        ("issue", json!([a, "tin", 1, 1, 0, big_fields]), -8),
        ("sendasset", json!([c, "gold", -1]), -8),
        // Missing permissions.
        ("sendassetfrom", json!([c, a, "gold", 1]), -704),
        ("sendasset", json!([d, "gold", 1]), -704),
        ("issue", json!([d, "tin", 1]), -704),
        ("issuefrom", json!([c, a, "tin", 1]), -704),
        ("issuemorefrom", json!([c, a, "gold", 1]), -704),
        ("grantfrom", json!([c, d, "connect"]), -704),
        ("revokefrom", json!([c, a, "admin"]), -704),
        ("preparelockunspentfrom", json!([c, {"gold": 1}]), -704),
        // Names and assets.
        ("issue", json!([a, "gold", 5]), -705),
        (
            "issue",
            json!([a, {"name": "SILVER", "open": true}, 5]),
            -705,
        ),
        ("issuemore", json!([a, "lead", 5]), -701),
        ("sendasset", json!([a, "nope", 1]), -708),
        ("issuemore", json!([a, "nope", 1]), -708),
        // Bad exchanges.
        (
            "createrawexchange",
            json!([p["txid"], p["vout"], {"nope": 1}]),
            -708,
        ),
        (
            "createrawexchange",
            json!([NOT_IN_CHAIN_TXID, 0, {"silver": 1}]),
            -715,
        ),
        (
            "completerawexchange",
            json!([offer, q["txid"], q["vout"], {"gold": 999}]),
            -707,
        ),
        (
            "appendrawexchange",
            json!([offer, NOT_IN_CHAIN_TXID, 0, {"gold": 10}]),
            -715,
        ),
        ("sendrawtransaction", json!([offer]), -26),
        ("decoderawexchange", json!(["zz"]), -22),
        ("sendrawtransaction", json!(["zz"]), -22),
        ("disablerawtransaction", json!(["00"]), -22),
        // Wrong parameter count and JSON types.
        ("sendasset", json!([a, "gold"]), -1),
        ("issue", json!([a, "tin", "ten"]), -1),
        ("lockunspent", json!([]), -1),
    ];
    for (method, params, code) in &failing {
        let e = node.fail(method, params.clone());
        assert_eq!(e.code, *code, "{method} {params}: {e:?}");
        // Checked after each one, so the command that changed something is named.
        let now = snapshot(&node);
        for ((what, x), (_, y)) in before.iter().zip(&now) {
            assert_eq!(x, y, "{method} {params} (error {e:?}) changed {what}");
        }
    }

    // A block interval later, still nothing: no block since holds a transaction.
    std::thread::sleep(Duration::from_secs(BLOCK_TIME_SECS + 1));
    let after = snapshot(&node);
    for ((what, x), (_, y)) in before.iter().zip(&after) {
        assert_eq!(x, y, "{what} changed after the failed commands");
    }
    let h1 = node.height();
    assert!(h1 > h0, "no block was made while we waited ({h0} -> {h1})");
    for h in h0 + 1..=h1 {
        let block = node.ok("getblock", json!([h]));
        assert_eq!(
            block["tx"],
            json!([]),
            "block {h} holds transactions: {block}"
        );
    }
    assert_eq!(
        keys(&node.ok("getmempoolinfo", json!([]))),
        ["size", "bytes"]
    );
    assert_eq!(node.ok("getmempoolinfo", json!([]))["size"], 0);

    // The locked offer still works: nothing was disturbed.
    node.ok("lockunspent", json!([true]));
    let full = node.ok(
        "appendrawexchange",
        json!([offer, q["txid"], q["vout"], {"gold": 10}]),
    );
    assert_eq!(full["complete"], true);
    let t = node.txid("sendrawtransaction", json!([full["hex"]]));
    node.wait_confirmed(&t);
}
