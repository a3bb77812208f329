//! Networking: one task owns the libp2p Swarm; the node reaches it through a cloneable
//! [`NetworkHandle`] and hears from it on a bounded [`NetEvent`] channel.
//!
//! # Protocol
//!
//! 1. Transport: TCP + noise + yamux. The libp2p identity is the ed25519 key of the node's first
//!    wallet address, so a `PeerId` names a Wattle address (SHA-256 of the public key, first 20
//!    bytes); noise proves the peer holds the key. Peers whose key is not ed25519 are dropped.
//! 2. Gossip (gossipsub, topics `wattle/<chain-id hex>/tx` and `wattle/<chain-id hex>/block`):
//!    anonymous messages (our payloads carry their own signatures) identified by SHA-256 of
//!    their bytes. Nothing is forwarded until the node reports a [`Verdict`]: `Accept` forwards,
//!    `Ignore` drops, `Reject` drops and penalises the peer that sent it (P4 of the peer score).
//! 3. Sync (request-response `/wattle/sync/1`, CBOR, size-limited): [`Request::GetParams`],
//!    [`Request::GetStatus`], [`Request::GetBlocks`]. The node answers through
//!    [`NetworkHandle::respond`].
//! 4. Identify (`/wattle/id/1`). No mDNS: peers come from the seeds and from [`NetworkHandle::dial`].
//!
//! # Connect permission (default deny)
//!
//! Every new connection starts *unpermitted*: the peer is blacklisted in gossipsub and its
//! application score is [`UNPERMITTED_SCORE`] (below the graylist threshold), so it neither
//! sends us gossip nor receives any, not even our own publications. Its requests other than
//! `GetParams` are answered `Denied` here, without bothering the node. It is disconnected after
//! [`NetworkConfig::unpermitted_grace`]; at most [`NetworkConfig::max_unpermitted`] such peers
//! are connected at once (more are dropped on arrival). The node calls
//! [`NetworkHandle::set_permitted`] after [`NetEvent::PeerConnected`] once it has checked the
//! `connect` permission of the peer's address; revoking it disconnects the peer. Permission is
//! not remembered across reconnections: each new session is checked again.
//!
//! Our own outgoing requests are not restricted: a joiner asks an (unpermitted, to it) seed for
//! `GetParams` before it knows anything about the chain.
//!
//! # Per-peer limits and bans
//!
//! - Size: gossip payloads up to [`NetworkConfig::max_transmit_size`] (gossipsub's frame limit is
//!   that plus `behaviour::FRAME_SLACK`; a frame over it is cut by the codec before it is read,
//!   and libp2p does not say by whom, so only payloads between the two limits can be blamed);
//!   sync requests up to `protocol::MAX_REQUEST_SIZE` (4 KiB), responses up to
//!   [`NetworkConfig::max_response_size`].
//! - Rate: each peer has a token bucket for gossip messages
//!   ([`NetworkConfig::gossip_rate`]/s, burst [`NetworkConfig::gossip_burst`]) and one for sync
//!   requests ([`NetworkConfig::request_rate`]/s, burst [`NetworkConfig::request_burst`]).
//!   Gossip over the rate is dropped (`Ignore`: not forwarded) and requests over it are answered
//!   `Denied`, before the node sees them.
//! - Open requests: at most [`NetworkConfig::max_open_requests`] inbound requests per peer wait for
//!   the node's answer; more are answered `Denied` at once.
//! - Connections: at most [`MAX_CONNECTIONS_PER_PEER`] per peer and
//!   [`MAX_PENDING_INCOMING`] handshakes in progress (libp2p `connection_limits`).
//! - Misbehaviour: each offence (a `Reject` verdict, an oversized payload, an undecodable sync
//!   message, traffic over a rate limit) adds points to a per-peer score that halves every minute; at
//!   100 the peer is disconnected and banned for [`NetworkConfig::ban_duration`] (logged at
//!   `warn`, "peer banned"): its connections are refused (libp2p `allow_block_list`; logged
//!   "connection from a banned peer refused") and we do not dial it. The points, and why, are in
//!   `limits`.
//!
//! # Seeds
//!
//! Seeds are dialled at start and re-dialled whenever they are not connected, with exponential
//! backoff from [`NetworkConfig::redial_min`] to [`NetworkConfig::redial_max`] (reset once a
//! connection has lasted a minute). A joiner therefore keeps knocking until it is admitted.
//!
//! Files: `ingress` (commands and the handle), `actor` (the select loop and commands) with
//! `actor/swarm` (Swarm events), `behaviour` (libp2p behaviours and their configuration),
//! `protocol` (sync messages), `peers` (peer table and seed dialling), `limits` (rate limits,
//! misbehaviour scores and bans).

mod actor;
mod behaviour;
mod ingress;
mod limits;
mod peers;
pub(crate) mod protocol;

use std::net::IpAddr;
use std::time::Duration;

use libp2p::Multiaddr;
use libp2p::multiaddr::Protocol;
use tokio::sync::mpsc;
use wattle_ledger::Address;

pub use ingress::NetworkHandle;
pub use libp2p::PeerId;
pub use libp2p::gossipsub::MessageId;
pub use peers::address_of_peer;
pub use protocol::{Request, Response, SYNC_PROTOCOL};

/// Application score given to unpermitted peers: far below gossipsub's graylist threshold.
pub const UNPERMITTED_SCORE: f64 = -1_000.0;
/// Connections one peer may have open with us at once (two nodes may dial each other at the
/// same moment).
pub const MAX_CONNECTIONS_PER_PEER: u32 = 2;
/// Incoming connections that may be in their handshake at once.
pub const MAX_PENDING_INCOMING: u32 = 32;

/// Everything the network needs, validated by [`spawn`].
#[derive(Clone)]
pub struct NetworkConfig {
    /// ed25519 secret key of the node's first wallet address; it is also the libp2p identity.
    pub secret: [u8; 32],
    /// TCP port to listen on; 0 picks a free one (returned by [`spawn`]).
    pub listen_port: u16,
    /// Listening IP address, usually `127.0.0.1` or `0.0.0.0`.
    pub listen_host: String,
    /// Seeds to dial and keep re-dialling: (host name or IP, port).
    pub seeds: Vec<(String, u16)>,
    /// Chain id; it names the gossip topics.
    pub chain_id: [u8; 32],
    /// Largest gossip payload (a transaction or a block) in bytes; follows `maximum-block-size`.
    pub max_transmit_size: usize,
    /// Largest sync response in bytes (a batch of blocks).
    pub max_response_size: usize,
    /// gossipsub heartbeat (mesh maintenance). Delivery does not wait for it.
    pub heartbeat: Duration,
    /// How long gossipsub keeps a received message awaiting its verdict (and for IWANT). A
    /// verdict later than this is a no-op: the message is neither forwarded nor penalised.
    pub validation_window: Duration,
    /// How long an outgoing request may wait for its response.
    pub request_timeout: Duration,
    /// How long an unpermitted peer may stay connected.
    pub unpermitted_grace: Duration,
    /// How many unpermitted peers may be connected at once.
    pub max_unpermitted: usize,
    /// First and largest delay between attempts to reach a seed.
    pub redial_min: Duration,
    pub redial_max: Duration,
    /// Capacity of the [`NetEvent`] channel.
    pub event_capacity: usize,
    /// How long a misbehaving peer stays banned.
    pub ban_duration: Duration,
    /// Gossip messages per second a peer may send (sustained), and in one burst.
    pub gossip_rate: u32,
    pub gossip_burst: u32,
    /// Sync requests per second a peer may make (sustained), and in one burst.
    pub request_rate: u32,
    pub request_burst: u32,
    /// Inbound sync requests of one peer that may wait for the node's answer at once.
    pub max_open_requests: usize,
}

impl NetworkConfig {
    /// A configuration with production defaults, listening on 127.0.0.1 on any port.
    pub fn new(secret: [u8; 32], chain_id: [u8; 32]) -> NetworkConfig {
        NetworkConfig {
            secret,
            listen_port: 0,
            listen_host: "127.0.0.1".to_string(),
            seeds: Vec::new(),
            chain_id,
            max_transmit_size: 8 * 1024 * 1024,
            max_response_size: 64 * 1024 * 1024,
            heartbeat: Duration::from_millis(500),
            validation_window: Duration::from_secs(10),
            request_timeout: Duration::from_secs(30),
            unpermitted_grace: Duration::from_secs(10),
            max_unpermitted: 16,
            redial_min: Duration::from_secs(1),
            redial_max: Duration::from_secs(30),
            event_capacity: 1024,
            ban_duration: Duration::from_secs(600),
            // A publisher sends at most ~200 batches/s (5 ms relay delay) plus ~10 blocks/s; a
            // peer also forwards what others publish.
            gossip_rate: 1000,
            gossip_burst: 2000,
            // An honest node asks each peer for its status every second, plus block batches
            // while syncing.
            request_rate: 20,
            request_burst: 40,
            max_open_requests: 16,
        }
    }

    fn listen_addr(&self) -> Result<Multiaddr, NetError> {
        let ip: IpAddr = self.listen_host.parse().map_err(|_| {
            NetError::Config(format!("listen host {:?} is not an IP", self.listen_host))
        })?;
        Ok(socket_multiaddr(ip, self.listen_port))
    }

    fn validate(&self) -> Result<(), NetError> {
        if self.max_transmit_size == 0 || self.max_response_size == 0 {
            return Err(NetError::Config("size limits must be positive".into()));
        }
        if self.heartbeat.is_zero() || self.event_capacity == 0 {
            return Err(NetError::Config(
                "heartbeat and event capacity must be positive".into(),
            ));
        }
        if self.redial_min.is_zero() || self.redial_min > self.redial_max {
            return Err(NetError::Config("need 0 < redial_min <= redial_max".into()));
        }
        let limits = [
            self.gossip_rate,
            self.gossip_burst,
            self.request_rate,
            self.request_burst,
        ];
        if limits.contains(&0) || self.max_open_requests == 0 {
            return Err(NetError::Config(
                "rate and request limits must be positive".into(),
            ));
        }
        Ok(())
    }
}

impl std::fmt::Debug for NetworkConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the secret.
        f.debug_struct("NetworkConfig")
            .field("listen_host", &self.listen_host)
            .field("listen_port", &self.listen_port)
            .field("seeds", &self.seeds)
            .field("chain_id", &hex::encode(self.chain_id))
            .field("max_transmit_size", &self.max_transmit_size)
            .field("heartbeat", &self.heartbeat)
            .finish_non_exhaustive()
    }
}

/// The node's judgement of a gossiped message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Valid: forward it.
    Accept,
    /// Not valid here and now (depends on state): drop it, no penalty.
    Ignore,
    /// Invalid whatever the state: drop it and penalise the peer that sent it.
    Reject,
}

/// Names an inbound request awaiting [`NetworkHandle::respond`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ChannelId(pub u64);

/// A connected peer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeerInfo {
    pub peer: PeerId,
    /// The Wattle address of the peer's key.
    pub address: Address,
    /// Remote address of the first connection.
    pub addr: String,
    pub inbound: bool,
    pub permitted: bool,
    /// Connections open with the peer.
    pub connections: u32,
    /// Its misbehaviour score now, rounded up (banned at 100; see `limits`).
    pub misbehaviour: u32,
}

/// What the network tells the node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NetEvent {
    /// First connection to a peer whose key is ed25519. The peer starts unpermitted.
    PeerConnected {
        peer: PeerId,
        address: Address,
        inbound: bool,
    },
    /// Last connection to a peer announced by `PeerConnected` closed.
    PeerDisconnected { peer: PeerId },
    /// A gossiped transaction awaiting a verdict ([`NetworkHandle::report`]).
    Tx {
        peer: PeerId,
        msg_id: MessageId,
        bytes: Vec<u8>,
    },
    /// A gossiped block awaiting a verdict ([`NetworkHandle::report`]).
    Block {
        peer: PeerId,
        msg_id: MessageId,
        bytes: Vec<u8>,
    },
    /// A sync request to answer with [`NetworkHandle::respond`].
    Request {
        peer: PeerId,
        request: Request,
        channel: ChannelId,
    },
}

/// Network errors. Faults of peers never surface here: they are logged and penalised.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum NetError {
    #[error("invalid network configuration: {0}")]
    Config(String),
    #[error("cannot listen: {0}")]
    Listen(String),
    #[error("the network task has stopped")]
    Stopped,
    #[error("the transaction gossip queue is full; transaction dropped")]
    QueueFull,
    #[error("payload of {size} bytes exceeds the limit of {max}")]
    TooLarge { size: usize, max: usize },
    #[error("no permitted peer is subscribed to the topic")]
    NoPeers,
    #[error("the same bytes were published within the duplicate window")]
    Duplicate,
    #[error("publish failed: {0}")]
    Publish(String),
    #[error("cannot dial: {0}")]
    Dial(String),
    #[error("request timed out")]
    Timeout,
    #[error("request failed: {0}")]
    Request(String),
    #[error("unknown or expired response channel")]
    UnknownChannel,
}

/// Starts the network: builds the Swarm, binds the listener, spawns the task owning the Swarm.
/// Returns the handle, the event stream and the bound TCP port.
pub async fn spawn(
    config: NetworkConfig,
) -> Result<(NetworkHandle, mpsc::Receiver<NetEvent>, u16), NetError> {
    config.validate()?;
    let listen = config.listen_addr()?;
    let mut swarm = behaviour::build_swarm(&config)?;
    swarm
        .listen_on(listen)
        .map_err(|e| NetError::Listen(e.to_string()))?;
    let (port, early_events) = actor::wait_for_listen_port(&mut swarm).await?;
    let local_peer_id = *swarm.local_peer_id();
    let (handle, commands, tx_gossip) = ingress::channels(local_peer_id);
    let (events, events_rx) = mpsc::channel(config.event_capacity);
    let channels = actor::Channels {
        commands,
        tx_gossip,
        self_commands: handle.weak(),
        events,
    };
    let actor = actor::NetworkActor::new(swarm, config, channels, early_events);
    tokio::spawn(actor.run());
    tracing::info!(peer = %local_peer_id, port, "network started");
    Ok((handle, events_rx, port))
}

/// `/ip4/<ip>/tcp/<port>` or `/ip6/<ip>/tcp/<port>`.
fn socket_multiaddr(ip: IpAddr, port: u16) -> Multiaddr {
    let ip = match ip {
        IpAddr::V4(v4) => Protocol::Ip4(v4),
        IpAddr::V6(v6) => Protocol::Ip6(v6),
    };
    Multiaddr::empty().with(ip).with(Protocol::Tcp(port))
}

/// The TCP port of a multiaddr, if it has one.
fn tcp_port(addr: &Multiaddr) -> Option<u16> {
    addr.iter().find_map(|p| match p {
        Protocol::Tcp(port) => Some(port),
        _ => None,
    })
}

/// Resolves a host (IP literal or name) and port to multiaddrs, IPv4 first.
async fn resolve(host: &str, port: u16) -> Result<Vec<Multiaddr>, NetError> {
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok(vec![socket_multiaddr(ip, port)]);
    }
    let found = tokio::net::lookup_host((host, port))
        .await
        .map_err(|e| NetError::Dial(format!("cannot resolve {host}: {e}")))?;
    let mut addrs: Vec<_> = found.collect();
    addrs.sort_by_key(|a| !a.is_ipv4());
    if addrs.is_empty() {
        return Err(NetError::Dial(format!("{host} has no address")));
    }
    Ok(addrs
        .into_iter()
        .map(|a| socket_multiaddr(a.ip(), a.port()))
        .collect())
}
