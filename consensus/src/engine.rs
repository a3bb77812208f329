//! The consensus engine: a state machine the node drives with `step(view, cache, input)` and whose
//! outputs it executes. It never blocks, never reads a clock and never touches storage: the node
//! passes the committed state (`view`, at the main tip) and the time.
//!
//! What it decides (DESIGN §4):
//! - whether a received block is valid on its own branch (judged on an overlay of that branch's
//!   state) and the verdict for gossip (Accept / Ignore / Reject);
//! - fork choice: the heaviest valid branch, equal weight → the lower tip id; reorgs deeper than
//!   `max_reorg_depth`, or across an admin or mine permission change older than
//!   `lock_admin_mine_rounds` rounds, are refused;
//! - when this node's miner should produce (in turn after `due`, stand-ins after fallback timeouts,
//!   never twice at a height, not before the start-up sync);
//! - which blocks to ask peers for (sync planning).

use crate::schedule;
use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use wattle_ledger::address::Address;
use wattle_ledger::apply::{SignatureCache, apply_block};
use wattle_ledger::block::{Block, BlockId};
use wattle_ledger::chain::Chain;
use wattle_ledger::error::BlockError;
use wattle_ledger::state::{Changeset, LedgerView, StackedView, read};

/// An opaque peer handle assigned by the node.
pub type PeerId = u64;

/// Local (not hashed) settings.
#[derive(Clone, Debug)]
pub struct Config {
    /// The address this node mines with, if it holds or may hold `mine`.
    pub miner: Option<Address>,
    /// Deepest reorg accepted (DESIGN default 1000 blocks).
    pub max_reorg_depth: u32,
    /// MultiChain's lock-admin-mine-rounds (default 10; 0: off): a block whose fork point is
    /// this many rounds (× spacing blocks, MultiChain's M − active + 1) or more below the tip is
    /// refused if the main-chain blocks above the fork point change an admin or mine permission,
    /// so that once a revocation has settled, the revoked miner cannot write it away.
    pub lock_admin_mine_rounds: u32,
    /// Blocks with an unknown parent held while their ancestors are fetched.
    pub max_orphans: usize,
    /// Blocks from too far in the future held for a later recheck.
    pub max_future: usize,
    /// The highest height this node ever signed (crash safety: never sign at or below it).
    pub last_signed: Option<u32>,
    /// Blocks asked for in one request.
    pub sync_batch: u32,
    /// A peer whose tip we are still below is asked again after this long without progress
    /// (its answer was lost, or the request timed out: the network gives up after 30 s).
    pub sync_retry_ms: u64,
}

impl Config {
    pub fn new(miner: Option<Address>) -> Config {
        Config {
            miner,
            max_reorg_depth: 1000,
            lock_admin_mine_rounds: 10,
            max_orphans: 256,
            max_future: 64,
            last_signed: None,
            sync_batch: 500,
            sync_retry_ms: 35_000,
        }
    }
}

#[derive(Clone, Debug)]
pub enum Input {
    /// Time passed.
    Tick { now: u64 },
    /// A block arrived from a peer (`from: Some`) or was produced here (`from: None`).
    Block {
        block: Arc<Block>,
        from: Option<PeerId>,
        now: u64,
    },
    /// The number of transactions waiting in the mempool.
    Mempool { pending: usize, now: u64 },
    /// A peer's tip.
    PeerTip {
        peer: PeerId,
        height: u32,
        tip: BlockId,
        now: u64,
    },
    /// The number of connected peers that hold `connect`.
    Peers { count: usize, now: u64 },
}

/// The gossip verdict for a block.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Valid: forward it.
    Accept,
    /// Cannot be judged or not useful now (state-dependent): drop, no penalty.
    Ignore,
    /// Faulty whatever the state: drop and penalise the sender.
    Reject,
}

/// A block with its state changes and the weight it adds to its branch (persisted by the node so
/// that fork choice survives a restart).
#[derive(Clone, Debug)]
pub struct BranchBlock {
    pub block: Arc<Block>,
    pub changes: Changeset,
    pub weight: u64,
}

#[derive(Clone, Debug)]
pub enum Output {
    /// Make the branch ending with `apply` the main chain in ONE store write: undo `rollback`
    /// (newest first; apply each changeset's inverse), then apply `apply` (oldest first).
    Adopt {
        rollback: Vec<BranchBlock>,
        apply: Vec<BranchBlock>,
    },
    /// The verdict on a received block, for gossip validation.
    Verdict {
        id: BlockId,
        from: Option<PeerId>,
        verdict: Verdict,
        reason: Option<String>,
    },
    /// Publish our own block (only after the `Adopt` that commits it).
    Broadcast(Arc<Block>),
    /// Build, sign and feed back a block at `height` on `parent` with this timestamp.
    Produce {
        height: u32,
        parent: BlockId,
        timestamp_ms: u64,
    },
    /// Ask a peer for its main-chain blocks from `from_height`.
    RequestBlocks {
        peer: PeerId,
        from_height: u32,
        count: u32,
    },
    /// Call `step(Tick)` again at this time.
    WakeAt(u64),
    /// A valid but refused branch (too deep a reorg), for the log.
    Refused { id: BlockId, reason: String },
}

/// A block and the peer it came from (`None`: produced here).
type Received = (Arc<Block>, Option<PeerId>);

/// Whether a block's changes grant or revoke an admin or mine permission.
fn changes_admin_or_mine(changes: &Changeset) -> bool {
    use wattle_ledger::permissions::{GlobalPerm, Permission};
    use wattle_ledger::state::StateKey;
    changes.changes.iter().any(|(key, c)| {
        matches!(
            key,
            StateKey::Perm(_, Permission::Global(GlobalPerm::Admin | GlobalPerm::Mine))
        ) && c.old != c.new
    })
}

/// Whether `out` changes the main chain: the view of the step that made it is then out of date.
fn main_changed(out: &[Output]) -> bool {
    out.iter().any(|o| matches!(o, Output::Adopt { .. }))
}

impl Input {
    /// The time the input carries.
    pub fn now(&self) -> u64 {
        match self {
            Input::Tick { now }
            | Input::Block { now, .. }
            | Input::Mempool { now, .. }
            | Input::PeerTip { now, .. }
            | Input::Peers { now, .. } => *now,
        }
    }
}

struct Entry {
    block: Arc<Block>,
    id: BlockId,
    changes: Changeset,
    weight: u64,
}

struct SideEntry {
    entry: Entry,
    parent: BlockId,
}

/// The consensus state machine of one node.
pub struct Engine {
    chain: Chain,
    config: Config,
    /// Recent main-chain blocks, oldest first; the last one is the tip the view shows.
    main: VecDeque<Entry>,
    main_heights: BTreeMap<BlockId, u32>,
    side: BTreeMap<BlockId, SideEntry>,
    /// Blocks waiting for their parent, by parent id.
    orphans: BTreeMap<BlockId, Vec<Received>>,
    orphan_count: usize,
    future: Vec<Received>,
    /// Blocks whose turn came after the main chain changed in the same step (orphans whose
    /// parent just joined it, say): the view a step is given does not show that change yet, so
    /// they are judged at the start of the next step, on the view that does.
    ready: Vec<Received>,
    tip_received_ms: u64,
    mempool_pending: usize,
    peers: usize,
    started_ms: u64,
    synced: bool,
    /// The height we asked the node to produce at, and when (retried after a fallback timeout).
    produce_pending: Option<(u32, u64)>,
    peer_tips: BTreeMap<PeerId, (u32, BlockId)>,
    /// When we asked each peer for blocks, until it answers (`answered`).
    asked: BTreeMap<PeerId, u64>,
    /// A peer tip whose last answer moved our tip nowhere (a lighter branch, say): not asked
    /// for again until the peer reports another tip.
    fruitless: BTreeMap<PeerId, (u32, BlockId)>,
    last_wake: Option<u64>,
}

impl Engine {
    /// `recent`: the last main-chain blocks, oldest first, tip last (at least the tip). Reorgs
    /// cannot reach below the oldest.
    pub fn new(chain: Chain, config: Config, recent: Vec<BranchBlock>, now: u64) -> Engine {
        let mut main = VecDeque::new();
        let mut main_heights = BTreeMap::new();
        for b in recent {
            let id = b.block.header.id(&chain.id);
            main_heights.insert(id, b.block.header.height);
            main.push_back(Entry {
                block: b.block,
                id,
                changes: b.changes,
                weight: b.weight,
            });
        }
        Engine {
            chain,
            config,
            main,
            main_heights,
            side: BTreeMap::new(),
            orphans: BTreeMap::new(),
            orphan_count: 0,
            future: Vec::new(),
            ready: Vec::new(),
            tip_received_ms: now,
            mempool_pending: 0,
            peers: 0,
            started_ms: now,
            synced: false,
            produce_pending: None,
            peer_tips: BTreeMap::new(),
            asked: BTreeMap::new(),
            fruitless: BTreeMap::new(),
            last_wake: None,
        }
    }

    pub fn chain(&self) -> &Chain {
        &self.chain
    }

    /// The main tip: (height, id).
    pub fn tip(&self) -> (u32, BlockId) {
        self.main
            .back()
            .map(|e| (e.block.header.height, e.id))
            .unwrap_or_default()
    }

    fn tip_block(&self) -> Option<&Arc<Block>> {
        self.main.back().map(|e| &e.block)
    }

    /// The last tip `peer` reported: (height, id).
    pub fn peer_tip(&self, peer: PeerId) -> Option<(u32, BlockId)> {
        self.peer_tips.get(&peer).copied()
    }

    /// `peer` answered our block request (or the request failed): we may ask it again.
    pub fn answered(&mut self, peer: PeerId) {
        self.asked.remove(&peer);
    }

    /// `peer`'s answer is still being judged, a part at a time: until `answered` is called
    /// again, count it as a request on its way, so that neither the peer's tip nor its gossiped
    /// blocks ask for the same blocks meanwhile. Returns false (and changes nothing) if a
    /// request to it is already on its way (one the judged blocks made: a fork further back).
    pub fn judging(&mut self, peer: PeerId, now: u64) -> bool {
        if self.waiting_on(peer, now) {
            return false;
        }
        self.asked.insert(peer, now);
        true
    }

    /// Asks `peer` for the blocks above `above` — the last height of an answer that is about
    /// to be judged — if its tip is higher and no request to it is on its way, so that the
    /// next answer travels while this one is judged. If this answer does not lead where it
    /// seemed (a fork), the next one is useless and the peer's tip is asked for as usual
    /// once both are judged.
    pub fn prefetch(&mut self, peer: PeerId, above: u32, now: u64) -> Vec<Output> {
        let Some(&(height, _)) = self.peer_tips.get(&peer) else {
            return Vec::new();
        };
        if height <= above || self.waiting_on(peer, now) {
            return Vec::new();
        }
        self.asked.insert(peer, now);
        vec![Output::RequestBlocks {
            peer,
            from_height: above + 1,
            count: (height - above).min(self.config.sync_batch),
        }]
    }

    /// The blocks `peer` sent were judged; `progressed`: they moved our tip. If they did not,
    /// its current tip is not asked for again (it would bring the same blocks).
    pub fn judged(&mut self, peer: PeerId, progressed: bool) {
        match self.peer_tips.get(&peer) {
            Some(&tip) if !progressed => {
                self.fruitless.insert(peer, tip);
            }
            _ => {
                self.fruitless.remove(&peer);
            }
        }
    }

    /// Whether a block request to `peer` is on its way (asked less than `sync_retry_ms` ago
    /// and not answered).
    fn waiting_on(&self, peer: PeerId, now: u64) -> bool {
        self.asked
            .get(&peer)
            .is_some_and(|&at| now < at.saturating_add(self.config.sync_retry_ms))
    }

    /// Asks `peer` for blocks (see `sync_request`) and remembers it.
    fn ask(&mut self, peer: PeerId, height: u32, above: u32, now: u64, out: &mut Vec<Output>) {
        self.asked.insert(peer, now);
        out.push(self.sync_request(peer, height, above));
    }

    pub fn last_signed(&self) -> Option<u32> {
        self.config.last_signed
    }

    /// Whether blocks wait for the next step to be judged (see `ready`): the node should step
    /// again (a `Tick`) once it has carried out this step's outputs.
    pub fn has_ready(&self) -> bool {
        !self.ready.is_empty()
    }

    /// Whether the start-up sync is over (production allowed).
    pub fn is_synced(&self) -> bool {
        self.synced
    }

    /// Feeds one input; returns what the node must do, in order.
    pub fn step<V: LedgerView + ?Sized, C: SignatureCache>(
        &mut self,
        view: &V,
        cache: &C,
        input: Input,
    ) -> Vec<Output> {
        let mut out = Vec::new();
        let now = input.now();
        for (block, from) in std::mem::take(&mut self.ready) {
            self.handle_block(view, cache, block, from, now, &mut out);
        }
        match input {
            Input::Tick { .. } => self.recheck_future(view, cache, now, &mut out),
            Input::Block { block, from, .. } => {
                self.handle_block(view, cache, block, from, now, &mut out)
            }
            Input::Mempool { pending, .. } => self.mempool_pending = pending,
            Input::PeerTip {
                peer, height, tip, ..
            } => self.handle_peer_tip(peer, height, tip, now, &mut out),
            Input::Peers { count, .. } => self.peers = count,
        }
        self.update_synced(now);
        // Production is judged on the state the node will have after executing `out`; an Adopt
        // in `out` changes the tip, so wait for the next step in that case.
        if !main_changed(&out) {
            self.maybe_produce(view, now, &mut out);
        } else {
            out.push(Output::WakeAt(now));
            self.last_wake = Some(now);
        }
        out
    }

    fn update_synced(&mut self, now: u64) {
        if self.synced {
            return;
        }
        let grace = 2 * self.chain.params.fallback_timeout_ms;
        let (tip_h, _) = self.tip();
        let caught_up =
            !self.peer_tips.is_empty() && self.peer_tips.values().all(|(h, _)| *h <= tip_h);
        if caught_up || now >= self.started_ms.saturating_add(grace) {
            self.synced = true;
        }
    }

    /// A peer's tip, reported by a status poll or learnt otherwise. A new tip we do not know is
    /// asked for. The same tip again is asked for again while we are below it and no request
    /// to it is on its way (one answer brings at most `sync_batch` blocks: the node calls this
    /// again after judging one). Without this a node more than one batch behind a peer that
    /// makes no new block would wait for its next block, and stop if an answer was lost.
    fn handle_peer_tip(
        &mut self,
        peer: PeerId,
        height: u32,
        tip: BlockId,
        now: u64,
        out: &mut Vec<Output>,
    ) {
        let known = self.main_heights.contains_key(&tip) || self.side.contains_key(&tip);
        let previous = self.peer_tips.insert(peer, (height, tip));
        if known {
            return;
        }
        // A request to it is on its way: its answer is followed by a request for the rest, or
        // for this tip if it is on another branch (asking now would fetch the same blocks
        // twice). This holds whatever its last tip was: the request may have come from one of
        // its gossiped blocks before we heard its tip.
        if self.waiting_on(peer, now) {
            return;
        }
        let (tip_h, _) = self.tip();
        // The same tip again: nothing to do if we have caught up, or if the last answer for it
        // got us nowhere.
        if previous == Some((height, tip))
            && (height <= tip_h || self.fruitless.get(&peer) == Some(&(height, tip)))
        {
            return;
        }
        self.ask(peer, height, tip_h, now, out);
    }

    /// Asks `peer` for the blocks up to `height`: from our tip if `height` is above `above`,
    /// else (a fork, or a parent we lack) from up to 32 blocks below it.
    fn sync_request(&self, peer: PeerId, height: u32, above: u32) -> Output {
        let (tip_h, _) = self.tip();
        let from_height = if height > above {
            tip_h + 1
        } else {
            height.saturating_sub(32).max(1)
        };
        let count = (height.saturating_sub(from_height) + 1).min(self.config.sync_batch);
        Output::RequestBlocks {
            peer,
            from_height,
            count,
        }
    }

    fn handle_block<V: LedgerView + ?Sized, C: SignatureCache>(
        &mut self,
        view: &V,
        cache: &C,
        block: Arc<Block>,
        from: Option<PeerId>,
        now: u64,
        out: &mut Vec<Output>,
    ) {
        if main_changed(out) {
            self.ready.push((block, from));
            return;
        }
        let id = block.header.id(&self.chain.id);
        if self.main_heights.contains_key(&id) || self.side.contains_key(&id) {
            out.push(Output::Verdict {
                id,
                from,
                verdict: Verdict::Ignore,
                reason: Some("already known".into()),
            });
            return;
        }
        if !block.header.signature_is_valid(&self.chain.id) {
            out.push(Output::Verdict {
                id,
                from,
                verdict: Verdict::Reject,
                reason: Some("bad block signature".into()),
            });
            return;
        }
        // Only blocks signed by an address that ever held `mine` are worth holding for later:
        // anyone can sign, and the holding pools are small.
        let worth_holding = self.chain.anyone_can(wattle_ledger::GlobalPerm::Mine)
            || read::holders(view, &wattle_ledger::GlobalPerm::Mine)
                .ok()
                .flatten()
                .is_some_and(|h| h.contains(&block.header.miner.address()));
        if block.header.timestamp_ms > now.saturating_add(self.chain.params.max_future_drift_ms) {
            if worth_holding && self.future.len() < self.config.max_future {
                self.future.push((block, from));
            }
            out.push(Output::Verdict {
                id,
                from,
                verdict: Verdict::Ignore,
                reason: Some("timestamp too far ahead; held".into()),
            });
            return;
        }
        let parent = block.header.prev;
        if !self.main_heights.contains_key(&parent) && !self.side.contains_key(&parent) {
            self.hold_orphan(block, from, worth_holding, now, out);
            return;
        }
        let mut queue = vec![(block, from)];
        while let Some((b, f)) = queue.pop() {
            if main_changed(out) {
                self.ready.push((b, f));
                continue;
            }
            let bid = b.header.id(&self.chain.id);
            if self.main_heights.contains_key(&bid) || self.side.contains_key(&bid) {
                continue;
            }
            if self.connect_block(view, cache, b, f, now, out)
                && let Some(children) = self.orphans.remove(&bid)
            {
                self.orphan_count -= children.len();
                queue.extend(children);
            }
        }
    }

    fn hold_orphan(
        &mut self,
        block: Arc<Block>,
        from: Option<PeerId>,
        keep: bool,
        now: u64,
        out: &mut Vec<Output>,
    ) {
        let id = block.header.id(&self.chain.id);
        let height = block.header.height;
        if keep && self.orphan_count < self.config.max_orphans {
            self.orphans
                .entry(block.header.prev)
                .or_default()
                .push((block, from));
            self.orphan_count += 1;
        }
        out.push(Output::Verdict {
            id,
            from,
            verdict: Verdict::Ignore,
            reason: Some("unknown parent".into()),
        });
        // A block right above our tip whose parent we lack is a fork: look further back. (Not
        // while a request to that peer is on its way: a node catching up hears of the peer's
        // new blocks meanwhile, and would fetch the same batch again for each.)
        if let Some(peer) = from
            && !self.waiting_on(peer, now)
        {
            let (tip_h, _) = self.tip();
            self.ask(peer, height, tip_h + 1, now, out);
        }
    }

    /// The chain of side entries from `id` back to the main chain: (fork height, side ids oldest
    /// first). `None` if it does not reach the main chain.
    fn side_path(&self, mut id: BlockId) -> Option<(u32, Vec<BlockId>)> {
        let mut path = Vec::new();
        loop {
            if let Some(h) = self.main_heights.get(&id) {
                path.reverse();
                return Some((*h, path));
            }
            let entry = self.side.get(&id)?;
            path.push(id);
            id = entry.parent;
        }
    }

    /// Validates a block whose parent is known, files it, and runs fork choice. Returns whether
    /// it was valid.
    fn connect_block<V: LedgerView + ?Sized, C: SignatureCache>(
        &mut self,
        view: &V,
        cache: &C,
        block: Arc<Block>,
        from: Option<PeerId>,
        now: u64,
        out: &mut Vec<Output>,
    ) -> bool {
        let id = block.header.id(&self.chain.id);
        let Some((fork_h, side_ids)) = self.side_path(block.header.prev) else {
            out.push(Output::Verdict {
                id,
                from,
                verdict: Verdict::Ignore,
                reason: Some("parent branch pruned".into()),
            });
            return false;
        };
        let (tip_h, _) = self.tip();
        let refusal = if tip_h - fork_h > self.config.max_reorg_depth {
            Some(format!(
                "fork point {fork_h} is deeper than max-reorg-depth"
            ))
        } else {
            self.locked_by_admin_or_mine_change(view, fork_h)
        };
        if let Some(reason) = refusal {
            out.push(Output::Refused { id, reason });
            out.push(Output::Verdict {
                id,
                from,
                verdict: Verdict::Ignore,
                reason: Some("reorg too deep".into()),
            });
            return false;
        }
        let result = {
            let mut branch = StackedView::new(view);
            for e in self
                .main
                .iter()
                .rev()
                .take_while(|e| e.block.header.height > fork_h)
            {
                branch.push(&e.changes.inverse());
            }
            for sid in &side_ids {
                if let Some(s) = self.side.get(sid) {
                    branch.push(&s.entry.changes);
                }
            }
            self.judge(&branch, cache, &block)
        };
        match result {
            Ok((changes, weight)) => {
                out.push(Output::Verdict {
                    id,
                    from,
                    verdict: Verdict::Accept,
                    reason: None,
                });
                if from.is_none() {
                    // Crash safety: never sign again at this height or below.
                    let h = block.header.height;
                    self.config.last_signed = Some(self.config.last_signed.map_or(h, |l| l.max(h)));
                }
                let parent = block.header.prev;
                self.side.insert(
                    id,
                    SideEntry {
                        entry: Entry {
                            block,
                            id,
                            changes,
                            weight,
                        },
                        parent,
                    },
                );
                self.fork_choice(id, from.is_none(), now, out);
                true
            }
            Err(e) => {
                let verdict = if e.is_stateless() {
                    Verdict::Reject
                } else {
                    Verdict::Ignore
                };
                out.push(Output::Verdict {
                    id,
                    from,
                    verdict,
                    reason: Some(e.to_string()),
                });
                false
            }
        }
    }

    /// Why a branch forking at `fork_h` may not replace the main chain under
    /// `lock_admin_mine_rounds`, if it may not: the fork point is at least that many rounds
    /// below the tip and a main-chain block above it changed an admin or mine permission.
    fn locked_by_admin_or_mine_change<V: LedgerView + ?Sized>(
        &self,
        view: &V,
        fork_h: u32,
    ) -> Option<String> {
        let rounds = self.config.lock_admin_mine_rounds;
        let (tip_h, _) = self.tip();
        let depth = tip_h - fork_h;
        if rounds == 0 || depth == 0 {
            return None;
        }
        // Spacing at the next height (the state at the tip); unreadable state: one block a round.
        let miners = wattle_ledger::mining::miners_at(view, tip_h + 1).map_or(1, |m| m.len());
        let spacing =
            wattle_ledger::mining::spacing(miners as u32, self.chain.params.mining_diversity);
        if depth < rounds.saturating_mul(spacing) {
            return None;
        }
        let changed = self
            .main
            .iter()
            .rev()
            .take_while(|e| e.block.header.height > fork_h)
            .find(|e| changes_admin_or_mine(&e.changes))?;
        Some(format!(
            "reorg-too-deep: fork point {fork_h} is {depth} blocks below the tip, at least \
             lock-admin-mine-rounds ({rounds}) x {spacing}, and block {} changed an admin or \
             mine permission",
            changed.block.header.height
        ))
    }

    /// Applies the block to its branch's state and weighs it.
    fn judge<V: LedgerView + ?Sized, C: SignatureCache>(
        &self,
        branch: &V,
        cache: &C,
        block: &Block,
    ) -> Result<(Changeset, u64), BlockError> {
        let changes = apply_block(branch, block, &self.chain, cache)?;
        let parent_signer = self.signer_of(&block.header.prev).unwrap_or_default();
        let order = schedule::order(branch, &self.chain, block.header.height, &parent_signer)?;
        Ok((
            changes,
            schedule::block_weight(&order, &block.header.miner.address()),
        ))
    }

    fn signer_of(&self, id: &BlockId) -> Option<Address> {
        if let Some(s) = self.side.get(id) {
            return Some(s.entry.block.header.miner.address());
        }
        let h = self.main_heights.get(id)?;
        self.main
            .iter()
            .find(|e| e.block.header.height == *h)
            .map(|e| e.block.header.miner.address())
    }

    /// Switches to the branch ending at side entry `id` if it is heavier than the main chain
    /// above their fork point (equal weight: the lower tip id wins).
    fn fork_choice(&mut self, id: BlockId, own: bool, now: u64, out: &mut Vec<Output>) {
        let Some((fork_h, path)) = self.side_path(id) else {
            return;
        };
        let side_weight: u64 = path
            .iter()
            .filter_map(|i| self.side.get(i))
            .map(|s| s.entry.weight)
            .sum();
        let main_weight: u64 = self
            .main
            .iter()
            .filter(|e| e.block.header.height > fork_h)
            .map(|e| e.weight)
            .sum();
        let (_, tip_id) = self.tip();
        let better = side_weight > main_weight || (side_weight == main_weight && id < tip_id);
        if !better {
            return;
        }
        let mut rollback = Vec::new();
        while self
            .main
            .back()
            .is_some_and(|e| e.block.header.height > fork_h)
        {
            let Some(e) = self.main.pop_back() else { break };
            self.main_heights.remove(&e.id);
            let parent = e.block.header.prev;
            rollback.push(BranchBlock {
                block: e.block.clone(),
                changes: e.changes.clone(),
                weight: e.weight,
            });
            self.side.insert(e.id, SideEntry { entry: e, parent });
        }
        let mut apply = Vec::new();
        for sid in path {
            if let Some(s) = self.side.remove(&sid) {
                apply.push(BranchBlock {
                    block: s.entry.block.clone(),
                    changes: s.entry.changes.clone(),
                    weight: s.entry.weight,
                });
                self.main_heights.insert(sid, s.entry.block.header.height);
                self.main.push_back(s.entry);
            }
        }
        let tip_block = self.tip_block().cloned();
        out.push(Output::Adopt { rollback, apply });
        if own && let Some(b) = tip_block {
            out.push(Output::Broadcast(b));
        }
        self.tip_received_ms = now;
        self.produce_pending = None;
        self.prune();
    }

    fn prune(&mut self) {
        let keep = self.config.max_reorg_depth as usize + 1;
        while self.main.len() > keep {
            if let Some(e) = self.main.pop_front() {
                self.main_heights.remove(&e.id);
            }
        }
        let (tip_h, _) = self.tip();
        let floor = tip_h.saturating_sub(self.config.max_reorg_depth);
        self.side.retain(|_, s| s.entry.block.header.height > floor);
    }

    fn recheck_future<V: LedgerView + ?Sized, C: SignatureCache>(
        &mut self,
        view: &V,
        cache: &C,
        now: u64,
        out: &mut Vec<Output>,
    ) {
        let drift = self.chain.params.max_future_drift_ms;
        let (ready, wait): (Vec<_>, Vec<_>) = std::mem::take(&mut self.future)
            .into_iter()
            .partition(|(b, _)| b.header.timestamp_ms <= now.saturating_add(drift));
        self.future = wait;
        for (b, f) in ready {
            self.handle_block(view, cache, b, f, now, out);
        }
    }

    /// Whether and when this node's miner signs the next block.
    fn maybe_produce<V: LedgerView + ?Sized>(&mut self, view: &V, now: u64, out: &mut Vec<Output>) {
        let mut wake: Option<u64> = self
            .future
            .iter()
            .map(|(b, _)| {
                b.header
                    .timestamp_ms
                    .saturating_sub(self.chain.params.max_future_drift_ms)
            })
            .min();
        if let Some(at) = self.production_time(view, now) {
            if at <= now {
                let (tip_h, tip_id) = self.tip();
                let parent_ts = self.tip_block().map(|b| b.header.timestamp_ms).unwrap_or(0);
                out.push(Output::Produce {
                    height: tip_h + 1,
                    parent: tip_id,
                    timestamp_ms: now.max(parent_ts + 1),
                });
                self.produce_pending = Some((tip_h + 1, now));
            } else {
                wake = Some(wake.map_or(at, |w| w.min(at)));
            }
        }
        if !self.synced {
            let end = self
                .started_ms
                .saturating_add(2 * self.chain.params.fallback_timeout_ms);
            wake = Some(wake.map_or(end, |w| w.min(end)));
        }
        if let Some(w) = wake
            && self.last_wake != Some(w)
        {
            out.push(Output::WakeAt(w));
            self.last_wake = Some(w);
        }
    }

    /// The time this node's miner may sign the next block, if it may at all.
    fn production_time<V: LedgerView + ?Sized>(&self, view: &V, now: u64) -> Option<u64> {
        let me = self.config.miner?;
        let (tip_h, _) = self.tip();
        let height = tip_h + 1;
        // A produced block that never came back valid is retried after a fallback timeout.
        let retry = self.chain.params.fallback_timeout_ms;
        let pending = self
            .produce_pending
            .is_some_and(|(h, at)| h == height && now < at.saturating_add(retry));
        if !self.synced || pending || self.config.last_signed.is_some_and(|l| l >= height) {
            return None;
        }
        let tip = self.tip_block()?;
        let order = schedule::order(view, &self.chain, height, &tip.header.miner.address()).ok()?;
        let rank = order.iter().position(|m| *m == me)?;
        if self.peers == 0 && order.len() > 1 {
            return None;
        }
        Some(schedule::may_sign_at(
            &self.chain,
            self.tip_received_ms,
            self.mempool_pending > 0,
            rank,
        ))
    }

    /// Whether a block is on the main chain.
    pub fn is_main(&self, id: &BlockId) -> bool {
        self.main_heights.contains_key(id)
    }

    /// The main-chain height of the state `view` must show; the node checks it matches.
    pub fn expected_tip(&self) -> (u32, BlockId) {
        self.tip()
    }

    /// Checks the node's view matches the engine's tip (a mismatch means a failed store write).
    pub fn view_matches<V: LedgerView + ?Sized>(&self, view: &V) -> bool {
        matches!(read::tip(view), Ok(Some(t)) if (t.height, t.id) == self.tip())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wattle_ledger::apply::NoCache;
    use wattle_ledger::hash::Hash256;
    use wattle_ledger::testkit::{TestChain, key};

    fn engine(t: &TestChain) -> Engine {
        let genesis = BranchBlock {
            block: Arc::new(t.genesis.clone()),
            changes: Changeset::default(),
            weight: 2,
        };
        Engine::new(
            t.chain.clone(),
            Config::new(None),
            vec![genesis],
            t.next_time_ms,
        )
    }

    /// A chain of `n` empty blocks on the test genesis, and its blocks.
    fn empty_blocks(n: usize) -> (TestChain, Vec<Arc<Block>>) {
        let mut source = TestChain::new();
        let mut blocks = Vec::new();
        for _ in 0..n {
            let b = source.block(vec![]);
            source.commit(&b).unwrap();
            blocks.push(Arc::new(b));
        }
        (source, blocks)
    }

    /// The `RequestBlocks` in `out`, as (from_height, count).
    fn requests(out: &[Output]) -> Vec<(u32, u32)> {
        out.iter()
            .filter_map(|o| match o {
                Output::RequestBlocks {
                    from_height, count, ..
                } => Some((*from_height, *count)),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn a_node_batches_behind_a_quiet_peer_keeps_asking_until_it_has_its_tip() {
        // The peer has 5 blocks and makes no more; one request brings at most 2.
        let (source, blocks) = empty_blocks(5);
        let peer_tip = (5, blocks[4].header.id(&source.chain.id));
        let mut local = TestChain::new();
        let mut e = engine(&local);
        e.config.sync_batch = 2;
        let start = source.next_time_ms;
        let status = |e: &mut Engine, local: &TestChain, now: u64| {
            let input = Input::PeerTip {
                peer: 1,
                height: peer_tip.0,
                tip: peer_tip.1,
                now,
            };
            requests(&e.step(&local.state, &NoCache, input))
        };
        assert_eq!(status(&mut e, &local, start), vec![(1, 2)]);
        // The same tip while the answer is on its way: nothing more.
        assert_eq!(status(&mut e, &local, start + 1_000), vec![]);
        let mut next = 0;
        let mut deliver = |e: &mut Engine, local: &mut TestChain, n: usize, now: u64| {
            e.answered(1);
            for block in &blocks[next..next + n] {
                let input = Input::Block {
                    block: block.clone(),
                    from: Some(1),
                    now,
                };
                for o in e.step(&local.state, &NoCache, input) {
                    if let Output::Adopt { apply, .. } = o {
                        for b in apply {
                            local.state.apply(&b.changes).unwrap();
                        }
                    }
                }
            }
            next += n;
        };
        deliver(&mut e, &mut local, 2, start + 2_000);
        assert_eq!(e.tip().0, 2);
        // Answered: the same tip again asks for the next batch at once.
        assert_eq!(status(&mut e, &local, start + 2_001), vec![(3, 2)]);
        assert_eq!(status(&mut e, &local, start + 3_000), vec![]);
        // That answer is lost: asked again once the retry time has passed, not before.
        let retry = e.config.sync_retry_ms;
        assert_eq!(status(&mut e, &local, start + 2_000 + retry), vec![]);
        assert_eq!(status(&mut e, &local, start + 2_002 + retry), vec![(3, 2)]);
        deliver(&mut e, &mut local, 2, start + 3_000 + retry);
        assert_eq!(status(&mut e, &local, start + 3_001 + retry), vec![(5, 1)]);
        deliver(&mut e, &mut local, 1, start + 4_000 + retry);
        assert_eq!(e.tip(), peer_tip);
        // Its tip is ours now: nothing to ask, however long it stays.
        assert_eq!(status(&mut e, &local, start + 10 * retry), vec![]);
    }

    #[test]
    fn a_peer_heard_of_first_through_a_gossiped_block_is_not_asked_twice() {
        let (source, blocks) = empty_blocks(5);
        let local = TestChain::new();
        let mut e = engine(&local);
        let now = source.next_time_ms;
        // Its newest block arrives before its first status: an orphan, so we ask for blocks.
        let input = Input::Block {
            block: blocks[4].clone(),
            from: Some(1),
            now,
        };
        assert_eq!(
            requests(&e.step(&local.state, &NoCache, input)),
            vec![(1, 5)]
        );
        // Then its status (the first we hear of its tip): that request is on its way.
        let input = Input::PeerTip {
            peer: 1,
            height: 5,
            tip: blocks[4].header.id(&source.chain.id),
            now: now + 10,
        };
        assert_eq!(requests(&e.step(&local.state, &NoCache, input)), vec![]);
    }

    #[test]
    fn the_blocks_after_an_answer_are_prefetched_once_while_it_is_judged() {
        let t = TestChain::new();
        let mut e = engine(&t);
        let now = t.next_time_ms;
        // Not before we know the peer's tip.
        assert_eq!(requests(&e.prefetch(1, 10, now)), vec![]);
        let input = Input::PeerTip {
            peer: 1,
            height: 1_200,
            tip: Hash256([5; 32]),
            now,
        };
        assert_eq!(requests(&e.step(&t.state, &NoCache, input)), vec![(1, 500)]);
        // Its answer came with blocks 1 to 300: 301 onwards, at most a batch.
        e.answered(1);
        assert_eq!(requests(&e.prefetch(1, 300, now)), vec![(301, 500)]);
        // That request is on its way: no second one, however the answers are split.
        assert_eq!(requests(&e.prefetch(1, 300, now + 1)), vec![]);
        assert_eq!(requests(&e.prefetch(1, 800, now + 2)), vec![]);
        e.answered(1);
        assert_eq!(requests(&e.prefetch(1, 1_100, now + 3)), vec![(1_101, 100)]);
        // Nothing above the peer's tip.
        e.answered(1);
        assert_eq!(requests(&e.prefetch(1, 1_200, now + 4)), vec![]);
    }

    #[test]
    fn a_tip_whose_answer_got_us_nowhere_is_not_asked_for_again() {
        let t = TestChain::new();
        let mut e = engine(&t);
        let now = t.next_time_ms;
        // A peer on a branch we do not take (here: blocks we never get to connect).
        let peer_tip = (7, Hash256([5; 32]));
        let status = |e: &mut Engine, now: u64| {
            let input = Input::PeerTip {
                peer: 1,
                height: peer_tip.0,
                tip: peer_tip.1,
                now,
            };
            requests(&e.step(&t.state, &NoCache, input))
        };
        assert_eq!(status(&mut e, now), vec![(1, 7)]);
        e.answered(1);
        e.judged(1, false);
        // Asking again for the same tip would bring the same blocks: not at the next poll, nor later.
        assert_eq!(status(&mut e, now + 1_000), vec![]);
        let much_later = now + 10 * e.config.sync_retry_ms;
        assert_eq!(status(&mut e, much_later), vec![]);
        // A new tip is asked for.
        let input = Input::PeerTip {
            peer: 1,
            height: 8,
            tip: Hash256([6; 32]),
            now: now + 2_000,
        };
        assert_eq!(requests(&e.step(&t.state, &NoCache, input)), vec![(1, 8)]);
    }

    #[test]
    fn a_peer_tip_that_grows_while_we_fetch_is_not_fetched_twice() {
        let (source, blocks) = empty_blocks(6);
        let tip_at = |h: usize| (h as u32, blocks[h - 1].header.id(&source.chain.id));
        let local = TestChain::new();
        let mut e = engine(&local);
        e.config.sync_batch = 2;
        let now = source.next_time_ms;
        let status = |e: &mut Engine, (height, tip): (u32, BlockId), now: u64| {
            let input = Input::PeerTip {
                peer: 1,
                height,
                tip,
                now,
            };
            requests(&e.step(&local.state, &NoCache, input))
        };
        assert_eq!(status(&mut e, tip_at(5), now), vec![(1, 2)]);
        // The peer made a block meanwhile: its answer is still on its way.
        assert_eq!(status(&mut e, tip_at(6), now + 10), vec![]);
        assert_eq!(status(&mut e, tip_at(6), now + 20), vec![]);
        // No answer within the retry time: asked again.
        let retry = e.config.sync_retry_ms;
        assert_eq!(status(&mut e, tip_at(6), now + retry), vec![(1, 2)]);
    }

    #[test]
    fn orphans_whose_parent_arrives_are_judged_on_the_state_that_includes_it() {
        // Blocks 2 and 3 (each spending the admin's coins the block before made) arrive
        // before block 1.
        let mut source = TestChain::new();
        let admin = source.admin.clone();
        let mut blocks = Vec::new();
        for i in 0..3 {
            let tx = if i == 0 {
                source.issue(&admin, admin.address(), "energy", true, 1, 10, &[])
            } else {
                let energy = source.asset_id("energy");
                source.transfer(&admin, admin.address(), energy, 10 - i)
            };
            let blk = source.block(vec![tx]);
            source.commit(&blk).unwrap();
            blocks.push(Arc::new(blk));
        }
        let mut local = TestChain::new();
        let mut e = engine(&local);
        let now = source.next_time_ms;
        let step = |e: &mut Engine, local: &mut TestChain, input: Input| {
            let out = e.step(&local.state, &NoCache, input);
            for o in &out {
                if let Output::Adopt { apply, .. } = o {
                    for b in apply {
                        local.state.apply(&b.changes).unwrap();
                    }
                }
            }
            out
        };
        for block in [&blocks[2], &blocks[1], &blocks[0]] {
            let input = Input::Block {
                block: block.clone(),
                from: Some(1),
                now,
            };
            step(&mut e, &mut local, input);
        }
        // Block 1 joined the chain; its children wait for the step that sees it stored.
        assert_eq!(e.tip().0, 1);
        assert!(e.has_ready());
        for _ in 0..2 {
            let out = step(&mut e, &mut local, Input::Tick { now });
            let refused = out.iter().any(
                |o| matches!(o, Output::Verdict { verdict, .. } if *verdict != Verdict::Accept),
            );
            assert!(!refused, "a held block was refused: {out:?}");
        }
        assert_eq!(e.tip(), (3, blocks[2].header.id(&source.chain.id)));
        assert!(!e.has_ready());
        assert_eq!(local.state, source.state);
    }

    /// A main chain of `main_len` blocks (block `grant_at` grants admin to a new address) and a
    /// branch of `side_len` blocks forking after block `fork_at`, fed to an engine with
    /// `lock_admin_mine_rounds = rounds` (a single miner: one block a round): the height of the
    /// tip it ends on, and whether it refused a block as reorg-too-deep.
    fn reorg_across_a_grant(
        grant_at: Option<u32>,
        main_len: u32,
        fork_at: u32,
        side_len: u32,
        rounds: u32,
    ) -> (u32, bool) {
        use wattle_ledger::permissions::{GlobalPerm, Permission};
        let (mut main, mut side) = (TestChain::new(), TestChain::new());
        let grant = |t: &TestChain, h: u32| {
            let admin = t.admin.clone();
            let perm = [Permission::Global(GlobalPerm::Admin)];
            (Some(h) == grant_at).then(|| t.grant(&admin, key(5).address(), &perm))
        };
        let mut blocks = Vec::new();
        for h in 1..=main_len {
            let b = main.block(grant(&main, h).into_iter().collect());
            main.commit(&b).unwrap();
            blocks.push(Arc::new(b));
        }
        // The branch: the same blocks up to the fork point, then others (another timestamp).
        for h in 1..=fork_at + side_len {
            let txs = if h <= fork_at {
                grant(&side, h).into_iter().collect()
            } else {
                vec![]
            };
            if h == fork_at + 1 {
                side.next_time_ms += 1;
            }
            let b = side.block(txs);
            side.commit(&b).unwrap();
            if h > fork_at {
                blocks.push(Arc::new(b));
            }
        }
        let mut local = TestChain::new();
        let mut e = engine(&local);
        e.config.lock_admin_mine_rounds = rounds;
        let now = side.next_time_ms;
        let mut refused = false;
        for block in blocks {
            let input = Input::Block {
                block,
                from: Some(1),
                now,
            };
            for o in e.step(&local.state, &NoCache, input) {
                match o {
                    Output::Adopt { rollback, apply } => {
                        for b in &rollback {
                            local.state.apply(&b.changes.inverse()).unwrap();
                        }
                        for b in &apply {
                            local.state.apply(&b.changes).unwrap();
                        }
                    }
                    Output::Refused { reason, .. } => {
                        refused |= reason.starts_with("reorg-too-deep");
                    }
                    _ => {}
                }
            }
        }
        (e.tip().0, refused)
    }

    #[test]
    fn a_reorg_across_an_admin_change_older_than_lock_admin_mine_rounds_is_refused() {
        // Block 2 granted admin; the branch forks 11 blocks below the tip (10 rounds of 1 block).
        assert_eq!(reorg_across_a_grant(Some(2), 12, 1, 14, 10), (12, true));
        // The same branch without the grant on the main chain replaces it.
        assert_eq!(reorg_across_a_grant(None, 12, 1, 14, 10), (15, false));
        // A grant above a fork point fewer than 10 rounds below the tip does not lock it.
        assert_eq!(reorg_across_a_grant(Some(2), 8, 1, 10, 10), (11, false));
        // 0 rounds: the lock is off.
        assert_eq!(reorg_across_a_grant(Some(2), 12, 1, 14, 0), (15, false));
        // A grant at or below the fork point is not "in between".
        assert_eq!(reorg_across_a_grant(Some(2), 12, 2, 14, 10), (16, false));
    }

    #[test]
    fn only_blocks_by_past_or_present_miners_are_held() {
        let t = TestChain::new();
        let mut e = engine(&t);
        let now = t.next_time_ms;
        let unknown_parent = Hash256([7; 32]);
        for (peer, signer, held) in [(1, key(9), 0), (2, t.admin.clone(), 1)] {
            let orphan = Block::build(unknown_parent, 5, now, vec![], &signer, &t.chain.id);
            let out = e.step(
                &t.state,
                &NoCache,
                Input::Block {
                    block: Arc::new(orphan),
                    from: Some(peer),
                    now,
                },
            );
            assert_eq!(
                e.orphan_count,
                held,
                "orphans after a block by {:?}",
                signer.address()
            );
            assert!(
                out.iter()
                    .any(|o| matches!(o, Output::RequestBlocks { .. })),
                "the parent is asked for either way"
            );
            let future = Block::build(t.tip().id, 1, now + 3_600_000, vec![], &signer, &t.chain.id);
            e.step(
                &t.state,
                &NoCache,
                Input::Block {
                    block: Arc::new(future),
                    from: Some(1),
                    now,
                },
            );
            assert_eq!(
                e.future.len(),
                held,
                "future blocks after a block by {:?}",
                signer.address()
            );
        }
    }
}
