//! The real MedGemma configurations, written out here, parse in every
//! generation of the format and give the known sizes — without any weights.

use medgemma_models::config::{LayerType, Rope};
use medgemma_models::Gemma3Config;

/// google/medgemma-4b-it `config.json` (the same architecture as gemma-3-4b-it), 4.50-era keys.
const MEDGEMMA_4B_IT: &str = r#"{
  "architectures": ["Gemma3ForConditionalGeneration"],
  "boi_token_index": 255999, "eoi_token_index": 256000, "eos_token_id": [1, 106],
  "image_token_index": 262144, "initializer_range": 0.02, "mm_tokens_per_image": 256,
  "model_type": "gemma3",
  "text_config": {
    "attention_bias": false, "attention_dropout": 0.0, "attn_logit_softcapping": null,
    "cache_implementation": "hybrid", "final_logit_softcapping": null, "head_dim": 256,
    "hidden_activation": "gelu_pytorch_tanh", "hidden_size": 2560, "initializer_range": 0.02,
    "intermediate_size": 10240, "max_position_embeddings": 131072, "model_type": "gemma3_text",
    "num_attention_heads": 8, "num_hidden_layers": 34, "num_key_value_heads": 4,
    "query_pre_attn_scalar": 256, "rms_norm_eps": 1e-06, "rope_local_base_freq": 10000.0,
    "rope_scaling": {"factor": 8.0, "rope_type": "linear"}, "rope_theta": 1000000.0,
    "sliding_window": 1024, "sliding_window_pattern": 6, "torch_dtype": "bfloat16",
    "use_cache": true, "vocab_size": 262208
  },
  "torch_dtype": "bfloat16", "transformers_version": "4.50.0.dev0",
  "vision_config": {
    "attention_dropout": 0.0, "hidden_act": "gelu_pytorch_tanh", "hidden_size": 1152,
    "image_size": 896, "intermediate_size": 4304, "layer_norm_eps": 1e-06,
    "model_type": "siglip_vision_model", "num_attention_heads": 16, "num_channels": 3,
    "num_hidden_layers": 27, "patch_size": 14, "torch_dtype": "bfloat16", "vision_use_head": false
  }
}"#;

/// google/medgemma-27b-text-it: the text decoder alone (Gemma3ForCausalLM).
const MEDGEMMA_27B_TEXT_IT: &str = r#"{
  "architectures": ["Gemma3ForCausalLM"], "attention_bias": false, "attention_dropout": 0.0,
  "attn_logit_softcapping": null, "bos_token_id": 2, "cache_implementation": "hybrid",
  "eos_token_id": [1, 106], "final_logit_softcapping": null, "head_dim": 128,
  "hidden_activation": "gelu_pytorch_tanh", "hidden_size": 5376, "initializer_range": 0.02,
  "intermediate_size": 21504, "max_position_embeddings": 131072, "model_type": "gemma3_text",
  "num_attention_heads": 32, "num_hidden_layers": 62, "num_key_value_heads": 16, "pad_token_id": 0,
  "query_pre_attn_scalar": 168, "rms_norm_eps": 1e-06, "rope_local_base_freq": 10000,
  "rope_scaling": {"factor": 8.0, "rope_type": "linear"}, "rope_theta": 1000000,
  "sliding_window": 1024, "sliding_window_pattern": 6, "torch_dtype": "bfloat16",
  "transformers_version": "4.51.3", "use_cache": true, "vocab_size": 262208
}"#;

/// The 27B multimodal text config in the `layer_types` generation (4.53+).
fn medgemma_27b_it_layer_types() -> String {
    let types: Vec<&str> = (0..62).map(|i| if (i + 1) % 6 == 0 { "\"full_attention\"" } else { "\"sliding_attention\"" }).collect();
    format!(
        r#"{{"architectures": ["Gemma3ForConditionalGeneration"], "model_type": "gemma3", "mm_tokens_per_image": 256,
        "text_config": {{"head_dim": 128, "hidden_size": 5376, "intermediate_size": 21504, "num_attention_heads": 32,
          "num_hidden_layers": 62, "num_key_value_heads": 16, "query_pre_attn_scalar": 168, "sliding_window": 1024,
          "_sliding_window_pattern": 6, "layer_types": [{}], "rope_local_base_freq": 10000.0,
          "rope_scaling": {{"factor": 8.0, "rope_type": "linear"}}, "rope_theta": 1000000.0, "vocab_size": 262208}},
        "vision_config": {{"hidden_size": 1152, "image_size": 896, "intermediate_size": 4304, "num_attention_heads": 16,
          "num_hidden_layers": 27, "patch_size": 14, "vision_use_head": false}}}}"#,
        types.join(", ")
    )
}

/// MedGemma 1.5 4B in the transformers 5.x generation (`rope_parameters`).
const MEDGEMMA_15_4B_ROPE_PARAMETERS: &str = r#"{
  "architectures": ["Gemma3ForConditionalGeneration"], "model_type": "gemma3", "mm_tokens_per_image": 256,
  "image_token_id": 262144, "boi_token_id": 255999, "eoi_token_id": 256000,
  "text_config": {
    "head_dim": 256, "hidden_size": 2560, "intermediate_size": 10240, "num_attention_heads": 8,
    "num_hidden_layers": 34, "num_key_value_heads": 4, "query_pre_attn_scalar": 256, "sliding_window": 1024,
    "rope_parameters": {
      "full_attention": {"rope_type": "linear", "factor": 8.0, "rope_theta": 1000000.0},
      "sliding_attention": {"rope_type": "default", "rope_theta": 10000.0}
    },
    "vocab_size": 262208
  },
  "vision_config": {"hidden_size": 1152, "image_size": 896, "intermediate_size": 4304,
    "num_attention_heads": 16, "num_hidden_layers": 27, "patch_size": 14}
}"#;

const GLOBAL: Rope = Rope { theta: 1_000_000.0, linear_factor: 8.0 };
const LOCAL: Rope = Rope { theta: 10_000.0, linear_factor: 1.0 };

fn assert_5_to_1(cfg: &Gemma3Config, layers: usize) {
    assert_eq!(cfg.text.layer_types.len(), layers);
    for (i, t) in cfg.text.layer_types.iter().enumerate() {
        let want = if (i + 1) % 6 == 0 { LayerType::Global } else { LayerType::Sliding };
        assert_eq!(*t, want, "layer {i}");
        let rope = cfg.text.rope(i);
        assert_eq!(rope, if want == LayerType::Global { GLOBAL } else { LOCAL }, "layer {i}");
    }
}

#[test]
fn medgemma_4b_it_has_4_3_billion_parameters_and_256_image_tokens() {
    let cfg = Gemma3Config::from_json_str(MEDGEMMA_4B_IT).unwrap();
    assert_eq!(cfg.parameter_count(), 4_300_079_472);
    assert_eq!(cfg.mm_tokens_per_image, 256);
    let v = cfg.vision.as_ref().unwrap();
    assert_eq!(v.patches_per_side(), 64);
    assert_eq!((cfg.image_token_id, cfg.boi_token_id, cfg.eoi_token_id), (262_144, 255_999, 256_000));
    assert_eq!(cfg.eos_token_ids, vec![1, 106]);
    assert_eq!(cfg.text.sliding_window, 1024);
    assert_eq!(cfg.text.query_pre_attn_scalar, 256.0);
    assert_5_to_1(&cfg, 34);
}

#[test]
fn medgemma_27b_text_it_is_a_decoder_only_model() {
    let cfg = Gemma3Config::from_json_str(MEDGEMMA_27B_TEXT_IT).unwrap();
    assert!(cfg.vision.is_none());
    assert_eq!(cfg.parameter_count(), 27_009_346_304);
    assert_eq!(cfg.text.query_pre_attn_scalar, 168.0);
    assert_eq!(cfg.text.head_dim, 128);
    assert_5_to_1(&cfg, 62);
}

#[test]
fn medgemma_27b_it_in_the_layer_types_generation() {
    let cfg = Gemma3Config::from_json_str(&medgemma_27b_it_layer_types()).unwrap();
    assert_eq!(cfg.parameter_count(), 27_432_406_640);
    assert_eq!(cfg.mm_tokens_per_image, 256);
    assert_5_to_1(&cfg, 62);
}

#[test]
fn medgemma_1_5_in_the_rope_parameters_generation() {
    let cfg = Gemma3Config::from_json_str(MEDGEMMA_15_4B_ROPE_PARAMETERS).unwrap();
    assert_eq!(cfg.parameter_count(), 4_300_079_472);
    assert_5_to_1(&cfg, 34);
}

#[test]
fn other_architectures_are_refused_by_name() {
    let err = Gemma3Config::from_json_str(r#"{"architectures": ["LlamaForCausalLM"], "model_type": "llama"}"#).unwrap_err();
    assert_eq!(err, medgemma_models::config::ConfigProblem::Unsupported("LlamaForCausalLM".into()));
}

#[test]
fn inconsistent_sizes_are_refused() {
    let bad = MEDGEMMA_27B_TEXT_IT.replace("\"num_key_value_heads\": 16", "\"num_key_value_heads\": 5");
    assert!(Gemma3Config::from_json_str(&bad).is_err());
    let bad = MEDGEMMA_4B_IT.replace("\"mm_tokens_per_image\": 256", "\"mm_tokens_per_image\": 250");
    assert!(Gemma3Config::from_json_str(&bad).is_err());
}
