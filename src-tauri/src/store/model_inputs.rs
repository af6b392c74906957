//! What the model saw, per draft: the exact image a draft's model was given
//! (at the model's input size), kept once under `model-inputs/<ab>/<sha256>.png`,
//! named by the hash of its pixels, which the draft row records.

use std::path::{Path, PathBuf};

use image::RgbImage;

use super::{Store, StoreError};
use crate::digest::is_sha256;
use crate::model_input_png;

/// The folder, inside the data folder, that holds model-input images.
pub const MODEL_INPUTS_DIR: &str = "model-inputs";

/// Where the model-input image of pixel hash `sha256` lives, relative to the data folder.
pub fn relative_path(sha256: &str) -> PathBuf {
    Path::new(MODEL_INPUTS_DIR).join(&sha256[..2]).join(format!("{sha256}.png"))
}

impl Store {
    /// Keeps a model-input image under the hash of its pixels (unless it is
    /// kept already). Call it before the draft that names it is added: a
    /// crash in between leaves at worst an image no draft names.
    pub fn keep_model_input(&self, image: &RgbImage) -> Result<String, StoreError> {
        let sha = model_input_png::pixels_sha256(image);
        let png = model_input_png::encode(image).map_err(StoreError::Database)?;
        self.write_content_file(&relative_path(&sha), &png)?;
        Ok(sha)
    }

    /// The kept model-input image of pixel hash `sha256`, checked against that
    /// hash; `None` when none is kept (drafts made before images were kept).
    pub fn model_input(&self, sha256: &str) -> Result<Option<RgbImage>, StoreError> {
        let Some(path) = self.model_input_path(sha256) else { return Ok(None) };
        let png = match std::fs::read(&path) {
            Ok(png) => png,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(StoreError::Database(format!("cannot read {}: {e}", path.display()))),
        };
        model_input_png::decode(&png, sha256)
            .map(Some)
            .map_err(|reason| StoreError::DamagedFile { path, reason })
    }

    /// The absolute path of a kept model-input image, if `sha256` is a hash.
    pub fn model_input_path(&self, sha256: &str) -> Option<PathBuf> {
        is_sha256(sha256).then(|| self.data_dir.join(relative_path(sha256)))
    }
}
