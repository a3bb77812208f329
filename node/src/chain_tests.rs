//! The chain actor's sync path on a real store: a batch of fetched blocks is judged in order
//! while a verifier thread checks the signatures of the blocks ahead (`NodeState::on_blocks`).

use super::*;
use wattle_ledger::amount::Amount;
use wattle_ledger::sighash;
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

#[test]
fn a_sync_batch_is_judged_in_order_with_signatures_checked_ahead() {
    let dir = tempfile::tempdir().unwrap();
    let (mut t, b1) = chain_with_coin(1_000_000);
    let admin = t.admin.clone();
    let coin = t.asset_id("coin");
    // 230 coins of 10 to spend one by one.
    let fan_out = t.build(
        &admin,
        vec![],
        (0..230)
            .map(|_| (admin.address(), coin, Amount::new(10).unwrap()))
            .collect(),
        vec![],
    );
    let fan_id = fan_out.txid();
    let b2 = t.block(vec![fan_out]);
    t.commit(&b2).unwrap();
    let outs: Vec<OutPoint> = (0..230)
        .map(|vout| OutPoint { txid: fan_id, vout })
        .collect();
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
    state.on_blocks(peer, batch);

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
    state.on_blocks(peer, vec![b1.encode(), cut, b2.encode()]);
    let tip = state.store.tip().unwrap().unwrap();
    assert_eq!(tip.height, b1.header.height);
}
