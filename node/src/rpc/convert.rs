//! Conversions between ledger objects and MultiChain's JSON shapes: permissions, asset
//! identifiers, asset-quantity objects, balances, transactions and blocks.

use super::args::{number, type_error};
use super::server::{RpcError, code};
use crate::chain::NodeState;
use serde_json::{Map, Value, json};
use wattle_ledger::amount::{Rounding, format_quantity, parse_quantity};
use wattle_ledger::exchange::AssetBag;
use wattle_ledger::permissions::{AssetPerm, GlobalPerm, Permission};
use wattle_ledger::state::{AssetInfo, StateKey, StateValue, read};
use wattle_ledger::tx::{AssetId, Op, Output, Transaction};
use wattle_ledger::{Amount, Hash256};

/// Looks an asset up by name, asset reference `H-O-P` or issue txid.
pub fn find_asset(s: &NodeState, ident: &str) -> Result<AssetInfo, RpcError> {
    let view = s.mempool.view(&*s.store);
    if let Ok(Some(id)) = read::asset_by_name(&view, ident)
        && let Ok(Some(info)) = read::asset(&view, &id)
    {
        return Ok(info);
    }
    if let Ok(id) = Hash256::from_hex(ident) {
        if let Ok(Some(info)) = read::asset(&view, &id) {
            return Ok(info);
        }
        return Err(RpcError::new(
            code::ENTITY_NOT_FOUND,
            format!("Asset with this txid not found: {ident}"),
        ));
    }
    let parts: Vec<&str> = ident.split('-').collect();
    if parts.len() == 3
        && parts
            .iter()
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
    {
        if let Some(info) = all_assets(s).into_iter().find(|a| a.assetref() == ident) {
            return Ok(info);
        }
        return Err(RpcError::new(
            code::ENTITY_NOT_FOUND,
            format!("Asset with this reference not found: {ident}"),
        ));
    }
    Err(RpcError::new(
        code::ENTITY_NOT_FOUND,
        format!("Asset with this name not found: {ident}"),
    ))
}

/// Every confirmed asset, in issue order (height, offset).
pub fn all_assets(s: &NodeState) -> Vec<AssetInfo> {
    let mut out: Vec<AssetInfo> = s
        .store
        .scan(crate::store::kind::ASSET)
        .unwrap_or_default()
        .into_iter()
        .filter_map(|(_, v)| match v {
            StateValue::Asset(a) => Some(*a),
            _ => None,
        })
        .collect();
    out.sort_by_key(|a| (a.height, a.offset));
    out
}

/// A display name for an asset id (the name, else the id).
pub fn asset_entry(s: &NodeState, id: &AssetId, raw: Amount) -> Value {
    let view = s.mempool.view(&*s.store);
    match read::asset(&view, id) {
        Ok(Some(info)) => {
            let assetref = if s.store.tx_location(id).ok().flatten().is_some() {
                Value::String(info.assetref())
            } else {
                Value::Null
            };
            json!({"name": info.name, "assetref": assetref, "qty": number(&format_quantity(raw, info.multiple))})
        }
        _ => json!({"name": null, "assetref": null, "qty": raw.raw()}),
    }
}

/// `{"energy": 1, "ecoin": 1000}` → raw quantities (transfer rounding). The key `""` is the
/// native currency, which must be 0.
pub fn asset_bag(s: &NodeState, value: &Value) -> Result<AssetBag, RpcError> {
    let Value::Object(map) = value else {
        return Err(type_error(value, "object"));
    };
    let mut bag = AssetBag::new();
    for (key, qty) in map {
        let Value::Number(n) = qty else {
            return Err(type_error(qty, "real"));
        };
        let text = n.to_string();
        if key.is_empty() {
            if parse_quantity(&text, 1, Rounding::Transfer).map(|a| a.is_zero()) != Ok(true) {
                return Err(RpcError::new(
                    code::INVALID_PARAMETER,
                    "Native currency amounts must be 0: this chain has no native currency",
                ));
            }
            continue;
        }
        let info = find_asset(s, key)?;
        let raw = parse_quantity(&text, info.multiple, Rounding::Transfer).map_err(|e| {
            RpcError::new(
                code::INVALID_PARAMETER,
                format!("Invalid asset quantity for {key}: {e}"),
            )
        })?;
        if raw.is_zero() {
            continue;
        }
        let slot = bag.entry(info.id).or_insert(Amount::ZERO);
        *slot = slot
            .checked_add(raw)
            .map_err(|_| RpcError::new(code::INVALID_PARAMETER, "Asset quantity out of range"))?;
    }
    Ok(bag)
}

/// Balances `[{name, assetref, qty}]` of a bag, in issue order.
pub fn balances(s: &NodeState, bag: &AssetBag) -> Value {
    let mut entries: Vec<(u32, u32, Value)> = bag
        .iter()
        .map(|(id, q)| {
            let pos = read::asset(&s.mempool.view(&*s.store), id)
                .ok()
                .flatten()
                .map(|a| (a.height, a.offset))
                .unwrap_or((u32::MAX, 0));
            (pos.0, pos.1, asset_entry(s, id, *q))
        })
        .collect();
    entries.sort_by_key(|(h, o, _)| (*h, *o));
    Value::Array(entries.into_iter().map(|(_, _, v)| v).collect())
}

/// Adds an output's assets to a bag.
pub fn add_output(bag: &mut AssetBag, output: &Output) {
    for (id, q) in &output.assets {
        let slot = bag.entry(*id).or_insert(Amount::ZERO);
        *slot = slot.checked_add(*q).unwrap_or(Amount::MAX);
    }
}

/// Parses MultiChain's permission list: `connect,send,receive`, `energy.issue`, `all`, `*`.
/// The string is split at the last `.`: the part before names the asset.
pub fn permissions(s: &NodeState, text: &str) -> Result<Vec<Permission>, RpcError> {
    let invalid = || RpcError::new(code::INVALID_PARAMETER, "Invalid permission");
    let (entity, list) = match text.rsplit_once('.') {
        Some((e, l)) => (Some(e), l),
        None => (None, text),
    };
    let mut out: Vec<Permission> = Vec::new();
    for word in list.split(',').map(str::trim).filter(|w| !w.is_empty()) {
        let perms: Vec<Permission> = match entity {
            None if word == "all" || word == "*" => GlobalPerm::ALL
                .iter()
                .map(|p| Permission::Global(*p))
                .collect(),
            None => vec![Permission::Global(
                GlobalPerm::from_name(word).ok_or_else(invalid)?,
            )],
            Some(name) => {
                let asset = find_asset(s, name)?;
                if word == "all" || word == "*" {
                    AssetPerm::ALL
                        .iter()
                        .map(|p| Permission::Asset(asset.id, *p))
                        .collect()
                } else {
                    vec![Permission::Asset(
                        asset.id,
                        AssetPerm::from_name(word).ok_or_else(invalid)?,
                    )]
                }
            }
        };
        for p in perms {
            if !out.contains(&p) {
                out.push(p);
            }
        }
    }
    if out.is_empty() {
        return Err(invalid());
    }
    Ok(out)
}

/// `{type:"asset", name, assetref}` for a per-asset permission, `null` for a global one.
pub fn permission_for(s: &NodeState, perm: &Permission) -> (Value, &'static str) {
    match perm {
        Permission::Global(g) => (Value::Null, g.name()),
        Permission::Asset(id, p) => {
            let info = read::asset(&*s.store, id).ok().flatten();
            let v = json!({"type": "asset", "name": info.as_ref().map(|a| a.name.clone()), "assetref": info.map(|a| a.assetref())});
            (v, p.name())
        }
    }
}

/// Every permission record in the state.
pub fn all_permissions(
    s: &NodeState,
) -> Vec<(
    wattle_ledger::Address,
    Permission,
    wattle_ledger::permissions::PermRecord,
)> {
    s.store
        .scan(crate::store::kind::PERM)
        .unwrap_or_default()
        .into_iter()
        .filter_map(|(k, v)| match (k, v) {
            (StateKey::Perm(a, p), StateValue::Perm(r)) => Some((a, p, r)),
            _ => None,
        })
        .collect()
}

/// MultiChain-style transaction object (getrawtransaction verbose, getblock verbose 2).
pub fn tx_json(s: &NodeState, tx: &Transaction, block: Option<(u32, Hash256, u64)>) -> Value {
    let fmt = s.chain.params.address_format();
    let txid = tx.txid();
    let vin: Vec<Value> = tx
        .inputs
        .iter()
        .map(|i| json!({"txid": i.prev.txid.to_hex(), "vout": i.prev.vout, "address": fmt.encode(&i.pubkey.address()), "sighash": i.sighash}))
        .collect();
    let issue = tx.issue_op();
    let vout: Vec<Value> = tx
        .outputs
        .iter()
        .enumerate()
        .map(|(n, out)| {
            let assets: Vec<Value> = out
                .assets
                .iter()
                .map(|(id, q)| {
                    let real = if id.is_zero() { txid } else { *id };
                    let kind = match issue {
                        Some(Op::IssueAsset(_)) if id.is_zero() => "issuefirst",
                        Some(Op::IssueMore { asset, .. }) if asset == id => "issuemore+transfer",
                        _ => "transfer",
                    };
                    let mut e = asset_entry(s, &real, *q);
                    if let Value::Object(m) = &mut e {
                        // MultiChain's order: name, issuetxid, assetref, qty, raw, type.
                        let field = |k: &str| m.get(k).cloned().unwrap_or(Value::Null);
                        let mut ordered = Map::new();
                        ordered.insert("name".into(), field("name"));
                        ordered.insert("issuetxid".into(), Value::String(real.to_hex()));
                        ordered.insert("assetref".into(), field("assetref"));
                        ordered.insert("qty".into(), field("qty"));
                        ordered.insert("raw".into(), json!(q.raw()));
                        ordered.insert("type".into(), Value::String(kind.into()));
                        *m = ordered;
                    }
                    e
                })
                .collect();
            let perms: Vec<Value> = tx
                .ops
                .iter()
                .filter_map(|op| op.permission_change())
                .filter(|(v, ..)| *v as usize == n)
                .flat_map(|(_, ps, start, end)| {
                    ps.iter().map(move |p| (*p, start, end)).collect::<Vec<_>>()
                })
                .map(|(p, start, end)| {
                    let (f, name) = permission_for(s, &p);
                    json!({"for": f, "type": name, "startblock": start, "endblock": end})
                })
                .collect();
            json!({"n": n, "value": 0, "address": fmt.encode(&out.address), "assets": assets, "permissions": perms, "items": []})
        })
        .collect();
    let mut obj = Map::new();
    obj.insert("hex".into(), Value::String(tx.to_hex()));
    obj.insert("txid".into(), Value::String(txid.to_hex()));
    obj.insert("version".into(), json!(tx.version));
    obj.insert("locktime".into(), json!(0));
    obj.insert("vin".into(), Value::Array(vin));
    obj.insert("vout".into(), Value::Array(vout));
    obj.insert("data".into(), json!([]));
    if let Some((height, hash, time_ms)) = block {
        obj.insert("blockhash".into(), Value::String(hash.to_hex()));
        obj.insert(
            "confirmations".into(),
            json!(s.height() + 1 - height.min(s.height())),
        );
        obj.insert("time".into(), json!(time_ms / 1000));
        obj.insert("blocktime".into(), json!(time_ms / 1000));
    }
    Value::Object(obj)
}
