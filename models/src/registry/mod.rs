//! Where models are found, offline: a models folder (folders, or links to
//! folders, with a Gemma 3 `config.json`; GGUF files with the vision projector
//! beside them) and the Hugging Face cache (`HF_HUB_CACHE`, else
//! `HF_HOME/hub`, else `~/.cache/huggingface/hub`; each `models--org--name`
//! repo resolved through its `refs/main` snapshot by hf-hub). For each:
//! whether every weight file is there, its size, and whether it fits this
//! computer's free memory. Nothing here touches the network. `catalog` is the
//! list of models the app knows by name.

mod catalog;

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::config::Gemma3Config;
use crate::gguf::{self, GgufFile};
use crate::memory;

pub use catalog::{catalog, CatalogEntry, NeedGb};

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ModelEntry {
    pub id: String,
    pub path: PathBuf,
    /// "data folder" or "Hugging Face cache".
    pub source: String,
    pub format: String,
    /// The weights' dtype as stored (bfloat16, float32, …).
    pub dtype: String,
    pub size_bytes: u64,
    /// It has a vision tower (it can read images).
    pub vision: bool,
    /// What is missing for it to load (shards, tokenizer); empty when complete.
    pub missing: Vec<String>,
    /// The catalog entry it is, if known.
    pub catalog_id: Option<String>,
    /// Memory it needs on the CPU (f32) for a draft's context, in bytes.
    pub cpu_need_bytes: Option<u64>,
    /// Whether that fits the memory free now (unknown: `None`).
    pub fits_cpu: Option<bool>,
    /// Every weights file's sha256 was checked against a published one (the
    /// Hub's, when this app downloaded it; the catalog's, on import).
    pub verified: bool,
}

impl ModelEntry {
    /// Complete and loadable as far as the files go.
    pub fn usable(&self) -> bool {
        self.missing.is_empty()
    }
}

/// Every model found: `models_dir`'s first (listed as from the "data
/// folder"), then the Hugging Face cache's. `verified` is left false: which
/// files were checked against a published checksum is the caller's record.
pub fn find_all(models_dir: &Path) -> Vec<ModelEntry> {
    let mut found = scan_folder(models_dir, "data folder");
    if let Some(hub) = hf_cache_dir() {
        found.extend(scan_hf_cache(&hub));
    }
    found
}

fn scan_folder(dir: &Path, source: &str) -> Vec<ModelEntry> {
    let Ok(entries) = std::fs::read_dir(dir) else { return Vec::new() };
    let mut found: Vec<ModelEntry> = entries
        .flatten()
        .map(|e| e.path())
        // A hidden folder is an import still being copied.
        .filter(|p| !p.file_name().is_some_and(|n| n.to_string_lossy().starts_with('.')))
        .filter(|p| p.join("config.json").is_file())
        .filter_map(|p| {
            let id = p.file_name()?.to_string_lossy().into_owned();
            Some(describe_folder(&p, id, source))
        })
        .collect();
    // GGUF files, in the models folder or a folder of their own, each with its
    // vision projector (mmproj) when one lies beside it.
    let mut folders = vec![dir.to_path_buf()];
    if let Ok(entries) = std::fs::read_dir(dir) {
        folders.extend(entries.flatten().map(|e| e.path()).filter(|p| p.is_dir() && !p.join("config.json").is_file()));
    }
    for folder in folders {
        found.extend(scan_gguf(&folder, source));
    }
    found.sort_by(|a, b| a.id.cmp(&b.id));
    found
}

/// The GGUF models in `dir` (not their projectors), each with the vision
/// projector beside it. The headers are read (not the tensors): a file that
/// is truncated, of another architecture, or a multimodal model whose
/// projector is missing says what it lacks.
fn scan_gguf(dir: &Path, source: &str) -> Vec<ModelEntry> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let files: Vec<PathBuf> = entries.flatten().map(|e| e.path()).filter(|p| gguf::is_gguf_path(p)).collect();
    let is_projector = |p: &Path| p.file_name().is_some_and(|n| n.to_string_lossy().to_ascii_lowercase().starts_with("mmproj"));
    files
        .iter()
        .filter(|p| !is_projector(p))
        .map(|p| {
            let name = p.file_stem().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            let projector = gguf::projector_next_to(p);
            let (missing, vision) = gguf_readiness(p, projector.as_deref());
            let size = std::fs::metadata(p).map(|m| m.len()).unwrap_or(0) + projector.and_then(|m| std::fs::metadata(m).ok()).map_or(0, |m| m.len());
            ModelEntry {
                id: name.clone(),
                path: p.clone(),
                source: source.into(),
                format: "gguf".into(),
                dtype: gguf_quantization(&name),
                size_bytes: size,
                vision,
                missing,
                catalog_id: catalog().into_iter().find(|c| c.files.iter().any(|f| p.file_name().is_some_and(|n| n.to_string_lossy() == *f))).map(|c| c.id),
                // The file is what a load holds (tensors are not widened), plus the KV cache: ~size.
                cpu_need_bytes: Some(size),
                fits_cpu: memory::available_memory().map(|free| size <= free),
                verified: false,
            }
        })
        .collect()
}

/// What a GGUF model lacks to run here (empty when nothing), and whether it reads images.
fn gguf_readiness(path: &Path, projector: Option<&Path>) -> (Vec<String>, bool) {
    let file = match GgufFile::open(path) {
        Ok(f) => f,
        Err(e) => return (vec![format!("a complete, valid GGUF file ({e})")], false),
    };
    if let Err(e) = crate::config::TextConfig::from_gguf(&file) {
        return (vec![format!("a Gemma 3 model ({e})")], false);
    }
    let has_image_tokens = file.has_token("<image_soft_token>");
    match projector {
        Some(p) => match GgufFile::open(p).and_then(|f| crate::config::ProjectorConfig::from_gguf(&f)) {
            Ok(_) => (Vec::new(), true),
            Err(e) => (vec![format!("a valid vision projector ({e})")], false),
        },
        // A multimodal model is listed as incomplete without its projector
        // (drafts need images); a text-only Gemma 3 is complete as it is.
        None if has_image_tokens => (vec!["its vision projector (an mmproj-….gguf file beside it)".into()], false),
        None => (Vec::new(), false),
    }
}

/// The quantization a GGUF file's name states, as the community names them
/// (`…-Q4_K_M.gguf`, `…-f16.gguf`); "unknown" otherwise.
pub fn gguf_quantization(stem: &str) -> String {
    let upper = stem.to_ascii_uppercase();
    let known = ["IQ4_XS", "IQ4_NL", "Q2_K", "Q3_K_S", "Q3_K_M", "Q3_K_L", "Q4_0", "Q4_1", "Q4_K_S", "Q4_K_M", "Q5_0", "Q5_1", "Q5_K_S", "Q5_K_M", "Q6_K", "Q8_0", "BF16", "F16", "F32"];
    known.iter().find(|q| upper.ends_with(*q)).map_or_else(|| "unknown".into(), |q| q.to_string())
}

/// The Hugging Face cache folder, as the `huggingface_hub` library finds it.
pub fn hf_cache_dir() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("HF_HUB_CACHE").filter(|v| !v.is_empty()) {
        return Some(PathBuf::from(p));
    }
    if let Some(p) = std::env::var_os("HF_HOME").filter(|v| !v.is_empty()) {
        return Some(PathBuf::from(p).join("hub"));
    }
    directories::BaseDirs::new().map(|d| d.home_dir().join(".cache/huggingface/hub"))
}

/// Each cached model repo at the revision `refs/main` points to.
fn scan_hf_cache(hub: &Path) -> Vec<ModelEntry> {
    let Ok(entries) = std::fs::read_dir(hub) else { return Vec::new() };
    let mut found = Vec::new();
    for repo_dir in entries.flatten().map(|e| e.path()) {
        let Some(name) = repo_dir.file_name().and_then(|n| n.to_str()).and_then(|n| n.strip_prefix("models--")) else { continue };
        let repo = name.replacen("--", "/", 1);
        // hf-hub's cache API resolves the revision `refs/main` names.
        let Some(config) = hf_hub::Cache::new(hub.to_path_buf()).model(repo.clone()).get("config.json") else { continue };
        let Some(snapshot) = config.parent() else { continue };
        let mut entry = describe_folder(snapshot, repo.clone(), "Hugging Face cache");
        // Downloads still in progress (or broken off) leave `.incomplete`
        // (huggingface_hub) or `.part` (hf-hub) blobs.
        let partial = std::fs::read_dir(repo_dir.join("blobs"))
            .map(|b| b.flatten().filter(|e| e.path().extension().is_some_and(|x| x == "incomplete" || x == "part")).count())
            .unwrap_or(0);
        if partial > 0 {
            entry.missing.push(format!("{partial} download(s) not finished"));
        }
        found.push(entry);
    }
    found.sort_by(|a, b| a.id.cmp(&b.id));
    found
}

/// A model folder as found (`id` names it, `source` says where it was): format, dtype, size, what is missing, memory fit.
pub fn describe_folder(dir: &Path, id: String, source: &str) -> ModelEntry {
    let config_json: Option<serde_json::Value> = std::fs::read(dir.join("config.json")).ok().and_then(|b| serde_json::from_slice(&b).ok());
    let dtype = config_json
        .as_ref()
        .and_then(|c| c.get("torch_dtype").or_else(|| c.get("dtype")).or_else(|| c.pointer("/text_config/dtype")))
        .and_then(|v| v.as_str())
        .unwrap_or("unknown")
        .to_string();
    let vision = config_json.as_ref().is_some_and(|c| c.get("vision_config").is_some());
    let mut missing = Vec::new();
    // The shards the index names must all be there; else any .safetensors will do.
    let index = dir.join("model.safetensors.index.json");
    let shards: Vec<String> = match std::fs::read(&index).ok().and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok()) {
        Some(i) => {
            let mut s: Vec<String> = i["weight_map"].as_object().map(|m| m.values().filter_map(|v| v.as_str().map(str::to_string)).collect()).unwrap_or_default();
            s.sort();
            s.dedup();
            s
        }
        None => std::fs::read_dir(dir)
            .map(|e| e.flatten().filter_map(|e| e.file_name().to_str().map(str::to_string)).filter(|n| n.ends_with(".safetensors")).collect())
            .unwrap_or_default(),
    };
    if shards.is_empty() {
        missing.push("the weights (*.safetensors)".into());
    }
    let mut size = 0;
    for shard in &shards {
        match std::fs::metadata(dir.join(shard)) {
            Ok(m) => size += m.len(),
            Err(_) => missing.push(shard.clone()),
        }
    }
    if !dir.join("tokenizer.json").is_file() {
        missing.push("tokenizer.json".into());
    }
    let need = Gemma3Config::from_file(&dir.join("config.json")).ok().map(|c| memory::memory_need(&c, 4, memory::DRAFT_CONTEXT).total());
    let available = memory::available_memory();
    let catalog_id = catalog().into_iter().find(|c| c.repo == id || c.id == id).map(|c| c.id);
    ModelEntry {
        id,
        path: dir.to_path_buf(),
        source: source.into(),
        format: "safetensors".into(),
        dtype,
        size_bytes: size,
        vision,
        missing,
        catalog_id,
        cpu_need_bytes: need,
        fits_cpu: need.zip(available).map(|(n, a)| n <= a),
        verified: false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fake_model(dir: &Path, shards: &[&str], present: &[&str]) {
        std::fs::create_dir_all(dir).unwrap();
        std::fs::write(dir.join("config.json"), r#"{"vision_config": {}, "torch_dtype": "bfloat16"}"#).unwrap();
        std::fs::write(dir.join("tokenizer.json"), "{}").unwrap();
        let map: serde_json::Map<String, serde_json::Value> = shards.iter().enumerate().map(|(i, s)| (format!("w{i}"), (*s).into())).collect();
        std::fs::write(dir.join("model.safetensors.index.json"), serde_json::json!({ "weight_map": map }).to_string()).unwrap();
        for p in present {
            std::fs::write(dir.join(p), vec![0u8; 1000]).unwrap();
        }
    }

    #[test]
    fn the_catalog_parses_and_names_medgemma() {
        let c = catalog();
        assert!(c.iter().any(|m| m.repo == "google/medgemma-4b-it" && m.vision));
        assert!(c.iter().all(|m| !m.description.is_empty()));
    }

    #[test]
    fn a_missing_shard_is_named_and_the_model_not_offered() {
        let tmp = tempfile::tempdir().unwrap();
        let models = tmp.path().join("models");
        fake_model(&models.join("medgemma-4b-it"), &["a.safetensors", "b.safetensors"], &["a.safetensors"]);
        fake_model(&models.join("whole"), &["a.safetensors"], &["a.safetensors"]);
        let all = scan_folder(&models, "data folder");
        assert_eq!(all.len(), 2);
        let broken = all.iter().find(|m| m.id == "medgemma-4b-it").unwrap();
        assert_eq!(broken.missing, ["b.safetensors"]);
        assert_eq!(broken.catalog_id.as_deref(), Some("medgemma-4b-it"));
        assert_eq!(broken.dtype, "bfloat16");
        let whole = all.iter().find(|m| m.id == "whole").unwrap();
        assert!(whole.usable());
        assert_eq!(whole.size_bytes, 1000);
    }

    #[test]
    fn gguf_files_are_listed_with_their_projector_and_offered_when_complete() {
        let tmp = tempfile::tempdir().unwrap();
        let models = tmp.path().join("models");
        let pair = models.join("medgemma-gguf");
        let alone = models.join("alone");
        std::fs::create_dir_all(&pair).unwrap();
        std::fs::create_dir_all(&alone).unwrap();
        // The tiny Gemma 3 converted as llama.cpp converts MedGemma: decoder + projector.
        let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/tiny-gemma3/gguf");
        std::fs::copy(fixture.join("tiny-gemma3-f32.gguf"), pair.join("medgemma-4b-it-Q4_K_M.gguf")).unwrap();
        std::fs::copy(fixture.join("mmproj-tiny-gemma3-f32.gguf"), pair.join("mmproj-F16.gguf")).unwrap();
        std::fs::copy(fixture.join("tiny-gemma3-f32.gguf"), alone.join("tiny-Q8_0.gguf")).unwrap();
        std::fs::write(models.join("broken-Q8_0.gguf"), b"not gguf").unwrap();
        let all = scan_folder(&models, "data folder");
        assert_eq!(all.len(), 3, "{all:?}");
        let m = all.iter().find(|m| m.id == "medgemma-4b-it-Q4_K_M").unwrap();
        assert_eq!((m.format.as_str(), m.dtype.as_str(), m.vision), ("gguf", "Q4_K_M", true));
        assert_eq!(m.catalog_id.as_deref(), Some("medgemma-4b-it-gguf-q4_k_m"));
        assert!(m.usable(), "{:?}", m.missing);
        let lone = all.iter().find(|m| m.id == "tiny-Q8_0").unwrap();
        assert!(!lone.usable() && lone.missing[0].contains("vision projector"), "{:?}", lone.missing);
        let broken = all.iter().find(|m| m.id == "broken-Q8_0").unwrap();
        assert!(broken.missing[0].contains("valid GGUF"), "{:?}", broken.missing);
        assert!(!broken.vision);
    }

    #[test]
    fn the_hugging_face_cache_is_read_at_refs_main_and_partial_downloads_flagged() {
        let tmp = tempfile::tempdir().unwrap();
        let repo = tmp.path().join("models--google--medgemma-4b-it");
        std::fs::create_dir_all(repo.join("refs")).unwrap();
        std::fs::write(repo.join("refs/main"), "abc123").unwrap();
        fake_model(&repo.join("snapshots/abc123"), &["m.safetensors"], &["m.safetensors"]);
        std::fs::create_dir_all(repo.join("blobs")).unwrap();
        std::fs::write(repo.join("blobs/deadbeef.incomplete"), b"").unwrap();
        let found = scan_hf_cache(tmp.path());
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].id, "google/medgemma-4b-it");
        assert_eq!(found[0].catalog_id.as_deref(), Some("medgemma-4b-it"));
        assert_eq!(found[0].missing, ["1 download(s) not finished"], "not offered until the download ends");
    }
}

#[cfg(test)]
mod catalog_memory {
    use crate::config::Gemma3Config;
    use crate::memory::{memory_need as need, DRAFT_CONTEXT};

    const VISION: &str = r#""vision_config": { "model_type": "siglip_vision_model", "hidden_size": 1152, "intermediate_size": 4304,
        "num_hidden_layers": 27, "num_attention_heads": 16, "image_size": 896, "patch_size": 14, "vision_use_head": false }"#;

    fn shape(text: &str, vision: bool) -> Gemma3Config {
        let json = if vision {
            format!(r#"{{ "architectures": ["Gemma3ForConditionalGeneration"], "model_type": "gemma3",
                "boi_token_index": 255999, "eoi_token_index": 256000, "image_token_index": 262144, "mm_tokens_per_image": 256,
                "text_config": {{ "model_type": "gemma3_text", {text} }}, {VISION} }}"#)
        } else {
            format!(r#"{{ "architectures": ["Gemma3ForCausalLM"], "model_type": "gemma3_text", {text} }}"#)
        };
        Gemma3Config::from_json_str(&json).unwrap()
    }

    #[test]
    fn the_catalogs_memory_needs_are_the_runtimes_on_each_models_shape() {
        let t4 = r#""hidden_size": 2560, "intermediate_size": 10240, "num_hidden_layers": 34, "num_attention_heads": 8,
            "num_key_value_heads": 4, "head_dim": 256, "query_pre_attn_scalar": 256, "sliding_window": 1024,
            "max_position_embeddings": 131072, "vocab_size": 262208, "rope_scaling": { "factor": 8.0, "rope_type": "linear" }"#;
        let t27 = r#""hidden_size": 5376, "intermediate_size": 21504, "num_hidden_layers": 62, "num_attention_heads": 32,
            "num_key_value_heads": 16, "head_dim": 128, "query_pre_attn_scalar": 168, "sliding_window": 1024,
            "max_position_embeddings": 131072, "vocab_size": 262208, "rope_scaling": { "factor": 8.0, "rope_type": "linear" }"#;
        let catalog = super::catalog();
        for (id, c) in [
            ("medgemma-4b-it", shape(t4, true)),
            ("medgemma-1.5-4b-it", shape(t4, true)),
            ("medgemma-27b-it", shape(t27, true)),
            ("medgemma-27b-text-it", shape(t27, false)),
        ] {
            let listed = catalog.iter().find(|m| m.id == id).and_then(|m| m.need_gb).unwrap_or_else(|| panic!("{id} has no need_gb"));
            let (cpu, gpu) = (need(&c, 4, DRAFT_CONTEXT).total() as f64 / 1e9, need(&c, 2, DRAFT_CONTEXT).total() as f64 / 1e9);
            assert!((listed.cpu - cpu).abs() < 0.06 && (listed.gpu - gpu).abs() < 0.06, "{id}: catalog {listed:?}, computed cpu {cpu:.1} gpu {gpu:.1}");
        }
    }
}
