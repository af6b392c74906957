//! Where the window finds models: each folder in the data folder's `models/`
//! (or a link to one) that holds a Gemma 3 `config.json`. Getting a model
//! there (import, download) is the Models work; until then the draft pane
//! explains how.

use std::path::{Path, PathBuf};

use serde::Serialize;

/// The folder, inside the data folder, that holds models.
pub const MODELS_DIR: &str = "models";

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ModelEntry {
    pub id: String,
    pub path: PathBuf,
    /// It has a vision tower (it can read images).
    pub vision: bool,
}

/// The models in `data_dir/models/`, by name.
pub fn find(data_dir: &Path) -> Vec<ModelEntry> {
    let Ok(entries) = std::fs::read_dir(data_dir.join(MODELS_DIR)) else { return Vec::new() };
    let mut found: Vec<ModelEntry> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.join("config.json").is_file())
        .map(|path| {
            let vision = std::fs::read(path.join("config.json"))
                .ok()
                .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
                .is_some_and(|c| c.get("vision_config").is_some());
            ModelEntry { id: path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default(), path, vision }
        })
        .collect();
    found.sort_by(|a, b| a.id.cmp(&b.id));
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folders_with_a_config_are_models() {
        let tmp = tempfile::tempdir().unwrap();
        assert!(find(tmp.path()).is_empty());
        let m = tmp.path().join(MODELS_DIR).join("medgemma-4b-it");
        std::fs::create_dir_all(&m).unwrap();
        std::fs::write(m.join("config.json"), r#"{"vision_config": {}}"#).unwrap();
        std::fs::create_dir_all(tmp.path().join(MODELS_DIR).join("empty")).unwrap();
        let found = find(tmp.path());
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].id, "medgemma-4b-it");
        assert!(found[0].vision);
    }
}
