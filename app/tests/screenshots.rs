//! Snapshot images of the main screens in dark and light, rendered by wgpu (WGPU_BACKEND=gl
//! on Mesa llvmpipe, so every machine draws the same pixels). They live in screenshots/ and
//! are shown in the README; the test fails when the UI drifts from them
//! (`UPDATE_SNAPSHOTS=1 cargo test -p cachedesk --test screenshots` accepts a change).
//! What moves by itself (uptime, the live charts) is masked.

mod common;

use std::path::Path;

use cachedesk::caches::Status;
use cachedesk::CacheDeskApp;
use common::{click, set_field, wait_until};
use egui::Key;
use egui_kittest::kittest::Queryable;
use egui_kittest::{Harness, SnapshotOptions};

fn harness(dir: &Path, runtime: &tokio::runtime::Runtime) -> Harness<'static, CacheDeskApp> {
    common::harness(
        Harness::builder().with_size([1100.0, 720.0]).wgpu(),
        dir,
        runtime,
    )
}

fn snap(h: &mut Harness<'_, CacheDeskApp>, name: &str) {
    snap_masked(h, name, |_| Vec::new());
}

/// Takes the snapshot with the rects `masks` finds painted over (after the last step).
fn snap_masked(
    h: &mut Harness<'_, CacheDeskApp>,
    name: &str,
    masks: impl Fn(&Harness<'_, CacheDeskApp>) -> Vec<egui::Rect>,
) {
    h.remove_cursor();
    h.run_steps(3);
    for rect in masks(h) {
        h.mask(rect);
    }
    let options = SnapshotOptions::new()
        .output_path(Path::new(env!("CARGO_MANIFEST_DIR")).join("../screenshots"));
    h.snapshot_options(name, &options);
}

/// The value right of the label `label` (a figure that changes by itself).
fn value_of(h: &Harness<'_, CacheDeskApp>, label: &str) -> egui::Rect {
    let at = h.get_by_label(label).rect();
    egui::Rect::from_min_size(
        egui::pos2(at.min.x + 120.0, at.min.y - 1.0),
        egui::vec2(90.0, at.height() + 2.0),
    )
}

/// The plot under the chart title `title`.
fn plot_under(h: &Harness<'_, CacheDeskApp>, title: &str) -> egui::Rect {
    let at = h.get_by_label(title).rect();
    egui::Rect::from_min_size(
        egui::pos2(at.min.x, at.max.y + 2.0),
        egui::vec2(430.0, 150.0),
    )
}

fn screens(theme: &str, port: u16) {
    let dir = tempfile::tempdir().expect("tempdir");
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let mut h = harness(dir.path(), &runtime);
    h.run_steps(2);
    if theme == "light" {
        click(&mut h, "Light theme");
    }
    snap(&mut h, &format!("cache-list-{theme}"));

    click(&mut h, "+ Create");
    set_field(&mut h, "Cache name", "orders");
    snap(&mut h, &format!("wizard-basics-{theme}"));
    click(&mut h, "Next");
    set_field(&mut h, "Port", &port.to_string());
    snap(&mut h, &format!("wizard-networking-{theme}"));
    click(&mut h, "Next");
    click(&mut h, "Access keys authentication");
    click(&mut h, "RDB (snapshots)");
    snap(&mut h, &format!("wizard-advanced-{theme}"));
    click(&mut h, "Next");
    click(&mut h, "Add tag");
    set_field(&mut h, "Tag 1 name", "team");
    set_field(&mut h, "Tag 1 value", "checkout");
    snap(&mut h, &format!("wizard-tags-{theme}"));
    click(&mut h, "Next");
    snap(&mut h, &format!("wizard-review-{theme}"));
    click(&mut h, "Create");
    wait_until(&mut h, "the cache to start", |app| {
        app.caches.list[0].status == Status::Running
    });
    snap_masked(&mut h, &format!("overview-{theme}"), |h| {
        vec![
            value_of(h, "Uptime"),
            plot_under(h, "Operations per second"),
            plot_under(h, "Connected clients"),
        ]
    });

    click(&mut h, "Console");
    for line in ["SET greeting hello", "GET greeting", "INCR greeting"] {
        set_field(&mut h, "db0>", line);
        // The command line goes into the transcript, then its reply.
        let before = h.state().console_transcript().len();
        h.key_press(Key::Enter);
        wait_until(&mut h, "the reply", |app| {
            app.console_transcript().len() == before + 2
        });
    }
    snap(&mut h, &format!("console-{theme}"));

    click(&mut h, "Import/Export");
    snap(&mut h, &format!("import-export-{theme}"));

    click(&mut h, "Scale");
    click(&mut h, "New cache size");
    click(&mut h, "B3 (3 GB)");
    snap(&mut h, &format!("scale-{theme}"));
    h.state_mut().caches.shutdown_all();
}

#[test]
fn main_screens_dark() {
    screens("dark", 26_381);
}

#[test]
fn main_screens_light() {
    screens("light", 26_382);
}
