//! The fuzz targets' smoke run, part of `cargo test`: every stored corpus file
//! (`fuzz/corpus/<target>/`) and every seed goes through its target, then a few thousand
//! deterministic mutations of them (seeded per target, so a failure repeats). The real fuzzing is
//! `cargo +nightly fuzz run <target>` (README "Fuzzing"); a failure here names the input, which
//! can be replayed with `cargo +nightly fuzz run <target> <file>`.
//!
//! `WATTLE_FUZZ_SMOKE_ITERS` overrides the number of mutations per target.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::time::Instant;

use wattle_fuzz_targets::{TARGETS, seeds::seeds, target};

/// Mutations per target.
const ITERATIONS: usize = 1_000;
/// Longest mutated input.
const MAX_LEN: usize = 16 * 1024;

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz")
}

fn corpus(name: &str) -> Vec<(String, Vec<u8>)> {
    let dir = fuzz_dir().join("corpus").join(name);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .map(|d| d.filter_map(|e| e.ok()).map(|e| e.path()).collect())
        .unwrap_or_default();
    files.sort();
    files
        .into_iter()
        .filter(|p| p.is_file())
        .map(|p| {
            let bytes = std::fs::read(&p).expect("corpus file reads");
            (p.display().to_string(), bytes)
        })
        .collect()
}

/// xorshift64*: small, deterministic, good enough to pick mutations.
struct Rng(u64);

impl Rng {
    fn new(name: &str) -> Rng {
        // FNV-1a of the target name: each target its own sequence.
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for b in name.bytes() {
            h = (h ^ b as u64).wrapping_mul(0x0100_0000_01b3);
        }
        Rng(h | 1)
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next() % n as u64) as usize
        }
    }
}

/// Bytes that matter to the decoders: varint tags, boundaries, JSON and CBOR punctuation.
const INTERESTING: &[u8] = &[
    0, 1, 2, 0x7f, 0x80, 0xff, 250, 251, 252, 253, 0x83, b'"', b'{', b'[', b'-', b'.', b'0', b'\n',
    b'=', 0x40, 0x5f, 0x9f, 0xbf, 0xf6,
];

fn mutate(rng: &mut Rng, base: &[u8], other: &[u8]) -> Vec<u8> {
    let mut v = base.to_vec();
    for _ in 0..1 + rng.below(4) {
        let len = v.len();
        match rng.below(8) {
            0 if len > 0 => {
                let i = rng.below(len);
                v[i] ^= 1 << rng.below(8);
            }
            1 if len > 0 => {
                let i = rng.below(len);
                v[i] = INTERESTING[rng.below(INTERESTING.len())];
            }
            2 => {
                let i = rng.below(len + 1);
                let n = 1 + rng.below(4);
                let bytes: Vec<u8> = (0..n).map(|_| rng.next() as u8).collect();
                v.splice(i..i, bytes);
            }
            3 if len > 0 => {
                let i = rng.below(len);
                let n = 1 + rng.below((len - i).min(16));
                v.drain(i..i + n);
            }
            4 if len > 0 => {
                let i = rng.below(len);
                let n = 1 + rng.below((len - i).min(64));
                let chunk = v[i..i + n].to_vec();
                let at = rng.below(len + 1);
                v.splice(at..at, chunk);
            }
            5 if !other.is_empty() => {
                let i = rng.below(len + 1);
                let j = rng.below(other.len());
                v.truncate(i);
                v.extend_from_slice(&other[j..]);
            }
            6 if len > 0 => v.truncate(rng.below(len)),
            _ => {
                let i = rng.below(len + 1);
                v.insert(i, INTERESTING[rng.below(INTERESTING.len())]);
            }
        }
    }
    v.truncate(MAX_LEN);
    v
}

fn run_one(name: &str, f: fn(&[u8]), label: &str, input: &[u8]) {
    if catch_unwind(AssertUnwindSafe(|| f(input))).is_err() {
        let dump = std::env::temp_dir().join(format!("wattle-fuzz-smoke-{name}.bin"));
        let _ = std::fs::write(&dump, input);
        panic!(
            "fuzz target {name} failed on {label} (input saved to {}; replay with `cargo +nightly fuzz run {name} <file>` in fuzz/)",
            dump.display()
        );
    }
}

fn smoke(name: &str) {
    let f = target(name).expect("a target");
    let started = Instant::now();
    let mut inputs: Vec<(String, Vec<u8>)> = seeds(name)
        .into_iter()
        .enumerate()
        .map(|(i, s)| (format!("seed {i}"), s))
        .collect();
    inputs.extend(corpus(name));
    inputs.push(("the empty input".into(), Vec::new()));
    for (label, bytes) in &inputs {
        run_one(name, f, label, bytes);
    }
    let iterations = std::env::var("WATTLE_FUZZ_SMOKE_ITERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(ITERATIONS);
    let mut rng = Rng::new(name);
    for n in 0..iterations {
        let base = &inputs[rng.below(inputs.len())].1;
        let other = &inputs[rng.below(inputs.len())].1;
        let input = mutate(&mut rng, base, other);
        run_one(name, f, &format!("mutation {n}"), &input);
    }
    eprintln!(
        "{name}: {} stored inputs and {iterations} mutations in {:?}",
        inputs.len(),
        started.elapsed()
    );
}

macro_rules! smoke_tests {
    ($($name:ident),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                smoke(stringify!($name));
            }
        )*

        /// Every target has a smoke test here, a libFuzzer target in `fuzz/fuzz_targets/` and a
        /// corpus directory.
        #[test]
        fn every_target_is_wired() {
            let here = [$(stringify!($name)),*];
            for (name, _) in TARGETS {
                assert!(here.contains(name), "{name} has no smoke test");
                let src = fuzz_dir().join("fuzz_targets").join(format!("{name}.rs"));
                assert!(src.is_file(), "{} is missing", src.display());
                let manifest = std::fs::read_to_string(fuzz_dir().join("Cargo.toml")).unwrap();
                assert!(manifest.contains(&format!("name = \"{name}\"")), "{name} is not in fuzz/Cargo.toml");
                assert!(!corpus(name).is_empty(), "fuzz/corpus/{name} is empty");
            }
            assert_eq!(here.len(), TARGETS.len());
        }
    };
}

smoke_tests!(
    tx_decode,
    block_decode,
    gossip_tx_batch,
    gossip_block,
    sync_request,
    sync_response,
    rpc_request,
    rpc_commands,
    decoderawexchange,
    http_reply,
    cli_args,
    params_toml,
);

/// Adds the seeds to `fuzz/corpus/` (run once by hand: `cargo test -p wattle-fuzz-targets
/// --test smoke -- --ignored write_seeds`).
#[test]
#[ignore]
fn write_seeds() {
    for (name, _) in TARGETS {
        let dir = fuzz_dir().join("corpus").join(name);
        std::fs::create_dir_all(&dir).unwrap();
        for seed in seeds(name) {
            let mut h: u64 = 0xcbf2_9ce4_8422_2325;
            for b in &seed {
                h = (h ^ *b as u64).wrapping_mul(0x0100_0000_01b3);
            }
            std::fs::write(dir.join(format!("seed-{h:016x}")), &seed).unwrap();
        }
    }
}
