//! The benchmark's money: [`KEYS`] addresses of its own, granted send,receive, and coins of one
//! unit of an asset spread over them, made in a few large transactions it signs itself. A
//! transfer spends one coin and pays its unit to the next address, so transfers of different
//! coins never depend on each other, and each transfer's output is a coin for a later one.

use crate::cluster::{Node, call, chain_id, wait_confirmed_everywhere};
use serde_json::json;
use wattle_ledger::address::{Address, AddressFormat};
use wattle_ledger::amount::Amount;
use wattle_ledger::keys::SecretKey;
use wattle_ledger::sighash;
use wattle_ledger::tx::{Input, OutPoint, Output, TX_VERSION, Transaction};
use wattle_ledger::{ChainParams, Hash256};

/// Sender addresses. The mempool lets one address hold at most a tenth of its capacity once it
/// is half full (50,000: 5,000), so transfers are spread over many.
pub const KEYS: usize = 1_000;
/// Coins per funding transaction (max-tx-outputs is 10,000).
const PER_FUNDING_TX: usize = 9_999;
/// Addresses per `grant` call.
const PER_GRANT: usize = 500;

/// A coin of one unit of the asset, owned by key `owner`.
#[derive(Clone, Copy, Debug)]
pub struct Coin {
    pub outpoint: OutPoint,
    pub owner: u32,
}

/// A signed transaction as `sendrawtransaction` takes it, with its txid.
#[derive(Clone, Debug)]
pub struct Signed {
    pub hex: String,
    pub txid: String,
}

/// The keys, the asset and the chain id that transfers are signed with.
pub struct Wallet {
    pub keys: Vec<SecretKey>,
    pub addrs: Vec<Address>,
    pub asset: Hash256,
    pub chain_id: Hash256,
}

impl Wallet {
    /// Signs the transfer of `coin` to the next address; returns it and the coin it creates.
    pub fn transfer(&self, coin: Coin) -> (Signed, Coin) {
        let next = (coin.owner as usize + 1) % self.keys.len();
        let mut tx = Transaction {
            version: TX_VERSION,
            inputs: vec![Input::unsigned(coin.outpoint)],
            outputs: vec![Output::new(self.addrs[next], [(self.asset, unit())])],
            ops: vec![],
        };
        sighash::sign_all(&mut tx, &[&self.keys[coin.owner as usize]], &self.chain_id);
        let txid = tx.txid();
        let out = Coin {
            outpoint: OutPoint { txid, vout: 0 },
            owner: next as u32,
        };
        (
            Signed {
                hex: tx.to_hex(),
                txid: txid.to_hex(),
            },
            out,
        )
    }

    /// Signs one transfer of each coin, on every core.
    pub fn transfers(&self, coins: &[Coin]) -> Vec<(Signed, Coin)> {
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
        let per = coins.len().div_ceil(threads).max(1);
        std::thread::scope(|s| {
            let parts: Vec<_> = coins
                .chunks(per)
                .map(|part| {
                    s.spawn(move || part.iter().map(|c| self.transfer(*c)).collect::<Vec<_>>())
                })
                .collect();
            parts
                .into_iter()
                .flat_map(|p| p.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
                .collect::<Vec<_>>()
        })
    }
}

fn unit() -> Amount {
    Amount::new(1).expect("1 is a valid amount")
}

/// The key of benchmark address `i`.
fn key_of(i: usize) -> SecretKey {
    let mut b = [0x4e; 32];
    b[..8].copy_from_slice(&(i as u64).to_le_bytes());
    SecretKey::from_bytes(&b)
}

/// Grants send,receive to the benchmark's addresses (from the admin's wallet), issues the asset
/// to the first of them, and makes `groups[g]` coins for each group `g` (owners round-robin over
/// the addresses). Waits until everything is confirmed on `nodes[0]`, the admin; the caller
/// waits for the other nodes.
pub fn fund(
    nodes: &[Node],
    params: &ChainParams,
    groups: &[usize],
) -> Result<(Wallet, Vec<Vec<Coin>>), String> {
    let admin = &nodes[0].rpc;
    let fmt: AddressFormat = params.address_format();
    let keys: Vec<SecretKey> = (0..KEYS).map(key_of).collect();
    let addrs: Vec<Address> = keys.iter().map(SecretKey::address).collect();
    let mut grants = Vec::new();
    for chunk in addrs.chunks(PER_GRANT) {
        let list: Vec<String> = chunk.iter().map(|a| fmt.encode(a)).collect();
        let txid = call(admin, "grant", json!([list.join(","), "send,receive"]))?;
        grants.push(txid.as_str().unwrap_or_default().to_string());
    }
    for txid in &grants {
        wait_confirmed_everywhere(&nodes[..1], txid, "the grants to be confirmed")?;
    }
    let total: usize = groups.iter().sum();
    let issue = call(
        admin,
        "issue",
        json!([fmt.encode(&addrs[0]), "netbench", total.max(1) as u64]),
    )?;
    let asset_hex = issue.as_str().ok_or("issue did not return a txid")?;
    let asset = Hash256::from_hex(asset_hex).map_err(|_| "bad txid from issue")?;
    wait_confirmed_everywhere(&nodes[..1], asset_hex, "the issue to be confirmed")?;
    let wallet = Wallet {
        keys,
        addrs,
        asset,
        chain_id: chain_id(admin)?,
    };

    // Split the issued coin into one coin per funding transaction, then fund.
    let sizes: Vec<usize> = groups
        .iter()
        .flat_map(|&n| {
            (0..n.div_ceil(PER_FUNDING_TX))
                .map(move |i| (n - i * PER_FUNDING_TX).min(PER_FUNDING_TX))
        })
        .collect();
    let funder = &wallet.keys[0];
    let amount = |n: usize| Amount::new(n as u64).map_err(|_| "amount out of range".to_string());
    let mut split = Transaction {
        version: TX_VERSION,
        inputs: vec![Input::unsigned(OutPoint {
            txid: asset,
            vout: 0,
        })],
        outputs: sizes
            .iter()
            .map(|&n| Ok(Output::new(wallet.addrs[0], [(asset, amount(n)?)])))
            .collect::<Result<_, String>>()?,
        ops: vec![],
    };
    sighash::sign_all(&mut split, &[funder], &wallet.chain_id);
    let split_txid = split.txid();
    let mut funding = Vec::with_capacity(sizes.len());
    let mut coins: Vec<Vec<Coin>> = Vec::with_capacity(groups.len());
    let mut owner = 0usize;
    let mut vout = 0u32;
    for &n in groups {
        let mut group = Vec::with_capacity(n);
        let mut left = n;
        while left > 0 {
            let here = left.min(PER_FUNDING_TX);
            let owners: Vec<usize> = (0..here).map(|i| (owner + i) % KEYS).collect();
            owner = (owner + here) % KEYS;
            let mut tx = Transaction {
                version: TX_VERSION,
                inputs: vec![Input::unsigned(OutPoint {
                    txid: split_txid,
                    vout,
                })],
                outputs: owners
                    .iter()
                    .map(|&o| Output::new(wallet.addrs[o], [(asset, unit())]))
                    .collect(),
                ops: vec![],
            };
            vout += 1;
            sighash::sign_all(&mut tx, &[funder], &wallet.chain_id);
            let txid = tx.txid();
            group.extend(owners.iter().enumerate().map(|(i, &o)| Coin {
                outpoint: OutPoint {
                    txid,
                    vout: i as u32,
                },
                owner: o as u32,
            }));
            funding.push(tx);
            left -= here;
        }
        coins.push(group);
    }
    call(admin, "sendrawtransaction", json!([split.to_hex()]))
        .map_err(|e| format!("the split: {e}"))?;
    wait_confirmed_everywhere(&nodes[..1], &split_txid.to_hex(), "the split")?;
    for tx in &funding {
        call(admin, "sendrawtransaction", json!([tx.to_hex()]))
            .map_err(|e| format!("a funding transaction: {e}"))?;
    }
    for tx in &funding {
        wait_confirmed_everywhere(&nodes[..1], &tx.txid().to_hex(), "the funding")?;
    }
    Ok((wallet, coins))
}
