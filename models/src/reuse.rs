//! What one generation leaves for the next on the same case: each image's
//! features (the vision tower is the slowest part on a CPU) and the decoder's
//! memory after recent prompts and answers. A regeneration of the same prompt
//! then starts decoding at once; a follow-up question only reads its new
//! tokens. Outputs are the same as without reuse (tests/reuse.rs).

use candle_core::Tensor;

use crate::gemma3::KvCache;

/// How many image feature sets and decoder checkpoints are kept (each
/// checkpoint of a 4B model's prompt holds some hundred MB of keys/values,
/// shared with the others where they overlap).
const KEEP_FEATURES: usize = 4;
const KEEP_CHECKPOINTS: usize = 3;

pub(crate) struct Checkpoint {
    /// The tokens the cache has read, in order.
    pub ids: Vec<u32>,
    /// The keys of the images among them, in order.
    pub image_keys: Vec<String>,
    pub cache: KvCache,
    /// The logits after the last of `ids`, when known (so an identical prompt
    /// needs no decoder step at all).
    pub logits: Option<Tensor>,
}

/// Kept between generations; give the same one to every generation of a model.
#[derive(Default)]
pub struct Reuse {
    pub(crate) features: Vec<(String, Tensor)>,
    pub(crate) checkpoints: Vec<Checkpoint>,
}

impl Reuse {
    pub fn new() -> Self {
        Self::default()
    }

    /// Forgets everything (another model, or memory is needed).
    pub fn clear(&mut self) {
        self.features.clear();
        self.checkpoints.clear();
    }

    pub(crate) fn features(&self, key: &str) -> Option<Tensor> {
        self.features.iter().find(|(k, _)| k == key).map(|(_, t)| t.clone())
    }

    pub(crate) fn keep_features(&mut self, key: String, feats: Tensor) {
        self.features.retain(|(k, _)| *k != key);
        self.features.push((key, feats));
        if self.features.len() > KEEP_FEATURES {
            self.features.remove(0);
        }
    }

    pub(crate) fn keep_checkpoint(&mut self, checkpoint: Checkpoint) {
        self.checkpoints.retain(|c| c.ids != checkpoint.ids || c.image_keys != checkpoint.image_keys);
        self.checkpoints.push(checkpoint);
        if self.checkpoints.len() > KEEP_CHECKPOINTS {
            self.checkpoints.remove(0);
        }
    }
}
