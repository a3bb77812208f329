//! An in-memory cache of ledger state values in front of sled. Admitting a transaction and
//! judging and committing a block read the same few keys again and again (the coins spent, the
//! senders' and receivers' permissions, the asset, the tip); a sled read walks its page cache and
//! decodes, which cost about a tenth of the node's CPU under load.
//!
//! Two generations approximate LRU at O(1): hits in the old generation move to the new one, and
//! when the new one is full it becomes the old one (the old one is dropped).
//!
//! Consistency with sled: the writer calls [`StateCache::begin_write`] before its batch and
//! [`StateCache::finish_write`] with every changed key after it; a reader fills the cache after a
//! miss only if no write began or ended in between ([`StateCache::version`]), so a value read just
//! before a batch can never be cached after it.

use std::collections::HashMap;
use std::sync::Mutex;
use wattle_ledger::state::{StateKey, StateValue};

/// Entries per generation (so at most twice this many are held).
pub(super) const GENERATION: usize = 131_072;

pub(super) struct StateCache {
    inner: Mutex<Generations>,
}

struct Generations {
    new: HashMap<StateKey, Option<StateValue>>,
    old: HashMap<StateKey, Option<StateValue>>,
    version: u64,
    capacity: usize,
}

impl Generations {
    fn put(&mut self, key: StateKey, value: Option<StateValue>) {
        if self.new.len() >= self.capacity && !self.new.contains_key(&key) {
            // The old generation's table becomes the new one (no reallocation).
            std::mem::swap(&mut self.old, &mut self.new);
            self.new.clear();
        }
        self.new.insert(key, value);
    }
}

impl StateCache {
    pub(super) fn new(capacity: usize) -> StateCache {
        let capacity = capacity.max(1);
        // Sized once: growing a table of this size rehashes and copies it several times.
        StateCache {
            inner: Mutex::new(Generations {
                new: HashMap::with_capacity(capacity),
                old: HashMap::with_capacity(capacity),
                version: 0,
                capacity,
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Generations> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The cached value (`Some(None)`: known to be absent), or the version to pass to `fill`.
    pub(super) fn get(&self, key: &StateKey) -> Result<Option<StateValue>, u64> {
        let mut g = self.lock();
        if let Some(v) = g.new.get(key) {
            return Ok(v.clone());
        }
        if let Some(v) = g.old.remove(key) {
            g.put(key.clone(), v.clone());
            return Ok(v);
        }
        Err(g.version)
    }

    /// Caches a value read from sled after a miss at `version`, unless a write began since.
    pub(super) fn fill(&self, key: &StateKey, value: &Option<StateValue>, version: u64) {
        let mut g = self.lock();
        if g.version == version {
            g.put(key.clone(), value.clone());
        }
    }

    /// A write is about to change sled: reads from now on may not fill the cache.
    pub(super) fn begin_write(&self) {
        self.lock().version += 1;
    }

    /// The write committed these values.
    pub(super) fn finish_write(&self, changes: Vec<(StateKey, Option<StateValue>)>) {
        let mut g = self.lock();
        for (k, v) in changes {
            g.put(k, v);
        }
        g.version += 1;
    }

    /// The write failed (sled may hold part of it): forget everything.
    pub(super) fn clear(&self) {
        let mut g = self.lock();
        g.new.clear();
        g.old.clear();
        g.version += 1;
    }

    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        let g = self.lock();
        g.new.len() + g.old.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wattle_ledger::state::TipInfo;

    fn tip(h: u32) -> Option<StateValue> {
        Some(StateValue::Tip(TipInfo {
            height: h,
            id: wattle_ledger::Hash256::ZERO,
            timestamp_ms: 0,
        }))
    }

    fn key(i: u32) -> StateKey {
        StateKey::LastSigned(wattle_ledger::address::Address([i as u8; 20]))
    }

    #[test]
    fn a_fill_racing_a_write_is_dropped() {
        let c = StateCache::new(8);
        let v = c.get(&StateKey::Tip).unwrap_err();
        c.begin_write();
        c.fill(&StateKey::Tip, &tip(1), v); // read before the batch: must not stick
        assert!(c.get(&StateKey::Tip).is_err());
        c.finish_write(vec![(StateKey::Tip, tip(2))]);
        assert_eq!(c.get(&StateKey::Tip), Ok(tip(2)));
        let v = c.get(&key(1)).unwrap_err();
        c.fill(&key(1), &None, v);
        assert_eq!(c.get(&key(1)), Ok(None));
    }

    #[test]
    fn bounded_and_recently_used_entries_survive() {
        let c = StateCache::new(4);
        for i in 0..4 {
            let v = c.get(&key(i)).unwrap_err();
            c.fill(&key(i), &None, v);
        }
        // key(0) is used again before the generation turns over.
        for i in 4..12 {
            assert_eq!(c.get(&key(0)), Ok(None));
            let v = c.get(&key(i)).unwrap_err();
            c.fill(&key(i), &None, v);
            assert!(c.len() <= 8);
        }
        assert_eq!(c.get(&key(0)), Ok(None));
        assert!(c.get(&key(1)).is_err());
        c.clear();
        assert!(c.get(&key(0)).is_err());
    }
}
