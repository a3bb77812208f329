//! Hand-made starting inputs for each target, built from the fixture chain (its addresses,
//! assets, transactions and blocks), so that the fuzzers start from valid messages. The smoke
//! test runs them too; `write_seeds` (an ignored test) adds them to `fuzz/corpus/`.

use serde_json::{Value, json};
use wattle_ledger::codec;
use wattle_ledger::exchange::{self, AssetBag};
use wattle_ledger::orderbook::{OrderKind, Price};
use wattle_ledger::testkit::key;
use wattle_ledger::tx::{OutPoint, Transaction};
use wattle_ledger::{Amount, Block};
use wattle_node::chain::encode_tx_batch;
use wattle_node::fuzzing::{encode_sync_request, encode_sync_response};
use wattle_node::network::{Request, Response};
use wattle_node::rpc::methods::command_names;

use crate::ledger::memory_chain;

/// The coin of `key(k)` holding the most of `asset` (by name).
fn coin_of(k: u64, asset: &str) -> OutPoint {
    let (tc, _) = memory_chain();
    let id = tc.asset_id(asset);
    tc.utxos_of(&key(k).address())
        .into_iter()
        .filter(|(_, u)| !u.output.amount_of(&id).is_zero())
        .max_by_key(|(_, u)| u.output.amount_of(&id))
        .map(|(op, _)| op)
        .expect("the fixture has the coin")
}

/// What `key(2)` asks for completing the offer with its ecoin coin, in display units: the
/// coin's assets, plus the offered 100 energy, less the asked 50 ecoin.
fn completion_ask() -> Value {
    let (tc, _) = memory_chain();
    let coin = coin_of(2, "ecoin");
    let output = tc
        .utxos_of(&key(2).address())
        .into_iter()
        .find(|(op, _)| *op == coin)
        .map(|(_, u)| u.output)
        .expect("coin");
    let (energy, ecoin) = (tc.asset_id("energy"), tc.asset_id("ecoin"));
    let e = output.amount_of(&energy).raw() + 100_000;
    let c = output.amount_of(&ecoin).raw() - 5_000;
    let text = format!(
        "{{\"energy\": {}.{:03}, \"ecoin\": {}.{:02}}}",
        e / 1000,
        e % 1000,
        c / 100,
        c % 100
    );
    serde_json::from_str(&text).expect("JSON")
}

/// A complete exchange: `key(2)` takes the offer with its ecoin coin.
pub fn completed_exchange() -> Transaction {
    let (tc, info) = memory_chain();
    let coin = coin_of(2, "ecoin");
    let output = tc
        .utxos_of(&key(2).address())
        .into_iter()
        .find(|(op, _)| *op == coin)
        .map(|(_, u)| u.output)
        .expect("coin");
    // The coin's assets, plus the offered 100 energy, less the asked 50 ecoin.
    let mut ask: AssetBag = output.assets.iter().copied().collect();
    let (energy, ecoin) = (tc.asset_id("energy"), tc.asset_id("ecoin"));
    let e = ask.entry(energy).or_default();
    *e = e
        .checked_add(Amount::new(100_000).expect("range"))
        .expect("range");
    let c = ask.entry(ecoin).or_default();
    *c = c
        .checked_sub(Amount::new(5_000).expect("range"))
        .expect("enough ecoin");
    exchange::complete_exchange(
        &tc.state,
        &info.offer,
        coin,
        &key(2),
        &ask,
        &tc.chain,
        tc.next_height(),
    )
    .expect("the fixture offer completes")
}

/// Order-book transactions on the fixture tip, valid and not: placements that cross, rest,
/// sweep or skip their own order, cancellations (one of an order already cancelled, one of
/// another owner's order), and a revocation that makes a maker lose `receive`.
pub fn order_txs() -> Vec<Transaction> {
    let (tc, info) = memory_chain();
    let (energy, ecoin) = (tc.asset_id("energy"), tc.asset_id("ecoin"));
    vec![
        info.bid.clone(),
        info.cancel.clone(),
        info.sweep.clone(),
        info.revoke.clone(),
        info.hit.clone(),
        // A sell at 10, above every bid: it rests.
        tc.place_order(
            &key(1),
            energy,
            3_000,
            ecoin,
            Price::new(1_000, 1_000),
            OrderKind::Sell,
        ),
        // A buy of `key(2)` holding less than one lot of its price (T6).
        tc.place_order(
            &key(2),
            ecoin,
            299,
            energy,
            Price::new(1001, 300),
            OrderKind::Buy,
        ),
        // Cancelling an order already cancelled, and another owner's order.
        tc.cancel_orders(&key(2), &[info.orders[6]]),
        tc.cancel_orders(&key(1), &[info.orders[1], info.orders[2]]),
    ]
}

/// Blocks on the fixture tip with order-book transactions.
pub fn order_blocks() -> Vec<Block> {
    let (tc, info) = memory_chain();
    let t = |tx: &Transaction| tx.clone();
    vec![
        tc.block(vec![t(&info.bid)]),
        tc.block(vec![t(&info.cancel)]),
        tc.block(vec![t(&info.sweep)]),
        tc.block(vec![t(&info.revoke), t(&info.sweep)]),
        tc.block(vec![t(&info.hit)]),
        tc.block(vec![t(&info.cancel), t(&info.sweep)]),
        tc.block(vec![t(&info.bid), t(&info.hit)]),
        tc.block(vec![t(&info.sweep), t(&info.hit)]),
    ]
}

/// `(method, params)` calls covering every command, in JSON.
pub fn rpc_calls() -> Vec<(&'static str, Value)> {
    let (_, info) = memory_chain();
    let a = |i: usize| Value::String(info.addresses[i].clone());
    let (energy_id, energy_ref) = (&info.assets[0].1, &info.assets[0].2);
    let prepared = info.prepared.txid.to_hex();
    let offer = info.offer.to_hex();
    let tip = info
        .blocks
        .last()
        .expect("blocks")
        .header
        .id(&memory_chain().0.chain.id);
    let e2 = coin_of(2, "energy");
    let c2 = coin_of(2, "ecoin");
    let num = |t: &str| -> Value { serde_json::from_str(t).expect("number") };
    let order = |i: usize| Value::String(info.orders[i].to_hex());
    vec![
        ("getinfo", json!([])),
        ("getblockchainparams", json!([false, true])),
        ("getblockcount", json!([])),
        ("getblockhash", json!([3])),
        ("getblock", json!(["3"])),
        ("getblock", json!([2, 2])),
        ("getblock", json!([tip.to_hex(), 0])),
        ("getpeerinfo", json!([])),
        ("getmempoolinfo", json!([])),
        ("getrawtransaction", json!([info.txids[3], 1])),
        ("sendrawtransaction", json!([info.transfer.to_hex()])),
        ("listaddresses", json!(["*", true, 10, 0])),
        ("listaddresses", json!([[a(1), a(2)]])),
        ("getaddresses", json!([true])),
        ("getnewaddress", json!([])),
        ("grant", json!([a(3), "connect,send", 0, 0, 100])),
        ("grant", json!([a(3), "energy.issue"])),
        ("grantfrom", json!([a(1), a(4), "admin"])),
        ("revoke", json!([a(2), "send"])),
        ("revokefrom", json!([a(1), a(3), "receive", 0, "c", "t"])),
        (
            "listpermissions",
            json!([
                "send,receive",
                format!("{},{}", info.addresses[1], info.addresses[2]),
                true
            ]),
        ),
        ("listpermissions", json!(["energy.admin"])),
        (
            "issue",
            json!([a(1), "newasset", 1000, num("0.01"), 0, {"a": "b"}]),
        ),
        ("issue", json!([a(2), {"name": "x2", "open": true}, 5])),
        ("issuefrom", json!([a(1), a(2), "y", 10])),
        ("issuemore", json!([a(1), "energy", 5, 0, {"k": "v"}])),
        ("issuemorefrom", json!([a(1), a(2), energy_id, num("1.5")])),
        ("sendasset", json!([a(3), "energy", num("0.5")])),
        ("sendassettoaddress", json!([a(2), "ecoin", 1, 0, "c", "t"])),
        ("sendassetfrom", json!([a(1), a(2), energy_ref, 2])),
        ("getaddressbalances", json!([a(1), 0, true])),
        ("gettotalbalances", json!([0, true, true])),
        (
            "getmultibalances",
            json!([[a(1), a(2)], ["energy"], 0, false, true]),
        ),
        ("getmultibalances", json!(["*", "*"])),
        ("listassets", json!([["energy", energy_ref], true, 10, -1])),
        ("listassets", json!(["*"])),
        ("preparelockunspent", json!([{"energy": 1}, true])),
        ("preparelockunspentfrom", json!([a(2), {"ecoin": 2}, false])),
        ("createrawexchange", json!([prepared, 0, {"ecoin": 50}])),
        (
            "appendrawexchange",
            json!([offer, e2.txid.to_hex(), e2.vout, {"ecoin": 1}]),
        ),
        (
            "completerawexchange",
            json!([offer, c2.txid.to_hex(), c2.vout, completion_ask()]),
        ),
        ("decoderawexchange", json!([offer, true])),
        ("decoderawexchange", json!([completed_exchange().to_hex()])),
        ("disablerawtransaction", json!([offer])),
        (
            "lockunspent",
            json!([false, [{"txid": prepared, "vout": 0}]]),
        ),
        ("lockunspent", json!([true])),
        ("listlockunspent", json!([])),
        ("listunspent", json!([0, 999, [a(1)]])),
        // The order book (the commands of node/src/rpc/orders.rs).
        (
            "placeorder",
            json!([a(1), "sell", "energy", 2, "ecoin", num("5.5")]),
        ),
        (
            "placeorder",
            json!([a(2), "buy", energy_ref, num("0.5"), "ecoin", 7]),
        ),
        ("cancelorder", json!([a(1), order(0)])),
        ("cancelorder", json!([a(2), order(6)])),
        ("listorders", json!(["*", "energy", "ecoin", "all", 10, 0])),
        ("listorders", json!([[a(2), a(3)]])),
        ("getorder", json!([order(3)])),
        ("getorderbook", json!(["energy", "ecoin", 5])),
        ("listtrades", json!(["energy", "ecoin", 10, -3])),
        ("help", json!(["issue"])),
        ("help", json!([])),
        ("stop", json!([])),
    ]
}

/// The seeds of the target called `name`.
pub fn seeds(name: &str) -> Vec<Vec<u8>> {
    let (tc, info) = memory_chain();
    let mut committed: Vec<Transaction> = info.blocks.iter().flat_map(|b| b.txs.clone()).collect();
    committed.push(info.genesis.txs[0].clone());
    let blocks: Vec<&Block> = std::iter::once(&info.genesis).chain(&info.blocks).collect();
    let order_txs = order_txs();
    let order_blocks = order_blocks();
    match name {
        "tx_decode" => committed
            .iter()
            .chain([&info.offer, &info.transfer, &completed_exchange()])
            .chain(&order_txs)
            .map(codec::encode)
            .collect(),
        "block_decode" => blocks
            .iter()
            .map(|b| b.encode())
            .chain([info.next_block.encode()])
            .chain(order_blocks.iter().map(Block::encode))
            .collect(),
        "gossip_tx_batch" => vec![
            encode_tx_batch(std::slice::from_ref(&info.transfer)),
            encode_tx_batch(&[info.transfer.clone(), completed_exchange()]),
            encode_tx_batch(std::slice::from_ref(&info.offer)),
            encode_tx_batch(&committed[..3]),
            encode_tx_batch(&[info.bid.clone(), info.cancel.clone()]),
            encode_tx_batch(&[info.sweep.clone(), info.hit.clone()]),
            encode_tx_batch(&[info.revoke.clone(), info.sweep.clone()]),
            encode_tx_batch(&order_txs[order_txs.len() - 2..]),
            encode_tx_batch(&[]),
        ],
        "gossip_block" => vec![
            info.next_block.encode(),
            info.blocks.last().expect("blocks").encode(),
            tc.block(vec![]).encode(),
            order_blocks[0].encode(),
            order_blocks[2].encode(),
            order_blocks[3].encode(),
            info.genesis.encode(),
        ],
        "sync_request" => [
            Request::GetParams,
            Request::GetStatus,
            Request::GetBlocks {
                from_height: 0,
                count: 500,
            },
            Request::GetBlocks {
                from_height: 3,
                count: 2,
            },
            Request::GetBlocks {
                from_height: u32::MAX,
                count: u32::MAX,
            },
        ]
        .into_iter()
        .map(|r| encode_sync_request(r).expect("encodes"))
        .collect(),
        "sync_response" => {
            let tip = info.blocks.last().expect("blocks");
            [
                Response::Params {
                    params: info.params_toml.clone().into_bytes(),
                    genesis: info.genesis.encode(),
                },
                Response::Status {
                    height: tip.header.height + 1,
                    tip: info.next_block.header.id(&tc.chain.id).0,
                },
                Response::Blocks(blocks.iter().skip(1).map(|b| b.encode()).collect()),
                Response::Blocks(vec![info.next_block.encode()]),
                Response::Blocks(order_blocks[..2].iter().map(Block::encode).collect()),
                Response::Denied("no connect permission".into()),
            ]
            .into_iter()
            .map(|r| encode_sync_response(r).expect("encodes"))
            .collect()
        }
        "rpc_request" => {
            let mut out: Vec<Vec<u8>> = rpc_calls()
                .into_iter()
                .step_by(4)
                .enumerate()
                .map(|(i, (m, p))| {
                    json!({"method": m, "params": p, "id": i, "chain_name": "fuzzchain"})
                        .to_string()
                        .into_bytes()
                })
                .collect();
            out.push(
                json!([{"method": "getblockcount", "id": "a"}, {"method": "help", "params": null}, 5])
                    .to_string()
                    .into_bytes(),
            );
            out.push(br#"{"method":"getinfo","params":{"a":1},"id":[1]}"#.to_vec());
            out.push(br#"{"method":"getinfo","chain_name":"other"}"#.to_vec());
            out.push(br#"{"method":7}"#.to_vec());
            out.push(b"{not json".to_vec());
            out
        }
        "rpc_commands" => {
            let names: Vec<&str> = command_names().collect();
            // (A call of a command the node does not have is left out.)
            rpc_calls()
                .into_iter()
                .filter_map(|(m, p)| {
                    let index = names.iter().position(|n| *n == m)? as u8;
                    let mut bytes = vec![index];
                    bytes.extend(p.to_string().into_bytes());
                    Some(bytes)
                })
                .collect()
        }
        "decoderawexchange" => {
            let offer = codec::encode(&info.offer);
            let done = codec::encode(&completed_exchange());
            vec![
                [&[4u8][..], info.offer.to_hex().as_bytes()].concat(),
                [&[0u8][..], completed_exchange().to_hex().as_bytes()].concat(),
                [&[1u8][..], &offer].concat(),
                [&[5u8][..], &done].concat(),
                [&[2u8][..], &offer].concat(),
                [&[6u8][..], &done].concat(),
                [&[0u8][..], b"zz"].concat(),
            ]
        }
        "http_reply" => vec![
            b"HTTP/1.1 200 OK\r\ncontent-length: 37\r\n\r\n{\"result\":1,\"error\":null,\"id\":1}".to_vec(),
            b"HTTP/1.1 500 Internal Server Error\r\ntransfer-encoding: chunked\r\n\r\n1e\r\n{\"result\":null,\"error\":{\"code\"\r\n1d\r\n:-8,\"message\":\"bad\"},\"id\":1}\r\n0\r\n\r\n".to_vec(),
            b"HTTP/1.1 401 Unauthorized\r\n\r\n".to_vec(),
        ],
        "cli_args" => vec![
            b"issue A '{\"name\":\"x\"}' 0 \"a b\"\nissuefrom\nA\nB\n{\"name\":\"energy\",\"open\":true}\n10\n0.001".to_vec(),
            b"getmultibalances '[\"A\"]' energy 1\ngrant\nA\nsend\n{bad".to_vec(),
            b"sendasset A energy 0.001\ncompleterawexchange\nhex\ntxid\n0\n{\"energy\":1}\nnot json".to_vec(),
            b"\nlistassets\n*\ntrue".to_vec(),
        ],
        "params_toml" => vec![
            info.params_toml.clone().into_bytes(),
            format!(
                "{}\nmining-diversity=0.5\ntarget-block-time=2.5\naddress-checksum-value=\"00000000\"\nanyone-can-connect=true",
                info.params_toml
            )
            .into_bytes(),
        ],
        _ => Vec::new(),
    }
}
