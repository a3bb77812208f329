//! `crypto/*`: the raw primitives the ledger's throughput is bounded by.

use criterion::Criterion;
use ed25519_dalek::{Signer, SigningKey};
use std::hint::black_box;

pub fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("crypto");
    let key = SigningKey::from_bytes(&[7; 32]);
    let public = key.verifying_key();
    // The size of a sighash, which is what every input signs.
    let message = [0x5a_u8; 32];
    let signature = key.sign(&message);
    assert!(public.verify_strict(&message, &signature).is_ok());
    group.bench_function("ed25519_verify_strict", |b| {
        b.iter(|| black_box(&public).verify_strict(black_box(&message), black_box(&signature)))
    });
    // What the ledger runs per input signature: the key decompressed once, then cached.
    let ledger_key = wattle_ledger::keys::PublicKey(public.to_bytes());
    let ledger_sig = wattle_ledger::keys::Signature(signature.to_bytes());
    assert!(ledger_key.verify(&message, &ledger_sig));
    group.bench_function("ledger_verify_cached_key", |b| {
        b.iter(|| black_box(&ledger_key).verify(black_box(&message), black_box(&ledger_sig)))
    });
    group.bench_function("ed25519_key_decompress_and_verify_strict", |b| {
        b.iter(|| {
            ed25519_dalek::VerifyingKey::from_bytes(black_box(&public.to_bytes()))
                .unwrap()
                .verify_strict(black_box(&message), black_box(&signature))
        })
    });
    group.finish();
}
