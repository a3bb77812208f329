//! A small in-memory chain for tests, benchmarks and simulations: deterministic keys, a genesis
//! block, and builders for the common transactions. Pure code like the rest of the crate.

use crate::address::Address;
use crate::amount::Amount;
use crate::apply::{NoCache, apply_block};
use crate::block::Block;
use crate::chain::Chain;
use crate::error::BlockError;
use crate::genesis::{apply_genesis, genesis_block};
use crate::keys::SecretKey;
use crate::orderbook::{OrderId, OrderKind, PlaceOrder, Price};
use crate::params::ChainParams;
use crate::permissions::{NO_END, Permission};
use crate::sighash;
use crate::state::{Changeset, MemoryView, StateKey, StateValue, TipInfo, Utxo, read};
use crate::tx::{AssetId, Input, IssueAsset, Op, OutPoint, Output, TX_VERSION, Transaction};
use std::collections::BTreeMap;

/// The deterministic key numbered `seed`.
pub fn key(seed: u64) -> SecretKey {
    let mut bytes = [0u8; 32];
    bytes[..8].copy_from_slice(&seed.to_le_bytes());
    bytes[31] = 0x57;
    SecretKey::from_bytes(&bytes)
}

/// An input spending `prev`, to be signed later.
pub fn unsigned_input(prev: OutPoint) -> Input {
    Input::unsigned(prev)
}

/// A chain with its state in memory. Blocks are signed by the admin (the only miner).
pub struct TestChain {
    pub chain: Chain,
    pub state: MemoryView,
    pub admin: SecretKey,
    pub genesis: Block,
    /// Timestamp of the next block, advanced by one second per block.
    pub next_time_ms: u64,
}

impl TestChain {
    /// A chain with default parameters and `key(0)` as admin.
    pub fn new() -> TestChain {
        TestChain::with_params(ChainParams::new("energybc"))
    }

    pub fn with_params(params: ChainParams) -> TestChain {
        let admin = key(0);
        let genesis = genesis_block(&params, &admin, 1_700_000_000_000);
        let (chain, changes) = apply_genesis(&params, &genesis).expect("testkit genesis is valid");
        let mut state = MemoryView::new();
        state
            .apply(&changes)
            .expect("genesis applies to empty state");
        TestChain {
            chain,
            state,
            admin,
            genesis,
            next_time_ms: 1_700_000_001_000,
        }
    }

    pub fn tip(&self) -> TipInfo {
        read::tip(&self.state)
            .ok()
            .flatten()
            .expect("testkit state has a tip")
    }

    /// The height the next block will have.
    pub fn next_height(&self) -> u32 {
        self.tip().height + 1
    }

    /// A block with `txs` on the current tip, signed by `miner`.
    pub fn block_by(&self, miner: &SecretKey, txs: Vec<Transaction>) -> Block {
        let tip = self.tip();
        Block::build(
            tip.id,
            tip.height + 1,
            self.next_time_ms,
            txs,
            miner,
            &self.chain.id,
        )
    }

    /// A block with `txs` on the current tip, signed by the admin.
    pub fn block(&self, txs: Vec<Transaction>) -> Block {
        self.block_by(&self.admin, txs)
    }

    /// Validates and commits a block; on error nothing changes.
    pub fn commit(&mut self, block: &Block) -> Result<Changeset, BlockError> {
        let changes = apply_block(&self.state, block, &self.chain, &NoCache)?;
        self.state.apply(&changes)?;
        self.next_time_ms += 1000;
        Ok(changes)
    }

    /// Puts `txs` in a block by the admin and commits it.
    pub fn mine(&mut self, txs: Vec<Transaction>) -> Result<Changeset, BlockError> {
        let block = self.block(txs);
        self.commit(&block)
    }

    /// Unspent outputs of an address, in outpoint order.
    pub fn utxos_of(&self, address: &Address) -> Vec<(OutPoint, Utxo)> {
        self.state
            .map
            .iter()
            .filter_map(|(k, v)| match (k, v) {
                (StateKey::Utxo(op), StateValue::Utxo(u)) if u.output.address == *address => {
                    Some((*op, u.clone()))
                }
                _ => None,
            })
            .collect()
    }

    pub fn balance(&self, address: &Address, asset: &AssetId) -> Amount {
        self.utxos_of(address)
            .iter()
            .map(|(_, u)| u.output.amount_of(asset))
            .fold(Amount::ZERO, |a, b| a.checked_add(b).unwrap_or(Amount::MAX))
    }

    pub fn asset_id(&self, name: &str) -> AssetId {
        read::asset_by_name(&self.state, name)
            .ok()
            .flatten()
            .expect("asset exists")
    }

    /// Picks coins of `from` covering `need` (at least one coin even if `need` is empty) and
    /// returns them with what is left over as change.
    pub fn select(
        &self,
        from: &Address,
        need: &BTreeMap<AssetId, Amount>,
    ) -> Option<(Vec<OutPoint>, BTreeMap<AssetId, Amount>)> {
        let mut have: BTreeMap<AssetId, Amount> = BTreeMap::new();
        let mut picked = Vec::new();
        let covered = |have: &BTreeMap<AssetId, Amount>| {
            need.iter()
                .all(|(id, q)| have.get(id).copied().unwrap_or_default() >= *q)
        };
        for (op, u) in self.utxos_of(from) {
            if !picked.is_empty() && covered(&have) {
                break;
            }
            let useful =
                picked.is_empty() || u.output.assets.iter().any(|(id, _)| need.contains_key(id));
            if !useful {
                continue;
            }
            picked.push(op);
            for (id, q) in &u.output.assets {
                let slot = have.entry(*id).or_default();
                *slot = slot.checked_add(*q).ok()?;
            }
        }
        if picked.is_empty() || !covered(&have) {
            return None;
        }
        for (id, q) in need {
            let slot = have.entry(*id).or_default();
            *slot = slot.checked_sub(*q).ok()?;
        }
        have.retain(|_, q| !q.is_zero());
        Some((picked, have))
    }

    /// Builds and signs (ALL) a transaction from `from` paying `payments`, with change back to
    /// `from`, carrying `ops`. `extra_outputs` go first (grant outputs refer to them by index).
    pub fn build(
        &self,
        from: &SecretKey,
        extra_outputs: Vec<Output>,
        payments: Vec<(Address, AssetId, Amount)>,
        ops: Vec<Op>,
    ) -> Transaction {
        self.build_with_escrow(from, extra_outputs, payments, None, ops)
    }

    /// `build`, with the coins also covering `escrow` (what a placed order takes out of the
    /// inputs; no output carries it).
    pub fn build_with_escrow(
        &self,
        from: &SecretKey,
        extra_outputs: Vec<Output>,
        payments: Vec<(Address, AssetId, Amount)>,
        escrow: Option<(AssetId, Amount)>,
        ops: Vec<Op>,
    ) -> Transaction {
        let mut need: BTreeMap<AssetId, Amount> = BTreeMap::new();
        let paid = payments.iter().map(|(_, id, q)| (*id, *q));
        for (id, q) in paid.chain(escrow) {
            let slot = need.entry(id).or_default();
            *slot = slot.checked_add(q).expect("payment sum fits");
        }
        let (inputs, change) = self
            .select(&from.address(), &need)
            .expect("testkit: insufficient funds");
        let mut outputs = extra_outputs;
        for (to, id, q) in payments {
            outputs.push(Output::new(to, [(id, q)]));
        }
        outputs.push(Output::new(from.address(), change));
        let mut tx = Transaction {
            version: TX_VERSION,
            inputs: inputs.into_iter().map(unsigned_input).collect(),
            outputs,
            ops,
        };
        let keys: Vec<&SecretKey> = tx.inputs.iter().map(|_| from).collect();
        sighash::sign_all(&mut tx, &keys, &self.chain.id);
        tx
    }

    /// A transfer of `qty` raw units of `asset`.
    pub fn transfer(&self, from: &SecretKey, to: Address, asset: AssetId, qty: u64) -> Transaction {
        self.build(
            from,
            vec![],
            vec![(to, asset, Amount::new(qty).expect("qty in range"))],
            vec![],
        )
    }

    /// An order from `from` selling `qty` raw units of `sell` for `buy` at `price` (`num` of
    /// `buy` per `den` of `sell`), escrowed out of its coins, with change back to it.
    pub fn place_order(
        &self,
        from: &SecretKey,
        sell: AssetId,
        qty: u64,
        buy: AssetId,
        price: Price,
        kind: OrderKind,
    ) -> Transaction {
        let quantity = Amount::new(qty).expect("qty in range");
        let op = Op::PlaceOrder(PlaceOrder {
            sell,
            quantity,
            buy,
            price,
            kind,
        });
        self.build_with_escrow(from, vec![], vec![], Some((sell, quantity)), vec![op])
    }

    /// A transaction of `from` (spending one of its coins back to it) cancelling `orders`.
    pub fn cancel_orders(&self, from: &SecretKey, orders: &[OrderId]) -> Transaction {
        let ops = orders
            .iter()
            .map(|order| Op::CancelOrder { order: *order })
            .collect();
        self.build(from, vec![], vec![], ops)
    }

    /// A grant of `perms` to `to` for `[start, end)`.
    pub fn grant_range(
        &self,
        from: &SecretKey,
        to: Address,
        perms: &[Permission],
        start: u32,
        end: u32,
    ) -> Transaction {
        let op = Op::Grant {
            vout: 0,
            permissions: perms.to_vec(),
            start,
            end,
        };
        self.build(
            from,
            vec![Output {
                address: to,
                assets: vec![],
            }],
            vec![],
            vec![op],
        )
    }

    pub fn grant(&self, from: &SecretKey, to: Address, perms: &[Permission]) -> Transaction {
        self.grant_range(from, to, perms, 0, NO_END)
    }

    pub fn revoke(&self, from: &SecretKey, to: Address, perms: &[Permission]) -> Transaction {
        let op = Op::Revoke {
            vout: 0,
            permissions: perms.to_vec(),
        };
        self.build(
            from,
            vec![Output {
                address: to,
                assets: vec![],
            }],
            vec![],
            vec![op],
        )
    }

    /// A new asset of `qty` raw units paid to `to`.
    // One argument per field of the issue op; callers across the workspace use this signature.
    #[allow(clippy::too_many_arguments)]
    pub fn issue(
        &self,
        from: &SecretKey,
        to: Address,
        name: &str,
        open: bool,
        multiple: u32,
        qty: u64,
        fields: &[(&str, &str)],
    ) -> Transaction {
        let quantity = Amount::new(qty).expect("qty in range");
        let fields = fields
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let op = Op::IssueAsset(IssueAsset {
            name: name.to_string(),
            open,
            multiple,
            quantity,
            fields,
        });
        let out = Output::new(to, [(crate::tx::NEW_ASSET, quantity)]);
        let extra = if out.is_zero_value() {
            vec![]
        } else {
            vec![out]
        };
        self.build(from, extra, vec![], vec![op])
    }

    /// A follow-on issue of `qty` raw units of `asset` paid to `to`.
    pub fn issue_more(
        &self,
        from: &SecretKey,
        to: Address,
        asset: AssetId,
        qty: u64,
    ) -> Transaction {
        let quantity = Amount::new(qty).expect("qty in range");
        let op = Op::IssueMore {
            asset,
            quantity,
            fields: BTreeMap::new(),
        };
        self.build(
            from,
            vec![Output::new(to, [(asset, quantity)])],
            vec![],
            vec![op],
        )
    }
}

impl Default for TestChain {
    fn default() -> Self {
        TestChain::new()
    }
}
