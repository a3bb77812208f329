//! Wattle benchmarks: criterion suites (one binary, a suite per area) and the multi-node network
//! benchmark `netbench` (`src/bin/netbench.rs`, see BENCHMARKS.md).

pub mod fixtures;
