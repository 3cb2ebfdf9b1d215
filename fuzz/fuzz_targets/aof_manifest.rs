//! Fuzz target: the multi-part AOF manifest parser.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| cachedesk_engine::fuzz::aof_manifest(data));
