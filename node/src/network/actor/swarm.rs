//! The Swarm-event half of the network actor: connections, gossip and sync requests.

use std::io::ErrorKind;

use libp2p::PeerId;
use libp2p::allow_block_list::Blocked;
use libp2p::core::ConnectedPoint;
use libp2p::gossipsub;
use libp2p::request_response::{self, OutboundFailure, ResponseChannel};
use libp2p::swarm::{ConnectionId, ListenError, SwarmEvent};
use tokio::time::Instant;

use super::{DENIED, NetworkActor, SwarmEv};
use crate::network::behaviour::{BehaviourEvent, TopicKind};
use crate::network::limits::{Misbehaviour, Offence, TokenBucket};
use crate::network::peers::{PeerEntry, RequestRefusal, address_of_peer};
use crate::network::protocol::SyncRequest;
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
                num_established,
                ..
            } => {
                self.handle_connection_established(peer_id, connection_id, &endpoint);
                self.peers.set_connections(&peer_id, num_established.get());
            }
            SwarmEvent::ConnectionClosed {
                peer_id,
                num_established,
                cause,
                ..
            } => {
                tracing::debug!(peer = %peer_id, ?cause, "connection closed");
                if num_established == 0 {
                    self.handle_peer_gone(peer_id);
                } else {
                    self.peers.set_connections(&peer_id, num_established);
                }
            }
            SwarmEvent::IncomingConnectionError {
                peer_id,
                send_back_addr,
                error,
                ..
            } => match error {
                ListenError::Denied { cause } if cause.downcast_ref::<Blocked>().is_some() => {
                    tracing::info!(
                        peer = ?peer_id,
                        addr = %send_back_addr,
                        "connection from a banned peer refused"
                    );
                }
                ListenError::Denied { cause } => {
                    tracing::debug!(peer = ?peer_id, addr = %send_back_addr, %cause, "connection refused");
                }
                other => {
                    tracing::debug!(addr = %send_back_addr, error = %other, "incoming connection failed")
                }
            },
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
        let config = &self.config;
        let entry = PeerEntry {
            address,
            addr: endpoint.get_remote_address().clone(),
            inbound,
            permitted: false,
            since: now,
            connections: 1,
            gossip: TokenBucket::new(config.gossip_rate, config.gossip_burst, now),
            requests: TokenBucket::new(config.request_rate, config.request_burst, now),
            open_requests: 0,
            misbehaviour: Misbehaviour::new(now),
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
                let (verdict, offence) = if !self.peers.is_permitted(&peer) || kind.is_none() {
                    (Some(Verdict::Ignore), None)
                } else if message.data.len() > self.config.max_transmit_size {
                    tracing::debug!(%peer, size = message.data.len(), "oversized gossip");
                    (Some(Verdict::Reject), Some(Offence::Oversized))
                } else if !self.peers.take_gossip(&peer, Instant::now()) {
                    (Some(Verdict::Ignore), Some(Offence::GossipFlood))
                } else {
                    (None, None)
                };
                if let Some(verdict) = verdict {
                    self.report(&msg_id, &peer, verdict);
                    if let Some(offence) = offence {
                        self.penalise(peer, offence);
                    }
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

    fn handle_sync(&mut self, event: request_response::Event<SyncRequest, Response>) {
        use request_response::{Event, Message};
        match event {
            Event::Message {
                peer,
                message:
                    Message::Request {
                        request, channel, ..
                    },
                ..
            } => match request {
                SyncRequest::Valid(request) => self.handle_inbound_request(peer, request, channel),
                SyncRequest::Invalid(reason) => {
                    // Too large or undecodable: no answer (the channel is dropped), a penalty.
                    tracing::debug!(%peer, %reason, "bad sync request");
                    drop(channel);
                    self.penalise(peer, Offence::BadSyncMessage);
                }
            },
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
                peer,
                request_id,
                error,
                ..
            } => {
                // The response was too large or did not decode (`SyncCodec`); a broken
                // connection is not the peer's fault.
                if matches!(&error, OutboundFailure::Io(e) if e.kind() == ErrorKind::InvalidData) {
                    tracing::debug!(%peer, %error, "bad sync response");
                    self.penalise(peer, Offence::BadSyncMessage);
                }
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

    /// Unpermitted peers may only ask for the parameters; anything else is denied here. So are
    /// requests over the peer's rate (the peer is penalised) or open-request limit.
    fn handle_inbound_request(
        &mut self,
        peer: PeerId,
        request: Request,
        channel: ResponseChannel<Response>,
    ) {
        let allowed = self.peers.is_permitted(&peer)
            || (self.peers.contains(&peer) && request == Request::GetParams);
        let refusal = if !allowed {
            tracing::debug!(%peer, ?request, "request denied");
            Some(DENIED)
        } else {
            let max_open = self.config.max_open_requests;
            let admitted = self
                .peers
                .take_request(&peer, Instant::now())
                .and_then(|()| self.peers.open_request(&peer, max_open));
            match admitted {
                Ok(()) => None,
                Err(refusal) => {
                    tracing::trace!(%peer, ?request, ?refusal, "request refused");
                    // Too many open requests may be our node's slowness, not the peer's fault.
                    if refusal == RequestRefusal::Rate {
                        self.penalise(peer, Offence::RequestFlood);
                    }
                    Some(refusal.reason())
                }
            }
        };
        if let Some(reason) = refusal {
            let denied = Response::Denied(reason.to_string());
            let _ = self
                .swarm
                .behaviour_mut()
                .sync
                .send_response(channel, denied);
            return;
        }
        let id = ChannelId(self.next_channel);
        self.next_channel += 1;
        self.open_channels.insert(id, (peer, channel));
        self.emit(NetEvent::Request {
            peer,
            request,
            channel: id,
        });
    }
}
