//! The Data persistence choice as the portal shows it (Disabled, RDB with its Backup
//! Frequency, AOF), one widget over `model::Persistence` for the create wizard's Advanced tab
//! and for an existing cache's Data persistence panel.

use eframe::egui;

use crate::model::{BackupFrequency, Persistence};

/// The radio options editing `value`: under RDB its Backup Frequency, then `rdb_note` if
/// given; under AOF what a power loss can cost. Picking RDB starts at the default frequency.
pub fn choice(ui: &mut egui::Ui, value: &mut Persistence, rdb_note: Option<&str>) {
    ui.radio_value(value, Persistence::Disabled, "Disabled");
    let rdb = matches!(value, Persistence::Rdb(_));
    if ui.radio(rdb, "RDB (snapshots)").clicked() && !rdb {
        *value = Persistence::Rdb(BackupFrequency::default());
    }
    if let Persistence::Rdb(frequency) = value {
        egui::ComboBox::from_label("Backup Frequency")
            .selected_text(frequency.label())
            .show_ui(ui, |ui| {
                for option in BackupFrequency::ALL {
                    ui.selectable_value(frequency, option, option.label());
                }
            });
        if let Some(note) = rdb_note {
            ui.small(note);
        }
    }
    ui.radio_value(value, Persistence::Aof, "AOF (write every second)");
    if *value == Persistence::Aof {
        ui.small("Every write is logged before its reply; the log is flushed to disk once a second, so a power loss can lose about the last second.");
    }
}

#[cfg(test)]
mod tests {
    use egui_kittest::kittest::Queryable;
    use egui_kittest::Harness;

    use super::*;

    const NOTE: &str = "the note under RDB";

    fn click(h: &mut Harness<'_, Persistence>, label: &str) {
        h.get_by_label(label).click();
        h.run_steps(2);
    }

    #[test]
    fn picking_an_option_edits_the_one_model() {
        let mut h = Harness::new_ui_state(
            |ui, value: &mut Persistence| choice(ui, value, Some(NOTE)),
            Persistence::Disabled,
        );
        h.run();
        assert!(h.query_by_label_contains("Backup Frequency").is_none());
        click(&mut h, "RDB (snapshots)");
        assert_eq!(*h.state(), Persistence::Rdb(BackupFrequency::Hourly));
        h.get_by_label(NOTE);
        click(&mut h, "Backup Frequency");
        click(&mut h, "6 hours");
        assert_eq!(*h.state(), Persistence::Rdb(BackupFrequency::SixHours));
        // Picking RDB again keeps the frequency chosen.
        click(&mut h, "RDB (snapshots)");
        assert_eq!(*h.state(), Persistence::Rdb(BackupFrequency::SixHours));
        click(&mut h, "AOF (write every second)");
        assert_eq!(*h.state(), Persistence::Aof);
        assert!(h.query_by_label_contains("Backup Frequency").is_none());
        h.get_by_label_contains("lose about the last second");
        click(&mut h, "Disabled");
        assert_eq!(*h.state(), Persistence::Disabled);
    }
}
