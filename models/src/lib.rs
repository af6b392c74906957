//! medgemma-models: the model runtime behind MedGemma Desk. It knows nothing of
//! windows, SQLite or DICOM: find a model, load it on a device, generate.
//!
//! ```no_run
//! use medgemma_models::{Content, DeviceChoice, GenerationParams, Message, Model, ModelSource, Role};
//! use std::sync::atomic::AtomicBool;
//! let model = Model::load(&ModelSource::at("medgemma-4b-it".as_ref()), DeviceChoice::Auto)?;
//! let image = medgemma_models::open_image("chest.png".as_ref())?;
//! let conversation = [Message { role: Role::User, content: vec![Content::Text("Describe this X-ray".into()), Content::Image] }];
//! let ids = model.encode_conversation(&conversation)?;
//! let out = model.generate(&ids, &[image], &GenerationParams::default(), &mut |t| print!("{t}"), &AtomicBool::new(false))?;
//! println!("\n{:?} after {} tokens", out.stop_reason, out.token_ids.len());
//! # Ok::<(), medgemma_models::ModelError>(())
//! ```
//!
//! No unsafe code here but the memory maps of weight files (each spot allowed
//! and commented); every unsafe SIMD kernel lives in medgemma-kernels.

#![deny(unsafe_code)]

// The front door (re-exported below) is all the app uses; the modules are
// the runtime's own. `config` is public as the model's description (as in
// candle-transformers), `registry` for finding models, `formats` for tools
// that read a model's files without loading it (and for fuzzing).
mod chat;
pub mod config;
mod device;
mod error;
pub mod formats;
mod gemma3;
mod generate;
mod gguf;
mod layers;
mod memory;
mod model;
mod processor;
mod quantized_matmul;
pub mod registry;
mod resample;
mod reuse;
mod siglip;
mod tokenizer;
mod weights;

// Load: where a model is, the device, and the errors a user is told.
pub use device::{DeviceChoice, DeviceError, Precision};
pub use error::ModelError;
pub use model::{Model, ModelSource};
// Which CPU kernel set runs the quantized products (benchmarks report it).
pub use quantized_matmul::cpu_kernels;
// A conversation.
pub use chat::{Content, Message, Role};
// Generating.
pub use generate::{Generation, GenerationParams, GenerationStats, StopReason};
pub use reuse::Reuse;
// Images.
pub use processor::{open_image, ImageProcessor};
// Memory: what a model needs, what is free.
pub use config::Gemma3Config;
pub use memory::{available_memory, memory_need, MemoryNeed, DRAFT_CONTEXT};
