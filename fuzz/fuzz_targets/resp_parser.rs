//! Fuzz target: the RESP/inline request parser, fed in arbitrary pieces.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| cachedesk_engine::fuzz::resp_parser(data));
