//! The pages of a cache's resource menu, a file each, and what they remember while their
//! cache is selected (`PageStates`).

pub mod access_keys;
pub mod activity;
pub mod advanced;
pub mod console;
pub mod import_export;
pub mod overview;
pub mod scale;

/// What the pages remember about the selected cache: all of it belongs to that cache, so
/// selecting another starts from `PageStates::default()` (nothing typed, chosen or revealed
/// for one cache carries over to the next).
#[derive(Default)]
pub struct PageStates {
    pub advanced: advanced::AdvancedPage,
    pub scale: scale::ScalePage,
    pub import_export: import_export::ImportExportPage,
    pub console: console::Console,
    /// Whether Access keys shows the keys instead of a placeholder.
    pub keys_revealed: bool,
}

/// The resource menu's entries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Page {
    Overview,
    Advanced,
    Scale,
    ImportExport,
    Activity,
    Console,
    AccessKeys,
}

impl Page {
    pub const ALL: [Page; 7] = [
        Page::Overview,
        Page::Advanced,
        Page::Scale,
        Page::ImportExport,
        Page::Activity,
        Page::Console,
        Page::AccessKeys,
    ];

    pub fn label(self) -> &'static str {
        match self {
            Page::Overview => "Overview",
            Page::Advanced => "Advanced settings",
            Page::Scale => "Scale",
            Page::ImportExport => "Import/Export",
            Page::Activity => "Activity log",
            Page::Console => "Console",
            Page::AccessKeys => "Access keys",
        }
    }
}
