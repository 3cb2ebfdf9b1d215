//! The eframe App: a portal-like layout. On the left the cache list with status badges and
//! "Create"; on the right the create wizard, or the selected cache with its command bar
//! (Start/Stop, Reboot, Delete) and resource menu (Overview, Advanced settings, Scale, Activity
//! log, Console, Access keys). `show` draws everything into a Ui, so the tests drive the same
//! code the window runs.

use eframe::egui;
use tokio::runtime::Handle;

use crate::caches::{Caches, Status};
use crate::model::store::Paths;
use crate::pages::advanced;
use crate::pages::import_export::{self, Dialogs, FilePicker};
use crate::pages::{self, Page, PageStates};
use crate::widgets::status_badge;
use crate::wizard::{self, Wizard};

pub struct CacheDeskApp {
    pub caches: Caches,
    runtime: Handle,
    /// The selected cache's name.
    selected: Option<String>,
    page: Page,
    wizard: Option<Wizard>,
    /// The cache whose deletion waits for confirmation.
    confirm_delete: Option<String>,
    /// The selected cache's pages, fresh each time a cache is selected (`select`).
    pages: PageStates,
    /// Where import and export files come from: the desktop's dialogs, or a test's choice.
    file_picker: Box<dyn FilePicker>,
    dark: bool,
}

impl CacheDeskApp {
    pub fn new(paths: Paths, runtime: Handle) -> Self {
        Self::with_file_picker(paths, runtime, Box::new(Dialogs))
    }

    /// The app with `file_picker` choosing import and export files (tests choose them).
    pub fn with_file_picker(
        paths: Paths,
        runtime: Handle,
        file_picker: Box<dyn FilePicker>,
    ) -> Self {
        let caches = Caches::open(paths, runtime.clone());
        let selected = caches.list.first().map(|c| c.settings.name.clone());
        CacheDeskApp {
            caches,
            runtime,
            selected,
            page: Page::Overview,
            wizard: None,
            confirm_delete: None,
            pages: PageStates::default(),
            file_picker,
            dark: true,
        }
    }

    /// Draws the whole app into `ui` and schedules the next repaint.
    pub fn show(&mut self, ui: &mut egui::Ui) {
        let changed = self.caches.poll(ui.ctx());
        ui.ctx().set_theme(if self.dark {
            egui::Theme::Dark
        } else {
            egui::Theme::Light
        });
        egui::Panel::top("command-bar").show(ui, |ui| self.top_bar(ui));
        egui::Panel::left("cache-list")
            .resizable(false)
            .exact_size(220.0)
            .show(ui, |ui| self.cache_list(ui));
        if let Some(notice) = self.caches.notice.clone() {
            ui.horizontal(|ui| {
                ui.colored_label(ui.visuals().warn_fg_color, notice);
                if ui.button("Dismiss").clicked() {
                    self.caches.notice = None;
                }
            });
        }
        if self.wizard.is_some() {
            self.wizard_page(ui);
        } else {
            self.cache_page(ui);
        }
        // Repaint for a change just seen or a live view on screen; work in flight wakes the
        // window when it finishes, and engine events wake it too (Caches::poll).
        if changed {
            ui.ctx()
                .request_repaint_after(std::time::Duration::from_millis(100));
        } else if self.wizard.is_none() && self.page == Page::Overview && self.selected_running() {
            ui.ctx()
                .request_repaint_after(std::time::Duration::from_secs(1));
        }
    }

    /// What the console shows (for tests and screen readers alike, the same lines).
    pub fn console_transcript(&self) -> &[String] {
        &self.pages.console.transcript
    }

    /// True while the console waits for a command's reply (a blocking command).
    pub fn console_waiting(&self) -> bool {
        self.pages.console.waiting()
    }

    /// True while the console reads Pub/Sub messages (after SUBSCRIBE, until Stop).
    pub fn console_reading_messages(&self) -> bool {
        self.pages.console.reading_messages()
    }

    /// Shows the cache `name` on its Overview, its pages fresh: nothing typed, chosen or
    /// revealed for the cache selected before carries over.
    fn select(&mut self, name: String) {
        self.selected = Some(name);
        self.page = Page::Overview;
        self.pages = PageStates::default();
    }

    fn selected_index(&self) -> Option<usize> {
        self.caches.find(self.selected.as_deref()?)
    }

    fn selected_running(&self) -> bool {
        self.selected_index()
            .is_some_and(|i| self.caches.list[i].status == Status::Running)
    }

    fn top_bar(&mut self, ui: &mut egui::Ui) {
        ui.horizontal(|ui| {
            ui.heading("CacheDesk");
            ui.label("Local Redis caches with Azure-style persistence");
            ui.with_layout(egui::Layout::right_to_left(egui::Align::Center), |ui| {
                let theme = if self.dark {
                    "Light theme"
                } else {
                    "Dark theme"
                };
                if ui.button(theme).clicked() {
                    self.dark = !self.dark;
                }
            });
        });
    }

    fn cache_list(&mut self, ui: &mut egui::Ui) {
        ui.add_space(4.0);
        if ui.button("+ Create").clicked() {
            self.wizard = Some(Wizard::default());
        }
        ui.separator();
        if self.caches.list.is_empty() {
            ui.label("No caches yet.");
        }
        let mut clicked = None;
        for cache in &self.caches.list {
            let name = &cache.settings.name;
            ui.horizontal(|ui| {
                let selected = self.wizard.is_none() && self.selected.as_ref() == Some(name);
                if ui.selectable_label(selected, name).clicked() {
                    clicked = Some(name.clone());
                }
                status_badge(ui, &cache.status);
            });
        }
        if let Some(name) = clicked {
            self.wizard = None;
            self.select(name);
        }
    }

    fn wizard_page(&mut self, ui: &mut egui::Ui) {
        let ctx = wizard::Context {
            names: self
                .caches
                .list
                .iter()
                .map(|c| c.settings.name.clone())
                .collect(),
            ports: self.caches.list.iter().map(|c| c.port()).collect(),
        };
        let Some(wizard) = self.wizard.as_mut() else {
            return;
        };
        match wizard.show(ui, &ctx) {
            wizard::Action::None => {}
            wizard::Action::Cancel => self.wizard = None,
            wizard::Action::Create(settings) => {
                self.select(settings.name.clone());
                self.caches.create(settings);
                self.wizard = None;
            }
        }
    }

    fn cache_page(&mut self, ui: &mut egui::Ui) {
        let Some(i) = self.selected_index() else {
            ui.label("Create a cache to get started: it runs on this machine and any Redis client can use it.");
            return;
        };
        let name = self.caches.list[i].settings.name.clone();
        ui.horizontal(|ui| {
            ui.heading(&name);
            status_badge(ui, &self.caches.list[i].status);
        });
        if let Status::CreateFailed(reason) | Status::Failed(reason) = &self.caches.list[i].status {
            ui.colored_label(ui.visuals().error_fg_color, reason);
        }
        self.command_bar(ui, i, &name);
        ui.separator();
        // A deletion may have started: the cache is still listed until it is gone.
        let Some(i) = self.caches.find(&name) else {
            return;
        };
        ui.horizontal(|ui| {
            for page in Page::ALL {
                if ui
                    .selectable_label(self.page == page, page.label())
                    .clicked()
                {
                    self.page = page;
                }
            }
        });
        ui.separator();
        let cache = &self.caches.list[i];
        match self.page {
            Page::Overview => pages::overview::show(ui, cache),
            Page::Advanced => match self.caches.paths.cache_dir(&name) {
                Err(e) => {
                    ui.colored_label(ui.visuals().error_fg_color, format!("{e:#}"));
                }
                Ok(dir) => match self.pages.advanced.show(ui, cache, &dir) {
                    advanced::Action::None => {}
                    advanced::Action::Apply(new) => self.caches.set_persistence(i, new),
                    advanced::Action::BackUpNow => self.caches.back_up_now(i),
                    advanced::Action::RewriteNow => self.caches.rewrite_now(i),
                },
            },
            Page::Scale => {
                if let Some(sku) = self.pages.scale.show(ui, cache) {
                    self.caches.scale(i, sku);
                }
            }
            Page::ImportExport => {
                match self.pages.import_export.show(
                    ui,
                    cache,
                    self.file_picker.as_ref(),
                    &self.runtime,
                ) {
                    import_export::Action::None => {}
                    import_export::Action::Export(path) => self.caches.export(i, path),
                    import_export::Action::Import(path) => self.caches.import(i, path),
                }
            }
            Page::Activity => pages::activity::show(ui, cache),
            Page::Console => {
                let instance = cache.instance.clone();
                self.pages
                    .console
                    .show(ui, instance.as_ref(), &self.runtime)
            }
            Page::AccessKeys => {
                if let pages::access_keys::Action::Regenerate { primary } =
                    pages::access_keys::show(ui, cache, &mut self.pages.keys_revealed)
                {
                    self.caches.regenerate_key(i, primary);
                }
            }
        }
    }

    fn command_bar(&mut self, ui: &mut egui::Ui, i: usize, name: &str) {
        let status = self.caches.list[i].status.clone();
        ui.horizontal(|ui| {
            let running = status == Status::Running;
            let idle = !self.caches.list[i].busy();
            if running {
                if ui.add_enabled(idle, egui::Button::new("Stop")).clicked() {
                    self.caches.stop(i);
                }
            } else if ui.add_enabled(idle, egui::Button::new("Start")).clicked() {
                self.caches.start(i);
            }
            if ui
                .add_enabled(running && idle, egui::Button::new("Reboot"))
                .clicked()
            {
                self.caches.reboot(i);
            }
            if ui.add_enabled(idle, egui::Button::new("Delete")).clicked() {
                self.confirm_delete = Some(name.to_string());
            }
        });
        if self.confirm_delete.as_deref() == Some(name) {
            ui.horizontal(|ui| {
                ui.colored_label(
                    ui.visuals().warn_fg_color,
                    format!("Delete {name} and all its data? This can't be undone."),
                );
                if ui.button("Yes, delete").clicked() {
                    self.caches.delete(i);
                    self.confirm_delete = None;
                }
                if ui.button("Keep it").clicked() {
                    self.confirm_delete = None;
                }
            });
        }
    }
}

impl eframe::App for CacheDeskApp {
    fn ui(&mut self, ui: &mut egui::Ui, _frame: &mut eframe::Frame) {
        egui::CentralPanel::default().show(ui, |ui| self.show(ui));
    }

    fn on_exit(&mut self) {
        self.caches.shutdown_all();
    }
}
