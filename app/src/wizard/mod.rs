//! The create-cache wizard, with the portal's tabs (a file each): Basics, Networking,
//! Advanced, Tags, Review + create. Previous/Next walk the tabs, the headers can be clicked,
//! and a tab whose fields have a problem is marked; Create is possible once none has.

mod advanced;
mod basics;
mod networking;
mod review;
mod tags;

use eframe::egui;

use crate::model::sku::{Performance, Tier};
use crate::model::{CacheSettings, Eviction, Persistence, Tag};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tab {
    Basics,
    Networking,
    Advanced,
    Tags,
    Review,
}

impl Tab {
    pub const ALL: [Tab; 5] = [
        Tab::Basics,
        Tab::Networking,
        Tab::Advanced,
        Tab::Tags,
        Tab::Review,
    ];

    pub fn label(self) -> &'static str {
        match self {
            Tab::Basics => "Basics",
            Tab::Networking => "Networking",
            Tab::Advanced => "Advanced",
            Tab::Tags => "Tags",
            Tab::Review => "Review + create",
        }
    }

    fn index(self) -> usize {
        Tab::ALL.iter().position(|t| *t == self).unwrap_or(0)
    }
}

/// The portal's clustering policies; only Non-clustered runs on one machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Clustering {
    Enterprise,
    Oss,
    NonClustered,
}

impl Clustering {
    pub const ALL: [Clustering; 3] = [
        Clustering::Enterprise,
        Clustering::Oss,
        Clustering::NonClustered,
    ];

    pub fn label(self) -> &'static str {
        match self {
            Clustering::Enterprise => "Enterprise",
            Clustering::Oss => "OSS",
            Clustering::NonClustered => "Non-clustered",
        }
    }
}

/// What the wizard's fields hold (text as typed, checked when shown).
#[derive(Debug, Clone)]
pub struct Draft {
    pub name: String,
    pub tier: Tier,
    pub performance: Performance,
    pub sku: String,
    pub bind: String,
    pub port: String,
    pub access_keys: bool,
    pub clustering: Clustering,
    pub eviction: Eviction,
    pub persistence: Persistence,
    pub tags: Vec<Tag>,
}

impl Draft {
    /// A new cache's defaults (`CacheSettings::default`), on a port that is free now.
    fn new() -> Draft {
        let defaults = CacheSettings::default();
        let sku = defaults.sku();
        Draft {
            name: defaults.name,
            tier: sku.performance.tier(),
            performance: sku.performance,
            sku: sku.id(),
            bind: defaults.bind,
            port: crate::model::validation::free_port().to_string(),
            access_keys: defaults.access_keys,
            clustering: Clustering::NonClustered,
            eviction: defaults.eviction,
            persistence: defaults.persistence,
            tags: defaults.tags,
        }
    }

    fn settings(&self) -> CacheSettings {
        CacheSettings {
            name: self.name.trim().to_string(),
            sku: self.sku.clone(),
            bind: self.bind.trim().to_string(),
            port: self.port.trim().parse().unwrap_or(0),
            access_keys: self.access_keys,
            eviction: self.eviction,
            persistence: self.persistence,
            tags: self
                .tags
                .iter()
                .filter(|t| !t.name.trim().is_empty())
                .cloned()
                .collect(),
            running: true,
            // Fresh access keys, created now.
            ..CacheSettings::default()
        }
    }
}

/// What the checks need to know about the other caches.
pub struct Context {
    pub names: Vec<String>,
    pub ports: Vec<u16>,
}

/// Problems of one tab, and warnings that don't block a create.
#[derive(Debug, Default, Clone)]
pub struct Findings {
    pub errors: Vec<String>,
    pub warnings: Vec<String>,
}

pub struct Wizard {
    pub tab: Tab,
    pub draft: Draft,
    /// Tabs the user has left or tried to create from: their errors are shown.
    visited: [bool; 5],
    /// The machine's free memory when the wizard opened (read once, not every frame).
    available_memory: Option<u64>,
}

impl Default for Wizard {
    fn default() -> Self {
        Wizard {
            tab: Tab::Basics,
            draft: Draft::new(),
            visited: [false; 5],
            available_memory: crate::model::validation::available_memory(),
        }
    }
}

fn findings(tab: Tab, draft: &Draft, ctx: &Context, available_memory: Option<u64>) -> Findings {
    match tab {
        Tab::Basics => basics::check(draft, ctx, available_memory),
        Tab::Networking => networking::check(draft, ctx),
        Tab::Advanced => advanced::check(draft),
        Tab::Tags => tags::check(draft),
        Tab::Review => Findings::default(),
    }
}

/// What the user did with the wizard this frame.
pub enum Action {
    None,
    Cancel,
    Create(CacheSettings),
}

impl Wizard {
    pub fn show(&mut self, ui: &mut egui::Ui, ctx: &Context) -> Action {
        let all: Vec<Findings> = Tab::ALL
            .iter()
            .map(|t| findings(*t, &self.draft, ctx, self.available_memory))
            .collect();
        ui.heading("Create a cache");
        ui.horizontal(|ui| {
            for tab in Tab::ALL {
                let marked = self.visited[tab.index()] && !all[tab.index()].errors.is_empty();
                let label = if marked {
                    format!("{} (!)", tab.label())
                } else {
                    tab.label().to_string()
                };
                let text = if marked {
                    egui::RichText::new(label).color(ui.visuals().error_fg_color)
                } else {
                    egui::RichText::new(label)
                };
                if ui.selectable_label(self.tab == tab, text).clicked() {
                    self.go(tab);
                }
            }
        });
        ui.separator();
        let mut action = Action::None;
        egui::ScrollArea::vertical()
            .max_height(ui.available_height() - 40.0)
            .show(ui, |ui| {
                match self.tab {
                    Tab::Basics => basics::show(ui, &mut self.draft),
                    Tab::Networking => networking::show(ui, &mut self.draft),
                    Tab::Advanced => advanced::show(ui, &mut self.draft),
                    Tab::Tags => tags::show(ui, &mut self.draft),
                    Tab::Review => review::show(ui, &self.draft, &all),
                }
                let here = &all[self.tab.index()];
                if self.visited[self.tab.index()] || self.tab == Tab::Review {
                    problems(ui, here);
                } else {
                    warnings(ui, here);
                }
            });
        ui.separator();
        ui.horizontal(|ui| {
            let i = self.tab.index();
            if ui
                .add_enabled(i > 0, egui::Button::new("Previous"))
                .clicked()
            {
                self.go(Tab::ALL[i - 1]);
            }
            if self.tab != Tab::Review && ui.button("Next").clicked() {
                self.go(Tab::ALL[i + 1]);
            }
            if self.tab == Tab::Review && ui.button("Create").clicked() {
                self.visited = [true; 5];
                if all.iter().all(|f| f.errors.is_empty()) {
                    action = Action::Create(self.draft.settings());
                }
            }
            if ui.button("Cancel").clicked() {
                action = Action::Cancel;
            }
        });
        action
    }

    /// Moves to `tab`, marking the tab left as visited (its errors show from then on).
    fn go(&mut self, tab: Tab) {
        self.visited[self.tab.index()] = true;
        if tab == Tab::Review {
            self.visited = [true; 5];
        }
        self.tab = tab;
    }
}

fn warnings(ui: &mut egui::Ui, findings: &Findings) {
    for w in &findings.warnings {
        ui.colored_label(ui.visuals().warn_fg_color, format!("Warning: {w}"));
    }
}

fn problems(ui: &mut egui::Ui, findings: &Findings) {
    for e in &findings.errors {
        ui.colored_label(ui.visuals().error_fg_color, format!("Error: {e}"));
    }
    warnings(ui, findings);
}

/// A labelled single-line text field (the label is what screen readers and tests find).
pub fn text_field(ui: &mut egui::Ui, label: &str, value: &mut String) -> egui::Response {
    ui.horizontal(|ui| {
        let label = ui.label(label);
        ui.text_edit_singleline(value).labelled_by(label.id)
    })
    .inner
}
