//! The pages of a cache's resource menu, a file each.

pub mod access_keys;
pub mod activity;
pub mod advanced;
pub mod console;
pub mod import_export;
pub mod overview;
pub mod scale;

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
