//! Attacks on the ledger, each rejected with a precise error and the state left unchanged.

use wattle_ledger::error::{BlockError, TxError};
use wattle_ledger::exchange::{AssetBag, append_to_exchange, create_offer};
use wattle_ledger::hash::Hash256;
use wattle_ledger::permissions::{AssetPerm, GlobalPerm, Permission};
use wattle_ledger::sighash::{self, SighashMode};
use wattle_ledger::state::read;
use wattle_ledger::testkit::{TestChain, key, unsigned_input};
use wattle_ledger::tx::{Op, Output, TX_VERSION};
use wattle_ledger::{Amount, AssetId, Block, ChainParams, OutPoint, SecretKey, Transaction};

/// The paper's market just before the trade: P holds 1 energy in a prepared coin and has offered
/// it for 1000 ecoin; C holds a prepared coin of 1000 ecoin and 19000 more.
struct Market {
    t: TestChain,
    p: SecretKey,
    c: SecretKey,
    energy: AssetId,
    ecoin: AssetId,
    offer: Transaction,
    c_coin: OutPoint,
}

fn csr() -> [Permission; 3] {
    [GlobalPerm::Connect, GlobalPerm::Send, GlobalPerm::Receive].map(Permission::Global)
}

fn amt(raw: u64) -> Amount {
    Amount::new(raw).unwrap()
}

fn market() -> Market {
    let mut t = TestChain::new();
    let a = t.admin.clone();
    let (p, c) = (key(1), key(2));
    let txs = vec![t.grant(&a, p.address(), &csr())];
    t.mine(txs).unwrap();
    let txs = vec![t.grant(&a, c.address(), &csr())];
    t.mine(txs).unwrap();
    let txs = vec![t.issue(&a, a.address(), "energy", true, 1000, 0, &[])];
    t.mine(txs).unwrap();
    let txs = vec![t.issue(&a, a.address(), "ecoin", true, 1, 0, &[])];
    t.mine(txs).unwrap();
    let (energy, ecoin) = (t.asset_id("energy"), t.asset_id("ecoin"));
    let txs = vec![t.grant(
        &a,
        p.address(),
        &[Permission::Asset(energy, AssetPerm::Issue)],
    )];
    t.mine(txs).unwrap();
    let txs = vec![t.issue_more(&p, p.address(), energy, 1000)];
    t.mine(txs).unwrap();
    let txs = vec![t.issue_more(&a, c.address(), ecoin, 20000)];
    t.mine(txs).unwrap();
    let prep_p = t.transfer(&p, p.address(), energy, 1000);
    let prep_c = t.transfer(&c, c.address(), ecoin, 1000);
    let (p_coin, c_coin) = (prep_p.outpoint(0), prep_c.outpoint(0));
    t.mine(vec![prep_p, prep_c]).unwrap();
    let offer = create_offer(p_coin, &p, &[(ecoin, amt(1000))].into(), &t.chain).unwrap();
    Market {
        t,
        p,
        c,
        energy,
        ecoin,
        offer,
        c_coin,
    }
}

impl Market {
    /// C's valid acceptance of the offer.
    fn accept(&self) -> Transaction {
        let want: AssetBag = [(self.energy, amt(1000))].into();
        append_to_exchange(&self.offer, self.c_coin, &self.c, &want, &self.t.chain).unwrap()
    }

    /// Mines `txs` and expects the block to be refused with the error `check` accepts, leaving
    /// the state exactly as it was.
    fn expect_rejected(&mut self, txs: Vec<Transaction>, check: impl Fn(&TxError) -> bool) {
        expect_block_rejected(&mut self.t, txs, check);
    }
}

fn expect_block_rejected(
    t: &mut TestChain,
    txs: Vec<Transaction>,
    check: impl Fn(&TxError) -> bool,
) {
    let before = t.state.clone();
    match t.mine(txs) {
        Err(BlockError::Tx { error, .. }) => assert!(check(&error), "unexpected error: {error}"),
        other => panic!("expected a transaction error, got {other:?}"),
    }
    assert_eq!(
        t.state, before,
        "a rejected block must leave the state unchanged"
    );
}

#[test]
fn the_honest_trade_is_accepted() {
    let mut m = market();
    let tx = m.accept();
    m.t.mine(vec![tx]).unwrap();
    assert_eq!(m.t.balance(&m.c.address(), &m.energy), amt(1000));
    assert_eq!(m.t.balance(&m.p.address(), &m.ecoin), amt(1000));
}

#[test]
fn changing_the_offer_side_breaks_its_signature() {
    let mut m = market();
    let mut tx = m.accept();
    // Ask for more ecoin than the producer signed for.
    tx.outputs[0].assets = vec![(m.ecoin, amt(1))];
    m.expect_rejected(vec![tx], |e| {
        matches!(e, TxError::BadSignature { input: 0 })
    });
}

#[test]
fn changing_the_accepting_side_breaks_its_signature() {
    let mut m = market();
    let mut tx = m.accept();
    tx.outputs[1].assets = vec![(m.energy, amt(999))];
    m.expect_rejected(vec![tx], |e| {
        matches!(e, TxError::BadSignature { input: 1 })
    });
}

#[test]
fn redirecting_the_offer_payment_is_rejected() {
    let mut m = market();
    let mut tx = m.accept();
    tx.outputs[0].address = m.c.address();
    m.expect_rejected(vec![tx], |e| {
        matches!(e, TxError::BadSignature { input: 0 })
    });
}

#[test]
fn swapping_the_pairs_is_rejected() {
    let mut m = market();
    let mut tx = m.accept();
    tx.inputs.swap(0, 1);
    tx.outputs.swap(0, 1);
    m.expect_rejected(vec![tx], |e| matches!(e, TxError::BadSignature { .. }));
}

#[test]
fn an_unbalanced_exchange_is_rejected() {
    let mut m = market();
    // C asks for 2 energy against an offer of 1.
    let want: AssetBag = [(m.energy, amt(2000))].into();
    let tx = append_to_exchange(&m.offer, m.c_coin, &m.c, &want, &m.t.chain).unwrap();
    m.expect_rejected(vec![tx], |e| matches!(e, TxError::Unbalanced { .. }));
}

#[test]
fn issuing_more_without_asset_issue_is_rejected() {
    let mut m = market();
    // C holds send/receive but not energy.issue.
    let tx = m.t.issue_more(&m.c, m.c.address(), m.energy, 5);
    m.expect_rejected(vec![tx], |e| {
        matches!(e, TxError::NoAssetIssuePermission { .. })
    });
}

#[test]
fn issuing_more_of_a_closed_asset_is_rejected() {
    let mut m = market();
    let a = m.t.admin.clone();
    let txs = vec![m.t.issue(&a, a.address(), "closed", false, 1, 10, &[])];
    m.t.mine(txs).unwrap();
    let closed = m.t.asset_id("closed");
    let tx = m.t.issue_more(&a, a.address(), closed, 1);
    m.expect_rejected(vec![tx], |e| matches!(e, TxError::AssetClosed { .. }));
}

#[test]
fn a_grant_by_a_non_admin_is_rejected() {
    let mut m = market();
    let (p, c) = (m.p.clone(), m.c.address());
    let tx = m.t.grant(&p, c, &[Permission::Global(GlobalPerm::Issue)]);
    m.expect_rejected(vec![tx], |e| matches!(e, TxError::NoGrantAuthority { .. }));
    let tx = m.t.grant(&p, key(9).address(), &csr());
    m.expect_rejected(vec![tx], |e| matches!(e, TxError::NoGrantAuthority { .. }));
}

#[test]
fn mine_granted_by_one_of_two_admins_does_not_take_effect_early() {
    // Admin consensus: after the setup phase, with two admins and a consensus fraction above 1/2,
    // a mine grant needs both. (MultiChain's default 0.5 needs ceil(2 × 0.5) = 1 of 2.)
    let mut params = ChainParams::new("energybc");
    params.setup_first_blocks = 3;
    params.admin_consensus_mine = 600_000;
    let mut t = TestChain::with_params(params);
    let a1 = t.admin.clone();
    let a2 = key(5);
    let miner = key(6);
    let mut a2_perms = csr().to_vec();
    a2_perms.push(Permission::Global(GlobalPerm::Admin));
    let txs = vec![t.grant(&a1, a2.address(), &a2_perms)];
    t.mine(txs).unwrap();
    while t.next_height() < 3 {
        t.mine(vec![]).unwrap();
    }
    let mine = Permission::Global(GlobalPerm::Mine);
    let txs = vec![t.grant(&a1, miner.address(), &[mine])];
    t.mine(txs).unwrap();
    assert_eq!(
        read::perm(&t.state, &miner.address(), &mine).unwrap(),
        None,
        "one vote of two must stay pending"
    );
    let votes = read::votes(&t.state, &miner.address(), &GlobalPerm::Mine)
        .unwrap()
        .unwrap();
    assert_eq!(votes.len(), 1);
    // The pending miner cannot sign a block.
    let block = t.block_by(&miner, vec![]);
    let before = t.state.clone();
    assert!(matches!(
        t.commit(&block),
        Err(BlockError::MinerNotPermitted { .. })
    ));
    assert_eq!(t.state, before);
    // The second admin agrees: now it takes effect.
    let txs = vec![t.grant(&a2, miner.address(), &[mine])];
    t.mine(txs).unwrap();
    let rec = read::perm(&t.state, &miner.address(), &mine)
        .unwrap()
        .unwrap();
    assert!(rec.holds_at(t.next_height()));
}

#[test]
fn output_to_an_address_without_receive_is_rejected() {
    let mut m = market();
    let outsider = key(9).address();
    let (p, energy) = (m.p.clone(), m.energy);
    let txs = vec![m.t.issue_more(&p, p.address(), energy, 10)];
    m.t.mine(txs).unwrap();
    let tx = m.t.transfer(&p, outsider, energy, 10);
    m.expect_rejected(vec![tx], |e| {
        matches!(e, TxError::NoReceivePermission { vout: 0, .. })
    });
}

#[test]
fn spending_from_an_address_without_send_is_rejected() {
    let mut m = market();
    let a = m.t.admin.clone();
    let (p, c, energy) = (m.p.clone(), m.c.address(), m.energy);
    let txs = vec![m.t.issue_more(&p, p.address(), energy, 10)];
    m.t.mine(txs).unwrap();
    let txs = vec![m.t.revoke(&a, p.address(), &[Permission::Global(GlobalPerm::Send)])];
    m.t.mine(txs).unwrap();
    let tx = m.t.transfer(&p, c, energy, 10);
    m.expect_rejected(vec![tx], |e| matches!(e, TxError::NoSendPermission { .. }));
}

#[test]
fn a_double_spend_inside_one_block_is_rejected() {
    let mut m = market();
    let (c, a) = (m.c.clone(), m.t.admin.address());
    let ecoin = m.ecoin;
    let first = m.t.transfer(&c, m.p.address(), ecoin, 100);
    let mut second = first.clone();
    second.outputs[0].address = a; // same inputs, different payee
    let keys: Vec<&SecretKey> = second.inputs.iter().map(|_| &c).collect();
    sighash::sign_all(&mut second, &keys, &m.t.chain.id);
    m.expect_rejected(vec![first, second], |e| {
        matches!(e, TxError::MissingInput { .. })
    });
}

#[test]
fn a_double_spend_across_blocks_is_rejected() {
    let mut m = market();
    let c = m.c.clone();
    let tx = m.t.transfer(&c, m.p.address(), m.ecoin, 100);
    m.t.mine(vec![tx.clone()]).unwrap();
    m.expect_rejected(vec![tx], |e| matches!(e, TxError::MissingInput { .. }));
}

#[test]
fn a_transaction_signed_for_another_chain_is_rejected() {
    let mut m = market();
    let c = m.c.clone();
    let mut tx = m.t.transfer(&c, m.p.address(), m.ecoin, 100);
    let other_chain = Hash256::tagged(b"another chain", &[]);
    let keys: Vec<&SecretKey> = tx.inputs.iter().map(|_| &c).collect();
    sighash::sign_all(&mut tx, &keys, &other_chain);
    m.expect_rejected(vec![tx], |e| {
        matches!(e, TxError::BadSignature { input: 0 })
    });
}

#[test]
fn a_malleated_signature_is_rejected() {
    // s' = s + L verifies under a non-strict check; it must not here (nor change the txid).
    const L: [u8; 32] = [
        0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde,
        0x14, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
    ];
    let mut m = market();
    let c = m.c.clone();
    let mut tx = m.t.transfer(&c, m.p.address(), m.ecoin, 100);
    let sig = &mut tx.inputs[0].signature.0;
    let mut carry = 0u16;
    for i in 0..32 {
        let v = sig[32 + i] as u16 + L[i] as u16 + carry;
        sig[32 + i] = v as u8;
        carry = v >> 8;
    }
    m.expect_rejected(vec![tx], |e| {
        matches!(e, TxError::BadSignature { input: 0 })
    });
}

#[test]
fn amount_overflow_is_rejected() {
    let mut m = market();
    let a = m.t.admin.clone();
    // Issuing beyond 2^63-1 in total: the whole supply sits with P, the admin issues one more.
    let txs = vec![m.t.issue(&a, m.p.address(), "big", true, 1, Amount::MAX.raw(), &[])];
    m.t.mine(txs).unwrap();
    let big = m.t.asset_id("big");
    let tx = m.t.issue_more(&a, a.address(), big, 1);
    m.expect_rejected(vec![tx], |e| matches!(e, TxError::SupplyOverflow { .. }));
    // Inputs plus the issued quantity overflowing inside one transaction.
    let p = m.p.clone();
    let txs = vec![m.t.grant(&a, p.address(), &[Permission::Asset(big, AssetPerm::Issue)])];
    m.t.mine(txs).unwrap();
    let tx = m.t.build(
        &p,
        vec![Output::new(p.address(), [(big, Amount::MAX)])],
        vec![(p.address(), big, Amount::MAX)],
        vec![Op::IssueMore {
            asset: big,
            quantity: amt(1),
            fields: Default::default(),
        }],
    );
    m.expect_rejected(vec![tx], |e| matches!(e, TxError::AmountOverflow));
    // Send the supply back to the admin for the output-sum case below.
    let tx = m.t.transfer(&p, a.address(), big, Amount::MAX.raw());
    m.t.mine(vec![tx]).unwrap();
    // Outputs whose sum overflows: two outputs of 2^62 each (their sum is 2^63 > 2^63-1).
    let coin =
        m.t.utxos_of(&a.address())
            .into_iter()
            .find(|(_, u)| !u.output.amount_of(&big).is_zero())
            .unwrap()
            .0;
    let half = amt(1 << 62);
    let mut tx = Transaction {
        version: TX_VERSION,
        inputs: vec![unsigned_input(coin)],
        outputs: vec![
            Output::new(a.address(), [(big, half)]),
            Output::new(a.address(), [(big, half)]),
        ],
        ops: vec![],
    };
    sighash::sign_all(&mut tx, &[&a], &m.t.chain.id);
    m.expect_rejected(vec![tx], |e| matches!(e, TxError::AmountOverflow));
}

#[test]
fn a_single_anyonecanpay_input_without_a_matching_output_is_rejected() {
    let mut m = market();
    let c = m.c.clone();
    // The consumer adds a second, 0x83-signed input with no paired output, hoping to slip a coin in.
    let mut tx = m.accept();
    let extra =
        m.t.utxos_of(&c.address())
            .into_iter()
            .find(|(op, _)| *op != m.c_coin)
            .unwrap()
            .0;
    tx.inputs.push(unsigned_input(extra));
    tx.inputs[2].sighash = SighashMode::SINGLE_ACP_BYTE;
    tx.inputs[2].pubkey = c.public();
    m.expect_rejected(vec![tx], |e| {
        matches!(e, TxError::SingleWithoutOutput { input: 2 })
    });
}

#[test]
fn a_block_by_a_non_miner_is_rejected() {
    let mut m = market();
    let p = m.p.clone();
    let block: Block = m.t.block_by(&p, vec![]);
    let before = m.t.state.clone();
    assert!(matches!(
        m.t.commit(&block),
        Err(BlockError::MinerNotPermitted { .. })
    ));
    assert_eq!(m.t.state, before);
}
