//! Why an image could not be opened, naming the file, in words a clinician can act on.

use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum ImagingError {
    #[error("{path} cannot be read: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{path} is not an image MedGemma Desk can open (DICOM, PNG or JPEG): {reason}")]
    NotAnImage { path: PathBuf, reason: String },
    #[error("{path} is damaged: {reason}")]
    Unreadable { path: PathBuf, reason: String },
    #[error("{path} uses {what}, which MedGemma Desk cannot decode")]
    Unsupported { path: PathBuf, what: String },
    #[error("{path} has no image in it ({reason})")]
    NoImage { path: PathBuf, reason: String },
    #[error("{path} claims an image of {rows} × {columns} × {frames} frames, larger than the {limit_mb} MB limit")]
    TooLarge { path: PathBuf, rows: u64, columns: u64, frames: u64, limit_mb: u64 },
    #[error("{path} holds no image MedGemma Desk can open")]
    EmptyFolder { path: PathBuf },
    #[error("frame {} does not exist: {} has {frames} frame(s)", .frame + 1, .path.display())]
    NoSuchFrame { path: PathBuf, frame: usize, frames: usize },
    #[error("image {} does not exist: {} holds {images} image(s)", .image + 1, .path.display())]
    NoSuchImage { path: PathBuf, image: usize, images: usize },
}

impl ImagingError {
    pub fn unreadable(path: &Path, reason: impl Into<String>) -> Self {
        Self::Unreadable { path: path.to_path_buf(), reason: reason.into() }
    }

    /// A short, stable name for the kind of problem (for the UI and scripts).
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Io { .. } => "io",
            Self::NotAnImage { .. } => "not_an_image",
            Self::Unreadable { .. } => "damaged",
            Self::Unsupported { .. } => "unsupported",
            Self::NoImage { .. } => "no_image",
            Self::TooLarge { .. } => "too_large",
            Self::EmptyFolder { .. } => "empty_folder",
            Self::NoSuchFrame { .. } => "no_such_frame",
            Self::NoSuchImage { .. } => "no_such_image",
        }
    }
}
