//! The configuration's second constructor: from GGUF metadata (`gemma3.*`
//! keys of a decoder, `clip.*` keys of a vision projector), read as llama.cpp
//! reads it: when a key is absent, the Gemma 3 default llama.cpp uses
//! (sliding pattern 6, local RoPE base 1e4, attention scale from the head
//! size except on the 62-layer 27B).

use super::{Gemma3Config, LayerType, Rope, TextConfig, VisionConfig};
use crate::error::{ModelError, Result};
use crate::gguf::GgufFile;
use crate::processor::ImageProcessor;
use crate::tokenizer::TextTokenizer;

/// The architectures whose decoder is Gemma 3's.
const ARCHITECTURES: &[&str] = &["gemma3"];

impl TextConfig {
    /// The decoder's hyperparameters from a GGUF decoder's metadata; a file of
    /// another architecture is refused, naming it.
    pub(crate) fn from_gguf(file: &GgufFile) -> Result<TextConfig> {
        let arch = file.architecture().unwrap_or_default().to_owned();
        if !ARCHITECTURES.contains(&arch.as_str()) {
            return Err(ModelError::Unsupported { path: file.path.clone(), architecture: if arch.is_empty() { "(none named)".into() } else { arch } });
        }
        let key = |k: &str| format!("{arch}.{k}");
        let invalid = |reason: String| ModelError::BadConfig { path: file.path.clone(), reason };
        let required = |k: &str| -> Result<usize> {
            match file.uint(&key(k))? {
                Some(n) if n > 0 => Ok(n as usize),
                Some(_) => Err(invalid(format!("metadata key {} must be positive", key(k)))),
                None => Err(invalid(format!("metadata key {} is missing", key(k)))),
            }
        };

        let hidden_size = required("embedding_length")?;
        let num_hidden_layers = required("block_count")?;
        let intermediate_size = required("feed_forward_length")?;
        let num_attention_heads = required("attention.head_count")?;
        let num_key_value_heads = file.uint(&key("attention.head_count_kv"))?.map_or(num_attention_heads, |n| n as usize);
        if num_key_value_heads == 0 || num_attention_heads % num_key_value_heads != 0 {
            return Err(invalid(format!("{num_attention_heads} attention heads cannot be shared among {num_key_value_heads} key/value heads")));
        }
        let head_dim = file.uint(&key("attention.key_length"))?.map_or(hidden_size / num_attention_heads, |n| n as usize);
        if head_dim == 0 || head_dim % 2 != 0 {
            return Err(invalid("the attention head size must be even for rotary embeddings".into()));
        }
        if let Some(v) = file.uint(&key("attention.value_length"))? {
            if v as usize != head_dim {
                return Err(invalid(format!("value heads of {v} differ from key heads of {head_dim}; Gemma 3 has equal sizes")));
            }
        }

        // Sliding-window layers: only when the file names a window (as llama.cpp);
        // the pattern from a per-layer list, else every Nth layer global (N = 6).
        let window = file.uint(&key("attention.sliding_window"))?.filter(|&w| w > 0);
        let layer_types: Vec<LayerType> = match window {
            None => vec![LayerType::Global; num_hidden_layers],
            Some(_) => match file.array(&key("attention.sliding_window_pattern")) {
                Ok(Some(list)) => {
                    let types: Vec<LayerType> = list
                        .iter()
                        .map(|v| match v {
                            candle_core::quantized::gguf_file::Value::Bool(true) => LayerType::Sliding,
                            _ => LayerType::Global,
                        })
                        .collect();
                    if types.len() != num_hidden_layers {
                        return Err(invalid(format!("the sliding-window pattern lists {} layers but the model has {num_hidden_layers}", types.len())));
                    }
                    types
                }
                _ => {
                    let n = file.uint(&key("attention.sliding_window_pattern"))?.unwrap_or(6).max(1) as usize;
                    (0..num_hidden_layers).map(|i| if (i + 1) % n == 0 { LayerType::Global } else { LayerType::Sliding }).collect()
                }
            },
        };

        // RoPE: the file's base and linear scaling on global layers; sliding
        // layers use their own base (1e4 unless the file says) and no scaling.
        let theta = file.float(&key("rope.freq_base"))?.unwrap_or(1_000_000.0);
        let scaling = file.string(&key("rope.scaling.type")).unwrap_or("");
        let factor = match scaling {
            "" | "none" => file.float(&key("rope.scale_linear"))?.unwrap_or(1.0),
            "linear" => file.float(&key("rope.scaling.factor"))?.or(file.float(&key("rope.scale_linear"))?).unwrap_or(1.0),
            other => return Err(invalid(format!("RoPE scaling \"{other}\" is not supported (Gemma 3 uses linear)"))),
        };
        let factor = if factor > 0.0 { factor } else { 1.0 };
        let local_theta = file.float(&key("rope.freq_base_swa"))?.unwrap_or(10_000.0);

        // llama.cpp's rule (after gemma_pytorch): 1/√(hidden/heads) on the 27B,
        // 1/√head_dim otherwise; a file that states its scale (`attention.scale`,
        // which llama.cpp writes for other architectures) is taken at its word,
        // so a checkpoint whose query_pre_attn_scalar breaks the rule converts faithfully.
        let query_pre_attn_scalar = match file.float(&key("attention.scale"))? {
            Some(scale) if scale > 0.0 => scale.powi(-2),
            _ if num_hidden_layers == 62 => (hidden_size / num_attention_heads) as f64,
            _ => head_dim as f64,
        };

        let (vocab_size, _) = file
            .info("token_embd.weight")
            .map(|(dims, t)| (dims.first().copied().unwrap_or(0), t))
            .ok_or_else(|| ModelError::BadWeights { path: file.path.clone(), reason: "it has no token embedding (token_embd.weight)".into() })?;
        let softcap = |k: &str| -> Result<Option<f64>> { Ok(file.float(&key(k))?.filter(|&c| c > 0.0)) };

        Ok(TextConfig {
            vocab_size,
            hidden_size,
            intermediate_size,
            num_hidden_layers,
            num_attention_heads,
            num_key_value_heads,
            head_dim,
            query_pre_attn_scalar,
            sliding_window: window.map_or(usize::MAX, |w| w as usize),
            layer_types,
            rope_global: Rope { theta, linear_factor: factor },
            rope_local: Rope { theta: local_theta, linear_factor: 1.0 },
            rms_norm_eps: file.float(&key("attention.layer_norm_rms_epsilon"))?.unwrap_or(1e-6),
            max_position_embeddings: file.uint(&key("context_length"))?.map_or(131_072, |n| n as usize),
            final_logit_softcapping: softcap("final_logit_softcapping")?,
            attn_logit_softcapping: softcap("attn_logit_softcapping")?,
            tie_word_embeddings: !file.contains("output.weight"),
        })
    }
}

impl Gemma3Config {
    /// The whole model's configuration for a GGUF decoder (text only; a vision
    /// projector file adds the tower). Special token ids come from the tokenizer.
    pub(crate) fn from_gguf(file: &GgufFile, tokenizer: &TextTokenizer) -> Result<Gemma3Config> {
        let text = TextConfig::from_gguf(file)?;
        let id = |t: &str, default: u32| tokenizer.token_id(t).unwrap_or(default);
        let mut eos_token_ids = vec![id("<end_of_turn>", 106)];
        for k in ["tokenizer.ggml.eos_token_id", "tokenizer.ggml.eot_token_id"] {
            if let Some(n) = file.uint(k)? {
                eos_token_ids.push(n as u32);
            }
        }
        eos_token_ids.sort_unstable();
        eos_token_ids.dedup();
        Ok(Gemma3Config {
            architecture: "gemma3".into(),
            text,
            vision: None,
            mm_tokens_per_image: 256,
            image_token_id: id("<image_soft_token>", 262_144),
            boi_token_id: id("<start_of_image>", 255_999),
            eoi_token_id: id("<end_of_image>", 256_000),
            eos_token_ids,
        })
    }
}

/// The vision tower, projector and image preprocessing of a vision projector
/// file (`general.architecture = clip`, `clip.projector_type = gemma3`), as
/// llama.cpp's converter writes it for Gemma 3.
pub(crate) struct ProjectorConfig {
    pub vision: VisionConfig,
    pub mm_tokens_per_image: usize,
    pub processor: ImageProcessor,
    /// The decoder width the projection maps into.
    pub text_hidden: usize,
}

impl ProjectorConfig {
    /// A vision projector file's tower, pooling and preprocessing.
    pub(crate) fn from_gguf(file: &GgufFile) -> Result<ProjectorConfig> {
        let invalid = |reason: String| ModelError::BadConfig { path: file.path.clone(), reason };
        match file.architecture() {
            Some("clip") => {}
            other => {
                return Err(ModelError::NotAModel {
                    path: file.path.clone(),
                    reason: format!("it is not a vision projector (its architecture is \"{}\", not \"clip\")", other.unwrap_or_default()),
                })
            }
        }
        let kind = file.string("clip.projector_type").or(file.string("clip.vision.projector_type")).unwrap_or("");
        if kind != "gemma3" {
            return Err(invalid(format!("projector type \"{kind}\" is not supported (MedGemma uses \"gemma3\")")));
        }
        let required = |k: &str| -> Result<usize> {
            match file.uint(k)? {
                Some(n) if n > 0 => Ok(n as usize),
                _ => Err(invalid(format!("metadata key {k} is missing"))),
            }
        };
        let vision = VisionConfig {
            hidden_size: required("clip.vision.embedding_length")?,
            intermediate_size: required("clip.vision.feed_forward_length")?,
            num_hidden_layers: required("clip.vision.block_count")?,
            num_attention_heads: required("clip.vision.attention.head_count")?,
            num_channels: 3,
            image_size: required("clip.vision.image_size")?,
            patch_size: required("clip.vision.patch_size")?,
            layer_norm_eps: file.float("clip.vision.attention.layer_norm_epsilon")?.unwrap_or(1e-6),
        };
        if vision.image_size % vision.patch_size != 0 || vision.hidden_size % vision.num_attention_heads != 0 {
            return Err(invalid("the vision tower's sizes do not fit together".into()));
        }
        // Patches per side shrink by the pooling factor (4 unless the file says).
        let merge = file.uint("clip.vision.projector.scale_factor")?.unwrap_or(4).max(1) as usize;
        let side = vision.patches_per_side() / merge;
        if side == 0 || vision.patches_per_side() % merge != 0 {
            return Err(invalid(format!("a {0}x{0} patch grid cannot be pooled by {merge}", vision.patches_per_side())));
        }
        let triple = |k: &str| -> Result<Option<[f32; 3]>> {
            match file.array(k)? {
                Some(list) if list.len() == 3 => {
                    let v: Vec<f32> = list.iter().filter_map(crate::gguf::value_f32).collect();
                    Ok((v.len() == 3).then(|| [v[0], v[1], v[2]]))
                }
                Some(_) => Err(invalid(format!("metadata key {k} should hold three numbers"))),
                None => Ok(None),
            }
        };
        let mut processor = ImageProcessor::gemma3(vision.image_size);
        if let Some(m) = triple("clip.vision.image_mean")? {
            processor.mean = Some(m);
        }
        if let Some(s) = triple("clip.vision.image_std")? {
            processor.std = Some(s);
        }
        let text_hidden = file
            .info("mm.input_projection.weight")
            .and_then(|(dims, _)| (dims.len() == 2 && dims[0] == vision.hidden_size).then_some(dims[1]))
            .ok_or_else(|| ModelError::BadWeights {
            path: file.path.clone(),
            reason: format!("it has no projection from the tower's width {} (mm.input_projection.weight)", vision.hidden_size),
        })?;
        Ok(ProjectorConfig { vision, mm_tokens_per_image: side * side, processor, text_hidden })
    }
}
