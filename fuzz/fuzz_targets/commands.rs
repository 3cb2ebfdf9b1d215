//! Fuzz target: arbitrary requests run through every command handler.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| cachedesk_engine::fuzz::commands(data));
