//! CacheDesk, the desktop app: creates, runs and inspects local caches served by the embedded
//! engine. A library so the UI tests drive the same code the window runs; `main.rs` only
//! opens the window.

pub mod app;
pub mod caches;
pub mod model;
pub mod pages;
pub mod widgets;
pub mod wizard;

pub use app::CacheDeskApp;
