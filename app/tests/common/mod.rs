//! What the UI tests share: an app on a temporary data dir in a kittest harness, and acting on
//! its controls by label.

use std::path::Path;
use std::time::{Duration, Instant};

use cachedesk::model::store::Paths;
use cachedesk::CacheDeskApp;
use egui::accesskit::Role;
use egui::{Key, Modifiers};
use egui_kittest::kittest::Queryable;
use egui_kittest::{Harness, HarnessBuilder};

/// The app on `dir`, its long work on `runtime`, in a harness `builder` made.
pub fn harness(
    builder: HarnessBuilder<CacheDeskApp>,
    dir: &Path,
    runtime: &tokio::runtime::Runtime,
) -> Harness<'static, CacheDeskApp> {
    let app = CacheDeskApp::new(Paths::in_dir(dir), runtime.handle().clone());
    builder.build_ui_state(|ui, app: &mut CacheDeskApp| app.show(ui), app)
}

/// Replaces the text of the field labelled `label`.
pub fn set_field(h: &mut Harness<'_, CacheDeskApp>, label: &str, text: &str) {
    h.get_by_role_and_label(Role::TextInput, label).focus();
    h.key_press_modifiers(Modifiers::COMMAND, Key::A);
    h.get_by_role_and_label(Role::TextInput, label)
        .type_text(text);
    h.run_steps(2);
}

pub fn click(h: &mut Harness<'_, CacheDeskApp>, label: &str) {
    h.get_by_label(label).click();
    h.run_steps(2);
}

/// Steps the UI until `done` holds (the engine works on other threads meanwhile).
pub fn wait_until(
    h: &mut Harness<'_, CacheDeskApp>,
    what: &str,
    done: impl Fn(&CacheDeskApp) -> bool,
) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        h.step();
        if done(h.state()) {
            h.step();
            return;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}
