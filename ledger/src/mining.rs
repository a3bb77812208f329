//! Who may sign a block at a height: MultiChain's `mine` permission and mining-diversity rule.
//! Shared by block validation and the consensus engine.

use crate::address::Address;
use crate::chain::Chain;
use crate::permissions::{GlobalPerm, Permission};
use crate::state::{LedgerView, StoreError, read};

/// Addresses holding `mine` at `height`, sorted by their raw bytes.
pub fn miners_at(
    view: &(impl LedgerView + ?Sized),
    height: u32,
) -> Result<Vec<Address>, StoreError> {
    let mut out = Vec::new();
    for a in read::holders(view, &GlobalPerm::Mine)?.unwrap_or_default() {
        if read::perm(view, &a, &Permission::Global(GlobalPerm::Mine))?
            .is_some_and(|r| r.holds_at(height))
        {
            out.push(a);
        }
    }
    out.sort();
    Ok(out)
}

/// `clamp(ceil(n × diversity), 1, n)` computed as MultiChain does; 1 when diversity is 0.
pub fn spacing(miner_count: u32, diversity_micros: u32) -> u32 {
    if miner_count == 0 {
        return 1;
    }
    if diversity_micros == 0 {
        return 1;
    }
    let scaled = miner_count as u64 * diversity_micros as u64;
    let s = ((scaled - 1) / 1_000_000 + 1) as u32;
    s.clamp(1, miner_count)
}

/// If `miner` may not sign block `height` under the diversity rule, the height it signed last and
/// the first height it may sign. The rule is not applied during the setup phase.
pub fn barred_until(
    view: &(impl LedgerView + ?Sized),
    chain: &Chain,
    miner: &Address,
    height: u32,
    miner_count: u32,
) -> Result<Option<(u32, u32)>, StoreError> {
    if height < chain.params.setup_first_blocks {
        return Ok(None);
    }
    let Some(last) = read::last_signed(view, miner)? else {
        return Ok(None);
    };
    let next = last.saturating_add(spacing(miner_count, chain.params.mining_diversity));
    Ok(if height < next {
        Some((last, next))
    } else {
        None
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spacing_matches_multichain() {
        assert_eq!(spacing(10, 300_000), 3);
        assert_eq!(spacing(1, 300_000), 1);
        assert_eq!(spacing(3, 300_000), 1);
        assert_eq!(spacing(4, 300_000), 2);
        assert_eq!(spacing(5, 1_000_000), 5);
        assert_eq!(spacing(5, 0), 1);
    }
}
