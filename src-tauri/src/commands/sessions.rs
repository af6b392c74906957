//! The sessions the UI lists, opens and autosaves. Every store call runs off
//! the async workers (`spawn_blocking`): SQLite may wait for a lock.

use serde::Serialize;
use tauri::{Emitter, Manager};

use super::events::{READING_CHANGED, SESSIONS_CHANGED};
use super::CommandError;
use crate::reading::ReadingSnapshot;
use crate::session::{SessionError, StoreStatus};
use crate::store::{MeasureKind, NewMeasurement, Notes, Prior, Report, SessionDetail, SessionId, SessionPage, SignOff, StoreError};
use crate::state::AppState;

impl From<SessionError> for CommandError {
    fn from(e: SessionError) -> Self {
        CommandError { kind: e.kind().into(), message: e.to_string() }
    }
}

/// Runs `f` on the app state off the async workers.
async fn blocking<R: tauri::Runtime, T: Send + 'static>(
    app: &tauri::AppHandle<R>,
    f: impl FnOnce(&AppState) -> Result<T, CommandError> + Send + 'static,
) -> Result<T, CommandError> {
    let handle = app.clone();
    tauri::async_runtime::spawn_blocking(move || f(&handle.state::<AppState>()))
        .await
        .map_err(|e| CommandError::internal(e.to_string()))?
}

/// The session on screen with everything kept for it, and the store's state.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SessionState {
    pub current: Option<SessionDetail>,
    pub store: StoreStatus,
}

#[tauri::command]
pub async fn session_state<R: tauri::Runtime>(app: tauri::AppHandle<R>) -> Result<SessionState, CommandError> {
    blocking(&app, |state| {
        let current = match state.sessions.current() {
            Some(id) => state.sessions.with_store(|s| s.session(id)).ok().flatten(),
            None => None,
        };
        Ok(SessionState { current, store: state.sessions.status() })
    })
    .await
}

#[tauri::command]
pub async fn sessions_list<R: tauri::Runtime>(app: tauri::AppHandle<R>, query: String, limit: usize) -> Result<SessionPage, CommandError> {
    blocking(&app, move |state| Ok(state.sessions.with_store(|s| s.find_sessions(&query, limit.clamp(1, 1000)))?)).await
}

/// The store's copies of a session's images (their bytes, opened from the
/// sealed files), with the names they were opened under.
#[allow(clippy::type_complexity)]
fn stored_images(state: &AppState, detail: &SessionDetail) -> Result<(Vec<(std::path::PathBuf, Vec<u8>)>, Vec<String>), CommandError> {
    let mut files = Vec::new();
    let mut names = Vec::new();
    for image in &detail.images {
        let path = state.sessions.with_store(|s| s.image_path(&image.sha256))?;
        if let (Some(path), Some(bytes)) = (path, state.sessions.with_store(|s| s.image_bytes(&image.sha256))?) {
            files.push((path, bytes));
            names.push(image.tags.get("file_name").and_then(|n| n.as_str()).unwrap_or("image").to_string());
        }
    }
    Ok((files, names))
}

/// Shows a stored session (a prior) beside the study on screen; `None`
/// closes it.
#[tauri::command]
pub async fn session_compare<R: tauri::Runtime>(app: tauri::AppHandle<R>, id: Option<i64>) -> Result<ReadingSnapshot, CommandError> {
    let snapshot = blocking(&app, move |state| {
        let prior = match id {
            None => None,
            Some(id) => {
                let id = SessionId(id);
                let detail = state.sessions.with_store(|s| s.session(id))?.ok_or(SessionError::Store(StoreError::NoSuchSession(id)))?;
                let (files, names) = stored_images(state, &detail)?;
                Some((files, names, detail.summary.title.clone()))
            }
        };
        state.reading.compare(prior).map_err(|f| CommandError { kind: f.kind, message: f.message })?;
        Ok(state.reading.snapshot())
    })
    .await?;
    let _ = app.emit(READING_CHANGED, ());
    Ok(snapshot)
}

/// Opens a stored session: its images (the store's copies) on screen, its
/// notes, drafts and report in the panel.
#[tauri::command]
pub async fn session_open<R: tauri::Runtime>(app: tauri::AppHandle<R>, id: i64) -> Result<ReadingSnapshot, CommandError> {
    let snapshot = blocking(&app, move |state| {
        let id = SessionId(id);
        let detail = state.sessions.with_store(|s| s.session(id))?.ok_or(SessionError::Store(StoreError::NoSuchSession(id)))?;
        let (files, names) = stored_images(state, &detail)?;
        if !files.is_empty() && !state.reading.open_stored(files, names) {
            // The session still opens (notes and report are there); the image area says why.
            tracing::warn!("the stored images of session {id} could not be opened");
        }
        state.sessions.set_current(Some(id));
        Ok(state.reading.snapshot())
    })
    .await?;
    let _ = app.emit(READING_CHANGED, ());
    Ok(snapshot)
}

#[tauri::command]
pub async fn session_save_notes<R: tauri::Runtime>(app: tauri::AppHandle<R>, id: i64, notes: Notes) -> Result<(), CommandError> {
    blocking(&app, move |state| Ok(state.sessions.with_store(|s| s.save_notes(SessionId(id), &notes))?)).await?;
    let _ = app.emit(SESSIONS_CHANGED, ());
    Ok(())
}

#[tauri::command]
pub async fn session_save_report<R: tauri::Runtime>(
    app: tauri::AppHandle<R>,
    id: i64,
    text: String,
    from_draft: Option<i64>,
) -> Result<Report, CommandError> {
    let report = blocking(&app, move |state| {
        Ok(state.sessions.with_store(|s| match from_draft {
            Some(d) => s.save_report_from_draft(SessionId(id), &text, crate::store::DraftId(d)),
            None => s.save_report(SessionId(id), &text),
        })?)
    })
    .await?;
    let _ = app.emit(SESSIONS_CHANGED, ());
    Ok(report)
}

#[tauri::command]
pub async fn session_sign<R: tauri::Runtime>(app: tauri::AppHandle<R>, id: i64, status: SignOff) -> Result<Report, CommandError> {
    let report = blocking(&app, move |state| {
        let mut outcome = None;
        state.sessions.with_store(|s| {
            outcome = Some(s.sign_report(SessionId(id), status));
            Ok(())
        })?;
        match outcome {
            Some(Ok(report)) => Ok(report),
            Some(Err(e)) => Err(CommandError { kind: "sign".into(), message: e.to_string() }),
            None => Err(CommandError::internal("the store did not answer")),
        }
    })
    .await?;
    let _ = app.emit(SESSIONS_CHANGED, ());
    Ok(report)
}

#[tauri::command]
pub async fn session_delete<R: tauri::Runtime>(app: tauri::AppHandle<R>, id: i64) -> Result<(), CommandError> {
    blocking(&app, move |state| {
        state.sessions.with_store(|s| s.delete_session(SessionId(id)))?;
        if state.sessions.current() == Some(SessionId(id)) {
            state.sessions.set_current(None);
        }
        Ok(())
    })
    .await?;
    let _ = app.emit(SESSIONS_CHANGED, ());
    Ok(())
}

/// The clinician's answer when the store waits for a passphrase (no system
/// keyring): the passphrase of an encrypted store, a new passphrase for a new
/// store, or (`passphrase: null`, new stores only) the choice to keep
/// sessions unencrypted. Returns the store's state; the reason is in it when
/// the answer did not open the store.
#[tauri::command]
pub async fn store_unlock<R: tauri::Runtime>(app: tauri::AppHandle<R>, passphrase: Option<String>) -> Result<StoreStatus, CommandError> {
    let status = blocking(&app, move |state| {
        let source = crate::store_key::KeySource::typed(passphrase, crate::store_key::KeySource::Unencrypted);
        if let Err(reason) = state.sessions.unlock(source) {
            tracing::warn!("the sessions store was not unlocked: {reason}");
        }
        Ok(state.sessions.status())
    })
    .await?;
    let _ = app.emit(SESSIONS_CHANGED, ());
    Ok(status)
}

/// "Encrypt" on the status line of a store that is not encrypted: with a key
/// in the system keyring, or (`passphrase`) with a passphrase. Returns the
/// store's state; the reason is in `lastError` when it was not encrypted.
#[tauri::command]
pub async fn store_encrypt<R: tauri::Runtime>(app: tauri::AppHandle<R>, passphrase: Option<String>) -> Result<StoreStatus, CommandError> {
    let status = blocking(&app, move |state| {
        let source = crate::store_key::KeySource::typed(passphrase, crate::store_key::KeySource::Auto);
        if let Err(reason) = state.sessions.encrypt(source) {
            tracing::warn!("the sessions store was not encrypted: {reason}");
        }
        Ok(state.sessions.status())
    })
    .await?;
    let _ = app.emit(SESSIONS_CHANGED, ());
    Ok(status)
}

/// The clinician has read the store's notice (a restored backup).
#[tauri::command]
pub fn dismiss_store_notice(state: tauri::State<'_, AppState>) {
    state.sessions.dismiss_notice();
}

/// Keeps a measurement drawn on the session's image at `image` (its place in
/// the study), frame `frame`; returns its id.
#[tauri::command]
pub async fn measurement_add<R: tauri::Runtime>(
    app: tauri::AppHandle<R>,
    session_id: i64,
    image: usize,
    frame: u32,
    kind: MeasureKind,
    points: Vec<[f64; 2]>,
) -> Result<i64, CommandError> {
    let id = blocking(&app, move |state| {
        let id = SessionId(session_id);
        Ok(state.sessions.with_store(|s| {
            let detail = s.session(id)?.ok_or(StoreError::NoSuchSession(id))?;
            let sha = detail.images.iter().find(|i| i.position as usize == image).map(|i| i.sha256.clone());
            let sha = sha.ok_or_else(|| StoreError::BadMeasurement(format!("the session has no image {}", image + 1)))?;
            s.add_measurement(id, &NewMeasurement { image_sha256: sha, frame, kind, points })
        })?)
    })
    .await?;
    let _ = app.emit(SESSIONS_CHANGED, ());
    Ok(id)
}

/// Removes one of the session's measurements.
#[tauri::command]
pub async fn measurement_delete<R: tauri::Runtime>(app: tauri::AppHandle<R>, session_id: i64, id: i64) -> Result<bool, CommandError> {
    let gone = blocking(&app, move |state| Ok(state.sessions.with_store(|s| s.delete_measurement(SessionId(session_id), id))?)).await?;
    let _ = app.emit(SESSIONS_CHANGED, ());
    Ok(gone)
}

/// The other sessions of this session's patient (found by a hash of the
/// Patient ID its image states), newest first, with their signed reports.
#[tauri::command]
pub async fn session_priors<R: tauri::Runtime>(app: tauri::AppHandle<R>, id: i64) -> Result<Vec<Prior>, CommandError> {
    blocking(&app, move |state| Ok(state.sessions.with_store(|s| s.priors(SessionId(id)))?)).await
}
