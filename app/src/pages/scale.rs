//! Scale: change the cache's size. Going below the data's size evicts keys (allkeys-lru),
//! which the page states before it is applied; the result goes to the Activity log.

use eframe::egui;

use crate::caches::Cache;
use crate::model::sku::Sku;
use crate::widgets::bytes;

/// The page's state: the size being considered.
#[derive(Default)]
pub struct ScalePage {
    pub choice: Option<String>,
}

impl ScalePage {
    /// Returns the SKU to scale to when the user applies it.
    pub fn show(&mut self, ui: &mut egui::Ui, cache: &Cache) -> Option<&'static Sku> {
        let current = cache.settings.sku();
        ui.label(format!("Current size: {}", current.describe()));
        let choice = self.choice.get_or_insert_with(|| current.id());
        egui::ComboBox::from_label("New cache size")
            .selected_text(Sku::by_id(choice).map_or("choose".into(), Sku::describe))
            .show_ui(ui, |ui| {
                for sku in current.performance.skus() {
                    ui.selectable_value(choice, sku.id(), sku.describe());
                }
            });
        let target = Sku::by_id(choice)?;
        let used = cache
            .instance
            .as_ref()
            .map_or(0, |i| i.telemetry().used_memory);
        if target.maxmemory() < used {
            ui.colored_label(
                ui.visuals().warn_fg_color,
                format!(
                    "The data uses {}, more than {} holds ({}): keys will be evicted (allkeys-lru) until it fits.",
                    bytes(used),
                    target.code,
                    bytes(target.maxmemory())
                ),
            );
        }
        let mut apply = None;
        let idle = !cache.busy();
        if ui
            .add_enabled(idle && target != current, egui::Button::new("Apply scale"))
            .clicked()
        {
            apply = Some(target);
        }
        if let Some(result) = &cache.last_scale {
            ui.label(format!("Last scale: {result}."));
        }
        apply
    }
}
