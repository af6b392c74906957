//! Gemma 3's configuration: one type (`Gemma3Config`, with its text and
//! vision parts), first in this file, and its two constructors: from a Hugging
//! Face `config.json` here, in every generation of its format (the 4.50-era
//! keys such as `sliding_window_pattern`, `layer_types`, and the 5.x
//! `rope_parameters` block; missing keys take the reference defaults), and
//! from GGUF metadata in `gguf.rs`.

mod gguf;

use std::path::Path;

use serde_json::Value;

use crate::error::{ModelError, Result};

pub(crate) use gguf::ProjectorConfig;

/// Sliding-window (local) or global attention.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LayerType {
    Sliding,
    Global,
}

/// Rotary embedding settings for one layer type.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rope {
    pub theta: f64,
    /// Linear scaling: positions are divided by this factor (1 when unscaled).
    pub linear_factor: f64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct TextConfig {
    pub vocab_size: usize,
    pub hidden_size: usize,
    pub intermediate_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    pub num_key_value_heads: usize,
    pub head_dim: usize,
    pub query_pre_attn_scalar: f64,
    pub sliding_window: usize,
    pub layer_types: Vec<LayerType>,
    pub rope_global: Rope,
    pub rope_local: Rope,
    pub rms_norm_eps: f64,
    pub max_position_embeddings: usize,
    pub final_logit_softcapping: Option<f64>,
    pub attn_logit_softcapping: Option<f64>,
    pub tie_word_embeddings: bool,
}

impl TextConfig {
    pub fn rope(&self, layer: usize) -> Rope {
        match self.layer_types[layer] {
            LayerType::Global => self.rope_global,
            LayerType::Sliding => self.rope_local,
        }
    }

    /// Parameters of the decoder (embedding counted once: the head is tied).
    pub fn parameter_count(&self) -> u64 {
        let h = self.hidden_size as u64;
        let hd = self.head_dim as u64;
        let q = self.num_attention_heads as u64 * hd;
        let kv = self.num_key_value_heads as u64 * hd;
        let attn = h * q + 2 * h * kv + q * h + 2 * hd;
        let mlp = 3 * h * self.intermediate_size as u64;
        let per_layer = attn + mlp + 4 * h;
        let head = if self.tie_word_embeddings { 0 } else { self.vocab_size as u64 * h };
        self.vocab_size as u64 * h + self.num_hidden_layers as u64 * per_layer + h + head
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct VisionConfig {
    pub hidden_size: usize,
    pub intermediate_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    pub num_channels: usize,
    pub image_size: usize,
    pub patch_size: usize,
    pub layer_norm_eps: f64,
}

impl VisionConfig {
    pub fn patches_per_side(&self) -> usize {
        self.image_size / self.patch_size
    }

    pub fn parameter_count(&self) -> u64 {
        let h = self.hidden_size as u64;
        let i = self.intermediate_size as u64;
        let p = self.patch_size as u64;
        let patches = (self.patches_per_side() * self.patches_per_side()) as u64;
        let embed = self.num_channels as u64 * p * p * h + h + patches * h;
        let layer = 4 * (h * h + h) + (h * i + i) + (i * h + h) + 4 * h;
        embed + self.num_hidden_layers as u64 * layer + 2 * h
    }
}

/// A whole model's configuration: the decoder, and the vision tower when the
/// model is multimodal (`Gemma3ForConditionalGeneration`).
#[derive(Debug, Clone, PartialEq)]
pub struct Gemma3Config {
    pub architecture: String,
    pub text: TextConfig,
    pub vision: Option<VisionConfig>,
    pub mm_tokens_per_image: usize,
    pub image_token_id: u32,
    pub boi_token_id: u32,
    pub eoi_token_id: u32,
    pub eos_token_ids: Vec<u32>,
}

impl Gemma3Config {
    pub fn from_file(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|source| ModelError::Io { path: path.into(), source })?;
        Self::from_json_str(&text).map_err(|reason| match reason {
            ConfigProblem::Unsupported(architecture) => ModelError::Unsupported { path: path.into(), architecture },
            ConfigProblem::Invalid(reason) => ModelError::BadConfig { path: path.into(), reason },
        })
    }

    pub fn from_json_str(text: &str) -> Result<Self, ConfigProblem> {
        let root: Value = serde_json::from_str(text).map_err(|e| ConfigProblem::Invalid(format!("not JSON: {e}")))?;
        let architecture = root["architectures"]
            .get(0)
            .and_then(Value::as_str)
            .map(str::to_owned)
            .or_else(|| root["model_type"].as_str().map(str::to_owned))
            .unwrap_or_default();
        let model_type = root["model_type"].as_str().unwrap_or_default();
        let multimodal = match (architecture.as_str(), model_type) {
            ("Gemma3ForConditionalGeneration", _) | (_, "gemma3") if root.get("text_config").is_some() => true,
            ("Gemma3ForCausalLM", _) | (_, "gemma3_text") => false,
            _ => return Err(ConfigProblem::Unsupported(architecture)),
        };
        let text_json = if multimodal { &root["text_config"] } else { &root };
        let text = parse_text(text_json, &root)?;
        let vision = if multimodal { Some(parse_vision(&root["vision_config"])?) } else { None };
        let mm_tokens_per_image = get_usize(&root, "mm_tokens_per_image")?.unwrap_or(256);
        if let Some(v) = &vision {
            let side = (mm_tokens_per_image as f64).sqrt() as usize;
            let g = v.patches_per_side();
            if side * side != mm_tokens_per_image || side == 0 || g % side != 0 {
                return Err(ConfigProblem::Invalid(format!(
                    "mm_tokens_per_image {mm_tokens_per_image} does not pool a {g}x{g} patch grid evenly"
                )));
            }
        }
        let eos_token_ids = match root.get("eos_token_id").or_else(|| text_json.get("eos_token_id")) {
            Some(Value::Array(ids)) => ids.iter().filter_map(Value::as_u64).map(|i| i as u32).collect(),
            Some(Value::Number(n)) => n.as_u64().map(|i| vec![i as u32]).unwrap_or_default(),
            _ => vec![1, 106],
        };
        Ok(Self {
            architecture,
            text,
            vision,
            mm_tokens_per_image,
            image_token_id: get_u32(&root, &["image_token_index", "image_token_id"])?.unwrap_or(262_144),
            boi_token_id: get_u32(&root, &["boi_token_index", "boi_token_id"])?.unwrap_or(255_999),
            eoi_token_id: get_u32(&root, &["eoi_token_index", "eoi_token_id"])?.unwrap_or(256_000),
            eos_token_ids,
        })
    }

    /// Every parameter of the model (decoder, vision tower and projector).
    pub fn parameter_count(&self) -> u64 {
        let vision = self.vision.as_ref().map_or(0, |v| {
            v.parameter_count() + (v.hidden_size * self.text.hidden_size + v.hidden_size) as u64
        });
        self.text.parameter_count() + vision
    }
}

/// Why a config was refused (the caller adds the file name).
#[derive(Debug, Clone, PartialEq)]
pub enum ConfigProblem {
    Unsupported(String),
    Invalid(String),
}

fn get_usize(v: &Value, key: &str) -> Result<Option<usize>, ConfigProblem> {
    match v.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(x) => x
            .as_u64()
            .map(|n| Some(n as usize))
            .ok_or_else(|| ConfigProblem::Invalid(format!("{key} must be a whole number, not {x}"))),
    }
}

fn get_f64(v: &Value, key: &str) -> Result<Option<f64>, ConfigProblem> {
    match v.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(x) => x.as_f64().map(Some).ok_or_else(|| ConfigProblem::Invalid(format!("{key} must be a number, not {x}"))),
    }
}

fn get_u32(v: &Value, keys: &[&str]) -> Result<Option<u32>, ConfigProblem> {
    for key in keys {
        if let Some(n) = get_usize(v, key)? {
            return u32::try_from(n).map(Some).map_err(|_| ConfigProblem::Invalid(format!("{key} is too large")));
        }
    }
    Ok(None)
}

fn required_positive(name: &str, value: usize) -> Result<usize, ConfigProblem> {
    if value == 0 {
        return Err(ConfigProblem::Invalid(format!("{name} must be positive")));
    }
    Ok(value)
}

/// Reads one rope block: `{"rope_type": "linear", "factor": 8, "rope_theta": 1e6}`.
fn rope_block(block: &Value, default_theta: f64) -> Result<Rope, ConfigProblem> {
    let theta = get_f64(block, "rope_theta")?.unwrap_or(default_theta);
    let kind = block.get("rope_type").or_else(|| block.get("type")).and_then(Value::as_str).unwrap_or("default");
    let linear_factor = match kind {
        "default" => 1.0,
        "linear" => get_f64(block, "factor")?.unwrap_or(1.0),
        other => return Err(ConfigProblem::Invalid(format!("RoPE type \"{other}\" is not supported (Gemma 3 uses linear)"))),
    };
    if !(linear_factor > 0.0 && theta > 0.0) {
        return Err(ConfigProblem::Invalid("RoPE theta and factor must be positive".into()));
    }
    Ok(Rope { theta, linear_factor })
}

fn parse_text(t: &Value, root: &Value) -> Result<TextConfig, ConfigProblem> {
    let num_hidden_layers = required_positive("num_hidden_layers", get_usize(t, "num_hidden_layers")?.unwrap_or(26))?;
    let num_attention_heads = required_positive("num_attention_heads", get_usize(t, "num_attention_heads")?.unwrap_or(8))?;
    let num_key_value_heads = required_positive("num_key_value_heads", get_usize(t, "num_key_value_heads")?.unwrap_or(4))?;
    if num_attention_heads % num_key_value_heads != 0 {
        return Err(ConfigProblem::Invalid(format!(
            "num_attention_heads {num_attention_heads} is not a multiple of num_key_value_heads {num_key_value_heads}"
        )));
    }
    let head_dim = required_positive("head_dim", get_usize(t, "head_dim")?.unwrap_or(256))?;
    if head_dim % 2 != 0 {
        return Err(ConfigProblem::Invalid("head_dim must be even for rotary embeddings".into()));
    }

    // Layer types: explicit list (4.53+), else the pattern (every Nth global).
    let layer_types = match t.get("layer_types") {
        Some(Value::Array(list)) => list
            .iter()
            .map(|v| match v.as_str() {
                Some("sliding_attention") => Ok(LayerType::Sliding),
                Some("full_attention") => Ok(LayerType::Global),
                _ => Err(ConfigProblem::Invalid(format!("unknown layer type {v}"))),
            })
            .collect::<Result<Vec<_>, _>>()?,
        _ => {
            let pattern = get_usize(t, "sliding_window_pattern")?
                .or(get_usize(t, "_sliding_window_pattern")?)
                .unwrap_or(6)
                .max(1);
            (0..num_hidden_layers)
                .map(|i| if (i + 1) % pattern == 0 { LayerType::Global } else { LayerType::Sliding })
                .collect()
        }
    };
    if layer_types.len() != num_hidden_layers {
        return Err(ConfigProblem::Invalid(format!(
            "layer_types lists {} layers but num_hidden_layers is {num_hidden_layers}",
            layer_types.len()
        )));
    }

    // RoPE: the 5.x block per layer type, else rope_theta + rope_scaling
    // (global) and rope_local_base_freq (sliding).
    let (rope_global, rope_local) = match t.get("rope_parameters") {
        Some(block @ Value::Object(map)) if map.contains_key("full_attention") || map.contains_key("sliding_attention") => (
            rope_block(&block["full_attention"], 1_000_000.0)?,
            rope_block(&block["sliding_attention"], 10_000.0)?,
        ),
        Some(block @ Value::Object(_)) => (
            rope_block(block, get_f64(t, "rope_theta")?.unwrap_or(1_000_000.0))?,
            Rope { theta: get_f64(t, "rope_local_base_freq")?.unwrap_or(10_000.0), linear_factor: 1.0 },
        ),
        _ => {
            let theta = get_f64(t, "rope_theta")?.unwrap_or(1_000_000.0);
            let global = match t.get("rope_scaling") {
                Some(scaling @ Value::Object(_)) => rope_block(scaling, theta)?,
                _ => Rope { theta, linear_factor: 1.0 },
            };
            let global = Rope { theta, ..global };
            (global, Rope { theta: get_f64(t, "rope_local_base_freq")?.unwrap_or(10_000.0), linear_factor: 1.0 })
        }
    };

    let activation = t.get("hidden_activation").or_else(|| t.get("hidden_act")).and_then(Value::as_str);
    if let Some(act) = activation {
        if !matches!(act, "gelu_pytorch_tanh" | "gelu_tanh" | "gelu_fast" | "gelu_new") {
            return Err(ConfigProblem::Invalid(format!("activation \"{act}\" is not supported (Gemma 3 uses gelu_pytorch_tanh)")));
        }
    }

    let tie = t
        .get("tie_word_embeddings")
        .or_else(|| root.get("tie_word_embeddings"))
        .and_then(Value::as_bool)
        .unwrap_or(true);

    Ok(TextConfig {
        vocab_size: required_positive("vocab_size", get_usize(t, "vocab_size")?.unwrap_or(262_208))?,
        hidden_size: required_positive("hidden_size", get_usize(t, "hidden_size")?.unwrap_or(2304))?,
        intermediate_size: required_positive("intermediate_size", get_usize(t, "intermediate_size")?.unwrap_or(9216))?,
        num_hidden_layers,
        num_attention_heads,
        num_key_value_heads,
        head_dim,
        query_pre_attn_scalar: get_f64(t, "query_pre_attn_scalar")?.unwrap_or(256.0),
        sliding_window: required_positive("sliding_window", get_usize(t, "sliding_window")?.unwrap_or(4096))?,
        layer_types,
        rope_global,
        rope_local,
        rms_norm_eps: get_f64(t, "rms_norm_eps")?.unwrap_or(1e-6),
        max_position_embeddings: get_usize(t, "max_position_embeddings")?.unwrap_or(131_072),
        final_logit_softcapping: get_f64(t, "final_logit_softcapping")?,
        attn_logit_softcapping: get_f64(t, "attn_logit_softcapping")?,
        tie_word_embeddings: tie,
    })
}

fn parse_vision(v: &Value) -> Result<VisionConfig, ConfigProblem> {
    let cfg = VisionConfig {
        hidden_size: required_positive("vision hidden_size", get_usize(v, "hidden_size")?.unwrap_or(1152))?,
        intermediate_size: get_usize(v, "intermediate_size")?.unwrap_or(4304),
        num_hidden_layers: get_usize(v, "num_hidden_layers")?.unwrap_or(27),
        num_attention_heads: required_positive("vision num_attention_heads", get_usize(v, "num_attention_heads")?.unwrap_or(16))?,
        num_channels: get_usize(v, "num_channels")?.unwrap_or(3),
        image_size: required_positive("vision image_size", get_usize(v, "image_size")?.unwrap_or(896))?,
        patch_size: required_positive("vision patch_size", get_usize(v, "patch_size")?.unwrap_or(14))?,
        layer_norm_eps: get_f64(v, "layer_norm_eps")?.unwrap_or(1e-6),
    };
    if cfg.image_size % cfg.patch_size != 0 || cfg.hidden_size % cfg.num_attention_heads != 0 || cfg.num_channels != 3 {
        return Err(ConfigProblem::Invalid("the vision tower's sizes do not fit together".into()));
    }
    Ok(cfg)
}
