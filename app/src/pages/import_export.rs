//! Import/Export: export the cache to an RDB file the user picks (a save dialog) while it
//! stays usable, with progress; import an RDB file (an open dialog) that replaces the data,
//! after a confirmation, with progress. Files from redis-server import here and exported
//! files load into redis-server. The dialogs sit behind `FilePicker`, so tests can choose the
//! file (the only thing they fake).

use std::path::PathBuf;

use eframe::egui;
use poll_promise::Promise;
use tokio::runtime::Handle;

use crate::caches::{Cache, Status, Transfer};
use crate::widgets::{bytes, duration};

/// Where the user's file choices come from.
pub trait FilePicker {
    /// Where to write an export; None if the user cancelled.
    fn save_rdb(&self, runtime: &Handle, suggested: &str) -> Promise<Option<PathBuf>>;
    /// Which file to import; None if the user cancelled.
    fn open_rdb(&self, runtime: &Handle) -> Promise<Option<PathBuf>>;
}

/// The desktop's file dialogs (rfd, through the XDG portal on Linux), off the UI thread.
pub struct Dialogs;

impl FilePicker for Dialogs {
    fn save_rdb(&self, runtime: &Handle, suggested: &str) -> Promise<Option<PathBuf>> {
        let dialog = rfd::AsyncFileDialog::new()
            .set_title("Export to an RDB file")
            .add_filter("RDB file", &["rdb"])
            .set_file_name(suggested);
        let (sender, promise) = Promise::new();
        runtime.spawn(async move {
            sender.send(dialog.save_file().await.map(|f| f.path().to_path_buf()));
        });
        promise
    }

    fn open_rdb(&self, runtime: &Handle) -> Promise<Option<PathBuf>> {
        let dialog = rfd::AsyncFileDialog::new()
            .set_title("Import an RDB file")
            .add_filter("RDB file", &["rdb"]);
        let (sender, promise) = Promise::new();
        runtime.spawn(async move {
            sender.send(dialog.pick_file().await.map(|f| f.path().to_path_buf()));
        });
        promise
    }
}

/// What the user asked for on this page.
pub enum Action {
    None,
    Export(PathBuf),
    Import(PathBuf),
}

enum Picking {
    Export(Promise<Option<PathBuf>>),
    Import(Promise<Option<PathBuf>>),
}

#[derive(Default)]
pub struct ImportExportPage {
    picking: Option<Picking>,
    /// A file chosen for import, waiting for the user's confirmation.
    confirm_import: Option<PathBuf>,
}

impl ImportExportPage {
    pub fn show(
        &mut self,
        ui: &mut egui::Ui,
        cache: &Cache,
        picker: &dyn FilePicker,
        runtime: &Handle,
    ) -> Action {
        let mut action = self.collect_pick();
        let ready = cache.status == Status::Running && !cache.busy() && self.picking.is_none();
        ui.heading("Export");
        ui.label("Writes the data as it is now to an RDB file; the cache stays usable meanwhile. redis-server 7.0 loads the file.");
        if ui
            .add_enabled(ready, egui::Button::new("Export to RDB file..."))
            .clicked()
        {
            let name = format!("{}.rdb", cache.settings.name);
            self.picking = Some(Picking::Export(picker.save_rdb(runtime, &name)));
        }
        ui.add_space(10.0);
        ui.heading("Import");
        ui.label("Replaces all data with an RDB file's (redis-server's or an export); clients wait until it is in. A file that fails to import leaves the data as it was.");
        if ui
            .add_enabled(ready, egui::Button::new("Import RDB file..."))
            .clicked()
        {
            self.picking = Some(Picking::Import(picker.open_rdb(runtime)));
        }
        if let Some(path) = self.confirm_import.clone() {
            ui.horizontal(|ui| {
                ui.colored_label(
                    ui.visuals().warn_fg_color,
                    format!(
                        "Replace all data of {} with {}?",
                        cache.settings.name,
                        path.display()
                    ),
                );
                if ui.button("Yes, import").clicked() {
                    action = Action::Import(path);
                    self.confirm_import = None;
                }
                if ui.button("Cancel import").clicked() {
                    self.confirm_import = None;
                }
            });
        }
        ui.add_space(10.0);
        progress(ui, cache);
        if let Some(line) = &cache.last_transfer {
            ui.label(format!("Last transfer: {line}."));
        }
        if self.picking.is_some() {
            ui.ctx()
                .request_repaint_after(std::time::Duration::from_millis(100));
        }
        action
    }

    /// Takes the user's file choice once the dialog is closed.
    fn collect_pick(&mut self) -> Action {
        let Some(picking) = self.picking.take() else {
            return Action::None;
        };
        match picking {
            Picking::Export(promise) => match promise.try_take() {
                Ok(Some(path)) => return Action::Export(path),
                Ok(None) => {}
                Err(promise) => self.picking = Some(Picking::Export(promise)),
            },
            Picking::Import(promise) => match promise.try_take() {
                Ok(Some(path)) => self.confirm_import = Some(path),
                Ok(None) => {}
                Err(promise) => self.picking = Some(Picking::Import(promise)),
            },
        }
        Action::None
    }
}

/// The running transfer's progress: keys written for an export, bytes read for an import.
fn progress(ui: &mut egui::Ui, cache: &Cache) {
    let (Some(transfer), Some(instance)) = (&cache.transfer, &cache.instance) else {
        return;
    };
    let telemetry = instance.telemetry();
    let (text, fraction) = match transfer {
        Transfer::Export(path) => {
            let (done, total) = telemetry.rdb.save_progress.unwrap_or((0, 0));
            (
                format!("Exporting to {}: {done} of {total} keys", path.display()),
                done as f32 / total.max(1) as f32,
            )
        }
        Transfer::Import(path) => {
            let (read, total, eta) = telemetry.rdb.loading.unwrap_or((0, 0, 0));
            (
                format!(
                    "Importing {}: {} of {}, about {} left",
                    path.display(),
                    bytes(read),
                    bytes(total),
                    duration(eta)
                ),
                read as f32 / total.max(1) as f32,
            )
        }
    };
    ui.label(text);
    ui.add(egui::ProgressBar::new(fraction).show_percentage());
    ui.ctx()
        .request_repaint_after(std::time::Duration::from_millis(200));
}
