//! Will a model fit? Before any weight is read: the weights in the dtype they
//! will have on the device, the KV cache for the context a draft uses, and the
//! working memory of a prefill step, against the memory that is free. Refusing
//! with a sentence beats swapping the laptop to a standstill or being killed.

use crate::config::Gemma3Config;

/// The context a draft works in (prompt with image + answer), for the estimate.
pub const DRAFT_CONTEXT: usize = 8192;

/// Caps the memory the app may use, in MB (e.g. to leave room for a PACS
/// viewer); also how tests check the refusal without filling the machine.
pub const LIMIT_ENV: &str = "MEDGEMMA_DESK_MEMORY_LIMIT_MB";

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct MemoryNeed {
    pub weights_bytes: u64,
    pub kv_cache_bytes: u64,
    pub working_bytes: u64,
}

impl MemoryNeed {
    pub fn total(&self) -> u64 {
        self.weights_bytes + self.kv_cache_bytes + self.working_bytes
    }
}

/// What `config` needs with weights of `dtype_bytes` bytes each and a context of `context` tokens.
pub fn memory_need(config: &Gemma3Config, dtype_bytes: u64, context: usize) -> MemoryNeed {
    let t = &config.text;
    let mut params = t.parameter_count();
    if let Some(v) = &config.vision {
        // The tower, and the projector from its width to the decoder's.
        params += v.parameter_count() + (v.hidden_size * t.hidden_size + v.hidden_size) as u64;
    }
    let context = context.min(t.max_position_embeddings).max(1) as u64;
    let per_position = 2 * t.num_key_value_heads as u64 * t.head_dim as u64 * dtype_bytes;
    let kv: u64 = t
        .layer_types
        .iter()
        .map(|l| match l {
            crate::config::LayerType::Sliding => per_position * context.min(t.sliding_window as u64),
            crate::config::LayerType::Global => per_position * context,
        })
        .sum();
    // One prefill chunk's activations (f32), the logits row, the image's
    // activations, and an allowance for the runtime itself.
    let chunk = 512u64;
    let mut working = chunk * (3 * t.intermediate_size as u64 + 6 * t.hidden_size as u64) * 4 + 2 * t.vocab_size as u64 * 4;
    if let Some(v) = &config.vision {
        let patches = (v.patches_per_side() * v.patches_per_side()) as u64;
        working += patches * (v.intermediate_size as u64 + 4 * v.hidden_size as u64) * 4;
    }
    working += 256 << 20;
    MemoryNeed { weights_bytes: params * dtype_bytes, kv_cache_bytes: kv, working_bytes: working }
}

/// The memory the app may use now: the limit set in `LIMIT_ENV`, else the
/// system's available memory (Linux: MemAvailable). `None` when unknown.
pub fn available_memory() -> Option<u64> {
    if let Some(mb) = std::env::var(LIMIT_ENV).ok().and_then(|v| v.trim().parse::<u64>().ok()) {
        return Some(mb << 20);
    }
    let info = std::fs::read_to_string("/proc/meminfo").ok()?;
    let kb: u64 = info.lines().find(|l| l.starts_with("MemAvailable:"))?.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// The memory free on `device` now: the CPU's (and a Mac's shared memory)
/// from `available_bytes`; an NVIDIA GPU's from the driver (`nvidia-smi`,
/// which ships with it: the same number NVML gives, without linking NVML
/// into every build). `LIMIT_ENV` overrides both. `None` when unknown.
pub fn available_bytes_on(device: &candle_core::Device) -> Option<u64> {
    match device.location() {
        candle_core::DeviceLocation::Cuda { gpu_id } => {
            if let Some(mb) = std::env::var(LIMIT_ENV).ok().and_then(|v| v.trim().parse::<u64>().ok()) {
                return Some(mb << 20);
            }
            let out = std::process::Command::new("nvidia-smi")
                .args(["--query-gpu=memory.free", "--format=csv,noheader,nounits", "-i", &gpu_id.to_string()])
                .output()
                .ok()?;
            parse_nvidia_smi_mib(&String::from_utf8_lossy(&out.stdout))
        }
        _ => available_memory(),
    }
}

/// `nvidia-smi --query-gpu=memory.free --format=csv,noheader,nounits`: MiB.
fn parse_nvidia_smi_mib(text: &str) -> Option<u64> {
    text.lines().next()?.trim().parse::<u64>().ok().map(|mib| mib << 20)
}

/// Gigabytes, for messages.
pub fn gb(bytes: u64) -> f64 {
    bytes as f64 / 1e9
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_gpu_free_memory_is_read_from_nvidia_smi() {
        assert_eq!(parse_nvidia_smi_mib("81037\n"), Some(81037 << 20));
        assert_eq!(parse_nvidia_smi_mib(""), None);
        assert_eq!(parse_nvidia_smi_mib("[N/A]\n"), None);
    }

    #[test]
    fn medgemma_4b_needs_what_its_size_says() {
        // MedGemma 4B's shape: ~4.3 B parameters; bf16 on a GPU ≈ 8.6 GB of weights, f32 on a CPU twice that.
        let json = r#"{
            "architectures": ["Gemma3ForConditionalGeneration"], "model_type": "gemma3",
            "boi_token_index": 255999, "eoi_token_index": 256000, "image_token_index": 262144, "mm_tokens_per_image": 256,
            "text_config": { "model_type": "gemma3_text", "hidden_size": 2560, "intermediate_size": 10240,
                "num_hidden_layers": 34, "num_attention_heads": 8, "num_key_value_heads": 4, "head_dim": 256,
                "query_pre_attn_scalar": 256, "sliding_window": 1024, "max_position_embeddings": 131072,
                "vocab_size": 262208, "rope_scaling": { "factor": 8.0, "rope_type": "linear" } },
            "vision_config": { "model_type": "siglip_vision_model", "hidden_size": 1152, "intermediate_size": 4304,
                "num_hidden_layers": 27, "num_attention_heads": 16, "image_size": 896, "patch_size": 14, "vision_use_head": false }
        }"#;
        let config = Gemma3Config::from_json_str(json).unwrap();
        let gpu = memory_need(&config, 2, DRAFT_CONTEXT);
        let cpu = memory_need(&config, 4, DRAFT_CONTEXT);
        assert!((8.0e9..9.2e9).contains(&(gpu.weights_bytes as f64)), "{gpu:?}");
        assert_eq!(cpu.weights_bytes, 2 * gpu.weights_bytes);
        assert!(cpu.kv_cache_bytes < 2_000_000_000, "sliding layers keep the cache small: {cpu:?}");
    }
}
