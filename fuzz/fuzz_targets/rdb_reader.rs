//! Fuzz target: the RDB reader (files and RESTORE payloads).
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| cachedesk_engine::fuzz::rdb_reader(data));
