//! The libp2p behaviours and how they are configured.
//!
//! Values chosen, and why:
//! - gossipsub: anonymous messages with a content id (SHA-256 of the data): our payloads are
//!   signed, so per-hop libp2p signatures would only cost CPU, and the default id (source +
//!   seqno) would make every anonymous message a duplicate. `validate_messages`: nothing is
//!   forwarded before the node's verdict. `flood_publish`: our own messages go to every
//!   subscribed permitted peer (lowest latency for a small validator set). Heartbeat (and its
//!   initial delay, 5 s by default) = `NetworkConfig::heartbeat`: relays forward only to mesh
//!   peers, and the mesh is built at heartbeats. Handler queue 20 000 messages (default 5 000)
//!   to absorb bursts. `history_length` = validation window / heartbeat: the message cache
//!   shifts once per heartbeat and silently drops messages still awaiting a verdict after
//!   `history_length` shifts (default 5, i.e. 0.5 s at a 100 ms heartbeat, too short to apply
//!   a block). `max_transmit_size` bounds the whole RPC frame, so it gets
//!   [`FRAME_SLACK`] on top of the payload limit, which the actor checks itself.
//! - Peer scoring is on only for two things: the application score (connect permission:
//!   unpermitted peers sit below the graylist threshold, so they get no mesh slot, no
//!   publication, no gossip and their RPCs are dropped) and P4 (a rejected message costs the
//!   sender `REJECT_WEIGHT` x count², the count decaying 1 %/s). Delivery-rate penalties (P3) are off:
//!   a quiet chain is not a fault. IP colocation is off: permission already names each peer,
//!   and several nodes may share an address (tests, NAT).
//! - Connection gates, consulted before the other behaviours see a connection: `blocked` (banned
//!   peers, see `limits`) and `limits` ([`super::MAX_CONNECTIONS_PER_PEER`] established per peer,
//!   [`super::MAX_PENDING_INCOMING`] incoming handshakes).
//! - Swarm idle timeout 1 h: gossipsub only keeps mesh connections alive, and non-mesh
//!   permitted peers must stay connected.

use std::time::Duration;

use libp2p::allow_block_list::{self, BlockedPeers};
use libp2p::connection_limits::{self, ConnectionLimits};
use libp2p::gossipsub::{
    self, IdentTopic, MessageAuthenticity, PeerScoreParams, PeerScoreThresholds, TopicHash,
    TopicScoreParams, ValidationMode,
};
use libp2p::swarm::NetworkBehaviour;
use libp2p::{Swarm, identify, identity, noise, tcp, yamux};

use super::protocol::{self, SyncBehaviour};
use super::{NetError, NetworkConfig};

/// Identify protocol name.
pub(crate) const IDENTIFY_PROTOCOL: &str = "/wattle/id/1";
/// Room for the gossipsub RPC framing (topic, protobuf tags) around a payload.
pub(crate) const FRAME_SLACK: usize = 1024;
/// Per-connection gossipsub queue, in messages.
const HANDLER_QUEUE_LEN: usize = 20_000;
/// P4: the score of a peer is `REJECT_WEIGHT` x (rejected messages)², the count decaying by
/// `REJECT_DECAY` every second. One reject puts the sender below zero (out of our mesh) for
/// about four minutes; three put it below the graylist threshold (-80: everything it sends is
/// dropped) for a few seconds, four for half a minute, five for about a minute. Honest nodes
/// validate before forwarding, so they never forward what we `Reject`. Three rejects in a short
/// time also ban the peer (`limits`: 34 points each), so the graylist only covers the moment
/// between the third verdict and the disconnection.
const REJECT_WEIGHT: f64 = -10.0;
const REJECT_DECAY: f64 = 0.99;
/// Idle connections are kept for this long.
const IDLE_CONNECTION_TIMEOUT: Duration = Duration::from_secs(3600);

#[derive(NetworkBehaviour)]
pub(crate) struct Behaviour {
    /// Banned peers: their connections are denied, existing ones closed.
    pub blocked: allow_block_list::Behaviour<BlockedPeers>,
    pub limits: connection_limits::Behaviour,
    pub gossipsub: gossipsub::Behaviour,
    pub sync: SyncBehaviour,
    pub identify: identify::Behaviour,
}

/// Which of our topics a message came on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum TopicKind {
    Tx,
    Block,
}

/// The chain's two gossip topics.
#[derive(Clone, Debug)]
pub(crate) struct Topics {
    pub tx: IdentTopic,
    pub block: IdentTopic,
}

impl Topics {
    pub fn new(chain_id: &[u8; 32]) -> Topics {
        let id = hex::encode(chain_id);
        Topics {
            tx: IdentTopic::new(format!("wattle/{id}/tx")),
            block: IdentTopic::new(format!("wattle/{id}/block")),
        }
    }

    pub fn kind(&self, hash: &TopicHash) -> Option<TopicKind> {
        if *hash == self.tx.hash() {
            Some(TopicKind::Tx)
        } else if *hash == self.block.hash() {
            Some(TopicKind::Block)
        } else {
            None
        }
    }
}

/// Builds the Swarm (TCP + noise + yamux, tokio) with our identity and behaviours, subscribed
/// to the chain's topics.
pub(crate) fn build_swarm(config: &NetworkConfig) -> Result<Swarm<Behaviour>, NetError> {
    let keypair = identity::Keypair::ed25519_from_bytes(config.secret)
        .map_err(|e| NetError::Config(format!("secret key: {e}")))?;
    let behaviour = new_behaviour(config, &keypair)?;
    let swarm = libp2p::SwarmBuilder::with_existing_identity(keypair)
        .with_tokio()
        .with_tcp(
            tcp::Config::default(),
            noise::Config::new,
            yamux::Config::default,
        )
        .map_err(|e| NetError::Config(format!("transport: {e}")))?
        .with_behaviour(|_| behaviour)
        .map_err(|e| NetError::Config(format!("behaviour: {e}")))?
        .with_swarm_config(|c| c.with_idle_connection_timeout(IDLE_CONNECTION_TIMEOUT))
        .build();
    Ok(swarm)
}

fn new_behaviour(
    config: &NetworkConfig,
    keypair: &identity::Keypair,
) -> Result<Behaviour, NetError> {
    let topics = Topics::new(&config.chain_id);
    let mut gossipsub =
        gossipsub::Behaviour::new(MessageAuthenticity::Anonymous, gossip_config(config)?)
            .map_err(|e| NetError::Config(format!("gossipsub: {e}")))?;
    gossipsub
        .with_peer_score(score_params(&topics), PeerScoreThresholds::default())
        .map_err(|e| NetError::Config(format!("peer score: {e}")))?;
    for topic in [&topics.tx, &topics.block] {
        gossipsub
            .subscribe(topic)
            .map_err(|e| NetError::Config(format!("subscribe: {e}")))?;
    }
    let identify = identify::Behaviour::new(
        identify::Config::new(IDENTIFY_PROTOCOL.to_string(), keypair.public())
            .with_agent_version(format!("wattled/{}", env!("CARGO_PKG_VERSION"))),
    );
    let sync = protocol::sync_behaviour(config.max_response_size, config.request_timeout);
    let limits = ConnectionLimits::default()
        .with_max_established_per_peer(Some(super::MAX_CONNECTIONS_PER_PEER))
        .with_max_pending_incoming(Some(super::MAX_PENDING_INCOMING));
    Ok(Behaviour {
        blocked: allow_block_list::Behaviour::default(),
        limits: connection_limits::Behaviour::new(limits),
        gossipsub,
        sync,
        identify,
    })
}

fn gossip_config(config: &NetworkConfig) -> Result<gossipsub::Config, NetError> {
    gossipsub::ConfigBuilder::default()
        .validation_mode(ValidationMode::Anonymous)
        .message_id_fn(|message| {
            gossipsub::MessageId::new(&wattle_ledger::hash::sha256(&message.data))
        })
        .validate_messages()
        .max_transmit_size(config.max_transmit_size.saturating_add(FRAME_SLACK))
        .heartbeat_interval(config.heartbeat)
        .heartbeat_initial_delay(config.heartbeat)
        .history_length(history_length(config))
        .flood_publish(true)
        .connection_handler_queue_len(HANDLER_QUEUE_LEN)
        .build()
        .map_err(|e| NetError::Config(format!("gossipsub: {e}")))
}

/// Heartbeats a message stays cached: the validation window, and never below the default 5.
fn history_length(config: &NetworkConfig) -> usize {
    let beats = config.validation_window.as_nanos() / config.heartbeat.as_nanos().max(1);
    usize::try_from(beats).unwrap_or(usize::MAX).max(5)
}

fn score_params(topics: &Topics) -> PeerScoreParams {
    let topic = TopicScoreParams {
        topic_weight: 1.0,
        time_in_mesh_weight: 0.0,
        first_message_deliveries_weight: 0.0,
        mesh_message_deliveries_weight: 0.0,
        mesh_failure_penalty_weight: 0.0,
        invalid_message_deliveries_weight: REJECT_WEIGHT,
        invalid_message_deliveries_decay: REJECT_DECAY,
        ..TopicScoreParams::default()
    };
    let mut params = PeerScoreParams {
        app_specific_weight: 1.0,
        ip_colocation_factor_weight: 0.0,
        ..PeerScoreParams::default()
    };
    params.topics.insert(topics.tx.hash(), topic.clone());
    params.topics.insert(topics.block.hash(), topic);
    params
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topics_name_the_chain() {
        let topics = Topics::new(&[0xab; 32]);
        let id = "ab".repeat(32);
        assert_eq!(topics.tx.hash().as_str(), format!("wattle/{id}/tx"));
        assert_eq!(topics.block.hash().as_str(), format!("wattle/{id}/block"));
        assert_eq!(topics.kind(&topics.block.hash()), Some(TopicKind::Block));
        assert_eq!(topics.kind(&TopicHash::from_raw("other")), None);
    }

    #[test]
    fn score_and_gossip_parameters_are_accepted() {
        let config = NetworkConfig::new([1; 32], [2; 32]);
        let keypair = identity::Keypair::ed25519_from_bytes([1u8; 32]).unwrap();
        assert!(score_params(&Topics::new(&[2; 32])).validate().is_ok());
        assert!(new_behaviour(&config, &keypair).is_ok());
        assert_eq!(history_length(&config), 20); // 10 s at 500 ms
    }

    #[test]
    fn the_message_cache_covers_the_validation_window() {
        let mut config = NetworkConfig::new([1; 32], [2; 32]);
        config.heartbeat = Duration::from_millis(100);
        assert_eq!(history_length(&config), 100);
        config.validation_window = Duration::from_millis(200);
        assert_eq!(history_length(&config), 5);
    }
}
