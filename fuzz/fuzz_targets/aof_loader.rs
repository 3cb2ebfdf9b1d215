//! Fuzz target: the AOF loader (commands of an incr or .base.aof file).
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| cachedesk_engine::fuzz::aof_loader(data));
