//! Exchange and coin commands with MultiChain's semantics (MULTICHAIN.md §5): preparelockunspent
//! (from), createrawexchange, appendrawexchange, completerawexchange, decoderawexchange,
//! disablerawtransaction, lockunspent, listlockunspent, listunspent.

use super::args::{Args, address, address_list, type_error};
use super::build::{self, mempool_error};
use super::convert::{asset_bag, balances};
use super::server::{RpcError, code};
use crate::chain::NodeState;
use crate::wallet::Coin;
use serde_json::{Value, json};
use wattle_ledger::exchange::{self, AssetBag, DecodedExchange, ExchangeError};
use wattle_ledger::permissions::{GlobalPerm, Permission};
use wattle_ledger::tx::{OutPoint, Output, Transaction};
use wattle_ledger::{Address, Hash256, codec};

type R = Result<Value, RpcError>;

fn exchange_error(e: ExchangeError) -> RpcError {
    match e {
        ExchangeError::PreparedNoPermission => {
            RpcError::new(code::INSUFFICIENT_PERMISSIONS, e.to_string())
        }
        ExchangeError::EmptyAsk => RpcError::new(code::INVALID_PARAMETER, e.to_string()),
        _ => RpcError::new(code::EXCHANGE_ERROR, e.to_string()),
    }
}

fn decode_tx(text: &str) -> Result<Transaction, RpcError> {
    codec::decode_hex(text)
        .map_err(|_| RpcError::new(code::DESERIALIZATION_ERROR, "TX decode failed"))
}

fn outpoint(a: &Args, txid_at: usize) -> Result<OutPoint, RpcError> {
    let txid = Hash256::from_hex(a.str(txid_at)?)
        .map_err(|_| RpcError::new(code::INVALID_PARAMETER, "txid must be hexadecimal string"))?;
    let vout = a.int_or(txid_at + 1, -1)?;
    if vout < 0 || vout > u32::MAX as i64 {
        return Err(RpcError::new(
            code::INVALID_PARAMETER,
            "Invalid parameter, vout must be positive",
        ));
    }
    Ok(OutPoint {
        txid,
        vout: vout as u32,
    })
}

fn can_trade(s: &NodeState, a: &Address) -> bool {
    s.holds(a, Permission::Global(GlobalPerm::Send))
        && s.holds(a, Permission::Global(GlobalPerm::Receive))
}

/// A wallet coin (locked or not, confirmed or not) with its key: −715 if it is not there.
fn prepared_coin(s: &NodeState, prev: &OutPoint) -> Result<Coin, RpcError> {
    s.wallet_coins(&[], true, 0)
        .into_iter()
        .find(|c| c.outpoint == *prev)
        .ok_or_else(|| {
            let msg = if s.store.tx_location(&prev.txid).ok().flatten().is_some()
                || s.mempool.contains(&prev.txid)
            {
                "Input already spent"
            } else {
                "Missing inputs"
            };
            RpcError::new(code::WALLET_OUTPUT_NOT_FOUND, msg)
        })
}

/// preparelockunspent (assets, lock=true) / preparelockunspentfrom (from, assets, lock=true).
pub fn preparelockunspent(s: &mut NodeState, from: Option<&str>, a: &Args, base: usize) -> R {
    let fmt = s.chain.params.address_format();
    let from = match from {
        Some(text) => {
            let f = address(&fmt, text)?;
            build::key_of(s, &f)?;
            if !can_trade(s, &f) {
                return Err(RpcError::new(
                    code::INSUFFICIENT_PERMISSIONS,
                    "from-address doesn't have send and receive permission",
                ));
            }
            f
        }
        None => s
            .wallet
            .addresses()
            .into_iter()
            .find(|x| can_trade(s, x))
            .ok_or_else(|| {
                RpcError::new(
                    code::INSUFFICIENT_PERMISSIONS,
                    "This wallet doesn't have keys with send and receive permission",
                )
            })?,
    };
    let bag = asset_bag(
        s,
        a.get(base)
            .ok_or_else(|| RpcError::new(code::MISC_ERROR, "missing asset quantities"))?,
    )?;
    let lock = a.bool_or(base + 1, true)?;
    let prepared = Output::new(from, bag.iter().map(|(k, v)| (*k, *v)));
    let tx = build::build_funded(s, &from, vec![prepared], &bag, vec![])?;
    let txid = s.submit(tx, true).map_err(mempool_error)?;
    let op = OutPoint { txid, vout: 0 };
    if lock {
        s.wallet
            .lock(&[op])
            .map_err(|e| RpcError::new(code::WALLET_ERROR, e.to_string()))?;
    }
    Ok(json!({"txid": txid.to_hex(), "vout": 0}))
}

/// The key and checks for a prepared coin going into an exchange.
fn exchange_key(s: &NodeState, prev: &OutPoint) -> Result<wattle_ledger::SecretKey, RpcError> {
    let coin = prepared_coin(s, prev)?;
    let key = build::key_of(s, &coin.output.address)?;
    if !can_trade(s, &coin.output.address) {
        return Err(exchange_error(ExchangeError::PreparedNoPermission));
    }
    Ok(key)
}

fn ask_of(s: &NodeState, a: &Args, i: usize) -> Result<AssetBag, RpcError> {
    let v = a
        .get(i)
        .ok_or_else(|| RpcError::new(code::MISC_ERROR, "missing ask"))?;
    let bag = asset_bag(s, v)?;
    if bag.is_empty() {
        return Err(exchange_error(ExchangeError::EmptyAsk));
    }
    Ok(bag)
}

/// createrawexchange (txid, vout, ask) → hex.
pub fn createrawexchange(s: &NodeState, a: &Args) -> R {
    let prev = outpoint(a, 0)?;
    let key = exchange_key(s, &prev)?;
    let ask = ask_of(s, a, 2)?;
    let tx = exchange::create_offer(prev, &key, &ask, &s.chain).map_err(exchange_error)?;
    Ok(Value::String(tx.to_hex()))
}

fn decode(s: &NodeState, tx: &Transaction, check_last: bool) -> Result<DecodedExchange, RpcError> {
    let view = s.mempool.view(&*s.store);
    exchange::decode_exchange(&view, tx, &s.chain, s.height() + 1, check_last)
        .map_err(exchange_error)
}

/// appendrawexchange (hex, txid, vout, ask) → {hex, complete}.
pub fn appendrawexchange(s: &NodeState, a: &Args) -> R {
    let tx = decode_tx(a.str(0)?)?;
    decode(s, &tx, true)?;
    let prev = outpoint(a, 1)?;
    let key = exchange_key(s, &prev)?;
    let ask = ask_of(s, a, 3)?;
    let out =
        exchange::append_to_exchange(&tx, prev, &key, &ask, &s.chain).map_err(exchange_error)?;
    let d = decode(s, &out, true)?;
    Ok(json!({"hex": out.to_hex(), "complete": d.complete}))
}

/// completerawexchange (hex, txid, vout, ask, data) → hex.
pub fn completerawexchange(s: &NodeState, a: &Args) -> R {
    let tx = decode_tx(a.str(0)?)?;
    decode(s, &tx, true)?;
    let prev = outpoint(a, 1)?;
    let key = exchange_key(s, &prev)?;
    let ask = ask_of(s, a, 3)?;
    if a.get(4).is_some() {
        return Err(RpcError::new(
            code::NOT_SUPPORTED,
            "Metadata outputs are not supported",
        ));
    }
    let view = s.mempool.view(&*s.store);
    let out = exchange::complete_exchange(&view, &tx, prev, &key, &ask, &s.chain, s.height() + 1)
        .map_err(exchange_error)?;
    Ok(Value::String(out.to_hex()))
}

fn side(s: &NodeState, bag: &AssetBag) -> Value {
    json!({"amount": 0, "assets": balances(s, bag)})
}

/// decoderawexchange (hex, verbose=false).
pub fn decoderawexchange(s: &NodeState, a: &Args) -> R {
    let tx = decode_tx(a.str(0)?)?;
    let verbose = a.bool_or(1, false)?;
    let d = decode(s, &tx, true)?;
    let fmt = s.chain.params.address_format();
    let mine: Vec<Coin> = s.wallet_coins(&[], true, 0);
    let candisable = tx.inputs.iter().any(|i| {
        mine.iter()
            .any(|c| c.outpoint == i.prev && can_trade(s, &c.output.address))
    });
    let cancomplete = d.complete || {
        // Could some send+receive address of this wallet supply what is asked?
        s.wallet
            .addresses()
            .iter()
            .filter(|x| can_trade(s, x))
            .any(|x| {
                let mut have = AssetBag::new();
                for c in s.wallet_coins(&[*x], false, 0) {
                    super::convert::add_output(&mut have, &c.output);
                }
                d.ask
                    .iter()
                    .all(|(id, q)| have.get(id).copied().unwrap_or_default() >= *q)
            })
    };
    let mut obj = serde_json::Map::new();
    obj.insert("offer".into(), side(s, &d.offer));
    obj.insert("ask".into(), side(s, &d.ask));
    if d.complete {
        obj.insert("completedfee".into(), json!(0));
    }
    obj.insert("requiredfee".into(), json!(0));
    obj.insert("candisable".into(), json!(candisable));
    obj.insert("cancomplete".into(), json!(cancomplete));
    obj.insert("complete".into(), json!(d.complete));
    if verbose {
        let pairs: Vec<Value> = d
            .exchanges
            .iter()
            .map(|p| {
                json!({
                    "offer": {"amount": 0, "assets": balances(s, &p.offer), "address": fmt.encode(&p.offer_address), "txid": p.prev.txid.to_hex(), "vout": p.prev.vout},
                    "ask": {"amount": 0, "assets": balances(s, &p.ask), "address": fmt.encode(&p.ask_address)},
                })
            })
            .collect();
        obj.insert("exchanges".into(), Value::Array(pairs));
    }
    Ok(Value::Object(obj))
}

/// disablerawtransaction (hex): spends the first input of ours back to ourselves.
pub fn disablerawtransaction(s: &mut NodeState, a: &Args) -> R {
    let tx = decode_tx(a.str(0)?)?;
    let mine = s.wallet_coins(&[], true, 0);
    let mut any_ours = false;
    for input in &tx.inputs {
        let Some(coin) = mine.iter().find(|c| c.outpoint == input.prev) else {
            continue;
        };
        any_ours = true;
        if !can_trade(s, &coin.output.address) {
            continue;
        }
        let key = build::key_of(s, &coin.output.address)?;
        let mut spend = Transaction {
            version: wattle_ledger::tx::TX_VERSION,
            inputs: vec![wattle_ledger::tx::Input::unsigned(coin.outpoint)],
            outputs: vec![coin.output.clone()],
            ops: vec![],
        };
        wattle_ledger::sighash::sign_all(&mut spend, &[&key], &s.chain.id);
        let _ = s.wallet.unlock(&[coin.outpoint]);
        let txid = s.submit(spend, true).map_err(mempool_error)?;
        return Ok(Value::String(txid.to_hex()));
    }
    if any_ours {
        return Err(RpcError::new(
            code::INSUFFICIENT_PERMISSIONS,
            "At least one of the input addresses should have send and receive permission",
        ));
    }
    Err(RpcError::new(
        code::INPUTS_NOT_MINE,
        "Couldn't find unspent input in this tx belonging to this wallet.",
    ))
}

/// lockunspent (unlock, [{txid, vout}]) → true.
pub fn lockunspent(s: &mut NodeState, a: &Args) -> R {
    let unlock = match a.get(0) {
        Some(Value::Bool(b)) => *b,
        Some(v) => return Err(type_error(v, "bool")),
        None => return Err(RpcError::new(code::MISC_ERROR, "missing unlock flag")),
    };
    let list: Vec<OutPoint> = match a.get(1) {
        None => Vec::new(),
        Some(Value::Array(items)) => items
            .iter()
            .map(|o| {
                let txid = o
                    .get("txid")
                    .and_then(Value::as_str)
                    .and_then(|t| Hash256::from_hex(t).ok());
                let vout = o
                    .get("vout")
                    .and_then(Value::as_u64)
                    .filter(|v| *v <= u32::MAX as u64);
                match (txid, vout) {
                    (Some(txid), Some(vout)) => Ok(OutPoint {
                        txid,
                        vout: vout as u32,
                    }),
                    _ => Err(RpcError::new(
                        code::INVALID_PARAMETER,
                        "Invalid parameter, expected {\"txid\": hex, \"vout\": n}",
                    )),
                }
            })
            .collect::<Result<_, _>>()?,
        Some(v) => return Err(type_error(v, "array")),
    };
    let result = if unlock && list.is_empty() {
        s.wallet.unlock_all()
    } else if unlock {
        s.wallet.unlock(&list)
    } else {
        let coins = s.wallet_coins(&[], true, 0);
        if let Some(missing) = list
            .iter()
            .find(|o| !coins.iter().any(|c| c.outpoint == **o))
        {
            return Err(RpcError::new(
                code::INVALID_PARAMETER,
                format!(
                    "Invalid parameter, unknown transaction output {}:{}",
                    missing.txid, missing.vout
                ),
            ));
        }
        s.wallet.lock(&list)
    };
    result.map_err(|e| RpcError::new(code::WALLET_ERROR, e.to_string()))?;
    Ok(Value::Bool(true))
}

pub fn listlockunspent(s: &NodeState) -> R {
    Ok(Value::Array(
        s.wallet
            .locked()
            .iter()
            .map(|o| json!({"txid": o.txid.to_hex(), "vout": o.vout}))
            .collect(),
    ))
}

/// listunspent (minconf=1, maxconf=9999999, [addresses]).
pub fn listunspent(s: &NodeState, a: &Args) -> R {
    let fmt = s.chain.params.address_format();
    let minconf = a.int_or(0, 1)?.max(0) as u32;
    let maxconf = a.int_or(1, 9_999_999)?.max(0) as u32;
    let addrs = match a.get(2) {
        None => Vec::new(),
        Some(v) => address_list(&fmt, v)?,
    };
    let out: Vec<Value> = s
        .wallet_coins(&addrs, false, minconf)
        .into_iter()
        .filter(|c| c.confirmations <= maxconf)
        .map(|c| {
            let mut bag = AssetBag::new();
            super::convert::add_output(&mut bag, &c.output);
            let cansend = s.holds(&c.output.address, Permission::Global(GlobalPerm::Send));
            json!({
                "txid": c.outpoint.txid.to_hex(),
                "vout": c.outpoint.vout,
                "address": fmt.encode(&c.output.address),
                "account": "",
                "scriptPubKey": "",
                "amount": 0,
                "confirmations": c.confirmations,
                "cansend": cansend,
                "spendable": cansend,
                "assets": balances(s, &bag),
                "permissions": [],
            })
        })
        .collect();
    Ok(Value::Array(out))
}
