//! Seeded simulations of whole networks of miners (DESIGN §4.10).

use std::sync::Arc;
use wattle_consensus::sim::{NetConfig, Sim};
use wattle_ledger::block::Block;
use wattle_ledger::permissions::{GlobalPerm, NO_END, Permission};
use wattle_ledger::testkit::{TestChain, key};
use wattle_ledger::tx::{Op, Output};
use wattle_ledger::{Amount, AssetId, ChainParams, SecretKey, Transaction, Txid};

const UNIT: u64 = 1000;

struct Setup {
    chain: TestChain,
    blocks: Vec<Arc<Block>>,
    miners: Vec<SecretKey>,
    users: Vec<SecretKey>,
    energy: AssetId,
}

fn commit(t: &mut TestChain, blocks: &mut Vec<Arc<Block>>, txs: Vec<Transaction>) {
    let b = t.block(txs);
    t.commit(&b).unwrap();
    blocks.push(Arc::new(b));
}

/// A chain whose admin (node 0) and `miners - 1` more keys hold `mine`, and `users` addresses
/// hold one coin of `energy` each.
fn setup(miners: usize, users: usize) -> Setup {
    let mut params = ChainParams::new("sim");
    params.setup_first_blocks = 4;
    let mut t = TestChain::with_params(params);
    let mut blocks = vec![Arc::new(t.genesis.clone())];
    let admin = t.admin.clone();
    let miner_keys: Vec<SecretKey> = std::iter::once(admin.clone())
        .chain((1..miners).map(|i| key(100 + i as u64)))
        .collect();
    let user_keys: Vec<SecretKey> = (0..users).map(|i| key(500 + i as u64)).collect();
    let csr = [GlobalPerm::Connect, GlobalPerm::Send, GlobalPerm::Receive].map(Permission::Global);
    let mut outputs = Vec::new();
    let mut ops = Vec::new();
    for (i, k) in miner_keys
        .iter()
        .skip(1)
        .chain(user_keys.iter())
        .enumerate()
    {
        outputs.push(Output {
            address: k.address(),
            assets: vec![],
        });
        let mut perms = csr.to_vec();
        if i < miners - 1 {
            perms.push(Permission::Global(GlobalPerm::Mine));
        }
        ops.push(Op::Grant {
            vout: i as u32,
            permissions: perms,
            start: 0,
            end: NO_END,
        });
    }
    let grants = t.build(&admin, outputs, vec![], ops);
    commit(&mut t, &mut blocks, vec![grants]);
    let issue = t.issue(
        &admin,
        admin.address(),
        "energy",
        true,
        1000,
        UNIT * users as u64,
        &[],
    );
    commit(&mut t, &mut blocks, vec![issue]);
    let energy = t.asset_id("energy");
    let payments = user_keys
        .iter()
        .map(|u| (u.address(), energy, Amount::new(UNIT).unwrap()))
        .collect();
    let pay = t.build(&admin, vec![], payments, vec![]);
    commit(&mut t, &mut blocks, vec![pay]);
    Setup {
        chain: t,
        blocks,
        miners: miner_keys,
        users: user_keys,
        energy,
    }
}

fn sim(s: &Setup, seed: u64, net: NetConfig) -> Sim {
    Sim::new(seed, &s.chain, &s.blocks, s.miners.clone(), net)
}

/// User `u` pays its whole coin to `to`.
fn pay(s: &Setup, u: usize, to: &SecretKey) -> Transaction {
    s.chain.transfer(&s.users[u], to.address(), s.energy, UNIT)
}

fn confirmed(sim: &Sim, node: usize, txid: &Txid) -> bool {
    sim.nodes[node]
        .blocks
        .iter()
        .any(|b| b.txs.iter().any(|t| t.txid() == *txid))
}

fn supply(sim: &Sim, node: usize, asset: &AssetId) -> u64 {
    use wattle_ledger::state::{StateKey, StateValue};
    sim.nodes[node]
        .state
        .map
        .iter()
        .filter_map(|(k, v)| match (k, v) {
            (StateKey::Utxo(_), StateValue::Utxo(u)) => Some(u.output.amount_of(asset).raw()),
            _ => None,
        })
        .sum()
}

/// Runs a network of `n` miners with latency and loss, submitting one payment per user at random
/// nodes, and returns it after the loss stops and it settles.
fn lossy_run(n: usize, seed: u64) -> (Setup, Sim, Vec<Txid>) {
    let s = setup(n, 6);
    let net = NetConfig {
        latency_ms: (5, 120),
        loss_per_mille: 100,
        announce_every_ms: 1000,
    };
    let mut sim = sim(&s, seed, net);
    sim.run_for(3_000);
    let mut txids = Vec::new();
    for u in 0..s.users.len() {
        let tx = pay(&s, u, &s.users[(u + 1) % s.users.len()]);
        txids.push(tx.txid());
        let at = sim.rng.range(0, n as u64 - 1) as usize;
        let pause = sim.rng.range(50, 2_000);
        sim.run_for(pause);
        assert!(sim.submit(at, tx), "node {at} refused a valid transaction");
    }
    sim.run_for(30_000);
    sim.net.loss_per_mille = 0;
    sim.run_for(25_000);
    (s, sim, txids)
}

#[test]
fn four_to_seven_miners_with_latency_and_loss_reach_one_chain() {
    for (n, seed) in [(4, 11), (5, 12), (6, 13), (7, 14)] {
        let (s, sim, txids) = lossy_run(n, seed);
        assert!(sim.converged(), "n={n}: tips differ: {:?}", sim.live_tips());
        let (height, _) = sim.live_tips()[0];
        assert!(
            height > s.blocks.len() as u32 + 3,
            "n={n}: chain did not grow (height {height})"
        );
        for txid in &txids {
            for node in 0..n {
                assert!(
                    confirmed(&sim, node, txid),
                    "n={n}: {txid} not confirmed at node {node}"
                );
            }
        }
        assert_eq!(supply(&sim, 0, &s.energy), UNIT * s.users.len() as u64);
        // Every miner's view is the same state.
        let h0 = sim.nodes[0].state.state_hash();
        assert!(sim.nodes.iter().all(|nd| nd.state.state_hash() == h0));
    }
}

#[test]
fn a_crashed_miner_does_not_stop_the_chain() {
    let s = setup(5, 2);
    let mut sim = sim(&s, 21, NetConfig::default());
    sim.run_for(15_000);
    let before = sim.nodes[1].engine.tip().0;
    sim.crash(2);
    sim.run_for(5_000);
    let tx = pay(&s, 0, &s.users[1]);
    assert!(sim.submit(1, tx.clone()));
    sim.run_for(60_000);
    assert!(sim.converged(), "tips differ: {:?}", sim.live_tips());
    let after = sim.nodes[1].engine.tip().0;
    assert!(after >= before + 4, "chain stalled: {before} -> {after}");
    for node in [0, 1, 3, 4] {
        assert!(
            confirmed(&sim, node, &tx.txid()),
            "not confirmed at node {node}"
        );
    }
}

#[test]
fn a_healed_partition_converges_and_orphaned_transactions_are_confirmed_again() {
    let s = setup(5, 4);
    let mut sim = sim(&s, 31, NetConfig::default());
    sim.run_for(5_000);
    sim.partition(vec![0, 0, 0, 1, 1]);
    // The same coin spent differently on the two sides, and one payment on each side.
    let x = pay(&s, 0, &s.users[1]);
    let y = pay(&s, 0, &s.users[2]);
    let on_a = pay(&s, 2, &s.users[3]);
    let on_b = pay(&s, 3, &s.users[1]);
    assert!(sim.submit(0, x.clone()));
    assert!(sim.submit(3, y.clone()));
    assert!(sim.submit(1, on_a.clone()));
    assert!(sim.submit(4, on_b.clone()));
    sim.run_for(40_000);
    // Both sides confirmed their own versions.
    assert!(confirmed(&sim, 0, &x.txid()) && confirmed(&sim, 3, &y.txid()));
    assert!(!sim.converged());
    sim.heal();
    sim.run_for(60_000);
    assert!(
        sim.converged(),
        "tips differ after healing: {:?}",
        sim.live_tips()
    );
    // Exactly one spend of the disputed coin survives; the other is reported as conflicted.
    let (x_in, y_in) = (confirmed(&sim, 0, &x.txid()), confirmed(&sim, 0, &y.txid()));
    assert!(
        x_in ^ y_in,
        "double spend survived or both lost: x {x_in}, y {y_in}"
    );
    let loser = if x_in { y.txid() } else { x.txid() };
    assert!(
        sim.nodes.iter().any(|n| n.conflicted.contains(&loser)),
        "the losing spend was not reported as conflicted"
    );
    // Every other orphaned transaction is confirmed again.
    for node in 0..5 {
        assert!(
            confirmed(&sim, node, &on_a.txid()),
            "on_a missing at {node}"
        );
        assert!(
            confirmed(&sim, node, &on_b.txid()),
            "on_b missing at {node}"
        );
    }
    assert_eq!(supply(&sim, 0, &s.energy), UNIT * s.users.len() as u64);
    let h0 = sim.nodes[0].state.state_hash();
    assert!(sim.nodes.iter().all(|n| n.state.state_hash() == h0));
}

#[test]
fn the_same_seed_gives_the_same_final_state() {
    let (_, a, _) = lossy_run(4, 99);
    let (_, b, _) = lossy_run(4, 99);
    assert_eq!(a.live_tips(), b.live_tips());
    assert_eq!(a.nodes[0].state.state_hash(), b.nodes[0].state.state_hash());
}

#[test]
fn a_lone_miner_builds_on_its_genesis_block() {
    let t = TestChain::new();
    let genesis = vec![Arc::new(t.genesis.clone())];
    let mut sim = Sim::new(5, &t, &genesis, vec![t.admin.clone()], NetConfig::default());
    sim.run_for(25_000);
    let (height, _) = sim.live_tips()[0];
    assert!(height >= 2, "no blocks on top of genesis (height {height})");
}
