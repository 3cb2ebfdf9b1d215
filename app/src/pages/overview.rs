//! Overview: status, endpoint with a copy button and a ready-to-paste redis-cli line, size and
//! memory, keys per database and by type, Pub/Sub channels, patterns and subscribers,
//! persistence, uptime, and live charts of ops/s, clients and Pub/Sub messages per second.

use cachedesk_engine::keyspace::ValueType;
use eframe::egui;
use egui_plot::{Line, Plot, PlotPoints};

use crate::caches::Cache;
use crate::widgets::{bytes, duration, status_badge};

pub fn show(ui: &mut egui::Ui, cache: &Cache) {
    let settings = &cache.settings;
    let telemetry = cache.instance.as_ref().map(|i| i.telemetry());
    egui::Grid::new("overview")
        .num_columns(2)
        .spacing([24.0, 6.0])
        .show(ui, |ui| {
            ui.strong("Status");
            status_badge(ui, &cache.status);
            ui.end_row();
            ui.strong("Endpoint");
            let endpoint = format!("{}:{}", settings.bind, cache.port());
            ui.horizontal(|ui| {
                ui.monospace(&endpoint);
                if ui.button("Copy endpoint").clicked() {
                    ui.ctx().copy_text(endpoint.clone());
                }
            });
            ui.end_row();
            ui.strong("redis-cli");
            ui.horizontal(|ui| {
                ui.monospace(settings.redis_cli_line(cache.port(), false));
                if ui.button("Copy redis-cli line").clicked() {
                    ui.ctx()
                        .copy_text(settings.redis_cli_line(cache.port(), true));
                }
            });
            ui.end_row();
            ui.strong("Cache size");
            ui.label(settings.sku().describe());
            ui.end_row();
            ui.strong("Used memory");
            match &telemetry {
                Some(t) => ui.add(
                    egui::ProgressBar::new(if t.maxmemory > 0 {
                        t.used_memory as f32 / t.maxmemory as f32
                    } else {
                        0.0
                    })
                    .desired_width(240.0)
                    .text(format!(
                        "{} of {}",
                        bytes(t.used_memory),
                        bytes(t.maxmemory)
                    )),
                ),
                None => ui.label("not running"),
            };
            ui.end_row();
            ui.strong("Data persistence");
            ui.label(settings.persistence.describe());
            ui.end_row();
            ui.strong("Eviction policy");
            ui.label(settings.eviction.label());
            ui.end_row();
            if let Some(t) = &telemetry {
                ui.strong("Uptime");
                ui.label(duration(t.uptime_secs));
                ui.end_row();
                ui.strong("Keys");
                let per_db: Vec<String> = t
                    .keys_per_db
                    .iter()
                    .enumerate()
                    .filter(|(_, n)| **n > 0)
                    .map(|(db, n)| format!("db{db}: {n}"))
                    .collect();
                ui.label(if per_db.is_empty() {
                    "none".to_string()
                } else {
                    per_db.join(", ")
                });
                ui.end_row();
                ui.strong("Keys by type");
                ui.label(keys_by_type(&t.keys_by_type));
                ui.end_row();
                ui.strong("Pub/Sub");
                ui.label(pubsub_summary(t));
                ui.end_row();
            }
        });
    if let Some(note) = &cache.data_note {
        ui.add_space(4.0);
        ui.label(note);
    }
    if let Some(loss) = &cache.reboot_loss {
        ui.colored_label(ui.visuals().warn_fg_color, format!("Last reboot: {loss}"));
    }
    if telemetry.is_some() {
        ui.add_space(8.0);
        ui.columns(3, |cols| {
            chart(&mut cols[0], "Operations per second", cache, |s| {
                s.ops_per_sec
            });
            chart(&mut cols[1], "Connected clients", cache, |s| s.clients);
            chart(&mut cols[2], "Pub/Sub messages per second", cache, |s| {
                s.messages_per_sec
            });
        });
    }
}

/// "2 channels, 1 pattern, 3 subscribers".
fn pubsub_summary(t: &cachedesk_engine::Telemetry) -> String {
    let count = |n: usize, what: &str| format!("{n} {what}{}", if n == 1 { "" } else { "s" });
    format!(
        "{}, {}, {}",
        count(t.pubsub_channels, "channel"),
        count(t.pubsub_patterns, "pattern"),
        count(t.pubsub_subscribers, "subscriber")
    )
}

/// "12 strings, 1 stream" for the types that have keys.
fn keys_by_type(counts: &[u64; 6]) -> String {
    let named: Vec<String> = ValueType::ALL
        .iter()
        .zip(counts)
        .filter(|(_, n)| **n > 0)
        .map(|(kind, n)| {
            let name = match kind {
                ValueType::ZSet => "sorted set",
                other => other.name(),
            };
            format!("{n} {name}{}", if *n == 1 { "" } else { "s" })
        })
        .collect();
    if named.is_empty() {
        "none".into()
    } else {
        named.join(", ")
    }
}

fn chart(
    ui: &mut egui::Ui,
    title: &str,
    cache: &Cache,
    value: impl Fn(&crate::caches::Sample) -> f64,
) {
    ui.label(title);
    let points: PlotPoints = cache.samples.iter().map(|s| [s.t, value(s)]).collect();
    Plot::new(title)
        .height(140.0)
        .allow_drag(false)
        .allow_zoom(false)
        .allow_scroll(false)
        .include_y(0.0)
        .show(ui, |plot| plot.line(Line::new(title, points)));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_counts_name_each_type_that_has_keys() {
        assert_eq!(keys_by_type(&[0; 6]), "none");
        assert_eq!(
            keys_by_type(&[12, 0, 1, 0, 2, 1]),
            "12 strings, 1 hash, 2 sorted sets, 1 stream"
        );
    }

    #[test]
    fn pubsub_summary_counts_each_kind() {
        let t = cachedesk_engine::Telemetry {
            pubsub_channels: 2,
            pubsub_patterns: 1,
            pubsub_subscribers: 3,
            ..Default::default()
        };
        assert_eq!(pubsub_summary(&t), "2 channels, 1 pattern, 3 subscribers");
    }
}
