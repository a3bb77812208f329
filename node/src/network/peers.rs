//! Bookkeeping of the network actor: connected peers and their permission, and seed re-dialling.
//! Pure data: the actor performs whatever these decide.

use std::collections::HashMap;
use std::time::Duration;

use libp2p::swarm::ConnectionId;
use libp2p::{Multiaddr, PeerId};
use tokio::time::Instant;
use wattle_ledger::Address;

use super::PeerInfo;
use super::limits::{Misbehaviour, Offence, TokenBucket};

/// The Wattle address named by a peer id, if the peer's key is ed25519.
///
/// An ed25519 public key encodes to 36 protobuf bytes, under the 42-byte limit below which
/// libp2p inlines the key in the peer id (identity multihash), so the key is recoverable.
pub fn address_of_peer(peer: &PeerId) -> Option<Address> {
    const IDENTITY_MULTIHASH: u64 = 0x00;
    let multihash: &libp2p::multihash::Multihash<64> = peer.as_ref();
    if multihash.code() != IDENTITY_MULTIHASH {
        return None;
    }
    let key = libp2p::identity::PublicKey::try_decode_protobuf(multihash.digest()).ok()?;
    let ed25519 = key.try_into_ed25519().ok()?;
    Some(Address::from_pubkey(&ed25519.to_bytes()))
}

/// One connected peer.
#[derive(Debug)]
pub(crate) struct PeerEntry {
    pub address: Address,
    pub addr: Multiaddr,
    pub inbound: bool,
    pub permitted: bool,
    pub since: Instant,
    /// Connections open with the peer.
    pub connections: u32,
    /// Its gossip and sync-request rate limits.
    pub gossip: TokenBucket,
    pub requests: TokenBucket,
    /// Its inbound requests waiting for the node's answer.
    pub open_requests: usize,
    pub misbehaviour: Misbehaviour,
}

/// Why an inbound request is refused before the node sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RequestRefusal {
    Rate,
    Open,
}

impl RequestRefusal {
    /// The reason given in `Response::Denied`.
    pub fn reason(self) -> &'static str {
        match self {
            RequestRefusal::Rate => "too many requests: rate limit",
            RequestRefusal::Open => "too many requests: open-request limit",
        }
    }
}

/// Peers announced to the node (ed25519 keys, admitted under the unpermitted cap).
#[derive(Debug, Default)]
pub(crate) struct PeerTable {
    peers: HashMap<PeerId, PeerEntry>,
}

impl PeerTable {
    pub fn contains(&self, peer: &PeerId) -> bool {
        self.peers.contains_key(peer)
    }

    pub fn insert(&mut self, peer: PeerId, entry: PeerEntry) {
        self.peers.insert(peer, entry);
    }

    pub fn remove(&mut self, peer: &PeerId) -> Option<PeerEntry> {
        self.peers.remove(peer)
    }

    pub fn get(&self, peer: &PeerId) -> Option<&PeerEntry> {
        self.peers.get(peer)
    }

    pub fn set_connections(&mut self, peer: &PeerId, connections: u32) {
        if let Some(entry) = self.peers.get_mut(peer) {
            entry.connections = connections;
        }
    }

    /// Whether a gossip message from `peer` is within its rate (unknown peers: no).
    pub fn take_gossip(&mut self, peer: &PeerId, now: Instant) -> bool {
        self.peers.get_mut(peer).is_some_and(|p| p.gossip.take(now))
    }

    /// Counts an inbound request against the peer's rate.
    pub fn take_request(&mut self, peer: &PeerId, now: Instant) -> Result<(), RequestRefusal> {
        let entry = self.peers.get_mut(peer).ok_or(RequestRefusal::Rate)?;
        if entry.requests.take(now) {
            Ok(())
        } else {
            Err(RequestRefusal::Rate)
        }
    }

    /// Opens a request for the node to answer, unless `max` are open already.
    pub fn open_request(&mut self, peer: &PeerId, max: usize) -> Result<(), RequestRefusal> {
        match self.peers.get_mut(peer) {
            Some(p) if p.open_requests < max => {
                p.open_requests += 1;
                Ok(())
            }
            _ => Err(RequestRefusal::Open),
        }
    }

    /// A request opened by `open_request` was answered or abandoned.
    pub fn close_request(&mut self, peer: &PeerId) {
        if let Some(p) = self.peers.get_mut(peer) {
            p.open_requests = p.open_requests.saturating_sub(1);
        }
    }

    /// Adds an offence to the peer's score; returns the new score (`None`: unknown peer).
    pub fn offend(&mut self, peer: &PeerId, offence: Offence, now: Instant) -> Option<f64> {
        let entry = self.peers.get_mut(peer)?;
        Some(entry.misbehaviour.add(offence, now))
    }

    pub fn is_permitted(&self, peer: &PeerId) -> bool {
        self.peers.get(peer).is_some_and(|p| p.permitted)
    }

    /// Sets the permission; returns the previous one, or `None` for an unknown peer.
    pub fn set_permitted(&mut self, peer: &PeerId, permitted: bool) -> Option<bool> {
        let entry = self.peers.get_mut(peer)?;
        Some(std::mem::replace(&mut entry.permitted, permitted))
    }

    pub fn unpermitted_count(&self) -> usize {
        self.peers.values().filter(|p| !p.permitted).count()
    }

    /// Unpermitted peers connected for longer than `grace`.
    pub fn overstaying(&self, now: Instant, grace: Duration) -> Vec<PeerId> {
        self.peers
            .iter()
            .filter(|(_, p)| !p.permitted && now.duration_since(p.since) >= grace)
            .map(|(peer, _)| *peer)
            .collect()
    }

    pub fn infos(&self) -> Vec<PeerInfo> {
        let now = Instant::now();
        let mut out: Vec<PeerInfo> = self
            .peers
            .iter()
            .map(|(peer, p)| PeerInfo {
                peer: *peer,
                address: p.address,
                addr: p.addr.to_string(),
                inbound: p.inbound,
                permitted: p.permitted,
                connections: p.connections,
                misbehaviour: p.misbehaviour.score(now).ceil() as u32,
            })
            .collect();
        out.sort_by_key(|p| p.address);
        out
    }
}

/// Where a seed stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SeedState {
    /// Not connected; try again at `due`.
    Waiting { due: Instant },
    /// Resolving its host name.
    Resolving,
    /// A dial is in flight.
    Dialing { connection: ConnectionId },
    /// Connected (in either direction) since then.
    Connected { since: Instant },
}

#[derive(Debug)]
pub(crate) struct Seed {
    pub host: String,
    pub port: u16,
    pub peer: Option<PeerId>,
    pub state: SeedState,
    backoff: Duration,
}

/// The seeds and their re-dial schedule.
#[derive(Debug)]
pub(crate) struct Seeds {
    seeds: Vec<Seed>,
    min: Duration,
    max: Duration,
}

/// A connection that lasted this long resets a seed's backoff.
const STABLE_CONNECTION: Duration = Duration::from_secs(60);

impl Seeds {
    pub fn new(list: &[(String, u16)], min: Duration, max: Duration, now: Instant) -> Seeds {
        let seeds = list
            .iter()
            .map(|(host, port)| Seed {
                host: host.clone(),
                port: *port,
                peer: None,
                state: SeedState::Waiting { due: now },
                backoff: min,
            })
            .collect();
        Seeds { seeds, min, max }
    }

    pub fn get(&self, index: usize) -> Option<&Seed> {
        self.seeds.get(index)
    }

    /// Seeds whose wait is over: they move to `Resolving`.
    pub fn take_due(&mut self, now: Instant) -> Vec<usize> {
        let mut ready = Vec::new();
        for (i, seed) in self.seeds.iter_mut().enumerate() {
            if matches!(seed.state, SeedState::Waiting { due } if due <= now) {
                seed.state = SeedState::Resolving;
                ready.push(i);
            }
        }
        ready
    }

    pub fn dialing(&mut self, index: usize, connection: ConnectionId) {
        if let Some(seed) = self.seeds.get_mut(index) {
            seed.state = SeedState::Dialing { connection };
        }
    }

    /// Resolution or dial failed: wait, doubling the backoff.
    pub fn failed(&mut self, index: usize, now: Instant) {
        let (min, max) = (self.min, self.max);
        if let Some(seed) = self.seeds.get_mut(index) {
            seed.retry_later(now, min, max, false);
        }
    }

    /// A dial we made failed.
    pub fn dial_failed(&mut self, connection: ConnectionId, now: Instant) {
        let (min, max) = (self.min, self.max);
        for seed in &mut self.seeds {
            if seed.state == (SeedState::Dialing { connection }) {
                seed.retry_later(now, min, max, false);
            }
        }
    }

    /// A connection is up: if it is one of our dials, or from a seed's known peer, mark it.
    pub fn connected(&mut self, connection: ConnectionId, peer: PeerId, now: Instant) {
        for seed in &mut self.seeds {
            let ours = seed.state == (SeedState::Dialing { connection });
            if ours || seed.peer == Some(peer) {
                seed.peer = Some(peer);
                if !matches!(seed.state, SeedState::Connected { .. }) {
                    seed.state = SeedState::Connected { since: now };
                }
            }
        }
    }

    /// The last connection to `peer` closed: its seed, if any, waits for a re-dial.
    pub fn disconnected(&mut self, peer: PeerId, now: Instant) {
        let (min, max) = (self.min, self.max);
        for seed in &mut self.seeds {
            if seed.peer != Some(peer) {
                continue;
            }
            if let SeedState::Connected { since } = seed.state {
                let stable = now.duration_since(since) >= STABLE_CONNECTION;
                seed.retry_later(now, min, max, stable);
            }
        }
    }
}

impl Seed {
    fn retry_later(&mut self, now: Instant, min: Duration, max: Duration, reset: bool) {
        if reset {
            self.backoff = min;
        }
        self.state = SeedState::Waiting {
            due: now + self.backoff,
        };
        self.backoff = (self.backoff * 2).min(max);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn address_of_an_ed25519_peer_is_the_wattle_address() {
        let secret = [7u8; 32];
        let keypair = libp2p::identity::Keypair::ed25519_from_bytes(secret).unwrap();
        let peer = keypair.public().to_peer_id();
        let expected = wattle_ledger::SecretKey::from_bytes(&secret).address();
        assert_eq!(address_of_peer(&peer), Some(expected));
    }

    #[test]
    fn a_hashed_peer_id_has_no_address() {
        // A sha256 multihash (code 0x12), as produced for large (e.g. RSA) keys.
        let digest = [1u8; 32];
        let multihash = libp2p::multihash::Multihash::<64>::wrap(0x12, &digest).unwrap();
        let peer = PeerId::from_multihash(multihash).unwrap();
        assert_eq!(address_of_peer(&peer), None);
    }

    #[test]
    fn seed_backoff_doubles_up_to_the_max_and_resets_after_a_stable_connection() {
        let t0 = Instant::now();
        let mut seeds = Seeds::new(
            &[("127.0.0.1".into(), 1)],
            Duration::from_secs(1),
            Duration::from_secs(4),
            t0,
        );
        let mut waits = Vec::new();
        let mut now = t0;
        for _ in 0..4 {
            assert_eq!(seeds.take_due(now), vec![0]);
            seeds.failed(0, now);
            let SeedState::Waiting { due } = seeds.get(0).unwrap().state else {
                panic!()
            };
            waits.push(due - now);
            assert!(seeds.take_due(now).is_empty());
            now = due;
        }
        let secs: Vec<u64> = waits.iter().map(|d| d.as_secs()).collect();
        assert_eq!(secs, vec![1, 2, 4, 4]);

        let peer = PeerId::random();
        let conn = ConnectionId::new_unchecked(1);
        assert_eq!(seeds.take_due(now), vec![0]);
        seeds.dialing(0, conn);
        seeds.connected(conn, peer, now);
        let later = now + STABLE_CONNECTION;
        seeds.disconnected(peer, later);
        assert_eq!(
            seeds.get(0).unwrap().state,
            SeedState::Waiting {
                due: later + Duration::from_secs(1)
            }
        );
    }
}
