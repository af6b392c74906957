//! The drafting service: the one place, for the window and the command line,
//! that turns what the clinician asks for into a draft and keeps it.
//!
//! It owns building the request (template, notes, the image as the model
//! sees it), the sampling policy, the rules for regenerate / reproduce /
//! follow-up, the choice of model, and saving the outcome with the events
//! the draft pane hears (`Started`, `Token`, `Finished`, `Failed`). Commands
//! and the CLI only validate their input, call it, and say what went wrong.

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use image::RgbImage;
use serde::Deserialize;

use super::engine::{self, DraftError, DraftOutcome, DraftRequest, LoadedModel, Replay, Sampling};
use super::models::{self, ModelEntry, MODELS_DIR};
use super::templates::{self, Template};
use super::worker::{Job, Worker};
use super::DraftEvent;
use crate::imaging::{self, Study};
use crate::reading::Reading;
use crate::session::{SessionError, Sessions};
use crate::settings::Settings;
use crate::store::{Draft, DraftId, DraftView, NewDraft, Notes, SessionDetail, SessionId};

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

/// Why the service did not start a draft, in words for the clinician.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error("there is no model yet: put a MedGemma model folder in {}", .0.display())]
    NoModel(PathBuf),
    #[error("{0}")]
    Template(#[from] templates::TemplateError),
    #[error("there is no session {0}")]
    NoSuchSession(SessionId),
    #[error("open the session before drafting for it")]
    NotCurrent,
    #[error("there is no draft {0} in this session")]
    NoSuchDraft(i64),
    #[error("{0}")]
    Image(#[from] imaging::ImagingError),
    #[error("no image is open")]
    NoImage,
    #[error("the model's image settings could not be read: {0}")]
    Model(String),
    #[error("pick the draft to reproduce or ask about first")]
    NoBase,
    #[error("type a question first")]
    NoQuestion,
    #[error("{0}")]
    BadSetting(String),
    #[error("there is no draft {0}")]
    NoDraft(i64),
    #[error("the image draft {0} was made from is no longer in the store, so it cannot be re-run (nothing was changed)")]
    ImageGone(i64),
    #[error("a draft is already being written; stop it first")]
    Busy,
    #[error(transparent)]
    Session(#[from] SessionError),
    #[error(transparent)]
    Draft(#[from] DraftError),
}

impl ServiceError {
    /// A stable name the UI can branch on.
    pub fn kind(&self) -> &'static str {
        match self {
            ServiceError::NoModel(_) => "no_model",
            ServiceError::Template(_) => "template",
            ServiceError::NoSuchSession(_) => "no_such_session",
            ServiceError::NotCurrent => "not_current",
            ServiceError::NoSuchDraft(_) => "no_such_draft",
            ServiceError::Image(_) => "image",
            ServiceError::NoImage => "no_image",
            ServiceError::Model(_) => "model",
            ServiceError::NoBase => "no_base",
            ServiceError::NoQuestion => "no_question",
            ServiceError::BadSetting(_) => "bad_setting",
            ServiceError::NoDraft(_) => "no_draft",
            ServiceError::ImageGone(_) => "image_gone",
            ServiceError::Busy => "busy",
            ServiceError::Session(e) => e.kind(),
            ServiceError::Draft(_) => "draft",
        }
    }
}

/// What the clinician asks for, the same from the window and the CLI.
pub struct Order {
    pub mode: DraftMode,
    pub template: Template,
    pub notes: Notes,
    /// The image as the model sees it (see [`model_input`]).
    pub image: Option<RgbImage>,
    /// Which of the session's images and frames that is.
    pub views: Vec<DraftView>,
    /// The draft to reproduce or ask about, by id.
    pub base: Option<(DraftId, NewDraft)>,
    pub question: Option<String>,
    /// Sampling chosen by the user (a seed, a temperature …); what is left
    /// empty the policy decides.
    pub sampling: SamplingChoice,
    /// The most tokens to write (the template's when `None`).
    pub max_tokens: Option<usize>,
}

/// Sampling chosen by hand (the window's advanced settings, the command
/// line's flags); a value left empty is the policy's. Every value used is
/// recorded with the draft.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct SamplingChoice {
    pub temperature: Option<f64>,
    pub top_p: Option<f64>,
    pub top_k: Option<usize>,
    pub repetition_penalty: Option<f32>,
    pub seed: Option<u64>,
}

impl SamplingChoice {
    /// The policy's sampling with the chosen values put in. Turning the
    /// temperature up from greedy samples with top-p 0.95 and top-k 64 unless
    /// they are chosen, and a new seed unless one is; a temperature of 0 is
    /// greedy (top-p and top-k do not apply and are not recorded).
    pub fn apply(&self, policy: Sampling) -> Result<Sampling, ServiceError> {
        let mut s = policy;
        if let Some(t) = self.temperature {
            if !(t.is_finite() && (0.0..=5.0).contains(&t)) {
                return Err(ServiceError::BadSetting("the temperature must be between 0 and 5".into()));
            }
            if t > 0.0 && s.temperature == 0.0 {
                s.top_p = Some(0.95);
                s.top_k = Some(64);
                s.seed = self.seed.unwrap_or_else(new_seed);
            }
            s.temperature = t;
        }
        if let Some(p) = self.top_p {
            if !(p > 0.0 && p <= 1.0) {
                return Err(ServiceError::BadSetting("top-p must be above 0 and at most 1".into()));
            }
            s.top_p = Some(p);
        }
        if let Some(k) = self.top_k {
            if k == 0 {
                return Err(ServiceError::BadSetting("top-k must be at least 1".into()));
            }
            s.top_k = Some(k);
        }
        if let Some(r) = self.repetition_penalty {
            if !(r.is_finite() && r > 0.0 && r <= 10.0) {
                return Err(ServiceError::BadSetting("the repetition penalty must be above 0 and at most 10".into()));
            }
            s.repetition_penalty = r;
        }
        if let Some(seed) = self.seed {
            s.seed = seed;
        }
        if s.temperature == 0.0 {
            s.top_p = None;
            s.top_k = None;
            s.seed = 0;
        }
        Ok(s)
    }
}

/// A seed the UI can show and type back exactly (JavaScript numbers hold 53 bits).
fn new_seed() -> u64 {
    rand::random::<u32>() as u64
}

/// How a draft samples: a reproduction repeats its base's settings and seed;
/// a chosen seed or a regenerate samples (at the template's temperature, or
/// 0.7 for a greedy template); otherwise the template decides (greedy unless
/// it has a temperature, then a new seed).
pub fn sampling_for(mode: DraftMode, template: &Template, base: Option<&NewDraft>, seed: Option<u64>) -> Result<Sampling, ServiceError> {
    Ok(match (mode, base, seed) {
        (DraftMode::Reproduce, Some(b), _) => {
            // Parameters stored by an older version may lack a field: the
            // generation defaults then hold, as they did when it was made.
            let p: medgemma_models::GenerationParams = serde_json::from_value(b.params.clone()).unwrap_or_default();
            Sampling { temperature: p.temperature, top_p: p.top_p, top_k: p.top_k, repetition_penalty: p.repetition_penalty, seed: b.seed }
        }
        (DraftMode::Reproduce | DraftMode::FollowUp, None, _) => return Err(ServiceError::NoBase),
        (_, _, Some(seed)) => Sampling::varied(template, seed),
        (DraftMode::Regenerate, _, None) => Sampling::varied(template, new_seed()),
        _ if template.temperature > 0.0 => Sampling::varied(template, new_seed()),
        _ => Sampling::greedy(),
    })
}

impl Order {
    /// The request the engine runs: sampling by [`sampling_for`]; a follow-up
    /// carries its base's answer and question and needs a question of its own;
    /// a reproduction asks its base's question again.
    pub fn request(self) -> Result<DraftRequest, ServiceError> {
        let base = self.base.as_ref().map(|(_, b)| b);
        let sampling = sampling_for(self.mode, &self.template, base, self.sampling.seed)?;
        // A reproduction repeats its record; otherwise chosen values apply.
        let sampling = if self.mode == DraftMode::Reproduce { sampling } else { self.sampling.apply(sampling)? };
        let (earlier, question) = match self.mode {
            DraftMode::FollowUp => {
                let q = self.question.map(|q| q.trim().to_string()).filter(|q| !q.is_empty()).ok_or(ServiceError::NoQuestion)?;
                let b = base.ok_or(ServiceError::NoBase)?;
                (Some((b.text.clone(), b.question.clone())), Some(q))
            }
            DraftMode::Reproduce => (None, base.and_then(|b| b.question.clone())),
            DraftMode::First | DraftMode::Regenerate => (None, self.question),
        };
        // A reproduction is a re-run from the base's own record.
        let replay = match (self.mode, self.base) {
            (DraftMode::Reproduce, Some((id, original))) => Some(Replay { of: id.0, original }),
            _ => None,
        };
        Ok(DraftRequest {
            template: self.template,
            notes: self.notes,
            image: self.image,
            views: self.views,
            earlier,
            question,
            sampling,
            max_tokens: self.max_tokens,
            replay,
        })
    }
}

/// The image handed to the model for a study: frame `frame` of its image
/// `image`, as the viewer shows it by default, in 8-bit RGB.
pub fn model_input(study: &Study, image: usize, frame: usize) -> Result<RgbImage, ServiceError> {
    Ok(imaging::model_input(study, image, frame, None)?)
}

/// Which image of a session, and which frame, a draft's model sees: the
/// session's image at `image` (by its place, as the study was opened).
pub fn draft_view(detail: &SessionDetail, image: usize, frame: usize) -> Result<DraftView, ServiceError> {
    let kept = detail.images.iter().find(|i| i.position as usize == image).ok_or(ServiceError::NoImage)?;
    Ok(DraftView { image_sha256: kept.sha256.clone(), position: image as u32, frame: frame as u32 })
}

/// The model drafts use: the one chosen in the Models screen if it is still
/// there and complete, else the first complete one found.
pub fn active_model(data_dir: &Path, settings: &Settings) -> Option<ModelEntry> {
    let usable = models::find(data_dir);
    settings
        .model
        .as_ref()
        .and_then(|chosen| usable.iter().find(|m| &m.path == chosen).cloned())
        .or_else(|| usable.into_iter().next())
}

/// Keeps a draft's outcome in the session and says how it ended: `Finished`
/// with its statistics, or `Failed` (with the id of the partial draft kept,
/// when there is one).
pub fn keep(sessions: &Sessions, session: SessionId, result: Result<DraftOutcome, DraftError>) -> DraftEvent {
    match result {
        Ok(outcome) => match sessions.keep_draft(session, &outcome.draft, outcome.model_input.as_ref()) {
            Ok(draft_id) => finished_event(draft_id, &outcome),
            Err(e) => DraftEvent::Failed { message: format!("the draft could not be kept: {e}"), draft_id: None },
        },
        Err(e) => DraftEvent::Failed { message: e.to_string(), draft_id: None },
    }
}

/// How a kept draft ended, as the draft pane hears it.
fn finished_event(draft_id: DraftId, outcome: &DraftOutcome) -> DraftEvent {
    if let Some(error) = &outcome.draft.error {
        return DraftEvent::Failed { message: error.clone(), draft_id: Some(draft_id.0) };
    }
    let stats = &outcome.stats;
    DraftEvent::Finished {
        draft_id: draft_id.0,
        stop_reason: outcome.draft.stop_reason.clone(),
        generated_tokens: stats.generated_tokens,
        time_to_first_token_ms: stats.time_to_first_token_ms,
        decode_tok_s: stats.decode_tok_s,
        total_ms: stats.total_ms,
        prompt_tokens: stats.prompt_tokens,
        reused_prompt_tokens: stats.reused_prompt_tokens,
        image_reused: stats.images_reused > 0,
    }
}

/// One draft on a model the caller loaded (the command line), streamed to
/// `on_text`, not kept: [`keep`] does that.
pub fn draft_on(loaded: &LoadedModel, order: Order, on_text: &mut dyn FnMut(&str), cancel: &AtomicBool) -> Result<DraftOutcome, ServiceError> {
    let request = order.request()?;
    Ok(engine::run(loaded, None, &request, &mut |_, _| {}, on_text, cancel)?)
}

/// Re-runs stored draft `id` from its record on a model the caller loaded
/// (the command line), with its session's image as the model saw it; not
/// kept ([`keep`] does that, in the returned session). The verdict is in
/// the outcome's draft.
pub fn rerun_on(
    loaded: &LoadedModel,
    sessions: &Sessions,
    id: DraftId,
    on_text: &mut dyn FnMut(&str),
    cancel: &AtomicBool,
) -> Result<(SessionId, DraftOutcome), ServiceError> {
    let (session, draft) = sessions.with_store(|s| s.find_draft(id))?.ok_or(ServiceError::NoDraft(id.0))?;
    let image = replay_image(sessions, session, &draft)?;
    let replay = Replay { of: id.0, original: draft.draft };
    let outcome = engine::rerun(loaded, None, &replay, image.as_ref(), &mut |_, _| {}, on_text, cancel)?;
    Ok((session, outcome))
}

/// The image a stored draft's model saw, for a re-run: the one kept with the
/// draft (checked against its hash), else (a draft made before those were
/// kept) its session's first image from the store, as drafts render it.
fn replay_image(sessions: &Sessions, session: SessionId, draft: &Draft) -> Result<Option<RgbImage>, ServiceError> {
    if !engine::saw_an_image(&draft.draft) {
        return Ok(None);
    }
    if let Some(sha) = &draft.draft.model_input_sha256 {
        if let Some(image) = sessions.with_store(|s| s.model_input(sha))? {
            return Ok(Some(image));
        }
    }
    let detail = sessions.with_store(|s| s.session(session))?.ok_or(ServiceError::NoSuchSession(session))?;
    // The image and frame the draft records; drafts kept before these were
    // recorded saw the first image's first frame.
    let view = draft.draft.views.first();
    let image = match view {
        Some(v) => detail.images.iter().find(|i| i.sha256 == v.image_sha256),
        None => detail.images.first(),
    };
    let Some(image) = image else { return Ok(None) };
    let gone = || ServiceError::ImageGone(draft.id.0);
    let path = sessions.with_store(|s| s.image_path(&image.sha256))?.ok_or_else(gone)?;
    // A file gone or damaged is the same to a re-run: the original is not there.
    let bytes = sessions.with_store(|s| s.image_bytes(&image.sha256)).ok().flatten().ok_or_else(gone)?;
    let opened = imaging::open_bytes(&path, &bytes).map_err(|_| gone())?;
    let study = imaging::Study { source: path, images: vec![opened] };
    Ok(Some(model_input(&study, 0, view.map_or(0, |v| v.frame as usize))?))
}

/// What the window asks for: a draft for the session on screen.
pub struct WindowOrder {
    pub session: SessionId,
    pub template_id: String,
    pub mode: DraftMode,
    pub base_draft_id: Option<i64>,
    pub question: Option<String>,
    /// The advanced settings, when the clinician changed any.
    pub sampling: SamplingChoice,
    /// The image on screen (its place in the study) and its frame.
    pub on_screen: OnScreen,
}

/// The image and frame the viewer shows, which a draft is made from.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct OnScreen {
    pub image: usize,
    pub frame: usize,
}

/// The window's drafting: the model thread, and what it needs to choose a
/// model and keep drafts.
pub struct Service {
    data_dir: PathBuf,
    sessions: Arc<Sessions>,
    worker: Worker,
}

impl Service {
    /// Weights hashes are cached in the data folder's `cache/`.
    pub fn new(data_dir: &Path, sessions: Arc<Sessions>) -> Service {
        let worker = Worker::new(Some(data_dir.join("cache").join("weights-sha256.json")));
        Service { data_dir: data_dir.to_path_buf(), sessions, worker }
    }

    /// Whether a draft is being made.
    pub fn busy(&self) -> bool {
        self.worker.busy()
    }

    /// Stops the draft being written after its current token; its text is kept.
    pub fn stop(&self) {
        self.worker.stop();
    }

    /// The model in memory now.
    pub fn loaded(&self) -> Option<PathBuf> {
        self.worker.loaded()
    }

    /// Frees the loaded model's memory (the next draft loads it again).
    pub fn unload(&self) {
        self.worker.unload();
    }

    /// Starts a draft for the session on screen, with the image on screen,
    /// on the model and device the settings choose. `events` hears the draft
    /// as it is made, ending with `Finished` or `Failed` once it is kept;
    /// `kept` runs after that (to tell the window the sessions changed).
    pub fn start(
        &self,
        reading: &Reading,
        order: WindowOrder,
        events: impl FnMut(DraftEvent) + Send + 'static,
        kept: impl FnOnce() + Send + 'static,
    ) -> Result<(), ServiceError> {
        let settings = Settings::load(&self.data_dir);
        let model = active_model(&self.data_dir, &settings).ok_or_else(|| ServiceError::NoModel(self.data_dir.join(MODELS_DIR)))?;
        let template = templates::find(&self.data_dir, &order.template_id)?;
        let id = order.session;
        let detail = self.sessions.with_store(|s| s.session(id))?.ok_or(ServiceError::NoSuchSession(id))?;
        if self.sessions.current() != Some(id) {
            return Err(ServiceError::NotCurrent);
        }
        let base = order.base_draft_id.map(|b| find_draft(&detail.drafts, b)).transpose()?;
        // A re-run sees what its draft's model saw; anything else, the image
        // and frame on screen.
        let OnScreen { image: shown, frame } = order.on_screen;
        let (image, views) = match (order.mode, base) {
            (DraftMode::Reproduce, Some(b)) => (replay_image(&self.sessions, id, b)?, b.draft.views.clone()),
            _ => match reading.with_study(|s| model_input(s, shown, frame)).transpose()? {
                Some(image) => (Some(image), vec![draft_view(&detail, shown, frame)?]),
                None => (None, Vec::new()),
            },
        };
        let base = base.map(|d| (d.id, d.draft.clone()));
        let request = Order {
            mode: order.mode,
            template,
            notes: detail.notes,
            image,
            views,
            base,
            question: order.question,
            sampling: order.sampling,
            max_tokens: None,
        }
        .request()?;
        let events = Arc::new(std::sync::Mutex::new(events));
        let stream = events.clone();
        let sessions = self.sessions.clone();
        let job = Job {
            model_dir: model.path,
            device: settings.device.parse().unwrap_or_default(),
            request,
            events: Box::new(move |ev| (stream.lock().unwrap_or_else(|p| p.into_inner()))(ev)),
            done: Box::new(move |result| {
                let event = keep(&sessions, id, result);
                (events.lock().unwrap_or_else(|p| p.into_inner()))(event);
                kept();
            }),
        };
        self.worker.submit(job).map_err(|_| ServiceError::Busy)
    }
}

impl Service {
    /// The image on screen exactly as the drafting model sees it: after the
    /// default window and that model's own resize (a model folder's
    /// preprocessor config, or a GGUF model's vision projector); before the
    /// resize when there is no model that reads images.
    pub fn model_view(&self, reading: &Reading, on_screen: OnScreen) -> Result<RgbImage, ServiceError> {
        let rgb = reading.with_study(|s| model_input(s, on_screen.image, on_screen.frame)).transpose()?.ok_or(ServiceError::NoImage)?;
        let settings = Settings::load(&self.data_dir);
        let Some(model) = active_model(&self.data_dir, &settings).filter(|m| m.vision) else {
            return Ok(rgb);
        };
        let words = |e: medgemma_models::ModelError| ServiceError::Model(e.to_string());
        match medgemma_models::ModelSource::at(&model.path).image_processor().map_err(words)? {
            Some(p) => p.resized(&image::DynamicImage::ImageRgb8(rgb)).map_err(words),
            None => Ok(rgb),
        }
    }
}

impl Service {
    /// What the model saw for stored draft `id`: the image kept with it
    /// (checked against its hash); `None` for a draft without an image or
    /// made before those images were kept.
    pub fn seen_by(&self, id: DraftId) -> Result<Option<RgbImage>, ServiceError> {
        let (_, draft) = self.sessions.with_store(|s| s.find_draft(id))?.ok_or(ServiceError::NoDraft(id.0))?;
        let Some(sha) = draft.draft.model_input_sha256 else { return Ok(None) };
        Ok(self.sessions.with_store(|s| s.model_input(&sha))?)
    }
}

/// A session's draft by id.
fn find_draft(drafts: &[Draft], id: i64) -> Result<&Draft, ServiceError> {
    drafts.iter().find(|d| d.id.0 == id).ok_or(ServiceError::NoSuchDraft(id))
}

#[cfg(test)]
mod tests;
