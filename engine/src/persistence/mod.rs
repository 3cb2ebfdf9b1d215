//! Persistence beside the keyspace: RDB files (`rdb`), the point-in-time snapshot that feeds
//! them without fork (`snapshot`), the save schedule (`schedule`) and loading on start
//! (`restore`).

pub mod rdb;
