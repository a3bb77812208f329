//! One test (at least) per ledger rule in each direction: it accepts what it should and refuses
//! what it should. Rule numbers are those of the module docs of `validate` (T1–T9, S1–S8),
//! `apply` (B1–B8) and `genesis` (B9), and each rule's tests are named after it (`t5_…`, `s3_…`).
//!
//! Malformed transactions start as valid ones from the testkit and are then mutated, and re-signed
//! whenever the rule under test comes after T9 (otherwise the signature check would fire first).
//! Every refusal asserts the exact error variant and that the state did not change.
//!
//! Later sections cover admin consensus (MULTICHAIN.md §3.5), permission ranges, permissions
//! granted earlier in the same block, and undoing a block with its changeset.

use wattle_ledger::address::Address;
use wattle_ledger::amount::{Amount, MAX_AMOUNT};
use wattle_ledger::block::Block;
use wattle_ledger::codec;
use wattle_ledger::error::{BlockError, TxError};
use wattle_ledger::genesis::{apply_genesis, genesis_block, genesis_tx};
use wattle_ledger::hash::Hash256;
use wattle_ledger::keys::SecretKey;
use wattle_ledger::mining;
use wattle_ledger::params::{ChainParams, FRACTION_ONE};
use wattle_ledger::permissions::{AssetPerm, GlobalPerm, NO_END, PermRecord, Permission};
use wattle_ledger::sighash::{self, SighashMode};
use wattle_ledger::state::{Changeset, MemoryView, Vote, read};
use wattle_ledger::testkit::{TestChain, key, unsigned_input};
use wattle_ledger::tx::{AssetId, NEW_ASSET, Op, OutPoint, Output, TX_VERSION, Transaction};

use GlobalPerm::{Activate, Admin, Connect, Issue, Mine, Receive, Send};

// ================================================================ helpers

/// Raw energy units the fixture pays Alice, in one coin.
const ALICE_ENERGY: u64 = 1000;
/// Raw ecoin units the fixture pays Bob, in one coin.
const BOB_ECOIN: u64 = 50;

fn g(p: GlobalPerm) -> Permission {
    Permission::Global(p)
}

fn perms(list: &[GlobalPerm]) -> Vec<Permission> {
    list.iter().copied().map(g).collect()
}

fn csr() -> Vec<Permission> {
    perms(&[Connect, Send, Receive])
}

fn amount(raw: u64) -> Amount {
    Amount::new(raw).expect("amount in range")
}

/// A chain where the admin (`key(0)`) issued two assets, Alice and Bob (`key(1)`, `key(2)`) hold
/// connect/send/receive, Alice holds one coin of exactly `ALICE_ENERGY` energy and Bob one of
/// exactly `BOB_ECOIN` ecoin. Carol (`key(3)`) and Dave (`key(4)`) hold nothing.
struct Fx {
    t: TestChain,
    admin: SecretKey,
    alice: SecretKey,
    bob: SecretKey,
    carol: SecretKey,
    dave: SecretKey,
    energy: AssetId,
    ecoin: AssetId,
}

fn fixture() -> Fx {
    fixture_with(|_| {})
}

fn fixture_with(tweak: impl FnOnce(&mut ChainParams)) -> Fx {
    let mut params = ChainParams::new("energybc");
    tweak(&mut params);
    let mut t = TestChain::with_params(params);
    let admin = t.admin.clone();
    let (alice, bob) = (key(1), key(2));
    grant_now(&mut t, &admin, alice.address(), &csr());
    grant_now(&mut t, &admin, bob.address(), &csr());
    let energy = issue_now(&mut t, &admin, "energy", true, 1_000_000);
    let ecoin = issue_now(&mut t, &admin, "ecoin", true, 1_000_000);
    let pay = t.transfer(&admin, alice.address(), energy, ALICE_ENERGY);
    accept(&mut t, vec![pay]);
    let pay = t.transfer(&admin, bob.address(), ecoin, BOB_ECOIN);
    accept(&mut t, vec![pay]);
    Fx {
        t,
        admin,
        alice,
        bob,
        carol: key(3),
        dave: key(4),
        energy,
        ecoin,
    }
}

/// Mines `txs` in a block by the admin, which must be accepted.
fn accept(t: &mut TestChain, txs: Vec<Transaction>) -> Changeset {
    t.mine(txs)
        .unwrap_or_else(|e| panic!("block should be accepted: {e}"))
}

/// Commits `block`, which must be accepted.
fn accept_block(t: &mut TestChain, block: &Block) -> Changeset {
    t.commit(block)
        .unwrap_or_else(|e| panic!("block should be accepted: {e}"))
}

/// Commits `block`, which must be refused without touching the state; returns the error.
fn refuse_block(t: &mut TestChain, block: &Block) -> BlockError {
    let before = t.state.clone();
    let err = t.commit(block).expect_err("block should be refused");
    assert_eq!(
        t.state, before,
        "a refused block must leave the state as it was"
    );
    err
}

/// Mines `txs` in one block, which must be refused for one of its transactions without touching
/// the state; returns that transaction's index and error.
fn refuse_txs(t: &mut TestChain, txs: Vec<Transaction>) -> (usize, TxError) {
    let block = t.block(txs);
    match refuse_block(t, &block) {
        BlockError::Tx { index, txid, error } => {
            assert_eq!(txid, block.txs[index].txid(), "the error names the txid");
            (index, error)
        }
        other => panic!("expected a transaction error, got {other:?}"),
    }
}

/// Mines `tx` alone, which must be refused without touching the state; returns the error.
fn refuse_tx(t: &mut TestChain, tx: Transaction) -> TxError {
    let (index, error) = refuse_txs(t, vec![tx]);
    assert_eq!(index, 0);
    error
}

fn grant_now(t: &mut TestChain, from: &SecretKey, to: Address, perms: &[Permission]) {
    let tx = t.grant(from, to, perms);
    accept(t, vec![tx]);
}

fn issue_now(t: &mut TestChain, from: &SecretKey, name: &str, open: bool, qty: u64) -> AssetId {
    let tx = t.issue(from, from.address(), name, open, 1, qty, &[]);
    accept(t, vec![tx]);
    t.asset_id(name)
}

fn pay_now(t: &mut TestChain, from: &SecretKey, to: Address, asset: AssetId, qty: u64) {
    let tx = t.transfer(from, to, asset, qty);
    accept(t, vec![tx]);
}

/// A zero-value output to `address`.
fn zero_out(address: Address) -> Output {
    Output {
        address,
        assets: vec![],
    }
}

/// A transaction with unsigned ALL inputs.
fn new_tx(inputs: &[OutPoint], outputs: Vec<Output>, ops: Vec<Op>) -> Transaction {
    Transaction {
        version: TX_VERSION,
        inputs: inputs.iter().copied().map(unsigned_input).collect(),
        outputs,
        ops,
    }
}

/// Signs every input of `tx` `ALL` with `signer`.
fn sign_by(t: &TestChain, tx: &mut Transaction, signer: &SecretKey) {
    let keys: Vec<&SecretKey> = tx.inputs.iter().map(|_| signer).collect();
    sighash::sign_all(tx, &keys, &t.chain.id);
}

fn sign_one(t: &TestChain, tx: &mut Transaction, index: usize, mode: SighashMode, k: &SecretKey) {
    assert!(
        sighash::sign_input(tx, index, mode, k, &t.chain.id),
        "input {index} can be signed in {mode:?}"
    );
}

/// The first zero-value coin of `owner`.
fn zero_coin(t: &TestChain, owner: &Address) -> OutPoint {
    t.utxos_of(owner)
        .into_iter()
        .find(|(_, u)| u.output.is_zero_value())
        .expect("owner has a zero-value coin")
        .0
}

/// A coin of `owner` holding exactly `qty` of `asset` and nothing else.
fn coin_holding(t: &TestChain, owner: &Address, asset: AssetId, qty: u64) -> OutPoint {
    t.utxos_of(owner)
        .into_iter()
        .find(|(_, u)| u.output.assets == vec![(asset, amount(qty))])
        .expect("owner has such a coin")
        .0
}

/// Any coin of `owner`, with what it carries.
fn any_coin(t: &TestChain, owner: &Address) -> (OutPoint, Output) {
    let (op, u) = t
        .utxos_of(owner)
        .into_iter()
        .next()
        .expect("owner has a coin");
    (op, u.output)
}

fn perm_record(t: &TestChain, who: &Address, perm: Permission) -> Option<PermRecord> {
    read::perm(&t.state, who, &perm).expect("state reads")
}

/// Whether `who` holds `perm` for the next block.
fn holds(t: &TestChain, who: &Address, perm: Permission) -> bool {
    perm_record(t, who, perm).is_some_and(|r| r.holds_at(t.next_height()))
}

fn votes(t: &TestChain, who: &Address, perm: GlobalPerm) -> Option<Vec<Vote>> {
    read::votes(&t.state, who, &perm).expect("state reads")
}

/// Alice's `ALICE_ENERGY` energy for Bob's `BOB_ECOIN` ecoin, an atomic exchange: Alice signs her
/// pair (input 0, output 0) SINGLE|ANYONECANPAY, then Bob appends and signs his.
fn swap(fx: &Fx) -> Transaction {
    let t = &fx.t;
    let a_coin = coin_holding(t, &fx.alice.address(), fx.energy, ALICE_ENERGY);
    let b_coin = coin_holding(t, &fx.bob.address(), fx.ecoin, BOB_ECOIN);
    let ask = Output::new(fx.alice.address(), [(fx.ecoin, amount(BOB_ECOIN))]);
    let mut tx = new_tx(&[a_coin], vec![ask], vec![]);
    sign_one(t, &mut tx, 0, SighashMode::SingleAnyoneCanPay, &fx.alice);
    tx.inputs.push(unsigned_input(b_coin));
    tx.outputs.push(Output::new(
        fx.bob.address(),
        [(fx.energy, amount(ALICE_ENERGY))],
    ));
    sign_one(t, &mut tx, 1, SighashMode::SingleAnyoneCanPay, &fx.bob);
    tx
}

/// Alice pays `qty` energy to Bob from her energy coin, change back to her: outputs
/// `[bob qty, alice rest]`, and possibly her zero-value coin as a second input.
fn alice_pays_bob(fx: &Fx, qty: u64) -> Transaction {
    fx.t.transfer(&fx.alice, fx.bob.address(), fx.energy, qty)
}

// ================================================================ T1 version

#[test]
fn t1_version_accepts_version_1() {
    let mut fx = fixture();
    let tx = alice_pays_bob(&fx, 10);
    assert_eq!(tx.version, 1);
    accept(&mut fx.t, vec![tx]);
    assert_eq!(fx.t.balance(&fx.bob.address(), &fx.energy).raw(), 10);
}

#[test]
fn t1_version_rejects_other_versions() {
    let mut fx = fixture();
    for version in [0, 2, u32::MAX] {
        let mut tx = alice_pays_bob(&fx, 10);
        tx.version = version;
        sign_by(&fx.t, &mut tx, &fx.alice);
        let err = refuse_tx(&mut fx.t, tx);
        assert!(
            matches!(err, TxError::BadVersion { got } if got == version),
            "{err:?}"
        );
    }
}

// ================================================================ T2 inputs-outputs

#[test]
fn t2_inputs_outputs_accepts_one_input_and_one_output() {
    let mut fx = fixture();
    let alice = fx.alice.address();
    let mut tx = new_tx(&[zero_coin(&fx.t, &alice)], vec![zero_out(alice)], vec![]);
    sign_by(&fx.t, &mut tx, &fx.alice);
    accept(&mut fx.t, vec![tx]);
}

#[test]
fn t2_inputs_outputs_rejects_no_inputs() {
    let mut fx = fixture();
    let mut tx = alice_pays_bob(&fx, 10);
    tx.inputs.clear();
    let err = refuse_tx(&mut fx.t, tx);
    assert!(matches!(err, TxError::NoInputs), "{err:?}");
}

#[test]
fn t2_inputs_outputs_rejects_genesis_like_tx_without_inputs() {
    let mut fx = fixture();
    let err = refuse_tx(&mut fx.t, genesis_tx(fx.carol.address()));
    assert!(matches!(err, TxError::NoInputs), "{err:?}");
}

#[test]
fn t2_inputs_outputs_rejects_no_outputs() {
    let mut fx = fixture();
    let mut tx = alice_pays_bob(&fx, 10);
    tx.outputs.clear();
    sign_by(&fx.t, &mut tx, &fx.alice);
    let err = refuse_tx(&mut fx.t, tx);
    assert!(matches!(err, TxError::NoOutputs), "{err:?}");
}

// ================================================================ T3 limits

fn small_limits(p: &mut ChainParams) {
    p.max_tx_inputs = 2;
    p.max_tx_outputs = 3;
    p.max_std_tx_size = 1000;
}

#[test]
fn t3_limits_accepts_counts_at_the_limits() {
    let mut fx = fixture_with(small_limits);
    let alice = fx.alice.address();
    let coins = [
        zero_coin(&fx.t, &alice),
        coin_holding(&fx.t, &alice, fx.energy, ALICE_ENERGY),
    ];
    let outputs = vec![
        Output::new(fx.bob.address(), [(fx.energy, amount(10))]),
        Output::new(alice, [(fx.energy, amount(ALICE_ENERGY - 10))]),
        zero_out(alice),
    ];
    let mut tx = new_tx(&coins, outputs, vec![]);
    sign_by(&fx.t, &mut tx, &fx.alice);
    accept(&mut fx.t, vec![tx]);
}

#[test]
fn t3_limits_rejects_too_many_outputs() {
    let mut fx = fixture_with(small_limits);
    let mut tx = alice_pays_bob(&fx, 10);
    while tx.outputs.len() < 4 {
        tx.outputs.push(zero_out(fx.alice.address()));
    }
    sign_by(&fx.t, &mut tx, &fx.alice);
    let err = refuse_tx(&mut fx.t, tx);
    assert!(
        matches!(
            err,
            TxError::TooMany {
                what: "outputs",
                count: 4,
                limit: 3
            }
        ),
        "{err:?}"
    );
}

#[test]
fn t3_limits_rejects_too_many_inputs() {
    let mut fx = fixture_with(small_limits);
    let alice = fx.alice.address();
    pay_now(&mut fx.t, &fx.admin, alice, fx.energy, 1);
    let coins: Vec<OutPoint> =
        fx.t.utxos_of(&alice)
            .into_iter()
            .map(|(op, _)| op)
            .collect();
    assert_eq!(coins.len(), 3);
    let out = Output::new(alice, [(fx.energy, amount(ALICE_ENERGY + 1))]);
    let mut tx = new_tx(&coins, vec![out], vec![]);
    sign_by(&fx.t, &mut tx, &fx.alice);
    let err = refuse_tx(&mut fx.t, tx);
    assert!(
        matches!(
            err,
            TxError::TooMany {
                what: "inputs",
                count: 3,
                limit: 2
            }
        ),
        "{err:?}"
    );
}

#[test]
fn t3_limits_accepts_tx_under_max_std_tx_size() {
    let mut fx = fixture_with(small_limits);
    let value = "x".repeat(100);
    let tx = fx.t.issue(
        &fx.admin,
        fx.admin.address(),
        "solar",
        true,
        1,
        5,
        &[("note", &value)],
    );
    assert!(codec::encoded_len(&tx) <= 1000);
    accept(&mut fx.t, vec![tx]);
}

#[test]
fn t3_limits_rejects_tx_over_max_std_tx_size() {
    let mut fx = fixture_with(small_limits);
    let value = "x".repeat(1000);
    let tx = fx.t.issue(
        &fx.admin,
        fx.admin.address(),
        "solar",
        true,
        1,
        5,
        &[("note", &value)],
    );
    let size = codec::encoded_len(&tx);
    let err = refuse_tx(&mut fx.t, tx);
    assert!(
        matches!(err, TxError::TooLarge { size: s, limit: 1000 } if s == size),
        "{err:?}"
    );
}

// ================================================================ T4 output-assets

/// The admin pays Bob 5 energy and 7 ecoin in one output (vout 0).
fn two_asset_payment(fx: &Fx) -> Transaction {
    let bob = fx.bob.address();
    let mut tx = fx.t.build(
        &fx.admin,
        vec![],
        vec![(bob, fx.energy, amount(5)), (bob, fx.ecoin, amount(7))],
        vec![],
    );
    let paid = Output::new(bob, [(fx.energy, amount(5)), (fx.ecoin, amount(7))]);
    tx.outputs.splice(0..2, [paid]);
    sign_by(&fx.t, &mut tx, &fx.admin);
    tx
}

#[test]
fn t4_output_assets_accepts_sorted_assets_in_one_output() {
    let mut fx = fixture();
    let tx = two_asset_payment(&fx);
    assert_eq!(tx.outputs[0].assets.len(), 2);
    accept(&mut fx.t, vec![tx]);
    let bob = fx.bob.address();
    assert_eq!(fx.t.balance(&bob, &fx.energy).raw(), 5);
    assert_eq!(fx.t.balance(&bob, &fx.ecoin).raw(), BOB_ECOIN + 7);
}

#[test]
fn t4_output_assets_rejects_unsorted_assets() {
    let mut fx = fixture();
    let mut tx = two_asset_payment(&fx);
    tx.outputs[0].assets.reverse();
    sign_by(&fx.t, &mut tx, &fx.admin);
    let err = refuse_tx(&mut fx.t, tx);
    assert!(
        matches!(err, TxError::OutputAssetsUnsorted { vout: 0 }),
        "{err:?}"
    );
}

#[test]
fn t4_output_assets_rejects_duplicate_asset_in_one_output() {
    let mut fx = fixture();
    let mut tx = alice_pays_bob(&fx, 10);
    tx.outputs[0].assets = vec![(fx.energy, amount(4)), (fx.energy, amount(6))];
    sign_by(&fx.t, &mut tx, &fx.alice);
    let err = refuse_tx(&mut fx.t, tx);
    assert!(
        matches!(err, TxError::OutputAssetsUnsorted { vout: 0 }),
        "{err:?}"
    );
}

#[test]
fn t4_output_assets_rejects_zero_quantity() {
    let mut fx = fixture();
    let mut tx = alice_pays_bob(&fx, 10);
    tx.outputs[0].assets = vec![(fx.energy, Amount::ZERO)];
    sign_by(&fx.t, &mut tx, &fx.alice);
    let err = refuse_tx(&mut fx.t, tx);
    assert!(
        matches!(err, TxError::ZeroAssetAmount { vout: 0 }),
        "{err:?}"
    );
}

#[test]
fn t4_output_assets_accepts_new_asset_id_in_an_issue() {
    let mut fx = fixture();
    let tx =
        fx.t.issue(&fx.admin, fx.alice.address(), "solar", true, 1, 42, &[]);
    assert_eq!(tx.outputs[0].assets, vec![(NEW_ASSET, amount(42))]);
    accept(&mut fx.t, vec![tx]);
    let solar = fx.t.asset_id("solar");
    assert_eq!(fx.t.balance(&fx.alice.address(), &solar).raw(), 42);
}

#[test]
fn t4_output_assets_rejects_new_asset_id_without_issue() {
    let mut fx = fixture();
    let mut tx = alice_pays_bob(&fx, 10);
    tx.outputs[0].assets = vec![(NEW_ASSET, amount(10))];
    sign_by(&fx.t, &mut tx, &fx.alice);
    let err = refuse_tx(&mut fx.t, tx);
    assert!(
        matches!(err, TxError::NewAssetWithoutIssue { vout: 0 }),
        "{err:?}"
    );
}

// ================================================================ T5 unique-inputs

#[test]
fn t5_unique_inputs_accepts_distinct_outpoints() {
    let mut fx = fixture();
    let alice = fx.alice.address();
    let coins = [
        zero_coin(&fx.t, &alice),
        coin_holding(&fx.t, &alice, fx.energy, ALICE_ENERGY),
    ];
    let out = Output::new(alice, [(fx.energy, amount(ALICE_ENERGY))]);
    let mut tx = new_tx(&coins, vec![out], vec![]);
    sign_by(&fx.t, &mut tx, &fx.alice);
    accept(&mut fx.t, vec![tx]);
    assert_eq!(fx.t.utxos_of(&alice).len(), 1);
}

#[test]
fn t5_unique_inputs_rejects_duplicate_outpoint() {
    let mut fx = fixture();
    let alice = fx.alice.address();
    let coin = coin_holding(&fx.t, &alice, fx.energy, ALICE_ENERGY);
    let out = Output::new(alice, [(fx.energy, amount(2 * ALICE_ENERGY))]);
    let mut tx = new_tx(&[coin, coin], vec![out], vec![]);
    sign_by(&fx.t, &mut tx, &fx.alice);
    let err = refuse_tx(&mut fx.t, tx);
    assert!(
        matches!(err, TxError::DuplicateInput { prev } if prev == coin),
        "{err:?}"
    );
}

// ================================================================ T6 ops

/// An admin grant of connect/send/receive to Carol: outputs `[carol, admin change]`.
fn grant_to_carol(fx: &Fx) -> Transaction {
    fx.t.grant(&fx.admin, fx.carol.address(), &csr())
}

/// Replaces the ops of `tx` and re-signs it by the admin.
fn with_ops(fx: &Fx, mut tx: Transaction, ops: Vec<Op>) -> Transaction {
    tx.ops = ops;
    sign_by(&fx.t, &mut tx, &fx.admin);
    tx
}

fn grant_op(vout: u32, permissions: Vec<Permission>, start: u32, end: u32) -> Op {
    Op::Grant {
        vout,
        permissions,
        start,
        end,
    }
}

#[test]
fn t6_ops_accepts_grant_and_revoke_in_one_tx() {
    let mut fx = fixture();
    let (carol, dave) = (fx.carol.address(), fx.dave.address());
    let ops = vec![
        grant_op(0, csr(), 0, NO_END),
        Op::Revoke {
            vout: 1,
            permissions: vec![g(Send)],
        },
    ];
    let outputs = vec![zero_out(carol), zero_out(dave)];
    let tx = fx.t.build(&fx.admin, outputs, vec![], ops);
    accept(&mut fx.t, vec![tx]);
    assert!(holds(&fx.t, &carol, g(Send)));
    let revoked = perm_record(&fx.t, &dave, g(Send)).expect("a revoke writes a record");
    assert_eq!((revoked.start, revoked.end), (0, 0));
}

#[test]
fn t6_ops_accepts_well_formed_names_units_and_fields() {
    let mut fx = fixture();
    let long = "n".repeat(32);
    for (name, multiple) in [(long.as_str(), 1), ("1-2", 100_000_000), ("a-1-2", 1000)] {
        let tx = fx.t.issue(
            &fx.admin,
            fx.admin.address(),
            name,
            false,
            multiple,
            3,
            &[("origin", "KW")],
        );
        accept(&mut fx.t, vec![tx]);
        let info = read::asset(&fx.t.state, &fx.t.asset_id(name))
            .unwrap()
            .unwrap();
        assert_eq!((info.name.as_str(), info.multiple), (name, multiple));
        assert_eq!(info.fields.get("origin").map(String::as_str), Some("KW"));
    }
}

#[test]
fn t6_ops_rejects_two_issue_ops() {
    let mut fx = fixture();
    let mut tx =
        fx.t.issue(&fx.admin, fx.admin.address(), "solar", true, 1, 5, &[]);
    tx.ops.push(Op::IssueMore {
        asset: fx.energy,
        quantity: amount(1),
        fields: Default::default(),
    });
    sign_by(&fx.t, &mut tx, &fx.admin);
    let err = refuse_tx(&mut fx.t, tx);
    assert!(matches!(err, TxError::MultipleIssueOps), "{err:?}");
}

#[test]
fn t6_ops_rejects_malformed_asset_names() {
    let mut fx = fixture();
    for name in ["", "*", "1-2-3", " solar", "solar ", "so\nlar"] {
        let tx =
            fx.t.issue(&fx.admin, fx.admin.address(), name, true, 1, 5, &[]);
        let err = refuse_tx(&mut fx.t, tx);
        assert!(
            matches!(&err, TxError::InvalidAssetName { name: n, .. } if n == name),
            "{name:?}: {err:?}"
        );
    }
}

#[test]
fn t6_ops_rejects_asset_name_over_32_bytes() {
    let mut fx = fixture();
    let name = "n".repeat(33);
    let tx =
        fx.t.issue(&fx.admin, fx.admin.address(), &name, true, 1, 5, &[]);
    let err = refuse_tx(&mut fx.t, tx);
    // The name-too-long case shares the variant of oversized fields ("... or asset name, too long").
    assert!(matches!(err, TxError::FieldsTooLarge), "{err:?}");
}

#[test]
fn t6_ops_rejects_invalid_multiple() {
    let mut fx = fixture();
    for multiple in [0, 3, 200_000_000] {
        let tx = fx.t.issue(
            &fx.admin,
            fx.admin.address(),
            "solar",
            true,
            multiple,
            5,
            &[],
        );
        let err = refuse_tx(&mut fx.t, tx);
        assert!(
            matches!(err, TxError::InvalidMultiple { multiple: m } if m == multiple),
            "{err:?}"
        );
    }
}

#[test]
fn t6_ops_rejects_oversized_fields() {
    let mut fx = fixture();
    let value = "x".repeat(5000);
    let tx = fx.t.issue(
        &fx.admin,
        fx.admin.address(),
        "solar",
        true,
        1,
        5,
        &[("note", &value)],
    );
    let err = refuse_tx(&mut fx.t, tx);
    assert!(matches!(err, TxError::FieldsTooLarge), "{err:?}");
}

#[test]
fn t6_ops_rejects_issue_more_of_the_new_asset_id() {
    let mut fx = fixture();
    let mut tx = fx.t.issue_more(&fx.admin, fx.admin.address(), fx.energy, 5);
    let Op::IssueMore { asset, .. } = &mut tx.ops[0] else {
        panic!("issue_more builds an IssueMore op");
    };
    *asset = NEW_ASSET;
    sign_by(&fx.t, &mut tx, &fx.admin);
    let err = refuse_tx(&mut fx.t, tx);
    assert!(matches!(err, TxError::IssueMoreOfNewAsset), "{err:?}");
}

#[test]
fn t6_ops_rejects_grant_output_out_of_range() {
    let mut fx = fixture();
    let tx = with_ops(
        &fx,
        grant_to_carol(&fx),
        vec![grant_op(5, csr(), 0, NO_END)],
    );
    let err = refuse_tx(&mut fx.t, tx);
    assert!(
        matches!(err, TxError::GrantOutputOutOfRange { vout: 5 }),
        "{err:?}"
    );
}

#[test]
fn t6_ops_rejects_grant_output_carrying_assets() {
    let mut fx = fixture();
    let mut tx = grant_to_carol(&fx);
    tx.outputs[0].assets = vec![(fx.energy, amount(1))];
    let tx = with_ops(&fx, tx, vec![grant_op(0, csr(), 0, NO_END)]);
    let err = refuse_tx(&mut fx.t, tx);
    assert!(
        matches!(err, TxError::GrantOutputNotEmpty { vout: 0 }),
        "{err:?}"
    );
}

#[test]
fn t6_ops_rejects_two_ops_on_one_grant_output() {
    let mut fx = fixture();
    let ops = vec![
        grant_op(0, vec![g(Send)], 0, NO_END),
        Op::Revoke {
            vout: 0,
            permissions: vec![g(Receive)],
        },
    ];
    let tx = with_ops(&fx, grant_to_carol(&fx), ops);
    let err = refuse_tx(&mut fx.t, tx);
    assert!(
        matches!(err, TxError::DuplicateGrantOutput { vout: 0 }),
        "{err:?}"
    );
}

#[test]
fn t6_ops_rejects_empty_or_repeated_permission_list() {
    let mut fx = fixture();
    for list in [vec![], vec![g(Send), g(Receive), g(Send)]] {
        let tx = with_ops(&fx, grant_to_carol(&fx), vec![grant_op(0, list, 0, NO_END)]);
        let err = refuse_tx(&mut fx.t, tx);
        assert!(matches!(err, TxError::BadPermissionList), "{err:?}");
    }
    let revoke = Op::Revoke {
        vout: 0,
        permissions: vec![],
    };
    let tx = with_ops(&fx, grant_to_carol(&fx), vec![revoke]);
    let err = refuse_tx(&mut fx.t, tx);
    assert!(matches!(err, TxError::BadPermissionList), "{err:?}");
}

#[test]
fn t6_ops_rejects_empty_or_reversed_grant_range() {
    let mut fx = fixture();
    for (start, end) in [(5, 5), (9, 3), (NO_END, NO_END)] {
        let tx = with_ops(
            &fx,
            grant_to_carol(&fx),
            vec![grant_op(0, csr(), start, end)],
        );
        let err = refuse_tx(&mut fx.t, tx);
        assert!(
            matches!(err, TxError::BadGrantRange { start: s, end: e } if (s, e) == (start, end)),
            "{err:?}"
        );
    }
}

#[test]
fn t6_ops_rejects_permission_for_the_new_asset_id() {
    let mut fx = fixture();
    let perm = Permission::Asset(NEW_ASSET, AssetPerm::Issue);
    let tx = with_ops(
        &fx,
        grant_to_carol(&fx),
        vec![grant_op(0, vec![perm], 0, NO_END)],
    );
    let err = refuse_tx(&mut fx.t, tx);
    assert!(matches!(err, TxError::PermissionForNewAsset), "{err:?}");
}

// ================================================================ T7 sighash

#[test]
fn t7_sighash_accepts_single_anyonecanpay_with_paired_output() {
    let mut fx = fixture();
    let alice = fx.alice.address();
    let coin = coin_holding(&fx.t, &alice, fx.energy, ALICE_ENERGY);
    let out = Output::new(fx.bob.address(), [(fx.energy, amount(ALICE_ENERGY))]);
    let mut tx = new_tx(&[coin], vec![out], vec![]);
    sign_one(
        &fx.t,
        &mut tx,
        0,
        SighashMode::SingleAnyoneCanPay,
        &fx.alice,
    );
    assert_eq!(tx.inputs[0].sighash, 0x83);
    accept(&mut fx.t, vec![tx]);
    assert_eq!(
        fx.t.balance(&fx.bob.address(), &fx.energy).raw(),
        ALICE_ENERGY
    );
}

#[test]
fn t7_sighash_rejects_unknown_mode() {
    let mut fx = fixture();
    for byte in [0x00, 0x02, 0x03, 0x81, 0x82] {
        let mut tx = alice_pays_bob(&fx, 10);
        tx.inputs[0].sighash = byte;
        let err = refuse_tx(&mut fx.t, tx);
        assert!(
            matches!(err, TxError::UnknownSighash { input: 0, byte: b } if b == byte),
            "{err:?}"
        );
    }
}

#[test]
fn t7_sighash_rejects_single_anyonecanpay_without_paired_output() {
    let mut fx = fixture();
    let alice = fx.alice.address();
    let coins = [
        zero_coin(&fx.t, &alice),
        coin_holding(&fx.t, &alice, fx.energy, ALICE_ENERGY),
    ];
    let out = Output::new(fx.bob.address(), [(fx.energy, amount(ALICE_ENERGY))]);
    let mut tx = new_tx(&coins, vec![out], vec![]);
    sign_by(&fx.t, &mut tx, &fx.alice);
    // Input 1 has no output 1, so it cannot even be signed in this mode: declare it anyway.
    assert!(!sighash::sign_input(
        &mut tx,
        1,
        SighashMode::SingleAnyoneCanPay,
        &fx.alice,
        &fx.t.chain.id
    ));
    tx.inputs[1].sighash = SighashMode::SINGLE_ACP_BYTE;
    let err = refuse_tx(&mut fx.t, tx);
    assert!(
        matches!(err, TxError::SingleWithoutOutput { input: 1 }),
        "{err:?}"
    );
}

// ================================================================ T8 signed-coverage

#[test]
fn t8_signed_coverage_accepts_exchange_without_all_input() {
    let mut fx = fixture();
    let tx = swap(&fx);
    assert!(tx.inputs.iter().all(|i| i.sighash == 0x83));
    accept(&mut fx.t, vec![tx]);
    let (alice, bob) = (fx.alice.address(), fx.bob.address());
    assert_eq!(fx.t.balance(&alice, &fx.ecoin).raw(), BOB_ECOIN);
    assert_eq!(fx.t.balance(&bob, &fx.energy).raw(), ALICE_ENERGY);
    assert_eq!(fx.t.balance(&alice, &fx.energy).raw(), 0);
}

#[test]
fn t8_signed_coverage_rejects_unpaired_output_without_all_input() {
    let mut fx = fixture();
    let alice = fx.alice.address();
    let coin = coin_holding(&fx.t, &alice, fx.energy, ALICE_ENERGY);
    let outputs = vec![
        Output::new(fx.bob.address(), [(fx.energy, amount(900))]),
        Output::new(alice, [(fx.energy, amount(100))]),
    ];
    let mut tx = new_tx(&[coin], outputs, vec![]);
    sign_one(
        &fx.t,
        &mut tx,
        0,
        SighashMode::SingleAnyoneCanPay,
        &fx.alice,
    );
    let err = refuse_tx(&mut fx.t, tx);
    assert!(matches!(err, TxError::UnsignedParts), "{err:?}");
}

#[test]
fn t8_signed_coverage_rejects_ops_without_all_input() {
    let mut fx = fixture();
    // One output per input is not enough once there are ops: no signature covers the grant.
    let coin = zero_coin(&fx.t, &fx.alice.address());
    let ops = vec![grant_op(0, csr(), 0, NO_END)];
    let mut tx = new_tx(&[coin], vec![zero_out(fx.carol.address())], ops);
    sign_one(
        &fx.t,
        &mut tx,
        0,
        SighashMode::SingleAnyoneCanPay,
        &fx.alice,
    );
    let err = refuse_tx(&mut fx.t, tx);
    assert!(matches!(err, TxError::UnsignedParts), "{err:?}");
}

// ================================================================ T9 signatures

#[test]
fn t9_signatures_accept_exchange_pair_signed_before_the_other_was_appended() {
    let mut fx = fixture();
    let tx = swap(&fx);
    let mut body = None;
    for i in 0..2 {
        assert!(sighash::verify_input(&tx, i, &fx.t.chain.id, &mut body));
    }
    accept(&mut fx.t, vec![tx]);
}

#[test]
fn t9_signatures_accept_mixed_all_and_single_inputs() {
    let mut fx = fixture();
    let (alice, bob) = (fx.alice.address(), fx.bob.address());
    let coins = [
        coin_holding(&fx.t, &alice, fx.energy, ALICE_ENERGY),
        coin_holding(&fx.t, &bob, fx.ecoin, BOB_ECOIN),
    ];
    let outputs = vec![
        Output::new(alice, [(fx.ecoin, amount(BOB_ECOIN))]),
        Output::new(bob, [(fx.energy, amount(ALICE_ENERGY))]),
    ];
    let mut tx = new_tx(&coins, outputs, vec![]);
    sign_one(
        &fx.t,
        &mut tx,
        0,
        SighashMode::SingleAnyoneCanPay,
        &fx.alice,
    );
    sign_one(&fx.t, &mut tx, 1, SighashMode::All, &fx.bob);
    accept(&mut fx.t, vec![tx]);
}

#[test]
fn t9_signatures_reject_tampered_signature() {
    let mut fx = fixture();
    let mut tx = alice_pays_bob(&fx, 10);
    tx.inputs[0].signature.0[7] ^= 1;
    let err = refuse_tx(&mut fx.t, tx);
    assert!(matches!(err, TxError::BadSignature { input: 0 }), "{err:?}");
}

#[test]
fn t9_signatures_reject_tx_changed_after_signing() {
    let mut fx = fixture();
    let mut tx = alice_pays_bob(&fx, 10);
    tx.outputs[0].address = fx.carol.address();
    let err = refuse_tx(&mut fx.t, tx);
    assert!(matches!(err, TxError::BadSignature { input: 0 }), "{err:?}");
}

#[test]
fn t9_signatures_reject_signature_for_another_chain() {
    let mut fx = fixture();
    let mut tx = alice_pays_bob(&fx, 10);
    let keys: Vec<&SecretKey> = tx.inputs.iter().map(|_| &fx.alice).collect();
    sighash::sign_all(&mut tx, &keys, &Hash256([7; 32]));
    let err = refuse_tx(&mut fx.t, tx);
    assert!(matches!(err, TxError::BadSignature { input: 0 }), "{err:?}");
}

#[test]
fn t9_signatures_reject_changed_ask_of_an_exchange() {
    let mut fx = fixture();
    let mut tx = swap(&fx);
    // Bob lowers what Alice asked for; her SINGLE|ANYONECANPAY signature covers output 0.
    tx.outputs[0].assets = vec![(fx.ecoin, amount(1))];
    let mut body = None;
    assert!(sighash::verify_input(&tx, 1, &fx.t.chain.id, &mut body));
    let err = refuse_tx(&mut fx.t, tx);
    assert!(matches!(err, TxError::BadSignature { input: 0 }), "{err:?}");
}

#[test]
fn t9_signatures_reject_reordered_exchange_pairs() {
    let mut fx = fixture();
    let mut tx = swap(&fx);
    tx.inputs.swap(0, 1);
    tx.outputs.swap(0, 1);
    let err = refuse_tx(&mut fx.t, tx);
    assert!(matches!(err, TxError::BadSignature { input: 0 }), "{err:?}");
}

// ================================================================ S1 inputs-exist

#[test]
fn s1_inputs_exist_accepts_output_created_earlier_in_the_block() {
    let mut fx = fixture();
    let pay = alice_pays_bob(&fx, 10);
    let mut spend = new_tx(
        &[pay.outpoint(0)],
        vec![Output::new(fx.alice.address(), [(fx.energy, amount(10))])],
        vec![],
    );
    sign_by(&fx.t, &mut spend, &fx.bob);
    accept(&mut fx.t, vec![pay, spend]);
    assert_eq!(
        fx.t.balance(&fx.alice.address(), &fx.energy).raw(),
        ALICE_ENERGY
    );
}

#[test]
fn s1_inputs_exist_rejects_unknown_outpoint() {
    let mut fx = fixture();
    let mut tx = alice_pays_bob(&fx, 10);
    let last = tx.inputs.len() - 1;
    let fake = OutPoint {
        txid: Hash256([9; 32]),
        vout: 0,
    };
    tx.inputs[last].prev = fake;
    sign_by(&fx.t, &mut tx, &fx.alice);
    let err = refuse_tx(&mut fx.t, tx);
    assert!(
        matches!(err, TxError::MissingInput { input, prev } if input as usize == last && prev == fake),
        "{err:?}"
    );
}

#[test]
fn s1_inputs_exist_rejects_coin_spent_in_an_earlier_block() {
    let mut fx = fixture();
    let first = alice_pays_bob(&fx, 10);
    let again = alice_pays_bob(&fx, 20);
    accept(&mut fx.t, vec![first]);
    let err = refuse_tx(&mut fx.t, again);
    assert!(matches!(err, TxError::MissingInput { .. }), "{err:?}");
}

#[test]
fn s1_inputs_exist_rejects_double_spend_within_a_block() {
    let mut fx = fixture();
    let first = alice_pays_bob(&fx, 10);
    let again = alice_pays_bob(&fx, 20);
    let (index, err) = refuse_txs(&mut fx.t, vec![first, again]);
    assert_eq!(index, 1);
    assert!(matches!(err, TxError::MissingInput { .. }), "{err:?}");
}

// ================================================================ S2 input-owner

#[test]
fn s2_input_owner_accepts_owner_key() {
    let mut fx = fixture();
    let tx = alice_pays_bob(&fx, 10);
    assert!(
        tx.inputs
            .iter()
            .all(|i| i.pubkey.address() == fx.alice.address())
    );
    accept(&mut fx.t, vec![tx]);
}

#[test]
fn s2_input_owner_rejects_key_of_another_address() {
    let mut fx = fixture();
    let mut tx = alice_pays_bob(&fx, 10);
    // Bob signs Alice's coins: the signatures are valid, the key is not the owner's.
    sign_by(&fx.t, &mut tx, &fx.bob);
    let err = refuse_tx(&mut fx.t, tx);
    assert!(matches!(err, TxError::WrongKey { input: 0 }), "{err:?}");
}

// ================================================================ S3 send-permission

#[test]
fn s3_send_permission_accepts_holder() {
    let mut fx = fixture();
    assert!(holds(&fx.t, &fx.alice.address(), g(Send)));
    let tx = alice_pays_bob(&fx, 10);
    accept(&mut fx.t, vec![tx]);
}

#[test]
fn s3_send_permission_rejects_address_without_send() {
    let mut fx = fixture();
    let carol = fx.carol.address();
    grant_now(&mut fx.t, &fx.admin, carol, &[g(Receive)]);
    pay_now(&mut fx.t, &fx.admin, carol, fx.energy, 10);
    let tx = fx.t.transfer(&fx.carol, fx.alice.address(), fx.energy, 5);
    let err = refuse_tx(&mut fx.t, tx);
    assert!(
        matches!(err, TxError::NoSendPermission { input: 0, address } if address == carol),
        "{err:?}"
    );
}

#[test]
fn s3_send_permission_accepts_anyone_when_anyone_can_send() {
    let mut fx = fixture_with(|p| p.anyone_can_send = true);
    let carol = fx.carol.address();
    grant_now(&mut fx.t, &fx.admin, carol, &[g(Receive)]);
    pay_now(&mut fx.t, &fx.admin, carol, fx.energy, 10);
    let tx = fx.t.transfer(&fx.carol, fx.alice.address(), fx.energy, 5);
    accept(&mut fx.t, vec![tx]);
    assert_eq!(fx.t.balance(&carol, &fx.energy).raw(), 5);
}

// ================================================================ S4 conservation

#[test]
fn s4_conservation_accepts_balanced_transfer() {
    let mut fx = fixture();
    let tx = alice_pays_bob(&fx, 10);
    accept(&mut fx.t, vec![tx]);
    let (alice, bob) = (fx.alice.address(), fx.bob.address());
    assert_eq!(fx.t.balance(&alice, &fx.energy).raw(), ALICE_ENERGY - 10);
    assert_eq!(fx.t.balance(&bob, &fx.energy).raw(), 10);
}

#[test]
fn s4_conservation_rejects_created_or_burnt_units() {
    let mut fx = fixture();
    for (paid, total) in [(11, ALICE_ENERGY + 1), (9, ALICE_ENERGY - 1)] {
        let mut tx = alice_pays_bob(&fx, 10);
        tx.outputs[0].assets = vec![(fx.energy, amount(paid))];
        sign_by(&fx.t, &mut tx, &fx.alice);
        let err = refuse_tx(&mut fx.t, tx);
        assert!(
            matches!(
                err,
                TxError::Unbalanced { asset, inputs: ALICE_ENERGY, outputs }
                    if asset == fx.energy && outputs == total
            ),
            "{err:?}"
        );
    }
}

#[test]
fn s4_conservation_rejects_output_sum_overflow() {
    let mut fx = fixture();
    let mut tx = alice_pays_bob(&fx, 10);
    let max = Output::new(fx.bob.address(), [(fx.energy, Amount::MAX)]);
    tx.outputs = vec![max.clone(), max];
    sign_by(&fx.t, &mut tx, &fx.alice);
    let err = refuse_tx(&mut fx.t, tx);
    assert!(matches!(err, TxError::AmountOverflow), "{err:?}");
}

#[test]
fn s4_conservation_rejects_issue_paying_more_than_its_quantity() {
    let mut fx = fixture();
    let mut tx =
        fx.t.issue(&fx.admin, fx.admin.address(), "solar", true, 1, 100, &[]);
    tx.outputs[0].assets = vec![(NEW_ASSET, amount(101))];
    sign_by(&fx.t, &mut tx, &fx.admin);
    let err = refuse_tx(&mut fx.t, tx);
    assert!(
        matches!(
            err,
            TxError::Unbalanced {
                asset: NEW_ASSET,
                inputs: 100,
                outputs: 101
            }
        ),
        "{err:?}"
    );
}

#[test]
fn s4_conservation_accepts_issue_more_adding_its_quantity() {
    let mut fx = fixture();
    let tx = fx.t.issue_more(&fx.admin, fx.bob.address(), fx.energy, 77);
    accept(&mut fx.t, vec![tx]);
    assert_eq!(fx.t.balance(&fx.bob.address(), &fx.energy).raw(), 77);
    let info = read::asset(&fx.t.state, &fx.energy).unwrap().unwrap();
    assert_eq!((info.total.raw(), info.issue_count), (1_000_077, 2));
}

// ================================================================ S5 receive-permission

#[test]
fn s5_receive_permission_accepts_holder() {
    let mut fx = fixture();
    assert!(holds(&fx.t, &fx.bob.address(), g(Receive)));
    let tx = alice_pays_bob(&fx, 10);
    accept(&mut fx.t, vec![tx]);
}

#[test]
fn s5_receive_permission_rejects_asset_output_to_non_holder() {
    let mut fx = fixture();
    let carol = fx.carol.address();
    let tx = fx.t.transfer(&fx.alice, carol, fx.energy, 10);
    let err = refuse_tx(&mut fx.t, tx);
    assert!(
        matches!(err, TxError::NoReceivePermission { vout: 0, address } if address == carol),
        "{err:?}"
    );
}

#[test]
fn s5_receive_permission_rejects_output_after_receive_is_revoked() {
    let mut fx = fixture();
    let bob = fx.bob.address();
    let revoke = fx.t.revoke(&fx.admin, bob, &[g(Receive)]);
    accept(&mut fx.t, vec![revoke]);
    let tx = alice_pays_bob(&fx, 10);
    let err = refuse_tx(&mut fx.t, tx);
    assert!(
        matches!(err, TxError::NoReceivePermission { vout: 0, address } if address == bob),
        "{err:?}"
    );
}

/// Carol, holding send only, spends her zero-value grant coin back to herself.
fn carol_spends_zero_coin_to_herself(fx: &mut Fx) -> Transaction {
    let carol = fx.carol.address();
    grant_now(&mut fx.t, &fx.admin, carol, &[g(Send)]);
    let mut tx = new_tx(&[zero_coin(&fx.t, &carol)], vec![zero_out(carol)], vec![]);
    sign_by(&fx.t, &mut tx, &fx.carol);
    tx
}

#[test]
fn s5_receive_permission_accepts_empty_output_when_anyone_can_receive_empty() {
    let mut fx = fixture();
    let tx = carol_spends_zero_coin_to_herself(&mut fx);
    accept(&mut fx.t, vec![tx]);
}

#[test]
fn s5_receive_permission_rejects_empty_output_unless_anyone_can_receive_empty() {
    let mut fx = fixture_with(|p| p.anyone_can_receive_empty = false);
    let tx = carol_spends_zero_coin_to_herself(&mut fx);
    let err = refuse_tx(&mut fx.t, tx);
    assert!(
        matches!(err, TxError::NoReceivePermission { vout: 0, address } if address == fx.carol.address()),
        "{err:?}"
    );
}

#[test]
fn s5_receive_permission_accepts_grant_output_to_non_holder() {
    let mut fx = fixture_with(|p| p.anyone_can_receive_empty = false);
    let carol = fx.carol.address();
    grant_now(&mut fx.t, &fx.admin, carol, &[g(Connect)]);
    assert!(!holds(&fx.t, &carol, g(Receive)));
    assert_eq!(fx.t.utxos_of(&carol).len(), 1);
}

// ================================================================ S6 zero-value-outputs

#[test]
fn s6_zero_value_outputs_accepts_change_and_grant_outputs() {
    let mut fx = fixture();
    let alice = fx.alice.address();
    // Change to an input's address.
    let mut tx = new_tx(&[zero_coin(&fx.t, &alice)], vec![zero_out(alice)], vec![]);
    sign_by(&fx.t, &mut tx, &fx.alice);
    accept(&mut fx.t, vec![tx]);
    // A grant output.
    let tx = grant_to_carol(&fx);
    assert!(tx.outputs[0].is_zero_value());
    accept(&mut fx.t, vec![tx]);
}

#[test]
fn s6_zero_value_outputs_rejects_empty_output_to_a_third_party() {
    let mut fx = fixture();
    let mut tx = alice_pays_bob(&fx, 10);
    tx.outputs.push(zero_out(fx.bob.address()));
    sign_by(&fx.t, &mut tx, &fx.alice);
    let vout = tx.outputs.len() as u32 - 1;
    let err = refuse_tx(&mut fx.t, tx);
    assert!(
        matches!(err, TxError::ZeroValueOutputNotAllowed { vout: v } if v == vout),
        "{err:?}"
    );
}

// ================================================================ S7 issue

#[test]
fn s7_issue_accepts_issue_holder_and_gives_asset_permissions() {
    let mut fx = fixture();
    let alice = fx.alice.address();
    grant_now(&mut fx.t, &fx.admin, alice, &[g(Issue)]);
    let tx = fx.t.issue(&fx.alice, alice, "solar", true, 10, 500, &[]);
    let txid = tx.txid();
    accept(&mut fx.t, vec![tx]);
    let solar = fx.t.asset_id("SOLAR");
    assert_eq!(solar, txid);
    assert_eq!(fx.t.balance(&alice, &solar).raw(), 500);
    for p in [AssetPerm::Issue, AssetPerm::Admin] {
        assert!(holds(&fx.t, &alice, Permission::Asset(solar, p)));
    }
}

#[test]
fn s7_issue_rejects_issuer_without_issue_permission() {
    let mut fx = fixture();
    let alice = fx.alice.address();
    let tx = fx.t.issue(&fx.alice, alice, "solar", true, 1, 5, &[]);
    let err = refuse_tx(&mut fx.t, tx);
    assert!(matches!(err, TxError::NoIssuePermission), "{err:?}");
}

/// Alice (input 0, ALL) and the admin (input 1, SINGLE|ANYONECANPAY over its own coin returned to
/// itself) in one transaction carrying `op`; output 0 is `first`.
fn admin_signs_single_only(fx: &Fx, first: Output, op: Op) -> Transaction {
    let admin = fx.admin.address();
    let (admin_coin, held) = any_coin(&fx.t, &admin);
    let alice_coin = zero_coin(&fx.t, &fx.alice.address());
    let outputs = vec![first, Output::new(admin, held.assets)];
    let mut tx = new_tx(&[alice_coin, admin_coin], outputs, vec![op]);
    sign_one(
        &fx.t,
        &mut tx,
        1,
        SighashMode::SingleAnyoneCanPay,
        &fx.admin,
    );
    sign_one(&fx.t, &mut tx, 0, SighashMode::All, &fx.alice);
    tx
}

#[test]
fn s7_issue_rejects_issuer_signing_single_anyonecanpay_only() {
    let mut fx = fixture();
    let issue =
        fx.t.issue(&fx.admin, fx.alice.address(), "solar", true, 1, 5, &[]);
    let (first, op) = (issue.outputs[0].clone(), issue.ops[0].clone());
    let tx = admin_signs_single_only(&fx, first, op);
    let err = refuse_tx(&mut fx.t, tx);
    assert!(matches!(err, TxError::NoIssuePermission), "{err:?}");
}

#[test]
fn s7_issue_rejects_name_in_use_ignoring_case() {
    let mut fx = fixture();
    let tx =
        fx.t.issue(&fx.admin, fx.admin.address(), "ENERGY", true, 1, 5, &[]);
    let err = refuse_tx(&mut fx.t, tx);
    assert!(
        matches!(&err, TxError::DuplicateAssetName { name } if name == "ENERGY"),
        "{err:?}"
    );
}

#[test]
fn s7_issue_rejects_name_issued_earlier_in_the_same_block() {
    let mut fx = fixture();
    let alice = fx.alice.address();
    grant_now(&mut fx.t, &fx.admin, alice, &[g(Issue)]);
    let first =
        fx.t.issue(&fx.admin, fx.admin.address(), "solar", true, 1, 5, &[]);
    let second = fx.t.issue(&fx.alice, alice, "Solar", true, 1, 5, &[]);
    let (index, err) = refuse_txs(&mut fx.t, vec![first, second]);
    assert_eq!(index, 1);
    assert!(
        matches!(&err, TxError::DuplicateAssetName { name } if name == "Solar"),
        "{err:?}"
    );
}

#[test]
fn s7_issue_accepts_issue_more_by_asset_issue_holder_without_global_issue() {
    let mut fx = fixture();
    let alice = fx.alice.address();
    let asset_issue = Permission::Asset(fx.energy, AssetPerm::Issue);
    grant_now(&mut fx.t, &fx.admin, alice, &[asset_issue]);
    assert!(!holds(&fx.t, &alice, g(Issue)));
    let tx = fx.t.issue_more(&fx.alice, alice, fx.energy, 500);
    accept(&mut fx.t, vec![tx]);
    assert_eq!(fx.t.balance(&alice, &fx.energy).raw(), ALICE_ENERGY + 500);
    let record = read::asset_issue(&fx.t.state, &fx.energy, &1)
        .unwrap()
        .unwrap();
    assert_eq!(record.issuers, vec![alice]);
}

#[test]
fn s7_issue_rejects_issue_more_without_asset_issue() {
    let mut fx = fixture();
    let bob = fx.bob.address();
    let tx = fx.t.issue_more(&fx.bob, bob, fx.energy, 5);
    let err = refuse_tx(&mut fx.t, tx);
    assert!(
        matches!(err, TxError::NoAssetIssuePermission { asset } if asset == fx.energy),
        "{err:?}"
    );
}

#[test]
fn s7_issue_rejects_issue_more_of_unknown_asset() {
    let mut fx = fixture();
    let unknown = Hash256([9; 32]);
    let tx = fx.t.issue_more(&fx.admin, fx.admin.address(), unknown, 5);
    let err = refuse_tx(&mut fx.t, tx);
    assert!(
        matches!(err, TxError::UnknownAsset { asset } if asset == unknown),
        "{err:?}"
    );
}

#[test]
fn s7_issue_rejects_issue_more_of_closed_asset() {
    let mut fx = fixture();
    let closed = issue_now(&mut fx.t, &fx.admin, "closed", false, 10);
    let tx = fx.t.issue_more(&fx.admin, fx.admin.address(), closed, 5);
    let err = refuse_tx(&mut fx.t, tx);
    assert!(
        matches!(err, TxError::AssetClosed { asset } if asset == closed),
        "{err:?}"
    );
}

#[test]
fn s7_issue_accepts_supply_up_to_the_maximum_and_rejects_beyond() {
    let mut fx = fixture();
    // Bob holds the first issue, so the admin's follow-ons carry only the new units.
    let tx = fx.t.issue(
        &fx.admin,
        fx.bob.address(),
        "big",
        true,
        1,
        MAX_AMOUNT - 10,
        &[],
    );
    accept(&mut fx.t, vec![tx]);
    let big = fx.t.asset_id("big");
    let over = fx.t.issue_more(&fx.admin, fx.admin.address(), big, 11);
    let err = refuse_tx(&mut fx.t, over);
    assert!(
        matches!(err, TxError::SupplyOverflow { asset } if asset == big),
        "{err:?}"
    );
    let exact = fx.t.issue_more(&fx.admin, fx.admin.address(), big, 10);
    accept(&mut fx.t, vec![exact]);
    let info = read::asset(&fx.t.state, &big).unwrap().unwrap();
    assert_eq!(info.total, Amount::MAX);
}

/// The admin revokes `revoked` from itself (output 0) and, later in the same op list, carries
/// `issue` paying `paid` to itself (output 1).
fn revoke_own_then_issue(fx: &Fx, revoked: Permission, issue: Op, paid: Output) -> Transaction {
    let admin = fx.admin.address();
    let revoke = Op::Revoke {
        vout: 0,
        permissions: vec![revoked],
    };
    fx.t.build(
        &fx.admin,
        vec![zero_out(admin), paid],
        vec![],
        vec![revoke, issue],
    )
}

#[test]
fn s7_issue_is_judged_before_the_same_tx_revokes_the_issuers_issue() {
    let mut fx = fixture();
    let admin = fx.admin.address();
    let op = Op::IssueAsset(wattle_ledger::tx::IssueAsset {
        name: "solar".to_string(),
        open: true,
        multiple: 1,
        quantity: amount(100),
        fields: Default::default(),
    });
    let paid = Output::new(admin, [(NEW_ASSET, amount(100))]);
    let tx = revoke_own_then_issue(&fx, g(Issue), op, paid);
    // S7 holds against the state the block starts from, so the block must apply: validation and
    // application may not disagree about a transaction.
    let ctx = wattle_ledger::TxContext {
        chain: &fx.t.chain,
        height: fx.t.next_height(),
        offset: 0,
        signatures_checked: false,
    };
    wattle_ledger::validate_tx(&fx.t.state, &tx, &ctx).expect("S1-S8 hold");
    // The mempool path too: apply_tx validates, then writes without failing.
    let mut overlay = wattle_ledger::Overlay::new(&fx.t.state);
    wattle_ledger::apply_tx(&mut overlay, &tx, &ctx).expect("apply_tx agrees with validate_tx");
    let txid = tx.txid();
    accept(&mut fx.t, vec![tx]);
    let info = read::asset(&fx.t.state, &txid).unwrap().unwrap();
    assert_eq!(info.issuer, admin);
    assert!(!holds(&fx.t, &admin, g(Issue)));
}

#[test]
fn s7_issue_more_records_issuers_as_judged_before_the_same_tx_revokes() {
    let mut fx = fixture();
    let admin = fx.admin.address();
    let op = Op::IssueMore {
        asset: fx.energy,
        quantity: amount(5),
        fields: Default::default(),
    };
    let paid = Output::new(admin, [(fx.energy, amount(5))]);
    let asset_issue = Permission::Asset(fx.energy, AssetPerm::Issue);
    let tx = revoke_own_then_issue(&fx, asset_issue, op, paid);
    accept(&mut fx.t, vec![tx]);
    let record = read::asset_issue(&fx.t.state, &fx.energy, &1)
        .unwrap()
        .unwrap();
    assert_eq!(record.issuers, vec![admin]);
    assert!(!holds(&fx.t, &admin, asset_issue));
}

// ================================================================ S8 grant-authority

#[test]
fn s8_grant_authority_accepts_admin_granting_any_global_permission() {
    let mut fx = fixture();
    let carol = fx.carol.address();
    let all: Vec<Permission> = perms(&GlobalPerm::ALL);
    grant_now(&mut fx.t, &fx.admin, carol, &all);
    for p in all {
        assert!(holds(&fx.t, &carol, p), "{p:?}");
    }
}

#[test]
fn s8_grant_authority_accepts_activate_granting_connect_send_receive() {
    let mut fx = fixture();
    let (carol, dave) = (fx.carol.address(), fx.dave.address());
    grant_now(&mut fx.t, &fx.admin, dave, &perms(&[Send, Activate]));
    grant_now(&mut fx.t, &fx.dave, carol, &csr());
    assert!(holds(&fx.t, &carol, g(Send)));
    let revoke = fx.t.revoke(&fx.dave, carol, &[g(Send)]);
    accept(&mut fx.t, vec![revoke]);
    assert!(!holds(&fx.t, &carol, g(Send)));
}

#[test]
fn s8_grant_authority_rejects_activate_granting_mine_admin_or_issue() {
    let mut fx = fixture();
    let (carol, dave) = (fx.carol.address(), fx.dave.address());
    grant_now(&mut fx.t, &fx.admin, dave, &perms(&[Send, Activate]));
    for p in [Mine, Admin, Issue, Activate] {
        let tx = fx.t.grant(&fx.dave, carol, &[g(p)]);
        let err = refuse_tx(&mut fx.t, tx);
        assert!(
            matches!(err, TxError::NoGrantAuthority { permission } if permission == g(p)),
            "{err:?}"
        );
    }
}

#[test]
fn s8_grant_authority_rejects_grant_and_revoke_by_plain_address() {
    let mut fx = fixture();
    let carol = fx.carol.address();
    let tx = fx.t.grant(&fx.alice, carol, &[g(Send)]);
    let err = refuse_tx(&mut fx.t, tx);
    assert!(
        matches!(err, TxError::NoGrantAuthority { permission } if permission == g(Send)),
        "{err:?}"
    );
    let tx = fx.t.revoke(&fx.alice, fx.bob.address(), &[g(Receive)]);
    let err = refuse_tx(&mut fx.t, tx);
    assert!(
        matches!(err, TxError::NoGrantAuthority { permission } if permission == g(Receive)),
        "{err:?}"
    );
}

#[test]
fn s8_grant_authority_rejects_authority_signing_single_anyonecanpay_only() {
    let mut fx = fixture();
    let grant = grant_to_carol(&fx);
    let (first, op) = (grant.outputs[0].clone(), grant.ops[0].clone());
    let tx = admin_signs_single_only(&fx, first, op);
    let err = refuse_tx(&mut fx.t, tx);
    assert!(
        matches!(err, TxError::NoGrantAuthority { permission } if permission == g(Connect)),
        "{err:?}"
    );
}

#[test]
fn s8_grant_authority_accepts_asset_admin_granting_asset_permissions() {
    let mut fx = fixture();
    let (alice, bob) = (fx.alice.address(), fx.bob.address());
    let asset_admin = Permission::Asset(fx.energy, AssetPerm::Admin);
    let asset_issue = Permission::Asset(fx.energy, AssetPerm::Issue);
    // The issuer (the admin) holds energy.admin; Alice gets it without any global authority.
    grant_now(&mut fx.t, &fx.admin, alice, &[asset_admin]);
    grant_now(&mut fx.t, &fx.alice, bob, &[asset_issue]);
    assert!(holds(&fx.t, &bob, asset_issue));
    assert!(!holds(&fx.t, &alice, g(Admin)));
}

#[test]
fn s8_grant_authority_rejects_global_admin_without_asset_admin() {
    let mut fx = fixture();
    let alice = fx.alice.address();
    grant_now(&mut fx.t, &fx.admin, alice, &[g(Issue)]);
    let solar = issue_now(&mut fx.t, &fx.alice, "solar", true, 5);
    let perm = Permission::Asset(solar, AssetPerm::Issue);
    let tx = fx.t.grant(&fx.admin, fx.bob.address(), &[perm]);
    let err = refuse_tx(&mut fx.t, tx);
    assert!(
        matches!(err, TxError::NoGrantAuthority { permission } if permission == perm),
        "{err:?}"
    );
}

#[test]
fn s8_grant_authority_rejects_permission_of_unknown_asset() {
    let mut fx = fixture();
    let unknown = Hash256([9; 32]);
    let perm = Permission::Asset(unknown, AssetPerm::Issue);
    let tx = fx.t.grant(&fx.admin, fx.bob.address(), &[perm]);
    let err = refuse_tx(&mut fx.t, tx);
    assert!(
        matches!(err, TxError::UnknownAsset { asset } if asset == unknown),
        "{err:?}"
    );
}

// ================================================================ admin consensus (MULTICHAIN.md §3.5)

fn admin_perms() -> Vec<Permission> {
    perms(&[Connect, Send, Receive, Admin])
}

fn revoke_now(t: &mut TestChain, from: &SecretKey, to: Address, perms: &[Permission]) {
    let tx = t.revoke(from, to, perms);
    accept(t, vec![tx]);
}

/// A chain whose setup phase is exactly the blocks making `grants` (one block each, by the genesis
/// admin `key(0)`, to `key(n)`): the next block is the first that needs admin consensus.
fn chain_after_setup(
    grants: &[(u64, Vec<Permission>)],
    tweak: impl FnOnce(&mut ChainParams),
) -> TestChain {
    let mut params = ChainParams::new("energybc");
    params.setup_first_blocks = grants.len() as u32 + 1;
    tweak(&mut params);
    let mut t = TestChain::with_params(params);
    let admin = t.admin.clone();
    for (n, list) in grants {
        grant_now(&mut t, &admin, key(*n).address(), list);
    }
    assert_eq!(t.next_height(), t.chain.params.setup_first_blocks);
    t
}

fn all_fractions_one(p: &mut ChainParams) {
    p.admin_consensus_admin = FRACTION_ONE;
    p.admin_consensus_mine = FRACTION_ONE;
    p.admin_consensus_activate = FRACTION_ONE;
}

fn vote(admin: &SecretKey, start: u32, end: u32) -> Vote {
    Vote {
        admin: admin.address(),
        start,
        end,
    }
}

#[test]
fn consensus_one_admin_is_enough_during_setup() {
    let mut params = ChainParams::new("energybc");
    all_fractions_one(&mut params);
    let mut t = TestChain::with_params(params);
    let a0 = t.admin.clone();
    grant_now(&mut t, &a0, key(1).address(), &admin_perms());
    assert!(t.next_height() < t.chain.params.setup_first_blocks);
    let miner = key(5).address();
    grant_now(&mut t, &a0, miner, &perms(&[Mine, Admin, Activate]));
    for p in [Mine, Admin, Activate] {
        let rec = perm_record(&t, &miner, g(p)).expect("granted at once");
        assert_eq!((rec.start, rec.end), (0, NO_END));
        assert_eq!(rec.admins, vec![a0.address()]);
        assert_eq!(votes(&t, &miner, p), None);
    }
}

#[test]
fn consensus_mine_grant_stays_pending_until_enough_admins_vote() {
    let mut t = chain_after_setup(&[(1, admin_perms())], |p| {
        p.admin_consensus_mine = FRACTION_ONE
    });
    let (a0, a1, miner) = (key(0), key(1), key(5));
    grant_now(&mut t, &a0, miner.address(), &[g(Mine)]);
    assert_eq!(perm_record(&t, &miner.address(), g(Mine)), None);
    assert_eq!(
        votes(&t, &miner.address(), Mine),
        Some(vec![vote(&a0, 0, NO_END)])
    );
    // Pending means not a miner yet.
    let early = t.block_by(&miner, vec![]);
    let err = refuse_block(&mut t, &early);
    assert!(
        matches!(err, BlockError::MinerNotPermitted { address } if address == miner.address()),
        "{err:?}"
    );
    grant_now(&mut t, &a1, miner.address(), &[g(Mine)]);
    let rec = perm_record(&t, &miner.address(), g(Mine)).expect("consensus reached");
    assert_eq!((rec.start, rec.end), (0, NO_END));
    assert_eq!(rec.admins, vec![a0.address(), a1.address()]);
    assert_eq!(
        votes(&t, &miner.address(), Mine),
        None,
        "votes are consumed"
    );
    let block = t.block_by(&miner, vec![]);
    accept_block(&mut t, &block);
}

#[test]
fn consensus_admin_grant_needs_two_of_three_admins() {
    let mut t = chain_after_setup(&[(1, admin_perms()), (2, admin_perms())], |_| {});
    let newcomer = key(6).address();
    grant_now(&mut t, &key(2), newcomer, &admin_perms());
    // connect/send/receive need one admin; admin waits for ceil(3 × 0.5) = 2 votes.
    assert!(holds(&t, &newcomer, g(Send)));
    assert!(!holds(&t, &newcomer, g(Admin)));
    assert_eq!(
        votes(&t, &newcomer, Admin),
        Some(vec![vote(&key(2), 0, NO_END)])
    );
    grant_now(&mut t, &key(0), newcomer, &[g(Admin)]);
    let rec = perm_record(&t, &newcomer, g(Admin)).expect("consensus reached");
    assert_eq!(rec.admins, vec![key(2).address(), key(0).address()]);
    assert!(holds(&t, &newcomer, g(Admin)));
}

#[test]
fn consensus_votes_for_different_ranges_do_not_add_up() {
    let mut t = chain_after_setup(&[(1, admin_perms())], |p| {
        p.admin_consensus_mine = FRACTION_ONE
    });
    let (a0, a1, miner) = (key(0), key(1), key(5).address());
    grant_now(&mut t, &a0, miner, &[g(Mine)]);
    let other = t.grant_range(&a1, miner, &[g(Mine)], 0, 1000);
    accept(&mut t, vec![other]);
    assert_eq!(perm_record(&t, &miner, g(Mine)), None);
    assert_eq!(
        votes(&t, &miner, Mine),
        Some(vec![vote(&a0, 0, NO_END), vote(&a1, 0, 1000)])
    );
    // key(1) changes its vote to the same range: it replaces its earlier one.
    grant_now(&mut t, &a1, miner, &[g(Mine)]);
    let rec = perm_record(&t, &miner, g(Mine)).expect("consensus reached");
    assert_eq!((rec.start, rec.end), (0, NO_END));
}

#[test]
fn consensus_admins_co_signing_one_tx_reach_it_at_once() {
    let mut t = chain_after_setup(&[(1, admin_perms())], |p| {
        p.admin_consensus_mine = FRACTION_ONE
    });
    let (a0, a1, miner) = (key(0), key(1), key(5).address());
    let coins = [zero_coin(&t, &a0.address()), zero_coin(&t, &a1.address())];
    let outputs = vec![
        zero_out(miner),
        zero_out(a0.address()),
        zero_out(a1.address()),
    ];
    let mut tx = new_tx(&coins, outputs, vec![grant_op(0, vec![g(Mine)], 0, NO_END)]);
    sighash::sign_all(&mut tx, &[&a0, &a1], &t.chain.id);
    accept(&mut t, vec![tx]);
    let rec = perm_record(&t, &miner, g(Mine)).expect("consensus reached");
    assert_eq!(rec.admins, vec![a0.address(), a1.address()]);
}

#[test]
fn consensus_votes_of_former_admins_do_not_count() {
    let mut t = chain_after_setup(&[(1, admin_perms()), (2, admin_perms())], |p| {
        p.admin_consensus_mine = FRACTION_ONE
    });
    let (a0, a1, a2, miner) = (key(0), key(1), key(2), key(5).address());
    grant_now(&mut t, &a1, miner, &[g(Mine)]);
    // Removing key(1) as admin needs 2 of 3 votes too.
    revoke_now(&mut t, &a0, a1.address(), &[g(Admin)]);
    assert!(holds(&t, &a1.address(), g(Admin)));
    assert_eq!(votes(&t, &a1.address(), Admin), Some(vec![vote(&a0, 0, 0)]));
    revoke_now(&mut t, &a2, a1.address(), &[g(Admin)]);
    assert!(!holds(&t, &a1.address(), g(Admin)));
    // Two admins remain and both are needed: key(1)'s standing vote no longer counts.
    grant_now(&mut t, &a0, miner, &[g(Mine)]);
    assert_eq!(perm_record(&t, &miner, g(Mine)), None);
    assert_eq!(
        votes(&t, &miner, Mine),
        Some(vec![vote(&a1, 0, NO_END), vote(&a0, 0, NO_END)])
    );
    grant_now(&mut t, &a2, miner, &[g(Mine)]);
    let rec = perm_record(&t, &miner, g(Mine)).expect("consensus reached");
    assert_eq!(rec.admins, vec![a0.address(), a2.address()]);
}

#[test]
fn consensus_revoke_of_mine_stays_pending_until_enough_admins_agree() {
    let mut t = chain_after_setup(&[(1, admin_perms()), (5, vec![g(Mine)])], |p| {
        p.admin_consensus_mine = FRACTION_ONE
    });
    let (a0, a1, miner) = (key(0), key(1), key(5));
    revoke_now(&mut t, &a0, miner.address(), &[g(Mine)]);
    assert!(holds(&t, &miner.address(), g(Mine)));
    let block = t.block_by(&miner, vec![]);
    accept_block(&mut t, &block);
    revoke_now(&mut t, &a1, miner.address(), &[g(Mine)]);
    let rec = perm_record(&t, &miner.address(), g(Mine)).unwrap();
    assert_eq!((rec.start, rec.end), (0, 0));
    let block = t.block_by(&miner, vec![]);
    let err = refuse_block(&mut t, &block);
    assert!(
        matches!(err, BlockError::MinerNotPermitted { address } if address == miner.address()),
        "{err:?}"
    );
}

#[test]
fn consensus_revoke_of_send_takes_effect_at_once() {
    let mut t = chain_after_setup(&[(1, admin_perms()), (3, csr())], all_fractions_one);
    let user = key(3);
    revoke_now(&mut t, &key(0), user.address(), &[g(Send)]);
    assert!(!holds(&t, &user.address(), g(Send)));
    let mut tx = new_tx(
        &[zero_coin(&t, &user.address())],
        vec![zero_out(user.address())],
        vec![],
    );
    sign_by(&t, &mut tx, &user);
    let err = refuse_tx(&mut t, tx);
    assert!(
        matches!(err, TxError::NoSendPermission { input: 0, address } if address == user.address()),
        "{err:?}"
    );
}

#[test]
fn consensus_activate_holder_grants_connect_send_receive_alone_after_setup() {
    let mut t = chain_after_setup(
        &[(1, admin_perms()), (3, perms(&[Send, Activate]))],
        all_fractions_one,
    );
    let target = key(7).address();
    grant_now(&mut t, &key(3), target, &csr());
    for p in csr() {
        assert!(holds(&t, &target, p), "{p:?}");
    }
    let tx = t.grant(&key(3), target, &[g(Mine)]);
    let err = refuse_tx(&mut t, tx);
    assert!(
        matches!(err, TxError::NoGrantAuthority { permission } if permission == g(Mine)),
        "{err:?}"
    );
}

#[test]
fn consensus_activate_grant_stays_pending_after_setup() {
    let mut t = chain_after_setup(&[(1, admin_perms())], all_fractions_one);
    let target = key(7).address();
    grant_now(&mut t, &key(0), target, &[g(Activate)]);
    assert_eq!(perm_record(&t, &target, g(Activate)), None);
    assert_eq!(
        votes(&t, &target, Activate),
        Some(vec![vote(&key(0), 0, NO_END)])
    );
    grant_now(&mut t, &key(1), target, &[g(Activate)]);
    assert!(holds(&t, &target, g(Activate)));
}

#[test]
fn consensus_asset_permissions_need_one_asset_admin_after_setup() {
    let mut t = chain_after_setup(&[(1, admin_perms())], all_fractions_one);
    let a0 = key(0);
    let solar = issue_now(&mut t, &a0, "solar", true, 5);
    let perm = Permission::Asset(solar, AssetPerm::Issue);
    grant_now(&mut t, &a0, key(1).address(), &[perm]);
    let rec = perm_record(&t, &key(1).address(), perm).expect("granted at once");
    assert_eq!(rec.admins, vec![a0.address()]);
    // key(1) is a global admin but not solar.admin: it cannot pass the permission on.
    let tx = t.grant(&key(1), key(7).address(), &[perm]);
    let err = refuse_tx(&mut t, tx);
    assert!(
        matches!(err, TxError::NoGrantAuthority { permission } if permission == perm),
        "{err:?}"
    );
}

// ================================================================ permission ranges

/// `owner` spends its first zero-value coin back to itself.
fn spend_zero_coin(t: &TestChain, owner: &SecretKey) -> Transaction {
    let a = owner.address();
    let mut tx = new_tx(&[zero_coin(t, &a)], vec![zero_out(a)], vec![]);
    sign_by(t, &mut tx, owner);
    tx
}

#[test]
fn ranges_send_is_held_from_start_until_before_end() {
    let mut fx = fixture();
    let carol = fx.carol.address();
    let h = fx.t.next_height();
    let grant = fx.t.grant_range(&fx.admin, carol, &[g(Send)], h + 2, h + 4);
    accept(&mut fx.t, vec![grant]);
    let refused = |fx: &mut Fx| {
        let tx = spend_zero_coin(&fx.t, &fx.carol);
        let err = refuse_tx(&mut fx.t, tx);
        assert!(
            matches!(err, TxError::NoSendPermission { input: 0, address } if address == carol),
            "{err:?}"
        );
    };
    assert_eq!(fx.t.next_height(), h + 1);
    refused(&mut fx);
    accept(&mut fx.t, vec![]);
    for _ in [h + 2, h + 3] {
        let tx = spend_zero_coin(&fx.t, &fx.carol);
        accept(&mut fx.t, vec![tx]);
    }
    assert_eq!(fx.t.next_height(), h + 4);
    refused(&mut fx);
}

// ================================================================ permissions within one block

#[test]
fn same_block_tx_may_use_permission_granted_by_an_earlier_tx() {
    let mut fx = fixture();
    let carol = fx.carol.address();
    let grant = fx.t.grant(&fx.admin, carol, &[g(Send)]);
    let mut spend = new_tx(&[grant.outpoint(0)], vec![zero_out(carol)], vec![]);
    sign_by(&fx.t, &mut spend, &fx.carol);
    accept(&mut fx.t, vec![grant, spend]);
}

#[test]
fn same_block_permission_granted_by_a_later_tx_does_not_count() {
    let mut fx = fixture();
    let carol = fx.carol.address();
    grant_now(&mut fx.t, &fx.admin, carol, &[g(Receive)]);
    let spend = spend_zero_coin(&fx.t, &fx.carol);
    let grant = fx.t.grant(&fx.admin, carol, &[g(Send)]);
    let (index, err) = refuse_txs(&mut fx.t, vec![spend.clone(), grant.clone()]);
    assert_eq!(index, 0);
    assert!(
        matches!(err, TxError::NoSendPermission { input: 0, address } if address == carol),
        "{err:?}"
    );
    accept(&mut fx.t, vec![grant, spend]);
}

#[test]
fn same_block_issue_may_use_issue_granted_by_an_earlier_tx() {
    let mut fx = fixture();
    let alice = fx.alice.address();
    let grant = fx.t.grant(&fx.admin, alice, &[g(Issue)]);
    let issue = fx.t.issue(&fx.alice, alice, "solar", true, 1, 5, &[]);
    accept(&mut fx.t, vec![grant, issue]);
    assert_eq!(fx.t.balance(&alice, &fx.t.asset_id("solar")).raw(), 5);
}

// ================================================================ B1 version/size

#[test]
fn b1_version_size_accepts_version_1_block_at_the_size_limit() {
    let mut fx = fixture_with(|p| {
        p.maximum_block_size = 5000;
        p.max_std_tx_size = 5000;
    });
    let block = largest_block_within(&fx, 5000);
    assert_eq!(block.header.version, 1);
    accept_block(&mut fx.t, &block);
}

#[test]
fn b1_version_size_rejects_block_over_the_size_limit() {
    let mut fx = fixture_with(|p| {
        p.maximum_block_size = 5000;
        p.max_std_tx_size = 5000;
    });
    let fits = largest_block_within(&fx, 5000);
    let block = padded_block(&fx, fits.txs[0].outputs.len() + 1);
    let size = codec::encoded_len(&block);
    assert!(
        codec::encoded_len(&block.txs[0]) <= 5000,
        "only the block is too large"
    );
    let err = refuse_block(&mut fx.t, &block);
    assert!(
        matches!(err, BlockError::TooLarge { size: s, limit: 5000 } if s == size),
        "{err:?}"
    );
}

/// A block whose one transaction has Alice spend her zero-value coin into `outputs` zero-value
/// outputs to herself.
fn padded_block(fx: &Fx, outputs: usize) -> Block {
    let alice = fx.alice.address();
    let coin = zero_coin(&fx.t, &alice);
    let mut tx = new_tx(&[coin], vec![zero_out(alice); outputs], vec![]);
    sign_by(&fx.t, &mut tx, &fx.alice);
    fx.t.block(vec![tx])
}

/// The `padded_block` with the most outputs that still encodes within `limit` bytes.
fn largest_block_within(fx: &Fx, limit: usize) -> Block {
    let mut best = padded_block(fx, 1);
    for n in 2.. {
        let next = padded_block(fx, n);
        if codec::encoded_len(&next) > limit {
            return best;
        }
        best = next;
    }
    unreachable!("the loop returns once the block is too large")
}

#[test]
fn b1_version_size_rejects_other_block_versions() {
    let mut fx = fixture();
    let mut block = fx.t.block(vec![]);
    block.header.version = 2;
    block.header.sign(&fx.admin, &fx.t.chain.id);
    let err = refuse_block(&mut fx.t, &block);
    assert!(matches!(err, BlockError::BadVersion { got: 2 }), "{err:?}");
}

// ================================================================ B2 parent

#[test]
fn b2_parent_accepts_block_on_the_tip_at_the_next_height() {
    let mut fx = fixture();
    let tip = fx.t.tip();
    let block = fx.t.block(vec![]);
    assert_eq!(
        (block.header.prev, block.header.height),
        (tip.id, tip.height + 1)
    );
    accept_block(&mut fx.t, &block);
    assert_eq!(fx.t.tip().id, block.header.id(&fx.t.chain.id));
}

#[test]
fn b2_parent_rejects_unknown_or_stale_parent() {
    let mut fx = fixture();
    let tip = fx.t.tip();
    let stale = fx.t.block(vec![]);
    let orphan = Block::build(
        Hash256([1; 32]),
        tip.height + 1,
        fx.t.next_time_ms,
        vec![],
        &fx.admin,
        &fx.t.chain.id,
    );
    let err = refuse_block(&mut fx.t, &orphan);
    assert!(
        matches!(err, BlockError::WrongParent { expected, got } if expected == tip.id && got == Hash256([1; 32])),
        "{err:?}"
    );
    accept(&mut fx.t, vec![]);
    let err = refuse_block(&mut fx.t, &stale);
    assert!(
        matches!(err, BlockError::WrongParent { got, .. } if got == tip.id),
        "{err:?}"
    );
}

#[test]
fn b2_parent_rejects_wrong_height() {
    let mut fx = fixture();
    let tip = fx.t.tip();
    for height in [tip.height, tip.height + 2] {
        let block = Block::build(
            tip.id,
            height,
            fx.t.next_time_ms,
            vec![],
            &fx.admin,
            &fx.t.chain.id,
        );
        let err = refuse_block(&mut fx.t, &block);
        assert!(
            matches!(err, BlockError::WrongHeight { expected, got } if expected == tip.height + 1 && got == height),
            "{err:?}"
        );
    }
}

// ================================================================ B3 timestamp

fn block_at_time(fx: &Fx, timestamp_ms: u64) -> Block {
    let tip = fx.t.tip();
    Block::build(
        tip.id,
        tip.height + 1,
        timestamp_ms,
        vec![],
        &fx.admin,
        &fx.t.chain.id,
    )
}

#[test]
fn b3_timestamp_accepts_one_millisecond_after_parent() {
    let mut fx = fixture();
    let parent = fx.t.tip().timestamp_ms;
    let block = block_at_time(&fx, parent + 1);
    accept_block(&mut fx.t, &block);
    assert_eq!(fx.t.tip().timestamp_ms, parent + 1);
}

#[test]
fn b3_timestamp_rejects_time_not_after_parent() {
    let mut fx = fixture();
    let parent = fx.t.tip().timestamp_ms;
    for ts in [parent, parent - 1, 0] {
        let block = block_at_time(&fx, ts);
        let err = refuse_block(&mut fx.t, &block);
        assert!(
            matches!(err, BlockError::TimestampNotIncreasing { parent: p, got } if p == parent && got == ts),
            "{err:?}"
        );
    }
}

// ================================================================ B4 merkle

/// Two independent transactions: Alice pays Bob energy, Bob pays Alice ecoin.
fn two_independent_txs(fx: &Fx) -> Vec<Transaction> {
    vec![
        alice_pays_bob(fx, 10),
        fx.t.transfer(&fx.bob, fx.alice.address(), fx.ecoin, 5),
    ]
}

#[test]
fn b4_merkle_accepts_header_committing_to_the_transactions() {
    let mut fx = fixture();
    let block = fx.t.block(two_independent_txs(&fx));
    assert_eq!(block.header.merkle_root, block.compute_merkle_root());
    accept_block(&mut fx.t, &block);
}

#[test]
fn b4_merkle_rejects_root_mismatch() {
    let mut fx = fixture();
    let mut wrong_root = fx.t.block(two_independent_txs(&fx));
    wrong_root.header.merkle_root = Hash256::ZERO;
    wrong_root.header.sign(&fx.admin, &fx.t.chain.id);
    let mut reordered = fx.t.block(two_independent_txs(&fx));
    reordered.txs.swap(0, 1);
    let mut dropped = fx.t.block(two_independent_txs(&fx));
    dropped.txs.pop();
    for block in [wrong_root, reordered, dropped] {
        let err = refuse_block(&mut fx.t, &block);
        assert!(matches!(err, BlockError::BadMerkleRoot), "{err:?}");
    }
}

#[test]
fn b4_merkle_rejects_duplicate_txid() {
    let mut fx = fixture();
    let tx = alice_pays_bob(&fx, 10);
    let txid = tx.txid();
    let block = fx.t.block(vec![tx.clone(), tx]);
    let err = refuse_block(&mut fx.t, &block);
    assert!(
        matches!(err, BlockError::DuplicateTxid { txid: d } if d == txid),
        "{err:?}"
    );
}

// ================================================================ B5 miner

#[test]
fn b5_miner_accepts_holder_of_mine() {
    let mut fx = fixture();
    grant_now(&mut fx.t, &fx.admin, fx.carol.address(), &[g(Mine)]);
    let block = fx.t.block_by(&fx.carol, vec![alice_pays_bob(&fx, 10)]);
    accept_block(&mut fx.t, &block);
    assert_eq!(
        read::last_signed(&fx.t.state, &fx.carol.address()).unwrap(),
        Some(block.header.height)
    );
}

#[test]
fn b5_miner_rejects_signer_without_mine() {
    let mut fx = fixture();
    let block = fx.t.block_by(&fx.alice, vec![]);
    let err = refuse_block(&mut fx.t, &block);
    assert!(
        matches!(err, BlockError::MinerNotPermitted { address } if address == fx.alice.address()),
        "{err:?}"
    );
}

#[test]
fn b5_miner_honours_the_range_of_mine() {
    let mut fx = fixture();
    let carol = fx.carol.address();
    let h = fx.t.next_height();
    let grant = fx.t.grant_range(&fx.admin, carol, &[g(Mine)], h + 2, h + 3);
    accept(&mut fx.t, vec![grant]);
    let not_yet = fx.t.block_by(&fx.carol, vec![]);
    let err = refuse_block(&mut fx.t, &not_yet);
    assert!(
        matches!(err, BlockError::MinerNotPermitted { address } if address == carol),
        "{err:?}"
    );
    accept(&mut fx.t, vec![]);
    let inside = fx.t.block_by(&fx.carol, vec![]);
    accept_block(&mut fx.t, &inside);
    let ended = fx.t.block_by(&fx.carol, vec![]);
    let err = refuse_block(&mut fx.t, &ended);
    assert!(
        matches!(err, BlockError::MinerNotPermitted { address } if address == carol),
        "{err:?}"
    );
}

#[test]
fn b5_miner_rejects_revoked_miner() {
    let mut fx = fixture();
    let carol = fx.carol.address();
    grant_now(&mut fx.t, &fx.admin, carol, &[g(Mine)]);
    revoke_now(&mut fx.t, &fx.admin, carol, &[g(Mine)]);
    let block = fx.t.block_by(&fx.carol, vec![]);
    let err = refuse_block(&mut fx.t, &block);
    assert!(
        matches!(err, BlockError::MinerNotPermitted { address } if address == carol),
        "{err:?}"
    );
}

// ================================================================ B6 diversity

/// Three miners (`key(0)`, `key(1)`, `key(2)`), mining-diversity 1 (spacing 3: strict round
/// robin), setup over after block 2 (which `key(0)` signed).
fn three_miner_chain() -> TestChain {
    chain_after_setup(&[(1, vec![g(Mine)]), (2, vec![g(Mine)])], |p| {
        p.mining_diversity = FRACTION_ONE
    })
}

#[test]
fn b6_diversity_accepts_round_robin() {
    let mut t = three_miner_chain();
    assert_eq!(
        mining::miners_at(&t.state, t.next_height()).unwrap().len(),
        3
    );
    for miner in [1, 2, 0, 1, 2, 0] {
        let block = t.block_by(&key(miner), vec![]);
        accept_block(&mut t, &block);
    }
}

#[test]
fn b6_diversity_rejects_miner_signing_again_too_soon() {
    let mut t = three_miner_chain();
    // key(0) signed block 2; with spacing 3 its next block is 5.
    let block = t.block_by(&key(0), vec![]);
    let err = refuse_block(&mut t, &block);
    assert!(
        matches!(err, BlockError::MinerBarred { address, last: 2, next: 5 } if address == key(0).address()),
        "{err:?}"
    );
    let first = t.block_by(&key(1), vec![]);
    accept_block(&mut t, &first);
    let twice = t.block_by(&key(1), vec![]);
    let err = refuse_block(&mut t, &twice);
    assert!(
        matches!(err, BlockError::MinerBarred { address, last: 3, next: 6 } if address == key(1).address()),
        "{err:?}"
    );
}

#[test]
fn b6_diversity_is_not_applied_during_setup() {
    let mut params = ChainParams::new("energybc");
    params.mining_diversity = FRACTION_ONE;
    let mut t = TestChain::with_params(params);
    let admin = t.admin.clone();
    grant_now(&mut t, &admin, key(1).address(), &[g(Mine)]);
    grant_now(&mut t, &admin, key(2).address(), &[g(Mine)]);
    for _ in 0..3 {
        accept(&mut t, vec![]);
    }
    assert!(t.next_height() < t.chain.params.setup_first_blocks);
}

#[test]
fn b6_diversity_never_bars_a_single_miner() {
    let mut t = chain_after_setup(&[], |p| p.mining_diversity = FRACTION_ONE);
    for _ in 0..3 {
        accept(&mut t, vec![]);
    }
}

// ================================================================ B7 signature

#[test]
fn b7_signature_accepts_miner_signature_for_this_chain() {
    let mut fx = fixture();
    let block = fx.t.block(vec![]);
    assert!(block.header.signature_is_valid(&fx.t.chain.id));
    accept_block(&mut fx.t, &block);
}

#[test]
fn b7_signature_rejects_tampered_or_foreign_signature() {
    let mut fx = fixture();
    let mut flipped = fx.t.block(vec![]);
    flipped.header.signature.0[3] ^= 1;
    let mut by_other_key = fx.t.block(vec![]);
    let message =
        wattle_ledger::block::BlockHeader::signing_message(&by_other_key.header.id(&fx.t.chain.id));
    by_other_key.header.signature = fx.alice.sign(&message);
    let mut other_chain = fx.t.block(vec![]);
    other_chain.header.sign(&fx.admin, &Hash256([7; 32]));
    for block in [flipped, by_other_key, other_chain] {
        let err = refuse_block(&mut fx.t, &block);
        assert!(matches!(err, BlockError::BadSignature), "{err:?}");
    }
}

// ================================================================ B8 transactions

#[test]
fn b8_transactions_accepts_txs_seeing_effects_of_earlier_ones() {
    let mut fx = fixture();
    let (alice, bob) = (fx.alice.address(), fx.bob.address());
    let issue = fx.t.issue(&fx.admin, alice, "solar", true, 1, 30, &[]);
    let solar = issue.txid();
    let mut pay = new_tx(
        &[issue.outpoint(0)],
        vec![
            Output::new(bob, [(solar, amount(10))]),
            Output::new(alice, [(solar, amount(20))]),
        ],
        vec![],
    );
    sign_by(&fx.t, &mut pay, &fx.alice);
    accept(&mut fx.t, vec![issue, pay]);
    assert_eq!(fx.t.balance(&bob, &solar).raw(), 10);
    assert_eq!(fx.t.balance(&alice, &solar).raw(), 20);
}

#[test]
fn b8_transactions_rejects_whole_block_for_one_invalid_tx() {
    let mut fx = fixture();
    let good = alice_pays_bob(&fx, 10);
    let bad = fx.t.transfer(&fx.bob, fx.carol.address(), fx.ecoin, 5);
    let (index, err) = refuse_txs(&mut fx.t, vec![good, bad]);
    assert_eq!(index, 1);
    assert!(
        matches!(err, TxError::NoReceivePermission { vout: 0, .. }),
        "{err:?}"
    );
}

#[test]
fn b8_transactions_rejects_stateless_fault_with_its_index() {
    let mut fx = fixture();
    let [good, mut bad] = <[Transaction; 2]>::try_from(two_independent_txs(&fx)).unwrap();
    bad.inputs[0].signature.0[0] ^= 1;
    let (index, err) = refuse_txs(&mut fx.t, vec![good, bad]);
    assert_eq!(index, 1);
    assert!(matches!(err, TxError::BadSignature { input: 0 }), "{err:?}");
}

// ================================================================ B9 genesis
//
// `apply_genesis` is pure (it returns the initial changeset and writes nothing), so its refusals
// have no state to compare; a genesis block offered to a running chain is refused by B2.

const GENESIS_TIME: u64 = 1_700_000_000_000;

fn params() -> ChainParams {
    ChainParams::new("energybc")
}

/// Re-signs a mutated genesis header, as its creator could.
fn resign_genesis(block: &mut Block, admin: &SecretKey) {
    block.header.sign(admin, &Hash256::ZERO);
}

#[test]
fn b9_genesis_accepts_block_granting_everything_to_its_signer() {
    let admin = key(0);
    let block = genesis_block(&params(), &admin, GENESIS_TIME);
    let (chain, changes) = apply_genesis(&params(), &block).expect("valid genesis");
    assert_eq!(chain.id, block.header.id(&Hash256::ZERO));
    let mut state = MemoryView::new();
    state.apply(&changes).unwrap();
    for p in GlobalPerm::ALL {
        let rec = read::perm(&state, &admin.address(), &g(p))
            .unwrap()
            .unwrap();
        assert_eq!((rec.start, rec.end), (0, NO_END), "{p:?}");
    }
    let tip = read::tip(&state).unwrap().unwrap();
    assert_eq!((tip.height, tip.id), (0, chain.id));
    let coin = block.txs[0].outpoint(0);
    let utxo = read::utxo(&state, &coin).unwrap().unwrap();
    assert_eq!(utxo.output, zero_out(admin.address()));
}

#[test]
fn b9_genesis_rejects_block_made_for_other_parameters() {
    let block = genesis_block(&params(), &key(0), GENESIS_TIME);
    let mut other = params();
    other.setup_first_blocks = 61;
    let err = apply_genesis(&other, &block).unwrap_err();
    assert!(matches!(err, BlockError::Genesis(_)), "{err:?}");
}

#[test]
fn b9_genesis_rejects_invalid_parameters() {
    let mut bad = params();
    bad.setup_first_blocks = 0;
    let block = genesis_block(&bad, &key(0), GENESIS_TIME);
    let err = apply_genesis(&bad, &block).unwrap_err();
    assert!(matches!(err, BlockError::Genesis(_)), "{err:?}");
}

#[test]
fn b9_genesis_rejects_wrong_version_or_height() {
    let admin = key(0);
    let mut v2 = genesis_block(&params(), &admin, GENESIS_TIME);
    v2.header.version = 2;
    resign_genesis(&mut v2, &admin);
    let mut h1 = genesis_block(&params(), &admin, GENESIS_TIME);
    h1.header.height = 1;
    resign_genesis(&mut h1, &admin);
    for block in [v2, h1] {
        let err = apply_genesis(&params(), &block).unwrap_err();
        assert!(matches!(err, BlockError::Genesis(_)), "{err:?}");
    }
}

#[test]
fn b9_genesis_rejects_transactions_other_than_the_signers_grant() {
    let admin = key(0);
    let for_other = genesis_tx(key(1).address());
    let mut fewer = genesis_tx(admin.address());
    let Op::Grant { permissions, .. } = &mut fewer.ops[0] else {
        panic!("the genesis transaction is a grant");
    };
    permissions.retain(|p| *p != g(Admin));
    let both = vec![genesis_tx(admin.address()), for_other.clone()];
    for txs in [vec![for_other], vec![fewer], both, vec![]] {
        let mut block = genesis_block(&params(), &admin, GENESIS_TIME);
        block.txs = txs;
        block.header.merkle_root = block.compute_merkle_root();
        resign_genesis(&mut block, &admin);
        let err = apply_genesis(&params(), &block).unwrap_err();
        assert!(matches!(err, BlockError::Genesis(_)), "{err:?}");
    }
}

#[test]
fn b9_genesis_rejects_bad_merkle_root_or_signature() {
    let admin = key(0);
    let mut bad_root = genesis_block(&params(), &admin, GENESIS_TIME);
    bad_root.header.merkle_root = Hash256::ZERO;
    resign_genesis(&mut bad_root, &admin);
    let err = apply_genesis(&params(), &bad_root).unwrap_err();
    assert!(matches!(err, BlockError::BadMerkleRoot), "{err:?}");
    let mut bad_sig = genesis_block(&params(), &admin, GENESIS_TIME);
    bad_sig.header.signature.0[0] ^= 1;
    let err = apply_genesis(&params(), &bad_sig).unwrap_err();
    assert!(matches!(err, BlockError::BadSignature), "{err:?}");
}

#[test]
fn b9_genesis_rejects_a_second_genesis_on_a_running_chain() {
    let mut t = TestChain::new();
    let genesis = t.genesis.clone();
    let err = refuse_block(&mut t, &genesis);
    assert!(matches!(err, BlockError::WrongParent { .. }), "{err:?}");
}

// ================================================================ undo with the changeset

/// Applies `changes.inverse()` to a copy of `after` and checks that it gives `before`.
fn assert_undo_restores(before: &MemoryView, after: &MemoryView, changes: &Changeset) {
    let mut undone = after.clone();
    undone
        .apply(&changes.inverse())
        .expect("the inverse applies to the state after the block");
    assert_eq!(&undone, before);
    assert_eq!(undone.state_hash(), before.state_hash());
}

#[test]
fn undo_restores_state_before_a_block_of_issues_transfers_and_exchanges() {
    let mut fx = fixture();
    let (alice, bob) = (fx.alice.address(), fx.bob.address());
    let issue =
        fx.t.issue(&fx.admin, alice, "solar", true, 1, 30, &[("a", "b")]);
    let solar = issue.txid();
    let mut pay = new_tx(
        &[issue.outpoint(0)],
        vec![Output::new(bob, [(solar, amount(30))])],
        vec![],
    );
    sign_by(&fx.t, &mut pay, &fx.alice);
    let txs = vec![issue, pay, swap(&fx)];
    let before = fx.t.state.clone();
    let changes = accept(&mut fx.t, txs);
    assert!(changes.len() > 10, "{} changes", changes.len());
    assert_undo_restores(&before, &fx.t.state, &changes);
}

/// Commits `block` and records the state before it with the block's changeset.
fn commit_recording(t: &mut TestChain, block: &Block, steps: &mut Vec<(MemoryView, Changeset)>) {
    let before = t.state.clone();
    let changes = accept_block(t, block);
    steps.push((before, changes));
}

#[test]
fn undo_restores_votes_permissions_and_miner_records_block_by_block() {
    let mut t = chain_after_setup(&[(1, admin_perms())], |p| {
        p.admin_consensus_mine = FRACTION_ONE
    });
    let miner = key(5);
    let mut steps = vec![];
    // A pending vote, an empty block, the deciding vote, then the new miner's first block.
    for voter in [0, 1] {
        let grant = t.grant(&key(voter), miner.address(), &[g(Mine)]);
        let block = t.block(vec![grant]);
        commit_recording(&mut t, &block, &mut steps);
        let empty = t.block(vec![]);
        commit_recording(&mut t, &empty, &mut steps);
    }
    let by_miner = t.block_by(&miner, vec![]);
    commit_recording(&mut t, &by_miner, &mut steps);
    // Roll the chain back one block at a time.
    let mut state = t.state.clone();
    for (before, changes) in steps.iter().rev() {
        assert_undo_restores(before, &state, changes);
        state.apply(&changes.inverse()).unwrap();
    }
}

#[test]
fn undo_of_genesis_leaves_empty_state() {
    let block = genesis_block(&params(), &key(0), GENESIS_TIME);
    let (_, changes) = apply_genesis(&params(), &block).unwrap();
    let mut state = MemoryView::new();
    state.apply(&changes).unwrap();
    assert_undo_restores(&MemoryView::new(), &state, &changes);
}
