//! Ledger fixtures shared by the benchmarks: a chain on which many addresses each own one coin of
//! an asset, so that as many independent signed transfers fit in one block.

use wattle_ledger::block::Block;
use wattle_ledger::permissions::{GlobalPerm, NO_END, Permission};
use wattle_ledger::sighash;
use wattle_ledger::testkit::{TestChain, key, unsigned_input};
use wattle_ledger::tx::{IssueAsset, NEW_ASSET, Op, OutPoint, Output, TX_VERSION, Transaction};
use wattle_ledger::{Amount, AssetId, SecretKey};

/// Raw units of the asset each holder starts with.
pub const COIN: u64 = 1_000;

/// One holder: its key, its zero-value grant coin and its coin of the asset.
pub struct Holder {
    pub key: SecretKey,
    pub grant_coin: OutPoint,
    pub asset_coin: OutPoint,
}

/// A chain (genesis, one block granting connect/send/receive to every holder, one block issuing
/// the asset with one output per holder) and its holders.
pub struct FundedChain {
    pub chain: TestChain,
    pub asset: AssetId,
    pub holders: Vec<Holder>,
}

impl FundedChain {
    /// `count` holders, `key(1)` to `key(count)`.
    pub fn new(count: u32) -> FundedChain {
        let mut chain = TestChain::new();
        let admin = chain.admin.clone();
        let keys: Vec<SecretKey> = (1..=u64::from(count)).map(key).collect();

        let perms = [GlobalPerm::Connect, GlobalPerm::Send, GlobalPerm::Receive]
            .map(Permission::Global)
            .to_vec();
        let grant_outputs = keys.iter().map(|k| Output::new(k.address(), [])).collect();
        let grants = (0..count)
            .map(|vout| Op::Grant {
                vout,
                permissions: perms.clone(),
                start: 0,
                end: NO_END,
            })
            .collect();
        let grant = chain.build(&admin, grant_outputs, vec![], grants);
        let grant_txid = grant.txid();
        chain.mine(vec![grant]).expect("grant block is valid");

        let quantity = Amount::new(COIN * u64::from(count)).expect("supply in range");
        let coin = Amount::new(COIN).expect("coin in range");
        let issue_outputs = keys
            .iter()
            .map(|k| Output::new(k.address(), [(NEW_ASSET, coin)]))
            .collect();
        let op = Op::IssueAsset(IssueAsset {
            name: "bench".to_string(),
            open: true,
            multiple: 1,
            quantity,
            fields: Default::default(),
        });
        let issue = chain.build(&admin, issue_outputs, vec![], vec![op]);
        let asset = issue.txid();
        chain.mine(vec![issue]).expect("issue block is valid");

        let holders = keys
            .into_iter()
            .zip(0..)
            .map(|(key, vout)| Holder {
                key,
                grant_coin: OutPoint {
                    txid: grant_txid,
                    vout,
                },
                asset_coin: OutPoint { txid: asset, vout },
            })
            .collect();
        FundedChain {
            chain,
            asset,
            holders,
        }
    }

    /// A signed transfer of half of holder `from`'s coin to holder `to`, change back:
    /// one input, two outputs.
    pub fn transfer(&self, from: usize, to: usize) -> Transaction {
        self.signed(from, vec![self.holders[from].asset_coin], to)
    }

    /// Like `transfer`, but also spending the holder's zero-value grant coin: two inputs, two
    /// outputs.
    pub fn transfer_two_inputs(&self, from: usize, to: usize) -> Transaction {
        let h = &self.holders[from];
        self.signed(from, vec![h.grant_coin, h.asset_coin], to)
    }

    /// A block on the tip holding one transfer from every holder to the next one.
    pub fn transfers_block(&self) -> Block {
        let n = self.holders.len();
        let txs = (0..n).map(|i| self.transfer(i, (i + 1) % n)).collect();
        self.chain.block(txs)
    }

    fn signed(&self, from: usize, coins: Vec<OutPoint>, to: usize) -> Transaction {
        let half = Amount::new(COIN / 2).expect("in range");
        let from_key = &self.holders[from].key;
        let mut tx = Transaction {
            version: TX_VERSION,
            inputs: coins.into_iter().map(unsigned_input).collect(),
            outputs: vec![
                Output::new(self.holders[to].key.address(), [(self.asset, half)]),
                Output::new(from_key.address(), [(self.asset, half)]),
            ],
            ops: vec![],
        };
        let keys: Vec<&SecretKey> = tx.inputs.iter().map(|_| from_key).collect();
        sighash::sign_all(&mut tx, &keys, &self.chain.chain.id);
        tx
    }
}
