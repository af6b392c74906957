//! One draft on a loaded model, the same for the window and the command
//! line: the conversation from template + notes (+ an earlier answer and a
//! question), the image as the model sees it, a check that it all fits the
//! model's context, generation streamed piece by piece, and everything the
//! store keeps about how the draft was made.

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::time::Instant;

use image::{DynamicImage, RgbImage};
use medgemma_models::{DeviceChoice, GenerationParams, GenerationStats, Model, ModelError, ModelSource, Reuse, StopReason};
use serde_json::json;

use super::{prompt, weights_hash};
use super::templates::Template;
use crate::store::{NewDraft, Notes};

/// Why a draft could not start (a failure after it started keeps the partial text).
#[derive(Debug, thiserror::Error)]
pub enum DraftError {
    #[error("the model could not be loaded: {0}")]
    Load(String),
    #[error(
        "the case notes are too long for this model: the request is {tokens} tokens and the model reads at most \
         {limit} (with room for at least {room} tokens of answer); shorten the notes"
    )]
    TooLong { tokens: usize, limit: usize, room: usize },
    #[error(
        "this conversation is too long for this model: with the earlier answer and the question it is {tokens} \
         tokens and the model reads at most {limit} (with room for at least {room} tokens of answer); ask about a \
         shorter draft or start a new one"
    )]
    ConversationTooLong { tokens: usize, limit: usize, room: usize },
    #[error("this template needs a question; type one first")]
    NeedsQuestion,
    #[error("this model cannot look at images (it has no vision tower); pick a MedGemma model")]
    NoVision,
    #[error("{0}")]
    Model(String),
}

/// A model ready to draft, with what provenance needs to say about it.
pub struct LoadedModel {
    pub model: Model,
    pub dir: PathBuf,
    pub id: String,
    pub weights_sha256: String,
    pub quantization: String,
    pub device: String,
}

impl LoadedModel {
    /// Loads the model folder, or a GGUF file with its vision projector
    /// (`mmproj`, else the one beside it). The weights' hash comes from
    /// `hashes` when the files have not changed since it was computed.
    pub fn load(dir: &Path, mmproj: Option<&Path>, device: DeviceChoice, hashes: Option<&Path>) -> Result<LoadedModel, DraftError> {
        let source = ModelSource::with_projector(dir, mmproj);
        let model = Model::load(&source, device).map_err(|e| DraftError::Load(e.to_string()))?;
        let files = source.weight_files().map_err(|e| DraftError::Load(e.to_string()))?;
        let weights_sha256 = weights_hash::files_sha256(&files, hashes).map_err(|e| DraftError::Load(e.to_string()))?;
        let quantization = if source.is_gguf() {
            // As the community names the files (…-Q4_K_M.gguf); the compute dtype otherwise.
            crate::drafting::models::gguf_quantization(&source.id()).to_lowercase()
        } else {
            model.compute_dtype().to_owned()
        };
        Ok(LoadedModel { id: source.id(), dir: dir.to_path_buf(), quantization, device: model.device_name().to_owned(), weights_sha256, model })
    }
}

/// How to sample: greedy (the same draft every time) or seeded sampling.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sampling {
    pub temperature: f64,
    pub top_p: Option<f64>,
    pub top_k: Option<usize>,
    pub seed: u64,
}

impl Sampling {
    pub fn greedy() -> Self {
        Sampling { temperature: 0.0, top_p: None, top_k: None, seed: 0 }
    }

    /// A different draft: sampling at the template's temperature (0.7 when
    /// the template is greedy, which would repeat itself) with `seed`.
    pub fn varied(template: &Template, seed: u64) -> Self {
        let temperature = if template.temperature > 0.0 { template.temperature } else { 0.7 };
        Sampling { temperature, top_p: Some(0.95), top_k: Some(64), seed }
    }
}

/// Everything a draft is made from.
pub struct DraftRequest {
    pub template: Template,
    pub notes: Notes,
    /// The image exactly as handed to the model's processor (8-bit RGB).
    pub image: Option<RgbImage>,
    /// For a follow-up: the answer it builds on, and that answer's question.
    pub earlier: Option<(String, Option<String>)>,
    pub question: Option<String>,
    pub sampling: Sampling,
    /// The most tokens to write (the template's when `None`).
    pub max_tokens: Option<usize>,
}

/// A finished (or stopped, or failed mid-way) draft, ready to keep.
pub struct DraftOutcome {
    pub draft: NewDraft,
    pub stats: GenerationStats,
    /// sha256 of the model-input image's RGB bytes (with its size).
    pub model_input_sha256: Option<String>,
}

/// The tokens a draft's answer needs at the very least.
const MIN_ANSWER_TOKENS: usize = 16;

/// Runs one draft. `on_started` gets (prompt tokens, answer budget) once the
/// request is known to fit; `on_text` every piece of text as it is made;
/// `cancel` stops it within one token. A model failure after the start is
/// not an `Err`: the partial text comes back marked with the error.
pub fn run(
    loaded: &LoadedModel,
    reuse: Option<&mut Reuse>,
    req: &DraftRequest,
    on_started: &mut dyn FnMut(usize, usize),
    on_text: &mut dyn FnMut(&str),
    cancel: &AtomicBool,
) -> Result<DraftOutcome, DraftError> {
    let model = &loaded.model;
    let question = req.question.as_deref().map(str::trim).filter(|q| !q.is_empty());
    if req.template.needs_question && question.is_none() && req.earlier.is_none() {
        return Err(DraftError::NeedsQuestion);
    }
    if req.image.is_some() && !model.reads_images() {
        return Err(DraftError::NoVision);
    }
    let earlier = req.earlier.as_ref().map(|(a, q)| (a.as_str(), q.as_deref()));
    let messages = prompt::conversation(&req.template, &req.notes, req.image.is_some(), earlier, question);
    let prompt_text = model.render_prompt(&messages).map_err(|e| DraftError::Model(e.to_string()))?;
    let ids = model.encode_conversation(&messages).map_err(|e| DraftError::Model(e.to_string()))?;
    let limit = model.config().text.max_position_embeddings;
    let wanted = req.max_tokens.unwrap_or(req.template.max_tokens).max(1);
    if ids.len() + MIN_ANSWER_TOKENS.min(wanted) > limit {
        let (tokens, room) = (ids.len(), MIN_ANSWER_TOKENS.min(wanted));
        return Err(match req.earlier {
            Some(_) => DraftError::ConversationTooLong { tokens, limit, room },
            None => DraftError::TooLong { tokens, limit, room },
        });
    }
    // A long request leaves less room: the answer gets what is left.
    let max_new_tokens = wanted.min(limit - ids.len());
    let params = GenerationParams {
        max_new_tokens,
        temperature: req.sampling.temperature,
        top_k: req.sampling.top_k,
        top_p: req.sampling.top_p,
        seed: req.sampling.seed,
        ..Default::default()
    };
    on_started(ids.len(), max_new_tokens);

    let model_input_sha256 = req.image.as_ref().map(|i| {
        let mut bytes = format!("{}x{} rgb8\n", i.width(), i.height()).into_bytes();
        bytes.extend_from_slice(i.as_raw());
        crate::digest::sha256_hex(&bytes)
    });
    // Images are keyed by the hash of their exact pixels, so a reused image
    // is certainly the same image.
    let images: Vec<(String, DynamicImage)> = req
        .image
        .iter()
        .map(|i| (model_input_sha256.clone().unwrap_or_default(), DynamicImage::ImageRgb8(i.clone())))
        .collect();
    let start = Instant::now();
    let mut partial = String::new();
    let mut stream = |piece: &str| {
        partial.push_str(piece);
        on_text(piece);
    };
    let result = match reuse {
        Some(reuse) => model.generate_reusing(reuse, &ids, &images, &params, &mut stream, cancel),
        None => {
            let plain: Vec<DynamicImage> = images.into_iter().map(|(_, i)| i).collect();
            model.generate(&ids, &plain, &params, &mut stream, cancel)
        }
    };
    let (text, stop_reason, stats, error) = match result {
        Ok(out) => {
            let stop = match out.stop_reason {
                StopReason::EndOfTurn => "end_of_turn",
                StopReason::MaxTokens => "max_tokens",
                StopReason::Cancelled => "stopped",
                StopReason::ContextFull => "context_full",
            };
            (out.text, stop, out.stats, None)
        }
        Err(e) => {
            let stats = GenerationStats { prompt_tokens: ids.len(), total_ms: start.elapsed().as_secs_f64() * 1000.0, ..Default::default() };
            (partial.clone(), "error", stats, Some(model_error_in_words(&e)))
        }
    };
    let generated = if error.is_some() { 0 } else { stats.generated_tokens };
    let draft = NewDraft {
        model_id: loaded.id.clone(),
        weights_sha256: loaded.weights_sha256.clone(),
        quantization: loaded.quantization.clone(),
        device: loaded.device.clone(),
        app_version: crate::version::APP_VERSION.into(),
        prompt: prompt_text,
        params: serde_json::to_value(&params).unwrap_or_else(|_| json!({})),
        seed: params.seed,
        prompt_tokens: ids.len() as u32,
        generated_tokens: generated as u32,
        timings: serde_json::to_value(&stats).unwrap_or_else(|_| json!({})),
        stop_reason: stop_reason.into(),
        text: text.trim_end().to_string(),
        template: req.template.id.clone(),
        question: question.map(str::to_string),
        error,
    };
    Ok(DraftOutcome { draft, stats, model_input_sha256 })
}

/// A model failure in words for the clinician.
fn model_error_in_words(e: &ModelError) -> String {
    let text = e.to_string();
    if text.to_lowercase().contains("out of memory") || text.contains("alloc") {
        format!("the computer ran out of memory while drafting; the text so far is kept ({text})")
    } else {
        format!("the model failed while drafting; the text so far is kept ({text})")
    }
}
