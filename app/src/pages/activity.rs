//! Activity log: every lifecycle event of the cache (created, started, stopped, scaled,
//! rebooted, errors) and the engine's own (saves, restores, rewrites), newest first.

use eframe::egui;
use egui_extras::{Column, TableBuilder};

use crate::caches::Cache;
use crate::widgets::clock;

pub fn show(ui: &mut egui::Ui, cache: &Cache) {
    if cache.activity.is_empty() {
        ui.label("Nothing has happened yet.");
        return;
    }
    TableBuilder::new(ui)
        .striped(true)
        .column(Column::auto().at_least(90.0))
        .column(Column::auto().at_least(140.0))
        .column(Column::remainder())
        .header(20.0, |mut header| {
            header.col(|ui| {
                ui.strong("Time");
            });
            header.col(|ui| {
                ui.strong("Event");
            });
            header.col(|ui| {
                ui.strong("Detail");
            });
        })
        .body(|mut body| {
            for entry in cache.activity.iter().rev() {
                body.row(20.0, |mut row| {
                    row.col(|ui| {
                        ui.label(clock(entry.at));
                    });
                    row.col(|ui| {
                        ui.label(&entry.what);
                    });
                    row.col(|ui| {
                        ui.label(&entry.detail);
                    });
                });
            }
        });
}
