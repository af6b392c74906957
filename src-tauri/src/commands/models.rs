//! The Models screen: what is on this computer and in the catalog, which model
//! drafts and on which device, unloading it, importing a folder (progress over
//! a `Channel`), and, unless locked down, downloading a catalog model.
//!
//! A download runs in a child process (`medgemma-desk models download`), so
//! the window's own process never opens a network socket; Cancel kills it
//! (hf-hub keeps what arrived in its `.part` file, and the next try resumes).

use std::io::BufRead;
use std::path::PathBuf;
use std::sync::Mutex;

use serde::Serialize;
use tauri::ipc::Channel;
use tauri::Manager;

use super::CommandError;
use crate::drafting::import::{self, ImportEvent, Mode};
use crate::drafting::models::{self, CatalogEntry, ModelEntry, MODELS_DIR};
use crate::settings::{Settings, DOWNLOADS_BUILT_IN};
use crate::AppState;

/// The download running now, if any (one at a time).
#[derive(Default)]
pub struct Downloads {
    child: Mutex<Option<std::process::Child>>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ModelsState {
    /// Every model found, complete or not.
    pub found: Vec<ModelEntry>,
    pub catalog: Vec<CatalogEntry>,
    pub models_dir: String,
    /// The model drafts use (the chosen one, else the first complete one).
    pub active: Option<String>,
    /// The model in memory now.
    pub loaded: Option<String>,
    pub settings: Settings,
    /// Devices this build can run on.
    pub devices: Vec<String>,
    /// Whether this build has a download path at all.
    pub downloads_built_in: bool,
    pub downloading: bool,
}

fn error(kind: &str, message: impl Into<String>) -> CommandError {
    CommandError { kind: kind.into(), message: message.into() }
}

/// The model drafts use: the one chosen in the Models screen if it is still
/// there and complete, else the first complete one found.
pub fn active_model(data_dir: &std::path::Path, settings: &Settings) -> Option<ModelEntry> {
    let usable = models::find(data_dir);
    settings
        .model
        .as_ref()
        .and_then(|chosen| usable.iter().find(|m| &m.path == chosen).cloned())
        .or_else(|| usable.into_iter().next())
}

#[tauri::command]
pub async fn models_state<R: tauri::Runtime>(app: tauri::AppHandle<R>) -> Result<ModelsState, CommandError> {
    let handle = app.clone();
    tauri::async_runtime::spawn_blocking(move || {
        let state = handle.state::<AppState>();
        let dir = state.data_dir.path();
        let settings = Settings::load(dir);
        let mut devices = vec!["auto".to_string(), "cpu".to_string()];
        if cfg!(feature = "cuda") {
            devices.push("cuda".into());
        }
        if cfg!(feature = "metal") {
            devices.push("metal".into());
        }
        let downloading = state.downloads.child.lock().map(|mut c| c.as_mut().is_some_and(|c| matches!(c.try_wait(), Ok(None)))).unwrap_or(false);
        ModelsState {
            found: models::find_all(dir),
            catalog: models::catalog(),
            models_dir: dir.join(MODELS_DIR).display().to_string(),
            active: active_model(dir, &settings).map(|m| m.path.display().to_string()),
            loaded: state.drafting.loaded().map(|p| p.display().to_string()),
            settings,
            devices,
            downloads_built_in: DOWNLOADS_BUILT_IN,
            downloading,
        }
    })
    .await
    .map_err(|e| CommandError::internal(e.to_string()))
}

/// Saves the settings the Models screen changes (device, lockdown, model).
#[tauri::command]
pub fn settings_save(state: tauri::State<'_, AppState>, settings: Settings) -> Result<(), CommandError> {
    let dir = state.data_dir.path();
    let mut settings = settings;
    if !DOWNLOADS_BUILT_IN {
        settings.offline_lockdown = true;
    }
    settings.save(dir).map_err(|e| error("settings", format!("the settings could not be saved: {e}")))
}

/// Frees the loaded model's memory (the next draft loads it again).
#[tauri::command]
pub fn model_unload(state: tauri::State<'_, AppState>) {
    state.drafting.unload();
}

/// Imports a model folder (copy or link), with progress.
#[tauri::command]
pub async fn model_import<R: tauri::Runtime>(app: tauri::AppHandle<R>, path: String, link: bool, on_event: Channel<ImportEvent>) -> Result<import::Imported, CommandError> {
    let handle = app.clone();
    tauri::async_runtime::spawn_blocking(move || {
        let state = handle.state::<AppState>();
        let dir = state.data_dir.path();
        let cache = dir.join("cache").join("weights-sha256.json");
        let mode = if link { Mode::Link } else { Mode::Copy };
        let mut last = u64::MAX;
        import::import(dir, &PathBuf::from(path.trim()), mode, None, Some(&cache), &mut |e| {
            let ImportEvent::Progress { total_done, total_size, .. } = &e;
            let permille = if *total_size == 0 { 1000 } else { total_done * 1000 / total_size };
            if permille != last {
                last = permille;
                let _ = on_event.send(e);
            }
        })
        .map_err(|e| error("import", e.to_string()))
    })
    .await
    .map_err(|e| CommandError::internal(e.to_string()))?
}

/// Picks a model folder with the system's folder dialog.
#[tauri::command]
pub async fn model_pick_folder<R: tauri::Runtime>(app: tauri::AppHandle<R>) -> Result<Option<String>, CommandError> {
    use tauri_plugin_dialog::DialogExt;
    let picked = tauri::async_runtime::spawn_blocking(move || app.dialog().file().set_title("Choose a model folder").blocking_pick_folder())
        .await
        .map_err(|e| CommandError::internal(e.to_string()))?;
    Ok(picked.and_then(|p| p.into_path().ok()).map(|p| p.display().to_string()))
}

/// A download's progress as the window hears it: the child's JSON lines, then
/// its end.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "event", rename_all = "camelCase")]
pub enum DownloadUpdate {
    Progress { line: serde_json::Value },
    Finished,
    Failed { message: String },
    Cancelled,
}

/// Downloads a catalog model in a child process; `token` (for gated models)
/// goes to it in its environment, never on a command line.
#[tauri::command]
pub async fn model_download<R: tauri::Runtime>(app: tauri::AppHandle<R>, model: String, token: Option<String>, on_event: Channel<DownloadUpdate>) -> Result<(), CommandError> {
    let state = app.state::<AppState>();
    if !DOWNLOADS_BUILT_IN || Settings::load(state.data_dir.path()).offline_lockdown {
        return Err(error("lockdown", "downloads are switched off on this computer (offline lockdown); import a model folder instead"));
    }
    if !models::catalog().iter().any(|c| c.id == model && c.supported) {
        return Err(error("unknown_model", format!("{model} is not a model this version can download")));
    }
    let exe = std::env::current_exe().map_err(|e| CommandError::internal(e.to_string()))?;
    let mut cmd = std::process::Command::new(exe);
    cmd.arg("--data-dir").arg(state.data_dir.path()).args(["models", "download", &model, "--json"]);
    cmd.stdin(std::process::Stdio::null()).stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped());
    if let Some(t) = token.map(|t| t.trim().to_string()).filter(|t| !t.is_empty()) {
        cmd.env("HF_TOKEN", t);
    }
    let mut guard = state.downloads.child.lock().map_err(|_| CommandError::internal("download state poisoned"))?;
    if guard.as_mut().is_some_and(|c| matches!(c.try_wait(), Ok(None))) {
        return Err(error("busy", "a download is already running; wait for it or cancel it"));
    }
    let mut child = cmd.spawn().map_err(|e| error("download", format!("the download could not start: {e}")))?;
    let stdout = child.stdout.take();
    let stderr = child.stderr.take();
    *guard = Some(child);
    drop(guard);
    let handle = app.clone();
    std::thread::spawn(move || {
        if let Some(out) = stdout {
            for line in std::io::BufReader::new(out).lines().map_while(Result::ok) {
                if let Ok(v) = serde_json::from_str(&line) {
                    let _ = on_event.send(DownloadUpdate::Progress { line: v });
                }
            }
        }
        let mut said = String::new();
        if let Some(mut err) = stderr {
            let _ = std::io::Read::read_to_string(&mut err, &mut said);
        }
        let state = handle.state::<AppState>();
        let status = state.downloads.child.lock().ok().and_then(|mut c| c.take()).and_then(|mut c| c.wait().ok());
        let update = match status {
            Some(s) if s.success() => DownloadUpdate::Finished,
            // Killed by Cancel.
            Some(s) if s.code().is_none() => DownloadUpdate::Cancelled,
            _ => DownloadUpdate::Failed {
                message: said.lines().last().map(|l| l.trim_start_matches("medgemma-desk: ").to_string()).unwrap_or_else(|| "the download failed".into()),
            },
        };
        let _ = on_event.send(update);
    });
    Ok(())
}

/// Cancels the running download (what arrived is kept for a later resume).
#[tauri::command]
pub fn model_download_cancel(state: tauri::State<'_, AppState>) {
    if let Ok(mut guard) = state.downloads.child.lock() {
        if let Some(child) = guard.as_mut() {
            let _ = child.kill();
        }
    }
}
