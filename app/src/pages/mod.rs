//! The pages of a cache's resource menu, a file each.

pub mod access_keys;
pub mod activity;
pub mod advanced;
pub mod console;
pub mod overview;
pub mod scale;

/// The resource menu's entries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Page {
    Overview,
    Advanced,
    Scale,
    Activity,
    Console,
    AccessKeys,
}

impl Page {
    pub const ALL: [Page; 6] = [
        Page::Overview,
        Page::Advanced,
        Page::Scale,
        Page::Activity,
        Page::Console,
        Page::AccessKeys,
    ];

    pub fn label(self) -> &'static str {
        match self {
            Page::Overview => "Overview",
            Page::Advanced => "Advanced settings",
            Page::Scale => "Scale",
            Page::Activity => "Activity log",
            Page::Console => "Console",
            Page::AccessKeys => "Access keys",
        }
    }
}
