//! RESP2/RESP3 wire protocol: an incremental request parser with Redis's limits and error texts,
//! and the reply type with its encoder.

pub mod output;
pub mod parser;
pub mod reply;

pub use output::Output;
pub use parser::{ProtocolError, Request, RequestParser};
pub use reply::{ArrayWriter, Reply};
