//! Measures the app's frame time with 20 running caches, the Overview and its live charts on
//! screen: each frame's UI pass (layout and tessellation, `Harness::step`) and the same plus
//! a wgpu render (Mesa llvmpipe here, as in the real window on this machine). Figures are
//! printed, never asserted:
//!
//!     WGPU_BACKEND=gl cargo run --release -p cachedesk --example frame_time

use std::time::{Duration, Instant};

use cachedesk::caches::Status;
use cachedesk::model::store::Paths;
use cachedesk::CacheDeskApp;
use egui_kittest::Harness;

const CACHES: usize = 20;
const FRAMES: usize = 300;

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[i].as_secs_f64() * 1000.0
}

fn report(what: &str, mut times: Vec<Duration>) {
    times.sort();
    println!(
        "{what}: median {:.2} ms, p99 {:.2} ms, max {:.2} ms over {} frames",
        percentile(&times, 0.5),
        percentile(&times, 0.99),
        percentile(&times, 1.0),
        times.len()
    );
}

fn main() {
    let dir = tempfile::tempdir().expect("tempdir");
    let entries: Vec<String> = (0..CACHES)
        .map(|i| {
            format!(
                r#"(name: "cache-{i}", sku: "Balanced_B0", bind: "127.0.0.1", port: 0,
                access_keys: false, primary_key: "", secondary_key: "", eviction: NoEviction,
                persistence: Disabled, tags: [], created: 0, running: true)"#
            )
        })
        .collect();
    std::fs::write(
        dir.path().join("caches.ron"),
        format!("(caches: [{}])", entries.join(",")),
    )
    .expect("settings");
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let app = CacheDeskApp::new(Paths::in_dir(dir.path()), runtime.handle().clone());
    let mut h = Harness::builder()
        .with_size([1280.0, 800.0])
        .wgpu()
        .build_ui_state(|ui, app: &mut CacheDeskApp| app.show(ui), app);
    let started = Instant::now();
    while !h
        .state()
        .caches
        .list
        .iter()
        .all(|c| c.status == Status::Running)
    {
        h.step();
        std::thread::sleep(Duration::from_millis(5));
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "caches did not start"
        );
    }
    // Let the charts fill a little (one sample a second).
    for _ in 0..30 {
        h.step();
        std::thread::sleep(Duration::from_millis(100));
    }
    let mut ui_only = Vec::with_capacity(FRAMES);
    for _ in 0..FRAMES {
        let t = Instant::now();
        h.step();
        ui_only.push(t.elapsed());
    }
    let mut with_render = Vec::with_capacity(FRAMES / 3);
    for _ in 0..FRAMES / 3 {
        let t = Instant::now();
        h.step();
        h.render().expect("render");
        with_render.push(t.elapsed());
    }
    println!("{CACHES} running caches, Overview with live charts, 1280x800:");
    report("UI pass (egui layout + tessellation)", ui_only);
    report("UI pass + wgpu render and readback (llvmpipe)", with_render);
    h.state_mut().caches.shutdown_all();
}
