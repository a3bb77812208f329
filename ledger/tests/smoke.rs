use wattle_ledger::permissions::{AssetPerm, GlobalPerm, Permission};
use wattle_ledger::testkit::{TestChain, key};

#[test]
fn grant_issue_transfer() {
    let mut t = TestChain::new();
    let admin = t.admin.clone();
    let p = key(1);
    let csr = [GlobalPerm::Connect, GlobalPerm::Send, GlobalPerm::Receive].map(Permission::Global);
    let g = t.grant(&admin, p.address(), &csr);
    t.mine(vec![g]).unwrap();
    let issue = t.issue(
        &admin,
        admin.address(),
        "energy",
        true,
        1000,
        0,
        &[("origin", "KW")],
    );
    t.mine(vec![issue]).unwrap();
    let energy = t.asset_id("energy");
    let g2 = t.grant(
        &admin,
        p.address(),
        &[Permission::Asset(energy, AssetPerm::Issue)],
    );
    t.mine(vec![g2]).unwrap();
    let more = t.issue_more(&p, p.address(), energy, 1000);
    t.mine(vec![more]).unwrap();
    assert_eq!(t.balance(&p.address(), &energy).raw(), 1000);
    let c = key(2);
    let g3 = t.grant(&admin, c.address(), &csr);
    t.mine(vec![g3]).unwrap();
    let tr = t.transfer(&p, c.address(), energy, 400);
    t.mine(vec![tr]).unwrap();
    assert_eq!(t.balance(&p.address(), &energy).raw(), 600);
    assert_eq!(t.balance(&c.address(), &energy).raw(), 400);
}
