//! The Swarm-event half of the network actor: connections, gossip and sync requests.

use libp2p::PeerId;
use libp2p::core::ConnectedPoint;
use libp2p::gossipsub;
use libp2p::request_response::{self, OutboundFailure, ResponseChannel};
use libp2p::swarm::{ConnectionId, SwarmEvent};
use tokio::time::Instant;

use super::{DENIED, NetworkActor, SwarmEv};
use crate::network::behaviour::{BehaviourEvent, TopicKind};
use crate::network::peers::{PeerEntry, address_of_peer};
use crate::network::{
    ChannelId, NetError, NetEvent, Request, Response, UNPERMITTED_SCORE, Verdict,
};

impl NetworkActor {
    pub(super) fn handle_swarm_event(&mut self, event: SwarmEv) {
        match event {
            SwarmEvent::Behaviour(BehaviourEvent::Gossipsub(event)) => self.handle_gossip(event),
            SwarmEvent::Behaviour(BehaviourEvent::Sync(event)) => self.handle_sync(event),
            SwarmEvent::Behaviour(BehaviourEvent::Identify(event)) => {
                tracing::trace!(?event, "identify");
            }
            SwarmEvent::ConnectionEstablished {
                peer_id,
                connection_id,
                endpoint,
                ..
            } => self.handle_connection_established(peer_id, connection_id, &endpoint),
            SwarmEvent::ConnectionClosed {
                peer_id,
                num_established,
                cause,
                ..
            } => {
                tracing::debug!(peer = %peer_id, ?cause, "connection closed");
                if num_established == 0 {
                    self.handle_peer_gone(peer_id);
                }
            }
            SwarmEvent::OutgoingConnectionError {
                connection_id,
                error,
                ..
            } => {
                tracing::debug!(%error, "dial failed");
                self.seeds.dial_failed(connection_id, Instant::now());
            }
            SwarmEvent::NewListenAddr { address, .. } => {
                tracing::info!(%address, "listening");
            }
            other => tracing::trace!(?other, "swarm event"),
        }
    }

    /// A new connection. A peer seen for the first time starts unpermitted (default deny);
    /// peers without an ed25519 key, or beyond the unpermitted cap, are dropped unannounced.
    fn handle_connection_established(
        &mut self,
        peer: PeerId,
        connection: ConnectionId,
        endpoint: &ConnectedPoint,
    ) {
        let now = Instant::now();
        self.seeds.connected(connection, peer, now);
        if self.peers.contains(&peer) {
            return;
        }
        let gossipsub = &mut self.swarm.behaviour_mut().gossipsub;
        gossipsub.blacklist_peer(&peer);
        gossipsub.set_application_score(&peer, UNPERMITTED_SCORE);
        let Some(address) = address_of_peer(&peer) else {
            tracing::warn!(%peer, "peer key is not ed25519: disconnecting");
            let _ = self.swarm.disconnect_peer_id(peer);
            return;
        };
        if self.peers.unpermitted_count() >= self.config.max_unpermitted {
            tracing::info!(%peer, "too many unpermitted peers: disconnecting");
            let _ = self.swarm.disconnect_peer_id(peer);
            return;
        }
        let inbound = endpoint.is_listener();
        let entry = PeerEntry {
            address,
            addr: endpoint.get_remote_address().clone(),
            inbound,
            permitted: false,
            since: now,
        };
        self.peers.insert(peer, entry);
        tracing::debug!(%peer, ?address, inbound, "peer connected");
        self.emit(NetEvent::PeerConnected {
            peer,
            address,
            inbound,
        });
    }

    fn handle_peer_gone(&mut self, peer: PeerId) {
        // Blacklist entries are per session; keep the set from growing with every visitor.
        self.swarm
            .behaviour_mut()
            .gossipsub
            .remove_blacklisted_peer(&peer);
        self.seeds.disconnected(peer, Instant::now());
        if self.peers.remove(&peer).is_some() {
            self.emit(NetEvent::PeerDisconnected { peer });
        }
    }

    fn handle_gossip(&mut self, event: gossipsub::Event) {
        match event {
            gossipsub::Event::Message {
                propagation_source: peer,
                message_id: msg_id,
                message,
            } => {
                let kind = self.topics.kind(&message.topic);
                // gossipsub already drops what unpermitted peers send; this is a second lock.
                let verdict = if !self.peers.is_permitted(&peer) || kind.is_none() {
                    Some(Verdict::Ignore)
                } else if message.data.len() > self.config.max_transmit_size {
                    Some(Verdict::Reject)
                } else {
                    None
                };
                if let Some(verdict) = verdict {
                    self.report(&msg_id, &peer, verdict);
                    return;
                }
                let bytes = message.data;
                match kind {
                    Some(TopicKind::Tx) => self.emit_tx(peer, msg_id, bytes),
                    _ => self.emit(NetEvent::Block {
                        peer,
                        msg_id,
                        bytes,
                    }),
                }
            }
            gossipsub::Event::SlowPeer {
                peer_id,
                failed_messages,
            } => tracing::warn!(peer = %peer_id, ?failed_messages, "slow gossip peer"),
            other => tracing::debug!(?other, "gossipsub"),
        }
    }

    fn handle_sync(&mut self, event: request_response::Event<Request, Response>) {
        use request_response::{Event, Message};
        match event {
            Event::Message {
                peer,
                message:
                    Message::Request {
                        request, channel, ..
                    },
                ..
            } => self.handle_inbound_request(peer, request, channel),
            Event::Message {
                message:
                    Message::Response {
                        request_id,
                        response,
                    },
                ..
            } => {
                if let Some(reply) = self.pending_requests.remove(&request_id) {
                    let _ = reply.send(Ok(response));
                }
            }
            Event::OutboundFailure {
                request_id, error, ..
            } => {
                if let Some(reply) = self.pending_requests.remove(&request_id) {
                    let error = match error {
                        OutboundFailure::Timeout => NetError::Timeout,
                        other => NetError::Request(other.to_string()),
                    };
                    let _ = reply.send(Err(error));
                }
            }
            Event::InboundFailure { peer, error, .. } => {
                tracing::debug!(%peer, %error, "inbound sync request failed");
            }
            Event::ResponseSent { .. } => {}
        }
    }

    /// Unpermitted peers may only ask for the parameters; anything else is denied here.
    fn handle_inbound_request(
        &mut self,
        peer: PeerId,
        request: Request,
        channel: ResponseChannel<Response>,
    ) {
        let allowed = self.peers.is_permitted(&peer)
            || (self.peers.contains(&peer) && request == Request::GetParams);
        if !allowed {
            tracing::debug!(%peer, ?request, "request denied");
            let denied = Response::Denied(DENIED.to_string());
            let _ = self
                .swarm
                .behaviour_mut()
                .sync
                .send_response(channel, denied);
            return;
        }
        let id = ChannelId(self.next_channel);
        self.next_channel += 1;
        self.open_channels.insert(id, channel);
        self.emit(NetEvent::Request {
            peer,
            request,
            channel: id,
        });
    }
}
