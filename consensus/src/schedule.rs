//! The miner schedule (DESIGN §4.1–4.4): who is in turn at a height, who may stand in and when,
//! and the weight a block adds to its branch.

use wattle_ledger::address::Address;
use wattle_ledger::chain::Chain;
use wattle_ledger::mining;
use wattle_ledger::state::{LedgerView, StoreError};

/// Weight of a block signed by the miner in turn.
pub const IN_TURN_WEIGHT: u64 = 2;
/// Weight of a block signed by a stand-in.
pub const OUT_OF_TURN_WEIGHT: u64 = 1;

/// `order(h)`: the miners at `h` (state after `h-1`), rotated to start just after the signer of
/// `h-1`, with the miners barred at `h` removed. `order[0]` is in turn.
pub fn order(
    view: &(impl LedgerView + ?Sized),
    chain: &Chain,
    height: u32,
    parent_signer: &Address,
) -> Result<Vec<Address>, StoreError> {
    let miners = mining::miners_at(view, height)?;
    let n = miners.len() as u32;
    // First miner sorting after the parent's signer (wrapping), whether or not it is still a miner.
    let start = miners.iter().position(|m| m > parent_signer).unwrap_or(0);
    let mut out = Vec::with_capacity(miners.len());
    for i in 0..miners.len() {
        let m = miners[(start + i) % miners.len()];
        if mining::barred_until(view, chain, &m, height, n)?.is_none() {
            out.push(m);
        }
    }
    Ok(out)
}

/// The weight of a block signed by `signer` at a height whose order is `order`.
pub fn block_weight(order: &[Address], signer: &Address) -> u64 {
    if order.first() == Some(signer) {
        IN_TURN_WEIGHT
    } else {
        OUT_OF_TURN_WEIGHT
    }
}

/// When a miner at `rank` in the order may sign, given the parent's arrival time and whether
/// transactions are waiting: `due + rank × fallback-timeout`.
pub fn may_sign_at(
    chain: &Chain,
    parent_received_ms: u64,
    mempool_non_empty: bool,
    rank: usize,
) -> u64 {
    let p = &chain.params;
    let wait = if mempool_non_empty {
        p.block_interval_ms
    } else {
        p.empty_block_interval_ms
    };
    parent_received_ms
        .saturating_add(wait)
        .saturating_add((rank as u64).saturating_mul(p.fallback_timeout_ms))
}

/// Confirmations needed before a transaction counts as confirmed (DESIGN §4.8): 1 with a single
/// miner, otherwise spacing + 1.
pub fn confirm_depth(chain: &Chain, miner_count: u32) -> u32 {
    if miner_count <= 1 {
        1
    } else {
        mining::spacing(miner_count, chain.params.mining_diversity) + 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wattle_ledger::ChainParams;
    use wattle_ledger::permissions::{GlobalPerm, NO_END, Permission};
    use wattle_ledger::testkit::{TestChain, key};
    use wattle_ledger::tx::{Op, Output};

    fn chain_with_miners(n: u64, diversity: u32) -> (TestChain, Vec<Address>) {
        let mut params = ChainParams::new("sched");
        params.setup_first_blocks = 1;
        params.mining_diversity = diversity;
        let mut t = TestChain::with_params(params);
        let admin = t.admin.clone();
        let mut addrs = vec![admin.address()];
        let (mut outputs, mut ops) = (Vec::new(), Vec::new());
        for i in 1..n {
            let k = key(100 + i);
            outputs.push(Output {
                address: k.address(),
                assets: vec![],
            });
            let permissions = vec![Permission::Global(GlobalPerm::Mine)];
            ops.push(Op::Grant {
                vout: i as u32 - 1,
                permissions,
                start: 0,
                end: NO_END,
            });
            addrs.push(k.address());
        }
        let tx = t.build(&admin, outputs, vec![], ops);
        t.mine(vec![tx]).unwrap();
        addrs.sort();
        (t, addrs)
    }

    #[test]
    fn order_rotates_after_the_parent_signer() {
        let (t, miners) = chain_with_miners(4, 0);
        let h = t.next_height();
        let o = order(&t.state, &t.chain, h, &miners[1]).unwrap();
        assert_eq!(o, vec![miners[2], miners[3], miners[0], miners[1]]);
        let o = order(&t.state, &t.chain, h, &miners[3]).unwrap();
        assert_eq!(o[0], miners[0]);
        assert_eq!(block_weight(&o, &miners[0]), IN_TURN_WEIGHT);
        assert_eq!(block_weight(&o, &miners[1]), OUT_OF_TURN_WEIGHT);
    }

    #[test]
    fn barred_miners_are_left_out() {
        // 4 miners, diversity 1: spacing 4, so whoever signed in the last 3 blocks is barred.
        let (t, _) = chain_with_miners(4, 1_000_000);
        let h = t.next_height();
        let admin = t.admin.address();
        let o = order(&t.state, &t.chain, h, &admin).unwrap();
        // The admin signed every block so far, so it is barred.
        assert!(!o.contains(&admin));
        assert_eq!(o.len(), 3);
    }

    #[test]
    fn stand_ins_wait_fallback_timeouts() {
        let t = TestChain::new();
        let c = &t.chain;
        assert_eq!(
            may_sign_at(c, 1000, true, 0),
            1000 + c.params.block_interval_ms
        );
        assert_eq!(
            may_sign_at(c, 1000, false, 0),
            1000 + c.params.empty_block_interval_ms
        );
        assert_eq!(
            may_sign_at(c, 1000, true, 2),
            1000 + c.params.block_interval_ms + 2 * c.params.fallback_timeout_ms
        );
        assert_eq!(confirm_depth(c, 1), 1);
        assert_eq!(confirm_depth(c, 10), 4);
    }
}
