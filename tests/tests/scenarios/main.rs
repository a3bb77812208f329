//! Wattle's integration scenarios: one test binary, one module per scenario.

mod attacks;
mod paper_ledger;
