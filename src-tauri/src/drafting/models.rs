//! The models this app offers: the runtime's registry (`medgemma_models::registry`)
//! over the data folder's `models/` and the Hugging Face cache, plus the app's
//! own record of which weights files it checked against a published sha256.

use std::path::{Path, PathBuf};

pub use medgemma_models::registry::{catalog, describe_folder, gguf_quantization, hf_cache_dir, CatalogEntry, ModelEntry};

/// The folder, inside the data folder, that holds models.
pub const MODELS_DIR: &str = "models";

/// Every model found: the data folder's first, then the Hugging Face cache's,
/// each marked verified when this app checked all its weights files.
pub fn find_all(data_dir: &Path) -> Vec<ModelEntry> {
    let mut found = medgemma_models::registry::find_all(&data_dir.join(MODELS_DIR));
    let record = verified_record(data_dir);
    for m in &mut found {
        m.verified = m.missing.is_empty() && weights_verified(&record, &m.path);
    }
    found
}

/// Where the app notes the weights files it has checked against a published
/// sha256 (keyed by the file's real path, size and modification time, so a
/// changed file is no longer "verified").
const VERIFIED_RECORD: &str = "cache/verified-sha256.json";

fn verified_key(file: &Path) -> Option<String> {
    super::weights_hash::hash_key(&std::fs::canonicalize(file).ok()?).ok()
}

fn verified_record(data_dir: &Path) -> serde_json::Map<String, serde_json::Value> {
    std::fs::read(data_dir.join(VERIFIED_RECORD)).ok().and_then(|b| serde_json::from_slice(&b).ok()).unwrap_or_default()
}

/// Notes that `file` matched the published `sha256`.
pub fn record_verified(data_dir: &Path, file: &Path, sha256: &str) {
    let Some(key) = verified_key(file) else {
        return;
    };
    let mut record = verified_record(data_dir);
    record.insert(key, sha256.into());
    let path = data_dir.join(VERIFIED_RECORD);
    if let Some(parent) = path.parent() {
        let _ = std::fs::create_dir_all(parent);
    }
    let _ = std::fs::write(path, serde_json::Value::Object(record).to_string());
}

fn weights_verified(record: &serde_json::Map<String, serde_json::Value>, dir: &Path) -> bool {
    let weights: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|d| d.flatten().map(|e| e.path()).filter(|p| p.extension().is_some_and(|x| x == "safetensors")).collect())
        .unwrap_or_default();
    !weights.is_empty() && weights.iter().all(|w| verified_key(w).is_some_and(|k| record.contains_key(&k)))
}

/// The usable models with a vision tower or not, in the order they are found
/// (the window drafts with the first).
pub fn find(data_dir: &Path) -> Vec<ModelEntry> {
    find_all(data_dir).into_iter().filter(ModelEntry::usable).collect()
}
