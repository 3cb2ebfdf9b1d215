//! The Tags tab: name/value rows, as the portal keeps them.

use eframe::egui;

use super::{Draft, Findings};
use crate::model::Tag;

pub fn show(ui: &mut egui::Ui, draft: &mut Draft) {
    ui.label("Tags are name/value pairs that help you sort caches.");
    let mut remove = None;
    for (i, tag) in draft.tags.iter_mut().enumerate() {
        ui.horizontal(|ui| {
            let name = ui.label(format!("Tag {} name", i + 1));
            ui.text_edit_singleline(&mut tag.name).labelled_by(name.id);
            let value = ui.label(format!("Tag {} value", i + 1));
            ui.text_edit_singleline(&mut tag.value)
                .labelled_by(value.id);
            if ui.button(format!("Remove tag {}", i + 1)).clicked() {
                remove = Some(i);
            }
        });
    }
    if let Some(i) = remove {
        draft.tags.remove(i);
    }
    if ui.button("Add tag").clicked() {
        draft.tags.push(Tag {
            name: String::new(),
            value: String::new(),
        });
    }
}

pub fn check(draft: &Draft) -> Findings {
    let mut findings = Findings::default();
    let mut seen = std::collections::HashSet::new();
    for (i, tag) in draft.tags.iter().enumerate() {
        let name = tag.name.trim();
        if name.is_empty() && !tag.value.trim().is_empty() {
            findings
                .errors
                .push(format!("Tag {} has a value but no name.", i + 1));
        } else if name.len() > 512 || tag.value.len() > 256 {
            findings.errors.push(format!(
                "Tag {}: names are at most 512 characters, values 256.",
                i + 1
            ));
        } else if !name.is_empty() && !seen.insert(name.to_ascii_lowercase()) {
            findings
                .errors
                .push(format!("Tag name '{name}' is used twice."));
        }
    }
    findings
}
