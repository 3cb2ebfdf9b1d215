//! The Networking tab: where the cache listens. Locally that is a bind address (loopback by
//! default) and a port (a free one by default); conflicts are caught before create.

use eframe::egui;

use super::{text_field, Context, Draft, Findings};
use crate::model::validation::{bind_problem, port_problem};

pub fn show(ui: &mut egui::Ui, draft: &mut Draft) {
    ui.label("Connectivity: a local endpoint. Azure's public and private endpoints map to the bind address here.");
    text_field(ui, "Bind address", &mut draft.bind);
    ui.small("127.0.0.1 keeps the cache on this machine; 0.0.0.0 opens it to the network.");
    text_field(ui, "Port", &mut draft.port);
}

pub fn check(draft: &Draft, ctx: &Context) -> Findings {
    let mut findings = Findings::default();
    if let Some(problem) = bind_problem(&draft.bind) {
        findings.errors.push(problem);
    } else if let Some(problem) = port_problem(&draft.port, &draft.bind, &ctx.ports) {
        findings.errors.push(problem);
    }
    if draft.bind.trim() != "127.0.0.1" && draft.bind.trim() != "::1" && !draft.access_keys {
        findings.warnings.push(
            "The cache listens beyond loopback without access keys: anyone on the network can use it."
                .into(),
        );
    }
    findings
}
