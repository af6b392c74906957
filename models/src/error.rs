//! What can go wrong when finding, loading or running a model, said so that a
//! user can act on it: every variant names the file and the problem.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("{path} is not a model folder: {reason}")]
    NotAModel { path: PathBuf, reason: String },
    #[error("cannot read {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{path} is not valid: {reason}")]
    BadConfig { path: PathBuf, reason: String },
    #[error("{path}: architecture \"{architecture}\" is not supported (MedGemma Desk runs Gemma 3 models)")]
    Unsupported { path: PathBuf, architecture: String },
    #[error("{path} is damaged or incomplete: {reason}")]
    BadWeights { path: PathBuf, reason: String },
    #[error("the tokenizer {path} cannot be used: {reason}")]
    Tokenizer { path: PathBuf, reason: String },
    #[error("the chat template cannot be rendered: {0}")]
    Template(String),
    #[error("the image cannot be read: {0}")]
    Image(String),
    #[error("this model has no vision tower, so it cannot look at images")]
    NoVision,
    #[error("{path} reads images only with its vision projector (an mmproj-….gguf file), which is not next to it; put the projector in the same folder, or pass --mmproj FILE")]
    NoProjector { path: PathBuf },
    #[error("the prompt has {tokens} tokens but the model reads at most {limit}")]
    PromptTooLong { tokens: usize, limit: usize },
    #[error("the prompt has {runs} image slots but {images} images were given")]
    ImageCountMismatch { runs: usize, images: usize },
    #[error("this model needs about {need_gb:.1} GB of memory on the {device} but only {available_gb:.1} GB is free; {suggestion}")]
    TooBig { need_gb: f64, available_gb: f64, device: String, suggestion: String },
    #[error("invalid generation setting: {0}")]
    BadParameter(String),
    #[error(transparent)]
    Device(#[from] crate::device::DeviceError),
    #[error("the model failed while computing: {0}")]
    Compute(#[from] candle_core::Error),
}

pub type Result<T, E = ModelError> = std::result::Result<T, E>;
