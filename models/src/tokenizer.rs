//! The model's tokenizer: `tokenizer.json` through the `tokenizers` crate, with
//! the BOS rule of `tokenizer_config.json`.

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::error::{ModelError, Result};

pub struct TextTokenizer {
    inner: tokenizers::Tokenizer,
    bos_id: Option<u32>,
    bos_text: String,
    add_bos: bool,
    path: PathBuf,
}

impl TextTokenizer {
    /// Loads `tokenizer.json` (and `tokenizer_config.json` if present) from a model folder.
    pub fn from_dir(dir: &Path) -> Result<Self> {
        let path = dir.join("tokenizer.json");
        let inner = tokenizers::Tokenizer::from_file(&path)
            .map_err(|e| ModelError::Tokenizer { path: path.clone(), reason: e.to_string() })?;
        let config = read_json(&dir.join("tokenizer_config.json"))?;
        let add_bos = config.as_ref().and_then(|c| c["add_bos_token"].as_bool()).unwrap_or(true);
        let bos_text = config
            .as_ref()
            .and_then(|c| special_token_text(&c["bos_token"]))
            .unwrap_or_else(|| "<bos>".to_owned());
        let bos_id = inner.token_to_id(&bos_text);
        Ok(Self { inner, bos_id, bos_text, add_bos, path })
    }

    /// A tokenizer built in memory (from GGUF metadata) for the file at `path` (named in errors).
    pub fn from_tokenizer_at(inner: tokenizers::Tokenizer, bos_text: &str, add_bos: bool, path: &Path) -> Self {
        let bos_id = inner.token_to_id(bos_text);
        Self { inner, bos_id, bos_text: bos_text.to_owned(), add_bos, path: path.to_path_buf() }
    }

    /// Token ids of `text`; special tokens written in it (`<start_of_turn>`)
    /// become their ids. With `with_bos`, BOS is prepended when the tokenizer
    /// config says so.
    pub fn encode(&self, text: &str, with_bos: bool) -> Result<Vec<u32>> {
        let enc = self
            .inner
            .encode(text, false)
            .map_err(|e| ModelError::Tokenizer { path: self.path.clone(), reason: e.to_string() })?;
        let mut ids = Vec::with_capacity(enc.len() + 1);
        if with_bos && self.add_bos {
            ids.extend(self.bos_id);
        }
        ids.extend_from_slice(enc.get_ids());
        Ok(ids)
    }

    /// Text of `ids`, special tokens included (the caller stops before end tokens).
    pub fn decode(&self, ids: &[u32]) -> Result<String> {
        self.inner
            .decode(ids, false)
            .map_err(|e| ModelError::Tokenizer { path: self.path.clone(), reason: e.to_string() })
    }

    /// The BOS token as text (what chat templates write as `bos_token`).
    pub fn bos_text(&self) -> &str {
        &self.bos_text
    }

    pub fn token_id(&self, token: &str) -> Option<u32> {
        self.inner.token_to_id(token)
    }
}

fn special_token_text(v: &Value) -> Option<String> {
    v.as_str().map(str::to_owned).or_else(|| v["content"].as_str().map(str::to_owned))
}

pub(crate) fn read_json(path: &Path) -> Result<Option<Value>> {
    if !path.exists() {
        return Ok(None);
    }
    let text = std::fs::read_to_string(path).map_err(|source| ModelError::Io { path: path.into(), source })?;
    serde_json::from_str(&text)
        .map(Some)
        .map_err(|e| ModelError::BadConfig { path: path.into(), reason: format!("not JSON: {e}") })
}
