//! The Advanced tab: access keys, clustering policy, eviction policy and Data persistence, as
//! the portal shows them.

use eframe::egui;

use super::{Clustering, Draft, Findings};
use crate::model::Eviction;
use crate::widgets::persistence;

pub fn show(ui: &mut egui::Ui, draft: &mut Draft) {
    ui.checkbox(&mut draft.access_keys, "Access keys authentication");
    ui.small("Clients must AUTH with the primary or secondary key.");
    ui.add_space(6.0);
    ui.label("Clustering policy");
    for policy in Clustering::ALL {
        let runs_here = policy == Clustering::NonClustered;
        ui.add_enabled_ui(runs_here, |ui| {
            ui.radio_value(&mut draft.clustering, policy, policy.label())
                .on_disabled_hover_text("Needs several nodes: a local cache runs on one.");
        });
    }
    ui.small("Enterprise and OSS clustering need several nodes; a local cache is Non-clustered.");
    ui.add_space(6.0);
    egui::ComboBox::from_label("Eviction policy")
        .selected_text(draft.eviction.label())
        .show_ui(ui, |ui| {
            for policy in Eviction::ALL {
                ui.selectable_value(&mut draft.eviction, policy, policy.label());
            }
        });
    ui.add_space(6.0);
    ui.label("Data persistence");
    persistence::choice(
        ui,
        &mut draft.persistence,
        Some("The interval starts after the previous backup completes."),
    );
    ui.small("RDB and AOF can't both be on. Persistence brings data back after a failure; it is not a backup.");
}

pub fn check(draft: &Draft) -> Findings {
    let mut findings = Findings::default();
    if draft.clustering != Clustering::NonClustered {
        findings
            .errors
            .push("Only the Non-clustered policy runs on one machine.".into());
    }
    findings
}
