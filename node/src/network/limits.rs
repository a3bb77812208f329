//! Per-peer conduct: rate limits (token buckets), a decaying misbehaviour score, and bans.
//! Pure data: the actor decides with these and performs the effects (drop, deny, disconnect).
//!
//! # Misbehaviour and bans
//!
//! Every offence adds [`Offence::points`] to the peer's score, which halves every
//! [`SCORE_HALF_LIFE`]. At [`BAN_SCORE`] the peer is disconnected and its connections are
//! refused for `NetworkConfig::ban_duration` (10 minutes by default, `wattled -bantime`):
//!
//! | offence | points | so that |
//! |---|---|---|
//! | a gossip message the node judged `Reject` (undecodable, stateless fault, bad signature) | 34 | three within seconds ban: the same count that puts the peer below gossipsub's graylist threshold (P4, see `behaviour`), after which gossipsub would drop its messages unseen and our count could not grow |
//! | a gossip payload over the size limit | 100 | one bans: no honest node publishes one (the limit follows the chain's `maximum-block-size`) |
//! | a sync request or response that does not decode (garbage, or over the size limit) | 34 | three ban, as for gossip |
//! | a gossip message over the rate limit (dropped, `Ignore`) | 1 | a flood sustained ~100 messages past the burst bans |
//! | a sync request over the rate limit (answered `Denied`) | 1 | likewise |
//!
//! Requests over the open-request limit are answered `Denied` without a penalty: they pile up
//! when *our* node is slow to answer. (Even one penalty point per second would never ban: the
//! score settles at about 87.)
//!
//! Honest nodes validate before they forward, so they never forward what we `Reject`; a single
//! glitch costs 34 points and is forgotten within minutes. A ban ends on its own; the peer may then
//! connect again and starts with a clean score.

use std::collections::HashMap;
use std::time::Duration;

use libp2p::PeerId;
use tokio::time::Instant;

/// A peer whose score reaches this is banned.
pub(crate) const BAN_SCORE: f64 = 100.0;
/// A misbehaviour score halves in this time.
pub(crate) const SCORE_HALF_LIFE: Duration = Duration::from_secs(60);
/// At most this many bans are remembered at once; a peer banned beyond that is only
/// disconnected.
pub(crate) const MAX_BANS: usize = 4096;

/// What a peer did wrong.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Offence {
    /// A gossip message the node judged invalid whatever the state.
    Rejected,
    /// A gossip payload over the size limit.
    Oversized,
    /// A sync request or response that failed to decode.
    BadSyncMessage,
    /// A gossip message over the per-peer rate: dropped.
    GossipFlood,
    /// A sync request over the per-peer rate: denied.
    RequestFlood,
}

impl Offence {
    /// What it adds to the peer's score.
    pub fn points(self) -> f64 {
        match self {
            Offence::Rejected => 34.0,
            Offence::Oversized => BAN_SCORE,
            Offence::BadSyncMessage => 34.0,
            Offence::GossipFlood | Offence::RequestFlood => 1.0,
        }
    }

    /// For logs.
    pub fn describe(self) -> &'static str {
        match self {
            Offence::Rejected => "invalid gossip",
            Offence::Oversized => "oversized gossip",
            Offence::BadSyncMessage => "undecodable sync message",
            Offence::GossipFlood => "gossip over the rate limit",
            Offence::RequestFlood => "sync requests over the rate limit",
        }
    }
}

/// A token bucket: `burst` tokens, refilled at `rate` per second.
#[derive(Debug, Clone)]
pub(crate) struct TokenBucket {
    rate: f64,
    burst: f64,
    tokens: f64,
    at: Instant,
}

impl TokenBucket {
    /// A full bucket.
    pub fn new(rate: u32, burst: u32, now: Instant) -> TokenBucket {
        let burst = f64::from(burst.max(1));
        TokenBucket {
            rate: f64::from(rate),
            burst,
            tokens: burst,
            at: now,
        }
    }

    /// Takes a token if there is one.
    pub fn take(&mut self, now: Instant) -> bool {
        let elapsed = now.saturating_duration_since(self.at).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.rate).min(self.burst);
        self.at = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// A misbehaviour score that halves every [`SCORE_HALF_LIFE`].
#[derive(Debug, Clone)]
pub(crate) struct Misbehaviour {
    score: f64,
    at: Instant,
}

impl Misbehaviour {
    pub fn new(now: Instant) -> Misbehaviour {
        Misbehaviour {
            score: 0.0,
            at: now,
        }
    }

    /// The score at `now`.
    pub fn score(&self, now: Instant) -> f64 {
        let elapsed = now.saturating_duration_since(self.at).as_secs_f64();
        self.score * 0.5f64.powf(elapsed / SCORE_HALF_LIFE.as_secs_f64())
    }

    /// Adds an offence; returns the new score.
    pub fn add(&mut self, offence: Offence, now: Instant) -> f64 {
        self.score = self.score(now) + offence.points();
        self.at = now;
        self.score
    }
}

/// Banned peers and when their bans end.
#[derive(Debug, Default)]
pub(crate) struct Bans {
    until: HashMap<PeerId, Instant>,
}

impl Bans {
    /// Bans `peer` until `until`. Returns false if it is banned already or if [`MAX_BANS`]
    /// bans are remembered.
    pub fn ban(&mut self, peer: PeerId, until: Instant) -> bool {
        if self.until.contains_key(&peer) || self.until.len() >= MAX_BANS {
            return false;
        }
        self.until.insert(peer, until);
        true
    }

    pub fn is_banned(&self, peer: &PeerId) -> bool {
        self.until.contains_key(peer)
    }

    /// Removes and returns the bans that ended by `now`.
    pub fn expire(&mut self, now: Instant) -> Vec<PeerId> {
        let done: Vec<PeerId> = self
            .until
            .iter()
            .filter(|(_, until)| **until <= now)
            .map(|(peer, _)| *peer)
            .collect();
        for peer in &done {
            self.until.remove(peer);
        }
        done
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.until.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bucket_allows_its_burst_then_its_rate() {
        let t0 = Instant::now();
        let mut bucket = TokenBucket::new(10, 5, t0);
        let taken = (0..20).filter(|_| bucket.take(t0)).count();
        assert_eq!(taken, 5, "the burst");
        // 10 per second: one token per 100 ms, never more than the burst.
        assert!(!bucket.take(t0 + Duration::from_millis(50)));
        assert!(bucket.take(t0 + Duration::from_millis(100)));
        assert!(!bucket.take(t0 + Duration::from_millis(100)));
        let later = t0 + Duration::from_secs(60);
        let taken = (0..20).filter(|_| bucket.take(later)).count();
        assert_eq!(taken, 5, "refilled to the burst, not beyond");
    }

    #[test]
    fn three_rejects_ban_two_do_not_and_scores_decay() {
        let t0 = Instant::now();
        let mut m = Misbehaviour::new(t0);
        assert!(m.add(Offence::Rejected, t0) < BAN_SCORE);
        assert!(m.add(Offence::Rejected, t0) < BAN_SCORE);
        assert!(m.add(Offence::Rejected, t0) >= BAN_SCORE);

        let mut m = Misbehaviour::new(t0);
        m.add(Offence::Rejected, t0);
        m.add(Offence::Rejected, t0);
        let half = t0 + SCORE_HALF_LIFE;
        assert!(
            (m.score(half) - 34.0).abs() < 1e-9,
            "halved after a half-life"
        );
        assert!(
            m.add(Offence::Rejected, half) < BAN_SCORE,
            "spread out: no ban"
        );

        let mut m = Misbehaviour::new(t0);
        assert!(
            m.add(Offence::Oversized, t0) >= BAN_SCORE,
            "oversized: at once"
        );
        let mut m = Misbehaviour::new(t0);
        let floods = (1..)
            .find(|_| m.add(Offence::GossipFlood, t0) >= BAN_SCORE)
            .unwrap();
        assert_eq!(floods, 100);

        // One point a second, for ten minutes: the score settles below the ban.
        let mut m = Misbehaviour::new(t0);
        let worst = (0..600u64)
            .map(|i| m.add(Offence::RequestFlood, t0 + Duration::from_secs(i)))
            .fold(0.0, f64::max);
        assert!((80.0..BAN_SCORE).contains(&worst), "{worst}");
    }

    #[test]
    fn bans_expire_and_are_capped() {
        let t0 = Instant::now();
        let mut bans = Bans::default();
        let (a, b) = (PeerId::random(), PeerId::random());
        assert!(bans.ban(a, t0 + Duration::from_secs(1)));
        assert!(!bans.ban(a, t0 + Duration::from_secs(9)), "already banned");
        assert!(bans.ban(b, t0 + Duration::from_secs(2)));
        assert!(bans.expire(t0).is_empty());
        assert_eq!(bans.expire(t0 + Duration::from_secs(1)), vec![a]);
        assert!(!bans.is_banned(&a) && bans.is_banned(&b));
        assert_eq!(bans.expire(t0 + Duration::from_secs(5)), vec![b]);
        for _ in 0..MAX_BANS {
            assert!(bans.ban(PeerId::random(), t0));
        }
        assert!(!bans.ban(PeerId::random(), t0), "the cap");
        assert_eq!(bans.len(), MAX_BANS);
    }
}
