//! Wattle's criterion suite: one binary, a group per area (`ledger`, `orderbook`, `crypto`).
//! Results and the command that produced them go into BENCHMARKS.md.

mod crypto;
mod ledger;
mod orderbook;

criterion::criterion_group!(benches, ledger::bench, orderbook::bench, crypto::bench);
criterion::criterion_main!(benches);
