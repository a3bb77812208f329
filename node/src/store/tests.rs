//! Store tests with fixed scenarios: block-file damage, atomicity of `adopt`, the API's
//! bookkeeping. The model test against `MemoryView` is in `model_tests`.

use super::blockfile::{self, file_name};
use super::*;
use std::collections::BTreeMap;
use std::fs::{self, OpenOptions};
use std::io::Write;
use wattle_ledger::permissions::{GlobalPerm, Permission};
use wattle_ledger::state::Change;
use wattle_ledger::testkit::{TestChain, key};
use wattle_ledger::tx::Transaction;

/// A block's id as the store computes it.
pub(super) fn id_of(t: &TestChain, block: &Block) -> BlockId {
    if block.header.height == 0 {
        block.header.id(&Hash256::ZERO)
    } else {
        block.header.id(&t.chain.id)
    }
}

pub(super) fn branch(block: Block, changes: Changeset, weight: u64) -> BranchBlock {
    BranchBlock {
        block: Arc::new(block),
        changes,
        weight,
    }
}

/// A store holding `t`'s genesis.
pub(super) fn init(dir: &Path, t: &TestChain, limit: u64) -> Store {
    let store = Store::open_with_file_limit(dir, limit).unwrap();
    let (_, changes) = wattle_ledger::apply_genesis(&t.chain.params, &t.genesis).unwrap();
    store.init_genesis(&t.genesis, &changes).unwrap();
    store
}

/// Builds, commits to `t` and adopts into `store` a block with `txs`.
pub(super) fn extend(store: &Store, t: &mut TestChain, txs: Vec<Transaction>) -> BranchBlock {
    let block = t.block(txs);
    let changes = t.commit(&block).unwrap();
    let b = branch(block, changes, 2);
    store.adopt(&[], std::slice::from_ref(&b)).unwrap();
    b
}

/// A chain of genesis + 3 blocks (a grant, an issue, a transfer) in `dir`.
fn three_blocks(dir: &Path, limit: u64) -> (Store, TestChain, Vec<BranchBlock>) {
    let mut t = TestChain::new();
    let store = init(dir, &t, limit);
    let admin = t.admin.clone();
    let user = key(1);
    let perms = [GlobalPerm::Send, GlobalPerm::Receive].map(Permission::Global);
    let grant = t.grant(&admin, user.address(), &perms);
    let b1 = extend(&store, &mut t, vec![grant]);
    let issue = t.issue(&admin, admin.address(), "energy", true, 1000, 5000, &[]);
    let b2 = extend(&store, &mut t, vec![issue]);
    let energy = t.asset_id("energy");
    let transfer = t.transfer(&admin, user.address(), energy, 1200);
    let b3 = extend(&store, &mut t, vec![transfer]);
    (store, t, vec![b1, b2, b3])
}

fn state_of(store: &Store) -> BTreeMap<StateKey, StateValue> {
    store.scan_prefix(&[]).unwrap().into_iter().collect()
}

fn last_file(dir: &Path) -> std::path::PathBuf {
    let mut files: Vec<_> = fs::read_dir(dir.join("blocks"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    files.pop().unwrap()
}

#[test]
fn genesis_is_stored_once() {
    let dir = tempfile::tempdir().unwrap();
    let t = TestChain::new();
    let store = Store::open(dir.path()).unwrap();
    assert!(!store.is_initialized());
    assert_eq!(store.tip().unwrap(), None);
    assert!(matches!(
        store.adopt(&[], &[branch(t.genesis.clone(), Changeset::default(), 1)]),
        Err(StoreError::NotInitialized)
    ));
    let (_, changes) = wattle_ledger::apply_genesis(&t.chain.params, &t.genesis).unwrap();
    store.init_genesis(&t.genesis, &changes).unwrap();
    assert!(store.is_initialized());
    assert_eq!(store.chain_id(), Some(t.chain.id));
    assert_eq!(store.tip().unwrap(), Some(t.tip()));
    assert!(matches!(
        store.init_genesis(&t.genesis, &changes),
        Err(StoreError::AlreadyInitialized)
    ));
    drop(store);
    let store = Store::open(dir.path()).unwrap();
    assert!(matches!(
        store.init_genesis(&t.genesis, &changes),
        Err(StoreError::AlreadyInitialized)
    ));
    assert_eq!(state_of(&store), t.state.map);
    assert_eq!(store.block_at_height(0).unwrap(), Some(t.genesis.clone()));
    assert_eq!(store.main_id_at(0).unwrap(), Some(t.chain.id));
    let gtx = t.genesis.txs[0].txid();
    assert_eq!(store.tx_location(&gtx).unwrap(), Some((0, 0)));
    let recent = store.recent(5).unwrap();
    assert_eq!(recent.len(), 1);
    assert!(recent[0].changes.is_empty());
    assert_eq!(*recent[0].block, t.genesis);
}

#[test]
fn kind_constants_match_the_key_encoding() {
    let t = TestChain::new();
    let admin = t.admin.address();
    let id = t.chain.id;
    let op = wattle_ledger::tx::OutPoint { txid: id, vout: 0 };
    let cases = [
        (StateKey::Tip, kind::TIP),
        (StateKey::Utxo(op), kind::UTXO),
        (StateKey::Asset(id), kind::ASSET),
        (StateKey::AssetName("x".into()), kind::ASSET_NAME),
        (StateKey::AssetIssue(id, 0), kind::ASSET_ISSUE),
        (
            StateKey::Perm(admin, Permission::Global(GlobalPerm::Send)),
            kind::PERM,
        ),
        (StateKey::Votes(admin, GlobalPerm::Admin), kind::VOTES),
        (StateKey::Holders(GlobalPerm::Admin), kind::HOLDERS),
        (StateKey::LastSigned(admin), kind::LAST_SIGNED),
    ];
    for (key, kind) in cases {
        assert_eq!(key.encode()[0], kind, "{key:?}");
    }
}

#[test]
fn scan_lists_one_kind() {
    let dir = tempfile::tempdir().unwrap();
    let (store, t, _) = three_blocks(dir.path(), MAX_FILE_BYTES);
    let utxos = store.scan(kind::UTXO).unwrap();
    let expected: Vec<_> = t
        .state
        .map
        .iter()
        .filter(|(k, _)| matches!(k, StateKey::Utxo(_)))
        .collect();
    assert_eq!(utxos.len(), expected.len());
    assert!(utxos.iter().all(|(k, v)| t.state.map.get(k) == Some(v)));
    let perms = store.scan(kind::PERM).unwrap();
    assert!(perms.iter().all(|(k, _)| matches!(k, StateKey::Perm(..))));
    // The admin's 8, the user's send and receive, and the issuer's energy.issue and energy.admin.
    assert_eq!(perms.len(), 8 + 2 + 2);
}

#[test]
fn meta_values_persist_and_reserved_names_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let t = TestChain::new();
    let store = init(dir.path(), &t, MAX_FILE_BYTES);
    store.meta_put(meta::LAST_SIGNED, b"\x05abc").unwrap();
    assert!(matches!(
        store.meta_put(meta::GENESIS, b"x"),
        Err(StoreError::ReservedMeta(_))
    ));
    drop(store);
    let store = Store::open(dir.path()).unwrap();
    assert_eq!(
        store.meta_get(meta::LAST_SIGNED).unwrap().as_deref(),
        Some(&b"\x05abc"[..])
    );
    assert_eq!(store.meta_get("nothing").unwrap(), None);
    assert_eq!(
        store.meta_get(meta::GENESIS).unwrap().as_deref(),
        Some(&t.chain.id.0[..])
    );
}

#[test]
fn adopt_checks_everything_before_writing() {
    let dir = tempfile::tempdir().unwrap();
    let (store, mut t, blocks) = three_blocks(dir.path(), MAX_FILE_BYTES);
    let before = state_of(&store);
    let tip = store.tip().unwrap();
    let file_len = fs::metadata(last_file(dir.path())).unwrap().len();
    let unchanged = |store: &Store| {
        assert_eq!(state_of(store), before);
        assert_eq!(store.tip().unwrap(), tip);
        assert_eq!(fs::metadata(last_file(dir.path())).unwrap().len(), file_len);
    };

    // A changeset built on other state.
    let block = t.block(vec![]);
    let good = t.commit(&block).unwrap();
    let mut changes = good.clone();
    let last_signed = StateKey::LastSigned(t.admin.address());
    changes.changes.get_mut(&last_signed).unwrap().old = Some(StateValue::LastSigned(999));
    let bad = branch(block.clone(), changes, 2);
    assert!(matches!(
        store.adopt(&[], std::slice::from_ref(&bad)),
        Err(StoreError::StateMismatch { .. })
    ));
    unchanged(&store);
    assert_eq!(store.block_by_id(&id_of(&t, &block)).unwrap(), None);

    // A rollback that does not start at the tip.
    assert!(matches!(
        store.adopt(&blocks[..1], &[]),
        Err(StoreError::BadBranch(_))
    ));
    // An apply block that does not build on the tip.
    assert!(matches!(
        store.adopt(&[], &blocks[2..]),
        Err(StoreError::BadBranch(_))
    ));
    // Changes that leave the state's tip behind.
    let mut no_tip = good.clone();
    no_tip.changes.remove(&StateKey::Tip);
    let r = store.adopt(&[], &[branch(block.clone(), no_tip, 2)]);
    assert!(matches!(r, Err(StoreError::BadBranch(_))), "{r:?}");
    unchanged(&store);
    assert!(!store.failed.load(Ordering::SeqCst));
}

#[test]
fn tip_state_and_indexes_move_together() {
    let dir = tempfile::tempdir().unwrap();
    let (store, mut t, blocks) = three_blocks(dir.path(), MAX_FILE_BYTES);
    // Roll back two blocks and apply an alternative in one write.
    let rollback: Vec<_> = blocks[1..].iter().rev().cloned().collect();
    for b in &rollback {
        t.state.apply(&b.changes.inverse()).unwrap();
    }
    let alt = t.block(vec![]);
    let alt_changes = t.commit(&alt).unwrap();
    let alt_b = branch(alt.clone(), alt_changes, 1);
    store
        .adopt(&rollback, std::slice::from_ref(&alt_b))
        .unwrap();
    assert_eq!(store.tip().unwrap(), Some(t.tip()));
    assert_eq!(state_of(&store), t.state.map);
    assert_eq!(store.main_id_at(2).unwrap(), Some(id_of(&t, &alt)));
    assert_eq!(store.main_id_at(3).unwrap(), None);
    let moved = blocks[2].block.txs[0].txid();
    assert_eq!(store.tx_location(&moved).unwrap(), None);
    let kept = blocks[0].block.txs[0].txid();
    assert_eq!(store.tx_location(&kept).unwrap(), Some((1, 0)));
    // Rolled-back blocks stay readable by id.
    let old3 = id_of(&t, &blocks[2].block);
    assert_eq!(
        store.block_by_id(&old3).unwrap(),
        Some((3, (*blocks[2].block).clone()))
    );
    let recent = store.recent(2).unwrap();
    assert_eq!(recent.len(), 2);
    assert_eq!(*recent[1].block, alt);
    assert_eq!(recent[1].weight, 1);
    assert_eq!(recent[0].changes, blocks[0].changes);
}

#[test]
fn an_uncommitted_torn_record_is_cut_off() {
    let dir = tempfile::tempdir().unwrap();
    let (store, mut t, blocks) = three_blocks(dir.path(), MAX_FILE_BYTES);
    let state = state_of(&store);
    drop(store);
    // A crash while appending block 4: part of its record reached the disk, sled never did.
    let next = t.block(vec![]);
    let payload = codec_encode(&next);
    let mut record = blockfile::MAGIC.to_vec();
    record.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    record.extend_from_slice(&blockfile::checksum(&payload));
    record.extend_from_slice(&payload[..payload.len() / 2]);
    let path = last_file(dir.path());
    let committed_len = fs::metadata(&path).unwrap().len();
    OpenOptions::new()
        .append(true)
        .open(&path)
        .unwrap()
        .write_all(&record)
        .unwrap();

    let store = Store::open(dir.path()).unwrap();
    assert_eq!(fs::metadata(&path).unwrap().len(), committed_len);
    assert_eq!(state_of(&store), state);
    assert_eq!(store.tip().unwrap(), Some(t.tip()));
    for (h, b) in blocks.iter().enumerate() {
        assert_eq!(
            store.block_at_height(h as u32 + 1).unwrap().as_ref(),
            Some(&*b.block)
        );
    }
    // The chain goes on, and reopens cleanly.
    extend(&store, &mut t, vec![]);
    drop(store);
    let store = Store::open(dir.path()).unwrap();
    assert_eq!(store.tip().unwrap(), Some(t.tip()));
    assert!(store.block_at_height(4).unwrap().is_some());
}

fn codec_encode(block: &Block) -> Vec<u8> {
    wattle_ledger::codec::encode(block)
}

#[test]
fn a_torn_committed_tail_rolls_the_store_back() {
    let dir = tempfile::tempdir().unwrap();
    let (store, mut t, blocks) = three_blocks(dir.path(), MAX_FILE_BYTES);
    drop(store);
    // The disk lost the end of the last record although sled committed it.
    let path = last_file(dir.path());
    let len = fs::metadata(&path).unwrap().len();
    OpenOptions::new()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len(len - 10)
        .unwrap();

    let store = Store::open(dir.path()).unwrap();
    t.state.apply(&blocks[2].changes.inverse()).unwrap();
    assert_eq!(store.tip().unwrap(), Some(t.tip()));
    assert_eq!(store.tip().unwrap().map(|t| t.height), Some(2));
    assert_eq!(state_of(&store), t.state.map);
    assert_eq!(store.block_at_height(0).unwrap(), Some(t.genesis.clone()));
    assert_eq!(
        store.block_at_height(1).unwrap().as_ref(),
        Some(&*blocks[0].block)
    );
    assert_eq!(
        store.block_at_height(2).unwrap().as_ref(),
        Some(&*blocks[1].block)
    );
    assert_eq!(store.block_at_height(3).unwrap(), None);
    assert_eq!(
        store.block_by_id(&id_of(&t, &blocks[2].block)).unwrap(),
        None
    );
    assert_eq!(
        store.tx_location(&blocks[2].block.txs[0].txid()).unwrap(),
        None
    );
    // The lost block can be adopted again (fetched from a peer) and the chain goes on.
    t.state.apply(&blocks[2].changes).unwrap();
    store.adopt(&[], &blocks[2..]).unwrap();
    extend(&store, &mut t, vec![]);
    drop(store);
    let store = Store::open(dir.path()).unwrap();
    assert_eq!(store.tip().unwrap(), Some(t.tip()));
    assert_eq!(state_of(&store), t.state.map);
}

#[test]
fn a_corrupt_record_in_the_middle_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let (store, t, blocks) = three_blocks(dir.path(), MAX_FILE_BYTES);
    let entry = store
        .block_entry(&id_of(&t, &blocks[0].block))
        .unwrap()
        .unwrap();
    drop(store);
    let path = last_file(dir.path());
    let mut bytes = fs::read(&path).unwrap();
    let at = entry.offset as usize + 30;
    bytes[at..at + 16].copy_from_slice(b"garbage garbage!");
    fs::write(&path, &bytes).unwrap();
    let err = Store::open(dir.path())
        .err()
        .expect("corruption is an error");
    assert!(
        matches!(&err, StoreError::CorruptRecord { offset, .. } if *offset == entry.offset),
        "{err}"
    );
    assert!(err.to_string().contains("corrupt block record"), "{err}");
    assert!(err.to_string().contains(&file_name(entry.file)), "{err}");
}

#[test]
fn a_garbage_block_file_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _, _) = three_blocks(dir.path(), MAX_FILE_BYTES);
    drop(store);
    let path = last_file(dir.path());
    let len = fs::metadata(&path).unwrap().len() as usize;
    let garbage: Vec<u8> = (0..len).map(|i| (i * 7 + 3) as u8).collect();
    fs::write(&path, garbage).unwrap();
    let err = Store::open(dir.path()).err().expect("garbage is an error");
    assert!(
        matches!(err, StoreError::CorruptRecord { offset: 0, .. }),
        "{err}"
    );
}

#[test]
fn corruption_in_an_older_file_shows_when_read() {
    let dir = tempfile::tempdir().unwrap();
    // A limit small enough that every block gets its own file.
    let (store, t, blocks) = three_blocks(dir.path(), 64);
    let id = id_of(&t, &blocks[0].block);
    let entry = store.block_entry(&id).unwrap().unwrap();
    assert!(
        entry.file
            < store
                .block_entry(&id_of(&t, &blocks[2].block))
                .unwrap()
                .unwrap()
                .file
    );
    drop(store);
    let path = dir.path().join("blocks").join(file_name(entry.file));
    let mut bytes = fs::read(&path).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0x55;
    fs::write(&path, &bytes).unwrap();
    let store = Store::open_with_file_limit(dir.path(), 64).unwrap();
    assert!(matches!(
        store.block_by_id(&id),
        Err(StoreError::CorruptRecord { .. })
    ));
    assert!(store.recent(10).is_err());
    // Other blocks are fine.
    assert!(store.block_at_height(2).unwrap().is_some());
}

#[test]
fn state_reads_through_the_ledger_view() {
    let dir = tempfile::tempdir().unwrap();
    let (store, t, _) = three_blocks(dir.path(), MAX_FILE_BYTES);
    let energy = t.asset_id("energy");
    let view: &dyn LedgerView = &store;
    assert_eq!(
        wattle_ledger::state::read::asset_by_name(view, "ENERGY").unwrap(),
        Some(energy)
    );
    // An undecodable value is an error, not a panic.
    store
        .db
        .insert(
            index::state_key(&StateKey::Asset(energy)),
            &[0xff, 0xff][..],
        )
        .unwrap();
    // The write went around the store: its cache still knows the good value, as it would not
    // after a reopen of the damaged database.
    assert!(view.get(&StateKey::Asset(energy)).unwrap().is_some());
    store.cache.clear();
    assert!(view.get(&StateKey::Asset(energy)).is_err());
    assert!(store.scan(kind::ASSET).is_err());
    // And a changeset whose old value is that garbage cannot match it.
    let change = Change {
        old: None,
        new: None,
    };
    let mut cs = Changeset::default();
    cs.changes.insert(StateKey::Asset(energy), change);
    assert!(store.adopt(&[], &[branch(t.block(vec![]), cs, 1)]).is_err());
}

#[test]
fn a_lost_last_block_file_rolls_the_store_back() {
    let dir = tempfile::tempdir().unwrap();
    // Every block in its own file.
    let (store, mut t, blocks) = three_blocks(dir.path(), 64);
    drop(store);
    fs::remove_file(last_file(dir.path())).unwrap();
    let store = Store::open_with_file_limit(dir.path(), 64).unwrap();
    t.state.apply(&blocks[2].changes.inverse()).unwrap();
    assert_eq!(store.tip().unwrap(), Some(t.tip()));
    assert_eq!(state_of(&store), t.state.map);
    assert_eq!(
        store.block_at_height(2).unwrap().as_ref(),
        Some(&*blocks[1].block)
    );
    t.state.apply(&blocks[2].changes).unwrap();
    store.adopt(&[], &blocks[2..]).unwrap();
    assert_eq!(
        store.block_at_height(3).unwrap().as_ref(),
        Some(&*blocks[2].block)
    );
}

#[test]
fn the_store_can_be_shared_between_threads() {
    fn shareable<T: Send + Sync>() {}
    shareable::<Store>();
}

#[test]
fn meta_values_can_ride_in_the_branch_switch() {
    let dir = tempfile::tempdir().unwrap();
    let mut t = TestChain::new();
    let store = init(dir.path(), &t, MAX_FILE_BYTES);
    let block = t.block(vec![]);
    let changes = t.commit(&block).unwrap();
    let b = branch(block, changes, 2);
    let signed = 1u32.to_le_bytes();
    assert!(matches!(
        store.adopt_with_meta(
            &[],
            std::slice::from_ref(&b),
            &[(meta::BLOCKS_END, &signed)]
        ),
        Err(StoreError::ReservedMeta(_))
    ));
    assert_eq!(store.tip().unwrap().map(|t| t.height), Some(0));
    store
        .adopt_with_meta(
            &[],
            std::slice::from_ref(&b),
            &[(meta::LAST_SIGNED, &signed)],
        )
        .unwrap();
    drop(store);
    let store = Store::open(dir.path()).unwrap();
    assert_eq!(store.tip().unwrap(), Some(t.tip()));
    assert_eq!(
        store.meta_get(meta::LAST_SIGNED).unwrap().as_deref(),
        Some(&signed[..])
    );
}

#[test]
fn the_address_index_is_rebuilt_on_open_and_the_old_disk_index_removed() {
    let dir = tempfile::tempdir().unwrap();
    let (store, t, _) = three_blocks(dir.path(), MAX_FILE_BYTES);
    let admin = t.admin.address();
    let before = store.utxos_of(&admin).unwrap();
    assert!(
        !before.is_empty(),
        "the admin holds coins after three blocks"
    );
    // An entry of the on-disk index earlier versions kept.
    let mut stale = vec![index::OLD_ADDRESS_UTXO];
    stale.extend_from_slice(&admin.0);
    store.db.insert(&stale, &[][..]).unwrap();
    store.db.flush().unwrap();
    drop(store);
    let store = Store::open(dir.path()).unwrap();
    assert_eq!(
        store.utxos_of(&admin).unwrap(),
        before,
        "rebuilt from the UTXO state"
    );
    assert!(
        store
            .db
            .scan_prefix([index::OLD_ADDRESS_UTXO])
            .next()
            .is_none(),
        "the old on-disk index is gone"
    );
}

#[test]
fn a_store_in_use_is_reported_and_reopens_once_released() {
    let dir = tempfile::tempdir().unwrap();
    let first = Store::open(dir.path()).unwrap();
    // The lock wait is short here: the point is the error, not the wait.
    let err = super::open_sled(
        &dir.path().join("sled"),
        std::time::Duration::from_millis(50),
    )
    .expect_err("a held store cannot be opened twice");
    assert!(matches!(err, StoreError::InUse(_)), "{err}");
    assert!(
        err.to_string().contains("in use by another process"),
        "{err}"
    );
    // Dropped, then reopened at once, over and over: sled's threads may hold the lock for a
    // moment after the drop, and open waits for them rather than fail.
    drop(first);
    for _ in 0..20 {
        let store = Store::open(dir.path()).unwrap();
        drop(store);
    }
}
