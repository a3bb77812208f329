//! The chain actor's sync path on a real store: a batch of fetched blocks is queued
//! (`NodeState::on_blocks`) and judged in order, a slice at a time (`NodeState::judge_fetched`),
//! while a verifier thread checks the signatures of the blocks ahead.

use super::*;
use wattle_ledger::amount::Amount;
use wattle_ledger::sighash;
use wattle_ledger::state::StateKey;
use wattle_ledger::testkit::{TestChain, unsigned_input};
use wattle_ledger::tx::{Output, TX_VERSION};

/// A node with an empty pool over a fresh store holding `t`'s genesis, and one permitted peer.
fn node(t: &TestChain, dir: &std::path::Path) -> (NodeState, PeerId) {
    let store = Arc::new(Store::open(&dir.join("store")).unwrap());
    let (_, changes) = wattle_ledger::apply_genesis(&t.chain.params, &t.genesis).unwrap();
    store.init_genesis(&t.genesis, &changes).unwrap();
    let wallet = Wallet::open_or_create(&dir.join("wallet")).unwrap();
    let recent = store.recent(1001).unwrap();
    let engine = Engine::new(
        t.chain.clone(),
        wattle_consensus::Config::new(None),
        recent,
        now_ms(),
    );
    let info = NodeInfo {
        port: 0,
        rpc_port: 0,
        external_ip: "127.0.0.1".into(),
        params_toml: String::new(),
    };
    let mut state = NodeState::new(t.chain.clone(), store, engine, wallet, info, 50_000);
    let peer = PeerId::random();
    state.peers.insert(
        peer,
        PeerState {
            handle: 1,
            address: t.admin.address(),
            inbound: false,
            permitted: true,
            since: Instant::now(),
            tip_height: None,
        },
    );
    (state, peer)
}

/// One-input, one-output transfers of the admin's coins `outs` back to the admin.
fn spends(t: &TestChain, outs: &[OutPoint], asset: wattle_ledger::tx::AssetId) -> Vec<Transaction> {
    outs.iter()
        .map(|op| {
            let mut tx = Transaction {
                version: TX_VERSION,
                inputs: vec![unsigned_input(*op)],
                outputs: vec![Output::new(
                    t.admin.address(),
                    [(asset, Amount::new(10).unwrap())],
                )],
                ops: vec![],
            };
            sighash::sign_all(&mut tx, &[&t.admin], &t.chain.id);
            tx
        })
        .collect()
}

/// A test chain whose first block issues `qty` units of "coin" to the admin (committed).
fn chain_with_coin(qty: u64) -> (TestChain, Block) {
    let mut t = TestChain::new();
    let admin = t.admin.clone();
    let b1 = t.block(vec![t.issue(
        &admin,
        admin.address(),
        "coin",
        true,
        1,
        qty,
        &[],
    )]);
    t.commit(&b1).unwrap();
    (t, b1)
}

/// Commits a block with one transaction paying the admin `n` coins of 10 "coin"; returns the
/// block and the coins.
fn fan_out(t: &mut TestChain, n: u32) -> (Block, Vec<OutPoint>) {
    let admin = t.admin.clone();
    let coin = t.asset_id("coin");
    let tx = t.build(
        &admin,
        vec![],
        (0..n)
            .map(|_| (admin.address(), coin, Amount::new(10).unwrap()))
            .collect(),
        vec![],
    );
    let txid = tx.txid();
    let block = t.block(vec![tx]);
    t.commit(&block).unwrap();
    (block, (0..n).map(|vout| OutPoint { txid, vout }).collect())
}

#[test]
fn a_sync_batch_is_judged_in_order_with_signatures_checked_ahead() {
    let dir = tempfile::tempdir().unwrap();
    let (mut t, b1) = chain_with_coin(1_000_000);
    let coin = t.asset_id("coin");
    // 230 coins of 10 to spend one by one.
    let (b2, outs) = fan_out(&mut t, 230);
    let good = spends(&t, &outs[..150], coin);
    let good_ids: Vec<Txid> = good.iter().map(Transaction::txid).collect();
    let b3 = t.block(good);
    t.commit(&b3).unwrap();
    // The next block is valid but for one signature, deep inside it.
    let mut bad = spends(&t, &outs[150..], coin);
    bad[40].inputs[0].signature.0[10] ^= 1;
    let bad_id = bad[40].txid();
    let b4 = t.block(bad);

    let (mut state, peer) = node(&t, dir.path());
    let batch: Vec<Vec<u8>> = [&b1, &b2, &b3, &b4].iter().map(|b| b.encode()).collect();
    fetch(&mut state, peer, batch);

    let tip = state.store.tip().unwrap().unwrap();
    assert_eq!(
        tip.height, b3.header.height,
        "the batch stops before the bad block"
    );
    assert_eq!(tip.id, b3.header.id(&t.chain.id));
    assert!(state.fatal.is_none());
    // Every committed coin is there, the bad block's spends are not.
    let view = &*state.store;
    for op in &outs[..150] {
        assert_eq!(
            read::utxo(view, op).unwrap(),
            None,
            "spent by the third block"
        );
    }
    for op in &outs[150..] {
        assert!(
            read::utxo(view, op).unwrap().is_some(),
            "the fourth block was refused"
        );
    }
    // With several cores the signatures were checked ahead of the judgement (the cache holds
    // them); the bad one never entered it.
    if verify_threads() >= 2 {
        assert!(
            good_ids
                .iter()
                .all(|id| state.mempool.verified.contains(id))
        );
    }
    assert!(!state.mempool.verified.contains(&bad_id));
}

#[test]
fn an_undecodable_block_ends_the_batch_and_the_blocks_before_it_are_kept() {
    let dir = tempfile::tempdir().unwrap();
    let (mut t, b1) = chain_with_coin(1_000);
    let b2 = t.block(vec![]);
    t.commit(&b2).unwrap();
    let (mut state, peer) = node(&t, dir.path());
    let mut cut = b2.encode();
    cut.pop();
    fetch(&mut state, peer, vec![b1.encode(), cut, b2.encode()]);
    let tip = state.store.tip().unwrap().unwrap();
    assert_eq!(tip.height, b1.header.height);
}

#[test]
fn a_fetched_batch_leaves_the_state_index_and_undo_data_of_its_blocks() {
    let dir = tempfile::tempdir().unwrap();
    let (mut t, b1) = chain_with_coin(1_000_000);
    let coin = t.asset_id("coin");
    let (b2, outs) = fan_out(&mut t, 100);
    let after_b2 = t.state.clone();
    // Block 3 spends 70 of block 2's outputs: created and spent within the batch.
    let b3 = t.block(spends(&t, &outs[..70], coin));
    t.commit(&b3).unwrap();
    let blocks = [&b1, &b2, &b3];

    let (mut state, peer) = node(&t, dir.path());
    fetch(
        &mut state,
        peer,
        blocks.iter().map(|b| b.encode()).collect(),
    );
    assert!(state.fatal.is_none());
    let store = state.store.clone();
    assert_eq!(store.tip().unwrap().unwrap().id, b3.header.id(&t.chain.id));
    assert_eq!(state.engine.tip().1, b3.header.id(&t.chain.id));
    // The stored state is exactly the ledger's after the three blocks.
    let stored: BTreeMap<StateKey, StateValue> =
        store.scan_prefix(&[]).unwrap().into_iter().collect();
    assert_eq!(stored, t.state.map);
    // Every block and transaction is indexed.
    for b in blocks {
        let height = b.header.height;
        assert_eq!(store.block_at_height(height).unwrap().as_ref(), Some(b));
        for (i, tx) in b.txs.iter().enumerate() {
            assert_eq!(
                store.tx_location(&tx.txid()).unwrap(),
                Some((height, i as u32))
            );
        }
    }
    // Each block has its own undo data: rolling block 3 back gives the state after block 2.
    let recent = store.recent(1).unwrap();
    assert_eq!(recent.len(), 1);
    store.adopt(&recent, &[]).unwrap();
    let stored: BTreeMap<StateKey, StateValue> =
        store.scan_prefix(&[]).unwrap().into_iter().collect();
    assert_eq!(stored, after_b2.map);
}

/// A fetched answer from `peer`, judged to the end.
fn fetch(state: &mut NodeState, peer: PeerId, blocks: Vec<Vec<u8>>) {
    state.on_blocks(peer, blocks);
    while state.has_fetched() {
        state.judge_fetched(Duration::MAX);
    }
}

/// A chain of `n` empty blocks on the test genesis, and its blocks.
fn empty_blocks(n: usize) -> (TestChain, Vec<Block>) {
    let mut t = TestChain::new();
    let mut blocks = Vec::new();
    for _ in 0..n {
        let b = t.block(vec![]);
        t.commit(&b).unwrap();
        blocks.push(b);
    }
    (t, blocks)
}

/// The blocks fetched requests asked for since the outbox was last emptied.
fn block_requests(state: &mut NodeState) -> Vec<(u32, u32)> {
    std::mem::take(&mut state.outbox)
        .into_iter()
        .filter_map(|a| match a {
            Action::RequestBlocks(_, from, count) => Some((from, count)),
            _ => None,
        })
        .collect()
}

#[test]
fn a_peer_behind_us_on_our_chain_is_not_asked_for_blocks() {
    // More blocks than the engine keeps in memory (its reorg depth, 1,000).
    let dir = tempfile::tempdir().unwrap();
    let (t, blocks) = empty_blocks(1_010);
    let (mut state, peer) = node(&t, dir.path());
    state.peer_by_handle.insert(1, peer);
    for chunk in blocks.chunks(500) {
        fetch(&mut state, peer, chunk.iter().map(Block::encode).collect());
    }
    assert_eq!(state.height(), 1_010);
    block_requests(&mut state);
    // A peer that is at our block 3 (say, still syncing from us): nothing to fetch from it.
    let id3 = blocks[2].header.id(&t.chain.id);
    state.on_status(peer, 3, id3);
    assert_eq!(block_requests(&mut state), vec![]);
    // A peer at height 3 on another branch is asked (from 32 blocks below, at most).
    state.on_status(peer, 3, wattle_ledger::Hash256([9; 32]));
    assert_eq!(block_requests(&mut state), vec![(1, 3)]);
}

#[test]
fn a_fetched_answer_is_judged_a_slice_at_a_time_while_the_next_one_travels() {
    let dir = tempfile::tempdir().unwrap();
    let (t, blocks) = empty_blocks(41);
    let (mut state, peer) = node(&t, dir.path());
    state.peer_by_handle.insert(1, peer);
    let tip40 = blocks[39].header.id(&t.chain.id);
    state.on_status(peer, 40, tip40);
    assert_eq!(block_requests(&mut state), vec![(1, 40)]);
    let answer = |range: std::ops::Range<usize>| -> Vec<Vec<u8>> {
        blocks[range].iter().map(Block::encode).collect()
    };

    // The answer (cut at 20 blocks, as a size limit would) is queued, not judged on arrival,
    // and the blocks after it are asked for at once, to travel while it is judged.
    state.on_blocks(peer, answer(0..20));
    assert!(state.has_fetched());
    assert_eq!(state.height(), 0);
    assert_eq!(block_requests(&mut state), vec![(21, 20)]);
    // A slice that has used up its time still judges one block.
    state.judge_fetched(Duration::ZERO);
    assert_eq!(state.height(), 1);
    assert_eq!(state.store.tip().unwrap().unwrap().height, 1);

    // Between slices, neither the peer's tip again nor its next block (gossiped: an orphan to
    // us) asks for blocks: they are here or on their way.
    state.on_status(peer, 40, tip40);
    state.step(Input::Block {
        block: Arc::new(blocks[40].clone()),
        from: Some(1),
        now: now_ms(),
    });
    let id41 = blocks[40].header.id(&t.chain.id);
    state.on_status(peer, 41, id41);
    assert_eq!(block_requests(&mut state), vec![]);

    // The second answer arrives while the first is judged: queued behind it, nothing asked.
    state.on_blocks(peer, answer(20..40));
    assert_eq!(block_requests(&mut state), vec![]);
    let mut slices = 1;
    while state.height() < 20 {
        state.judge_fetched(Duration::ZERO);
        slices += 1;
    }
    assert_eq!(slices, 20);
    // The first answer judged, the one after the second is asked for.
    assert_eq!(block_requests(&mut state), vec![(41, 1)]);
    while state.has_fetched() {
        state.judge_fetched(Duration::ZERO);
        slices += 1;
    }
    assert_eq!(slices, 40);
    // The held gossiped block joined the chain as soon as its parent came.
    assert_eq!(state.height(), 41);
    // Its answer brings a block we have by now: nothing changes, nothing more is asked.
    state.on_blocks(peer, answer(40..41));
    state.judge_fetched(Duration::MAX);
    assert_eq!(state.height(), 41);
    assert!(!state.has_fetched());
    assert_eq!(block_requests(&mut state), vec![]);
}
