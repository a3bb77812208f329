//! Wattle benchmarks: criterion suites (one binary, a suite per area) and the multi-node network
//! benchmarks `netbench` (latency) and `throughput` (`src/bin/`, see BENCHMARKS.md).

pub mod cluster;
pub mod fixtures;
