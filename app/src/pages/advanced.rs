//! Advanced settings: the cache's access keys, clustering and eviction as they are in force,
//! and the Data persistence panel as the portal shows it on an existing cache (Disabled / RDB
//! with its Backup Frequency / AOF, Save and Discard, what a change will do), with live views
//! of what persistence does: snapshot timing, AOF size and fsync health, rewrite progress and
//! every restore.

use std::time::{Duration, Instant, SystemTime};

use eframe::egui;
use egui_extras::{Column, TableBuilder};
use egui_plot::{HLine, Line, Plot, PlotPoints, Points};

use cachedesk_engine::PersistenceFiles;

use crate::caches::Cache;
use crate::model::{BackupFrequency, Persistence};
use crate::widgets::{bytes, clock, duration, persistence};

/// What the user asked for on this page.
pub enum Action {
    None,
    Apply(Persistence),
    BackUpNow,
    RewriteNow,
}

/// The panel's state: the choice being edited (None: the one in force), and what a stopped
/// cache's folder held when last looked at (at most once a second, not every frame).
#[derive(Default)]
pub struct AdvancedPage {
    draft: Option<Persistence>,
    stopped_files: Option<(Instant, String)>,
}

impl AdvancedPage {
    /// A stopped cache's persistence files, looked at again once a second at most.
    fn stopped_files(&mut self, cache: &Cache, dir: &std::path::Path) -> String {
        match &self.stopped_files {
            Some((seen, text)) if seen.elapsed() < Duration::from_secs(1) => text.clone(),
            _ => {
                let cfg = cache.settings.instance_config(dir);
                let files = PersistenceFiles::in_dir(dir, &cfg.dbfilename, &cfg.appenddirname);
                let text = files_text(&files);
                self.stopped_files = Some((Instant::now(), text.clone()));
                text
            }
        }
    }

    pub fn show(&mut self, ui: &mut egui::Ui, cache: &Cache, dir: &std::path::Path) -> Action {
        let settings = &cache.settings;
        let telemetry = cache.instance.as_ref().map(|i| i.telemetry());
        let files = match &telemetry {
            Some(telemetry) => files_text(&telemetry.files),
            None => self.stopped_files(cache, dir),
        };
        egui::Grid::new("advanced")
            .num_columns(2)
            .spacing([24.0, 6.0])
            .show(ui, |ui| {
                ui.strong("Access keys authentication");
                ui.label(if settings.access_keys {
                    "Enabled"
                } else {
                    "Disabled"
                });
                ui.end_row();
                ui.strong("Clustering policy");
                ui.label("Non-clustered");
                ui.end_row();
                ui.strong("Eviction policy");
                ui.label(settings.eviction.label());
                ui.end_row();
                ui.strong("Persistence files");
                ui.label(files);
                ui.end_row();
            });
        ui.add_space(8.0);
        ui.heading("Data persistence");
        let mut action = self.choice(ui, cache);
        ui.add_space(8.0);
        if let Some(telemetry) = &telemetry {
            match settings.persistence {
                Persistence::Rdb(frequency) => {
                    if snapshot_timing(ui, cache, telemetry, frequency) {
                        action = Action::BackUpNow;
                    }
                }
                Persistence::Aof => {
                    if aof_views(ui, cache, telemetry) {
                        action = Action::RewriteNow;
                    }
                }
                Persistence::Disabled => {
                    ui.label("Persistence is off: a failure or reboot loses all data.");
                }
            }
            // Live views repaint once a second, faster only while a save or rewrite runs.
            let working =
                telemetry.rdb.save_progress.is_some() || telemetry.aof.rewrite_progress.is_some();
            ui.ctx().request_repaint_after(if working {
                Duration::from_millis(250)
            } else {
                Duration::from_secs(1)
            });
        }
        ui.add_space(8.0);
        restore_table(ui, cache);
        action
    }

    /// The radio options, the frequency, what a change will do, Save and Discard.
    fn choice(&mut self, ui: &mut egui::Ui, cache: &Cache) -> Action {
        let current = cache.settings.persistence;
        let mut draft = self.draft.unwrap_or(current);
        let busy = cache.busy();
        ui.add_enabled_ui(!busy, |ui| persistence::choice(ui, &mut draft, None));
        self.draft = (draft != current).then_some(draft);
        let Some(new) = self.draft else {
            return Action::None;
        };
        ui.colored_label(ui.visuals().warn_fg_color, consequence(current, new));
        let mut action = Action::None;
        ui.horizontal(|ui| {
            if ui.add_enabled(!busy, egui::Button::new("Save")).clicked() {
                action = Action::Apply(new);
                self.draft = None;
            }
            if ui.button("Discard").clicked() {
                self.draft = None;
            }
        });
        action
    }
}

/// What a change from `old` to `new` will do, said before it is saved.
fn consequence(old: Persistence, new: Persistence) -> String {
    let both = "RDB and AOF can't both be on.";
    match (old, new) {
        (Persistence::Aof, Persistence::Rdb(_)) => format!(
            "A snapshot is taken first; once it is on disk the AOF files are removed. {both}"
        ),
        (_, Persistence::Aof) => format!(
            "Logging starts at once and a rewrite creates the AOF's base; {}{both}",
            if matches!(old, Persistence::Rdb(_)) {
                "then the RDB dump is removed. "
            } else {
                ""
            }
        ),
        (Persistence::Aof, Persistence::Disabled) => {
            "The AOF stops and its files are removed: a failure will lose all data.".into()
        }
        (Persistence::Rdb(_), Persistence::Disabled) => {
            "Backups stop and the dump is removed: a failure will lose all data.".into()
        }
        (Persistence::Rdb(_), Persistence::Rdb(f)) => format!(
            "Backups run every {}, counted from the end of the previous one.",
            f.label()
        ),
        (_, Persistence::Rdb(f)) => format!(
            "Backups run every {}; the first {} after this change. {both}",
            f.label(),
            f.label()
        ),
        (_, Persistence::Disabled) => "Nothing changes.".into(),
    }
}

/// Seconds from now until `at` (0 if past).
fn until(at: SystemTime) -> u64 {
    at.duration_since(SystemTime::now())
        .map_or(0, |d| d.as_secs())
}

/// Last and next backup, changes at risk, a save in progress and the recent saves' chart.
/// True if "Back up now" was clicked.
fn snapshot_timing(
    ui: &mut egui::Ui,
    cache: &Cache,
    telemetry: &cachedesk_engine::Telemetry,
    frequency: BackupFrequency,
) -> bool {
    ui.strong("Snapshot timing");
    let rdb = &telemetry.rdb;
    egui::Grid::new("snapshot-timing")
        .num_columns(2)
        .spacing([24.0, 4.0])
        .show(ui, |ui| {
            ui.label("Last backup");
            ui.label(match &rdb.last_save {
                Some(s) if s.error.is_none() => format!(
                    "{} UTC, {} keys, {} in {:.2} s",
                    clock(s.started_at),
                    s.keys,
                    bytes(s.bytes),
                    s.duration.as_secs_f64()
                ),
                Some(s) => format!(
                    "failed at {} UTC: {}",
                    clock(s.started_at),
                    s.error.as_deref().unwrap_or("")
                ),
                None => "none yet".into(),
            });
            ui.end_row();
            ui.label("Next backup");
            ui.label(match rdb.next_save_at {
                Some(at) => format!(
                    "in {} (every {}, counted from the end of the previous backup)",
                    duration(until(at)),
                    frequency.label()
                ),
                None if rdb.save_progress.is_some() => "running now".into(),
                None => "not scheduled".into(),
            });
            ui.end_row();
            ui.label("Changes since the last backup");
            ui.label(format!(
                "{} (a failure now would lose them)",
                telemetry.changes_since_save
            ));
            ui.end_row();
        });
    if let Some((done, total)) = rdb.save_progress {
        ui.add(
            egui::ProgressBar::new(done as f32 / total.max(1) as f32)
                .text(format!("Backing up: {done} of {total} keys")),
        );
    }
    let backup = ui
        .add_enabled(
            rdb.save_progress.is_none() && !cache.busy(),
            egui::Button::new("Back up now"),
        )
        .clicked();
    let points: PlotPoints = rdb
        .history
        .iter()
        .map(|s| {
            let ago = SystemTime::now()
                .duration_since(s.started_at)
                .map_or(0.0, |d| d.as_secs_f64());
            [-ago / 60.0, s.duration.as_secs_f64()]
        })
        .collect();
    ui.label("Recent backups: duration (s) against minutes ago");
    Plot::new("backups")
        .height(120.0)
        .allow_drag(false)
        .allow_zoom(false)
        .allow_scroll(false)
        .include_x(0.0)
        .include_y(0.0)
        .show(ui, |plot| {
            plot.points(Points::new("backups", points).radius(4.0))
        });
    backup
}

/// AOF size against the rewrite threshold, fsync health and rewrite progress. True if
/// "Rewrite now" was clicked.
fn aof_views(ui: &mut egui::Ui, cache: &Cache, telemetry: &cachedesk_engine::Telemetry) -> bool {
    let aof = &telemetry.aof;
    let Some(figures) = &aof.figures else {
        ui.label("The AOF is starting.");
        return false;
    };
    ui.strong("AOF size");
    ui.label(format!(
        "{} in all, {} of it the base; an automatic rewrite starts at {}.",
        bytes(figures.current_size),
        bytes(figures.base_size),
        aof.rewrite_threshold.map_or("never".into(), bytes)
    ));
    let points: PlotPoints = cache
        .samples
        .iter()
        .map(|s| [s.t, s.aof_bytes / 1e6])
        .collect();
    Plot::new("aof-size")
        .height(120.0)
        .allow_drag(false)
        .allow_zoom(false)
        .allow_scroll(false)
        .include_y(0.0)
        .show(ui, |plot| {
            plot.line(Line::new("AOF size (MB)", points));
            if let Some(threshold) = aof.rewrite_threshold {
                plot.hline(HLine::new("rewrite threshold", threshold as f64 / 1e6));
            }
        });
    ui.strong("fsync health");
    ui.label(format!(
        "Last fsync {} ago; {} delayed; last write {}.",
        duration(figures.last_fsync_age.as_secs()),
        figures.delayed_fsyncs,
        match &figures.write_error {
            None => "ok".to_string(),
            Some(e) => format!("failed ({e}): writes are refused until it recovers"),
        }
    ));
    ui.strong("Rewrite");
    match (aof.rewrite_progress, aof.rewrite_started_at) {
        (Some((done, total)), Some(started)) => {
            let elapsed = SystemTime::now()
                .duration_since(started)
                .unwrap_or_default()
                .as_secs_f64();
            let eta = if done > 0 {
                elapsed * (total.saturating_sub(done)) as f64 / done as f64
            } else {
                0.0
            };
            ui.add(
                egui::ProgressBar::new(done as f32 / total.max(1) as f32).text(format!(
                    "Rewriting: {done} of {total} keys, {elapsed:.1} s so far, about {eta:.1} s left"
                )),
            );
        }
        _ => {
            ui.label(match &aof.last_rewrite {
                Some(r) if r.error.is_none() => format!(
                    "Last rewrite at {} UTC: {} keys in {:.2} s; the AOF went from {} to {}.",
                    clock(r.started_at),
                    r.keys,
                    r.duration.as_secs_f64(),
                    bytes(r.size_before),
                    bytes(r.size_after)
                ),
                Some(r) => format!(
                    "Last rewrite failed ({} in a row): {}",
                    aof.rewrites_failed_in_a_row,
                    r.error.as_deref().unwrap_or("")
                ),
                None => "No rewrite yet.".into(),
            });
        }
    }
    ui.add_enabled(
        aof.rewrite_progress.is_none() && !cache.busy(),
        egui::Button::new("Rewrite now"),
    )
    .clicked()
}

/// Every restore of this cache: on start, after a reboot, or an import.
fn restore_table(ui: &mut egui::Ui, cache: &Cache) {
    ui.strong("Restore events");
    if cache.restores.is_empty() {
        ui.label("No restore yet: restores happen when the cache starts from its persistence or imports a file.");
        return;
    }
    TableBuilder::new(ui)
        .id_salt("restores")
        .striped(true)
        .columns(Column::auto(), 8)
        .column(Column::remainder())
        .header(20.0, |mut header| {
            for title in [
                "When",
                "Source",
                "Files",
                "Loaded",
                "Expired",
                "Evicted",
                "Truncated tail",
                "Duration",
                "Outcome",
            ] {
                header.col(|ui| {
                    ui.strong(title);
                });
            }
        })
        .body(|mut body| {
            for r in cache.restores.iter().rev() {
                body.row(20.0, |mut row| {
                    let cells = [
                        format!("{} UTC", clock(r.started_at)),
                        r.format.to_string(),
                        r.files.join(", "),
                        r.keys_loaded.to_string(),
                        r.keys_expired.to_string(),
                        r.keys_evicted.to_string(),
                        r.truncated.clone().unwrap_or_else(|| "none".into()),
                        format!("{:.2} s", r.duration.as_secs_f64()),
                        r.error.clone().unwrap_or_else(|| "ok".into()),
                    ];
                    for cell in cells {
                        row.col(|ui| {
                            // One line per row: long file lists extend the column.
                            ui.add(egui::Label::new(cell).wrap_mode(egui::TextWrapMode::Extend));
                        });
                    }
                });
            }
        });
}

/// The persistence files as the panel lists them.
fn files_text(files: &PersistenceFiles) -> String {
    let found: Vec<String> = [
        files
            .dump
            .as_ref()
            .map(|(name, size)| format!("{name} ({})", bytes(*size))),
        files
            .aof_dir
            .as_ref()
            .map(|(name, size)| format!("{name}/ ({})", bytes(*size))),
    ]
    .into_iter()
    .flatten()
    .collect();
    if found.is_empty() {
        "none".into()
    } else {
        found.join(", ")
    }
}
