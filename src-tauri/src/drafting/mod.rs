//! Drafting: from template + case notes + image to a streamed draft kept with
//! its full provenance. `templates` (TOML files the department can edit),
//! `prompt` (the conversation), `engine` (one draft on a loaded model, shared
//! by the window and the command line), `worker` (the window's model thread),
//! `models` (where the app finds models), `review` (tracked changes between
//! the AI draft and the clinician's report).

#[cfg(all(feature = "download", not(feature = "lockdown")))]
pub mod download;
pub mod download_process;
pub mod engine;
pub mod import;
pub mod models;
pub mod prompt;
pub mod review;
pub mod service;
pub mod templates;
pub mod weights_hash;
pub mod worker;

use serde::Serialize;

pub use engine::{DraftError, DraftOutcome, DraftRequest, LoadedModel, Sampling};
pub use service::{DraftMode, Service};
pub use templates::{Template, DEFAULT_TEMPLATE};

/// What the draft pane hears while a draft is made, in order: `Loading`
/// (only when the model must be loaded), `Started`, any number of `Token`,
/// then exactly one of `Finished` or `Failed`.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "event", rename_all = "camelCase", rename_all_fields = "camelCase")]
pub enum DraftEvent {
    Loading { model: String },
    Started { prompt_tokens: usize, max_tokens: usize, model: String, device: String },
    Token { text: String },
    Finished {
        draft_id: i64,
        stop_reason: String,
        generated_tokens: usize,
        time_to_first_token_ms: f64,
        decode_tok_s: f64,
        total_ms: f64,
        prompt_tokens: usize,
        /// Prompt tokens not read again (an earlier draft's memory was reused).
        reused_prompt_tokens: usize,
        /// The image's features came from an earlier draft (not encoded again).
        image_reused: bool,
    },
    Failed { message: String, draft_id: Option<i64> },
}
