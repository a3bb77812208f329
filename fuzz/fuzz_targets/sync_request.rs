#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| wattle_fuzz_targets::sync::sync_request(data));
