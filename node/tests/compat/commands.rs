//! Every command of MULTICHAIN.md §2 that the node has: its positional parameters and their
//! defaults, the result's field names, and their order where MultiChain's appendix shows it.

use crate::harness::{Endpoint, Node, is_txid, keys, wait_until};
use serde_json::{Value, json};
use std::time::Duration;

/// MultiChain's parameter counts: (command, fewest, most). From the help texts and the
/// `params.size()` checks of MultiChain 2.3 (`stop` accepts Bitcoin's ignored `detach` flag).
pub const COUNTS: &[(&str, usize, usize)] = &[
    ("getinfo", 0, 0),
    ("help", 0, 1),
    ("stop", 0, 1),
    ("getblockchainparams", 0, 2),
    ("getblockcount", 0, 0),
    ("getblockhash", 1, 1),
    ("getblock", 1, 2),
    ("getpeerinfo", 0, 0),
    ("getmempoolinfo", 0, 0),
    ("getnewaddress", 0, 1),
    ("listaddresses", 0, 4),
    ("getaddresses", 0, 1),
    ("grant", 2, 7),
    ("grantfrom", 3, 8),
    ("revoke", 2, 5),
    ("revokefrom", 3, 6),
    ("listpermissions", 0, 3),
    ("issue", 3, 6),
    ("issuefrom", 4, 7),
    ("issuemore", 3, 5),
    ("issuemorefrom", 4, 6),
    ("listassets", 0, 4),
    ("sendasset", 3, 6),
    ("sendassettoaddress", 3, 6),
    ("sendassetfrom", 4, 7),
    ("getaddressbalances", 1, 3),
    ("gettotalbalances", 0, 3),
    ("getmultibalances", 0, 5),
    ("listunspent", 0, 3),
    ("lockunspent", 1, 2),
    ("listlockunspent", 0, 0),
    ("preparelockunspent", 1, 2),
    ("preparelockunspentfrom", 2, 3),
    ("createrawexchange", 3, 3),
    ("appendrawexchange", 4, 4),
    ("completerawexchange", 4, 5),
    ("decoderawexchange", 1, 2),
    ("disablerawtransaction", 1, 1),
    ("getrawtransaction", 1, 2),
    ("sendrawtransaction", 1, 2),
];

/// `getinfo`'s fields in MultiChain 2.3's order (the Appendix).
const GETINFO_KEYS: &[&str] = &[
    "version",
    "nodeversion",
    "edition",
    "protocolversion",
    "chainname",
    "description",
    "protocol",
    "port",
    "setupblocks",
    "nodeaddress",
    "burnaddress",
    "incomingpaused",
    "miningpaused",
    "offchainpaused",
    "walletversion",
    "balance",
    "walletdbversion",
    "reindex",
    "blocks",
    "chainrewards",
    "streams",
    "timeoffset",
    "connections",
    "proxy",
    "difficulty",
    "testnet",
    "keypoololdest",
    "keypoolsize",
    "paytxfee",
    "relayfee",
    "errors",
];

/// `listassets`' fields in MultiChain 2.3's order (the Appendix).
const LISTASSETS_KEYS: &[&str] = &[
    "name",
    "issuetxid",
    "assetref",
    "multiple",
    "units",
    "open",
    "restrict",
    "fungible",
    "canopen",
    "canclose",
    "totallimit",
    "issuelimit",
    "details",
    "issuecount",
    "issueqty",
    "issueraw",
    "subscribed",
];

const GLOBAL_PERMS: &[&str] = &[
    "connect", "send", "receive", "issue", "create", "mine", "activate", "admin",
];

fn s(v: &Value) -> String {
    v.as_str()
        .unwrap_or_else(|| panic!("expected a string, got {v}"))
        .to_string()
}

fn arr(v: &Value) -> &Vec<Value> {
    v.as_array()
        .unwrap_or_else(|| panic!("expected an array, got {v}"))
}

/// The balance entry MultiChain shows: `{name, assetref, qty}`.
fn bal(name: &str, assetref: &str, qty: Value) -> Value {
    json!({"name": name, "assetref": assetref, "qty": qty})
}

/// Checks `v` is an array of `{name, assetref, qty}` entries (keys in that order) and returns it.
fn balances(what: &str, v: Value) -> Value {
    for e in arr(&v) {
        assert_eq!(keys(e), ["name", "assetref", "qty"], "{what}: {v}");
    }
    v
}

/// `got` and `want` are arrays with the same elements (in any order).
#[track_caller]
fn assert_same_set(got: &Value, want: &Value, what: &str) {
    let (g, w) = (arr(got), arr(want));
    assert!(
        g.len() == w.len() && w.iter().all(|x| g.contains(x)),
        "{what}: got {got}, want (in any order) {want}"
    );
}

fn assetref_of(ep: &Endpoint, name: &str) -> String {
    s(&ep.ok("listassets", json!([name]))[0]["assetref"])
}

/// Grants `perms` to `addr` and waits for the grant to be confirmed.
fn grant(ep: &Endpoint, addr: &str, perms: &str) {
    let t = ep.txid("grant", json!([addr, perms]));
    ep.wait_confirmed(&t);
}

#[test]
fn node_information_help_parameters_and_blocks() {
    let node = Node::create("info");

    // getinfo: every 2.3 field, in order, with this node's values.
    let info = node.ok("getinfo", json!([]));
    assert_eq!(keys(&info), GETINFO_KEYS, "{info}");
    assert_eq!(info["chainname"], "compat");
    assert_eq!(info["description"], "MultiChain compat");
    assert_eq!(info["protocol"], "multichain");
    assert_eq!(info["protocolversion"], 20013);
    assert_eq!(info["setupblocks"], 60);
    assert_eq!(info["port"], node.p2p_port);
    assert_eq!(
        info["nodeaddress"],
        format!("compat@127.0.0.1:{}", node.p2p_port)
    );
    assert_eq!(info["connections"], 0);
    assert_eq!(info["errors"], "");
    assert_eq!(info["balance"], 0);
    assert!(
        info["version"].is_string() && info["nodeversion"].is_u64(),
        "{info}"
    );
    assert!(info["burnaddress"].is_string());
    for flag in [
        "incomingpaused",
        "miningpaused",
        "offchainpaused",
        "reindex",
        "testnet",
    ] {
        assert_eq!(info[flag], false, "{flag}");
    }
    let blocks = info["blocks"].as_u64().unwrap();
    assert!(node.height() >= blocks);
    // The burn address is a valid address of this chain that nobody holds.
    let burn = s(&info["burnaddress"]);
    assert_eq!(node.ok("getaddressbalances", json!([burn])), json!([]));

    // help: the list, and each command's usage text, which is also what a wrong parameter
    // count answers (code -1).
    let all = s(&node.ok("help", json!([])));
    for (cmd, min, max) in COUNTS {
        assert!(
            all.lines()
                .any(|l| l.split_whitespace().next() == Some(cmd)),
            "help does not list {cmd}:\n{all}"
        );
        let usage = s(&node.ok("help", json!([cmd])));
        assert_eq!(
            usage.split_whitespace().next(),
            Some(*cmd),
            "help {cmd}: {usage}"
        );
        if *min > 0 {
            let params = vec![json!("x"); min - 1];
            node.expect_err(cmd, json!(params), -1, &usage);
        }
        let params = vec![json!("x"); max + 1];
        node.expect_err(cmd, json!(params), -1, &usage);
    }

    assert_eq!(
        node.ok("help", json!(["nosuchcommand"])),
        json!("help: unknown command: nosuchcommand")
    );

    // getblockchainparams: MultiChain's hyphenated display names by default.
    let params = node.ok("getblockchainparams", json!([]));
    for (k, v) in [
        ("chain-protocol", json!("multichain")),
        ("chain-name", json!("compat")),
        ("chain-description", json!("MultiChain compat")),
        ("protocol-version", json!(20013)),
        ("target-block-time", json!(2)),
        ("setup-first-blocks", json!(60)),
        ("mining-diversity", json!(0.3)),
        ("admin-consensus-admin", json!(0.5)),
        ("admin-consensus-mine", json!(0.5)),
        ("admin-consensus-activate", json!(0.5)),
        ("anyone-can-connect", json!(false)),
        ("anyone-can-send", json!(false)),
        ("anyone-can-receive", json!(false)),
        ("anyone-can-receive-empty", json!(true)),
        ("anyone-can-issue", json!(false)),
        ("anyone-can-mine", json!(false)),
        ("anyone-can-admin", json!(false)),
        ("maximum-block-size", json!(8388608)),
        ("max-std-tx-size", json!(4194304)),
        ("default-network-port", json!(8571)),
        ("default-rpc-port", json!(8570)),
    ] {
        assert_eq!(params.get(k), Some(&v), "getblockchainparams {k}: {params}");
    }
    for k in ["address-pubkeyhash-version", "address-checksum-value"] {
        let hex = s(&params[k]);
        assert!(
            hex.len() == 8 && hex.bytes().all(|b| b.is_ascii_hexdigit()),
            "{k}: {hex}"
        );
    }
    assert_eq!(node.ok("getblockchainparams", json!([true])), params);
    assert_eq!(node.ok("getblockchainparams", json!([true, true])), params);
    assert_eq!(node.ok("getblockchainparams", json!([true, false])), params);
    // display-names=false: the internal names, which drop the hyphens (`targetblocktime`).
    let internal = node.ok("getblockchainparams", json!([false]));
    let expected: serde_json::Map<String, Value> = params
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.replace('-', ""), v.clone()))
        .collect();
    assert_eq!(internal, Value::Object(expected));
    assert_eq!(internal["targetblocktime"], 2);

    // getblockcount (genesis is 0), getblockhash, getblock by hash and by height.
    let h = node.height();
    let genesis = s(&node.ok("getblockhash", json!([0])));
    assert!(is_txid(&genesis), "{genesis}");
    let b0 = node.ok("getblock", json!([genesis]));
    assert_eq!(b0["hash"], genesis.as_str());
    assert_eq!(b0["height"], 0);
    assert!(b0["tx"].is_array());
    assert!(b0.get("previousblockhash").is_none(), "{b0}");
    let conf = b0["confirmations"].as_u64().unwrap();
    assert!(conf > h, "genesis confirmations {conf} at height {h}");
    assert_eq!(node.ok("getblock", json!([0]))["hash"], genesis.as_str());
    assert_eq!(node.ok("getblock", json!(["0"]))["hash"], genesis.as_str());
    let raw = node.ok("getblock", json!([genesis, false]));
    assert!(
        raw.as_str()
            .is_some_and(|x| x.bytes().all(|b| b.is_ascii_hexdigit()))
    );
    // Blocks keep coming (target-block-time 2 s); each links to the one before.
    wait_until("block 2", Duration::from_secs(20), || {
        if node.height() >= 2 {
            Ok(())
        } else {
            Err(format!("height {}", node.height()))
        }
    });
    let b1 = s(&node.ok("getblockhash", json!([1])));
    let block1 = node.ok("getblock", json!([b1]));
    assert_eq!(block1["height"], 1);
    assert_eq!(block1["previousblockhash"], genesis.as_str());
    assert_eq!(
        node.ok("getblock", json!([genesis]))["nextblockhash"],
        b1.as_str()
    );
    node.expect_err("getblockhash", json!([-1]), -8, "Block height out of range");
    node.expect_err(
        "getblockhash",
        json!([1_000_000]),
        -8,
        "Block height out of range",
    );

    // getmempoolinfo {size, bytes}; getpeerinfo [] on a lone node.
    let mp = node.ok("getmempoolinfo", json!([]));
    assert_eq!(keys(&mp), ["size", "bytes"]);
    assert_eq!(node.ok("getpeerinfo", json!([])), json!([]));
}

#[test]
fn addresses_and_permissions() {
    let node = Node::create("perms");
    let a = node.address();

    // getnewaddress: a wallet address with no permissions.
    let b = s(&node.ok("getnewaddress", json!([])));
    assert_ne!(a, b);
    let list = node.ok("listaddresses", json!([]));
    assert_eq!(
        list,
        json!([{"address": a, "ismine": true}, {"address": b, "ismine": true}])
    );
    for e in arr(&list) {
        assert_eq!(keys(e), ["address", "ismine"]);
    }
    assert_eq!(node.ok("listaddresses", json!(["*"])), list);
    assert_eq!(
        node.ok("listaddresses", json!([b])),
        json!([{"address": b, "ismine": true}])
    );
    assert_same_set(
        &node.ok("listaddresses", json!([[b, a]])),
        &list,
        "listaddresses [b, a]",
    );
    assert_eq!(
        node.ok("listaddresses", json!([format!("{a},{b}")])),
        list,
        "a comma-separated list"
    );
    // verbose adds fields after address and ismine.
    let verbose = node.ok("listaddresses", json!(["*", true]));
    for e in arr(&verbose) {
        let k = keys(e);
        assert_eq!(&k[..3], ["address", "ismine", "iswatchonly"], "{e}");
        for f in ["account", "synchronized"] {
            assert!(e.get(f).is_some(), "listaddresses verbose lacks {f}: {e}");
        }
    }
    // count and start (default start = -count: the last ones).
    assert_eq!(
        node.ok("listaddresses", json!(["*", false, 1])),
        json!([{"address": b, "ismine": true}])
    );
    assert_eq!(
        node.ok("listaddresses", json!(["*", false, 1, 0])),
        json!([{"address": a, "ismine": true}])
    );
    assert_eq!(node.ok("listaddresses", json!(["*", false, 5, 0])), list);
    // getaddresses (1.0): the plain list.
    assert_eq!(node.ok("getaddresses", json!([])), json!([a, b]));

    // listpermissions: the genesis address holds every global permission.
    let all = node.ok("listpermissions", json!([]));
    assert_eq!(node.ok("listpermissions", json!(["*"])), all);
    assert_eq!(node.ok("listpermissions", json!(["all"])), all);
    let mine: Vec<&Value> = arr(&all)
        .iter()
        .filter(|e| e["address"] == a.as_str())
        .collect();
    let types: Vec<&str> = mine.iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(types, GLOBAL_PERMS, "{all}");
    for e in &mine {
        assert_eq!(
            keys(e),
            ["address", "for", "type", "startblock", "endblock"]
        );
        assert_eq!(e["for"], Value::Null);
        assert_eq!(e["startblock"], 0);
        assert_eq!(e["endblock"], 4294967295u64);
    }
    assert!(
        arr(&all).iter().all(|e| e["address"] != b.as_str()),
        "a new address has no permissions: {all}"
    );
    assert_eq!(node.ok("listpermissions", json!(["*", b])), json!([]));
    let cs = node.ok("listpermissions", json!(["connect,send", a]));
    assert_eq!(
        cs.as_array()
            .unwrap()
            .iter()
            .map(|e| s(&e["type"]))
            .collect::<Vec<_>>(),
        ["connect", "send"]
    );
    let mine_only = node.ok("listpermissions", json!(["mine"]));
    assert!(arr(&mine_only).iter().all(|e| e["type"] == "mine") && !arr(&mine_only).is_empty());
    // verbose adds admins and pending.
    let v = node.ok("listpermissions", json!(["admin", [a], true]));
    assert_eq!(
        keys(&v[0]),
        [
            "address",
            "for",
            "type",
            "startblock",
            "endblock",
            "admins",
            "pending"
        ]
    );
    assert!(v[0]["admins"].is_array() && v[0]["pending"].is_array());

    // grant: defaults (native 0, start 0, end 4294967295) and explicit blocks; -1 = default end.
    let c = s(&node.ok("getnewaddress", json!([])));
    let d = s(&node.ok("getnewaddress", json!([])));
    let t1 = node.txid("grant", json!([format!("{b},{c}"), "connect,send,receive"]));
    let t2 = node.txid("grant", json!([d, "send", 0, 1000, 2000]));
    let t3 = node.txid(
        "grant",
        json!([d, "receive", 0, 0, -1, "a comment", "comment-to"]),
    );
    for t in [&t1, &t2, &t3] {
        node.wait_confirmed(t);
    }
    for addr in [&b, &c] {
        let p = node.ok("listpermissions", json!(["*", addr]));
        assert_eq!(
            p,
            json!([
                {"address": addr, "for": null, "type": "connect", "startblock": 0, "endblock": 4294967295u64},
                {"address": addr, "for": null, "type": "send", "startblock": 0, "endblock": 4294967295u64},
                {"address": addr, "for": null, "type": "receive", "startblock": 0, "endblock": 4294967295u64},
            ])
        );
    }
    assert_eq!(
        node.ok("listpermissions", json!(["send,receive", d])),
        json!([
            {"address": d, "for": null, "type": "send", "startblock": 1000, "endblock": 2000},
            {"address": d, "for": null, "type": "receive", "startblock": 0, "endblock": 4294967295u64},
        ])
    );

    // revoke, grantfrom, revokefrom.
    let t = node.txid("revoke", json!([c, "send"]));
    node.wait_confirmed(&t);
    assert_eq!(
        node.ok("listpermissions", json!(["*", c]))
            .as_array()
            .unwrap()
            .iter()
            .map(|e| s(&e["type"]))
            .collect::<Vec<_>>(),
        ["connect", "receive"]
    );
    let e = s(&node.ok("getnewaddress", json!([])));
    let t = node.txid(
        "grantfrom",
        json!([a, e, "receive,send", 0, 0, 4294967295u64]),
    );
    node.wait_confirmed(&t);
    assert_eq!(
        node.ok("listpermissions", json!(["*", e]))
            .as_array()
            .unwrap()
            .len(),
        2
    );
    let t = node.txid("revokefrom", json!([a, e, "receive", 0, "c", "ct"]));
    node.wait_confirmed(&t);
    assert_eq!(
        node.ok("listpermissions", json!(["*", e])),
        json!([{"address": e, "for": null, "type": "send", "startblock": 0, "endblock": 4294967295u64}])
    );

    // Per-asset permissions: the issuer gets ASSET.admin and ASSET.issue; `for` names the asset.
    let t = node.txid("issue", json!([a, {"name": "gold", "open": true}, 10]));
    node.wait_confirmed(&t);
    let gold_ref = assetref_of(&node, "gold");
    let for_gold = json!({"type": "asset", "name": "gold", "assetref": gold_ref});
    let gp = node.ok("listpermissions", json!(["gold.issue,admin"]));
    assert_same_set(
        &gp,
        &json!([
            {"address": a, "for": for_gold, "type": "issue", "startblock": 0, "endblock": 4294967295u64},
            {"address": a, "for": for_gold, "type": "admin", "startblock": 0, "endblock": 4294967295u64},
        ]),
        "listpermissions gold.issue,admin",
    );
    assert_eq!(keys(&gp[0]["for"]), ["type", "name", "assetref"]);
    // `energy.issue` splits at the last dot; the asset may also be named by its reference.
    let t = node.txid("grant", json!([b, "gold.issue"]));
    node.wait_confirmed(&t);
    let gi = node.ok("listpermissions", json!([format!("{gold_ref}.issue"), b]));
    assert_eq!(
        gi,
        json!([{"address": b, "for": for_gold, "type": "issue", "startblock": 0, "endblock": 4294967295u64}])
    );
    // B may now issue more gold (issuemore needs only gold.issue).
    let t = node.txid("issuemorefrom", json!([b, b, "gold", 5]));
    node.wait_confirmed(&t);
    assert_eq!(
        node.ok("getaddressbalances", json!([b])),
        json!([bal("gold", &gold_ref, json!(5))])
    );
}

#[test]
fn assets_balances_unspent_and_transactions() {
    let node = Node::create("assets");
    let a = node.address();
    let b = s(&node.ok("getnewaddress", json!([])));
    grant(&node, &b, "send,receive");

    // issue: params object, smallest unit, native 0, custom fields.
    let gold = node.txid(
        "issue",
        json!([a, {"name": "gold", "open": true}, 1000, 0.01, 0, {"origin": "north", "grade": "a"}]),
    );
    // issue with a plain name and the defaults (smallest unit 1, closed).
    let silver = node.txid("issue", json!([a, "silver", 50]));
    // issuefrom to another address.
    let copper = node.txid("issuefrom", json!([a, b, "copper", 7, 0.1]));
    // A zero-quantity open issue, as in the paper.
    let zero = node.txid(
        "issue",
        json!([a, {"name": "zero", "open": true}, 0, 0.001]),
    );
    node.wait_mempool_empty();

    let assets = node.ok("listassets", json!([]));
    assert_eq!(
        arr(&assets)
            .iter()
            .map(|x| s(&x["name"]))
            .collect::<Vec<_>>(),
        ["gold", "silver", "copper", "zero"],
        "issue order"
    );
    for x in arr(&assets) {
        assert_eq!(keys(x), LISTASSETS_KEYS, "{x}");
        assert_eq!(
            x["restrict"],
            json!({"send": false, "receive": false, "issue": true})
        );
        assert_eq!(x["fungible"], true);
        assert_eq!(x["totallimit"], Value::Null);
        assert_eq!(x["subscribed"], false);
    }
    let g = &assets[0];
    assert_eq!(g["issuetxid"], gold.as_str());
    assert_eq!(g["multiple"], 100);
    assert_eq!(g["units"], json!(0.01));
    assert_eq!(g["open"], true);
    assert_eq!(g["details"], json!({"origin": "north", "grade": "a"}));
    assert_eq!(g["issuecount"], 1);
    assert_eq!(g["issueqty"], 1000);
    assert_eq!(g["issueraw"], 100000);
    let sv = &assets[1];
    assert_eq!(
        (
            sv["issuetxid"].clone(),
            sv["multiple"].clone(),
            sv["units"].clone(),
            sv["open"].clone(),
            sv["details"].clone()
        ),
        (json!(silver), json!(1), json!(1), json!(false), json!({}))
    );
    assert_eq!(assets[2]["issuetxid"], copper.as_str());
    assert_eq!(assets[2]["multiple"], 10);
    assert_eq!(assets[3]["issuetxid"], zero.as_str());
    assert_eq!(
        (assets[3]["issueqty"].clone(), assets[3]["issueraw"].clone()),
        (json!(0), json!(0))
    );
    // assetref H-O-P: H the confirming block's height, P the first two txid bytes little-endian.
    for x in arr(&assets) {
        let r = s(&x["assetref"]);
        let parts: Vec<u64> = r.split('-').map(|p| p.parse().unwrap()).collect();
        assert_eq!(parts.len(), 3, "{r}");
        let txid = s(&x["issuetxid"]);
        let bytes = hex::decode(&txid).unwrap();
        assert_eq!(
            parts[2],
            bytes[0] as u64 + 256 * bytes[1] as u64,
            "{r} of {txid}"
        );
        let tx = node.ok("getrawtransaction", json!([txid, 1]));
        let block = node.ok("getblock", json!([tx["blockhash"]]));
        assert_eq!(block["height"], parts[0], "{r}");
    }
    let gold_ref = s(&g["assetref"]);
    let silver_ref = s(&sv["assetref"]);
    let copper_ref = s(&assets[2]["assetref"]);
    // Look-ups by name (any case), reference, txid, array; "*".
    for ident in [json!("gold"), json!("GOLD"), json!(gold_ref), json!(gold)] {
        assert_eq!(node.ok("listassets", json!([ident])), json!([g]), "{ident}");
    }
    assert_same_set(
        &node.ok("listassets", json!([["silver", gold]])),
        &json!([g, sv]),
        "listassets [silver, gold]",
    );
    assert_eq!(node.ok("listassets", json!(["*"])), assets);
    // count / start (default start = -count).
    assert_eq!(
        node.ok("listassets", json!(["*", false, 1])),
        json!([assets[3]])
    );
    assert_eq!(
        node.ok("listassets", json!(["*", false, 2, 1])),
        json!([assets[1], assets[2]])
    );

    // issuemore / issuemorefrom: by name, reference and txid; custom fields.
    let m1 = node.txid("issuemore", json!([a, "gold", 500, 0, {"batch": "2"}]));
    node.txid("issuemore", json!([a, gold_ref, 1]));
    node.txid("issuemore", json!([a, gold, 1]));
    node.txid("issuemorefrom", json!([a, b, "gold", 2]));
    node.wait_mempool_empty();
    let g2 = node.ok("listassets", json!(["gold", true]));
    assert_eq!(g2[0]["issuecount"], 5);
    assert_eq!(g2[0]["issueqty"], 1504);
    assert_eq!(g2[0]["issueraw"], 150400);
    // verbose adds issues [{txid, qty, raw, details, issuers}].
    let issues = arr(&g2[0]["issues"]);
    assert_eq!(issues.len(), 5);
    for i in issues {
        assert_eq!(keys(i), ["txid", "qty", "raw", "details", "issuers"], "{i}");
        assert_eq!(i["issuers"], json!([a]));
    }
    assert_eq!(
        issues[0],
        json!({"txid": gold, "qty": 1000, "raw": 100000, "details": {"origin": "north", "grade": "a"}, "issuers": [a]})
    );
    assert_eq!(
        issues[1],
        json!({"txid": m1, "qty": 500, "raw": 50000, "details": {"batch": "2"}, "issuers": [a]})
    );
    // zero-quantity open asset can be topped up.
    node.txid("issuemore", json!([a, "zero", 1.5]));

    // sendasset, sendassettoaddress, sendassetfrom.
    let s1 = node.txid("sendasset", json!([b, "gold", 10.5]));
    // minconf 0 sees unconfirmed coins at once.
    let unconfirmed = node.ok("getaddressbalances", json!([b, 0]));
    assert!(
        arr(&unconfirmed)
            .iter()
            .any(|e| e["name"] == "gold" && e["qty"] == json!(12.5)),
        "getaddressbalances minconf=0 right after sendasset: {unconfirmed}"
    );
    node.txid(
        "sendassettoaddress",
        json!([b, "silver", 5, 0, "comment", "to"]),
    );
    node.txid("sendassetfrom", json!([b, a, "copper", 0.5]));
    node.wait_mempool_empty();

    // getaddressbalances: [{name, assetref, qty}] in issue order; default minconf 1.
    let zero_ref = assetref_of(&node, "zero");
    assert_eq!(
        balances("A", node.ok("getaddressbalances", json!([a]))),
        json!([
            bal("gold", &gold_ref, json!(1491.5)),
            bal("silver", &silver_ref, json!(45)),
            bal("copper", &copper_ref, json!(0.5)),
            bal("zero", &zero_ref, json!(1.5)),
        ])
    );
    let b_bal = json!([
        bal("gold", &gold_ref, json!(12.5)),
        bal("silver", &silver_ref, json!(5)),
        bal("copper", &copper_ref, json!(6.5)),
    ]);
    assert_eq!(
        balances("B", node.ok("getaddressbalances", json!([b]))),
        b_bal
    );
    assert_eq!(node.ok("getaddressbalances", json!([b, 1, false])), b_bal);
    assert_eq!(
        node.ok("getaddressbalances", json!([b, 100000])),
        json!([]),
        "minconf"
    );
    // gettotalbalances: the whole wallet.
    let total = json!([
        bal("gold", &gold_ref, json!(1504)),
        bal("silver", &silver_ref, json!(50)),
        bal("copper", &copper_ref, json!(7)),
        bal("zero", &zero_ref, json!(1.5)),
    ]);
    assert_eq!(
        balances("total", node.ok("gettotalbalances", json!([]))),
        total
    );
    assert_eq!(node.ok("gettotalbalances", json!([1, false, false])), total);
    assert_eq!(node.ok("gettotalbalances", json!([100000])), json!([]));
    // getmultibalances: one key per address, then "total".
    let multi = node.ok("getmultibalances", json!([]));
    assert_eq!(keys(&multi), [a.clone(), b.clone(), "total".to_string()]);
    assert_eq!(multi[&b], b_bal);
    assert_eq!(multi["total"], total);
    assert_eq!(
        node.ok("getmultibalances", json!(["*", "*", 1, false, false])),
        multi
    );
    assert_eq!(
        node.ok("getmultibalances", json!([b])),
        json!({b.as_str(): b_bal, "total": b_bal})
    );
    assert_eq!(
        node.ok("getmultibalances", json!([[a, b], "gold"])),
        json!({
            a.as_str(): [bal("gold", &gold_ref, json!(1491.5))],
            b.as_str(): [bal("gold", &gold_ref, json!(12.5))],
            "total": [bal("gold", &gold_ref, json!(1504))],
        })
    );
    assert_eq!(
        node.ok("getmultibalances", json!([b, ["copper", silver_ref]]))[&b],
        json!([
            bal("silver", &silver_ref, json!(5)),
            bal("copper", &copper_ref, json!(6.5))
        ])
    );

    // listunspent: MultiChain's fields; the assets of B's coins add up to B's balances.
    let unspent = node.ok("listunspent", json!([]));
    for u in arr(&unspent) {
        assert_eq!(
            keys(u),
            [
                "txid",
                "vout",
                "address",
                "account",
                "scriptPubKey",
                "amount",
                "confirmations",
                "cansend",
                "spendable",
                "assets",
                "permissions"
            ],
            "{u}"
        );
        assert!(u["confirmations"].as_u64().unwrap() >= 1);
        assert!(u["address"] == a.as_str() || u["address"] == b.as_str());
    }
    let b_coins = node.ok("listunspent", json!([0, 9999999, [b]]));
    assert!(arr(&b_coins).iter().all(|u| u["address"] == b.as_str()));
    let mut sum = std::collections::BTreeMap::<String, f64>::new();
    for u in arr(&b_coins) {
        for x in arr(&u["assets"]) {
            *sum.entry(s(&x["name"])).or_default() += x["qty"].as_f64().unwrap();
        }
    }
    assert_eq!(sum.get("gold"), Some(&12.5));
    assert_eq!(sum.get("copper"), Some(&6.5));
    assert_eq!(
        node.ok("listunspent", json!([100000])),
        json!([]),
        "minconf"
    );
    assert_eq!(
        node.ok("listunspent", json!([0, 0])),
        json!([]),
        "maxconf 0: nothing unconfirmed"
    );

    // lockunspent / listlockunspent and includeLocked.
    let outs: Vec<Value> = arr(&b_coins)
        .iter()
        .map(|u| json!({"txid": u["txid"], "vout": u["vout"]}))
        .collect();
    assert_eq!(node.ok("lockunspent", json!([false, outs])), json!(true));
    let locked = node.ok("listlockunspent", json!([]));
    for l in arr(&locked) {
        assert_eq!(keys(l), ["txid", "vout"]);
        assert!(outs.contains(l), "{l}");
    }
    assert_eq!(arr(&locked).len(), outs.len());
    assert_eq!(
        node.ok("getaddressbalances", json!([b])),
        json!([]),
        "locked coins are left out"
    );
    assert_eq!(node.ok("getaddressbalances", json!([b, 1, true])), b_bal);
    assert_eq!(node.ok("gettotalbalances", json!([1, false, true])), total);
    assert_eq!(
        node.ok("gettotalbalances", json!([])),
        json!([
            bal("gold", &gold_ref, json!(1491.5)),
            bal("silver", &silver_ref, json!(45)),
            bal("copper", &copper_ref, json!(0.5)),
            bal("zero", &zero_ref, json!(1.5)),
        ])
    );
    assert_eq!(node.ok("getmultibalances", json!([b]))[&b], json!([]));
    assert_eq!(
        node.ok("getmultibalances", json!([b, "*", 1, false, true]))[&b],
        b_bal
    );
    assert_eq!(node.ok("listunspent", json!([0, 9999999, [b]])), json!([]));
    assert_eq!(
        node.ok("lockunspent", json!([true, [outs[0]]])),
        json!(true)
    );
    assert_eq!(
        arr(&node.ok("listlockunspent", json!([]))).len(),
        outs.len() - 1
    );
    assert_eq!(
        node.ok("lockunspent", json!([true])),
        json!(true),
        "unlock all"
    );
    assert_eq!(node.ok("listlockunspent", json!([])), json!([]));
    assert_eq!(node.ok("getaddressbalances", json!([b])), b_bal);

    // getrawtransaction: hex by default; verbose adds per-output assets.
    let hex = node.ok("getrawtransaction", json!([gold]));
    assert!(
        hex.as_str()
            .is_some_and(|h| h.bytes().all(|c| c.is_ascii_hexdigit()))
    );
    assert_eq!(node.ok("getrawtransaction", json!([gold, 0])), hex);
    let tx = node.ok("getrawtransaction", json!([gold, 1]));
    let k = keys(&tx);
    let order: Vec<&String> = k
        .iter()
        .filter(|x| {
            [
                "hex",
                "txid",
                "version",
                "locktime",
                "vin",
                "vout",
                "blockhash",
                "confirmations",
                "time",
                "blocktime",
            ]
            .contains(&x.as_str())
        })
        .collect();
    assert_eq!(
        order,
        [
            "hex",
            "txid",
            "version",
            "locktime",
            "vin",
            "vout",
            "blockhash",
            "confirmations",
            "time",
            "blocktime"
        ],
        "{tx}"
    );
    assert!(tx.get("data").is_some(), "top-level data: {tx}");
    assert_eq!(tx["hex"], hex);
    assert_eq!(tx["txid"], gold.as_str());
    let first = &tx["vout"][0];
    for f in ["assets", "permissions", "items"] {
        assert!(first.get(f).is_some(), "vout lacks {f}: {first}");
    }
    assert_eq!(
        first["assets"],
        json!([{"name": "gold", "issuetxid": gold, "assetref": gold_ref, "qty": 1000, "raw": 100000, "type": "issuefirst"}])
    );
    assert_eq!(
        keys(&first["assets"][0]),
        ["name", "issuetxid", "assetref", "qty", "raw", "type"]
    );
    let send = node.ok("getrawtransaction", json!([s1, 1]));
    let to_b: Vec<&Value> = arr(&send["vout"])
        .iter()
        .flat_map(|o| arr(&o["assets"]).iter())
        .collect();
    assert!(to_b.iter().all(|x| x["type"] == "transfer"), "{send}");
    assert!(
        to_b.iter()
            .any(|x| x["qty"] == json!(10.5) && x["raw"] == 1050),
        "{send}"
    );
    let more = node.ok("getrawtransaction", json!([m1, true]));
    let kinds: Vec<String> = arr(&more["vout"])
        .iter()
        .flat_map(|o| arr(&o["assets"]).iter().map(|x| s(&x["type"])))
        .collect();
    assert!(
        kinds
            .iter()
            .any(|k| k == "issuemore" || k == "issuemore+transfer"),
        "{more}"
    );
}

#[test]
fn exchange_commands() {
    let node = Node::create("exchange");
    let a = node.address();
    let b = s(&node.ok("getnewaddress", json!([])));
    grant(&node, &b, "send,receive");
    node.txid(
        "issue",
        json!([a, {"name": "energy", "open": true}, 100, 0.001]),
    );
    node.txid("issuefrom", json!([a, b, "ecoin", 20000]));
    node.wait_mempool_empty();
    let energy_ref = assetref_of(&node, "energy");
    let ecoin_ref = assetref_of(&node, "ecoin");

    // preparelockunspent: {txid, vout}, locked by default.
    let p1 = node.ok("preparelockunspent", json!([{"energy": 1}]));
    assert_eq!(keys(&p1), ["txid", "vout"]);
    assert!(is_txid(&s(&p1["txid"])));
    assert!(arr(&node.ok("listlockunspent", json!([]))).contains(&p1));
    // A's energy: 1 now sits locked in the prepared output.
    let a_energy = |locked: bool| -> Value {
        node.ok("getaddressbalances", json!([a, 0, locked]))
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["name"] == "energy")
            .map(|e| e["qty"].clone())
            .unwrap_or(json!(0))
    };
    assert_eq!(a_energy(false), json!(99));
    assert_eq!(a_energy(true), json!(100));

    // createrawexchange → hex; decoderawexchange → the Appendix's shape.
    let offer = s(&node.ok(
        "createrawexchange",
        json!([p1["txid"], p1["vout"], {"ecoin": 1000}]),
    ));
    assert!(offer.bytes().all(|c| c.is_ascii_hexdigit()));
    let d = node.ok("decoderawexchange", json!([offer]));
    assert_eq!(
        keys(&d),
        [
            "offer",
            "ask",
            "requiredfee",
            "candisable",
            "cancomplete",
            "complete"
        ]
    );
    assert_eq!(
        d["offer"],
        json!({"amount": 0, "assets": [bal("energy", &energy_ref, json!(1))]})
    );
    assert_eq!(
        d["ask"],
        json!({"amount": 0, "assets": [bal("ecoin", &ecoin_ref, json!(1000))]})
    );
    assert_eq!(d["requiredfee"], 0);
    assert_eq!(d["complete"], false);
    // This wallet holds the offer's input and enough ecoin.
    assert_eq!(
        (d["candisable"].clone(), d["cancomplete"].clone()),
        (json!(true), json!(true))
    );
    assert_eq!(node.ok("decoderawexchange", json!([offer, false])), d);
    let dv = node.ok("decoderawexchange", json!([offer, true]));
    assert_eq!(
        keys(&dv),
        [
            "offer",
            "ask",
            "requiredfee",
            "candisable",
            "cancomplete",
            "complete",
            "exchanges"
        ]
    );
    assert_eq!(
        dv["exchanges"],
        json!([{
            "offer": {"amount": 0, "assets": [bal("energy", &energy_ref, json!(1))], "address": a, "txid": p1["txid"], "vout": p1["vout"]},
            "ask": {"amount": 0, "assets": [bal("ecoin", &ecoin_ref, json!(1000))], "address": a},
        }])
    );
    assert_eq!(
        keys(&dv["exchanges"][0]["offer"]),
        ["amount", "assets", "address", "txid", "vout"]
    );
    assert_eq!(
        keys(&dv["exchanges"][0]["ask"]),
        ["amount", "assets", "address"]
    );

    // preparelockunspentfrom, appendrawexchange → {hex, complete}.
    let p2 = node.ok("preparelockunspentfrom", json!([b, {"ecoin": 1000}]));
    assert_eq!(keys(&p2), ["txid", "vout"]);
    let appended = node.ok(
        "appendrawexchange",
        json!([offer, p2["txid"], p2["vout"], {"energy": 1}]),
    );
    assert_eq!(keys(&appended), ["hex", "complete"]);
    assert_eq!(appended["complete"], true);
    let full = s(&appended["hex"]);
    let dc = node.ok("decoderawexchange", json!([full]));
    assert_eq!(
        dc,
        json!({"offer": {"amount": 0, "assets": []}, "ask": {"amount": 0, "assets": []}, "completedfee": 0, "requiredfee": 0, "candisable": true, "cancomplete": true, "complete": true})
    );
    assert_eq!(
        keys(&dc),
        [
            "offer",
            "ask",
            "completedfee",
            "requiredfee",
            "candisable",
            "cancomplete",
            "complete"
        ]
    );

    // sendrawtransaction → txid; the spent prepared outputs are unlocked.
    let sent = node.txid("sendrawtransaction", json!([full]));
    node.wait_confirmed(&sent);
    let locks = node.ok("listlockunspent", json!([]));
    assert!(
        !arr(&locks).contains(&p1) && !arr(&locks).contains(&p2),
        "{locks}"
    );
    let energy_of = |addr: &str| {
        node.ok("getaddressbalances", json!([addr]))
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["name"] == "energy")
            .map(|e| e["qty"].clone())
            .unwrap_or(json!(0))
    };
    assert_eq!(energy_of(&a), json!(99));
    assert_eq!(energy_of(&b), json!(1));
    node.expect_err(
        "sendrawtransaction",
        json!([full]),
        -27,
        "transaction already in block chain",
    );
    // allowhighfees is accepted.
    let p = node.ok("preparelockunspent", json!([{"energy": 2}]));
    let o = s(&node.ok(
        "createrawexchange",
        json!([p["txid"], p["vout"], {"ecoin": 5}]),
    ));
    let q = node.ok("preparelockunspentfrom", json!([b, {"ecoin": 5}]));
    let c = node.ok(
        "appendrawexchange",
        json!([o, q["txid"], q["vout"], {"energy": 2}]),
    );
    node.txid("sendrawtransaction", json!([c["hex"], false]));

    // completerawexchange → hex (the last input signed ALL).
    let p3 = node.ok("preparelockunspent", json!([{"energy": 3}]));
    let offer3 = s(&node.ok(
        "createrawexchange",
        json!([p3["txid"], p3["vout"], {"ecoin": 30}]),
    ));
    let p4 = node.ok("preparelockunspentfrom", json!([b, {"ecoin": 30}]));
    let completed = node.ok(
        "completerawexchange",
        json!([offer3, p4["txid"], p4["vout"], {"energy": 3}]),
    );
    let completed = s(&completed);
    assert_eq!(
        node.ok("decoderawexchange", json!([completed]))["complete"],
        true
    );
    let t = node.txid("sendrawtransaction", json!([completed]));
    node.wait_confirmed(&t);
    assert_eq!(energy_of(&b), json!(6));

    // preparelockunspent lock=false leaves the output unlocked.
    let p5 = node.ok("preparelockunspent", json!([{"energy": 1}, false]));
    assert!(!arr(&node.ok("listlockunspent", json!([]))).contains(&p5));
    let p6 = node.ok(
        "preparelockunspentfrom",
        json!([b, {"ecoin": 1, "": 0}, false]),
    );
    assert!(!arr(&node.ok("listlockunspent", json!([]))).contains(&p6));

    // disablerawtransaction: spends the offer's input back to the wallet → txid; the offer is dead.
    let p7 = node.ok("preparelockunspent", json!([{"energy": 4}]));
    let offer7 = s(&node.ok(
        "createrawexchange",
        json!([p7["txid"], p7["vout"], {"ecoin": 40}]),
    ));
    let disabled = node.txid("disablerawtransaction", json!([offer7]));
    node.wait_confirmed(&disabled);
    assert!(!arr(&node.ok("listlockunspent", json!([]))).contains(&p7));
    let e = node.fail("decoderawexchange", json!([offer7]));
    let suffix = format!("; Input: 0, txid: {}, vout: {}", s(&p7["txid"]), p7["vout"]);
    assert!(
        e.code == -707
            && [
                "Missing inputs",
                "Input already spent",
                "Conflicts with in-memory transactions"
            ]
            .iter()
            .any(|m| e.message == format!("{m}{suffix}")),
        "{e:?}"
    );
    assert_eq!(
        energy_of(&a),
        json!(99 - 2 - 3),
        "disabling returns the energy to A"
    );
}

#[test]
fn an_unconfirmed_issue_is_listed_with_a_null_assetref() {
    let node = Node::create("unconfirmed");
    let a = node.address();
    // One batch, so the queries run right after the issue; they saw it unconfirmed if it is
    // still in the mempool at the end.
    let batch = json!([
        {"method": "issue", "params": [a, {"name": "fresh", "open": true}, 10], "id": 1},
        {"method": "listassets", "params": ["fresh"], "id": 2},
        {"method": "gettotalbalances", "params": [0], "id": 3},
        {"method": "getaddressbalances", "params": [a, 0], "id": 4},
        {"method": "gettotalbalances", "params": [], "id": 5},
        {"method": "listunspent", "params": [], "id": 6},
        {"method": "listunspent", "params": [0], "id": 7},
        {"method": "getmempoolinfo", "params": [], "id": 8},
    ]);
    let r = node.post(&batch.to_string());
    let replies = r.json();
    let get = |i: usize| {
        crate::harness::check_envelope("batch", &replies[i], &json!(i + 1), None)
            .unwrap_or_else(|e| panic!("batch item {}: {e:?}", i + 1))
    };
    let txid = s(&get(0));
    if get(7)["size"] == 0 {
        println!("the issue was confirmed within the batch; the unconfirmed view was not seen");
    } else {
        let listed = get(1);
        assert_eq!(
            arr(&listed).len(),
            1,
            "listassets shows an unconfirmed asset: {listed}"
        );
        assert_eq!(keys(&listed[0]), LISTASSETS_KEYS);
        assert_eq!(listed[0]["assetref"], Value::Null, "{listed}");
        assert_eq!(listed[0]["issuetxid"], txid.as_str());
        assert_eq!(listed[0]["issueqty"], 10);
        let entry = json!({"name": "fresh", "assetref": null, "qty": 10});
        assert_eq!(get(2), json!([entry]), "gettotalbalances minconf 0");
        assert_eq!(get(3), json!([entry]), "getaddressbalances minconf 0");
        // The default minconf is 1: not yet counted.
        assert_eq!(get(4), json!([]), "gettotalbalances (minconf 1)");
        let fresh_coin = |v: &Value| {
            arr(v)
                .iter()
                .any(|u| arr(&u["assets"]).iter().any(|x| x["name"] == "fresh"))
        };
        assert!(!fresh_coin(&get(5)), "listunspent (minconf 1): {}", get(5));
        assert!(fresh_coin(&get(6)), "listunspent 0: {}", get(6));
    }
    // By txid at once, and with its reference once confirmed.
    assert_eq!(
        node.ok("listassets", json!([txid]))[0]["issuetxid"],
        txid.as_str()
    );
    node.wait_confirmed(&txid);
    let r = assetref_of(&node, "fresh");
    assert_eq!(
        node.ok("gettotalbalances", json!([])),
        json!([bal("fresh", &r, json!(10))])
    );
}

#[test]
fn pending_admin_consensus_grants_in_listpermissions_verbose() {
    // Admin consensus applies from block 1 (setup-first-blocks = 1).
    let node = Node::create_with("consensus", |p| p.setup_first_blocks = 1);
    let a = node.address();
    let b = s(&node.ok("getnewaddress", json!([])));
    let c = s(&node.ok("getnewaddress", json!([])));
    let d = s(&node.ok("getnewaddress", json!([])));
    // 1 admin, then 2: one agreeing admin is enough (ceil(n × 0.5)).
    for x in [&b, &c] {
        let t = node.txid("grant", json!([x, "admin,send"]));
        node.wait_confirmed(&t);
    }
    let admins = node.ok("listpermissions", json!(["admin"]));
    assert_eq!(arr(&admins).len(), 3, "{admins}");
    // 3 admins: activate needs 2 of them. A's grant alone is pending.
    let t = node.txid("grantfrom", json!([a, d, "activate"]));
    node.wait_confirmed(&t);
    let v = node.ok("listpermissions", json!(["activate", d, true]));
    let pending: Vec<&Value> = arr(&v)
        .iter()
        .flat_map(|e| arr(&e["pending"]).iter())
        .collect();
    assert_eq!(pending.len(), 1, "{v}");
    assert_eq!(
        keys(pending[0]),
        ["startblock", "endblock", "admins", "required"],
        "{v}"
    );
    assert_eq!(
        *pending[0],
        json!({"startblock": 0, "endblock": 4294967295u64, "admins": [a], "required": 2})
    );
    assert!(
        arr(&node.ok("listpermissions", json!(["activate", d])))
            .iter()
            .all(|e| e["endblock"] == 0),
        "a pending grant is not in effect"
    );
    // The second admin agrees: in effect, nothing pending.
    let t = node.txid("grantfrom", json!([b, d, "activate"]));
    node.wait_confirmed(&t);
    let v = node.ok("listpermissions", json!(["activate", d, true]));
    assert_eq!(arr(&v).len(), 1, "{v}");
    assert_eq!(v[0]["startblock"], 0);
    assert_eq!(v[0]["endblock"], 4294967295u64);
    assert_eq!(v[0]["pending"], json!([]));
    assert_same_set(&v[0]["admins"], &json!([a, b]), "admins of the grant");
}
