//! Drafting from the window: which models and templates there are, starting a
//! draft (streamed back over a `Channel` as typed events), stopping it, and
//! the review of a draft against the clinician's report.

use serde::Serialize;
use tauri::ipc::Channel;
use tauri::{Emitter, Manager};

use super::events::SESSIONS_CHANGED;
use super::CommandError;
use crate::drafting::models::{self, ModelEntry, MODELS_DIR};
use crate::drafting::review::{self, Change, Sentence};
use crate::drafting::service::{DraftMode, OnScreen, SamplingChoice, ServiceError, WindowOrder};
use crate::drafting::{templates, DraftEvent, Template};
use crate::model_input_png;
use crate::store::{DraftId, SessionId};
use crate::state::AppState;

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DraftingState {
    pub models: Vec<ModelEntry>,
    /// Where to put a model folder so the app finds it.
    pub models_dir: String,
    pub templates: Vec<Template>,
    /// Template files that could not be read, in words.
    pub template_problems: Vec<String>,
    pub busy: bool,
}

#[tauri::command]
pub async fn drafting_state<R: tauri::Runtime>(app: tauri::AppHandle<R>) -> Result<DraftingState, CommandError> {
    let handle = app.clone();
    tauri::async_runtime::spawn_blocking(move || {
        let state = handle.state::<AppState>();
        let dir = state.data_dir.path();
        let (templates, problems) = templates::load(dir);
        DraftingState {
            models: models::find(dir),
            models_dir: dir.join(MODELS_DIR).display().to_string(),
            templates,
            template_problems: problems.iter().map(|p| p.to_string()).collect(),
            busy: state.drafting.busy(),
        }
    })
    .await
    .map_err(|e| CommandError::internal(e.to_string()))
}

fn error(kind: &str, message: impl Into<String>) -> CommandError {
    CommandError { kind: kind.into(), message: message.into() }
}

fn service_error(e: ServiceError) -> CommandError {
    error(e.kind(), e.to_string())
}

/// Starts a draft for the session on screen; its events stream over `on_event`.
#[tauri::command]
pub async fn draft_start<R: tauri::Runtime>(
    app: tauri::AppHandle<R>,
    session_id: i64,
    template_id: String,
    mode: DraftMode,
    base_draft_id: Option<i64>,
    question: Option<String>,
    sampling: Option<SamplingChoice>,
    on_screen: Option<OnScreen>,
    on_event: Channel<DraftEvent>,
) -> Result<(), CommandError> {
    let handle = app.clone();
    tauri::async_runtime::spawn_blocking(move || {
        let state = handle.state::<AppState>();
        let sampling = sampling.unwrap_or_default();
        let on_screen = on_screen.unwrap_or_default();
        let order = WindowOrder { session: SessionId(session_id), template_id, mode, base_draft_id, question, sampling, on_screen };
        let done = handle.clone();
        state.drafting.start(&state.reading, order, move |ev| {
            let _ = on_event.send(ev);
        }, move || {
            let _ = done.emit(SESSIONS_CHANGED, ());
        })
    })
    .await
    .map_err(|e| CommandError::internal(e.to_string()))?
    .map_err(service_error)
}

/// Stops the draft being written after its current token; its text is kept.
#[tauri::command]
pub fn draft_stop(state: tauri::State<'_, AppState>) {
    state.drafting.stop();
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Review {
    pub draft_text: String,
    pub report_text: String,
    pub changes: Vec<Change>,
    pub sentences: Vec<Sentence>,
    /// The sentences' origins are the ones fixed when the report was signed.
    pub frozen: bool,
}

/// The AI draft against the clinician's newest report: tracked changes and
/// each report sentence's origin.
#[tauri::command]
pub async fn draft_review<R: tauri::Runtime>(app: tauri::AppHandle<R>, session_id: i64, draft_id: i64) -> Result<Review, CommandError> {
    let handle = app.clone();
    tauri::async_runtime::spawn_blocking(move || {
        let state = handle.state::<AppState>();
        let detail = state
            .sessions
            .with_store(|s| s.session(SessionId(session_id)))?
            .ok_or_else(|| error("no_such_session", format!("there is no session {session_id}")))?;
        let draft = detail.drafts.iter().find(|d| d.id.0 == draft_id).ok_or_else(|| error("no_such_draft", format!("there is no draft {draft_id}")))?;
        // The report proper: the newest version that is not an addendum.
        let main = detail.reports.iter().rev().find(|r| r.addendum_of.is_none());
        let report = main.map(|r| r.text.clone()).unwrap_or_default();
        // A signed version's origins were fixed at its sign-off, against the draft it started from.
        let frozen = main.filter(|r| r.from_draft == Some(draft_id)).and_then(|r| r.origins.clone());
        Ok(Review {
            changes: review::tracked_changes(&draft.draft.text, &report),
            frozen: frozen.is_some(),
            sentences: frozen.unwrap_or_else(|| review::attribute(&draft.draft.text, &report)),
            draft_text: draft.draft.text.clone(),
            report_text: report,
        })
    })
    .await
    .map_err(|e| CommandError::internal(e.to_string()))?
}

/// The image exactly as the model sees it (8-bit, after the default window
/// and the model's own resize), as PNG bytes; for the "What the model saw"
/// toggle. With `draft_id`, the image kept with that draft (see
/// `drafting::Service::seen_by`); without, or for a draft that kept none, the
/// image and frame on screen as the drafting model would see it now (`model_view`).
#[tauri::command]
pub async fn model_input_image<R: tauri::Runtime>(
    app: tauri::AppHandle<R>,
    draft_id: Option<i64>,
    on_screen: Option<OnScreen>,
) -> Result<tauri::ipc::Response, CommandError> {
    let handle = app.clone();
    let bytes = tauri::async_runtime::spawn_blocking(move || -> Result<Vec<u8>, CommandError> {
        let state = handle.state::<AppState>();
        let kept = draft_id.map(|id| state.drafting.seen_by(DraftId(id))).transpose().map_err(service_error)?.flatten();
        let shown = match kept {
            Some(image) => image,
            None => state.drafting.model_view(&state.reading, on_screen.unwrap_or_default()).map_err(service_error)?,
        };
        model_input_png::encode(&shown).map_err(CommandError::internal)
    })
    .await
    .map_err(|e| CommandError::internal(e.to_string()))??;
    Ok(tauri::ipc::Response::new(bytes))
}

/// Saves the session's report as Markdown, PDF or FHIR R4 JSON where the
/// clinician chooses (the system's Save dialog). Returns the path written, if any.
#[tauri::command]
pub async fn report_export<R: tauri::Runtime>(app: tauri::AppHandle<R>, session_id: i64, format: String) -> Result<Option<String>, CommandError> {
    use tauri_plugin_dialog::DialogExt;
    let handle = app.clone();
    tauri::async_runtime::spawn_blocking(move || {
        let state = handle.state::<AppState>();
        let id = SessionId(session_id);
        let detail = state.sessions.with_store(|s| s.session(id))?.ok_or_else(|| error("no_such_session", format!("there is no session {id}")))?;
        let format = crate::export::Format::parse(&format).ok_or_else(|| error("format", format!("unknown export format {format}")))?;
        let bytes = crate::export::report(format, &detail, state.data_dir.path()).map_err(|e| error("export", e.to_string()))?;
        let (ext, label) = (format.extension(), format.label());
        let name: String = detail.summary.title.chars().map(|c| if c.is_alphanumeric() || c == '-' { c } else { '_' }).collect();
        let picked = handle
            .dialog()
            .file()
            .set_title("Export the report")
            .set_file_name(format!("{name}.{ext}"))
            .add_filter(label, &[ext])
            .blocking_save_file();
        let Some(path) = picked.and_then(|p| p.into_path().ok()) else { return Ok(None) };
        crate::export::write_private(&path, &bytes).map_err(|e| error("write", format!("cannot write {}: {e}", path.display())))?;
        state.sessions.with_store(|s| s.record_export(id, format.name()))?;
        Ok(Some(path.display().to_string()))
    })
    .await
    .map_err(|e| CommandError::internal(e.to_string()))?
}
