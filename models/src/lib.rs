//! medgemma-models: the model runtime behind MedGemma Desk. It knows nothing of
//! windows, SQLite or DICOM: find a model, load it on a device, generate.
//!
//! ```no_run
//! use medgemma_models::{DeviceChoice, GenerationParams, Message, Model, Role, Content};
//! use std::sync::atomic::AtomicBool;
//! let model = Model::load("medgemma-4b-it".as_ref(), DeviceChoice::Auto)?;
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

pub mod chat;
pub mod config;
pub mod device;
pub mod error;
pub mod gemma3;
pub mod generate;
pub mod gguf;
mod layers;
pub mod memory;
pub mod model;
pub mod processor;
pub mod quantized_matmul;
pub mod resample;
pub mod reuse;
pub mod siglip;
pub mod tokenizer;
mod weights;

pub use chat::{ChatTemplate, Content, Message, Role};
pub use config::Gemma3Config;
pub use device::{DeviceChoice, DeviceError};
pub use error::ModelError;
pub use generate::{Generation, GenerationParams, GenerationStats, StopReason};
pub use model::Model;
pub use processor::{open_image, ImageProcessor};
pub use reuse::Reuse;
