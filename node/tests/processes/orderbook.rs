//! The on-chain order book through JSON-RPC on three real nodes (issue 8): a producer sells
//! 10 energy at 100 ecoin each; three consumers, on other nodes, bid for 3, 5 and 4 at 100, 105
//! and 110. The fills are 3, 5 and 2, all at the producer's 100 (the bids above it get the
//! difference back), and the third bid's remaining 2 rest in the book. Every balance, the book,
//! the order lists and the trades are checked on every node; then the resting bid is cancelled.
//! Bad orders are refused with MultiChain-style errors and leave nothing behind.

use crate::harness::{Node, wait_balance, wait_synced, wait_until};
use serde_json::{Value, json};
use std::time::{Duration, Instant};
use wattle_node::rpc::client::CallError;

const WAIT: Duration = Duration::from_secs(20);

fn txid(v: Value) -> String {
    v.as_str()
        .unwrap_or_else(|| panic!("expected a txid, got {v}"))
        .to_string()
}

/// Only the `keys` of each object of a list (or of one object): what does not depend on timing.
fn pick(v: &Value, keys: &[&str]) -> Value {
    match v {
        Value::Array(items) => Value::Array(items.iter().map(|x| pick(x, keys)).collect()),
        Value::Object(m) => Value::Object(
            keys.iter()
                .map(|k| (k.to_string(), m.get(*k).cloned().unwrap_or(Value::Null)))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// Waits until `method params`, cut down to `keys` (all of it if empty), equals `expected` on
/// `node`.
fn expect(node: &Node, method: &str, params: Value, keys: &[&str], expected: Value) {
    wait_until(
        &format!("{}: {method} {params} to be {expected}", node.label),
        Duration::from_secs(10),
        || {
            let got = node.rpc(method, params.clone());
            let got = if keys.is_empty() {
                got
            } else {
                pick(&got, keys)
            };
            if got == expected {
                Ok(())
            } else {
                Err(got.to_string())
            }
        },
    );
}

/// The error code of a call that must fail.
fn refused(node: &Node, method: &str, params: Value) -> i64 {
    match node.try_rpc(method, params.clone()) {
        Err(CallError::Rpc { code, .. }) => code,
        other => panic!(
            "{}: {method} {params} was not refused: {other:?}",
            node.label
        ),
    }
}

const ORDER_KEYS: &[&str] = &[
    "id",
    "owner",
    "side",
    "base",
    "quote",
    "price",
    "quantity",
    "remaining",
    "filled",
    "status",
    "fills",
];

const TRADE_KEYS: &[&str] = &[
    "txid", "side", "price", "quantity", "value", "buyer", "seller", "maker", "taker",
];

#[test]
fn a_sell_order_fills_three_bids_partially_on_every_node() {
    let t0 = Instant::now();
    let admin = Node::create("admin", "orderchain");
    let seed = admin.seed();
    let n1 = Node::join("producer-node", &seed);
    let n2 = Node::join("consumer-node", &seed);
    let nodes = [&admin, &n1, &n2];
    let admin_addr = admin.address();
    let producer = n1.grant_line_address();
    let c1 = n2.grant_line_address();
    let c2 = txid(n2.rpc("getnewaddress", json!([])));
    let c3 = txid(admin.rpc("getnewaddress", json!([])));
    let everyone = format!("{producer},{c1},{c2},{c3}");
    let grant = txid(admin.rpc("grant", json!([everyone, "connect,send,receive"])));
    admin.wait_confirmed(&grant, WAIT);
    for node in [&n1, &n2] {
        wait_synced(node, &admin, WAIT);
    }

    // Energy in thousandths (as in the paper) to the producer; 1000 ecoin to each consumer.
    let energy = txid(admin.rpc(
        "issue",
        json!([producer, {"name": "energy", "open": true}, 10, 0.001]),
    ));
    let ecoin = txid(admin.rpc("issue", json!([admin_addr, "ecoin", 3000, 1])));
    admin.wait_confirmed(&energy, WAIT);
    admin.wait_confirmed(&ecoin, WAIT);
    let funding: Vec<String> = [&c1, &c2, &c3]
        .iter()
        .map(|c| txid(admin.rpc("sendasset", json!([c, "ecoin", 1000]))))
        .collect();
    for node in nodes {
        for tx in &funding {
            node.wait_confirmed(tx, WAIT);
        }
    }

    // The producer's ask, placed on its own node, rests on every node.
    let ask = txid(n1.rpc(
        "placeorder",
        json!([producer, "sell", "energy", 10, "ecoin", 100]),
    ));
    for node in nodes {
        node.wait_confirmed(&ask, WAIT);
        expect(
            node,
            "getorderbook",
            json!(["energy", "ecoin"]),
            &[],
            json!({"base": "energy", "quote": "ecoin",
                   "asks": [{"price": 100, "quantity": 10, "value": 1000, "orders": 1}],
                   "bids": []}),
        );
    }

    // Three bids, each confirmed before the next, from the consumers' nodes.
    let bids: Vec<String> = [
        (&n2, &c1, 3, 100),
        (&n2, &c2, 5, 105),
        (&admin, &c3, 4, 110),
    ]
    .into_iter()
    .map(|(node, who, qty, price)| {
        let id = txid(node.rpc(
            "placeorder",
            json!([who, "buy", "energy", qty, "ecoin", price]),
        ));
        node.wait_confirmed(&id, WAIT);
        id
    })
    .collect();
    let (b1, b2, b3) = (&bids[0], &bids[1], &bids[2]);
    let placed = t0.elapsed();

    for node in nodes {
        for id in &bids {
            node.wait_confirmed(id, WAIT);
        }
        // Balances: each fill at the ask's 100; the bids at 105 and 110 got the difference
        // back; the third still holds 220 ecoin in escrow for its remaining 2 energy.
        for (who, energy_qty, ecoin_qty) in [
            (&producer, 0.0, 1000.0),
            (&c1, 3.0, 700.0),
            (&c2, 5.0, 500.0),
            (&c3, 2.0, 580.0),
            (&admin_addr, 0.0, 0.0),
        ] {
            wait_balance(node, who, "energy", energy_qty, WAIT);
            wait_balance(node, who, "ecoin", ecoin_qty, WAIT);
        }
        expect(
            node,
            "getorderbook",
            json!(["energy", "ecoin", 5]),
            &[],
            json!({"base": "energy", "quote": "ecoin", "asks": [],
                   "bids": [{"price": 110, "quantity": 2, "value": 220, "orders": 1}]}),
        );
        let open_bid = json!({"id": b3, "owner": c3, "side": "buy", "base": "energy",
            "quote": "ecoin", "price": 110, "quantity": 4, "remaining": 2, "filled": 2,
            "status": "open", "fills": 1});
        expect(node, "listorders", json!([]), ORDER_KEYS, json!([open_bid]));
        expect(
            node,
            "listorders",
            json!([producer, "energy", "ecoin", "all"]),
            ORDER_KEYS,
            json!([{"id": ask, "owner": producer, "side": "sell", "base": "energy",
                "quote": "ecoin", "price": 100, "quantity": 10, "remaining": 0, "filled": 10,
                "status": "filled", "fills": 3}]),
        );
        expect(
            node,
            "listorders",
            json!(["*", "*", "*", "all"]),
            &["id", "status", "filled"],
            json!([{"id": ask, "status": "filled", "filled": 10},
                   {"id": b1, "status": "filled", "filled": 3},
                   {"id": b2, "status": "filled", "filled": 5},
                   {"id": b3, "status": "open", "filled": 2}]),
        );
        // count/start as MultiChain's lists: the last `count` by default.
        expect(
            node,
            "listorders",
            json!(["*", "energy", "ecoin", "filled", 2]),
            &["id"],
            json!([{"id": b1}, {"id": b2}]),
        );
        // Seen from the ecoin side, the resting bid sells ecoin.
        expect(
            node,
            "listorders",
            json!([[c3], "ecoin"]),
            &["id", "side", "quantity", "remaining", "filled"],
            json!([{"id": b3, "side": "sell", "quantity": 440, "remaining": 220,
                    "filled": 200}]),
        );
        let trade = |buyer: &String, taker: &String, qty: u64| {
            json!({"txid": taker, "side": "buy", "price": 100, "quantity": qty,
                   "value": qty * 100, "buyer": buyer, "seller": producer, "maker": ask,
                   "taker": taker})
        };
        let trades = [trade(&c1, b1, 3), trade(&c2, b2, 5), trade(&c3, b3, 2)];
        expect(
            node,
            "listtrades",
            json!(["energy", "ecoin"]),
            TRADE_KEYS,
            json!(trades),
        );
        expect(
            node,
            "listtrades",
            json!(["energy", "ecoin", 1]),
            TRADE_KEYS,
            json!([trades[2]]),
        );
        expect(
            node,
            "listtrades",
            json!(["energy", "ecoin", 2, 0]),
            TRADE_KEYS,
            json!(trades[..2]),
        );
        let one = node.rpc("getorder", json!([b3]));
        assert_eq!(pick(&one, ORDER_KEYS), open_bid, "{}", node.label);
        assert_eq!(
            pick(&one["trades"], TRADE_KEYS),
            json!([trades[2]]),
            "{}",
            node.label
        );
        assert!(one["height"].as_u64().is_some() && one["time"].as_u64().is_some());
    }

    // Bad orders: refused before anything is built, nothing reaches the pool.
    let bad: &[(Value, i64)] = &[
        (json!([c1, "bid", "energy", 1, "ecoin", 100]), -8),
        (json!([c1, "buy", "energy", 0.1, "ecoin", 105]), -8), // lots of 0.2 at 105
        (json!([c1, "buy", "energy", 0.0005, "ecoin", 100]), -8),
        (json!([c1, "buy", "energy", 1, "ecoin", 0]), -8),
        (json!([c1, "buy", "energy", 0, "ecoin", 100]), -8),
        (json!([c1, "buy", "energy", 1, "energy", 100]), -8),
        (json!([c1, "buy", "gold", 1, "ecoin", 100]), -708),
        (json!([c1, "buy", "energy", 8, "ecoin", 100]), -6), // 800 ecoin, holds 700
        (json!([producer, "sell", "energy", 1, "ecoin", 100]), -709), // not this wallet's
        (json!([c1, "buy", "energy", 1, "ecoin"]), -1),
        (json!([c1, "buy", "energy", "1", "ecoin", 100]), -1), // value is type str
        (json!([c1, "buy", "energy", 1, "ecoin", "100"]), -1),
    ];
    for (params, code) in bad {
        assert_eq!(
            refused(&n2, "placeorder", params.clone()),
            *code,
            "placeorder {params}"
        );
    }
    let help = n2.rpc("help", json!([]));
    for command in [
        "placeorder",
        "cancelorder",
        "listorders",
        "getorder",
        "getorderbook",
        "listtrades",
    ] {
        let listed = help.as_str().expect("help is text").lines();
        assert!(
            listed.into_iter().any(|l| l.starts_with(command)),
            "{command}"
        );
        let text = n2.rpc("help", json!([command]));
        assert!(
            text.as_str().is_some_and(|t| t.starts_with(command)),
            "{text}"
        );
    }
    let outsider = txid(n2.rpc("getnewaddress", json!([])));
    assert_eq!(
        refused(
            &n2,
            "placeorder",
            json!([outsider, "buy", "energy", 1, "ecoin", 100])
        ),
        -704
    );
    assert_eq!(refused(&n2, "cancelorder", json!([c1, b3])), -701); // c3's order
    assert_eq!(refused(&n2, "cancelorder", json!([c1, b1])), -701); // filled
    assert_eq!(
        refused(&n2, "cancelorder", json!([c1, "00".repeat(32)])),
        -708
    );
    assert_eq!(
        refused(&n2, "getorderbook", json!(["energy", "gold"])),
        -708
    );
    assert_eq!(
        refused(&n2, "listorders", json!(["*", "*", "*", "closed"])),
        -8
    );
    assert_eq!(n2.rpc("getmempoolinfo", json!([]))["size"], json!(0));

    // The resting bid is cancelled from its owner's wallet: its 220 ecoin come back everywhere.
    let cancel = txid(admin.rpc("cancelorder", json!([c3, b3])));
    for node in nodes {
        node.wait_confirmed(&cancel, WAIT);
        wait_balance(node, &c3, "ecoin", 800.0, WAIT);
        wait_balance(node, &c3, "energy", 2.0, WAIT);
        expect(
            node,
            "getorderbook",
            json!(["energy", "ecoin"]),
            &["asks", "bids"],
            json!({"asks": [], "bids": []}),
        );
        expect(node, "listorders", json!([]), &[], json!([]));
        expect(
            node,
            "listorders",
            json!(["*", "energy", "ecoin", "cancelled"]),
            &["id", "status", "remaining", "filled"],
            json!([{"id": b3, "status": "cancelled", "remaining": 0, "filled": 2}]),
        );
    }
    assert_eq!(refused(&admin, "cancelorder", json!([c3, b3])), -701);
    eprintln!(
        "order book scenario: orders placed and filled {:.1} s after start, whole test {:.1} s",
        placed.as_secs_f64(),
        t0.elapsed().as_secs_f64()
    );
}
