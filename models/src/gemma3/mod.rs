//! Gemma 3 (MedGemma): the text decoder, and for the multimodal models the
//! SigLIP tower whose pooled, normed, projected patches replace the prompt's
//! `<image_soft_token>` rows.

pub mod attention_mask;
mod few_query_attention;
pub mod kv_cache;
pub mod text;

use std::path::{Path, PathBuf};

const NO_TOWER: &str = "config.json describes a vision tower but the weights have none";

use candle_core::{DType, Device, Module, Tensor};

pub use attention_mask::TokenKind;
pub use kv_cache::KvCache;

use crate::config::Gemma3Config;
use crate::error::{ModelError, Result};
use crate::layers::GemmaRmsNorm;
use crate::siglip::VisionTower;
use crate::weights::Weights;
use text::TextModel;

/// Pools the vision tower's patch grid to `mm_tokens_per_image`, norms it and
/// maps it into the text model's embedding space.
pub struct Projector {
    norm: GemmaRmsNorm,
    /// Stored [vision_hidden, text_hidden] and applied as `x @ W`.
    weight: Tensor,
    grid: usize,
    side: usize,
}

impl Projector {
    fn load(w: &Weights, prefix: &str, cfg: &Gemma3Config) -> Result<Self> {
        let v = cfg.vision.as_ref().ok_or(ModelError::NoVision)?;
        Ok(Self {
            norm: w.gemma_rms_norm(&format!("{prefix}mm_soft_emb_norm"), v.hidden_size, cfg.text.rms_norm_eps)?,
            weight: w.get(&format!("{prefix}mm_input_projection_weight"), &[v.hidden_size, cfg.text.hidden_size])?,
            grid: v.patches_per_side(),
            side: (cfg.mm_tokens_per_image as f64).sqrt() as usize,
        })
    }

    /// patches [grid², vision_hidden] (row-major) → [side², text_hidden].
    pub fn forward(&self, patches: &Tensor) -> Result<Tensor> {
        let (g, s) = (self.grid, self.side);
        let k = g / s;
        let hidden = patches.dim(1)?;
        let pooled = patches
            .t()?
            .reshape((hidden, s, k, s, k))?
            .mean(4)?
            .mean(2)?
            .reshape((hidden, s * s))?
            .t()?;
        let normed = self.norm.forward(&pooled)?;
        Ok(normed.matmul(&self.weight)?)
    }
}

pub struct Gemma3 {
    pub config: Gemma3Config,
    pub text: TextModel,
    vision: Option<(VisionTower, Projector)>,
}

impl Gemma3 {
    /// Loads a Hugging Face model folder's weights (config already read).
    pub fn load(dir: &Path, config: Gemma3Config, device: &Device, dtype: DType) -> Result<Self> {
        let w = Weights::open(dir, device, dtype)?;
        Self::from_weights(&w, config).map_err(|e| match e {
            ModelError::BadWeights { reason, .. } if reason == NO_TOWER => {
                ModelError::BadWeights { path: dir.to_path_buf(), reason: NO_TOWER.into() }
            }
            other => other,
        })
    }

    /// Builds the model from opened weights (safetensors or GGUF).
    pub fn from_weights(w: &Weights, config: Gemma3Config) -> Result<Self> {
        let text = TextModel::load(w, &config.text)?;
        let vision = match (&config.vision, &w.vision_prefix, &w.projector_prefix) {
            (Some(vcfg), Some(vp), Some(pp)) => Some((VisionTower::load(w, vp, vcfg)?, Projector::load(w, pp, &config)?)),
            (Some(_), _, _) => return Err(ModelError::BadWeights { path: PathBuf::new(), reason: NO_TOWER.into() }),
            _ => None,
        };
        Ok(Self { config, text, vision })
    }

    pub fn has_vision(&self) -> bool {
        self.vision.is_some()
    }

    /// One image's soft-token embeddings [mm_tokens, text_hidden] from its
    /// preprocessed pixels [3, size, size].
    pub fn image_features(&self, pixels: &Tensor) -> Result<Tensor> {
        let (tower, projector) = self.vision.as_ref().ok_or(ModelError::NoVision)?;
        projector.forward(&tower.forward(pixels)?)
    }

    /// The decoder's input for a prompt: scaled text embeddings with each run
    /// of image soft tokens replaced (unscaled) by one image's features.
    pub fn embed_prompt(&self, ids: &[u32], images: &[Tensor], image_base: u32) -> Result<(Tensor, Vec<TokenKind>)> {
        let kinds = self.token_kinds(ids, image_base);
        let runs = image_runs(&kinds);
        if runs.len() != images.len() {
            return Err(ModelError::ImageCountMismatch { runs: runs.len(), images: images.len() });
        }
        let mut embeds = self.text.embed(ids)?;
        for ((start, len), feats) in runs.into_iter().zip(images) {
            if len != feats.dim(0)? {
                return Err(ModelError::BadParameter(format!(
                    "an image slot has {len} soft tokens but the model makes {} per image",
                    feats.dim(0)?
                )));
            }
            let feats = feats.to_dtype(self.text.dtype())?;
            embeds = embeds.slice_assign(&[start..start + len, 0..self.text.hidden_size()], &feats)?;
        }
        Ok((embeds, kinds))
    }

    /// Which positions are image soft tokens, numbering images from `image_base`.
    pub fn token_kinds(&self, ids: &[u32], image_base: u32) -> Vec<TokenKind> {
        let mut kinds = Vec::with_capacity(ids.len());
        let mut image = image_base;
        let mut in_run = false;
        for &id in ids {
            if id == self.config.image_token_id {
                kinds.push(TokenKind::Image(image));
                in_run = true;
            } else {
                if in_run {
                    image += 1;
                    in_run = false;
                }
                kinds.push(TokenKind::Text);
            }
        }
        kinds
    }

    /// Runs a prompt through the decoder in chunks of about `chunk` tokens
    /// (never splitting an image's soft tokens, which attend to each other),
    /// and returns the final hidden states of every position [t, hidden].
    pub fn prefill(&self, embeds: &Tensor, kinds: &[TokenKind], cache: &mut KvCache, chunk: usize) -> Result<Tensor> {
        let total = kinds.len();
        let mut outputs = Vec::new();
        let mut start = 0;
        while start < total {
            let mut end = (start + chunk.max(1)).min(total);
            while end < total && matches!((kinds[end - 1], kinds[end]), (TokenKind::Image(a), TokenKind::Image(b)) if a == b) {
                end += 1;
            }
            let part = embeds.narrow(0, start, end - start)?;
            outputs.push(self.text.forward(&part, &kinds[start..end], cache)?);
            start = end;
        }
        Ok(Tensor::cat(&outputs, 0)?)
    }
}

/// (start, length) of each run of image soft tokens.
fn image_runs(kinds: &[TokenKind]) -> Vec<(usize, usize)> {
    let mut runs: Vec<(usize, usize)> = Vec::new();
    let mut prev = None;
    for (i, k) in kinds.iter().enumerate() {
        if let TokenKind::Image(n) = k {
            match (prev, runs.last_mut()) {
                (Some(p), Some(run)) if p == *n && run.0 + run.1 == i => run.1 += 1,
                _ => runs.push((i, 1)),
            }
            prev = Some(*n);
        } else {
            prev = None;
        }
    }
    runs
}
