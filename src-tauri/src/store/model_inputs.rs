//! What the model saw, per draft: the exact image a draft's model was given
//! (at the model's input size), kept once under `model-inputs/<ab>/<sha256>.png`,
//! named by the hash of its pixels, which the draft row records. In an
//! encrypted store the PNG is sealed and named by a keyed hash (`at_rest`).

use std::path::{Path, PathBuf};

use image::RgbImage;

use super::at_rest::StoreKey;
use super::{Store, StoreError};
use crate::digest::is_sha256;
use crate::model_input_png;

/// The folder, inside the data folder, that holds model-input images.
pub const MODEL_INPUTS_DIR: &str = "model-inputs";

/// Where the model-input image of pixel hash `sha256` lives, relative to the
/// data folder, in a store with `key` (or a plain one).
pub(super) fn relative_path(key: Option<&StoreKey>, sha256: &str) -> PathBuf {
    match key {
        Some(key) => {
            let name = key.file_name(&format!("model input {sha256}"));
            Path::new(MODEL_INPUTS_DIR).join(&name[..2]).join(name)
        }
        None => Path::new(MODEL_INPUTS_DIR).join(&sha256[..2]).join(format!("{sha256}.png")),
    }
}

impl Store {
    /// Keeps a model-input image under the hash of its pixels (unless it is
    /// kept already). Call it before the draft that names it is added: a
    /// crash in between leaves at worst an image no draft names.
    pub fn keep_model_input(&self, image: &RgbImage) -> Result<String, StoreError> {
        let sha = model_input_png::pixels_sha256(image);
        let png = model_input_png::encode(image).map_err(StoreError::Database)?;
        self.write_model_input_png(&sha, &png)?;
        Ok(sha)
    }

    /// Writes a model-input PNG (pixel hash `sha`) unless it is there;
    /// returns where, relative to the data folder, when a file was written.
    pub(super) fn write_model_input_png(&self, sha: &str, png: &[u8]) -> Result<Option<PathBuf>, StoreError> {
        let at = relative_path(self.key.as_ref(), sha);
        // Sealed bound to the pixel hash (a PNG's bytes are checked by decoding).
        Ok(self.write_kept_file(&at, png, sha)?.then_some(at))
    }

    /// The kept model-input PNG of pixel hash `sha256` as stored (opened when
    /// the store is encrypted, not yet checked); `None` when none is kept.
    pub(super) fn model_input_png(&self, sha256: &str) -> Result<Option<(PathBuf, Vec<u8>)>, StoreError> {
        let Some(path) = self.model_input_path(sha256) else { return Ok(None) };
        let file = match std::fs::read(&path) {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(StoreError::Database(format!("cannot read {}: {e}", path.display()))),
        };
        let png = match &self.key {
            Some(key) => key
                .open(&file, sha256)
                .map_err(|e| StoreError::DamagedFile { path: path.clone(), reason: e.to_string() })?,
            None => file,
        };
        Ok(Some((path, png)))
    }

    /// The kept model-input image of pixel hash `sha256`, checked against that
    /// hash; `None` when none is kept (drafts made before images were kept).
    pub fn model_input(&self, sha256: &str) -> Result<Option<RgbImage>, StoreError> {
        let Some((path, png)) = self.model_input_png(sha256)? else { return Ok(None) };
        model_input_png::decode(&png, sha256)
            .map(Some)
            .map_err(|reason| StoreError::DamagedFile { path, reason })
    }

    /// The absolute path of a kept model-input image, if `sha256` is a hash.
    pub fn model_input_path(&self, sha256: &str) -> Option<PathBuf> {
        is_sha256(sha256).then(|| self.data_dir.join(relative_path(self.key.as_ref(), sha256)))
    }
}
