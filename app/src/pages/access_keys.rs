//! Access keys: the primary and secondary key, hidden until shown, with copy and regenerate.

use eframe::egui;

use crate::caches::Cache;

/// What the user asked for on this page.
pub enum Action {
    None,
    Regenerate { primary: bool },
}

pub fn show(ui: &mut egui::Ui, cache: &Cache, revealed: &mut bool) -> Action {
    let settings = &cache.settings;
    if !settings.access_keys {
        ui.label("Access keys authentication is disabled: clients connect without AUTH.");
        return Action::None;
    }
    ui.checkbox(revealed, "Show access keys");
    let mut action = Action::None;
    for (label, key, primary) in [
        ("Primary", &settings.primary_key, true),
        ("Secondary", &settings.secondary_key, false),
    ] {
        ui.horizontal(|ui| {
            ui.strong(format!("{label} key"));
            let shown = if *revealed {
                key.clone()
            } else {
                "*".repeat(16)
            };
            ui.monospace(shown);
            if ui
                .button(format!("Copy {} key", label.to_lowercase()))
                .clicked()
            {
                ui.ctx().copy_text(key.clone());
            }
            if ui
                .button(format!("Regenerate {} key", label.to_lowercase()))
                .clicked()
            {
                action = Action::Regenerate { primary };
            }
        });
    }
    ui.small("A regenerated key takes effect at once: clients must AUTH with a current key.");
    action
}
