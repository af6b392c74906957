//! The Models screen: what is on this computer and in the catalog, which model
//! drafts and on which device, unloading it, importing a folder (progress over
//! a `Channel`), and, unless locked down, downloading a catalog model.

use std::path::PathBuf;

use serde::Serialize;
use tauri::ipc::Channel;
use tauri::Manager;

use super::CommandError;
use crate::drafting::download_process::{DownloadStartError, DownloadUpdate};
use crate::drafting::import::{self, ImportEvent, Mode};
use crate::drafting::models::{self, CatalogEntry, ModelEntry, MODELS_DIR};
use crate::settings::{Settings, DOWNLOADS_BUILT_IN};
use crate::state::AppState;

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
        let downloading = state.downloads.running();
        ModelsState {
            found: models::find_all(dir),
            catalog: models::catalog(),
            models_dir: dir.join(MODELS_DIR).display().to_string(),
            active: crate::drafting::service::active_model(dir, &settings).map(|m| m.path.display().to_string()),
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

/// Downloads a catalog model in a child process (see `drafting::download_process`).
#[tauri::command]
pub async fn model_download<R: tauri::Runtime>(app: tauri::AppHandle<R>, model: String, token: Option<String>, on_event: Channel<DownloadUpdate>) -> Result<(), CommandError> {
    let state = app.state::<AppState>();
    state.downloads.start(state.data_dir.path(), &model, token, move |u| {
        let _ = on_event.send(u);
    }).map_err(|e| {
        let kind = match e {
            DownloadStartError::Lockdown => "lockdown",
            DownloadStartError::UnknownModel(_) => "unknown_model",
            DownloadStartError::Busy => "busy",
            DownloadStartError::Spawn(_) => "download",
        };
        error(kind, e.to_string())
    })
}

/// Cancels the running download (what arrived is kept for a later resume).
#[tauri::command]
pub fn model_download_cancel(state: tauri::State<'_, AppState>) {
    state.downloads.cancel();
}
