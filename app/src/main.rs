//! CacheDesk desktop app entry point: starts the tokio runtime that hosts the embedded engine,
//! then opens the window. The full portal-like UI is built on top of this shell.

mod app;

use anyhow::Context as _;

fn main() -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the tokio runtime")?;
    let options = eframe::NativeOptions {
        viewport: eframe::egui::ViewportBuilder::default()
            .with_title("CacheDesk")
            .with_inner_size([1100.0, 720.0]),
        ..Default::default()
    };
    let handle = runtime.handle().clone();
    eframe::run_native(
        "CacheDesk",
        options,
        Box::new(move |_cc| Ok(Box::new(app::CacheDeskApp::new(handle)))),
    )
    .map_err(|e| anyhow::anyhow!("the window failed: {e}"))
}
