//! Every documented error for bad input, with MultiChain's code and message (MULTICHAIN.md §1.5,
//! §1.7, §2, §5): JSON types, addresses, permissions, assets, quantities, funds, decoding and
//! exchanges; and the "This wallet doesn't have ..." errors of a node whose wallet holds no
//! permission (a second node that joined the chain).

use crate::harness::{CONFIRM_TIMEOUT, Endpoint, Node, wait_until};
use serde_json::{Value, json};

fn s(v: &Value) -> String {
    v.as_str()
        .unwrap_or_else(|| panic!("expected a string, got {v}"))
        .to_string()
}

const NOT_IN_CHAIN_TXID: &str = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";

/// A wallet address with `perms` granted (none if empty), confirmed.
fn new_address(ep: &Endpoint, perms: &str) -> String {
    let addr = s(&ep.ok("getnewaddress", json!([])));
    if !perms.is_empty() {
        let t = ep.txid("grant", json!([addr, perms]));
        ep.wait_confirmed(&t);
    }
    addr
}

#[test]
fn json_types_addresses_permissions_and_parameters() {
    let node = Node::create("errors");
    let a = node.address();
    let burn = s(&node.ok("getinfo", json!([]))["burnaddress"]);
    let b = new_address(&node, ""); // in the wallet, no permissions
    let c = new_address(&node, "receive"); // may receive, may not send
    node.txid(
        "issue",
        json!([a, {"name": "gold", "open": true}, 100, 0.01]),
    );
    node.txid("issue", json!([a, "lead", 10]));
    node.wait_mempool_empty();

    // Wrong JSON type: -1 "value is type X, expected Y".
    for (method, params, message) in [
        (
            "getaddressbalances",
            json!([1]),
            "value is type int, expected str",
        ),
        (
            "getaddressbalances",
            json!([a, "1"]),
            "value is type str, expected int",
        ),
        (
            "getaddressbalances",
            json!([a, 1, "yes"]),
            "value is type str, expected bool",
        ),
        ("grant", json!([a, 5]), "value is type int, expected str"),
        (
            "grant",
            json!([true, "connect"]),
            "value is type bool, expected str",
        ),
        (
            "gettotalbalances",
            json!(["one"]),
            "value is type str, expected int",
        ),
        (
            "gettotalbalances",
            json!([1, false, "x"]),
            "value is type str, expected bool",
        ),
        (
            "listassets",
            json!(["*", "yes"]),
            "value is type str, expected bool",
        ),
        (
            "listpermissions",
            json!(["*", "*", "yes"]),
            "value is type str, expected bool",
        ),
        (
            "getblockhash",
            json!(["0"]),
            "value is type str, expected int",
        ),
        (
            "decoderawexchange",
            json!([5]),
            "value is type int, expected str",
        ),
        (
            "issue",
            json!([a, "tin", "ten"]),
            "value is type str, expected real",
        ),
        (
            "sendasset",
            json!([a, "gold", true]),
            "value is type bool, expected real",
        ),
        (
            "sendasset",
            json!([a, 5, 1]),
            "value is type int, expected str",
        ),
        (
            "issuemore",
            json!([a, "gold", "1"]),
            "value is type str, expected real",
        ),
        (
            "getrawtransaction",
            json!([5]),
            "value is type int, expected str",
        ),
        (
            "createrawexchange",
            json!([NOT_IN_CHAIN_TXID, "0", {"gold": 1}]),
            "value is type str, expected int",
        ),
    ] {
        node.expect_err(method, params, -1, message);
    }

    // Invalid address: -5 "Invalid address: X".
    for (method, params, bad) in [
        ("grant", json!(["xyz", "connect"]), "xyz"),
        ("grant", json!([format!("{a},nope"), "connect"]), "nope"),
        ("revoke", json!(["xyz", "connect"]), "xyz"),
        ("grantfrom", json!(["xyz", a, "connect"]), "xyz"),
        ("grantfrom", json!([a, "xyz", "connect"]), "xyz"),
        ("revokefrom", json!([a, "xyz", "connect"]), "xyz"),
        ("issue", json!(["xyz", "tin", 1]), "xyz"),
        ("issuefrom", json!(["xyz", a, "tin", 1]), "xyz"),
        ("issuefrom", json!([a, "xyz", "tin", 1]), "xyz"),
        ("issuemore", json!(["xyz", "gold", 1]), "xyz"),
        ("issuemorefrom", json!([a, "xyz", "gold", 1]), "xyz"),
        ("sendasset", json!(["xyz", "gold", 1]), "xyz"),
        ("sendassettoaddress", json!(["xyz", "gold", 1]), "xyz"),
        ("sendassetfrom", json!(["xyz", a, "gold", 1]), "xyz"),
        ("sendassetfrom", json!([a, "xyz", "gold", 1]), "xyz"),
        ("getaddressbalances", json!(["xyz"]), "xyz"),
        ("getmultibalances", json!(["xyz"]), "xyz"),
        ("getmultibalances", json!([[a, "xyz"]]), "xyz"),
        ("listpermissions", json!(["*", "xyz"]), "xyz"),
        ("listaddresses", json!(["xyz"]), "xyz"),
        ("listunspent", json!([1, 9999999, ["xyz"]]), "xyz"),
        ("preparelockunspentfrom", json!(["xyz", {"gold": 1}]), "xyz"),
        // An address of another chain (other version bytes) is invalid here.
        (
            "getaddressbalances",
            json!(["1Ho8sNKkkjsmaAdbtv4iGYZXy8FFL8D6X6kBUn"]),
            "1Ho8sNKkkjsmaAdbtv4iGYZXy8FFL8D6X6kBUn",
        ),
    ] {
        node.expect_err(method, params, -5, &format!("Invalid address: {bad}"));
    }
    // A repeated address: -8.
    node.expect_err(
        "grant",
        json!([format!("{b},{b}"), "connect"]),
        -8,
        &format!("Invalid parameter, duplicated address: {b}"),
    );

    // Invalid permission: -8 "Invalid permission".
    for (method, params) in [
        ("grant", json!([b, "fly"])),
        ("grant", json!([b, "connect,fly"])),
        ("grant", json!([b, ""])),
        ("grant", json!([b, "gold.fly"])),
        ("grant", json!([b, "gold.mine"])),
        ("revoke", json!([b, "fly"])),
        ("grantfrom", json!([a, b, "fly"])),
        ("listpermissions", json!(["fly"])),
    ] {
        node.expect_err(method, params, -8, "Invalid permission");
    }

    // Unknown asset: -708.
    for (method, params) in [
        ("sendasset", json!([a, "nope", 1])),
        ("sendassetfrom", json!([a, a, "nope", 1])),
        ("issuemore", json!([a, "nope", 1])),
        ("issuemorefrom", json!([a, a, "nope", 1])),
        ("listassets", json!(["nope"])),
        ("listassets", json!([["gold", "nope"]])),
        ("getmultibalances", json!(["*", "nope"])),
        ("preparelockunspent", json!([{"nope": 1}])),
    ] {
        node.expect_err(method, params, -708, "Asset with this name not found: nope");
    }
    node.expect_err(
        "listassets",
        json!([NOT_IN_CHAIN_TXID]),
        -708,
        &format!("Asset with this txid not found: {NOT_IN_CHAIN_TXID}"),
    );
    node.expect_err(
        "sendasset",
        json!([a, "9-999-1234", 1]),
        -708,
        "Asset with this reference not found: 9-999-1234",
    );
    let e = node.fail("grant", json!([b, "nope.issue"]));
    assert_eq!(e.code, -708, "{e:?}");

    // Insufficient funds: -6.
    for (method, params) in [
        ("sendasset", json!([a, "gold", 1_000_000])),
        ("sendassettoaddress", json!([c, "gold", 101])),
        ("sendassetfrom", json!([a, c, "gold", 100.01])),
        ("preparelockunspent", json!([{"gold": 1_000_000}])),
        ("preparelockunspentfrom", json!([a, {"lead": 11}])),
    ] {
        node.expect_err(method, params, -6, "Insufficient funds");
    }

    // Funds only at an address that may not send: -704, not -6.
    node.txid("issuefrom", json!([a, c, "pewter", 5]));
    node.wait_mempool_empty();
    for params in [json!([a, "pewter", 1]), json!([c, "pewter", 1])] {
        node.expect_err(
            "sendasset",
            params,
            -704,
            "Insufficient funds, but there are unspent outputs belonging to addresses without send or receive permission.",
        );
    }

    // Missing permissions: -704 with MultiChain's messages.
    for (method, params, message) in [
        (
            "issue",
            json!([b, "tin", 1]),
            "Destination address doesn't have receive permission",
        ),
        (
            "issuefrom",
            json!([a, b, "tin", 1]),
            "Destination address doesn't have receive permission",
        ),
        (
            "issuemore",
            json!([b, "gold", 1]),
            "Destination address doesn't have receive permission",
        ),
        (
            "sendasset",
            json!([b, "gold", 1]),
            "Destination address doesn't have receive permission",
        ),
        (
            "sendassetfrom",
            json!([a, b, "gold", 1]),
            "Destination address doesn't have receive permission",
        ),
        (
            "sendassetfrom",
            json!([c, a, "gold", 1]),
            "from-address doesn't have send permission",
        ),
        (
            "issuefrom",
            json!([c, a, "tin", 1]),
            "from-address doesn't have issue permission",
        ),
        (
            "issuemorefrom",
            json!([c, a, "gold", 1]),
            "Issuing more units for this asset is not allowed from this address",
        ),
        (
            "grantfrom",
            json!([c, b, "connect"]),
            "from-address doesn't have activate or admin permission",
        ),
        (
            "grantfrom",
            json!([c, b, "send,receive"]),
            "from-address doesn't have activate or admin permission",
        ),
        (
            "revokefrom",
            json!([c, a, "send"]),
            "from-address doesn't have activate or admin permission",
        ),
        (
            "grantfrom",
            json!([c, b, "mine"]),
            "from-address doesn't have admin permission",
        ),
        (
            "grantfrom",
            json!([c, b, "issue"]),
            "from-address doesn't have admin permission",
        ),
        (
            "grantfrom",
            json!([c, b, "gold.issue"]),
            "from-address doesn't have admin permission for this entity",
        ),
    ] {
        node.expect_err(method, params, -704, message);
    }
    let e = node.fail("preparelockunspentfrom", json!([c, {"gold": 1}]));
    assert_eq!(e.code, -704, "{e:?}");

    // From-address not in this wallet: -709.
    for (method, params) in [
        ("grantfrom", json!([burn, b, "connect"])),
        ("revokefrom", json!([burn, b, "connect"])),
        ("issuefrom", json!([burn, a, "tin", 1])),
        ("issuemorefrom", json!([burn, a, "gold", 1])),
        ("sendassetfrom", json!([burn, a, "gold", 1])),
        ("preparelockunspentfrom", json!([burn, {"gold": 1}])),
    ] {
        let e = node.fail(method, params.clone());
        assert_eq!(e.code, -709, "{method} {params}: {e:?}");
    }

    // Duplicate name: -705, whatever the case, also while the first issue is unconfirmed.
    for name in [json!("gold"), json!("GOLD"), json!({"name": "Lead"})] {
        node.expect_err(
            "issue",
            json!([a, name, 1]),
            -705,
            "Entity with this name already exists",
        );
    }
    node.txid("issue", json!([a, "fresh", 1]));
    node.expect_err(
        "issue",
        json!([a, "fresh", 1]),
        -705,
        "Entity with this name already exists",
    );

    // Closed asset: -701.
    node.expect_err(
        "issuemore",
        json!([a, "lead", 1]),
        -701,
        "Issuing more units not allowed for this asset: lead",
    );
    node.expect_err(
        "issuemorefrom",
        json!([a, a, "lead", 1]),
        -701,
        "Issuing more units not allowed for this asset: lead",
    );

    // Issue parameters: -8 and -702.
    node.expect_err_prefix("issue", json!([a, "tin", -1]), -8, "");
    node.expect_err_prefix("sendasset", json!([a, "gold", -1]), -8, "");
    node.expect_err_prefix("issuemore", json!([a, "gold", -1]), -8, "");
    for unit in [json!(0.3), json!(0), json!(2), json!(-0.1)] {
        node.expect_err_prefix(
            "issue",
            json!([a, "tin", 1, unit]),
            -8,
            "Invalid smallest unit",
        );
    }
    node.expect_err(
        "issue",
        json!([a, "tin", 1.5]),
        -8,
        "Quantity should be divisible by smallest unit.",
    );
    node.expect_err(
        "issue",
        json!([a, "tin", 1.005, 0.01]),
        -8,
        "Quantity should be divisible by smallest unit.",
    );
    node.expect_err_prefix("issue", json!([a, "*", 1]), -8, "");
    node.expect_err_prefix("issue", json!([a, "12-345-678", 1]), -8, "");
    node.expect_err(
        "issue",
        json!([a, {"name": "tin", "colour": "grey"}, 1]),
        -702,
        "Invalid field: colour",
    );
    node.expect_err_prefix(
        "issue",
        json!([a, {"name": "tin", "open": "yes"}, 1]),
        -8,
        "",
    );
    node.expect_err(
        "issue",
        json!([a, "tin", 1, 1, 0, {"blob": "x".repeat(10_000)}]),
        -8,
        "Invalid custom fields or asset name, too long",
    );
    node.expect_err(
        "issue",
        json!([a, "n".repeat(40), 1]),
        -8,
        "Invalid custom fields or asset name, too long",
    );

    // Decoding: -22 "TX decode failed".
    let offerless = json!({"gold": 1});
    for (method, params) in [
        ("sendrawtransaction", json!(["zz"])),
        ("sendrawtransaction", json!(["00"])),
        ("sendrawtransaction", json!([""])),
        ("decoderawexchange", json!(["zz"])),
        ("decoderawexchange", json!(["0102"])),
        (
            "appendrawexchange",
            json!(["zz", NOT_IN_CHAIN_TXID, 0, offerless]),
        ),
        (
            "completerawexchange",
            json!(["zz", NOT_IN_CHAIN_TXID, 0, offerless]),
        ),
        ("disablerawtransaction", json!(["zz"])),
    ] {
        node.expect_err(method, params, -22, "TX decode failed");
    }

    // Block and transaction look-ups.
    node.expect_err(
        "getblockhash",
        json!([1_000_000]),
        -8,
        "Block height out of range",
    );
    let e = node.fail("getrawtransaction", json!([NOT_IN_CHAIN_TXID]));
    assert!([-5, -710].contains(&e.code), "{e:?}");
}

#[test]
fn exchange_errors() {
    let node = Node::create("exerrors");
    let a = node.address();
    let b = new_address(&node, "send,receive");
    let d = new_address(&node, "send,receive");
    node.txid("issue", json!([a, {"name": "energy", "open": true}, 100]));
    node.txid("issuefrom", json!([a, b, "ecoin", 1000]));
    node.wait_mempool_empty();
    let t = node.txid("sendasset", json!([d, "energy", 5]));
    node.wait_confirmed(&t);

    // Prepared output missing: -715.
    let e = node.fail(
        "createrawexchange",
        json!([NOT_IN_CHAIN_TXID, 0, {"ecoin": 1}]),
    );
    assert!(
        e.code == -715
            && [
                "Missing inputs",
                "Input already spent",
                "Conflicts with in-memory transactions"
            ]
            .contains(&e.message.as_str()),
        "{e:?}"
    );

    let p = node.ok("preparelockunspent", json!([{"energy": 1}]));
    let offer = s(&node.ok(
        "createrawexchange",
        json!([p["txid"], p["vout"], {"ecoin": 10}]),
    ));
    // Not complete: -707 "Incomplete exchange" (the counter-side asks too little or too much).
    let q = node.ok("preparelockunspentfrom", json!([b, {"ecoin": 10}]));
    node.expect_err(
        "completerawexchange",
        json!([offer, q["txid"], q["vout"], {"energy": 2}]),
        -707,
        "Incomplete exchange",
    );
    // A transaction that is not an exchange: -707.
    let plain = s(&node.ok("getrawtransaction", json!([t])));
    let e = node.fail("decoderawexchange", json!([plain]));
    assert_eq!(e.code, -707, "{e:?}");
    // Sending an incomplete offer is rejected by validation: -26.
    let e = node.fail("sendrawtransaction", json!([offer]));
    assert_eq!(e.code, -26, "{e:?}");

    // A prepared output whose address lost send: -704.
    let pd = node.ok("preparelockunspentfrom", json!([d, {"energy": 2}]));
    let offer_d = s(&node.ok(
        "createrawexchange",
        json!([pd["txid"], pd["vout"], {"ecoin": 20}]),
    ));
    let t = node.txid("revoke", json!([d, "send"]));
    node.wait_confirmed(&t);
    node.expect_err(
        "createrawexchange",
        json!([pd["txid"], pd["vout"], {"ecoin": 20}]),
        -704,
        "Address of prepared output doesn't have send/receive permission",
    );
    node.expect_err(
        "disablerawtransaction",
        json!([offer_d]),
        -704,
        "At least one of the input addresses should have send and receive permission",
    );

    // Complete, then the offer is disabled: sending the complete one finds its input spent.
    let full = node.ok(
        "appendrawexchange",
        json!([offer, q["txid"], q["vout"], {"energy": 1}]),
    );
    assert_eq!(full["complete"], true);
    let dis = node.txid("disablerawtransaction", json!([offer]));
    node.wait_confirmed(&dis);
    node.expect_err(
        "sendrawtransaction",
        json!([full["hex"]]),
        -27,
        "missing inputs",
    );
    // Disabling again: nothing of ours left unspent in it, -714.
    node.expect_err(
        "disablerawtransaction",
        json!([offer]),
        -714,
        "Couldn't find unspent input in this tx belonging to this wallet.",
    );
    let e = node.fail(
        "appendrawexchange",
        json!([offer, q["txid"], q["vout"], {"energy": 1}]),
    );
    assert_eq!(e.code, -707, "{e:?}");
}

#[test]
fn a_wallet_without_permissions() {
    let admin = Node::create("admin");
    let joiner = Node::join("joiner", &admin.seed());
    let a = admin.address();
    let j = joiner.address();
    assert_eq!(joiner.ok("listpermissions", json!(["*", j])), json!([]));

    // Nothing to grant with: -704 "This wallet doesn't have addresses with ... permission".
    for (perms, what) in [
        ("connect", "activate or admin"),
        ("send,receive", "activate or admin"),
        ("mine", "admin"),
        ("admin", "admin"),
        ("connect,mine", "admin"),
    ] {
        joiner.expect_err(
            "grant",
            json!([a, perms]),
            -704,
            &format!("This wallet doesn't have addresses with {what} permission"),
        );
    }
    joiner.expect_err(
        "revoke",
        json!([a, "send"]),
        -704,
        "This wallet doesn't have addresses with activate or admin permission",
    );
    joiner.expect_err(
        "issue",
        json!([a, "tin", 1]),
        -704,
        "This wallet doesn't have keys with issue permission",
    );

    // Let it connect (and sync) without send: the asset errors need the asset.
    admin.txid("issue", json!([a, {"name": "gold", "open": true}, 100]));
    admin.txid("issue", json!([a, "ecoin", 100]));
    let t = admin.txid("grant", json!([j, "connect,receive"]));
    admin.wait_confirmed(&t);
    wait_until("the joiner to see gold", CONFIRM_TIMEOUT, || {
        joiner
            .call("listassets", json!(["gold"]))
            .map(|_| ())
            .map_err(|e| format!("{e:?}"))
    });
    joiner.expect_err(
        "sendasset",
        json!([a, "gold", 1]),
        -704,
        "This wallet doesn't have keys with send permission",
    );
    joiner.expect_err(
        "preparelockunspent",
        json!([{"gold": 1}]),
        -704,
        "This wallet doesn't have keys with send and receive permission",
    );
    joiner.expect_err(
        "issuemore",
        json!([a, "gold", 1]),
        -704,
        "Issuing more units for this asset is not allowed from this wallet",
    );
    joiner.expect_err(
        "grant",
        json!([a, "gold.issue"]),
        -704,
        "This wallet doesn't have addresses with admin permission for this entity",
    );

    // An offer from the admin: the joiner cannot disable it, and cannot complete it.
    let p = admin.ok("preparelockunspent", json!([{"gold": 1}]));
    let offer = s(&admin.ok(
        "createrawexchange",
        json!([p["txid"], p["vout"], {"ecoin": 1}]),
    ));
    wait_until(
        "the joiner to see the prepared output",
        CONFIRM_TIMEOUT,
        || {
            joiner
                .call("decoderawexchange", json!([offer]))
                .map_err(|e| format!("{e:?}"))
        },
    );
    let d = joiner.ok("decoderawexchange", json!([offer]));
    assert_eq!(d["candisable"], false, "{d}");
    assert_eq!(d["cancomplete"], false, "{d}");
    joiner.expect_err(
        "disablerawtransaction",
        json!([offer]),
        -714,
        "Couldn't find unspent input in this tx belonging to this wallet.",
    );
}
