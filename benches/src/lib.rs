//! Wattle benchmarks: criterion suites (one binary, a suite per area) and, later, the network benchmark.

pub mod fixtures;
