//! The SigLIP vision tower (MedGemma's image encoder): patch embedding, learned
//! positions, pre-norm transformer layers, post-layernorm. Output [patches, hidden].

use candle_core::{Module, Tensor};

use crate::config::VisionConfig;
use crate::error::Result;
use crate::layers::{softmax_f32, LayerNorm, Linear};
use crate::weights::Weights;

struct EncoderLayer {
    ln1: LayerNorm,
    ln2: LayerNorm,
    q: Linear,
    k: Linear,
    v: Linear,
    out: Linear,
    fc1: Linear,
    fc2: Linear,
}

/// Softmax attention over all patches, computed for blocks of queries at a
/// time: the full score matrix of a 4096-patch image is 1 GiB per layer, and
/// allocating (and faulting in) it dominated the run time.
fn attention_in_blocks(q: &Tensor, k_t: &Tensor, v: &Tensor, scale: f64) -> candle_core::Result<Tensor> {
    const BLOCK: usize = 512;
    // Scaling the queries (n × d) costs far less than scaling the scores (n × n).
    let q = (q * scale)?;
    let n = q.dim(1)?;
    if n <= BLOCK {
        return softmax_f32(&q.matmul(k_t)?)?.matmul(v);
    }
    let mut outs = Vec::with_capacity(n.div_ceil(BLOCK));
    let mut start = 0;
    while start < n {
        let len = BLOCK.min(n - start);
        let qb = q.narrow(1, start, len)?;
        outs.push(softmax_f32(&qb.matmul(k_t)?)?.matmul(v)?);
        start += len;
    }
    Tensor::cat(&outs, 1)
}

pub struct VisionTower {
    cfg: VisionConfig,
    /// The patch convolution as a matrix [hidden, channels·patch·patch]: with
    /// stride = kernel, a convolution is exactly a matmul over flattened patches.
    patch_weight: Tensor,
    patch_bias: Tensor,
    positions: Tensor,
    layers: Vec<EncoderLayer>,
    post_layernorm: LayerNorm,
}

impl VisionTower {
    pub fn load(w: &Weights, prefix: &str, cfg: &VisionConfig) -> Result<Self> {
        let (h, i, p, c) = (cfg.hidden_size, cfg.intermediate_size, cfg.patch_size, cfg.num_channels);
        let n = cfg.patches_per_side() * cfg.patches_per_side();
        let patch_weight = w
            .get(&format!("{prefix}embeddings.patch_embedding.weight"), &[h, c, p, p])?
            .reshape((h, c * p * p))?;
        let mut layers = Vec::with_capacity(cfg.num_hidden_layers);
        for l in 0..cfg.num_hidden_layers {
            let lp = format!("{prefix}encoder.layers.{l}");
            let lin = |name: &str, a, b| w.linear(&format!("{lp}.{name}"), a, b, true);
            layers.push(EncoderLayer {
                ln1: w.layer_norm(&format!("{lp}.layer_norm1"), h, cfg.layer_norm_eps)?,
                ln2: w.layer_norm(&format!("{lp}.layer_norm2"), h, cfg.layer_norm_eps)?,
                q: lin("self_attn.q_proj", h, h)?,
                k: lin("self_attn.k_proj", h, h)?,
                v: lin("self_attn.v_proj", h, h)?,
                out: lin("self_attn.out_proj", h, h)?,
                fc1: lin("mlp.fc1", h, i)?,
                fc2: lin("mlp.fc2", i, h)?,
            });
        }
        Ok(Self {
            cfg: cfg.clone(),
            patch_weight,
            patch_bias: w.get(&format!("{prefix}embeddings.patch_embedding.bias"), &[h])?,
            positions: w.get(&format!("{prefix}embeddings.position_embedding.weight"), &[n, h])?,
            layers,
            post_layernorm: w.layer_norm(&format!("{prefix}post_layernorm"), h, cfg.layer_norm_eps)?,
        })
    }

    /// pixels: [3, size, size] normalised; returns [patches, hidden], patches row-major.
    pub fn forward(&self, pixels: &Tensor) -> Result<Tensor> {
        let (c, p, g, hd) = (self.cfg.num_channels, self.cfg.patch_size, self.cfg.patches_per_side(), self.cfg.hidden_size);
        let patches = pixels
            .to_dtype(self.patch_weight.dtype())?
            .reshape((c, g, p, g, p))?
            .permute((1, 3, 0, 2, 4))?
            .reshape((g * g, c * p * p))?;
        let mut x = patches.matmul(&self.patch_weight.t()?)?.broadcast_add(&self.patch_bias)?;
        x = (x + &self.positions)?;
        let heads = self.cfg.num_attention_heads;
        let head_dim = hd / heads;
        let scale = (head_dim as f64).powf(-0.5);
        let n = g * g;
        for layer in &self.layers {
            let h = layer.ln1.forward(&x)?;
            let split = |t: Tensor| -> candle_core::Result<Tensor> { t.reshape((n, heads, head_dim))?.transpose(0, 1)?.contiguous() };
            let q = split(layer.q.forward(&h)?)?;
            let k = split(layer.k.forward(&h)?)?;
            let v = split(layer.v.forward(&h)?)?;
            let attn = attention_in_blocks(&q, &k.t()?.contiguous()?, &v, scale)?.transpose(0, 1)?.reshape((n, hd))?;
            x = (x + layer.out.forward(&attn)?)?;
            let h = layer.ln2.forward(&x)?;
            let h = layer.fc2.forward(&layer.fc1.forward(&h)?.gelu()?)?;
            x = (x + h)?;
        }
        Ok(self.post_layernorm.forward(&x)?)
    }
}
