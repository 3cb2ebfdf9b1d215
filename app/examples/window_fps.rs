//! Measures frame time in the real window: the app with the caches of `--data-dir`, made to
//! repaint continuously for 10 seconds, then it prints frames per second and the UI's own
//! time per frame (eframe's cpu_usage) and closes. Run it under Xvfb (tests/bench/app.py):
//!
//!     xvfb-run -a cargo run --release -p cachedesk --example window_fps -- --data-dir DIR

use std::time::{Duration, Instant};

use cachedesk::model::store::Paths;
use cachedesk::CacheDeskApp;
use eframe::egui;

const MEASURE: Duration = Duration::from_secs(10);
/// Frames before measuring: the caches start and the charts fill.
const WARM_UP: Duration = Duration::from_secs(5);

struct Measured {
    app: CacheDeskApp,
    started: Instant,
    frames: u64,
    ui_secs: Vec<f32>,
}

impl eframe::App for Measured {
    fn ui(&mut self, ui: &mut egui::Ui, frame: &mut eframe::Frame) {
        egui::CentralPanel::default().show(ui, |ui| self.app.show(ui));
        let elapsed = self.started.elapsed();
        if elapsed > WARM_UP {
            self.frames += 1;
            if let Some(cpu) = frame.info().cpu_usage {
                self.ui_secs.push(cpu);
            }
        }
        if elapsed > WARM_UP + MEASURE {
            let fps = self.frames as f64 / MEASURE.as_secs_f64();
            self.ui_secs.sort_by(f32::total_cmp);
            let median = self
                .ui_secs
                .get(self.ui_secs.len() / 2)
                .copied()
                .unwrap_or(0.0);
            println!(
                "{} caches: {fps:.1} frames/s in the real window ({:.1} ms a frame), UI pass median {:.2} ms",
                self.app.caches.list.len(),
                1000.0 / fps.max(0.001),
                median * 1000.0
            );
            ui.ctx().send_viewport_cmd(egui::ViewportCommand::Close);
        }
        ui.ctx().request_repaint();
    }

    fn on_exit(&mut self) {
        self.app.caches.shutdown_all();
    }
}

fn main() -> eframe::Result {
    let mut args = std::env::args().skip_while(|a| a != "--data-dir").skip(1);
    let dir = args.next().unwrap_or_else(|| ".".into());
    let runtime = tokio::runtime::Runtime::new().expect("tokio runtime");
    let handle = runtime.handle().clone();
    let options = eframe::NativeOptions {
        viewport: egui::ViewportBuilder::default().with_inner_size([1280.0, 800.0]),
        // Frames as fast as they can be made, not paced by the display.
        wgpu_options: eframe::egui_wgpu::WgpuConfiguration {
            surface: eframe::egui_wgpu::SurfaceConfig {
                present_mode: eframe::wgpu::PresentMode::AutoNoVsync,
                desired_maximum_frame_latency: Some(1),
            },
            ..Default::default()
        },
        ..Default::default()
    };
    eframe::run_native(
        "CacheDesk frame time",
        options,
        Box::new(move |_| {
            Ok(Box::new(Measured {
                app: CacheDeskApp::new(Paths::in_dir(std::path::Path::new(&dir)), handle),
                started: Instant::now(),
                frames: 0,
                ui_secs: Vec::new(),
            }))
        }),
    )
}
