//! Helpers for the end-to-end tests: start cachedesk-server or redis-server on a free port,
//! talk raw RESP to either, and decide whether tests that need redis-server run or skip.

pub mod dataset;
pub mod in_process;
pub mod resp;
pub mod servers;
pub mod workload;

pub use servers::{redis_server_available, require_redis_server, ServerProcess};
