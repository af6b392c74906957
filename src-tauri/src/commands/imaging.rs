//! Opening images and fetching their pixels. Opening runs off the UI thread;
//! pixels travel as raw bytes, never JSON arrays.

use std::path::PathBuf;

use tauri::{Emitter, Manager};

use super::events::{READING_CHANGED, SESSIONS_CHANGED};
use super::CommandError;
use crate::reading::ReadingSnapshot;
use crate::session::OpenedStudy;
use crate::state::AppState;

/// Opens paths (blocking) and keeps a newly opened study as a new session.
fn open_and_keep<R: tauri::Runtime>(app: &tauri::AppHandle<R>, paths: &[PathBuf]) {
    let state = app.state::<AppState>();
    if !state.reading.open(paths) {
        return;
    }
    let _ = app.emit(READING_CHANGED, ());
    if let Some(opened) = state.reading.with_study(OpenedStudy::of) {
        if let Err(e) = state.sessions.start(&opened) {
            // The image stays on screen; the status line says it is not kept.
            tracing::warn!("the opened study could not be kept as a session: {e}");
            state.sessions.set_current(None);
        }
    }
    let _ = app.emit(SESSIONS_CHANGED, ());
}

/// Opens paths off the UI thread and tells the window when done.
pub fn open_in_background<R: tauri::Runtime>(app: &tauri::AppHandle<R>, paths: Vec<PathBuf>) {
    let app = app.clone();
    let _ = app.emit(READING_CHANGED, ());
    tauri::async_runtime::spawn_blocking(move || {
        open_and_keep(&app, &paths);
        let _ = app.emit(READING_CHANGED, ());
    });
}

#[tauri::command]
pub fn reading_state(state: tauri::State<'_, AppState>) -> ReadingSnapshot {
    state.reading.snapshot()
}

/// Opens paths off the async workers, tells the window, returns the new state.
async fn open_and_report<R: tauri::Runtime>(app: tauri::AppHandle<R>, paths: Vec<PathBuf>) -> Result<ReadingSnapshot, CommandError> {
    if !paths.is_empty() {
        let handle = app.clone();
        tauri::async_runtime::spawn_blocking(move || open_and_keep(&handle, &paths))
            .await
            .map_err(|e| CommandError::internal(e.to_string()))?;
        let _ = app.emit(READING_CHANGED, ());
    }
    Ok(app.state::<AppState>().reading.snapshot())
}

#[tauri::command]
pub async fn open_paths<R: tauri::Runtime>(app: tauri::AppHandle<R>, paths: Vec<String>) -> Result<ReadingSnapshot, CommandError> {
    open_and_report(app, paths.into_iter().map(PathBuf::from).collect()).await
}

/// The system's Open dialog (DICOM, PNG, JPEG), then the same opening path.
#[tauri::command]
pub async fn open_dialog<R: tauri::Runtime>(app: tauri::AppHandle<R>) -> Result<ReadingSnapshot, CommandError> {
    use tauri_plugin_dialog::DialogExt;
    let handle = app.clone();
    let picked = tauri::async_runtime::spawn_blocking(move || {
        handle
            .dialog()
            .file()
            .set_title("Open a chest X-ray")
            .add_filter("Images (DICOM, PNG, JPEG)", &["dcm", "dicom", "png", "jpg", "jpeg"])
            .add_filter("All files", &["*"])
            .blocking_pick_files()
    })
    .await
    .map_err(|e| CommandError::internal(e.to_string()))?;
    let paths: Vec<PathBuf> = picked.unwrap_or_default().into_iter().filter_map(|p| p.into_path().ok()).collect();
    open_and_report(app, paths).await
}

#[tauri::command]
pub async fn frame_pixels<R: tauri::Runtime>(
    app: tauri::AppHandle<R>,
    image: usize,
    frame: usize,
    comparison: Option<bool>,
) -> Result<tauri::ipc::Response, CommandError> {
    let comparison = comparison.unwrap_or(false);
    let bytes = tauri::async_runtime::spawn_blocking(move || app.state::<AppState>().reading.frame_bytes_of(comparison, image, frame))
        .await
        .map_err(|e| CommandError::internal(e.to_string()))?
        .map_err(|f| CommandError { kind: f.kind, message: f.message })?;
    Ok(tauri::ipc::Response::new(bytes))
}
