//! Wattle consensus: the pure round-robin miner schedule, block production decisions, fork choice
//! and sync planning (`Engine::step(view, cache, Input) -> Vec<Output>`), and a seeded in-process
//! network simulator. No I/O: time comes in as an argument, state as a `LedgerView`.

pub mod engine;
pub mod schedule;
pub mod sim;

pub use engine::{BranchBlock, Config, Engine, Input, Output, PeerId, Verdict};
