//! The command set: MultiChain's names, positional parameters, defaults and result shapes.

use super::args::{Args, address, address_list, number};
use super::build::{self, check_receiver, mempool_error, pick_sender};
use super::convert::{
    self, add_output, all_permissions, balances, find_asset, permission_for, tx_json,
};
use super::server::{RpcError, code};
use crate::chain::{ChainHandle, NodeState};
use crate::network::NetworkHandle;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::Arc;
use wattle_ledger::amount::{
    Rounding, format_quantity, multiple_from_smallest_unit, parse_quantity,
};
use wattle_ledger::exchange::AssetBag;
use wattle_ledger::permissions::{AssetPerm, GlobalPerm, NO_END, Permission};
use wattle_ledger::state::read;
use wattle_ledger::tx::{IssueAsset, NEW_ASSET, Op, Output, Transaction};
use wattle_ledger::{Address, Amount, Hash256, codec};

/// Everything a command needs.
#[derive(Clone)]
pub struct Rpc {
    pub chain: ChainHandle,
    pub net: NetworkHandle,
    pub shutdown: Arc<tokio::sync::Notify>,
    pub version: &'static str,
}

type R = Result<Value, RpcError>;

/// (name, minimum and maximum parameter count, help synopsis).
const COMMANDS: &[(&str, usize, usize, &str)] = &[
    (
        "getinfo",
        0,
        0,
        "getinfo\nReturns general information about this node and blockchain.",
    ),
    (
        "getblockchainparams",
        0,
        2,
        "getblockchainparams ( display-names with-upgrades )\nReturns a list of values of this blockchain's parameters.",
    ),
    (
        "getblockcount",
        0,
        0,
        "getblockcount\nReturns the number of blocks in the longest block chain.",
    ),
    (
        "getblockhash",
        1,
        1,
        "getblockhash index\nReturns hash of block in best-block-chain at index provided.",
    ),
    (
        "getblock",
        1,
        2,
        "getblock \"hash\"|height ( verbose )\nReturns information about the block with the given hash or height.",
    ),
    (
        "getpeerinfo",
        0,
        0,
        "getpeerinfo\nReturns data about each connected network node.",
    ),
    (
        "getmempoolinfo",
        0,
        0,
        "getmempoolinfo\nReturns details on the active state of the TX memory pool.",
    ),
    (
        "getrawtransaction",
        1,
        2,
        "getrawtransaction \"txid\" ( verbose )\nReturns raw transaction data.",
    ),
    (
        "sendrawtransaction",
        1,
        2,
        "sendrawtransaction \"hexstring\" ( allowhighfees )\nSubmits raw transaction (serialized, hex-encoded) to local node and network.",
    ),
    (
        "listaddresses",
        0,
        4,
        "listaddresses ( addresses verbose count start )\nReturns asset balances for specified address.",
    ),
    (
        "getaddresses",
        0,
        1,
        "getaddresses ( verbose )\nReturns the list of all addresses in the wallet.",
    ),
    (
        "getnewaddress",
        0,
        1,
        "getnewaddress\nReturns a new address for receiving payments.",
    ),
    (
        "grant",
        2,
        7,
        "grant \"address(es)\" \"permission(s)\" ( native-amount start-block end-block \"comment\" \"comment-to\" )\nGrant permission(s) to a given address.",
    ),
    (
        "grantfrom",
        3,
        8,
        "grantfrom \"from-address\" \"to-address(es)\" \"permission(s)\" ( native-amount start-block end-block \"comment\" \"comment-to\" )\nGrant permission using specific address.",
    ),
    (
        "revoke",
        2,
        5,
        "revoke \"address(es)\" \"permission(s)\" ( native-amount \"comment\" \"comment-to\" )\nRevoke permission from a given address.",
    ),
    (
        "revokefrom",
        3,
        6,
        "revokefrom \"from-address\" \"to-address(es)\" \"permission(s)\" ( native-amount \"comment\" \"comment-to\" )\nRevoke permissions using specific address.",
    ),
    (
        "listpermissions",
        0,
        3,
        "listpermissions ( \"permission(s)\" \"address(es)\" verbose )\nReturns list of addresses having one of the specified permissions.",
    ),
    (
        "issue",
        3,
        6,
        "issue \"address\" \"asset-name\"|asset-params quantity ( smallest-unit native-amount custom-fields )\nIssue new asset.",
    ),
    (
        "issuefrom",
        4,
        7,
        "issuefrom \"from-address\" \"to-address\" \"asset-name\"|asset-params quantity ( smallest-unit native-amount custom-fields )\nIssue asset using specific address.",
    ),
    (
        "issuemore",
        3,
        5,
        "issuemore \"address\" \"asset-identifier\" quantity ( native-amount custom-fields )\nCreate more units for asset.",
    ),
    (
        "issuemorefrom",
        4,
        6,
        "issuemorefrom \"from-address\" \"to-address\" \"asset-identifier\" quantity ( native-amount custom-fields )\nCreate more units for asset from specific address.",
    ),
    (
        "sendasset",
        3,
        6,
        "sendasset \"address\" \"asset-identifier\" asset-qty ( native-amount \"comment\" \"comment-to\" )\nSend an asset amount to a given address.",
    ),
    (
        "sendassettoaddress",
        3,
        6,
        "sendassettoaddress \"address\" \"asset-identifier\" asset-qty ( native-amount \"comment\" \"comment-to\" )\nSend an asset amount to a given address.",
    ),
    (
        "sendassetfrom",
        4,
        7,
        "sendassetfrom \"from-address\" \"to-address\" \"asset-identifier\" asset-qty ( native-amount \"comment\" \"comment-to\" )\nSend an asset amount using specific address.",
    ),
    (
        "getaddressbalances",
        1,
        3,
        "getaddressbalances \"address\" ( minconf includeLocked )\nReturns asset balances for specified address.",
    ),
    (
        "gettotalbalances",
        0,
        3,
        "gettotalbalances ( minconf includeWatchOnly includeLocked )\nReturns a list of all the asset balances in this node's wallet.",
    ),
    (
        "getmultibalances",
        0,
        5,
        "getmultibalances ( address(es) assets minconf includeWatchOnly includeLocked )\nReturns asset balances for specified address(es).",
    ),
    (
        "listassets",
        0,
        4,
        "listassets ( asset-identifier(s) verbose count start )\nReturns information about assets issued on the blockchain.",
    ),
    (
        "preparelockunspent",
        1,
        2,
        "preparelockunspent asset-quantities ( lock )\nPrepares an unspent transaction output (useful for building atomic exchange transactions) containing qty units of asset, to be used in createrawexchange or appendrawexchange.",
    ),
    (
        "preparelockunspentfrom",
        2,
        3,
        "preparelockunspentfrom \"from-address\" asset-quantities ( lock )\nPrepares an unspent transaction output using a specific address.",
    ),
    (
        "createrawexchange",
        3,
        3,
        "createrawexchange \"txid\" vout asset-quantities\nCreates new exchange transaction, which should be completed by appendrawexchange or completerawexchange.",
    ),
    (
        "appendrawexchange",
        4,
        4,
        "appendrawexchange \"hexstring\" \"txid\" vout asset-quantities\nAdds to exchange transaction.",
    ),
    (
        "completerawexchange",
        4,
        5,
        "completerawexchange \"hexstring\" \"txid\" vout asset-quantities ( data )\nCompletes existing exchange transaction.",
    ),
    (
        "decoderawexchange",
        1,
        2,
        "decoderawexchange \"hexstring\" ( verbose )\nReturns a JSON object describing the serialized exchange transaction.",
    ),
    (
        "disablerawtransaction",
        1,
        1,
        "disablerawtransaction \"hexstring\"\nDisables raw transaction by spending one of its inputs and sending it back to the wallet.",
    ),
    (
        "lockunspent",
        1,
        2,
        "lockunspent unlock [{\"txid\":\"txid\",\"vout\":n},...]\nUpdates list of temporarily unspendable outputs.",
    ),
    (
        "listlockunspent",
        0,
        0,
        "listlockunspent\nReturns list of temporarily unspendable outputs.",
    ),
    (
        "listunspent",
        0,
        3,
        "listunspent ( minconf maxconf [\"address\",...] )\nReturns array of unspent transaction outputs.",
    ),
    (
        "placeorder",
        6,
        6,
        "placeorder \"from-address\" \"side\" \"base-asset\" quantity \"quote-asset\" price\nPlaces an order in the on-chain order book of the market (base-asset, quote-asset), signed by from-address; returns the txid, which is the order id.\n\nArguments:\n1. \"from-address\"  (string, required) Wallet address that escrows what the order sells and receives its fills. Needs send and receive.\n2. \"side\"          (string, required) \"sell\" (sell the base for the quote) or \"buy\" (buy the base with the quote)\n3. \"base-asset\"    (string, required) Asset name, ref or issue txid of the base\n4. quantity        (numeric, required) Base quantity, in the base's display units\n5. \"quote-asset\"   (string, required) Asset name, ref or issue txid of the quote\n6. price           (numeric, required) Limit price: quote per one base, display units, at most 8 decimal places\n\nA sell order escrows quantity of the base; a buy order escrows quantity * price of the quote and is refunded what better prices save. Orders match inside block application, best price then oldest first, each fill at the resting order's price; partial fills leave the remainder resting. Quantities are exact: the quantity must be a whole number of the base's units and of the lots the units allow at that price (e.g. a base in 0.001 units at 105 of an indivisible quote trades in lots of 0.2 for 21), else error -8.\n\nResult:\n\"txid\"  (string) The order id",
    ),
    (
        "cancelorder",
        2,
        2,
        "cancelorder \"from-address\" \"order-id\"\nCancels an open order of from-address (its owner, in this wallet); what is left in escrow returns to it when the cancellation is confirmed. Returns the txid.\n\nArguments:\n1. \"from-address\"  (string, required) The order's owner\n2. \"order-id\"      (string, required) The txid that placed the order\n\nResult:\n\"txid\"  (string) The cancelling transaction",
    ),
    (
        "listorders",
        0,
        6,
        "listorders ( \"address(es)\" \"base-asset\" \"quote-asset\" \"status\" count start )\nReturns orders of the on-chain order book (confirmed state), in the order they were placed.\n\nArguments:\n1. \"address(es)\"   (string or array, optional, default=*) Owners: an address, a comma-separated list, an array, or * for all\n2. \"base-asset\"    (string, optional, default=*) Only orders trading this asset; quantities and prices are shown against it\n3. \"quote-asset\"   (string, optional, default=*) Only orders trading this asset\n4. \"status\"        (string, optional, default=open) open, filled, cancelled or all\n5. count           (numeric, optional, default=INT_MAX) The number of orders to display\n6. start           (numeric, optional, default=-count - last) Start from specific order, 0 based, if negative - from the end\n\nResult: [{\"id\", \"owner\", \"side\" (sell|buy the base), \"base\", \"quote\", \"price\" (quote per base), \"quantity\", \"remaining\", \"filled\" (base), \"status\", \"height\", \"time\" (placed), \"closedheight\", \"fills\"}]. Without a base asset, a sell order's base is what it sells and a buy order's what it buys.",
    ),
    (
        "getorder",
        1,
        1,
        "getorder \"order-id\"\nReturns one order as listorders shows it, with its fills under \"trades\" (as listtrades shows them).",
    ),
    (
        "getorderbook",
        2,
        3,
        "getorderbook \"base-asset\" \"quote-asset\" ( levels )\nReturns the depth of the on-chain order book per price level (confirmed state), best levels first.\n\nArguments:\n1. \"base-asset\"    (string, required) Asset name, ref or issue txid of the base\n2. \"quote-asset\"   (string, required) Asset name, ref or issue txid of the quote\n3. levels          (numeric, optional, default=20) Price levels per side\n\nResult: {\"base\", \"quote\", \"asks\": [{\"price\" (quote per base), \"quantity\" (base), \"value\" (quote), \"orders\"}] lowest price first, \"bids\": [...] highest price first}",
    ),
    (
        "listtrades",
        2,
        4,
        "listtrades \"base-asset\" \"quote-asset\" ( count start )\nReturns the fills of the on-chain order book in a market (confirmed state), oldest first.\n\nArguments:\n1. \"base-asset\"    (string, required) Asset name, ref or issue txid of the base\n2. \"quote-asset\"   (string, required) Asset name, ref or issue txid of the quote\n3. count           (numeric, optional, default=10) The number of trades to display\n4. start           (numeric, optional, default=-count - last) Start from specific trade, 0 based, if negative - from the end\n\nResult: [{\"txid\" (the transaction that traded), \"height\", \"time\", \"side\" (the incoming order's: buy or sell of the base), \"price\" (quote per base, the resting order's), \"quantity\" (base), \"value\" (quote), \"buyer\", \"seller\", \"maker\" (resting order id), \"taker\" (incoming order id)}]",
    ),
    (
        "help",
        0,
        1,
        "help ( \"command\" )\nList all commands, or get help for a specified command.",
    ),
    // MultiChain (Bitcoin 0.10) accepts and ignores a deprecated `detach` flag.
    ("stop", 0, 1, "stop\nStop the node."),
];

fn usage(name: &str) -> RpcError {
    let text = COMMANDS
        .iter()
        .find(|c| c.0 == name)
        .map(|c| c.3)
        .unwrap_or("");
    RpcError::new(code::MISC_ERROR, text)
}

/// The command named `method`, if `count` parameters suit it.
fn command(method: &str, count: usize) -> Result<&'static str, RpcError> {
    let Some(&(name, min, max, _)) = COMMANDS.iter().find(|c| c.0 == method) else {
        return Err(RpcError::new(code::METHOD_NOT_FOUND, "Method not found"));
    };
    if count < min || count > max {
        return Err(usage(name));
    }
    Ok(name)
}

/// The names of all commands.
pub fn command_names() -> impl Iterator<Item = &'static str> {
    COMMANDS.iter().map(|c| c.0)
}

/// Runs one command on the node state directly, as [`Rpc::dispatch`] does on the chain actor
/// (same name and count checks); `stop` and `getpeerinfo`, which need the running node, answer
/// "not supported". For fuzzing.
#[doc(hidden)]
pub fn dispatch_on_state(s: &mut NodeState, method: &str, params: &[Value], version: &str) -> R {
    match command(method, params.len())? {
        "help" => help(params),
        "stop" | "getpeerinfo" => Err(RpcError::new(code::NOT_SUPPORTED, "needs the running node")),
        name => run(s, name, params, version),
    }
}

impl Rpc {
    /// Runs one command.
    pub async fn dispatch(&self, method: String, params: Vec<Value>) -> R {
        let name = command(&method, params.len())?;
        match name {
            "help" => help(&params),
            "stop" => {
                self.shutdown.notify_one();
                Ok(Value::String("MultiChain server stopping".into()))
            }
            "getpeerinfo" => self.getpeerinfo().await,
            _ => {
                let version = self.version;
                self.chain
                    .call(move |s| run(s, name, &params, version))
                    .await
                    .map_err(|e| RpcError::new(code::MISC_ERROR, e.to_string()))?
            }
        }
    }

    async fn getpeerinfo(&self) -> R {
        let infos = self
            .net
            .peers()
            .await
            .map_err(|e| RpcError::new(code::MISC_ERROR, e.to_string()))?;
        let states = self
            .chain
            .call(|s| (s.peers.clone(), s.chain.params.address_format()))
            .await
            .map_err(|e| RpcError::new(code::MISC_ERROR, e.to_string()))?;
        let (peers, fmt) = states;
        let out: Vec<Value> = infos
            .iter()
            .enumerate()
            .map(|(i, info)| {
                let st = peers.get(&info.peer);
                json!({
                    "id": i + 1,
                    "addr": info.addr,
                    "peerid": info.peer.to_string(),
                    "handshake": fmt.encode(&info.address),
                    "inbound": info.inbound,
                    "permitted": info.permitted,
                    "conntime": st.map(|p| p.since.elapsed().as_secs()).unwrap_or(0),
                    "synced_blocks": st.and_then(|p| p.tip_height).map(|h| h as i64).unwrap_or(-1),
                })
            })
            .collect();
        Ok(Value::Array(out))
    }
}

fn help(params: &[Value]) -> R {
    match params.first() {
        Some(Value::String(c)) => match COMMANDS.iter().find(|x| x.0 == c) {
            Some(x) => Ok(Value::String(x.3.to_string())),
            None => Ok(Value::String(format!("help: unknown command: {c}"))),
        },
        _ => Ok(Value::String(
            COMMANDS
                .iter()
                .map(|c| c.3.lines().next().unwrap_or(""))
                .collect::<Vec<_>>()
                .join("\n"),
        )),
    }
}

fn run(s: &mut NodeState, name: &str, params: &[Value], version: &str) -> R {
    let a = Args::new(params);
    match name {
        "getinfo" => getinfo(s, version),
        "getblockchainparams" => {
            let display_names = a.bool_or(0, true)?;
            a.bool_or(1, true)?;
            let v = crate::params_file::to_json(&s.chain.params, &s.chain.id);
            match v {
                // Internal names drop the hyphens (`targetblocktime`).
                Value::Object(m) if !display_names => Ok(Value::Object(
                    m.into_iter()
                        .map(|(k, v)| (k.replace('-', ""), v))
                        .collect(),
                )),
                v => Ok(v),
            }
        }
        "getblockcount" => Ok(json!(s.height())),
        "getblockhash" => getblockhash(s, &a),
        "getblock" => getblock(s, &a),
        "getmempoolinfo" => Ok(json!({"size": s.mempool.len(), "bytes": s.mempool.bytes()})),
        "getrawtransaction" => getrawtransaction(s, &a),
        "sendrawtransaction" => sendrawtransaction(s, &a),
        "listaddresses" => listaddresses(s, &a),
        "getaddresses" => {
            let fmt = s.chain.params.address_format();
            Ok(json!(
                s.wallet
                    .addresses()
                    .iter()
                    .map(|x| fmt.encode(x))
                    .collect::<Vec<_>>()
            ))
        }
        "getnewaddress" => {
            let addr = s
                .wallet
                .new_address()
                .map_err(|e| RpcError::new(code::WALLET_ERROR, e.to_string()))?;
            Ok(Value::String(s.chain.params.address_format().encode(&addr)))
        }
        "grant" => grant(s, None, a.str(0)?, a.str(1)?, &a, 2, true),
        "grantfrom" => {
            let from = address(&s.chain.params.address_format(), a.str(0)?)?;
            grant(s, Some(from), a.str(1)?, a.str(2)?, &a, 3, true)
        }
        "revoke" => grant(s, None, a.str(0)?, a.str(1)?, &a, 2, false),
        "revokefrom" => {
            let from = address(&s.chain.params.address_format(), a.str(0)?)?;
            grant(s, Some(from), a.str(1)?, a.str(2)?, &a, 3, false)
        }
        "listpermissions" => listpermissions(s, &a),
        "issue" => issue(s, None, &a, 0),
        "issuefrom" => {
            let from = address(&s.chain.params.address_format(), a.str(0)?)?;
            issue(s, Some(from), &a, 1)
        }
        "issuemore" => issuemore(s, None, &a, 0),
        "issuemorefrom" => {
            let from = address(&s.chain.params.address_format(), a.str(0)?)?;
            issuemore(s, Some(from), &a, 1)
        }
        "sendasset" | "sendassettoaddress" => sendasset(s, None, &a, 0),
        "sendassetfrom" => {
            let from = address(&s.chain.params.address_format(), a.str(0)?)?;
            sendasset(s, Some(from), &a, 1)
        }
        "getaddressbalances" => getaddressbalances(s, &a),
        "gettotalbalances" => {
            let minconf = a.int_or(0, 1)?.max(0) as u32;
            let locked = a.bool_or(2, false)?;
            Ok(wallet_balances(s, &[], minconf, locked))
        }
        "getmultibalances" => getmultibalances(s, &a),
        "listassets" => listassets(s, &a),
        "preparelockunspent" => super::exchange::preparelockunspent(s, None, &a, 0),
        "preparelockunspentfrom" => {
            let from = a.str(0)?.to_string();
            super::exchange::preparelockunspent(s, Some(&from), &a, 1)
        }
        "createrawexchange" => super::exchange::createrawexchange(s, &a),
        "appendrawexchange" => super::exchange::appendrawexchange(s, &a),
        "completerawexchange" => super::exchange::completerawexchange(s, &a),
        "decoderawexchange" => super::exchange::decoderawexchange(s, &a),
        "disablerawtransaction" => super::exchange::disablerawtransaction(s, &a),
        "lockunspent" => super::exchange::lockunspent(s, &a),
        "listlockunspent" => super::exchange::listlockunspent(s),
        "listunspent" => super::exchange::listunspent(s, &a),
        "placeorder" => super::orders::placeorder(s, &a),
        "cancelorder" => super::orders::cancelorder(s, &a),
        "listorders" => super::orders::listorders(s, &a),
        "getorder" => super::orders::getorder(s, &a),
        "getorderbook" => super::orders::getorderbook(s, &a),
        "listtrades" => super::orders::listtrades(s, &a),
        _ => Err(RpcError::new(code::METHOD_NOT_FOUND, "Method not found")),
    }
}

/// MultiChain's `count` / `start` paging with the parameters at `at` and `at + 1`
/// ([`Args::window`]; count defaults to all).
fn page<T>(items: Vec<T>, a: &Args, at: usize) -> Result<Vec<T>, RpcError> {
    let range = a.window(at, i32::MAX as i64, items.len())?;
    Ok(items
        .into_iter()
        .skip(range.start)
        .take(range.len())
        .collect())
}

fn getinfo(s: &NodeState, version: &str) -> R {
    let fmt = s.chain.params.address_format();
    let p = &s.chain.params;
    Ok(json!({
        "version": version,
        "nodeversion": 10000,
        "edition": "Wattle",
        "protocolversion": p.protocol_version,
        "chainname": p.chain_name,
        "description": p.chain_description,
        "protocol": "multichain",
        "port": s.info.port,
        "setupblocks": p.setup_first_blocks,
        "nodeaddress": format!("{}@{}:{}", p.chain_name, s.info.external_ip, s.info.port),
        "burnaddress": fmt.encode(&Address([0; 20])),
        "incomingpaused": false,
        "miningpaused": false,
        "offchainpaused": false,
        "walletversion": 60000,
        "balance": 0,
        "walletdbversion": 3,
        "reindex": false,
        "blocks": s.height(),
        "chainrewards": 0,
        "streams": 0,
        "timeoffset": 0,
        "connections": s.peers.len(),
        "proxy": "",
        "difficulty": 0,
        "testnet": false,
        "keypoololdest": 0,
        "keypoolsize": 0,
        "paytxfee": 0,
        "relayfee": 0,
        "errors": ""
    }))
}

fn getblockhash(s: &NodeState, a: &Args) -> R {
    let h = a.int_or(0, -1)?;
    if h < 0 || h > s.height() as i64 {
        return Err(RpcError::new(
            code::INVALID_PARAMETER,
            "Block height out of range",
        ));
    }
    match s.store.main_id_at(h as u32) {
        Ok(Some(id)) => Ok(Value::String(id.to_hex())),
        _ => Err(RpcError::new(
            code::INVALID_PARAMETER,
            "Block height out of range",
        )),
    }
}

fn getblock(s: &NodeState, a: &Args) -> R {
    let not_found = || RpcError::new(code::BLOCK_NOT_FOUND, "Block not found");
    let (height, block) = match a.get(0) {
        Some(Value::Number(n)) => {
            let h = n
                .as_u64()
                .filter(|h| *h <= s.height() as u64)
                .ok_or_else(|| {
                    RpcError::new(code::INVALID_PARAMETER, "Block height out of range")
                })? as u32;
            (
                h,
                s.store
                    .block_at_height(h)
                    .ok()
                    .flatten()
                    .ok_or_else(not_found)?,
            )
        }
        Some(Value::String(text)) => {
            if let Ok(h) = text.parse::<u32>()
                && text.len() < 64
            {
                (
                    h,
                    s.store
                        .block_at_height(h)
                        .ok()
                        .flatten()
                        .ok_or_else(not_found)?,
                )
            } else {
                let id = Hash256::from_hex(text).map_err(|_| not_found())?;
                s.store
                    .block_by_id(&id)
                    .ok()
                    .flatten()
                    .ok_or_else(not_found)?
            }
        }
        Some(v) => return Err(super::args::type_error(v, "str")),
        None => return Err(usage("getblock")),
    };
    let verbose = match a.get(1) {
        None => 1,
        Some(Value::Bool(b)) => *b as i64,
        Some(Value::Number(n)) => n.as_i64().unwrap_or(1),
        Some(v) => return Err(super::args::type_error(v, "int")),
    };
    if verbose == 0 {
        return Ok(Value::String(hex::encode(block.encode())));
    }
    let id = block.header.id(&s.chain.id);
    let on_main = s.store.main_id_at(height).ok().flatten() == Some(id);
    let fmt = s.chain.params.address_format();
    let txs: Vec<Value> = if verbose >= 2 {
        block
            .txs
            .iter()
            .map(|t| tx_json(s, t, Some((height, id, block.header.timestamp_ms))))
            .collect()
    } else {
        block
            .txs
            .iter()
            .map(|t| Value::String(t.txid().to_hex()))
            .collect()
    };
    let mut obj = json!({
        "hash": id.to_hex(),
        "miner": fmt.encode(&block.header.miner.address()),
        "confirmations": if on_main { (s.height() - height + 1) as i64 } else { -1 },
        "size": block.encode().len(),
        "height": height,
        "version": block.header.version,
        "merkleroot": block.header.merkle_root.to_hex(),
        "tx": txs,
        "time": block.header.timestamp_ms / 1000,
        "timems": block.header.timestamp_ms,
        "nonce": 0,
        "difficulty": 0,
    });
    if height > 0 {
        obj["previousblockhash"] = Value::String(block.header.prev.to_hex());
    }
    if on_main && let Ok(Some(next)) = s.store.main_id_at(height + 1) {
        obj["nextblockhash"] = Value::String(next.to_hex());
    }
    Ok(obj)
}

fn getrawtransaction(s: &NodeState, a: &Args) -> R {
    let txid = Hash256::from_hex(a.str(0)?).map_err(|_| {
        RpcError::new(
            code::INVALID_PARAMETER,
            "parameter 1 must be hexadecimal string",
        )
    })?;
    let verbose = a.bool_or(1, false)?;
    let none = || {
        RpcError::new(
            code::INVALID_ADDRESS_OR_KEY,
            "No information available about transaction",
        )
    };
    let (tx, block) = if let Some(tx) = s.mempool.get(&txid) {
        (tx.clone(), None)
    } else {
        let (h, i) = s.store.tx_location(&txid).ok().flatten().ok_or_else(none)?;
        let b = s.store.block_at_height(h).ok().flatten().ok_or_else(none)?;
        let tx = b.txs.get(i as usize).cloned().ok_or_else(none)?;
        (
            tx,
            Some((h, b.header.id(&s.chain.id), b.header.timestamp_ms)),
        )
    };
    if !verbose {
        return Ok(Value::String(tx.to_hex()));
    }
    Ok(tx_json(s, &tx, block))
}

fn sendrawtransaction(s: &mut NodeState, a: &Args) -> R {
    let tx: Transaction = codec::decode_hex(a.str(0)?)
        .map_err(|_| RpcError::new(code::DESERIALIZATION_ERROR, "TX decode failed"))?;
    let txid = tx.txid();
    // A confirmed transaction cannot enter the pool (its inputs are spent), so the index is
    // only looked up to explain a refusal: one store read fewer for every accepted one.
    if let Err(e) = s.submit(tx, true) {
        if s.store.tx_location(&txid).ok().flatten().is_some() {
            return Err(RpcError::new(
                code::VERIFY_ALREADY_IN_CHAIN,
                "transaction already in block chain",
            ));
        }
        return Err(mempool_error(e));
    }
    Ok(Value::String(txid.to_hex()))
}

fn listaddresses(s: &NodeState, a: &Args) -> R {
    let fmt = s.chain.params.address_format();
    let mine = s.wallet.addresses();
    let wanted: Vec<Address> = match a.get(0) {
        None => mine.clone(),
        Some(Value::String(x)) if x == "*" => mine.clone(),
        Some(v) => address_list(&fmt, v)?,
    };
    let verbose = a.bool_or(1, false)?;
    let out: Vec<Value> = page(wanted, a, 2)?
        .iter()
        .map(|addr| {
            let ismine = mine.contains(addr);
            if verbose {
                json!({"address": fmt.encode(addr), "ismine": ismine, "iswatchonly": false, "isscript": false, "pubkey": s.wallet.key_for(addr).map(|k| hex::encode(k.public().0)), "account": "", "synchronized": true})
            } else {
                json!({"address": fmt.encode(addr), "ismine": ismine})
            }
        })
        .collect();
    Ok(Value::Array(out))
}

/// grant / grantfrom / revoke / revokefrom.
fn grant(
    s: &mut NodeState,
    from: Option<Address>,
    to: &str,
    perms: &str,
    a: &Args,
    next: usize,
    is_grant: bool,
) -> R {
    let fmt = s.chain.params.address_format();
    let targets = address_list(&fmt, &Value::String(to.to_string()))?;
    let permissions = convert::permissions(s, perms)?;
    a.native_zero(next)?;
    let (start, end) = if is_grant {
        let start = a.int_or(next + 1, 0)?;
        let end = a.int_or(next + 2, -1)?;
        let end = if end < 0 { NO_END as i64 } else { end };
        if start < 0 || start > u32::MAX as i64 || end > u32::MAX as i64 || start >= end {
            return Err(RpcError::new(
                code::INVALID_PARAMETER,
                "Invalid start or end block",
            ));
        }
        (start as u32, end as u32)
    } else {
        (0, 0)
    };
    // Authority needed: admin for everything; activate also for connect/send/receive; ASSET.admin
    // for per-asset permissions.
    let needs: Vec<Vec<Permission>> = permissions
        .iter()
        .map(|p| wattle_ledger::validate::authorities_for(*p))
        .collect();
    let needs_refs: Vec<&[Permission]> = needs.iter().map(Vec::as_slice).collect();
    let asset_perm = permissions
        .iter()
        .any(|p| matches!(p, Permission::Asset(..)));
    let what = if asset_perm {
        "admin permission for this entity".to_string()
    } else if permissions
        .iter()
        .all(|p| matches!(p, Permission::Global(g) if g.activate_may_grant()))
    {
        "activate or admin".to_string()
    } else {
        "admin".to_string()
    };
    let from = match from {
        Some(f) => {
            build::key_of(s, &f)?;
            if !needs_refs
                .iter()
                .all(|any| any.iter().any(|p| s.holds(&f, *p)))
            {
                let what = what.trim_end_matches(" permission for this entity");
                let suffix = if asset_perm {
                    " permission for this entity"
                } else {
                    " permission"
                };
                return Err(RpcError::new(
                    code::INSUFFICIENT_PERMISSIONS,
                    format!("from-address doesn't have {what}{suffix}"),
                ));
            }
            f
        }
        None => pick_sender(
            s,
            &needs_refs,
            what.trim_end_matches(" permission for this entity"),
        )
        .map_err(|e| {
            if asset_perm {
                RpcError::new(
                    e.code,
                    "This wallet doesn't have addresses with admin permission for this entity",
                )
            } else {
                e
            }
        })?,
    };
    let mut outputs = Vec::new();
    let mut ops = Vec::new();
    for (i, t) in targets.iter().enumerate() {
        outputs.push(Output {
            address: *t,
            assets: vec![],
        });
        let vout = i as u32;
        ops.push(if is_grant {
            Op::Grant {
                vout,
                permissions: permissions.clone(),
                start,
                end,
            }
        } else {
            Op::Revoke {
                vout,
                permissions: permissions.clone(),
            }
        });
    }
    let txid = build::send(s, &from, outputs, &[], ops)?;
    Ok(Value::String(txid.to_hex()))
}

fn listpermissions(s: &NodeState, a: &Args) -> R {
    let fmt = s.chain.params.address_format();
    let filter: Option<Vec<Permission>> = match a.opt_str(0)? {
        None | Some("*") | Some("all") => None,
        Some(text) => Some(convert::permissions(s, text)?),
    };
    let addresses: Option<Vec<Address>> = match a.get(1) {
        None => None,
        Some(Value::String(x)) if x == "*" => None,
        Some(v) => Some(address_list(&fmt, v)?),
    };
    let verbose = a.bool_or(2, false)?;
    let height = s.height() + 1;
    let mut out = Vec::new();
    for (addr, perm, rec) in all_permissions(s) {
        if filter.as_ref().is_some_and(|f| !f.contains(&perm))
            || addresses.as_ref().is_some_and(|l| !l.contains(&addr))
        {
            continue;
        }
        // Revoked ranges and ranges that ended are not listed (future ones are).
        if rec.end <= rec.start || rec.end <= height.saturating_sub(1) {
            continue;
        }
        let (for_, kind) = permission_for(s, &perm);
        let mut e = json!({"address": fmt.encode(&addr), "for": for_, "type": kind, "startblock": rec.start, "endblock": rec.end});
        if verbose {
            e["admins"] = json!(rec.admins.iter().map(|x| fmt.encode(x)).collect::<Vec<_>>());
            e["pending"] = pending_votes(s, &addr, &perm);
        }
        out.push(e);
    }
    if verbose {
        // Admin-consensus changes still waiting for votes, for addresses with no record yet.
        let listed: Vec<(String, String)> = out
            .iter()
            .map(|e| (e["address"].to_string(), e["type"].to_string()))
            .collect();
        for (k, _) in s.store.scan(crate::store::kind::VOTES).unwrap_or_default() {
            let wattle_ledger::state::StateKey::Votes(addr, g) = k else {
                continue;
            };
            let perm = Permission::Global(g);
            let e_addr = Value::String(fmt.encode(&addr)).to_string();
            let e_type = Value::String(g.name().to_string()).to_string();
            if filter.as_ref().is_some_and(|f| !f.contains(&perm))
                || addresses.as_ref().is_some_and(|l| !l.contains(&addr))
                || listed.contains(&(e_addr, e_type))
            {
                continue;
            }
            out.push(json!({"address": fmt.encode(&addr), "for": null, "type": g.name(), "startblock": 0, "endblock": 0, "admins": [], "pending": pending_votes(s, &addr, &perm)}));
        }
    }
    Ok(Value::Array(out))
}

fn pending_votes(s: &NodeState, addr: &Address, perm: &Permission) -> Value {
    let fmt = s.chain.params.address_format();
    let Permission::Global(g) = perm else {
        return json!([]);
    };
    let votes = read::votes(&*s.store, addr, g)
        .ok()
        .flatten()
        .unwrap_or_default();
    let mut by_range: BTreeMap<(u32, u32), Vec<String>> = BTreeMap::new();
    for v in votes {
        by_range
            .entry((v.start, v.end))
            .or_default()
            .push(fmt.encode(&v.admin));
    }
    // How many agreeing admins the change needs (MultiChain's `required`), counted among the
    // addresses holding admin for the next block.
    let next = s.height() + 1;
    let admin = Permission::Global(GlobalPerm::Admin);
    let admins_now = read::holders(&*s.store, &GlobalPerm::Admin)
        .ok()
        .flatten()
        .unwrap_or_default()
        .iter()
        .filter(|a| {
            read::perm(&*s.store, a, &admin)
                .ok()
                .flatten()
                .is_some_and(|r| r.holds_at(next))
        })
        .count() as u32;
    let required =
        wattle_ledger::permissions::required_admins(admins_now, s.chain.consensus_fraction(*g));
    json!(by_range.into_iter().map(|((start, end), admins)| json!({"startblock": start, "endblock": end, "admins": admins, "required": required})).collect::<Vec<_>>())
}

fn custom_fields(a: &Args, i: usize) -> Result<BTreeMap<String, String>, RpcError> {
    let mut out = BTreeMap::new();
    if let Some(map) = a.object(i)? {
        for (k, v) in map {
            let text = match v {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            out.insert(k.clone(), text);
        }
    }
    if wattle_ledger::codec::encoded_len(&out) > wattle_ledger::validate::MAX_FIELDS_BYTES {
        return Err(RpcError::new(
            code::INVALID_PARAMETER,
            "Invalid custom fields or asset name, too long",
        ));
    }
    Ok(out)
}

/// issue (address, name|params, qty, units=1, native, fields) / issuefrom (from, to, ...).
fn issue(s: &mut NodeState, from: Option<Address>, a: &Args, base: usize) -> R {
    let fmt = s.chain.params.address_format();
    let to = address(&fmt, a.str(base)?)?;
    let (name, open) = match a.get(base + 1) {
        Some(Value::String(n)) => (n.clone(), false),
        Some(Value::Object(m)) => {
            let mut name = String::new();
            let mut open = false;
            for (k, v) in m {
                match (k.as_str(), v) {
                    ("name", Value::String(n)) => name = n.clone(),
                    ("name", v) => return Err(super::args::type_error(v, "str")),
                    ("open", Value::Bool(b)) => open = *b,
                    ("open", _) => {
                        return Err(RpcError::new(
                            code::INVALID_PARAMETER,
                            "Invalid open flag, should be boolean",
                        ));
                    }
                    (other, _) => {
                        return Err(RpcError::new(
                            code::NOT_SUPPORTED,
                            format!("Invalid field: {other}"),
                        ));
                    }
                }
            }
            (name, open)
        }
        Some(v) => return Err(super::args::type_error(v, "str")),
        None => return Err(usage(if base == 0 { "issue" } else { "issuefrom" })),
    };
    let units = match a.get(base + 3) {
        None => "1".to_string(),
        Some(Value::Number(n)) => n.to_string(),
        Some(v) => return Err(super::args::type_error(v, "real")),
    };
    let multiple = multiple_from_smallest_unit(&units).map_err(|_| RpcError::new(code::INVALID_PARAMETER, "Invalid smallest unit, should be between 0.00000001 and 1, 1/smallest-unit should be a divisor of 100000000"))?;
    let qty_text = a.quantity(base + 2)?;
    if qty_text.starts_with('-') {
        return Err(RpcError::new(
            code::INVALID_PARAMETER,
            "Invalid quantity, should be non-negative",
        ));
    }
    let quantity = parse_quantity(&qty_text, multiple, Rounding::Exact).map_err(|e| match e {
        wattle_ledger::amount::QuantityError::NotMultiple => RpcError::new(
            code::INVALID_PARAMETER,
            "Quantity should be divisible by smallest unit.",
        ),
        other => RpcError::new(
            code::INVALID_PARAMETER,
            format!("Invalid quantity: {other}"),
        ),
    })?;
    a.native_zero(base + 4)?;
    let fields = custom_fields(a, base + 5)?;
    wattle_ledger::validate::check_asset_name(&name).map_err(|e| match e {
        wattle_ledger::error::TxError::FieldsTooLarge => RpcError::new(
            code::INVALID_PARAMETER,
            "Invalid custom fields or asset name, too long",
        ),
        other => RpcError::new(
            code::INVALID_PARAMETER,
            format!("Invalid asset name: {other}"),
        ),
    })?;
    if convert::find_asset(s, &name).is_ok() {
        return Err(RpcError::new(
            code::DUPLICATE_NAME,
            "Entity with this name already exists",
        ));
    }
    check_receiver(s, &to)?;
    let issue_perm = Permission::Global(GlobalPerm::Issue);
    let from = match from {
        Some(f) => {
            build::key_of(s, &f)?;
            if !s.holds(&f, issue_perm) {
                return Err(RpcError::new(
                    code::INSUFFICIENT_PERMISSIONS,
                    "from-address doesn't have issue permission",
                ));
            }
            f
        }
        None => pick_sender(s, &[&[issue_perm]], "issue").map_err(|e| {
            RpcError::new(
                e.code,
                "This wallet doesn't have keys with issue permission",
            )
        })?,
    };
    let op = Op::IssueAsset(IssueAsset {
        name,
        open,
        multiple,
        quantity,
        fields,
    });
    let first = if quantity.is_zero() {
        vec![]
    } else {
        vec![Output::new(to, [(NEW_ASSET, quantity)])]
    };
    let txid = build::send(s, &from, first, &[], vec![op])?;
    Ok(Value::String(txid.to_hex()))
}

/// issuemore (address, asset, qty, native, fields) / issuemorefrom (from, to, ...).
fn issuemore(s: &mut NodeState, from: Option<Address>, a: &Args, base: usize) -> R {
    let fmt = s.chain.params.address_format();
    let to = address(&fmt, a.str(base)?)?;
    let info = find_asset(s, a.str(base + 1)?)?;
    let qty_text = a.quantity(base + 2)?;
    if qty_text.starts_with('-') {
        return Err(RpcError::new(
            code::INVALID_PARAMETER,
            "Invalid quantity, should be non-negative",
        ));
    }
    let quantity =
        parse_quantity(&qty_text, info.multiple, Rounding::Exact).map_err(|e| match e {
            wattle_ledger::amount::QuantityError::NotMultiple => RpcError::new(
                code::INVALID_PARAMETER,
                "Quantity should be divisible by smallest unit.",
            ),
            other => RpcError::new(
                code::INVALID_PARAMETER,
                format!("Invalid quantity: {other}"),
            ),
        })?;
    a.native_zero(base + 3)?;
    let fields = custom_fields(a, base + 4)?;
    if !info.open {
        return Err(RpcError::new(
            code::NOT_ALLOWED,
            format!(
                "Issuing more units not allowed for this asset: {}",
                info.name
            ),
        ));
    }
    check_receiver(s, &to)?;
    let perm = Permission::Asset(info.id, AssetPerm::Issue);
    let from = match from {
        Some(f) => {
            build::key_of(s, &f)?;
            if !s.holds(&f, perm) {
                return Err(RpcError::new(
                    code::INSUFFICIENT_PERMISSIONS,
                    "Issuing more units for this asset is not allowed from this address",
                ));
            }
            f
        }
        None => pick_sender(s, &[&[perm]], "issue").map_err(|e| {
            RpcError::new(
                e.code,
                "Issuing more units for this asset is not allowed from this wallet",
            )
        })?,
    };
    if info.total.checked_add(quantity).is_err() {
        return Err(RpcError::new(
            code::INVALID_PARAMETER,
            "Total asset quantity would exceed 2^63-1",
        ));
    }
    let op = Op::IssueMore {
        asset: info.id,
        quantity,
        fields,
    };
    let first = if quantity.is_zero() {
        vec![]
    } else {
        vec![Output::new(to, [(info.id, quantity)])]
    };
    let txid = build::send(s, &from, first, &[], vec![op])?;
    Ok(Value::String(txid.to_hex()))
}

/// sendasset (address, asset, qty, ...) / sendassetfrom (from, to, asset, qty, ...).
fn sendasset(s: &mut NodeState, from: Option<Address>, a: &Args, base: usize) -> R {
    let fmt = s.chain.params.address_format();
    let to = address(&fmt, a.str(base)?)?;
    let info = find_asset(s, a.str(base + 1)?)?;
    let qty_text = a.quantity(base + 2)?;
    if qty_text.starts_with('-') {
        return Err(RpcError::new(
            code::INVALID_PARAMETER,
            "Invalid quantity, should be non-negative",
        ));
    }
    let qty = parse_quantity(&qty_text, info.multiple, Rounding::Transfer)
        .map_err(|e| RpcError::new(code::INVALID_PARAMETER, format!("Invalid quantity: {e}")))?;
    if qty.is_zero() {
        return Err(RpcError::new(
            code::INVALID_PARAMETER,
            "Invalid quantity, should be positive",
        ));
    }
    a.native_zero(base + 3)?;
    check_receiver(s, &to)?;
    let from = match from {
        Some(f) => f,
        None => {
            // The first wallet address with send that holds enough of the asset.
            let candidates: Vec<Address> = s
                .wallet
                .addresses()
                .into_iter()
                .filter(|x| s.holds(x, Permission::Global(GlobalPerm::Send)))
                .collect();
            if candidates.is_empty() {
                return Err(RpcError::new(
                    code::INSUFFICIENT_PERMISSIONS,
                    "This wallet doesn't have keys with send permission",
                ));
            }
            candidates
                .iter()
                .copied()
                .find(|x| {
                    let mut bag = AssetBag::new();
                    for c in s.wallet_coins(&[*x], false, 0) {
                        add_output(&mut bag, &c.output);
                    }
                    bag.get(&info.id).copied().unwrap_or_default() >= qty
                })
                .ok_or_else(|| {
                    // MultiChain: when the only outputs with the asset sit at addresses that
                    // may not send, -704 instead of -6.
                    let has = |x: &Address| {
                        s.wallet_coins(&[*x], false, 0)
                            .iter()
                            .any(|c| c.output.assets.iter().any(|(id, _)| *id == info.id))
                    };
                    let only_elsewhere = !candidates.iter().any(has)
                        && s.wallet.addresses().iter().any(|x| !candidates.contains(x) && has(x));
                    if only_elsewhere {
                        RpcError::new(
                            code::INSUFFICIENT_PERMISSIONS,
                            "Insufficient funds, but there are unspent outputs belonging to addresses without send or receive permission.",
                        )
                    } else {
                        RpcError::new(code::WALLET_INSUFFICIENT_FUNDS, "Insufficient funds")
                    }
                })?
        }
    };
    let txid = build::send(s, &from, vec![], &[(to, info.id, qty)], vec![])?;
    Ok(Value::String(txid.to_hex()))
}

fn wallet_balances(
    s: &NodeState,
    addresses: &[Address],
    minconf: u32,
    include_locked: bool,
) -> Value {
    let mut bag = AssetBag::new();
    for c in s.wallet_coins(addresses, include_locked, minconf) {
        add_output(&mut bag, &c.output);
    }
    balances(s, &bag)
}

fn getaddressbalances(s: &NodeState, a: &Args) -> R {
    let addr = address(&s.chain.params.address_format(), a.str(0)?)?;
    let minconf = a.int_or(1, 1)?.max(0) as u32;
    let locked = a.bool_or(2, false)?;
    // Any address, not only the wallet's: balances come from the coin set.
    Ok(wallet_balances(s, &[addr], minconf, locked))
}

fn getmultibalances(s: &NodeState, a: &Args) -> R {
    let fmt = s.chain.params.address_format();
    let addrs: Vec<Address> = match a.get(0) {
        None => s.wallet.addresses(),
        Some(Value::String(x)) if x == "*" => s.wallet.addresses(),
        Some(v) => address_list(&fmt, v)?,
    };
    let assets = asset_filter(s, a.get(1))?;
    let minconf = a.int_or(2, 1)?.max(0) as u32;
    let locked = a.bool_or(4, false)?;
    let mut out = serde_json::Map::new();
    let mut total = AssetBag::new();
    for addr in &addrs {
        let mut bag = AssetBag::new();
        for c in s.wallet_coins(&[*addr], locked, minconf) {
            add_output(&mut bag, &c.output);
        }
        if let Some(keep) = &assets {
            bag.retain(|id, _| keep.contains(id));
        }
        for (id, q) in &bag {
            let slot = total.entry(*id).or_insert(Amount::ZERO);
            *slot = slot.checked_add(*q).unwrap_or(Amount::MAX);
        }
        out.insert(fmt.encode(addr), balances(s, &bag));
    }
    out.insert("total".into(), balances(s, &total));
    Ok(Value::Object(out))
}

/// An asset-identifier parameter: absent or `"*"` (all), one identifier, or an array of them.
fn asset_filter(
    s: &NodeState,
    v: Option<&Value>,
) -> Result<Option<Vec<wattle_ledger::AssetId>>, RpcError> {
    match v {
        None => Ok(None),
        Some(Value::String(x)) if x == "*" => Ok(None),
        Some(Value::String(x)) => Ok(Some(vec![find_asset(s, x)?.id])),
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| {
                v.as_str()
                    .ok_or_else(|| super::args::type_error(v, "str"))
                    .and_then(|n| find_asset(s, n).map(|i| i.id))
            })
            .collect::<Result<_, _>>()
            .map(Some),
        Some(v) => Err(super::args::type_error(v, "str")),
    }
}

fn listassets(s: &NodeState, a: &Args) -> R {
    let wanted = asset_filter(s, a.get(0))?;
    let verbose = a.bool_or(1, false)?;
    // Issues still in the mempool are listed too, with a null assetref (MultiChain).
    let mut infos = convert::all_assets(s);
    let view = s.mempool.view(&*s.store);
    for tx in s.mempool.transactions() {
        if matches!(tx.issue_op(), Some(Op::IssueAsset(_)))
            && let Ok(Some(info)) = read::asset(&view, &tx.txid())
            && !infos.iter().any(|i| i.id == info.id)
        {
            infos.push(info);
        }
    }
    let mut out = Vec::new();
    for info in infos {
        if wanted.as_ref().is_some_and(|w| !w.contains(&info.id)) {
            continue;
        }
        let units = format_quantity(Amount::new(1).unwrap_or_default(), info.multiple);
        let mut e = json!({
            "name": info.name,
            "issuetxid": info.id.to_hex(),
            "assetref": if s.store.tx_location(&info.id).ok().flatten().is_some() {
                Value::String(info.assetref())
            } else {
                Value::Null
            },
            "multiple": info.multiple,
            "units": number(&units),
            "open": info.open,
            "restrict": {"send": false, "receive": false, "issue": true},
            "fungible": true,
            "canopen": false,
            "canclose": false,
            "totallimit": null,
            "issuelimit": null,
            "details": info.fields,
            "issuecount": info.issue_count,
            "issueqty": number(&format_quantity(info.total, info.multiple)),
            "issueraw": info.total.raw(),
            "subscribed": false,
        });
        if verbose {
            let fmt = s.chain.params.address_format();
            let issues: Vec<Value> = (0..info.issue_count)
                .filter_map(|n| read::asset_issue(&view, &info.id, &n).ok().flatten())
                .map(|r| json!({"txid": r.txid.to_hex(), "qty": number(&format_quantity(r.quantity, info.multiple)), "raw": r.quantity.raw(), "details": r.fields, "issuers": r.issuers.iter().map(|x| fmt.encode(x)).collect::<Vec<_>>()}))
                .collect();
            e["issues"] = Value::Array(issues);
        }
        out.push(e);
    }
    Ok(Value::Array(page(out, a, 2)?))
}
