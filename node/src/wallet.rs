//! The wallet: ed25519 keys in `wallet.keys` (mode 0600; the first key is the node's identity and
//! default address), locked coins in `wallet.locks` (they survive a restart, unlike MultiChain's),
//! and coin selection.

use crate::datadir::write_private;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use wattle_ledger::address::Address;
use wattle_ledger::amount::Amount;
use wattle_ledger::exchange::AssetBag;
use wattle_ledger::keys::SecretKey;
use wattle_ledger::tx::{OutPoint, Output};

/// A spendable output known to the wallet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Coin {
    pub outpoint: OutPoint,
    pub output: Output,
    /// 0 while the creating transaction is in the mempool.
    pub confirmations: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WalletError {
    #[error("Insufficient funds")]
    InsufficientFunds,
    #[error("No unspent output found")]
    NoCoins,
    #[error("wallet file {path}: {reason}")]
    File { path: String, reason: String },
}

pub struct Wallet {
    keys: Vec<SecretKey>,
    path: PathBuf,
    locks_path: PathBuf,
    locked: BTreeSet<OutPoint>,
}

fn file_err(path: &Path, reason: impl ToString) -> WalletError {
    WalletError::File {
        path: path.display().to_string(),
        reason: reason.to_string(),
    }
}

impl Wallet {
    /// Opens `wallet.keys` (creating it with one fresh key if it does not exist).
    pub fn open_or_create(path: &Path) -> Result<Wallet, WalletError> {
        let locks_path = path.with_extension("locks");
        let keys = if path.exists() {
            let text = std::fs::read_to_string(path).map_err(|e| file_err(path, e))?;
            let mut keys = Vec::new();
            for (n, line) in text
                .lines()
                .map(str::trim)
                .enumerate()
                .filter(|(_, l)| !l.is_empty() && !l.starts_with('#'))
            {
                let bytes = hex::decode(line)
                    .map_err(|_| file_err(path, format!("line {}: not a hex key", n + 1)))?;
                let arr: [u8; 32] = bytes
                    .try_into()
                    .map_err(|_| file_err(path, format!("line {}: a key is 32 bytes", n + 1)))?;
                keys.push(SecretKey::from_bytes(&arr));
            }
            if keys.is_empty() {
                return Err(file_err(path, "no keys"));
            }
            keys
        } else {
            vec![Self::fresh_key()]
        };
        let mut locked = BTreeSet::new();
        if locks_path.exists() {
            let text =
                std::fs::read_to_string(&locks_path).map_err(|e| file_err(&locks_path, e))?;
            for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
                if let Some((txid, vout)) = line.split_once(':')
                    && let (Ok(txid), Ok(vout)) =
                        (wattle_ledger::Hash256::from_hex(txid), vout.parse())
                {
                    locked.insert(OutPoint { txid, vout });
                }
            }
        }
        let wallet = Wallet {
            keys,
            path: path.to_path_buf(),
            locks_path,
            locked,
        };
        wallet.save()?;
        Ok(wallet)
    }

    fn fresh_key() -> SecretKey {
        let mut bytes = [0u8; 32];
        rand::fill(&mut bytes);
        SecretKey::from_bytes(&bytes)
    }

    fn save(&self) -> Result<(), WalletError> {
        let text: String = self
            .keys
            .iter()
            .map(|k| format!("{}\n", hex::encode(k.to_bytes())))
            .collect();
        write_private(&self.path, text.as_bytes()).map_err(|e| file_err(&self.path, e))
    }

    fn save_locks(&self) -> Result<(), WalletError> {
        let text: String = self
            .locked
            .iter()
            .map(|o| format!("{}:{}\n", o.txid, o.vout))
            .collect();
        write_private(&self.locks_path, text.as_bytes()).map_err(|e| file_err(&self.locks_path, e))
    }

    /// The node's identity key (the first address).
    pub fn identity(&self) -> &SecretKey {
        &self.keys[0]
    }

    pub fn addresses(&self) -> Vec<Address> {
        self.keys.iter().map(SecretKey::address).collect()
    }

    pub fn key_for(&self, address: &Address) -> Option<&SecretKey> {
        self.keys.iter().find(|k| k.address() == *address)
    }

    pub fn is_mine(&self, address: &Address) -> bool {
        self.key_for(address).is_some()
    }

    pub fn new_address(&mut self) -> Result<Address, WalletError> {
        let key = Self::fresh_key();
        let address = key.address();
        self.keys.push(key);
        // A key that is not on disk must not be handed out: coins sent to it would be lost at
        // the next start (a full disk, for one).
        if let Err(e) = self.save() {
            self.keys.pop();
            return Err(e);
        }
        Ok(address)
    }

    pub fn is_locked(&self, outpoint: &OutPoint) -> bool {
        self.locked.contains(outpoint)
    }

    pub fn locked(&self) -> &BTreeSet<OutPoint> {
        &self.locked
    }

    pub fn lock(&mut self, outpoints: &[OutPoint]) -> Result<(), WalletError> {
        self.change_locks(|l| l.extend(outpoints.iter().copied()))
    }

    pub fn unlock(&mut self, outpoints: &[OutPoint]) -> Result<(), WalletError> {
        self.change_locks(|l| {
            for o in outpoints {
                l.remove(o);
            }
        })
    }

    pub fn unlock_all(&mut self) -> Result<(), WalletError> {
        self.change_locks(BTreeSet::clear)
    }

    /// Changes the locks in memory and on disk, or in neither (a failed write restores them).
    fn change_locks(&mut self, f: impl FnOnce(&mut BTreeSet<OutPoint>)) -> Result<(), WalletError> {
        let before = self.locked.clone();
        f(&mut self.locked);
        let saved = self.save_locks();
        if saved.is_err() {
            self.locked = before;
        }
        saved
    }

    /// Drops locks on coins that no longer exist (their spend confirmed).
    pub fn forget_spent(&mut self, exists: impl Fn(&OutPoint) -> bool) -> Result<(), WalletError> {
        let before = self.locked.len();
        self.locked.retain(|o| exists(o));
        if self.locked.len() != before {
            self.save_locks()
        } else {
            Ok(())
        }
    }
}

/// Picks coins from `coins` (already filtered to spendable, unlocked ones of the wanted
/// addresses, in preference order) covering `need`; at least one coin even when `need` is empty
/// (every transaction spends an input). Returns the picked coins and the change.
pub fn select_coins(coins: &[Coin], need: &AssetBag) -> Result<(Vec<Coin>, AssetBag), WalletError> {
    if coins.is_empty() {
        return Err(WalletError::NoCoins);
    }
    let mut have: AssetBag = BTreeMap::new();
    let mut picked: Vec<Coin> = Vec::new();
    let covered = |have: &AssetBag| {
        need.iter()
            .all(|(id, q)| have.get(id).copied().unwrap_or_default() >= *q)
    };
    // Prefer coins carrying the needed assets; a zero-value coin serves when nothing is needed.
    let mut order: Vec<&Coin> = coins.iter().collect();
    order.sort_by_key(|c| {
        (
            !c.output.assets.iter().any(|(id, _)| need.contains_key(id)),
            c.output.assets.len(),
            c.outpoint,
        )
    });
    for coin in order {
        if !picked.is_empty() && covered(&have) {
            break;
        }
        let useful = coin
            .output
            .assets
            .iter()
            .any(|(id, _)| need.contains_key(id));
        if !useful && !picked.is_empty() {
            continue;
        }
        for (id, q) in &coin.output.assets {
            let slot = have.entry(*id).or_insert(Amount::ZERO);
            *slot = slot
                .checked_add(*q)
                .map_err(|_| WalletError::InsufficientFunds)?;
        }
        picked.push(coin.clone());
    }
    if !covered(&have) {
        return Err(WalletError::InsufficientFunds);
    }
    for (id, q) in need {
        let slot = have.entry(*id).or_insert(Amount::ZERO);
        *slot = slot
            .checked_sub(*q)
            .map_err(|_| WalletError::InsufficientFunds)?;
    }
    have.retain(|_, q| !q.is_zero());
    Ok((picked, have))
}

#[cfg(test)]
mod tests {
    use super::*;
    use wattle_ledger::Hash256;

    fn coin(n: u8, assets: Vec<(u8, u64)>) -> Coin {
        let out = Output::new(
            Address([n; 20]),
            assets
                .into_iter()
                .map(|(a, q)| (Hash256([a; 32]), Amount::new(q).unwrap())),
        );
        Coin {
            outpoint: OutPoint {
                txid: Hash256([n; 32]),
                vout: 0,
            },
            output: out,
            confirmations: 1,
        }
    }

    #[test]
    fn selects_enough_and_returns_change() {
        let coins = vec![
            coin(1, vec![]),
            coin(2, vec![(7, 50)]),
            coin(3, vec![(7, 30), (8, 5)]),
        ];
        let need: AssetBag = [(Hash256([7; 32]), Amount::new(60).unwrap())].into();
        let (picked, change) = select_coins(&coins, &need).unwrap();
        assert_eq!(picked.len(), 2);
        assert_eq!(
            change.get(&Hash256([7; 32])),
            Some(&Amount::new(20).unwrap())
        );
        assert_eq!(
            change.get(&Hash256([8; 32])),
            Some(&Amount::new(5).unwrap())
        );
        let too_much: AssetBag = [(Hash256([7; 32]), Amount::new(81).unwrap())].into();
        assert_eq!(
            select_coins(&coins, &too_much),
            Err(WalletError::InsufficientFunds)
        );
        assert_eq!(select_coins(&[], &too_much), Err(WalletError::NoCoins));
        // Nothing needed: one coin, the zero-value one preferred.
        let (picked, change) = select_coins(&coins, &AssetBag::new()).unwrap();
        assert_eq!(picked.len(), 1);
        assert!(change.is_empty());
    }

    #[test]
    fn keys_and_locks_survive_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("wallet.keys");
        let mut w = Wallet::open_or_create(&path).unwrap();
        let first = w.addresses()[0];
        let second = w.new_address().unwrap();
        let op = OutPoint {
            txid: Hash256([9; 32]),
            vout: 3,
        };
        w.lock(&[op]).unwrap();
        let w2 = Wallet::open_or_create(&path).unwrap();
        assert_eq!(w2.addresses(), vec![first, second]);
        assert!(w2.is_locked(&op));
        std::fs::write(&path, "zz\n").unwrap();
        assert!(Wallet::open_or_create(&path).is_err());
    }

    #[test]
    fn a_key_or_lock_that_cannot_be_written_is_not_kept() {
        // Found on a full disk: getnewaddress failed, but the key stayed in memory and was
        // listed and used — coins sent to it would have been lost at the next start.
        let dir = tempfile::tempdir().unwrap();
        let sub = dir.path().join("chain");
        std::fs::create_dir(&sub).unwrap();
        let mut w = Wallet::open_or_create(&sub.join("wallet.keys")).unwrap();
        let op = OutPoint {
            txid: Hash256([9; 32]),
            vout: 3,
        };
        w.lock(&[op]).unwrap();
        let addresses = w.addresses();
        // No directory to write into: every write fails.
        std::fs::remove_dir_all(&sub).unwrap();
        assert!(w.new_address().is_err());
        assert_eq!(w.addresses(), addresses);
        let other = OutPoint { vout: 4, ..op };
        assert!(w.lock(&[other]).is_err());
        assert!(w.unlock(&[op]).is_err());
        assert!(w.unlock_all().is_err());
        assert_eq!(w.locked().iter().copied().collect::<Vec<_>>(), vec![op]);
    }
}
