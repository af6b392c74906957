//! The file formats the runtime reads, for tools that inspect a model's
//! files without loading its weights, and for the fuzz targets: GGUF headers
//! and tensor tables, chat templates (as a model file carries them).

pub use crate::chat::ChatTemplate;
pub use crate::gguf::{GgufFile, SUPPORTED_TYPES};
