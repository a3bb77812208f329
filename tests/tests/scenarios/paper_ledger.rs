//! The paper's whole trading scenario (Oh et al. 2017, §2), replayed at the ledger level: the
//! admin admits a producer and a consumer, creates `energy` and `ecoin`, lets the producer issue
//! energy, sells ecoin to the consumer, and the two swap 1 energy for 1000 ecoin atomically.

use wattle_ledger::amount::{Rounding, multiple_from_smallest_unit, parse_quantity};
use wattle_ledger::exchange::{AssetBag, append_to_exchange, create_offer, decode_exchange};
use wattle_ledger::permissions::{AssetPerm, GlobalPerm, Permission};
use wattle_ledger::testkit::{TestChain, key};
use wattle_ledger::{Amount, TxContext, validate_tx};

fn raw(t: &TestChain, asset: &str, display: &str) -> u64 {
    let id = t.asset_id(asset);
    let info = wattle_ledger::state::read::asset(&t.state, &id)
        .unwrap()
        .unwrap();
    parse_quantity(display, info.multiple, Rounding::Transfer)
        .unwrap()
        .raw()
}

#[test]
fn paper_trading_scenario() {
    let mut t = TestChain::new();
    let a = t.admin.clone();
    let (p, c) = (key(1), key(2));

    // §2.3–2.4: grant connect,send,receive to the producer and the consumer.
    let csr = [GlobalPerm::Connect, GlobalPerm::Send, GlobalPerm::Receive].map(Permission::Global);
    let gp = t.grant(&a, p.address(), &csr);
    t.mine(vec![gp]).unwrap();
    let gc = t.grant(&a, c.address(), &csr);
    t.mine(vec![gc]).unwrap();

    // §2.2: issuefrom A A {"name":"energy","open":true} 0 0.001 0 {custom fields}, and ecoin with unit 1.
    let energy_fields = [
        ("origin", "KW"),
        ("stage", "0"),
        ("purpose", "periodic generation"),
    ];
    let m_energy = multiple_from_smallest_unit("0.001").unwrap();
    assert_eq!(m_energy, 1000);
    let ie = t.issue(&a, a.address(), "energy", true, m_energy, 0, &energy_fields);
    t.mine(vec![ie]).unwrap();
    let ecoin_fields = [("origin", "KRW"), ("stage", "0"), ("purpose", "ecoin sale")];
    let ic = t.issue(
        &a,
        a.address(),
        "ecoin",
        true,
        multiple_from_smallest_unit("1").unwrap(),
        0,
        &ecoin_fields,
    );
    t.mine(vec![ic]).unwrap();
    let (energy, ecoin) = (t.asset_id("energy"), t.asset_id("ecoin"));
    let info = wattle_ledger::state::read::asset(&t.state, &energy)
        .unwrap()
        .unwrap();
    assert_eq!(
        info.fields.get("purpose").map(String::as_str),
        Some("periodic generation")
    );
    assert!(info.open);

    // §2.5: grantfrom A P energy.issue; P issuemore P energy 1.
    let gi = t.grant(
        &a,
        p.address(),
        &[Permission::Asset(energy, AssetPerm::Issue)],
    );
    t.mine(vec![gi]).unwrap();
    let pe = t.issue_more(&p, p.address(), energy, raw(&t, "energy", "1"));
    t.mine(vec![pe]).unwrap();

    // §2.6: issuemore C ecoin 20000 (by the admin, who issued ecoin).
    let ce = t.issue_more(&a, c.address(), ecoin, raw(&t, "ecoin", "20000"));
    t.mine(vec![ce]).unwrap();
    assert_eq!(t.balance(&p.address(), &energy).raw(), 1000);
    assert_eq!(t.balance(&c.address(), &ecoin).raw(), 20000);

    // §2.7: P preparelockunspent {"energy":1}, createrawexchange ... {"ecoin":1000}.
    let prep_p = t.transfer(&p, p.address(), energy, 1000);
    let prep_p_out = prep_p.outpoint(0);
    t.mine(vec![prep_p]).unwrap();
    let ask: AssetBag = [(ecoin, Amount::new(1000).unwrap())].into();
    let blob1 = create_offer(prep_p_out, &p, &ask, &t.chain).unwrap();

    // §2.8: C decodes: offer energy 1, ask ecoin 1000, not complete.
    let h = t.next_height();
    let d = decode_exchange(&t.state, &blob1, &t.chain, h, true).unwrap();
    assert_eq!(d.offer, [(energy, Amount::new(1000).unwrap())].into());
    assert_eq!(d.ask, [(ecoin, Amount::new(1000).unwrap())].into());
    assert!(!d.complete);
    assert_eq!(d.exchanges.len(), 1);
    assert_eq!(d.exchanges[0].offer_address, p.address());

    // C preparelockunspentfrom C {"ecoin":1000}; appendrawexchange blob1 ... {"energy":1}.
    let prep_c = t.transfer(&c, c.address(), ecoin, 1000);
    let prep_c_out = prep_c.outpoint(0);
    t.mine(vec![prep_c]).unwrap();
    let want: AssetBag = [(energy, Amount::new(1000).unwrap())].into();
    let blob2 = append_to_exchange(&blob1, prep_c_out, &c, &want, &t.chain).unwrap();
    let d2 = decode_exchange(&t.state, &blob2, &t.chain, h + 1, true).unwrap();
    assert!(d2.complete);
    assert!(d2.offer.is_empty() && d2.ask.is_empty());

    // The complete transaction is valid; sendrawtransaction confirms it.
    let ctx = TxContext {
        chain: &t.chain,
        height: t.next_height(),
        offset: 0,
        signatures_checked: false,
    };
    validate_tx(&t.state, &blob2, &ctx).unwrap();
    t.mine(vec![blob2]).unwrap();

    assert_eq!(t.balance(&p.address(), &energy).raw(), 0);
    assert_eq!(t.balance(&p.address(), &ecoin).raw(), 1000);
    assert_eq!(t.balance(&c.address(), &energy).raw(), 1000);
    assert_eq!(t.balance(&c.address(), &ecoin).raw(), 19000);
}
