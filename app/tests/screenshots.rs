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
        egui::pos2(at.min.x - 2.0, at.max.y - 1.0),
        egui::vec2(290.0, 153.0),
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
            plot_under(h, "Pub/Sub messages per second"),
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

/// The rest of the row right of the label `label`.
fn row_right_of(h: &Harness<'_, CacheDeskApp>, label: &str) -> egui::Rect {
    let at = h.get_by_label(label).rect();
    egui::Rect::from_min_max(
        egui::pos2(at.max.x + 8.0, at.min.y - 1.0),
        egui::pos2(1100.0, at.max.y + 1.0),
    )
}

/// The rect of the node whose label contains `text`.
fn label_rect(h: &Harness<'_, CacheDeskApp>, text: &str) -> egui::Rect {
    h.get_by_label_contains(text).rect()
}

/// The column under the table header `title`, `rows` rows deep.
fn column_under(h: &Harness<'_, CacheDeskApp>, title: &str, rows: f32) -> egui::Rect {
    let at = h.get_by_label(title).rect();
    egui::Rect::from_min_size(
        egui::pos2(at.min.x - 2.0, at.max.y + 2.0),
        egui::vec2(at.width().max(70.0) + 4.0, 20.0 * rows + 4.0),
    )
}

/// The AOF views' dynamic parts: the size chart (between the size line and "fsync health"),
/// the age of the last fsync, the files' sizes.
fn aof_masks(h: &Harness<'_, CacheDeskApp>) -> Vec<egui::Rect> {
    let above = label_rect(h, "automatic rewrite starts at");
    let below = h.get_by_label("fsync health").rect();
    vec![
        egui::Rect::from_min_max(
            egui::pos2(above.min.x - 2.0, above.max.y - 1.0),
            egui::pos2(1100.0, below.min.y - 1.0),
        ),
        label_rect(h, "Last fsync"),
        row_right_of(h, "Persistence files"),
    ]
}

/// The Data persistence panel: Disabled, a change explained before saving, AOF with its live
/// views, mid-rewrite, the restore table after a reboot, RDB with its snapshot timing.
fn panel_screens(theme: &str, port: u16) {
    let dir = tempfile::tempdir().expect("tempdir");
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let mut h = common::harness(
        Harness::builder().with_size([1100.0, 900.0]).wgpu(),
        dir.path(),
        &runtime,
    );
    h.run_steps(2);
    if theme == "light" {
        click(&mut h, "Light theme");
    }
    click(&mut h, "+ Create");
    set_field(&mut h, "Cache name", "ledger");
    click(&mut h, "Next");
    set_field(&mut h, "Port", &port.to_string());
    click(&mut h, "Review + create");
    click(&mut h, "Create");
    wait_until(&mut h, "the cache to start", |app| {
        app.caches.list[0].status == Status::Running
    });
    click(&mut h, "Advanced settings");
    snap(&mut h, &format!("persistence-disabled-{theme}"));
    click(&mut h, "AOF (write every second)");
    snap(&mut h, &format!("persistence-change-{theme}"));
    click(&mut h, "Save");
    let instance = h.state().caches.list[0].instance.clone().expect("running");
    wait_until(&mut h, "AOF in force", |app| {
        let telemetry = instance.telemetry();
        app.caches.list[0].status == Status::Running
            && telemetry.aof.figures.is_some()
            && telemetry.aof.last_rewrite.is_some()
    });
    snap_masked(&mut h, &format!("persistence-aof-{theme}"), |h| {
        let mut masks = aof_masks(h);
        masks.push(label_rect(h, "Last rewrite at"));
        masks
    });

    // Mid-rewrite: enough keys that the rewrite takes a while.
    let populate: Vec<bytes::Bytes> = ["DEBUG", "POPULATE", "3000000"]
        .iter()
        .map(|a| bytes::Bytes::from(*a))
        .collect();
    assert_eq!(instance.execute(0, &populate), cachedesk_engine::Reply::OK);
    click(&mut h, "Rewrite now");
    wait_until(&mut h, "the rewrite to show", |_| {
        instance.telemetry().aof.rewrite_progress.is_some()
    });
    snap_masked(&mut h, &format!("persistence-rewriting-{theme}"), |h| {
        let mut masks = aof_masks(h);
        masks.push(label_rect(h, "in all, "));
        masks.push(label_rect(h, "Rewriting:"));
        masks
    });
    wait_until(&mut h, "the rewrite to end", |_| {
        instance.telemetry().aof.rewrite_progress.is_none()
    });

    // A reboot: the restore table lists it.
    assert_eq!(
        instance.execute(0, &[bytes::Bytes::from("FLUSHALL")]),
        cachedesk_engine::Reply::OK
    );
    drop(instance);
    click(&mut h, "Reboot");
    wait_until(&mut h, "the reboot", |app| {
        app.caches.list[0].status == Status::Running && app.caches.list[0].restores.len() == 1
    });
    click(&mut h, "Advanced settings");
    h.get_by_label("Restore events");
    let instance = h.state().caches.list[0].instance.clone().expect("running");
    wait_until(&mut h, "the AOF figures", |_| {
        instance.telemetry().aof.figures.is_some()
    });
    snap_masked(&mut h, &format!("persistence-restores-{theme}"), |h| {
        let mut masks = aof_masks(h);
        masks.push(column_under(h, "When", 1.0));
        masks.push(column_under(h, "Duration", 1.0));
        masks
    });

    click(&mut h, "RDB (snapshots)");
    click(&mut h, "Save");
    wait_until(&mut h, "RDB in force", |app| {
        app.caches.list[0].status == Status::Running
            && instance.telemetry().rdb.next_save_at.is_some()
    });
    snap_masked(&mut h, &format!("persistence-rdb-{theme}"), |h| {
        vec![
            label_rect(h, "Last backup").union(label_rect(h, "keys, ")),
            label_rect(h, "counted from the end"),
            {
                // The chart's grid and axis labels start right under the title.
                let title = label_rect(h, "Recent backups");
                egui::Rect::from_min_max(
                    egui::pos2(title.min.x - 2.0, title.max.y - 1.0),
                    egui::pos2(1100.0, title.max.y + 124.0),
                )
            },
            row_right_of(h, "Persistence files"),
            column_under(h, "When", 1.0),
            column_under(h, "Duration", 1.0),
        ]
    });
    drop(instance);
    h.state_mut().caches.shutdown_all();
}

#[test]
fn persistence_panel_dark() {
    panel_screens("dark", 26_383);
}

#[test]
fn persistence_panel_light() {
    panel_screens("light", 26_384);
}
