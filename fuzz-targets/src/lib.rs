//! The bodies of Wattle's fuzz targets: one plain function per target, taking the fuzzer's
//! bytes. `fuzz/` (cargo-fuzz, nightly) wraps each in a libFuzzer target; `tests/smoke.rs`
//! replays the stored corpora (`fuzz/corpus/<target>/`) and a few thousand seeded mutations
//! through the same functions on stable Rust, as part of `cargo test`.
//!
//! A target panics (an assertion) when a property fails: bad input must come back as an error,
//! never as a panic, and what decodes must re-encode to the same thing. The node-level targets
//! run on a [`fixture::NodeFixture`]: a node with a small chain in a temporary directory, reset
//! between inputs.

pub mod cli;
pub mod fixture;
pub mod gossip;
pub mod ledger;
pub mod params;
pub mod rpc;
pub mod seeds;
pub mod sync;

/// A fuzz target: its name (the directory under `fuzz/corpus/` and the libFuzzer target) and
/// its body.
pub type Target = (&'static str, fn(&[u8]));

/// Every target.
pub const TARGETS: &[Target] = &[
    ("tx_decode", ledger::tx_decode),
    ("block_decode", ledger::block_decode),
    ("gossip_tx_batch", gossip::gossip_tx_batch),
    ("gossip_block", gossip::gossip_block),
    ("sync_request", sync::sync_request),
    ("sync_response", sync::sync_response),
    ("rpc_request", rpc::rpc_request),
    ("rpc_commands", rpc::rpc_commands),
    ("decoderawexchange", rpc::decoderawexchange),
    ("http_reply", rpc::http_reply),
    ("cli_args", cli::cli_args),
    ("params_toml", params::params_toml),
];

/// The body of the target called `name`.
pub fn target(name: &str) -> Option<fn(&[u8])> {
    TARGETS.iter().find(|t| t.0 == name).map(|t| t.1)
}
