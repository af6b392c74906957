//! The Gemma 3 text decoder: sliding-window and global attention layers, RoPE
//! per layer type (linear scaling on global layers), q/k norms, GELU-tanh MLP,
//! four norms per layer, √hidden-scaled text embeddings, tied output head.

use candle_core::{DType, Device, Module, Tensor};

use super::attention_mask::{AttentionMask, TokenKind};
use super::kv_cache::KvCache;
use crate::config::{LayerType, Rope, TextConfig};
use crate::error::Result;
use crate::layers::{softmax_f32, Embedding, GemmaRmsNorm, Linear};
use crate::weights::Weights;

struct Attention {
    q_proj: Linear,
    k_proj: Linear,
    v_proj: Linear,
    o_proj: Linear,
    q_norm: GemmaRmsNorm,
    k_norm: GemmaRmsNorm,
    num_heads: usize,
    num_kv_heads: usize,
    head_dim: usize,
    scale: f64,
    softcap: Option<f64>,
}

impl Attention {
    fn load(w: &Weights, p: &str, cfg: &TextConfig) -> Result<Self> {
        let (h, hd) = (cfg.hidden_size, cfg.head_dim);
        let (nh, nkv) = (cfg.num_attention_heads, cfg.num_key_value_heads);
        Ok(Self {
            q_proj: w.linear(&format!("{p}.q_proj"), h, nh * hd, false)?,
            k_proj: w.linear(&format!("{p}.k_proj"), h, nkv * hd, false)?,
            v_proj: w.linear(&format!("{p}.v_proj"), h, nkv * hd, false)?,
            o_proj: w.linear(&format!("{p}.o_proj"), nh * hd, h, false)?,
            q_norm: w.gemma_rms_norm(&format!("{p}.q_norm"), hd, cfg.rms_norm_eps)?,
            k_norm: w.gemma_rms_norm(&format!("{p}.k_norm"), hd, cfg.rms_norm_eps)?,
            num_heads: nh,
            num_kv_heads: nkv,
            head_dim: hd,
            scale: cfg.query_pre_attn_scalar.powf(-0.5),
            softcap: cfg.attn_logit_softcapping,
        })
    }

    /// x: [t, hidden] for the new tokens; returns [t, hidden].
    fn forward(
        &self,
        x: &Tensor,
        cos: &Tensor,
        sin: &Tensor,
        mask: Option<&Tensor>,
        cache: &mut super::kv_cache::LayerCache,
    ) -> Result<Tensor> {
        let t = x.dim(0)?;
        let heads = |y: Tensor, n: usize| -> candle_core::Result<Tensor> {
            y.reshape((1, t, n, self.head_dim))?.transpose(1, 2)?.contiguous()
        };
        let [q, k, v]: [Tensor; 3] = Linear::forward_many(&[&self.q_proj, &self.k_proj, &self.v_proj], x)?
            .try_into()
            .map_err(|_| candle_core::Error::Msg("q, k, v: three projections expected".into()))?;
        let q = heads(self.q_norm.forward(&q.reshape((t, self.num_heads, self.head_dim))?)?, self.num_heads)?;
        let k = heads(self.k_norm.forward(&k.reshape((t, self.num_kv_heads, self.head_dim))?)?, self.num_kv_heads)?;
        let v = heads(v, self.num_kv_heads)?;
        let q = candle_nn::rotary_emb::rope(&q, cos, sin)?;
        let k = candle_nn::rotary_emb::rope(&k, cos, sin)?;
        let (k, v) = cache.append(&k, &v)?;

        // Grouped-query attention: each kv head serves `groups` query heads.
        let groups = self.num_heads / self.num_kv_heads;
        let q = q.reshape((self.num_kv_heads, groups * t, self.head_dim))?;
        // Views into the cache's buffers (squeeze, unlike reshape, never copies).
        let (k, v) = (k.squeeze(0)?, v.squeeze(0)?);
        let params = super::few_query_attention::Params { t, scale: self.scale as f32, softcap: self.softcap.map(|c| c as f32) };
        let out = match super::few_query_attention::attend(&q, &k, &v, mask, &params)? {
            Some(out) => out,
            None => self.attend_by_matmul(&q, &k, &v, mask, t)?,
        }; // [kv, groups*t, hd]
        let out = out
            .reshape((self.num_heads, t, self.head_dim))?
            .transpose(0, 1)?
            .reshape((t, self.num_heads * self.head_dim))?;
        Ok(self.o_proj.forward(&out)?)
    }

    /// softmax(q kᵀ·scale + mask) v with candle's matmul (long prompts, GPUs).
    fn attend_by_matmul(&self, q: &Tensor, k: &Tensor, v: &Tensor, mask: Option<&Tensor>, t: usize) -> candle_core::Result<Tensor> {
        let groups = self.num_heads / self.num_kv_heads;
        let s = k.dim(1)?;
        let mut scores = (q.matmul(&k.t()?)? * self.scale)?;
        if let Some(cap) = self.softcap {
            scores = ((scores / cap)?.tanh()? * cap)?;
        }
        let scores = scores.reshape((self.num_kv_heads, groups, t, s))?;
        let scores = match mask {
            Some(m) => scores.broadcast_add(&m.to_dtype(scores.dtype())?)?,
            None => scores,
        };
        let probs = softmax_f32(&scores)?.reshape((self.num_kv_heads, groups * t, s))?;
        probs.matmul(v)
    }
}

struct Mlp {
    gate: Linear,
    up: Linear,
    down: Linear,
}

impl Mlp {
    fn load(w: &Weights, p: &str, cfg: &TextConfig) -> Result<Self> {
        let (h, i) = (cfg.hidden_size, cfg.intermediate_size);
        Ok(Self {
            gate: w.linear(&format!("{p}.gate_proj"), h, i, false)?,
            up: w.linear(&format!("{p}.up_proj"), h, i, false)?,
            down: w.linear(&format!("{p}.down_proj"), i, h, false)?,
        })
    }

    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        // Gemma's gelu_pytorch_tanh, fused with the gate product.
        let [gate, up]: [Tensor; 2] = Linear::forward_many(&[&self.gate, &self.up], x)?
            .try_into()
            .map_err(|_| candle_core::Error::Msg("gate, up: two projections expected".into()))?;
        self.down.forward(&crate::layers::gelu_tanh_mul(&gate, &up)?)
    }
}

struct DecoderLayer {
    attn: Attention,
    mlp: Mlp,
    input_norm: GemmaRmsNorm,
    post_attn_norm: GemmaRmsNorm,
    pre_ff_norm: GemmaRmsNorm,
    post_ff_norm: GemmaRmsNorm,
    kind: LayerType,
}

/// Cosine and sine tables of one RoPE setting, grown on demand.
struct RotaryTables {
    inv_freq: Vec<f32>,
}

impl RotaryTables {
    fn new(rope: Rope, head_dim: usize) -> Self {
        let inv_freq = (0..head_dim / 2)
            .map(|i| {
                let f = 1.0 / (rope.theta as f32).powf((2 * i) as f32 / head_dim as f32);
                f / rope.linear_factor as f32
            })
            .collect();
        Self { inv_freq }
    }

    /// cos and sin for positions `start..start + len`, each [len, head_dim / 2].
    fn tables(&self, start: usize, len: usize, device: &Device, dtype: DType) -> Result<(Tensor, Tensor)> {
        let half = self.inv_freq.len();
        let mut angles = Vec::with_capacity(len * half);
        for pos in start..start + len {
            angles.extend(self.inv_freq.iter().map(|f| f * pos as f32));
        }
        let a = Tensor::from_vec(angles, (len, half), device)?;
        Ok((a.cos()?.to_dtype(dtype)?, a.sin()?.to_dtype(dtype)?))
    }
}

pub struct TextModel {
    pub cfg: TextConfig,
    embed_tokens: Embedding,
    embed_scale: Tensor,
    layers: Vec<DecoderLayer>,
    norm: GemmaRmsNorm,
    lm_head: Linear,
    rope_global: RotaryTables,
    rope_local: RotaryTables,
    device: Device,
    dtype: DType,
}

impl TextModel {
    pub fn load(w: &Weights, cfg: &TextConfig) -> Result<Self> {
        let p = &w.text_prefix;
        let embed_tokens = w.embedding(&format!("{p}embed_tokens.weight"), cfg.vocab_size, cfg.hidden_size)?;
        let mut layers = Vec::with_capacity(cfg.num_hidden_layers);
        for i in 0..cfg.num_hidden_layers {
            let lp = format!("{p}layers.{i}");
            let norm = |n: &str| w.gemma_rms_norm(&format!("{lp}.{n}"), cfg.hidden_size, cfg.rms_norm_eps);
            layers.push(DecoderLayer {
                attn: Attention::load(w, &format!("{lp}.self_attn"), cfg)?,
                mlp: Mlp::load(w, &format!("{lp}.mlp"), cfg)?,
                input_norm: norm("input_layernorm")?,
                post_attn_norm: norm("post_attention_layernorm")?,
                pre_ff_norm: norm("pre_feedforward_layernorm")?,
                post_ff_norm: norm("post_feedforward_layernorm")?,
                kind: cfg.layer_types[i],
            });
        }
        let lm_head = if cfg.tie_word_embeddings || !w.contains("lm_head.weight") {
            embed_tokens.tied_head()?
        } else {
            w.linear("lm_head", cfg.hidden_size, cfg.vocab_size, false)?
        };
        // The reference multiplies by √hidden cast to the weights' dtype.
        let embed_scale = Tensor::new((cfg.hidden_size as f32).sqrt(), &w.device)?.to_dtype(w.dtype)?;
        Ok(Self {
            cfg: cfg.clone(),
            embed_tokens,
            embed_scale,
            layers,
            norm: w.gemma_rms_norm(&format!("{p}norm"), cfg.hidden_size, cfg.rms_norm_eps)?,
            lm_head,
            rope_global: RotaryTables::new(cfg.rope_global, cfg.head_dim),
            rope_local: RotaryTables::new(cfg.rope_local, cfg.head_dim),
            device: w.device.clone(),
            dtype: w.dtype,
        })
    }

    pub fn dtype(&self) -> DType {
        self.dtype
    }

    pub fn new_cache(&self) -> KvCache {
        let windows = self
            .layers
            .iter()
            .map(|l| (l.kind == LayerType::Sliding).then_some(self.cfg.sliding_window))
            .collect();
        KvCache::new(windows)
    }

    /// Scaled text embeddings [t, hidden]. Ids beyond the table (an image
    /// token placed outside it) embed as row 0; their rows are replaced anyway.
    pub fn embed(&self, ids: &[u32]) -> Result<Tensor> {
        let vocab = self.cfg.vocab_size as u32;
        let safe: Vec<u32> = ids.iter().map(|&i| if i < vocab { i } else { 0 }).collect();
        let ids = Tensor::new(safe.as_slice(), &self.device)?;
        Ok(self.embed_tokens.lookup(&ids)?.broadcast_mul(&self.embed_scale)?)
    }

    /// Runs the new tokens' embeddings through every layer and the final norm;
    /// returns the hidden states [t, hidden]. `kinds` tells which new tokens are
    /// image soft tokens (and of which image) for the bidirectional mask.
    pub fn forward(&self, embeds: &Tensor, kinds: &[TokenKind], cache: &mut KvCache) -> Result<Tensor> {
        let t = embeds.dim(0)?;
        let start = cache.seen();
        cache.record(kinds);
        let (cos_g, sin_g) = self.rope_global.tables(start, t, &self.device, self.dtype)?;
        let (cos_l, sin_l) = self.rope_local.tables(start, t, &self.device, self.dtype)?;
        let mut x = embeds.clone();
        for (i, layer) in self.layers.iter().enumerate() {
            let (cos, sin) = match layer.kind {
                LayerType::Global => (&cos_g, &sin_g),
                LayerType::Sliding => (&cos_l, &sin_l),
            };
            let key_start = cache.layer_mut(i).start();
            let window = match layer.kind {
                LayerType::Sliding => Some(self.cfg.sliding_window),
                LayerType::Global => None,
            };
            let mask = AttentionMask { query_start: start, queries: t, key_start, window }
                .build(cache.kinds(), &self.device)?;
            let layer_cache = cache.layer_mut(i);
            let residual = x.clone();
            let h = layer.input_norm.forward(&x)?;
            let h = layer.attn.forward(&h, cos, sin, mask.as_ref(), layer_cache)?;
            let h = layer.post_attn_norm.forward(&h)?;
            x = (residual + h)?;
            let residual = x.clone();
            let h = layer.pre_ff_norm.forward(&x)?;
            let h = layer.mlp.forward(&h)?;
            let h = layer.post_ff_norm.forward(&h)?;
            x = (residual + h)?;
        }
        cache.trim();
        Ok(self.norm.forward(&x)?)
    }

    /// Logits [t, vocab] in f32 for hidden states [t, hidden].
    pub fn logits(&self, hidden: &Tensor) -> Result<Tensor> {
        let mut logits = self.lm_head.forward(hidden)?.to_dtype(DType::F32)?;
        if let Some(cap) = self.cfg.final_logit_softcapping {
            logits = ((logits / cap)?.tanh()? * cap)?;
        }
        Ok(logits)
    }

    /// Logits of the last position only, [vocab] in f32.
    pub fn last_logits(&self, hidden: &Tensor) -> Result<Tensor> {
        let t = hidden.dim(0)?;
        Ok(self.logits(&hidden.narrow(0, t - 1, 1)?)?.squeeze(0)?)
    }

    pub fn hidden_size(&self) -> usize {
        self.cfg.hidden_size
    }
}
