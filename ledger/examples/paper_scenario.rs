//! Replays the paper's trading scenario (Oh et al. 2017, §2) on an in-memory ledger and prints
//! each step: admission, asset creation, issuance, the offer, its acceptance and the balances.
//!
//! Run: `cargo run -p wattle-ledger --example paper_scenario`

use wattle_ledger::amount::{
    Rounding, format_quantity, multiple_from_smallest_unit, parse_quantity,
};
use wattle_ledger::exchange::{AssetBag, append_to_exchange, create_offer, decode_exchange};
use wattle_ledger::permissions::{AssetPerm, GlobalPerm, Permission};
use wattle_ledger::state::read;
use wattle_ledger::testkit::{TestChain, key};
use wattle_ledger::{Address, AssetId, BlockError, Transaction};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut t = TestChain::new();
    let fmt = t.chain.params.address_format();
    let (a, p, c) = (t.admin.clone(), key(1), key(2));
    println!("chain energybc, id {}", t.chain.id);
    println!("A (admin)    {}", fmt.encode(&a.address()));
    println!("P (producer) {}", fmt.encode(&p.address()));
    println!("C (consumer) {}", fmt.encode(&c.address()));

    let csr = [GlobalPerm::Connect, GlobalPerm::Send, GlobalPerm::Receive].map(Permission::Global);
    step(&mut t, "A> grant P connect,send,receive", |t| {
        t.grant(&a, p.address(), &csr)
    })?;
    step(&mut t, "A> grant C connect,send,receive", |t| {
        t.grant(&a, c.address(), &csr)
    })?;
    let unit = multiple_from_smallest_unit("0.001")?;
    let fields = [
        ("origin", "KW"),
        ("stage", "0"),
        ("purpose", "periodic generation"),
    ];
    step(
        &mut t,
        "A> issuefrom A A {\"name\":\"energy\",\"open\":true} 0 0.001",
        |t| t.issue(&a, a.address(), "energy", true, unit, 0, &fields),
    )?;
    let fields = [("origin", "KRW"), ("stage", "0"), ("purpose", "ecoin sale")];
    step(
        &mut t,
        "A> issuefrom A A {\"name\":\"ecoin\",\"open\":true} 0 1",
        |t| t.issue(&a, a.address(), "ecoin", true, 1, 0, &fields),
    )?;
    let (energy, ecoin) = (t.asset_id("energy"), t.asset_id("ecoin"));
    step(&mut t, "A> grantfrom A P energy.issue", |t| {
        t.grant(
            &a,
            p.address(),
            &[Permission::Asset(energy, AssetPerm::Issue)],
        )
    })?;
    let one = parse_quantity("1", unit, Rounding::Exact)?.raw();
    step(&mut t, "P> issuemore P energy 1", |t| {
        t.issue_more(&p, p.address(), energy, one)
    })?;
    step(&mut t, "A> issuemore C ecoin 20000", |t| {
        t.issue_more(&a, c.address(), ecoin, 20000)
    })?;
    print_balances(
        &t,
        &[("P", p.address()), ("C", c.address())],
        &[energy, ecoin],
    );

    let prep = t.transfer(&p, p.address(), energy, one);
    let p_coin = prep.outpoint(0);
    step(&mut t, "P> preparelockunspent {\"energy\":1}", |_| {
        prep.clone()
    })?;
    let ask: AssetBag = [(ecoin, wattle_ledger::Amount::new(1000)?)].into();
    let blob1 = create_offer(p_coin, &p, &ask, &t.chain)?;
    println!(
        "P> createrawexchange {} {} {{\"ecoin\":1000}}\n   blob1 = {}…",
        p_coin.txid,
        p_coin.vout,
        &blob1.to_hex()[..32]
    );
    let d = decode_exchange(&t.state, &blob1, &t.chain, t.next_height(), true)?;
    println!(
        "C> decoderawexchange blob1: offer {} energy, ask {} ecoin, complete {}",
        format_quantity(d.offer[&energy], unit),
        d.ask[&ecoin].raw(),
        d.complete
    );

    let prep = t.transfer(&c, c.address(), ecoin, 1000);
    let c_coin = prep.outpoint(0);
    step(
        &mut t,
        "C> preparelockunspentfrom C {\"ecoin\":1000}",
        |_| prep.clone(),
    )?;
    let want: AssetBag = [(energy, wattle_ledger::Amount::new(one)?)].into();
    let blob2 = append_to_exchange(&blob1, c_coin, &c, &want, &t.chain)?;
    let d2 = decode_exchange(&t.state, &blob2, &t.chain, t.next_height(), true)?;
    println!(
        "C> appendrawexchange blob1 {} {} {{\"energy\":1}}: complete {}",
        c_coin.txid, c_coin.vout, d2.complete
    );
    step(&mut t, "C> sendrawtransaction blob2", |_| blob2.clone())?;
    print_balances(
        &t,
        &[("P", p.address()), ("C", c.address())],
        &[energy, ecoin],
    );
    Ok(())
}

fn step(
    t: &mut TestChain,
    what: &str,
    build: impl FnOnce(&TestChain) -> Transaction,
) -> Result<(), BlockError> {
    let tx = build(t);
    let txid = tx.txid();
    t.mine(vec![tx])?;
    println!(
        "{what}\n   txid {txid} confirmed in block {}",
        t.tip().height
    );
    Ok(())
}

fn print_balances(t: &TestChain, who: &[(&str, Address)], assets: &[AssetId]) {
    for (name, addr) in who {
        let parts: Vec<String> = assets
            .iter()
            .filter_map(|id| read::asset(&t.state, id).ok().flatten())
            .map(|info| {
                format!(
                    "{} {}",
                    format_quantity(t.balance(addr, &info.id), info.multiple),
                    info.name
                )
            })
            .collect();
        println!("   balance {name}: {}", parts.join(", "));
    }
}
