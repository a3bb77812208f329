//! A seeded, deterministic in-process network of consensus engines: N nodes, each with an
//! in-memory ledger and a simple mempool, exchanging blocks, transactions and tips over a virtual
//! network with latency, loss, partitions and crashed nodes. The same seed gives the same run.

use crate::engine::{BranchBlock, Config, Engine, Input, Output, Verdict};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use wattle_ledger::apply::{NoCache, apply_tx};
use wattle_ledger::block::{Block, BlockId};
use wattle_ledger::keys::SecretKey;
use wattle_ledger::state::{MemoryView, Overlay};
use wattle_ledger::testkit::TestChain;
use wattle_ledger::tx::{Transaction, Txid};
use wattle_ledger::validate::TxContext;

/// SplitMix64: a tiny seeded generator, so the simulator needs no randomness from outside.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `lo..=hi`.
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        if hi <= lo {
            lo
        } else {
            lo + self.next_u64() % (hi - lo + 1)
        }
    }

    /// True with probability `per_mille / 1000`.
    pub fn chance(&mut self, per_mille: u32) -> bool {
        self.next_u64() % 1000 < per_mille as u64
    }
}

#[derive(Clone, Debug)]
enum Msg {
    Block(Arc<Block>),
    Tx(Transaction),
    Tip(u32, BlockId),
    GetBlocks { from_height: u32, count: u32 },
    Blocks(Vec<Arc<Block>>),
}

#[derive(Clone, Debug)]
enum Event {
    Deliver { to: usize, from: usize, msg: Msg },
    Wake { node: usize, at: u64 },
    Announce { node: usize },
}

/// One simulated node.
pub struct SimNode {
    pub key: SecretKey,
    pub engine: Engine,
    pub state: MemoryView,
    /// The main chain by height, for answering block requests.
    pub blocks: Vec<Arc<Block>>,
    pub mempool: Vec<Transaction>,
    /// Transactions dropped because they conflict with the chain (reported to the wallet).
    pub conflicted: BTreeSet<Txid>,
    pub crashed: bool,
    wake: Option<u64>,
}

/// The network's shape and faults.
#[derive(Clone, Debug)]
pub struct NetConfig {
    pub latency_ms: (u64, u64),
    pub loss_per_mille: u32,
    pub announce_every_ms: u64,
}

impl Default for NetConfig {
    fn default() -> Self {
        NetConfig {
            latency_ms: (5, 40),
            loss_per_mille: 0,
            announce_every_ms: 1000,
        }
    }
}

pub struct Sim {
    pub now: u64,
    pub rng: Rng,
    pub net: NetConfig,
    pub nodes: Vec<SimNode>,
    /// Partition group of each node; messages between groups are dropped.
    pub groups: Vec<u32>,
    queue: BTreeMap<(u64, u64), Event>,
    seq: u64,
}

impl Sim {
    /// Every node starts from `setup`'s state and chain; node `i` mines with `keys[i]`.
    pub fn new(
        seed: u64,
        setup: &TestChain,
        setup_blocks: &[Arc<Block>],
        keys: Vec<SecretKey>,
        net: NetConfig,
    ) -> Sim {
        let now = setup.next_time_ms;
        let recent: Vec<BranchBlock> = setup_blocks
            .iter()
            .map(|b| BranchBlock {
                block: b.clone(),
                changes: Default::default(),
                weight: crate::schedule::IN_TURN_WEIGHT,
            })
            .collect();
        let n = keys.len();
        let nodes = keys
            .into_iter()
            .map(|key| {
                let config = Config::new(Some(key.address()));
                SimNode {
                    engine: Engine::new(setup.chain.clone(), config, recent.clone(), now),
                    key,
                    state: setup.state.clone(),
                    blocks: setup_blocks.to_vec(),
                    mempool: Vec::new(),
                    conflicted: BTreeSet::new(),
                    crashed: false,
                    wake: None,
                }
            })
            .collect();
        let mut sim = Sim {
            now,
            rng: Rng::new(seed),
            net,
            nodes,
            groups: vec![0; n],
            queue: BTreeMap::new(),
            seq: 0,
        };
        for i in 0..n {
            let peers = sim.reachable_peers(i);
            sim.input(i, Input::Peers { count: peers, now });
            let jitter = sim.rng.range(0, sim.net.announce_every_ms);
            sim.schedule(now + jitter, Event::Announce { node: i });
        }
        sim
    }

    fn schedule(&mut self, at: u64, event: Event) {
        self.seq += 1;
        self.queue.insert((at, self.seq), event);
    }

    fn reachable_peers(&self, i: usize) -> usize {
        (0..self.nodes.len())
            .filter(|&j| j != i && self.groups[j] == self.groups[i] && !self.nodes[j].crashed)
            .count()
    }

    fn send(&mut self, from: usize, to: usize, msg: Msg) {
        if self.groups[from] != self.groups[to] || self.rng.chance(self.net.loss_per_mille) {
            return;
        }
        let delay = self.rng.range(self.net.latency_ms.0, self.net.latency_ms.1);
        self.schedule(self.now + delay, Event::Deliver { to, from, msg });
    }

    fn broadcast(&mut self, from: usize, except: Option<usize>, msg: Msg) {
        for to in 0..self.nodes.len() {
            if to != from && Some(to) != except {
                self.send(from, to, msg.clone());
            }
        }
    }

    /// Splits the network: `groups[i]` is node i's side.
    pub fn partition(&mut self, groups: Vec<u32>) {
        self.groups = groups;
        self.refresh_peer_counts();
    }

    pub fn heal(&mut self) {
        self.groups = vec![0; self.nodes.len()];
        self.refresh_peer_counts();
    }

    pub fn crash(&mut self, node: usize) {
        self.nodes[node].crashed = true;
        self.refresh_peer_counts();
    }

    fn refresh_peer_counts(&mut self) {
        for i in 0..self.nodes.len() {
            let count = self.reachable_peers(i);
            let now = self.now;
            self.input(i, Input::Peers { count, now });
        }
    }

    /// Submits a transaction at node `i`, which relays it if it accepts it.
    pub fn submit(&mut self, i: usize, tx: Transaction) -> bool {
        let ok = self.accept_tx(i, tx.clone());
        if ok {
            self.broadcast(i, None, Msg::Tx(tx));
        }
        ok
    }

    fn accept_tx(&mut self, i: usize, tx: Transaction) -> bool {
        let node = &mut self.nodes[i];
        if node.crashed || node.mempool.iter().any(|t| t.txid() == tx.txid()) {
            return false;
        }
        let chain = node.engine.chain().clone();
        let height = node.engine.tip().0 + 1;
        let mut overlay = Overlay::new(&node.state);
        for t in &node.mempool {
            let ctx = TxContext {
                chain: &chain,
                height,
                offset: 0,
                signatures_checked: false,
            };
            let _ = apply_tx(&mut overlay, t, &ctx);
        }
        let ctx = TxContext {
            chain: &chain,
            height,
            offset: 0,
            signatures_checked: false,
        };
        if apply_tx(&mut overlay, &tx, &ctx).is_err() {
            return false;
        }
        node.mempool.push(tx);
        let pending = node.mempool.len();
        let now = self.now;
        self.input(i, Input::Mempool { pending, now });
        true
    }

    /// Feeds one input to node `i` and executes its outputs; returns the verdicts it gave.
    fn input(&mut self, i: usize, input: Input) -> Vec<(BlockId, Verdict)> {
        if self.nodes[i].crashed {
            return Vec::new();
        }
        let outputs = {
            let node = &mut self.nodes[i];
            node.engine.step(&node.state, &NoCache, input)
        };
        let verdicts = outputs
            .iter()
            .filter_map(|o| match o {
                Output::Verdict { id, verdict, .. } => Some((*id, *verdict)),
                _ => None,
            })
            .collect();
        for o in outputs {
            self.execute(i, o);
        }
        verdicts
    }

    /// A block from a peer: validated, then relayed to the others if accepted (gossip).
    fn receive_block(&mut self, to: usize, from: usize, block: Arc<Block>) {
        let id = block.header.id(&self.nodes[to].engine.chain().id);
        let now = self.now;
        let verdicts = self.input(
            to,
            Input::Block {
                block: block.clone(),
                from: Some(from as u64),
                now,
            },
        );
        if verdicts.contains(&(id, Verdict::Accept)) {
            self.broadcast(to, Some(from), Msg::Block(block));
        }
    }

    fn execute(&mut self, i: usize, output: Output) {
        match output {
            Output::Adopt { rollback, apply } => self.adopt(i, rollback, apply),
            Output::Verdict { .. } | Output::Refused { .. } => {}
            Output::Broadcast(b) => self.broadcast(i, None, Msg::Block(b)),
            Output::Produce {
                height,
                parent,
                timestamp_ms,
            } => self.produce(i, height, parent, timestamp_ms),
            Output::RequestBlocks {
                peer,
                from_height,
                count,
            } => self.send(i, peer as usize, Msg::GetBlocks { from_height, count }),
            Output::WakeAt(at) => {
                self.nodes[i].wake = Some(at);
                self.schedule(at.max(self.now), Event::Wake { node: i, at });
            }
        }
    }

    fn adopt(&mut self, i: usize, rollback: Vec<BranchBlock>, apply: Vec<BranchBlock>) {
        let node = &mut self.nodes[i];
        for b in &rollback {
            node.state
                .apply(&b.changes.inverse())
                .expect("sim: rollback applies");
        }
        for b in &apply {
            node.state.apply(&b.changes).expect("sim: block applies");
        }
        let keep = apply
            .first()
            .map(|b| b.block.header.height as usize)
            .unwrap_or(node.blocks.len());
        node.blocks.truncate(keep);
        node.blocks.extend(apply.iter().map(|b| b.block.clone()));
        let included: BTreeSet<Txid> = apply
            .iter()
            .flat_map(|b| b.block.txs.iter().map(Transaction::txid))
            .collect();
        let mut returned: Vec<Transaction> = rollback
            .iter()
            .rev()
            .flat_map(|b| b.block.txs.iter().cloned())
            .filter(|t| !included.contains(&t.txid()))
            .collect();
        let old = std::mem::take(&mut node.mempool);
        returned.extend(old.into_iter().filter(|t| !included.contains(&t.txid())));
        // Re-validate the pool on the new tip: what now conflicts is reported, the rest stays.
        let chain = node.engine.chain().clone();
        let height = node.engine.tip().0 + 1;
        let mut overlay = Overlay::new(&node.state);
        let mut pool = Vec::new();
        for t in returned {
            let ctx = TxContext {
                chain: &chain,
                height,
                offset: 0,
                signatures_checked: false,
            };
            match apply_tx(&mut overlay, &t, &ctx) {
                Ok(_) => pool.push(t),
                Err(_) => {
                    node.conflicted.insert(t.txid());
                }
            }
        }
        drop(overlay);
        node.mempool = pool;
        let pending = node.mempool.len();
        let now = self.now;
        self.input(i, Input::Mempool { pending, now });
    }

    fn produce(&mut self, i: usize, height: u32, parent: BlockId, timestamp_ms: u64) {
        let node = &self.nodes[i];
        let chain = node.engine.chain().clone();
        let mut overlay = Overlay::new(&node.state);
        let mut txs = Vec::new();
        for t in &node.mempool {
            let ctx = TxContext {
                chain: &chain,
                height,
                offset: 0,
                signatures_checked: false,
            };
            if apply_tx(&mut overlay, t, &ctx).is_ok() {
                txs.push(t.clone());
            }
        }
        drop(overlay);
        let block = Arc::new(Block::build(
            parent,
            height,
            timestamp_ms,
            txs,
            &node.key,
            &chain.id,
        ));
        let now = self.now;
        self.input(
            i,
            Input::Block {
                block,
                from: None,
                now,
            },
        );
    }

    fn deliver(&mut self, to: usize, from: usize, msg: Msg) {
        if self.nodes[to].crashed {
            return;
        }
        let now = self.now;
        match msg {
            Msg::Block(block) => self.receive_block(to, from, block),
            Msg::Tx(tx) => {
                if self.accept_tx(to, tx.clone()) {
                    self.broadcast(to, Some(from), Msg::Tx(tx));
                }
            }
            Msg::Tip(height, tip) => {
                self.input(
                    to,
                    Input::PeerTip {
                        peer: from as u64,
                        height,
                        tip,
                        now,
                    },
                );
            }
            Msg::GetBlocks { from_height, count } => {
                let blocks = &self.nodes[to].blocks;
                let start = (from_height as usize).min(blocks.len());
                let end = (start + count as usize).min(blocks.len());
                let batch = blocks[start..end].to_vec();
                if !batch.is_empty() {
                    self.send(to, from, Msg::Blocks(batch));
                }
            }
            Msg::Blocks(blocks) => {
                for block in blocks {
                    self.input(
                        to,
                        Input::Block {
                            block,
                            from: Some(from as u64),
                            now,
                        },
                    );
                }
            }
        }
    }

    /// Runs the network until virtual time `until`.
    pub fn run_until(&mut self, until: u64) {
        while let Some((&(at, seq), _)) = self.queue.iter().next() {
            if at > until {
                break;
            }
            let Some(event) = self.queue.remove(&(at, seq)) else {
                break;
            };
            self.now = at;
            match event {
                Event::Deliver { to, from, msg } => self.deliver(to, from, msg),
                Event::Wake { node, at } => {
                    if self.nodes[node].wake == Some(at) {
                        self.input(node, Input::Tick { now: at });
                    }
                }
                Event::Announce { node } => {
                    if !self.nodes[node].crashed {
                        let (h, id) = self.nodes[node].engine.tip();
                        self.broadcast(node, None, Msg::Tip(h, id));
                        self.input(node, Input::Tick { now: at });
                    }
                    let every = self.net.announce_every_ms;
                    self.schedule(at + every, Event::Announce { node });
                }
            }
        }
        self.now = self.now.max(until);
    }

    /// Runs for `ms` more virtual milliseconds.
    pub fn run_for(&mut self, ms: u64) {
        let until = self.now + ms;
        self.run_until(until);
    }

    /// Tips of the live nodes.
    pub fn live_tips(&self) -> Vec<(u32, BlockId)> {
        self.nodes
            .iter()
            .filter(|n| !n.crashed)
            .map(|n| n.engine.tip())
            .collect()
    }

    /// Whether every live node has the same tip.
    pub fn converged(&self) -> bool {
        let tips = self.live_tips();
        tips.windows(2).all(|w| w[0] == w[1])
    }
}
