//! Wattle benchmarks: criterion suites (one binary, a suite per area) and the multi-node network
//! benchmark `netbench` (`src/bin/netbench.rs`: latency, throughput and sync on real `wattled`
//! processes; its phases in `network`, the node harness in `cluster`; see BENCHMARKS.md).

pub mod cluster;
pub mod fixtures;
pub mod network;
