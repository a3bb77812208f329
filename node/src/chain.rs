//! The chain actor: the only writer of the store. It owns the consensus engine, the mempool and
//! the wallet, executes the engine's outputs, answers peers, and runs the closures that RPC
//! handlers send it (one at a time, so every command sees one consistent state).
//!
//! Actions that talk to the network are queued in `outbox` by the synchronous state methods and
//! sent by the actor loop right after, in order; a block is published only after the store write
//! that commits it.

use crate::mempool::{Mempool, MempoolError};
use crate::network::{
    ChannelId, NetEvent, NetworkHandle, Request, Response, Verdict as NetVerdict,
};
use crate::store::Store;
use crate::wallet::{Coin, Wallet};
use libp2p::PeerId;
use libp2p::gossipsub::MessageId;
use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::sync::{mpsc, oneshot};
use wattle_consensus::{BranchBlock, Engine, Input, Output, Verdict};
use wattle_ledger::address::Address;
use wattle_ledger::apply::SignatureCache;
use wattle_ledger::block::{Block, BlockId};
use wattle_ledger::chain::Chain;
use wattle_ledger::codec;
use wattle_ledger::permissions::{GlobalPerm, Permission};
use wattle_ledger::state::{StateValue, read};
use wattle_ledger::tx::{OutPoint, Transaction, Txid};
use wattle_ledger::validate;

/// How long the actor judges fetched blocks before it looks at its other work.
const FETCHED_SLICE: Duration = Duration::from_millis(50);

/// Below this many unseen transactions, a block's signatures are checked while it is judged.
const MIN_UNSEEN: usize = 64;

/// Threads that check signatures in parallel: the cores, at most 8.
fn verify_threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get().min(8))
}

/// A fetched block, decoded, and the ids of its transactions whose signatures passed.
type Prepared = (Arc<Block>, Vec<Txid>);

/// Fetched blocks prepared ahead of the actor, in order, at most this many at a time.
const PREPARED_AHEAD: usize = 16;

/// Starts a thread that decodes fetched `blocks` in order, checks the signatures of their
/// transactions not in `seen` (on all cores when there are many) and sends each block with the
/// ids that passed, at most `PREPARED_AHEAD` ahead of the actor. It stops at an undecodable
/// block (the blocks before it may be good) or when the receiver is gone.
fn spawn_preparer(
    blocks: Vec<Vec<u8>>,
    seen: crate::mempool::VerifiedSet,
    chain: Chain,
    peer: PeerId,
) -> std::io::Result<std::sync::mpsc::Receiver<Prepared>> {
    let (send, prepared) = std::sync::mpsc::sync_channel::<Prepared>(PREPARED_AHEAD);
    std::thread::Builder::new()
        .name("wattle-fetched".into())
        .spawn(move || {
            use wattle_ledger::apply::SignatureCache;
            let limit = chain.params.maximum_block_size as usize;
            let threads = verify_threads();
            for bytes in blocks {
                let block = match codec::decode_with_limit::<Block>(&bytes, limit) {
                    Ok(block) => block,
                    Err(e) => {
                        tracing::warn!(%peer, "peer sent an undecodable block: {e}");
                        return;
                    }
                };
                let unseen: Vec<(Txid, &Transaction)> = block
                    .txs
                    .iter()
                    .map(|t| (t.txid(), t))
                    .filter(|(id, _)| !seen.contains(id))
                    .collect();
                let threads = if unseen.len() >= MIN_UNSEEN {
                    threads
                } else {
                    1
                };
                let passed = crate::mempool::verify_in_parallel(&unseen, &chain, threads);
                drop(unseen);
                if send.send((Arc::new(block), passed)).is_err() {
                    return;
                }
            }
        })?;
    Ok(prepared)
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// Transactions wait at most this long to be relayed, so that one gossip message carries many.
pub const RELAY_DELAY: Duration = Duration::from_millis(5);
/// A relay batch is sent early once it holds this many bytes of transactions.
pub const RELAY_MAX_BYTES: usize = 512 * 1024;
/// Our own transactions still unconfirmed after this long are gossiped again (a peer that was
/// behind may have dropped them), every `REANNOUNCE_AFTER` until confirmed or dropped.
pub const REANNOUNCE_AFTER: Duration = Duration::from_secs(3);
/// At most this many transactions are re-announced per status tick.
const REANNOUNCE_MAX: usize = 5_000;

/// The bytes of one transaction gossip message: the canonical encoding of a list of
/// transactions (DESIGN's tx topic carries batches; see ARCHITECTURE.md).
pub fn encode_tx_batch(txs: &[Transaction]) -> Vec<u8> {
    codec::encode(&txs.to_vec())
}

/// Something to send to the network after the current step.
#[derive(Debug)]
pub enum Action {
    PublishTx(Vec<u8>),
    PublishBlock(Vec<u8>),
    Report(MessageId, PeerId, NetVerdict),
    RequestStatus(PeerId),
    RequestBlocks(PeerId, u32, u32),
    Respond(ChannelId, Response),
    SetPermitted(PeerId, bool),
}

/// What the node knows of a connected peer.
#[derive(Clone, Debug)]
pub struct PeerState {
    pub handle: u64,
    pub address: Address,
    pub inbound: bool,
    pub permitted: bool,
    pub since: Instant,
    pub tip_height: Option<u32>,
}

/// Counters for `/metrics`.
#[derive(Clone, Debug, Default)]
pub struct Metrics {
    pub blocks_committed: u64,
    pub txs_committed: u64,
    pub txs_accepted: u64,
    pub txs_rejected: u64,
    pub reorgs: u64,
    /// Confirmation latency of our own submissions (ms), as a histogram of bucket upper bounds.
    pub confirm_buckets: Vec<(u64, u64)>,
    pub confirm_count: u64,
    pub confirm_sum_ms: u64,
}

const CONFIRM_BOUNDS: [u64; 10] = [50, 100, 200, 300, 500, 1000, 2000, 5000, 10000, u64::MAX];

impl Metrics {
    fn observe_confirmation(&mut self, ms: u64) {
        if self.confirm_buckets.is_empty() {
            self.confirm_buckets = CONFIRM_BOUNDS.iter().map(|b| (*b, 0)).collect();
        }
        for (bound, count) in &mut self.confirm_buckets {
            if ms <= *bound {
                *count += 1;
            }
        }
        self.confirm_count += 1;
        self.confirm_sum_ms += ms;
    }
}

/// Static facts about this node, for getinfo.
#[derive(Clone, Debug)]
pub struct NodeInfo {
    pub port: u16,
    pub rpc_port: u16,
    pub external_ip: String,
    pub params_toml: String,
}

/// Everything the chain actor owns.
pub struct NodeState {
    pub chain: Chain,
    pub store: Arc<Store>,
    pub engine: Engine,
    pub mempool: Mempool,
    pub wallet: Wallet,
    pub info: NodeInfo,
    pub peers: BTreeMap<PeerId, PeerState>,
    pub metrics: Metrics,
    pub conflicted: HashSet<Txid>,
    /// Our own submissions awaiting their first confirmation: txid → (submitted, last relayed).
    pub submitted: HashMap<Txid, (Instant, Instant)>,
    /// Transactions waiting to be relayed in one gossip message, their size, and when the
    /// message is due.
    relay: Vec<Transaction>,
    relay_bytes: usize,
    relay_due: Option<Instant>,
    pub outbox: Vec<Action>,
    pub stop_requested: bool,
    pub fatal: Option<String>,
    pub wake: Option<u64>,
    peer_by_handle: BTreeMap<u64, PeerId>,
    next_handle: u64,
    gossip_blocks: HashMap<BlockId, (MessageId, PeerId)>,
    inputs: VecDeque<Input>,
    /// Fetched answers waiting to be judged, oldest first (`judge_fetched`).
    fetched: VecDeque<Fetched>,
    /// The first height of the last block request to each peer (an answer's blocks follow it).
    requested: HashMap<PeerId, u32>,
}

/// A fetched answer, judged a slice at a time so that the actor answers RPC calls and peers
/// in between (one answer is up to 500 blocks, several seconds of work).
struct Fetched {
    peer: PeerId,
    handle: u64,
    /// The blocks, decoded and their signatures checked by a thread working ahead.
    prepared: std::sync::mpsc::Receiver<Prepared>,
    /// Blocks of the answer not judged yet.
    left: usize,
    /// The height of its last block, if it holds the blocks asked for.
    last: Option<u32>,
    /// Whether the engine counts a request to the peer as on its way because of this answer
    /// (`Engine::judging`), rather than because judging it asked for more.
    held: bool,
    received: Instant,
    from: u32,
    count: usize,
    tip_before: BlockId,
}

impl NodeState {
    pub fn new(
        chain: Chain,
        store: Arc<Store>,
        engine: Engine,
        wallet: Wallet,
        info: NodeInfo,
        mempool_max: usize,
    ) -> NodeState {
        NodeState {
            chain,
            store,
            engine,
            mempool: Mempool::new(mempool_max),
            wallet,
            info,
            peers: BTreeMap::new(),
            metrics: Metrics::default(),
            conflicted: HashSet::new(),
            submitted: HashMap::new(),
            relay: Vec::new(),
            relay_bytes: 0,
            relay_due: None,
            outbox: Vec::new(),
            stop_requested: false,
            fatal: None,
            wake: None,
            peer_by_handle: BTreeMap::new(),
            next_handle: 1,
            gossip_blocks: HashMap::new(),
            inputs: VecDeque::new(),
            fetched: VecDeque::new(),
            requested: HashMap::new(),
        }
    }

    /// Tip height of the committed chain.
    pub fn height(&self) -> u32 {
        self.engine.tip().0
    }

    pub fn permitted_peers(&self) -> usize {
        self.peers.values().filter(|p| p.permitted).count()
    }

    /// Whether `address` holds `perm` for the next block.
    pub fn holds(&self, address: &Address, perm: Permission) -> bool {
        let view = self.mempool.view(&*self.store);
        validate::holds(&view, &self.chain, address, perm, self.height() + 1).unwrap_or(false)
    }

    // ------------------------------------------------------------------ engine

    /// Feeds an input to the engine and executes everything that follows from it.
    pub fn step(&mut self, input: Input) {
        self.inputs.push_back(input);
        while let Some(input) = self.inputs.pop_front() {
            if self.fatal.is_some() {
                return;
            }
            let outputs = self
                .engine
                .step(&*self.store, &self.mempool.verified, input);
            for output in outputs {
                self.execute(output);
            }
            // Blocks that waited for this step's new tip to be stored are judged now.
            if self.inputs.is_empty() && self.engine.has_ready() {
                self.inputs.push_back(Input::Tick { now: now_ms() });
            }
        }
    }

    fn execute(&mut self, output: Output) {
        match output {
            Output::Adopt { rollback, apply } => self.adopt(rollback, apply),
            Output::Verdict {
                id,
                verdict,
                reason,
                ..
            } => self.report_block(id, verdict, reason),
            Output::Broadcast(block) => self.outbox.push(Action::PublishBlock(block.encode())),
            Output::Produce {
                height,
                parent,
                timestamp_ms,
            } => self.produce(height, parent, timestamp_ms),
            Output::RequestBlocks {
                peer,
                from_height,
                count,
            } => {
                if let Some(p) = self.peer_by_handle.get(&peer) {
                    self.requested.insert(*p, from_height);
                    self.outbox
                        .push(Action::RequestBlocks(*p, from_height, count));
                }
            }
            Output::WakeAt(at) => self.wake = Some(at),
            Output::Refused { id, reason } => {
                tracing::warn!(block = %id, "branch refused: {reason}")
            }
        }
    }

    fn report_block(&mut self, id: BlockId, verdict: Verdict, reason: Option<String>) {
        if verdict != Verdict::Accept {
            tracing::debug!(block = %id, ?verdict, reason = reason.as_deref().unwrap_or(""), "block not accepted");
        }
        if let Some((msg_id, peer)) = self.gossip_blocks.remove(&id) {
            let v = match verdict {
                Verdict::Accept => NetVerdict::Accept,
                Verdict::Ignore => NetVerdict::Ignore,
                Verdict::Reject => NetVerdict::Reject,
            };
            self.outbox.push(Action::Report(msg_id, peer, v));
        }
    }

    fn adopt(&mut self, rollback: Vec<BranchBlock>, apply: Vec<BranchBlock>) {
        // Crash safety: the highest height we signed is recorded in the same store write as the
        // block (the Broadcast output follows this Adopt).
        let me = self.wallet.identity().address();
        let signed = apply
            .iter()
            .filter(|b| b.block.header.miner.address() == me)
            .map(|b| b.block.header.height)
            .max()
            .map(u32::to_le_bytes);
        let meta: Vec<(&str, &[u8])> = signed
            .as_ref()
            .map(|h| (crate::store::meta::LAST_SIGNED, h.as_slice()))
            .into_iter()
            .collect();
        if let Err(e) = self.store.adopt_with_meta(&rollback, &apply, &meta) {
            tracing::error!("store write failed, stopping: {e}");
            self.fatal = Some(format!("store write failed: {e}"));
            return;
        }
        if !rollback.is_empty() {
            self.metrics.reorgs += 1;
            tracing::warn!(depth = rollback.len(), "reorganisation");
        }
        let mut included = HashSet::new();
        for b in &apply {
            self.metrics.blocks_committed += 1;
            self.metrics.txs_committed += b.block.txs.len() as u64;
            for tx in &b.block.txs {
                let txid = tx.txid();
                if let Some((at, _)) = self.submitted.remove(&txid) {
                    self.metrics
                        .observe_confirmation(at.elapsed().as_millis() as u64);
                }
                self.conflicted.remove(&txid);
                included.insert(txid);
            }
            tracing::info!(
                height = b.block.header.height,
                txs = b.block.txs.len(),
                "block committed"
            );
        }
        let returned: Vec<Transaction> = rollback
            .iter()
            .rev()
            .flat_map(|b| b.block.txs.iter().cloned())
            .collect();
        let height = self.height();
        for (txid, reason) in
            self.mempool
                .rebuild(&*self.store, &self.chain, height, returned, &included)
        {
            tracing::info!(%txid, "transaction conflicted: {reason}");
            self.conflicted.insert(txid);
        }
        // A lock goes once its coin is gone from the committed state, unless the coin is one
        // an unconfirmed pool transaction creates (a prepared offer waiting for its block).
        let store = self.store.clone();
        let pool = self.mempool.view(&*store);
        if let Err(e) = self.wallet.forget_spent(|o| {
            read::utxo(&*store, o).ok().flatten().is_some()
                || read::utxo(&pool, o).ok().flatten().is_some()
        }) {
            tracing::warn!("cannot update wallet locks: {e}");
        }
        // The engine must learn the new pool size before any other input: judged on a stale
        // count, it would sign an empty block at once after a slow store write.
        let pending = self.mempool.len();
        self.inputs.push_back(Input::Mempool {
            pending,
            now: now_ms(),
        });
        self.recheck_peers();
    }

    fn produce(&mut self, height: u32, parent: BlockId, timestamp_ms: u64) {
        let max = self.chain.params.maximum_block_size as usize - 4096;
        let txs = self.mempool.block_candidates(max);
        let key = self.wallet.identity().clone();
        let block = Block::build(parent, height, timestamp_ms, txs, &key, &self.chain.id);
        tracing::debug!(height, txs = block.txs.len(), "produced block");
        self.inputs.push_back(Input::Block {
            block: Arc::new(block),
            from: None,
            now: now_ms(),
        });
    }

    /// Re-checks every peer's connect permission (after each commit and rollback).
    fn recheck_peers(&mut self) {
        let changes: Vec<(PeerId, bool)> = self
            .peers
            .iter()
            .filter_map(|(id, p)| {
                let allowed = self.holds(&p.address, Permission::Global(GlobalPerm::Connect));
                (allowed != p.permitted).then_some((*id, allowed))
            })
            .collect();
        for (id, allowed) in changes {
            if let Some(p) = self.peers.get_mut(&id) {
                p.permitted = allowed;
            }
            tracing::info!(peer = %id, allowed, "peer connect permission changed");
            self.outbox.push(Action::SetPermitted(id, allowed));
            if allowed {
                self.outbox.push(Action::RequestStatus(id));
            }
        }
        let count = self.permitted_peers();
        self.inputs.push_back(Input::Peers {
            count,
            now: now_ms(),
        });
    }

    // ------------------------------------------------------------------ transactions

    /// Validates a transaction and adds it to the mempool; relays it if `relay`.
    pub fn submit(&mut self, tx: Transaction, relay: bool) -> Result<Txid, MempoolError> {
        let height = self.height();
        let txid = self
            .mempool
            .add(&*self.store, &self.chain, height, tx.clone())?;
        self.metrics.txs_accepted += 1;
        let now = Instant::now();
        self.submitted.insert(txid, (now, now));
        if relay {
            self.queue_relay(tx.clone());
        }
        // Coins the transaction spends are no longer locked (MultiChain does the same).
        let spent: Vec<OutPoint> = tx.inputs.iter().map(|i| i.prev).collect();
        if spent.iter().any(|o| self.wallet.is_locked(o))
            && let Err(e) = self.wallet.unlock(&spent)
        {
            tracing::warn!("cannot update wallet locks: {e}");
        }
        let pending = self.mempool.len();
        self.step(Input::Mempool {
            pending,
            now: now_ms(),
        });
        Ok(txid)
    }

    /// Queues a transaction for the next relay batch.
    fn queue_relay(&mut self, tx: Transaction) {
        self.relay_bytes += codec::encoded_len(&tx);
        self.relay.push(tx);
        if self.relay_bytes >= RELAY_MAX_BYTES {
            self.flush_relay();
        } else if self.relay_due.is_none() {
            self.relay_due = Some(Instant::now() + RELAY_DELAY);
        }
    }

    /// When the pending relay batch is due, if there is one.
    pub fn relay_due(&self) -> Option<Instant> {
        self.relay_due
    }

    /// Sends the pending relay batch (one gossip message).
    pub fn flush_relay(&mut self) {
        self.relay_due = None;
        self.relay_bytes = 0;
        if self.relay.is_empty() {
            return;
        }
        let batch = std::mem::take(&mut self.relay);
        self.outbox.push(Action::PublishTx(encode_tx_batch(&batch)));
    }

    /// Gossips again our own transactions that are still unconfirmed after `REANNOUNCE_AFTER`
    /// (a peer that was behind may have dropped them; gossip does not repeat a message), and
    /// forgets those that left the pool without confirmation (conflicted).
    pub fn reannounce(&mut self) {
        let now = Instant::now();
        let mut due = Vec::new();
        let mut gone = Vec::new();
        for (txid, (_, last)) in &self.submitted {
            if now.duration_since(*last) < REANNOUNCE_AFTER {
                continue;
            }
            if !self.mempool.contains(txid) {
                gone.push(*txid);
            } else if due.len() < REANNOUNCE_MAX {
                due.push(*txid);
            }
        }
        for txid in gone {
            self.submitted.remove(&txid);
        }
        if !due.is_empty() {
            tracing::debug!(count = due.len(), "re-announcing unconfirmed transactions");
        }
        for txid in due {
            if let Some(entry) = self.submitted.get_mut(&txid) {
                entry.1 = now;
            }
            if let Some(tx) = self.mempool.get(&txid).cloned() {
                self.queue_relay(tx);
            }
        }
    }

    /// Coins of `addresses` (all wallet addresses if empty) as the mempool sees them.
    pub fn wallet_coins(
        &self,
        addresses: &[Address],
        include_locked: bool,
        min_conf: u32,
    ) -> Vec<Coin> {
        let wanted: HashSet<Address> = if addresses.is_empty() {
            self.wallet.addresses().into_iter().collect()
        } else {
            addresses.iter().copied().collect()
        };
        let tip = self.height();
        let mut coins: BTreeMap<OutPoint, Coin> = BTreeMap::new();
        for address in &wanted {
            for (op, u) in self.store.utxos_of(address).unwrap_or_default() {
                let confirmations = tip + 1 - u.height.min(tip);
                coins.insert(
                    op,
                    Coin {
                        outpoint: op,
                        output: u.output,
                        confirmations,
                    },
                );
            }
        }
        for (k, v) in self.mempool.utxo_writes() {
            match v {
                Some(StateValue::Utxo(u)) if wanted.contains(&u.output.address) => {
                    coins.insert(
                        *k,
                        Coin {
                            outpoint: *k,
                            output: u.output.clone(),
                            confirmations: 0,
                        },
                    );
                }
                None => {
                    coins.remove(k);
                }
                _ => {}
            }
        }
        coins
            .into_values()
            .filter(|c| include_locked || !self.wallet.is_locked(&c.outpoint))
            .filter(|c| c.confirmations >= min_conf)
            .collect()
    }

    // ------------------------------------------------------------------ network events

    pub fn on_net_event(&mut self, event: NetEvent) {
        match event {
            NetEvent::PeerConnected {
                peer,
                address,
                inbound,
            } => self.on_peer_connected(peer, address, inbound),
            NetEvent::PeerDisconnected { peer } => {
                self.requested.remove(&peer);
                if let Some(p) = self.peers.remove(&peer) {
                    self.peer_by_handle.remove(&p.handle);
                }
                let count = self.permitted_peers();
                self.step(Input::Peers {
                    count,
                    now: now_ms(),
                });
            }
            NetEvent::Tx {
                peer,
                msg_id,
                bytes,
            } => self.on_gossip_tx(peer, msg_id, bytes),
            NetEvent::Block {
                peer,
                msg_id,
                bytes,
            } => self.on_gossip_block(peer, msg_id, bytes),
            NetEvent::Request {
                peer,
                request,
                channel,
            } => self.on_request(peer, request, channel),
        }
    }

    fn on_peer_connected(&mut self, peer: PeerId, address: Address, inbound: bool) {
        let handle = self.next_handle;
        self.next_handle += 1;
        let permitted = self.holds(&address, Permission::Global(GlobalPerm::Connect));
        let fmt = self.chain.params.address_format();
        tracing::info!(peer = %peer, address = %fmt.encode(&address), inbound, permitted, "peer connected");
        self.peers.insert(
            peer,
            PeerState {
                handle,
                address,
                inbound,
                permitted,
                since: Instant::now(),
                tip_height: None,
            },
        );
        self.peer_by_handle.insert(handle, peer);
        if permitted {
            self.outbox.push(Action::SetPermitted(peer, true));
            self.outbox.push(Action::RequestStatus(peer));
        }
        let count = self.permitted_peers();
        self.step(Input::Peers {
            count,
            now: now_ms(),
        });
    }

    /// A gossiped batch of transactions. Reject (peer penalised, not forwarded) when it does not
    /// decode, is empty, or holds a transaction with a stateless fault (the rest of the batch
    /// is then not looked at); Accept (forwarded) when at least one transaction entered the
    /// pool; Ignore otherwise (all known already, or state-dependent faults).
    fn on_gossip_tx(&mut self, peer: PeerId, msg_id: MessageId, bytes: Vec<u8>) {
        let limit = self.chain.params.maximum_block_size as usize;
        let verdict = match codec::decode_with_limit::<Vec<Transaction>>(&bytes, limit) {
            Err(e) => {
                tracing::debug!(%peer, "undecodable transaction batch: {e}");
                NetVerdict::Reject
            }
            Ok(txs) if txs.is_empty() => {
                tracing::debug!(%peer, "undecodable transaction batch: empty");
                NetVerdict::Reject
            }
            Ok(txs) => {
                let height = self.height();
                let mut verdict = NetVerdict::Ignore;
                for tx in txs {
                    match self.mempool.add(&*self.store, &self.chain, height, tx) {
                        Ok(_) => {
                            self.metrics.txs_accepted += 1;
                            verdict = NetVerdict::Accept;
                        }
                        Err(MempoolError::Invalid(e)) if e.is_stateless() => {
                            self.metrics.txs_rejected += 1;
                            tracing::debug!(%peer, "invalid transaction: {e}");
                            verdict = NetVerdict::Reject;
                            break;
                        }
                        Err(_) => {}
                    }
                }
                verdict
            }
        };
        self.outbox.push(Action::Report(msg_id, peer, verdict));
        if verdict == NetVerdict::Accept {
            let pending = self.mempool.len();
            self.step(Input::Mempool {
                pending,
                now: now_ms(),
            });
        }
    }

    fn on_gossip_block(&mut self, peer: PeerId, msg_id: MessageId, bytes: Vec<u8>) {
        let limit = self.chain.params.maximum_block_size as usize;
        let block = match codec::decode_with_limit::<Block>(&bytes, limit) {
            Ok(b) => b,
            Err(e) => {
                tracing::debug!(%peer, "undecodable block: {e}");
                self.outbox
                    .push(Action::Report(msg_id, peer, NetVerdict::Reject));
                return;
            }
        };
        let Some(handle) = self.peers.get(&peer).map(|p| p.handle) else {
            self.outbox
                .push(Action::Report(msg_id, peer, NetVerdict::Ignore));
            return;
        };
        let id = block.header.id(&self.chain.id);
        self.preverify(&block);
        if self.gossip_blocks.len() > 4096 {
            self.gossip_blocks.clear();
        }
        self.gossip_blocks.insert(id, (msg_id, peer));
        self.step(Input::Block {
            block: Arc::new(block),
            from: Some(handle),
            now: now_ms(),
        });
    }

    /// The transactions of `block` this node has not verified yet: their ids and positions.
    fn unseen(&self, block: &Block) -> Vec<(Txid, usize)> {
        block
            .txs
            .iter()
            .enumerate()
            .map(|(i, t)| (t.txid(), i))
            .filter(|(id, _)| !self.mempool.verified.contains(id))
            .collect()
    }

    /// Checks the signatures of a block's transactions this node has not verified yet on all
    /// cores at once, and remembers those that pass (the signature cache), so that judging the
    /// block — one transaction after another on this actor — does not check them again. A
    /// transaction that fails is left to the judgement, which reports it. Worth it only for
    /// blocks with many unseen transactions: a node catching up, or one that missed the gossip.
    fn preverify(&mut self, block: &Block) {
        let unseen: Vec<(Txid, &Transaction)> = self
            .unseen(block)
            .into_iter()
            .map(|(id, i)| (id, &block.txs[i]))
            .collect();
        let threads = verify_threads();
        if unseen.len() < MIN_UNSEEN || threads < 2 {
            return;
        }
        let verified = crate::mempool::verify_in_parallel(&unseen, &self.chain, threads);
        for txid in verified {
            self.mempool.verified.insert(txid);
        }
    }

    /// Blocks fetched by a sync request: queued, to be judged in order by `judge_fetched`. A
    /// thread decodes them and checks their signatures (itself on all cores) a few blocks ahead
    /// while this actor judges and stores the one before, so that the store writes and state
    /// reads overlap the signature checks, and the actor is never busy with a whole answer.
    pub fn on_blocks(&mut self, peer: PeerId, blocks: Vec<Vec<u8>>) {
        let Some(handle) = self.peers.get(&peer).map(|p| p.handle) else {
            return;
        };
        self.engine.answered(handle);
        let (received, count) = (Instant::now(), blocks.len());
        let last = self
            .requested
            .remove(&peer)
            .filter(|_| count > 0)
            .and_then(|from| from.checked_add(count as u32 - 1));
        let seen = self.mempool.verified.clone();
        let prepared = match spawn_preparer(blocks, seen, self.chain.clone(), peer) {
            Ok(prepared) => prepared,
            Err(e) => {
                // As a failed request: the peer's tip is asked for again at its next status.
                tracing::warn!(%peer, "fetched blocks dropped: no thread to decode them: {e}");
                return;
            }
        };
        if self.fetched.is_empty()
            && let Some(last) = last
        {
            self.prefetch(handle, last);
        }
        let held = self.engine.judging(handle, now_ms());
        self.fetched.push_back(Fetched {
            peer,
            handle,
            prepared,
            left: count,
            last,
            held,
            received,
            from: self.height(),
            count,
            tip_before: self.engine.tip().1,
        });
    }

    /// Whether fetched blocks wait to be judged.
    pub fn has_fetched(&self) -> bool {
        !self.fetched.is_empty()
    }

    /// Judges queued fetched blocks in order until `budget` has passed (at least one block).
    /// When the last block of an answer is judged, the peer is asked for the next one if it is
    /// still ahead of us.
    pub fn judge_fetched(&mut self, budget: Duration) {
        let deadline = Instant::now().checked_add(budget);
        while let Some(f) = self.fetched.front_mut() {
            if f.held {
                // The hold is ours: judging the blocks may ask the peer for more (a fork).
                self.engine.answered(f.handle);
                f.held = false;
            }
            let handle = f.handle;
            // Waits for the thread working ahead; it ends early at an undecodable block.
            match f.prepared.recv() {
                Ok((block, passed)) => {
                    f.left = f.left.saturating_sub(1);
                    for txid in passed {
                        self.mempool.verified.insert(txid);
                    }
                    self.step(Input::Block {
                        block,
                        from: Some(handle),
                        now: now_ms(),
                    });
                }
                Err(_) => f.left = 0,
            }
            let Some(f) = self.fetched.front_mut() else {
                break;
            };
            let finished = f.left == 0;
            if finished {
                // The next answer, if any, is held by `finish_fetched`.
                self.finish_fetched();
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                if !finished && let Some(f) = self.fetched.front_mut() {
                    f.held = self.engine.judging(f.handle, now_ms());
                }
                return;
            }
        }
    }

    /// The last block of the oldest fetched answer was judged.
    fn finish_fetched(&mut self) {
        let Some(f) = self.fetched.pop_front() else {
            return;
        };
        let progressed = self.engine.tip().1 != f.tip_before;
        self.engine.judged(f.handle, progressed);
        // The next answer is judged now: ask for the one after it meanwhile.
        if let Some(next) = self.fetched.front_mut()
            && let Some(last) = next.last
        {
            let handle = next.handle;
            if next.held {
                self.engine.answered(handle);
            }
            self.prefetch(handle, last);
            if let Some(next) = self.fetched.front_mut() {
                next.held = self.engine.judging(handle, now_ms());
            }
        }
        tracing::info!(
            peer = %f.peer,
            blocks = f.count,
            from = f.from,
            to = self.height(),
            ms = f.received.elapsed().as_millis() as u64,
            "fetched blocks judged and written"
        );
        // The peer's tip again: if these blocks moved us but left us below it, the engine asks
        // for the next batch now rather than at the next status poll (if they did not move us,
        // it does not ask for that tip again).
        if let Some((height, tip)) = self.engine.peer_tip(f.handle) {
            self.step(Input::PeerTip {
                peer: f.handle,
                height,
                tip,
                now: now_ms(),
            });
        }
    }

    /// Asks the peer behind `handle` for the blocks above `last` (see `Engine::prefetch`).
    fn prefetch(&mut self, handle: u64, last: u32) {
        for output in self.engine.prefetch(handle, last, now_ms()) {
            self.execute(output);
        }
    }

    /// A block request to `peer` brought nothing: it may be asked again at its next status.
    pub fn on_no_blocks(&mut self, peer: PeerId) {
        self.requested.remove(&peer);
        if let Some(p) = self.peers.get(&peer) {
            self.engine.answered(p.handle);
        }
    }

    pub fn on_status(&mut self, peer: PeerId, height: u32, tip: BlockId) {
        let Some(p) = self.peers.get_mut(&peer) else {
            return;
        };
        p.tip_height = Some(height);
        let handle = p.handle;
        // A peer behind us on our own chain has nothing for us. The engine knows only the
        // recent blocks and would take an older tip for a fork and fetch blocks around it.
        if height < self.height() && self.store.main_id_at(height).ok().flatten() == Some(tip) {
            return;
        }
        self.step(Input::PeerTip {
            peer: handle,
            height,
            tip,
            now: now_ms(),
        });
    }

    fn on_request(&mut self, peer: PeerId, request: Request, channel: ChannelId) {
        let permitted = self.peers.get(&peer).is_some_and(|p| p.permitted);
        let response = match request {
            Request::GetParams => match self.store.block_at_height(0) {
                Ok(Some(genesis)) => Response::Params {
                    params: self.info.params_toml.clone().into_bytes(),
                    genesis: genesis.encode(),
                },
                _ => Response::Denied("no genesis".into()),
            },
            _ if !permitted => Response::Denied("no connect permission".into()),
            Request::GetStatus => {
                let (height, tip) = self.engine.tip();
                Response::Status { height, tip: tip.0 }
            }
            Request::GetBlocks { from_height, count } => {
                let mut blocks = Vec::new();
                let mut size = 0usize;
                let end = from_height.saturating_add(count.min(500));
                for h in from_height..end {
                    match self.store.block_at_height(h) {
                        Ok(Some(b)) => {
                            let bytes = b.encode();
                            size += bytes.len();
                            if size > 32 * 1024 * 1024 && !blocks.is_empty() {
                                break;
                            }
                            blocks.push(bytes);
                        }
                        _ => break,
                    }
                }
                Response::Blocks(blocks)
            }
        };
        self.outbox.push(Action::Respond(channel, response));
    }
}

/// A closure run on the chain actor.
pub type Job = Box<dyn FnOnce(&mut NodeState) + Send>;

/// The cloneable way to reach the chain actor.
#[derive(Clone)]
pub struct ChainHandle {
    jobs: mpsc::Sender<Job>,
}

/// The actor has stopped.
#[derive(Debug, Clone, thiserror::Error)]
#[error("the node is shutting down")]
pub struct Stopped;

impl ChainHandle {
    /// Runs `f` on the actor with exclusive access to the node state and returns its result.
    pub async fn call<R: Send + 'static>(
        &self,
        f: impl FnOnce(&mut NodeState) -> R + Send + 'static,
    ) -> Result<R, Stopped> {
        let (tx, rx) = oneshot::channel();
        let job: Job = Box::new(move |state| {
            let _ = tx.send(f(state));
        });
        self.jobs.send(job).await.map_err(|_| Stopped)?;
        rx.await.map_err(|_| Stopped)
    }
}

/// Results of network requests, fed back into the actor.
enum Internal {
    Status(PeerId, u32, BlockId),
    Blocks(PeerId, Vec<Vec<u8>>),
    /// A block request that brought no blocks (an error, or another answer).
    NoBlocks(PeerId),
}

/// Runs the chain actor until `stop` is requested or a fatal error occurs. Returns the fatal
/// error, if any.
pub struct ChainActor {
    state: NodeState,
    net: NetworkHandle,
    net_events: mpsc::Receiver<NetEvent>,
    jobs: mpsc::Receiver<Job>,
}

impl ChainActor {
    /// The job queue holds 1024 commands; RPC callers wait when it is full.
    pub fn new(
        state: NodeState,
        net: NetworkHandle,
        net_events: mpsc::Receiver<NetEvent>,
    ) -> (ChainActor, ChainHandle) {
        let (tx, rx) = mpsc::channel(1024);
        (
            ChainActor {
                state,
                net,
                net_events,
                jobs: rx,
            },
            ChainHandle { jobs: tx },
        )
    }

    pub async fn run(mut self) -> Result<(), String> {
        let (internal_tx, mut internal_rx) = mpsc::channel::<Internal>(1024);
        let mut status_timer = tokio::time::interval(Duration::from_millis(1000));
        status_timer.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        self.state.step(Input::Tick { now: now_ms() });
        loop {
            self.flush(&internal_tx).await;
            if let Some(f) = self.state.fatal.clone() {
                return Err(f);
            }
            if self.state.stop_requested {
                return Ok(());
            }
            let wake = self
                .state
                .wake
                .map(|w| w.saturating_sub(now_ms()))
                .unwrap_or(60_000);
            let relay_due = self.state.relay_due();
            tokio::select! {
                _ = tokio::time::sleep_until(relay_due.unwrap_or_else(Instant::now).into()), if relay_due.is_some() => {
                    self.state.flush_relay();
                }
                job = self.jobs.recv() => match job {
                    Some(job) => job(&mut self.state),
                    None => return Ok(()),
                },
                event = self.net_events.recv() => match event {
                    Some(event) => self.state.on_net_event(event),
                    None => return Err("the network task stopped".into()),
                },
                // Fetched blocks, a slice at a time: whatever else is ready is handled between.
                _ = std::future::ready(()), if self.state.has_fetched() => {
                    // RPC calls that wait go first: an answer's slices take seconds in all.
                    while !self.state.stop_requested && self.state.fatal.is_none() {
                        let Ok(job) = self.jobs.try_recv() else { break };
                        job(&mut self.state);
                    }
                    self.state.judge_fetched(FETCHED_SLICE);
                    // This branch is always ready: without a yield, tasks woken on this worker
                    // (an RPC call's reply, say) would wait until the whole answer is judged.
                    tokio::task::yield_now().await;
                }
                Some(internal) = internal_rx.recv() => match internal {
                    Internal::Status(peer, height, tip) => self.state.on_status(peer, height, tip),
                    Internal::Blocks(peer, blocks) => self.state.on_blocks(peer, blocks),
                    Internal::NoBlocks(peer) => self.state.on_no_blocks(peer),
                },
                _ = tokio::time::sleep(Duration::from_millis(wake)) => {
                    self.state.wake = None;
                    self.state.step(Input::Tick { now: now_ms() });
                }
                _ = status_timer.tick() => {
                    let peers: Vec<PeerId> = self.state.peers.iter().filter(|(_, p)| p.permitted).map(|(id, _)| *id).collect();
                    for p in peers {
                        self.state.outbox.push(Action::RequestStatus(p));
                    }
                    self.state.reannounce();
                    self.state.step(Input::Tick { now: now_ms() });
                }
            }
        }
    }

    async fn flush(&mut self, internal: &mpsc::Sender<Internal>) {
        for action in std::mem::take(&mut self.state.outbox) {
            match action {
                Action::PublishTx(bytes) => {
                    let _ = self.net.publish_tx(bytes);
                }
                Action::PublishBlock(bytes) => {
                    if let Err(e) = self.net.publish_block(bytes).await {
                        tracing::debug!("block not published: {e}");
                    }
                }
                Action::Report(msg_id, peer, verdict) => {
                    let _ = self.net.report(msg_id, peer, verdict).await;
                }
                Action::Respond(channel, response) => {
                    let _ = self.net.respond(channel, response).await;
                }
                Action::SetPermitted(peer, allowed) => {
                    let _ = self.net.set_permitted(peer, allowed).await;
                }
                Action::RequestStatus(peer) => {
                    let (net, tx) = (self.net.clone(), internal.clone());
                    tokio::spawn(async move {
                        if let Ok(Response::Status { height, tip }) =
                            net.request(peer, Request::GetStatus).await
                        {
                            let _ = tx
                                .send(Internal::Status(peer, height, wattle_ledger::Hash256(tip)))
                                .await;
                        }
                    });
                }
                Action::RequestBlocks(peer, from_height, count) => {
                    let (net, tx) = (self.net.clone(), internal.clone());
                    tokio::spawn(async move {
                        match net
                            .request(peer, Request::GetBlocks { from_height, count })
                            .await
                        {
                            Ok(Response::Blocks(blocks)) => {
                                let _ = tx.send(Internal::Blocks(peer, blocks)).await;
                            }
                            Ok(other) => {
                                tracing::debug!(%peer, "block request answered with {other:?}");
                                let _ = tx.send(Internal::NoBlocks(peer)).await;
                            }
                            Err(e) => {
                                tracing::debug!(%peer, "block request failed: {e}");
                                let _ = tx.send(Internal::NoBlocks(peer)).await;
                            }
                        }
                    });
                }
            }
        }
    }
}

#[cfg(test)]
#[path = "chain_tests.rs"]
mod tests;
