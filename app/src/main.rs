//! CacheDesk desktop app entry point: reads `--data-dir` (or CACHEDESK_DATA_DIR), starts the
//! tokio runtime that hosts the embedded engine, then opens the window. SIGTERM and SIGINT
//! close the window as its close button does, so the caches stop gracefully.

use std::path::PathBuf;

use anyhow::Context as _;
use cachedesk::model::store::{Paths, DATA_DIR_ENV};

fn paths_from_args() -> anyhow::Result<Paths> {
    let mut args = std::env::args().skip(1);
    let mut data_dir = std::env::var_os(DATA_DIR_ENV).map(PathBuf::from);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--data-dir" => {
                data_dir = Some(args.next().context("--data-dir needs a folder")?.into())
            }
            "--help" | "-h" => {
                println!("usage: cachedesk [--data-dir FOLDER]\n\nFOLDER (or {DATA_DIR_ENV}) holds the settings and every cache's data; by default they go in the user's config and data dirs.");
                std::process::exit(0);
            }
            other => anyhow::bail!("unknown argument '{other}' (try --help)"),
        }
    }
    match data_dir {
        Some(dir) => Ok(Paths::in_dir(&dir)),
        None => Paths::for_user(),
    }
}

/// Closes the window when the process gets SIGTERM or SIGINT.
fn close_on_signal(runtime: &tokio::runtime::Handle, ctx: eframe::egui::Context) {
    runtime.spawn(async move {
        use tokio::signal::unix::{signal, SignalKind};
        let (Ok(mut term), Ok(mut int)) = (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
        ) else {
            return;
        };
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
        ctx.send_viewport_cmd(eframe::egui::ViewportCommand::Close);
        ctx.request_repaint();
    });
}

fn main() -> anyhow::Result<()> {
    let paths = paths_from_args()?;
    let runtime = cachedesk_engine::server::runtime_builder()
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
        Box::new(move |cc| {
            close_on_signal(&handle, cc.egui_ctx.clone());
            Ok(Box::new(cachedesk::CacheDeskApp::new(paths, handle)))
        }),
    )
    .map_err(|e| anyhow::anyhow!("the window failed: {e}"))
}
