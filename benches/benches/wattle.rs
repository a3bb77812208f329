//! Wattle's criterion suite: one binary, a group per area (`ledger`, `crypto`). Results and the
//! command that produced them go into BENCHMARKS.md.

mod crypto;
mod ledger;

criterion::criterion_group!(benches, ledger::bench, crypto::bench);
criterion::criterion_main!(benches);
