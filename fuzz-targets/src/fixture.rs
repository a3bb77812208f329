//! A node without its network and RPC server: a store in a temporary directory holding a small
//! deterministic chain, a wallet, an engine, and two connected peers (one permitted). The
//! node-level targets feed it gossip, sync messages and RPC commands; [`NodeFixture::reset`]
//! puts it back between inputs, so that each input is judged on the same state.
//!
//! The chain (`testkit` keys): `key(0)` is the genesis admin and the only miner; `key(1)` holds
//! connect, send, receive, issue, activate and admin but not mine (so this node never produces
//! a block by itself); `key(2)` holds connect, send and receive; `key(3)` send and receive (not
//! in the wallet). `key(1)` issued `energy` (open, smallest unit 0.001) to itself and `ecoin`
//! (0.01) to `key(2)`; both sent some to the other; `key(1)` has an order on the book selling
//! 10 kWh at 5 ecoin and holds a prepared coin of 100 energy (`prepared`). `key(3)` got energy
//! and ecoin from `key(2)`; the order book has asks at 5 (two orders) and 6, bids at 4 (partly
//! filled) and 3, one filled and one cancelled order ([`ChainInfo::orders`]). The wallet holds
//! `key(1)` (the node's identity) and `key(2)`.

use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};

use wattle_consensus::engine::{BranchBlock, Config as EngineConfig, Engine, Input};
use wattle_consensus::schedule::IN_TURN_WEIGHT;
use wattle_ledger::exchange::{self, AssetBag};
use wattle_ledger::orderbook::{OrderKind, Price};
use wattle_ledger::permissions::{GlobalPerm, Permission};
use wattle_ledger::testkit::{TestChain, key};
use wattle_ledger::tx::{OutPoint, Transaction, Txid};
use wattle_ledger::{Amount, Block, ChainParams, SecretKey};
use wattle_node::chain::{NodeInfo, NodeState, now_ms};
use wattle_node::mempool::Mempool;
use wattle_node::network::{NetEvent, PeerId};
use wattle_node::store::Store;
use wattle_node::wallet::Wallet;

/// Mempool size of the fixture node.
const MEMPOOL_MAX: usize = 1_000;

/// Names of the fixture chain's objects, for seeds and properties.
#[derive(Clone, Debug)]
pub struct ChainInfo {
    pub params: ChainParams,
    pub params_toml: String,
    pub genesis: Block,
    /// The committed blocks after genesis, oldest first.
    pub blocks: Vec<Block>,
    /// Encoded addresses of `key(0)` … `key(3)` and of an outsider (`key(9)`).
    pub addresses: Vec<String>,
    /// `energy` and `ecoin`: (name, id hex, asset reference).
    pub assets: Vec<(String, String, String)>,
    /// Every committed transaction id (hex).
    pub txids: Vec<String>,
    /// The prepared coin of `key(1)`: 100 energy.
    pub prepared: OutPoint,
    /// An offer on the prepared coin asking 50 ecoin (createrawexchange's result).
    pub offer: Transaction,
    /// A valid transfer of energy from `key(1)` to `key(3)`, in no block yet.
    pub transfer: Transaction,
    /// A valid block on the tip, by the admin, holding `transfer`.
    pub next_block: Block,
    /// The order `key(1)` has on the book (selling energy for ecoin).
    pub resting_order: Txid,
    /// A valid buy order of `key(2)` that takes part of it, and `key(1)`'s cancellation of it.
    pub bid: Transaction,
    pub cancel: Transaction,
    /// Every order placed in the fixture chain, in order: `key(1)`'s ask at 5 (open), `key(3)`'s
    /// ask at 5 (open), `key(2)`'s ask at 6 (open), `key(3)`'s bid at 4 (partly filled),
    /// `key(2)`'s bid at 3 (open), `key(2)`'s ask at 4 (filled), `key(2)`'s ask at 9
    /// (cancelled).
    pub orders: Vec<Txid>,
    /// Valid on the tip, not committed: `key(2)` buying 16 kWh at up to 6 (sweeps two makers,
    /// skips its own), the admin revoking `key(3)`'s receive, and `key(1)` selling 12 kWh at 3 or
    /// better (hits both bids).
    pub sweep: Transaction,
    pub revoke: Transaction,
    pub hit: Transaction,
}

/// The deterministic chain the fixture stores; pure and cheap to build.
pub fn build_chain() -> (TestChain, Vec<(Block, wattle_ledger::Changeset)>, ChainInfo) {
    let mut params = ChainParams::new("fuzzchain");
    params.address_pubkeyhash_version = [0x00, 0x51, 0x7a, 0x3c];
    params.address_checksum_value = [0x1f, 0x7e, 0x30, 0x91];
    let mut tc = TestChain::with_params(params.clone());
    let mut blocks = Vec::new();
    let mut mine = |tc: &mut TestChain, tx: Transaction| {
        let block = tc.block(vec![tx]);
        let changes = tc.commit(&block).expect("fixture block is valid");
        blocks.push((block, changes));
    };
    let g = |p: GlobalPerm| Permission::Global(p);
    use GlobalPerm::*;
    let admin = key(0);
    let grants: [(u64, Vec<Permission>); 3] = [
        (
            1,
            vec![
                g(Connect),
                g(Send),
                g(Receive),
                g(Issue),
                g(Activate),
                g(Admin),
            ],
        ),
        (2, vec![g(Connect), g(Send), g(Receive)]),
        (3, vec![g(Send), g(Receive)]),
    ];
    for (k, perms) in grants {
        let tx = tc.grant(&admin, key(k).address(), &perms);
        mine(&mut tc, tx);
    }
    let tx = tc.issue(
        &key(1),
        key(1).address(),
        "energy",
        true,
        1000,
        5_000_000,
        &[("unit", "kWh")],
    );
    mine(&mut tc, tx);
    let tx = tc.issue(
        &key(1),
        key(2).address(),
        "ecoin",
        false,
        100,
        1_000_000,
        &[],
    );
    mine(&mut tc, tx);
    let energy = tc.asset_id("energy");
    let ecoin = tc.asset_id("ecoin");
    let tx = tc.transfer(&key(1), key(2).address(), energy, 250_000);
    mine(&mut tc, tx);
    let tx = tc.transfer(&key(2), key(1).address(), ecoin, 40_000);
    mine(&mut tc, tx);
    // A resting order: key(1) sells 10 kWh at 5 ecoin each.
    let tx = tc.place_order(
        &key(1),
        energy,
        10_000,
        ecoin,
        Price::new(500, 1000),
        OrderKind::Sell,
    );
    let resting_order = tx.txid();
    mine(&mut tc, tx);
    // The prepared coin: output 0 pays key(1) exactly 100 energy.
    let tx = tc.transfer(&key(1), key(1).address(), energy, 100_000);
    let prepared = tx.outpoint(0);
    mine(&mut tc, tx);

    // More of the book (after the prepared coin, so that the blocks above keep their txids):
    // key(3) gets 20 kWh and 200 ecoin from key(2).
    let tx = tc.transfer(&key(2), key(3).address(), energy, 20_000);
    mine(&mut tc, tx);
    let tx = tc.transfer(&key(2), key(3).address(), ecoin, 20_000);
    mine(&mut tc, tx);
    // key(3) sells 4 kWh at 5 (behind key(1) on the same level); key(2) sells 5 kWh at 6.
    let tx = tc.place_order(
        &key(3),
        energy,
        4_000,
        ecoin,
        Price::new(500, 1000),
        OrderKind::Sell,
    );
    let mut orders = vec![resting_order, tx.txid()];
    mine(&mut tc, tx);
    let tx = tc.place_order(
        &key(2),
        energy,
        5_000,
        ecoin,
        Price::new(600, 1000),
        OrderKind::Sell,
    );
    orders.push(tx.txid());
    mine(&mut tc, tx);
    // Bids: key(3) buys up to 10 kWh at 4 ecoin, key(2) up to 5 kWh at 3 ecoin.
    let tx = tc.place_order(
        &key(3),
        ecoin,
        4_000,
        energy,
        Price::new(1000, 400),
        OrderKind::Buy,
    );
    orders.push(tx.txid());
    mine(&mut tc, tx);
    let tx = tc.place_order(
        &key(2),
        ecoin,
        1_500,
        energy,
        Price::new(1000, 300),
        OrderKind::Buy,
    );
    orders.push(tx.txid());
    mine(&mut tc, tx);
    // A trade: key(2) sells 1 kWh at 4 or better, filling part of key(3)'s bid.
    let tx = tc.place_order(
        &key(2),
        energy,
        1_000,
        ecoin,
        Price::new(400, 1000),
        OrderKind::Sell,
    );
    orders.push(tx.txid());
    mine(&mut tc, tx);
    // A cancelled order: key(2) offers 1 kWh at 9, then takes it back.
    let tx = tc.place_order(
        &key(2),
        energy,
        1_000,
        ecoin,
        Price::new(900, 1000),
        OrderKind::Sell,
    );
    let withdrawn = tx.txid();
    orders.push(withdrawn);
    mine(&mut tc, tx);
    let tx = tc.cancel_orders(&key(2), &[withdrawn]);
    mine(&mut tc, tx);

    let mut ask = AssetBag::new();
    ask.insert(ecoin, Amount::new(5_000).expect("in range"));
    let offer = exchange::create_offer(prepared, &key(1), &ask, &tc.chain).expect("offer");
    let transfer = tc.transfer(&key(1), key(3).address(), energy, 1_000);
    let next_block = tc.block(vec![transfer.clone()]);
    // key(2) buys 2 kWh at up to 6 ecoin each (crosses the resting order); key(1) cancels it.
    let bid = tc.place_order(
        &key(2),
        ecoin,
        1_200,
        energy,
        Price::new(1000, 600),
        OrderKind::Buy,
    );
    let cancel = tc.cancel_orders(&key(1), &[resting_order]);
    // key(2) buys 16 kWh at up to 6: it takes key(1)'s 10 and key(3)'s 4 at 5, then passes over
    // its own order at 6 (no self-trade). After the admin's revocation of key(3)'s receive, the
    // matching cancels key(3)'s order instead (a maker that lost a permission).
    let sweep = tc.place_order(
        &key(2),
        ecoin,
        9_600,
        energy,
        Price::new(1000, 600),
        OrderKind::Buy,
    );
    let revoke = tc.revoke(&key(0), key(3).address(), &[g(Receive)]);
    // A seller hitting both bids: 12 kWh at 3 or better.
    let hit = tc.place_order(
        &key(1),
        energy,
        12_000,
        ecoin,
        Price::new(300, 1000),
        OrderKind::Sell,
    );

    let fmt = params.address_format();
    let addresses = [0, 1, 2, 3, 9]
        .iter()
        .map(|k| fmt.encode(&key(*k).address()))
        .collect();
    let assets = ["energy", "ecoin"]
        .iter()
        .map(|name| {
            let id = tc.asset_id(name);
            let info = wattle_ledger::state::read::asset(&tc.state, &id)
                .ok()
                .flatten()
                .expect("asset exists");
            (name.to_string(), id.to_hex(), info.assetref())
        })
        .collect();
    let txids = blocks
        .iter()
        .flat_map(|(b, _)| b.txs.iter().map(|t| t.txid().to_hex()))
        .collect();
    let info = ChainInfo {
        params_toml: wattle_node::params_file::render(&params),
        params,
        genesis: tc.genesis.clone(),
        blocks: blocks.iter().map(|(b, _)| b.clone()).collect(),
        addresses,
        assets,
        txids,
        prepared,
        offer,
        transfer,
        next_block,
        resting_order,
        bid,
        cancel,
        orders,
        sweep,
        revoke,
        hit,
    };
    (tc, blocks, info)
}

/// A peer id for an ed25519 public key (the identity multihash of its protobuf encoding).
pub fn peer_id(key: &SecretKey) -> PeerId {
    let mut bytes = vec![0x00, 0x24, 0x08, 0x01, 0x12, 0x20];
    bytes.extend_from_slice(&key.public().0);
    PeerId::from_bytes(&bytes).expect("valid peer id")
}

pub struct NodeFixture {
    pub state: NodeState,
    pub info: ChainInfo,
    /// A connected peer with connect permission (the admin's key).
    pub peer: PeerId,
    /// A connected peer without it.
    pub outsider: PeerId,
    dir: tempfile::TempDir,
    base_height: u32,
    /// The stored blocks the engine starts from (`Store::recent`, read once).
    recent: Vec<BranchBlock>,
}

fn wallet_text() -> String {
    [1u64, 2]
        .iter()
        .map(|k| format!("{}\n", hex::encode(key(*k).to_bytes())))
        .collect()
}

impl NodeFixture {
    pub fn new() -> NodeFixture {
        let (tc, blocks, info) = build_chain();
        let dir = tempfile::Builder::new()
            .prefix("wattle-fuzz-")
            .tempdir()
            .expect("temporary directory");
        let store = Arc::new(Store::open(&dir.path().join("store")).expect("store opens"));
        let (_, genesis_changes) =
            wattle_ledger::apply_genesis(&info.params, &info.genesis).expect("genesis");
        store
            .init_genesis(&info.genesis, &genesis_changes)
            .expect("genesis stored");
        for (block, changes) in blocks {
            let b = BranchBlock {
                block: Arc::new(block),
                changes,
                weight: IN_TURN_WEIGHT,
            };
            store.adopt(&[], &[b]).expect("block stored");
        }
        let wallet = open_wallet(&dir.path().join("wallet.keys"));
        let recent = store.recent(1001).expect("recent blocks");
        let engine = new_engine(&tc.chain, recent.clone(), &wallet);
        let node_info = NodeInfo {
            port: 0,
            rpc_port: 0,
            external_ip: "127.0.0.1".into(),
            params_toml: info.params_toml.clone(),
        };
        let mut state = NodeState::new(
            tc.chain.clone(),
            store,
            engine,
            wallet,
            node_info,
            MEMPOOL_MAX,
        );
        let peer = peer_id(&key(0));
        let outsider = peer_id(&key(9));
        for (p, k, inbound) in [(peer, 0, false), (outsider, 9, true)] {
            state.on_net_event(NetEvent::PeerConnected {
                peer: p,
                address: key(k).address(),
                inbound,
            });
        }
        state.outbox.clear();
        let base_height = state.height();
        NodeFixture {
            state,
            info,
            peer,
            outsider,
            dir,
            base_height,
            recent,
        }
    }

    fn wallet_path(&self) -> PathBuf {
        self.dir.path().join("wallet.keys")
    }

    /// Puts the node back as `new` left it: a fresh fixture if the chain moved (an input
    /// produced a valid block), otherwise an empty mempool, a fresh engine and the original
    /// wallet.
    pub fn reset(&mut self) {
        let wallet_path = self.wallet_path();
        let s = &mut self.state;
        if s.height() != self.base_height || s.fatal.is_some() {
            *self = NodeFixture::new();
            return;
        }
        s.mempool = Mempool::new(MEMPOOL_MAX);
        s.flush_relay();
        s.outbox.clear();
        s.submitted.clear();
        s.conflicted.clear();
        s.wake = None;
        s.stop_requested = false;
        for p in s.peers.values_mut() {
            p.tip_height = None;
        }
        if s.wallet.addresses().len() != 2 || !s.wallet.locked().is_empty() {
            let _ = std::fs::remove_file(wallet_path.with_extension("locks"));
            s.wallet = open_wallet(&wallet_path);
        }
        s.engine = new_engine(&s.chain, self.recent.clone(), &s.wallet);
        let count = s.permitted_peers();
        s.step(Input::Peers {
            count,
            now: now_ms(),
        });
        s.outbox.clear();
    }
}

impl Default for NodeFixture {
    fn default() -> Self {
        NodeFixture::new()
    }
}

fn open_wallet(path: &std::path::Path) -> Wallet {
    std::fs::write(path, wallet_text()).expect("wallet written");
    Wallet::open_or_create(path).expect("wallet opens")
}

fn new_engine(chain: &wattle_ledger::Chain, recent: Vec<BranchBlock>, wallet: &Wallet) -> Engine {
    let cfg = EngineConfig::new(Some(wallet.identity().address()));
    Engine::new(chain.clone(), cfg, recent, now_ms())
}

static FIXTURE: Mutex<Option<NodeFixture>> = Mutex::new(None);

/// The process's fixture, reset, locked for one input.
pub fn fixture() -> MutexGuard<'static, Option<NodeFixture>> {
    let mut guard = FIXTURE.lock().unwrap_or_else(|poisoned| {
        // A failed input (the smoke test reports it) may have left it half changed.
        FIXTURE.clear_poison();
        let mut g = poisoned.into_inner();
        *g = None;
        g
    });
    match guard.as_mut() {
        Some(fx) => fx.reset(),
        None => *guard = Some(NodeFixture::new()),
    }
    guard
}

/// Runs `f` on the process's fixture, reset first.
pub fn with_fixture<T>(f: impl FnOnce(&mut NodeFixture) -> T) -> T {
    let mut guard = fixture();
    f(guard.as_mut().expect("fixture is set"))
}

/// Runs `f` on the process's fixture as it is (no reset): for several calls that make up one
/// input (a JSON-RPC batch). The fixture must exist (call [`fixture`] first).
pub fn with_fixture_as_is<T>(f: impl FnOnce(&mut NodeFixture) -> T) -> T {
    let mut guard = FIXTURE.lock().unwrap_or_else(|poisoned| {
        FIXTURE.clear_poison();
        poisoned.into_inner()
    });
    if guard.is_none() {
        *guard = Some(NodeFixture::new());
    }
    f(guard.as_mut().expect("fixture is set"))
}
