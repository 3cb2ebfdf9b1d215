//! The Review + create tab: every choice in one table, and each tab's errors.

use eframe::egui;

use super::{Draft, Findings, Tab};
use crate::model::sku::Sku;

pub fn show(ui: &mut egui::Ui, draft: &Draft, all: &[Findings]) {
    let sku = Sku::by_id(&draft.sku);
    let rows = [
        ("Name", draft.name.trim().to_string()),
        ("Data tier", draft.tier.label().to_string()),
        ("Performance", draft.performance.label().to_string()),
        ("Cache size", sku.map_or("none".into(), Sku::describe)),
        (
            "Endpoint",
            format!("{}:{}", draft.bind.trim(), draft.port.trim()),
        ),
        (
            "Access keys",
            if draft.access_keys {
                "Enabled"
            } else {
                "Disabled"
            }
            .into(),
        ),
        ("Clustering policy", draft.clustering.label().into()),
        ("Eviction policy", draft.eviction.label().into()),
        ("Data persistence", draft.persistence.describe()),
        (
            "Tags",
            draft
                .tags
                .iter()
                .filter(|t| !t.name.trim().is_empty())
                .map(|t| format!("{}={}", t.name.trim(), t.value.trim()))
                .collect::<Vec<_>>()
                .join(", "),
        ),
    ];
    egui::Grid::new("review")
        .num_columns(2)
        .striped(true)
        .show(ui, |ui| {
            for (field, value) in rows {
                ui.strong(field);
                ui.label(value);
                ui.end_row();
            }
        });
    ui.add_space(8.0);
    let mut clean = true;
    for (tab, findings) in Tab::ALL.iter().zip(all) {
        for e in &findings.errors {
            clean = false;
            ui.colored_label(ui.visuals().error_fg_color, format!("{}: {e}", tab.label()));
        }
    }
    if clean {
        ui.label("Validation passed.");
    }
}
