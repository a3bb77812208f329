//! The address index: each address's unspent outputs, in memory. Built from the UTXO state when
//! the store opens and moved along by every commit, so a wallet query costs as many state reads
//! as the address has coins, and a block's write does not touch sled twice more per coin (an
//! on-disk index cost two of the five sled writes of a transfer).

use std::collections::{BTreeSet, HashMap};
use std::sync::Mutex;
use wattle_ledger::address::Address;
use wattle_ledger::state::{StateKey, StateValue};
use wattle_ledger::tx::OutPoint;

/// One committed state change: key, value before, value after.
pub(super) type Written = (StateKey, Option<StateValue>, Option<StateValue>);

#[derive(Default)]
pub(super) struct AddressIndex {
    inner: Mutex<HashMap<Address, BTreeSet<OutPoint>>>,
}

fn owner(value: &Option<StateValue>) -> Option<Address> {
    match value {
        Some(StateValue::Utxo(u)) => Some(u.output.address),
        _ => None,
    }
}

impl AddressIndex {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Address, BTreeSet<OutPoint>>> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Replaces the index with the owners of `utxos`.
    pub(super) fn rebuild(&self, utxos: impl IntoIterator<Item = (OutPoint, Address)>) {
        let mut map: HashMap<Address, BTreeSet<OutPoint>> = HashMap::new();
        for (op, address) in utxos {
            map.entry(address).or_default().insert(op);
        }
        *self.lock() = map;
    }

    /// Follows committed changes of coins.
    pub(super) fn apply(&self, written: &[Written]) {
        let mut map = self.lock();
        for (key, old, new) in written {
            let StateKey::Utxo(op) = key else { continue };
            if let Some(a) = owner(old)
                && let Some(set) = map.get_mut(&a)
            {
                set.remove(op);
                if set.is_empty() {
                    map.remove(&a);
                }
            }
            if let Some(a) = owner(new) {
                map.entry(a).or_default().insert(*op);
            }
        }
    }

    /// The address's unspent outputs, in outpoint order.
    pub(super) fn outpoints(&self, address: &Address) -> Vec<OutPoint> {
        self.lock()
            .get(address)
            .map(|s| s.iter().copied().collect())
            .unwrap_or_default()
    }
}
