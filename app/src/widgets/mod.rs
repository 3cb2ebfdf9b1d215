//! Small pieces the pages share: byte sizes, durations and the status badge; the Data
//! persistence choice the wizard and the Advanced page both show is in `persistence`.

pub mod persistence;

use eframe::egui;

use crate::caches::Status;

/// "12.0 MB", as people read sizes.
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KB", "MB", "GB", "TB"];
    let mut value = n as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// "1 h 02 min", "3 min 04 s", "12 s".
pub fn duration(secs: u64) -> String {
    let (h, m, s) = (secs / 3600, secs / 60 % 60, secs % 60);
    if h > 0 {
        format!("{h} h {m:02} min")
    } else if m > 0 {
        format!("{m} min {s:02} s")
    } else {
        format!("{s} s")
    }
}

/// The UTC time of day of `at`, "14:03:27".
pub fn clock(at: std::time::SystemTime) -> String {
    let secs = at
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    format!(
        "{:02}:{:02}:{:02}",
        secs / 3600 % 24,
        secs / 60 % 60,
        secs % 60
    )
}

/// A coloured dot and the status word ("Running"), the word being what screen readers read.
pub fn status_badge(ui: &mut egui::Ui, status: &Status) -> egui::Response {
    ui.horizontal(|ui| badge(ui, status)).inner
}

fn badge(ui: &mut egui::Ui, status: &Status) -> egui::Response {
    let color = match status {
        Status::Running => egui::Color32::from_rgb(0x2e, 0xa0, 0x43),
        Status::CreateFailed(_) | Status::Failed(_) => ui.visuals().error_fg_color,
        Status::Stopped => ui.visuals().weak_text_color(),
        _ => egui::Color32::from_rgb(0xd0, 0x8c, 0x00),
    };
    let (dot, _) = ui.allocate_exact_size(egui::vec2(10.0, 10.0), egui::Sense::hover());
    ui.painter().circle_filled(dot.center(), 4.5, color);
    let response = ui.label(egui::RichText::new(status.label()).color(color));
    if status.is_busy() {
        ui.spinner();
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_durations_read_well() {
        assert_eq!(bytes(512), "512 B");
        assert_eq!(bytes(1536), "1.5 KB");
        assert_eq!(bytes(12 * 1024 * 1024 * 1024), "12.0 GB");
        assert_eq!(duration(5), "5 s");
        assert_eq!(duration(184), "3 min 04 s");
        assert_eq!(duration(3720), "1 h 02 min");
    }
}
