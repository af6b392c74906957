//! Drafting from the window: which models and templates there are, starting a
//! draft (streamed back over a `Channel` as typed events), stopping it, and
//! the review of a draft against the clinician's report.

use serde::{Deserialize, Serialize};
use tauri::ipc::Channel;
use tauri::{Emitter, Manager};

use super::sessions::SESSIONS_CHANGED;
use super::CommandError;
use crate::drafting::models::{self, ModelEntry, MODELS_DIR};
use crate::drafting::review::{self, Change, Sentence};
use crate::drafting::worker::Job;
use crate::drafting::{templates, DraftEvent, DraftRequest, Sampling, Template};
use crate::store::SessionId;
use crate::AppState;

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

/// What kind of draft to make.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum DraftMode {
    /// A first draft with the template's settings (greedy by default).
    First,
    /// Another draft: sampling with a new seed.
    Regenerate,
    /// The base draft again, with its exact settings and seed.
    Reproduce,
    /// An answer to a question about the base draft.
    FollowUp,
}

fn error(kind: &str, message: impl Into<String>) -> CommandError {
    CommandError { kind: kind.into(), message: message.into() }
}

/// A seed the UI can show and type back exactly (JavaScript numbers hold 53 bits).
fn new_seed() -> u64 {
    rand::random::<u32>() as u64
}

#[tauri::command]
#[allow(clippy::too_many_arguments)]
pub async fn draft_start<R: tauri::Runtime>(
    app: tauri::AppHandle<R>,
    session_id: i64,
    template_id: String,
    mode: DraftMode,
    base_draft_id: Option<i64>,
    question: Option<String>,
    on_event: Channel<DraftEvent>,
) -> Result<(), CommandError> {
    let handle = app.clone();
    let job = tauri::async_runtime::spawn_blocking(move || -> Result<(Job, std::path::PathBuf), CommandError> {
        let state = handle.state::<AppState>();
        let dir = state.data_dir.path().to_path_buf();
        let id = SessionId(session_id);
        let settings = crate::settings::Settings::load(&dir);
        let Some(model) = super::models::active_model(&dir, &settings) else {
            return Err(error("no_model", format!("there is no model yet: put a MedGemma model folder in {}", dir.join(MODELS_DIR).display())));
        };
        let template = templates::find(&dir, &template_id).map_err(|e| error("template", e.to_string()))?;
        let detail = state.sessions.with_store(|s| s.session(id))?.ok_or_else(|| error("no_such_session", format!("there is no session {id}")))?;
        if state.sessions.current() != Some(id) {
            return Err(error("not_current", "open the session before drafting for it"));
        }
        let base = match base_draft_id {
            Some(b) => Some(detail.drafts.iter().find(|d| d.id.0 == b).cloned().ok_or_else(|| error("no_such_draft", format!("there is no draft {b} in this session")))?),
            None => None,
        };
        let image = match state.reading.with_study(|s| crate::imaging::model_input(s, 0, None)) {
            Some(Ok(img)) => Some(img),
            Some(Err(e)) => return Err(error("image", e.to_string())),
            None => None,
        };
        let sampling = match (mode, &base) {
            (DraftMode::Reproduce, Some(b)) => {
                let p = &b.draft.params;
                Sampling {
                    temperature: p["temperature"].as_f64().unwrap_or(0.0),
                    top_p: p["top_p"].as_f64(),
                    top_k: p["top_k"].as_u64().map(|k| k as usize),
                    seed: b.draft.seed,
                }
            }
            (DraftMode::Reproduce, None) | (DraftMode::FollowUp, None) => {
                return Err(error("no_base", "pick the draft to reproduce or ask about first"))
            }
            (DraftMode::Regenerate, _) => Sampling::varied(&template, new_seed()),
            (DraftMode::First | DraftMode::FollowUp, _) if template.temperature > 0.0 => Sampling::varied(&template, new_seed()),
            _ => Sampling::greedy(),
        };
        let (earlier, question) = match mode {
            DraftMode::FollowUp => {
                let q = question.map(|q| q.trim().to_string()).filter(|q| !q.is_empty());
                let q = q.ok_or_else(|| error("no_question", "type a question first"))?;
                let b = base.as_ref().ok_or_else(|| error("no_base", "pick the draft to ask about first"))?;
                (Some((b.draft.text.clone(), b.draft.question.clone())), Some(q))
            }
            DraftMode::Reproduce => (None, base.as_ref().and_then(|b| b.draft.question.clone())),
            _ => (None, question),
        };
        let request = DraftRequest { template, notes: detail.notes.clone(), image, earlier, question, sampling, max_tokens: None };
        let events_channel = on_event.clone();
        let done_app = handle.clone();
        let job = Job {
            model_dir: model.path.clone(),
            device: settings.device_choice(),
            request,
            events: Box::new(move |ev| {
                let _ = events_channel.send(ev);
            }),
            done: Box::new(move |result| {
                let state = done_app.state::<AppState>();
                let event = match result {
                    Ok(outcome) => match state.sessions.keep_draft(id, &outcome) {
                        Ok(draft_id) if outcome.draft.error.is_none() => DraftEvent::Finished {
                            draft_id: draft_id.0,
                            stop_reason: outcome.draft.stop_reason.clone(),
                            generated_tokens: outcome.stats.generated_tokens,
                            time_to_first_token_ms: outcome.stats.time_to_first_token_ms,
                            decode_tok_s: outcome.stats.decode_tok_s,
                            total_ms: outcome.stats.total_ms,
                            prompt_tokens: outcome.stats.prompt_tokens,
                            reused_prompt_tokens: outcome.stats.reused_prompt_tokens,
                            image_reused: outcome.stats.images_reused > 0,
                        },
                        Ok(draft_id) => DraftEvent::Failed { message: outcome.draft.error.clone().unwrap_or_default(), draft_id: Some(draft_id.0) },
                        Err(e) => DraftEvent::Failed { message: format!("the draft could not be kept: {e}"), draft_id: None },
                    },
                    Err(e) => DraftEvent::Failed { message: e.to_string(), draft_id: None },
                };
                let _ = on_event.send(event);
                let _ = done_app.emit(SESSIONS_CHANGED, ());
            }),
        };
        Ok((job, model.path))
    })
    .await
    .map_err(|e| CommandError::internal(e.to_string()))??;
    app.state::<AppState>()
        .drafting
        .submit(job.0)
        .map_err(|_| error("busy", "a draft is already being written; stop it first"))
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
        let report = detail.reports.iter().rev().find(|r| r.addendum_of.is_none()).map(|r| r.text.clone()).unwrap_or_default();
        Ok(Review {
            changes: review::tracked_changes(&draft.draft.text, &report),
            sentences: review::attribute(&draft.draft.text, &report),
            draft_text: draft.draft.text.clone(),
            report_text: report,
        })
    })
    .await
    .map_err(|e| CommandError::internal(e.to_string()))?
}

/// The image exactly as the model sees it (8-bit, after the default window
/// and the model's own resize), as PNG bytes, and its size; for the "What the
/// model saw" toggle. Without a model, the image before the resize.
#[tauri::command]
pub async fn model_input_image<R: tauri::Runtime>(app: tauri::AppHandle<R>) -> Result<tauri::ipc::Response, CommandError> {
    let handle = app.clone();
    let bytes = tauri::async_runtime::spawn_blocking(move || -> Result<Vec<u8>, CommandError> {
        let state = handle.state::<AppState>();
        let rgb = match state.reading.with_study(|s| crate::imaging::model_input(s, 0, None)) {
            Some(Ok(img)) => img,
            Some(Err(e)) => return Err(error("image", e.to_string())),
            None => return Err(error("no_image", "no image is open")),
        };
        let mut shown = image::DynamicImage::ImageRgb8(rgb);
        if let Some(model) = models::find(state.data_dir.path()).into_iter().find(|m| m.vision) {
            let config = medgemma_models::Gemma3Config::from_file(&model.path.join("config.json")).map_err(|e| error("model", e.to_string()))?;
            if let Some(p) = medgemma_models::ImageProcessor::for_model_dir(&model.path, &config).map_err(|e| error("model", e.to_string()))? {
                shown = image::DynamicImage::ImageRgb8(p.resized(&shown).map_err(|e| error("model", e.to_string()))?);
            }
        }
        let mut png = Vec::new();
        shown.write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png).map_err(|e| CommandError::internal(e.to_string()))?;
        Ok(png)
    })
    .await
    .map_err(|e| CommandError::internal(e.to_string()))??;
    Ok(tauri::ipc::Response::new(bytes))
}

/// Saves the session's report as Markdown or FHIR R4 JSON where the clinician
/// chooses (the system's Save dialog), or records that it was printed
/// ("pdf": the window prints the report view). Returns the path written, if any.
#[tauri::command]
pub async fn report_export<R: tauri::Runtime>(app: tauri::AppHandle<R>, session_id: i64, format: String) -> Result<Option<String>, CommandError> {
    use tauri_plugin_dialog::DialogExt;
    let handle = app.clone();
    tauri::async_runtime::spawn_blocking(move || {
        let state = handle.state::<AppState>();
        let id = SessionId(session_id);
        let detail = state.sessions.with_store(|s| s.session(id))?.ok_or_else(|| error("no_such_session", format!("there is no session {id}")))?;
        let (text, ext, label) = match format.as_str() {
            "markdown" => (crate::export::markdown(&detail), "md", "Markdown"),
            "fhir" => (serde_json::to_string_pretty(&crate::export::fhir(&detail)).map_err(|e| CommandError::internal(e.to_string()))?, "json", "FHIR R4 JSON"),
            "pdf" => {
                state.sessions.with_store(|s| s.record_export(id, "pdf"))?;
                return Ok(None);
            }
            other => return Err(error("format", format!("unknown export format {other}"))),
        };
        let name: String = detail.summary.title.chars().map(|c| if c.is_alphanumeric() || c == '-' { c } else { '_' }).collect();
        let picked = handle
            .dialog()
            .file()
            .set_title("Export the report")
            .set_file_name(format!("{name}.{ext}"))
            .add_filter(label, &[ext])
            .blocking_save_file();
        let Some(path) = picked.and_then(|p| p.into_path().ok()) else { return Ok(None) };
        crate::export::write_private(&path, text.as_bytes()).map_err(|e| error("write", format!("cannot write {}: {e}", path.display())))?;
        state.sessions.with_store(|s| s.record_export(id, &format))?;
        Ok(Some(path.display().to_string()))
    })
    .await
    .map_err(|e| CommandError::internal(e.to_string()))?
}
