//! `ledger/*`: transaction encoding and ids, single-transaction validation and block application
//! on an in-memory state.

use criterion::{BenchmarkId, Criterion, SamplingMode, Throughput};
use std::hint::black_box;
use std::time::Duration;
use wattle_benches::fixtures::FundedChain;
use wattle_ledger::codec;
use wattle_ledger::{NoCache, Transaction, TxContext, apply_block, validate_tx};

/// Transactions in the block of `ledger/apply_block`.
const BLOCK_TXS: u32 = 1000;

pub fn bench(c: &mut Criterion) {
    let fixture = FundedChain::new(BLOCK_TXS);
    let chain = &fixture.chain;
    let mut group = c.benchmark_group("ledger");

    let transfer = fixture.transfer(0, 1);
    let ctx = TxContext {
        chain: &chain.chain,
        height: chain.next_height(),
        offset: 0,
        signatures_checked: false,
    };
    validate_tx(&chain.state, &transfer, &ctx).expect("the transfer is valid");
    group.bench_function("validate_tx", |b| {
        b.iter(|| validate_tx(black_box(&chain.state), black_box(&transfer), &ctx))
    });

    let two_in_two_out = fixture.transfer_two_inputs(0, 1);
    assert_eq!(
        (two_in_two_out.inputs.len(), two_in_two_out.outputs.len()),
        (2, 2)
    );
    validate_tx(&chain.state, &two_in_two_out, &ctx).expect("the 2-in/2-out tx is valid");
    group.bench_function("tx_encode_decode", |b| {
        b.iter(|| {
            let bytes = codec::encode(black_box(&two_in_two_out));
            codec::decode::<Transaction>(&bytes)
        })
    });
    group.bench_function("txid", |b| b.iter(|| black_box(&two_in_two_out).txid()));

    let block = fixture.transfers_block();
    apply_block(&chain.state, &block, &chain.chain, &NoCache).expect("the block is valid");
    group.throughput(Throughput::Elements(u64::from(BLOCK_TXS)));
    group.sample_size(20);
    group.sampling_mode(SamplingMode::Flat);
    group.measurement_time(Duration::from_secs(5));
    group.bench_function(
        BenchmarkId::new("apply_block", format!("txs={BLOCK_TXS}")),
        |b| {
            b.iter(|| {
                apply_block(
                    black_box(&chain.state),
                    black_box(&block),
                    &chain.chain,
                    &NoCache,
                )
            })
        },
    );
    group.finish();
}
