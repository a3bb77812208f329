//! The network actor: the one task that owns the Swarm. One select loop over the command
//! queue, the transaction gossip queue, the backlog of events for the node, Swarm events and a
//! housekeeping tick; each arm delegates to a `handle_*` method.
//!
//! Events for the node: transactions are dropped (and reported `Ignore`, so gossipsub forgets
//! them) when the event channel is full; every other event waits in a backlog, and while the
//! backlog holds [`BACKLOG_LIMIT`] events the Swarm is not polled (back-pressure towards peers).
//! Commands are still served meanwhile, so a node that publishes while it is slow to read
//! events cannot deadlock with us.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::time::Duration;

use futures::StreamExt;
use libp2p::gossipsub::{MessageAcceptance, PublishError};
use libp2p::request_response::{OutboundRequestId, ResponseChannel};
use libp2p::swarm::dial_opts::DialOpts;
use libp2p::swarm::{ConnectionId, SwarmEvent};
use libp2p::{Multiaddr, PeerId, Swarm};
use tokio::sync::{mpsc, oneshot};
use tokio::time::{Instant, MissedTickBehavior};

use super::behaviour::{Behaviour, BehaviourEvent, TopicKind, Topics};
use super::ingress::Command;
use super::limits::{BAN_SCORE, Bans, Offence};
use super::peers::{PeerTable, Seeds};
use super::protocol::SyncRequest;
use super::{
    ChannelId, MessageId, NetError, NetEvent, NetworkConfig, Response, UNPERMITTED_SCORE, Verdict,
};

/// Events for the node that may wait before the Swarm stops being polled.
const BACKLOG_LIMIT: usize = 256;
/// Period of the housekeeping tick (grace expiry, seed re-dials, dead response channels).
const HOUSEKEEPING: Duration = Duration::from_millis(250);
/// How long `spawn` waits for the listener to report its address.
const LISTEN_TIMEOUT: Duration = Duration::from_secs(5);
/// The reason given to unpermitted peers.
const DENIED: &str = "connect permission required";

type SwarmEv = SwarmEvent<BehaviourEvent>;

mod swarm;

pub(crate) struct NetworkActor {
    swarm: Swarm<Behaviour>,
    config: NetworkConfig,
    topics: Topics,
    commands: mpsc::Receiver<Command>,
    tx_gossip: mpsc::Receiver<Vec<u8>>,
    /// Weak, so that dropping every handle still closes the command queue.
    self_commands: mpsc::WeakSender<Command>,
    events: mpsc::Sender<NetEvent>,
    backlog: VecDeque<NetEvent>,
    early_events: Vec<SwarmEv>,
    peers: PeerTable,
    seeds: Seeds,
    bans: Bans,
    pending_requests: HashMap<OutboundRequestId, oneshot::Sender<Result<Response, NetError>>>,
    /// Inbound requests the node has yet to answer, and who asked (at most
    /// `max_open_requests` per peer).
    open_channels: HashMap<ChannelId, (PeerId, ResponseChannel<Response>)>,
    next_channel: u64,
}

/// Polls a fresh Swarm until its listener reports an address; returns the port and the other
/// events seen meanwhile (handed to the actor, so none is lost).
pub(crate) async fn wait_for_listen_port(
    swarm: &mut Swarm<Behaviour>,
) -> Result<(u16, Vec<SwarmEv>), NetError> {
    let mut early = Vec::new();
    let wait = async {
        loop {
            match swarm.select_next_some().await {
                SwarmEvent::NewListenAddr { address, .. } => {
                    if let Some(port) = super::tcp_port(&address) {
                        return Ok(port);
                    }
                }
                SwarmEvent::ListenerClosed { reason, .. } => {
                    return Err(NetError::Listen(format!("listener closed: {reason:?}")));
                }
                SwarmEvent::ListenerError { error, .. } => {
                    return Err(NetError::Listen(error.to_string()));
                }
                other => early.push(other),
            }
        }
    };
    let port = tokio::time::timeout(LISTEN_TIMEOUT, wait)
        .await
        .map_err(|_| NetError::Listen("no listen address reported".into()))??;
    Ok((port, early))
}

pub(crate) struct Channels {
    pub commands: mpsc::Receiver<Command>,
    pub tx_gossip: mpsc::Receiver<Vec<u8>>,
    pub self_commands: mpsc::WeakSender<Command>,
    pub events: mpsc::Sender<NetEvent>,
}

impl NetworkActor {
    pub(crate) fn new(
        swarm: Swarm<Behaviour>,
        config: NetworkConfig,
        channels: Channels,
        early_events: Vec<SwarmEv>,
    ) -> NetworkActor {
        let seeds = Seeds::new(
            &config.seeds,
            config.redial_min,
            config.redial_max,
            Instant::now(),
        );
        NetworkActor {
            swarm,
            topics: Topics::new(&config.chain_id),
            config,
            commands: channels.commands,
            tx_gossip: channels.tx_gossip,
            self_commands: channels.self_commands,
            events: channels.events,
            backlog: VecDeque::new(),
            early_events,
            peers: PeerTable::default(),
            seeds,
            bans: Bans::default(),
            pending_requests: HashMap::new(),
            open_channels: HashMap::new(),
            next_channel: 0,
        }
    }

    /// Runs until `shutdown` or until every handle is dropped.
    pub(crate) async fn run(mut self) {
        for event in std::mem::take(&mut self.early_events) {
            self.handle_swarm_event(event);
        }
        let mut housekeeping = tokio::time::interval(HOUSEKEEPING);
        housekeeping.set_missed_tick_behavior(MissedTickBehavior::Delay);
        // A permit borrows its sender for the whole select: borrow a local, not `self`.
        let events = self.events.clone();
        let done = loop {
            tokio::select! {
                command = self.commands.recv() => match command {
                    Some(command) => {
                        if let Some(done) = self.handle_command(command) {
                            break Some(done);
                        }
                    }
                    None => break None,
                },
                Some(bytes) = self.tx_gossip.recv() => self.handle_publish_tx(bytes),
                permit = events.reserve(), if !self.backlog.is_empty() => match permit {
                    Ok(permit) => {
                        if let Some(event) = self.backlog.pop_front() {
                            permit.send(event);
                        }
                    }
                    // The node dropped its receiver: nobody will read these.
                    Err(_) => self.backlog.clear(),
                },
                event = self.swarm.select_next_some(), if self.backlog.len() < BACKLOG_LIMIT => {
                    self.handle_swarm_event(event);
                }
                _ = housekeeping.tick() => self.handle_housekeeping(),
            }
        };
        tracing::info!("network stopping");
        drop(self);
        if let Some(done) = done {
            let _ = done.send(());
        }
    }

    // ---- commands ----

    /// Handles one command; returns the shutdown acknowledgement when asked to stop.
    fn handle_command(&mut self, command: Command) -> Option<oneshot::Sender<()>> {
        match command {
            Command::PublishBlock { bytes, reply } => {
                let _ = reply.send(self.publish(TopicKind::Block, bytes));
            }
            Command::Report {
                msg_id,
                source,
                verdict,
            } => {
                // A banned peer has had its punishment: verdicts on its messages still in flight
                // do not add to its gossipsub score, which outlives the connection (an hour) and
                // would keep it graylisted long after the ban.
                let verdict = match verdict {
                    Verdict::Reject if self.bans.is_banned(&source) => Verdict::Ignore,
                    other => other,
                };
                self.report(&msg_id, &source, verdict);
                if verdict == Verdict::Reject {
                    self.penalise(source, Offence::Rejected);
                }
            }
            Command::Request {
                peer,
                request,
                reply,
            } => {
                let id = self
                    .swarm
                    .behaviour_mut()
                    .sync
                    .send_request(&peer, SyncRequest::Valid(request));
                self.pending_requests.insert(id, reply);
            }
            Command::Respond {
                channel,
                response,
                reply,
            } => {
                let _ = reply.send(self.respond(channel, response));
            }
            Command::SetPermitted { peer, permitted } => self.handle_set_permitted(peer, permitted),
            Command::Dial { addrs, reply } => {
                let _ = reply.send(self.dial(addrs).map(|_| ()));
            }
            Command::Disconnect { peer } => {
                let _ = self.swarm.disconnect_peer_id(peer);
            }
            Command::Peers { reply } => {
                let _ = reply.send(self.peers.infos());
            }
            Command::SeedResolved { index, addrs } => self.handle_seed_resolved(index, addrs),
            Command::Shutdown { done } => return Some(done),
        }
        None
    }

    fn handle_publish_tx(&mut self, bytes: Vec<u8>) {
        if let Err(e) = self.publish(TopicKind::Tx, bytes) {
            tracing::debug!(error = %e, "transaction not gossiped");
        }
    }

    fn publish(&mut self, kind: TopicKind, bytes: Vec<u8>) -> Result<MessageId, NetError> {
        let max = self.config.max_transmit_size;
        if bytes.len() > max {
            return Err(NetError::TooLarge {
                size: bytes.len(),
                max,
            });
        }
        let topic = match kind {
            TopicKind::Tx => self.topics.tx.clone(),
            TopicKind::Block => self.topics.block.clone(),
        };
        self.swarm
            .behaviour_mut()
            .gossipsub
            .publish(topic, bytes)
            .map_err(|e| match e {
                PublishError::NoPeersSubscribedToTopic => NetError::NoPeers,
                PublishError::Duplicate => NetError::Duplicate,
                other => NetError::Publish(other.to_string()),
            })
    }

    fn report(&mut self, msg_id: &MessageId, source: &PeerId, verdict: Verdict) {
        let acceptance = match verdict {
            Verdict::Accept => MessageAcceptance::Accept,
            Verdict::Ignore => MessageAcceptance::Ignore,
            Verdict::Reject => MessageAcceptance::Reject,
        };
        let gossipsub = &mut self.swarm.behaviour_mut().gossipsub;
        if !gossipsub.report_message_validation_result(msg_id, source, acceptance) {
            tracing::debug!(%msg_id, "verdict on a message no longer cached");
        }
    }

    fn respond(&mut self, channel: ChannelId, response: Response) -> Result<(), NetError> {
        let (peer, channel) = self
            .open_channels
            .remove(&channel)
            .ok_or(NetError::UnknownChannel)?;
        self.peers.close_request(&peer);
        self.swarm
            .behaviour_mut()
            .sync
            .send_response(channel, response)
            .map_err(|_| NetError::Request("the requester has gone".into()))
    }

    fn handle_set_permitted(&mut self, peer: PeerId, permitted: bool) {
        let Some(was) = self.peers.set_permitted(&peer, permitted) else {
            tracing::debug!(%peer, permitted, "permission for a peer that is not connected");
            return;
        };
        let gossipsub = &mut self.swarm.behaviour_mut().gossipsub;
        if permitted {
            gossipsub.remove_blacklisted_peer(&peer);
            gossipsub.set_application_score(&peer, 0.0);
        } else if was {
            gossipsub.blacklist_peer(&peer);
            gossipsub.set_application_score(&peer, UNPERMITTED_SCORE);
            tracing::info!(%peer, "connect permission lost: disconnecting");
            let _ = self.swarm.disconnect_peer_id(peer);
        }
    }

    fn dial(&mut self, addrs: Vec<Multiaddr>) -> Result<ConnectionId, NetError> {
        let addr = addrs
            .into_iter()
            .next()
            .ok_or_else(|| NetError::Dial("no address".into()))?;
        let opts = DialOpts::unknown_peer_id().address(addr).build();
        let connection = opts.connection_id();
        self.swarm
            .dial(opts)
            .map_err(|e| NetError::Dial(e.to_string()))?;
        Ok(connection)
    }

    // ---- seeds and housekeeping ----

    fn handle_housekeeping(&mut self) {
        let now = Instant::now();
        for peer in self.peers.overstaying(now, self.config.unpermitted_grace) {
            tracing::info!(%peer, "unpermitted peer overstayed its grace period: disconnecting");
            let _ = self.swarm.disconnect_peer_id(peer);
        }
        for index in self.seeds.take_due(now) {
            self.start_seed_dial(index);
        }
        let peers = &mut self.peers;
        self.open_channels.retain(|_, (peer, channel)| {
            let open = channel.is_open();
            if !open {
                peers.close_request(peer);
            }
            open
        });
        for peer in self.bans.expire(now) {
            self.swarm.behaviour_mut().blocked.unblock_peer(peer);
            tracing::info!(%peer, "ban expired");
        }
    }

    // ---- misbehaviour ----

    /// Adds an offence to a connected peer's score; bans the peer once the score reaches
    /// [`BAN_SCORE`].
    pub(super) fn penalise(&mut self, peer: PeerId, offence: Offence) {
        let Some(score) = self.peers.offend(&peer, offence, Instant::now()) else {
            return;
        };
        if offence.points() >= 10.0 {
            tracing::debug!(%peer, offence = offence.describe(), score, "peer misbehaved");
        } else {
            tracing::trace!(%peer, offence = offence.describe(), score, "peer misbehaved");
        }
        if score >= BAN_SCORE {
            self.ban(peer, offence, score);
        }
    }

    /// Disconnects `peer` and refuses its connections for `ban_duration`.
    fn ban(&mut self, peer: PeerId, offence: Offence, score: f64) {
        if self.bans.is_banned(&peer) {
            return;
        }
        let until = Instant::now() + self.config.ban_duration;
        let address = self.peers.get(&peer).map(|p| p.address);
        if self.bans.ban(peer, until) {
            self.swarm.behaviour_mut().blocked.block_peer(peer);
        } else {
            tracing::warn!("too many bans remembered: this one only disconnects");
            let _ = self.swarm.disconnect_peer_id(peer);
        }
        tracing::warn!(
            %peer,
            ?address,
            reason = offence.describe(),
            score = score.round(),
            seconds = self.config.ban_duration.as_secs_f64(),
            "peer banned: disconnecting"
        );
    }

    /// Resolves a seed's host (in a separate task if it is a name), then dials it.
    fn start_seed_dial(&mut self, index: usize) {
        let Some(seed) = self.seeds.get(index) else {
            return;
        };
        let (host, port) = (seed.host.clone(), seed.port);
        if let Ok(ip) = host.parse::<IpAddr>() {
            self.handle_seed_resolved(index, Ok(vec![super::socket_multiaddr(ip, port)]));
            return;
        }
        let commands = self.self_commands.clone();
        tokio::spawn(async move {
            let addrs = super::resolve(&host, port).await;
            if let Some(commands) = commands.upgrade() {
                let _ = commands.send(Command::SeedResolved { index, addrs }).await;
            }
        });
    }

    fn handle_seed_resolved(&mut self, index: usize, addrs: Result<Vec<Multiaddr>, NetError>) {
        match addrs.and_then(|addrs| self.dial(addrs)) {
            Ok(connection) => self.seeds.dialing(index, connection),
            Err(e) => {
                tracing::debug!(index, error = %e, "cannot dial seed; will retry");
                self.seeds.failed(index, Instant::now());
            }
        }
    }

    // ---- events for the node ----

    /// Transactions never wait: with the node behind, drop and let gossipsub forget them.
    fn emit_tx(&mut self, peer: PeerId, msg_id: MessageId, bytes: Vec<u8>) {
        if self.backlog.is_empty() {
            let event = NetEvent::Tx {
                peer,
                msg_id: msg_id.clone(),
                bytes,
            };
            match self.events.try_send(event) {
                Ok(()) => return,
                Err(mpsc::error::TrySendError::Full(_)) => {}
                Err(mpsc::error::TrySendError::Closed(_)) => {}
            }
        }
        tracing::warn!(%msg_id, "node is behind: gossiped transaction dropped");
        self.report(&msg_id, &peer, Verdict::Ignore);
    }

    /// Other events wait in the backlog (in order) when the channel is full.
    fn emit(&mut self, event: NetEvent) {
        if !self.backlog.is_empty() {
            self.backlog.push_back(event);
            return;
        }
        match self.events.try_send(event) {
            Ok(()) | Err(mpsc::error::TrySendError::Closed(_)) => {}
            Err(mpsc::error::TrySendError::Full(event)) => self.backlog.push_back(event),
        }
    }
}
