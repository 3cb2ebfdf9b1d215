//! The eframe App: for now a window that states what CacheDesk is and where the engine stands;
//! the portal-like pages are built on this shell.

use eframe::egui;

pub struct CacheDeskApp {
    _runtime: tokio::runtime::Handle,
}

impl CacheDeskApp {
    pub fn new(runtime: tokio::runtime::Handle) -> Self {
        CacheDeskApp { _runtime: runtime }
    }
}

impl eframe::App for CacheDeskApp {
    fn ui(&mut self, ui: &mut egui::Ui, _frame: &mut eframe::Frame) {
        egui::CentralPanel::default().show(ui, |ui| {
            ui.heading("CacheDesk");
            ui.label("Local Redis-compatible caches, with Azure-style data persistence.");
            ui.label(format!(
                "Engine: Redis {} compatible",
                cachedesk_engine::REDIS_VERSION
            ));
        });
    }
}
