//! Advanced settings: the cache's access keys, clustering, eviction and Data persistence as
//! they are in force, with the files persistence keeps on disk.

use eframe::egui;

use crate::caches::Cache;
use crate::widgets::bytes;

pub fn show(ui: &mut egui::Ui, cache: &Cache, dir: &std::path::Path) {
    let settings = &cache.settings;
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
            ui.strong("Data persistence");
            ui.label(settings.persistence.describe());
            ui.end_row();
            ui.strong("Files");
            ui.label(files(dir));
            ui.end_row();
        });
}

/// The persistence files in the cache's folder, with their sizes.
fn files(dir: &std::path::Path) -> String {
    let mut found = Vec::new();
    let dump = dir.join("dump.rdb");
    if let Ok(meta) = std::fs::metadata(&dump) {
        found.push(format!("dump.rdb ({})", bytes(meta.len())));
    }
    if let Ok(entries) = std::fs::read_dir(dir.join("appendonlydir")) {
        let total: u64 = entries
            .filter_map(|e| e.ok()?.metadata().ok())
            .map(|m| m.len())
            .sum();
        found.push(format!("appendonlydir/ ({})", bytes(total)));
    }
    if found.is_empty() {
        "none".into()
    } else {
        found.join(", ")
    }
}
