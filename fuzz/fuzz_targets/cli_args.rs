#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| wattle_fuzz_targets::cli::cli_args(data));
