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
use crate::model_input_png::pixels_sha256;
use crate::store::{DraftView, NewDraft, Notes};

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
    #[error(
        "this draft was made with {drafted_with}, but the model loaded now is {loaded}: a re-run must use the \
         same model file; choose {drafted_model} in Models (nothing was changed)"
    )]
    OtherModel { drafted_with: String, loaded: String, drafted_model: String },
    #[error(
        "the image the model saw for this draft (sha256 {stored}…) is not the one at hand (sha256 {now}…), so \
         the draft cannot be re-run exactly (nothing was changed)"
    )]
    OtherImage { stored: String, now: String },
    #[error("this draft's record cannot be re-run: {0} (nothing was changed)")]
    Record(String),
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
    /// 1 leaves the logits as they are.
    pub repetition_penalty: f32,
    pub seed: u64,
}

impl Sampling {
    pub fn greedy() -> Self {
        Sampling { temperature: 0.0, top_p: None, top_k: None, repetition_penalty: 1.0, seed: 0 }
    }

    /// A different draft: sampling at the template's temperature (0.7 when
    /// the template is greedy, which would repeat itself) with `seed`.
    pub fn varied(template: &Template, seed: u64) -> Self {
        let temperature = if template.temperature > 0.0 { template.temperature } else { 0.7 };
        Sampling { temperature, top_p: Some(0.95), top_k: Some(64), repetition_penalty: 1.0, seed }
    }
}

/// Everything a draft is made from.
pub struct DraftRequest {
    pub template: Template,
    pub notes: Notes,
    /// The image exactly as handed to the model's processor (8-bit RGB).
    pub image: Option<RgbImage>,
    /// Which of the session's images and frames `image` is (kept with the draft).
    pub views: Vec<DraftView>,
    /// For a follow-up: the answer it builds on, and that answer's question.
    pub earlier: Option<(String, Option<String>)>,
    pub question: Option<String>,
    pub sampling: Sampling,
    /// The most tokens to write (the template's when `None`).
    pub max_tokens: Option<usize>,
    /// A stored draft to make again from its record (then the template,
    /// notes, question and sampling above are not used).
    pub replay: Option<Replay>,
}

/// A stored draft to make again exactly: its own prompt token ids (which
/// hold a follow-up's conversation), settings and seed, on the same weights
/// and the same model-input image.
#[derive(Debug, Clone)]
pub struct Replay {
    /// The stored draft's id.
    pub of: i64,
    pub original: NewDraft,
}

/// What generation runs on, built from a request or read from a record.
struct Prepared {
    prompt_text: String,
    ids: Vec<u32>,
    params: GenerationParams,
    template_id: String,
    question: Option<String>,
}

/// A finished (or stopped, or failed mid-way) draft, ready to keep.
pub struct DraftOutcome {
    pub draft: NewDraft,
    pub stats: GenerationStats,
    /// The image the model saw, at its input size (the draft records its
    /// pixels' sha256); kept with the draft.
    pub model_input: Option<RgbImage>,
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
    if let Some(replay) = &req.replay {
        return rerun(loaded, reuse, replay, req.image.as_ref(), on_started, on_text, cancel);
    }
    let prepared = prepare(loaded, req)?;
    let mut outcome = generate(loaded, reuse, prepared, req.image.as_ref(), on_started, on_text, cancel)?;
    if req.image.is_some() {
        outcome.draft.views = req.views.clone();
    }
    Ok(outcome)
}

/// The prompt and settings of a new draft: the conversation from the
/// template and notes (and an earlier answer and question), checked to fit.
fn prepare(loaded: &LoadedModel, req: &DraftRequest) -> Result<Prepared, DraftError> {
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
        repetition_penalty: req.sampling.repetition_penalty,
        seed: req.sampling.seed,
        ..Default::default()
    };
    Ok(Prepared { prompt_text, ids, params, template_id: req.template.id.clone(), question: question.map(str::to_string) })
}

/// Makes a stored draft again from its record, after checking that the
/// weights and the model-input image are the ones it was made with, and
/// says whether the new answer is the same token for token.
pub fn rerun(
    loaded: &LoadedModel,
    reuse: Option<&mut Reuse>,
    replay: &Replay,
    image: Option<&RgbImage>,
    on_started: &mut dyn FnMut(usize, usize),
    on_text: &mut dyn FnMut(&str),
    cancel: &AtomicBool,
) -> Result<DraftOutcome, DraftError> {
    let original = &replay.original;
    let short = |h: &str| h.chars().take(12).collect::<String>();
    if loaded.weights_sha256 != original.weights_sha256 {
        return Err(DraftError::OtherModel {
            drafted_with: format!("{} (weights sha256 {}…)", original.model_id, short(&original.weights_sha256)),
            loaded: format!("{} (weights sha256 {}…)", loaded.id, short(&loaded.weights_sha256)),
            drafted_model: original.model_id.clone(),
        });
    }
    // The image goes in only where the draft had one (its prompt has its place).
    let image = image.filter(|_| saw_an_image(original));
    if image.is_some() && !loaded.model.reads_images() {
        return Err(DraftError::NoVision);
    }
    if let Some(stored) = &original.model_input_sha256 {
        // The hash is of the image at the model's input size; drafts made
        // before those images were kept hashed the image before the resize.
        let now = image.map(|i| input_image(loaded, i)).transpose()?.map(|i| pixels_sha256(&i));
        let before = image.map(pixels_sha256);
        if now.as_ref() != Some(stored) && before.as_ref() != Some(stored) {
            let now = now.as_deref().map_or_else(|| "none".to_string(), short);
            return Err(DraftError::OtherImage { stored: short(stored), now });
        }
    }
    let params: GenerationParams = serde_json::from_value(original.params.clone())
        .map_err(|e| DraftError::Record(format!("its settings cannot be read ({e})")))?;
    // Drafts kept before their token ids were stored: the stored prompt text
    // is exactly what the model read (the chat template's output).
    let ids = if original.prompt_ids.is_empty() {
        loaded.model.encode_text(&original.prompt).map_err(|e| DraftError::Record(e.to_string()))?
    } else {
        original.prompt_ids.clone()
    };
    let prepared = Prepared {
        prompt_text: original.prompt.clone(),
        ids,
        params,
        template_id: original.template.clone(),
        question: original.question.clone(),
    };
    let mut outcome = generate(loaded, reuse, prepared, image, on_started, on_text, cancel)?;
    let verdict = verdict(original, &outcome.draft);
    // The same image and frame of the session as the draft it repeats.
    outcome.draft.views = original.views.clone();
    outcome.draft.rerun_of = Some(replay.of);
    outcome.draft.rerun_verdict = Some(verdict);
    Ok(outcome)
}

/// Whether a stored draft's model was given an image (its prompt has its place).
pub fn saw_an_image(draft: &NewDraft) -> bool {
    draft.model_input_sha256.is_some() || draft.prompt.contains("<start_of_image>")
}

/// Whether a re-run gave the stored answer: "reproduced exactly", or where it
/// first differs (naming both devices when they are not the same).
pub fn verdict(original: &NewDraft, again: &NewDraft) -> String {
    let devices = if original.device == again.device {
        String::new()
    } else {
        format!(" (made on {}, re-run on {})", original.device, again.device)
    };
    if again.error.is_some() {
        return format!("not reproduced: the re-run stopped with an error{devices}");
    }
    // Drafts kept before token ids were stored have none for their prompt
    // either (every prompt has at least one token); an answer may rightly
    // have none (the model stopped at once).
    if original.prompt_ids.is_empty() {
        // An older draft without its token ids: the text is what can be compared.
        return if original.text == again.text {
            format!("reproduced the same text (the original kept no token ids){devices}")
        } else {
            let at = original.text.chars().zip(again.text.chars()).take_while(|(a, b)| a == b).count();
            format!("differs from character {} (the original kept no token ids){devices}", at + 1)
        };
    }
    let (a, b) = (&original.token_ids, &again.token_ids);
    if a == b {
        return format!("reproduced exactly ({} tokens){devices}", a.len());
    }
    if original.stop_reason == "stopped" && b.starts_with(a) {
        return format!("reproduced exactly the {} tokens written before it was stopped, then went on to {}{devices}", a.len(), b.len());
    }
    let at = a.iter().zip(b).take_while(|(x, y)| x == y).count();
    format!("differs from token {}{devices}", at + 1)
}

/// Generation for a prepared prompt, and the record of it.
fn generate(
    loaded: &LoadedModel,
    reuse: Option<&mut Reuse>,
    prepared: Prepared,
    image: Option<&RgbImage>,
    on_started: &mut dyn FnMut(usize, usize),
    on_text: &mut dyn FnMut(&str),
    cancel: &AtomicBool,
) -> Result<DraftOutcome, DraftError> {
    let model = &loaded.model;
    let Prepared { prompt_text, ids, params, template_id, question } = prepared;
    on_started(ids.len(), params.max_new_tokens);

    // What the model sees, kept with the draft: the image at the model's
    // input size (its processor leaves it as it is from here on).
    let model_input = image.map(|i| input_image(loaded, i)).transpose()?;
    let model_input_sha256 = model_input.as_ref().map(pixels_sha256);
    // Images are keyed by the hash of their exact pixels, so a reused image
    // is certainly the same image.
    let images: Vec<(String, DynamicImage)> = model_input
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
    let (text, stop_reason, stats, error, token_ids, thinking) = match result {
        Ok(out) => {
            let stop = match out.stop_reason {
                StopReason::EndOfTurn => "end_of_turn",
                StopReason::MaxTokens => "max_tokens",
                StopReason::Cancelled => "stopped",
                StopReason::ContextFull => "context_full",
            };
            (out.text, stop, out.stats, None, out.token_ids, out.thinking)
        }
        Err(e) => {
            let stats = GenerationStats { prompt_tokens: ids.len(), total_ms: start.elapsed().as_secs_f64() * 1000.0, ..Default::default() };
            (partial.clone(), "error", stats, Some(model_error_in_words(&e)), Vec::new(), None)
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
        template: template_id,
        question,
        error,
        prompt_ids: ids,
        token_ids,
        model_input_sha256,
        thinking,
        rerun_of: None,
        rerun_verdict: None,
        // Set by the caller, who knows which image of the session this is.
        views: Vec::new(),
    };
    Ok(DraftOutcome { draft, stats, model_input })
}

/// An image at the model's input size, as its processor makes it.
fn input_image(loaded: &LoadedModel, image: &RgbImage) -> Result<RgbImage, DraftError> {
    loaded.model.input_image(&DynamicImage::ImageRgb8(image.clone())).map_err(|e| DraftError::Model(e.to_string()))
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

#[cfg(test)]
mod tests {
    use super::*;

    fn draft(prompt_ids: &[u32], token_ids: &[u32], text: &str, device: &str) -> NewDraft {
        NewDraft {
            prompt_ids: prompt_ids.to_vec(),
            token_ids: token_ids.to_vec(),
            text: text.into(),
            device: device.into(),
            stop_reason: "end_of_turn".into(),
            ..Default::default()
        }
    }

    #[test]
    fn the_same_tokens_are_reproduced_exactly() {
        let a = draft(&[2, 5], &[7, 8, 9], "abc", "cpu");
        assert_eq!(verdict(&a, &a.clone()), "reproduced exactly (3 tokens)");
    }

    #[test]
    fn an_answer_without_tokens_is_reproduced_exactly_not_taken_for_an_old_record() {
        // A sampled draft may stop at once: its record still has its prompt ids.
        let a = draft(&[2, 5], &[], "", "cpu");
        assert_eq!(verdict(&a, &a.clone()), "reproduced exactly (0 tokens)");
    }

    #[test]
    fn the_first_different_token_is_named_with_both_devices() {
        let a = draft(&[2], &[7, 8, 9], "abc", "cpu");
        let b = draft(&[2], &[7, 8, 4], "abd", "cuda");
        assert_eq!(verdict(&a, &b), "differs from token 3 (made on cpu, re-run on cuda)");
    }

    #[test]
    fn a_record_without_token_ids_is_compared_by_its_text() {
        let old = draft(&[], &[], "No effusion.", "cpu");
        let same = draft(&[2], &[7], "No effusion.", "cpu");
        assert_eq!(verdict(&old, &same), "reproduced the same text (the original kept no token ids)");
        let other = draft(&[2], &[7], "No edema.", "cpu");
        assert_eq!(verdict(&old, &other), "differs from character 5 (the original kept no token ids)");
    }

    #[test]
    fn a_stopped_draft_is_reproduced_up_to_where_it_stopped() {
        let mut a = draft(&[2], &[7, 8], "ab", "cpu");
        a.stop_reason = "stopped".into();
        let b = draft(&[2], &[7, 8, 9], "abc", "cpu");
        assert_eq!(verdict(&a, &b), "reproduced exactly the 2 tokens written before it was stopped, then went on to 3");
    }
}
