//! The main window: checked for a display before Tauri starts (GTK would abort
//! with a panic), then built in code so that its webview data honours --data-dir.

use std::path::PathBuf;

use clap::Parser;
use tauri::{DragDropEvent, Emitter, Manager, WindowEvent};

use crate::version::APP_NAME;

/// Why the window could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum GuiError {
    #[error(
        "no display to open the window on (neither DISPLAY nor WAYLAND_DISPLAY is set); \
         run it from a desktop session, or use a headless subcommand (see --help)"
    )]
    NoDisplay,
    #[error("the window system failed to start: {0}")]
    Tauri(#[from] tauri::Error),
}

/// Event telling the UI whether files are being dragged over the window.
pub const DROP_HOVER: &str = "drop-hover";

/// Event telling the UI a model folder was dropped on the window (payload: its path).
pub const MODEL_FOLDER_DROPPED: &str = "model-folder-dropped";

/// A folder holding a model (its config.json and safetensors weights), not a study.
fn is_model_folder(path: &std::path::Path) -> bool {
    path.is_dir()
        && path.join("config.json").is_file()
        && std::fs::read_dir(path).is_ok_and(|d| {
            d.flatten().any(|e| e.path().extension().is_some_and(|x| x == "safetensors") || e.file_name() == "model.safetensors.index.json")
        })
}

/// The label the capabilities in `capabilities/` grant permissions to.
pub const MAIN_WINDOW: &str = "main";

pub fn ensure_display() -> Result<(), GuiError> {
    if cfg!(all(unix, not(target_os = "macos"))) {
        let set = |name| std::env::var_os(name).is_some_and(|v| !v.is_empty());
        if !set("DISPLAY") && !set("WAYLAND_DISPLAY") {
            return Err(GuiError::NoDisplay);
        }
    }
    Ok(())
}

pub fn open_main<R: tauri::Runtime>(app: &tauri::AppHandle<R>, webview_dir: PathBuf) -> tauri::Result<()> {
    tauri::WebviewWindowBuilder::new(app, MAIN_WINDOW, tauri::WebviewUrl::App("index.html".into()))
        .title(APP_NAME)
        .inner_size(1440.0, 900.0)
        .min_inner_size(960.0, 600.0)
        // No forced theme: the page follows the OS (or the clinician's choice).
        .data_directory(webview_dir)
        .build()?;
    Ok(())
}

/// A second launch of the app on this data folder (its files are opened here,
/// and the window comes to the front).
pub fn second_launch<R: tauri::Runtime>(app: &tauri::AppHandle<R>, argv: Vec<String>, cwd: String) {
    let paths: Vec<PathBuf> = match crate::cli::Cli::try_parse_from(&argv) {
        Ok(cli) => cli.paths.into_iter().map(|p| if p.is_absolute() { p } else { PathBuf::from(&cwd).join(p) }).collect(),
        Err(_) => Vec::new(),
    };
    if let Some(window) = app.get_webview_window(MAIN_WINDOW) {
        let _ = window.unminimize();
        let _ = window.set_focus();
    }
    if !paths.is_empty() {
        crate::commands::imaging::open_in_background(app, paths);
    }
}

/// How many times a launch starts itself again when the running instance it
/// found for its data folder went away before taking its files.
const RELAUNCHES: u32 = 5;
const RELAUNCH_ENV: &str = "MEDGEMMA_DESK_RELAUNCH";

/// Replaces this process with a fresh launch of the same command line (same
/// process id, so whatever started it still follows it), after a short pause
/// for the exiting instance to finish. Gives up after [`RELAUNCHES`] tries and
/// returns the error that caused it.
pub fn relaunch(cause: tauri::Error) -> GuiError {
    let tries: u32 = std::env::var(RELAUNCH_ENV).ok().and_then(|v| v.parse().ok()).unwrap_or(0);
    if tries >= RELAUNCHES {
        return GuiError::Tauri(cause);
    }
    tracing::info!("the running instance left before taking this launch's files; starting again ({})", tries + 1);
    std::thread::sleep(std::time::Duration::from_millis(300));
    #[cfg(unix)]
    {
        use std::os::unix::process::CommandExt;
        let Ok(program) = std::env::current_exe() else {
            return GuiError::Tauri(cause);
        };
        let err = std::process::Command::new(program)
            .args(std::env::args_os().skip(1))
            .env(RELAUNCH_ENV, (tries + 1).to_string())
            .exec();
        tracing::warn!("could not start again: {err}");
    }
    GuiError::Tauri(cause)
}

/// Files dropped on the window are opened by Rust (their bytes never cross
/// IPC); the UI only hears that the study changed.
pub fn on_event<R: tauri::Runtime>(window: &tauri::Window<R>, event: &WindowEvent) {
    // The main window is gone: this process is on its way out. It stops
    // answering for the data folder now, not at its very end, so a launch in
    // the meantime (closing the app and at once double-clicking a file)
    // starts a window of its own instead of handing its file to an instance
    // that is exiting, where it would be lost.
    if matches!(event, WindowEvent::Destroyed) && window.label() == MAIN_WINDOW {
        tauri_plugin_single_instance::destroy(window.app_handle());
    }
    if let WindowEvent::DragDrop(drop) = event {
        match drop {
            DragDropEvent::Enter { .. } | DragDropEvent::Over { .. } => {
                let _ = window.emit(DROP_HOVER, true);
            }
            DragDropEvent::Leave => {
                let _ = window.emit(DROP_HOVER, false);
            }
            DragDropEvent::Drop { paths, .. } => {
                let _ = window.emit(DROP_HOVER, false);
                // A model folder dropped on the window goes to the Models
                // screen to be imported; images are opened as always.
                let (models, images): (Vec<PathBuf>, Vec<PathBuf>) = paths.iter().cloned().partition(|p| is_model_folder(p));
                if let Some(model) = models.first() {
                    let _ = window.emit(MODEL_FOLDER_DROPPED, model.display().to_string());
                }
                if !images.is_empty() || models.is_empty() {
                    crate::commands::imaging::open_in_background(window.app_handle(), images);
                }
            }
            _ => {}
        }
    }
}
