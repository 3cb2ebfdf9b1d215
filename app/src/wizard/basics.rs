//! The Basics tab: the cache's name, data tier, performance level and size (SKU).

use eframe::egui;

use super::{text_field, Context, Draft, Findings};
use crate::model::sku::{Sku, Tier};
use crate::model::validation::name_problem;
use crate::widgets::bytes;

pub fn show(ui: &mut egui::Ui, draft: &mut Draft) {
    text_field(ui, "Cache name", &mut draft.name);
    ui.small("1–60 letters, digits and hyphens; starts and ends with a letter or digit.");
    egui::ComboBox::from_label("Data tier")
        .selected_text(draft.tier.label())
        .show_ui(ui, |ui| {
            for tier in Tier::ALL {
                if ui
                    .selectable_value(&mut draft.tier, tier, tier.label())
                    .changed()
                {
                    draft.performance = tier.performances()[0];
                    draft.sku = first_sku(draft);
                }
            }
        });
    egui::ComboBox::from_label("Performance")
        .selected_text(draft.performance.label())
        .show_ui(ui, |ui| {
            for perf in draft.tier.performances() {
                if ui
                    .selectable_value(&mut draft.performance, *perf, perf.label())
                    .changed()
                {
                    draft.sku = first_sku(draft);
                }
            }
        });
    let current = Sku::by_id(&draft.sku);
    egui::ComboBox::from_label("Cache size")
        .selected_text(current.map_or("choose a size".into(), Sku::describe))
        .show_ui(ui, |ui| {
            for sku in draft.performance.skus() {
                ui.selectable_value(&mut draft.sku, sku.id(), sku.describe());
            }
        });
    if let Some(sku) = current {
        ui.label(format!(
            "{}: {} of memory, {} for data (about 20% is reserved for the system).",
            sku.id(),
            bytes(sku.size_bytes()),
            bytes(sku.maxmemory())
        ));
    }
}

fn first_sku(draft: &Draft) -> String {
    draft
        .performance
        .skus()
        .next()
        .map(Sku::id)
        .unwrap_or_default()
}

pub fn check(draft: &Draft, ctx: &Context, available_memory: Option<u64>) -> Findings {
    let mut findings = Findings::default();
    let name = draft.name.trim();
    if let Some(problem) = name_problem(name) {
        findings.errors.push(problem);
    } else if ctx.names.iter().any(|n| n.eq_ignore_ascii_case(name)) {
        findings
            .errors
            .push(format!("A cache named '{name}' already exists."));
    }
    match Sku::by_id(&draft.sku) {
        None => findings.errors.push("Choose a cache size.".into()),
        Some(sku) => {
            if let Some(free) = available_memory.filter(|free| sku.maxmemory() > *free) {
                findings.warnings.push(format!(
                    "{} can hold {} of data, more than this machine's {} of free memory: the cache may swap or be killed before it is full.",
                    sku.code,
                    bytes(sku.maxmemory()),
                    bytes(free)
                ));
            }
        }
    }
    findings
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_must_be_unique_and_sizes_beyond_free_memory_are_warned() {
        let mut draft = Draft::new();
        draft.name = "Orders".into();
        let ctx = Context {
            names: vec!["orders".into()],
            ports: Vec::new(),
        };
        let findings = check(&draft, &ctx, Some(u64::MAX));
        assert!(
            findings.errors[0].contains("already exists"),
            "{findings:?}"
        );
        assert!(findings.warnings.is_empty());
        draft.name = "orders-2".into();
        let findings = check(&draft, &ctx, Some(100 * 1024 * 1024));
        assert!(findings.errors.is_empty(), "{findings:?}");
        assert!(
            findings.warnings[0].contains("more than this machine's"),
            "{findings:?}"
        );
    }
}
