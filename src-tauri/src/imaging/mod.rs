//! Files → `Study`: DICOM (with or without extension, preamble or File Meta;
//! a folder becomes a study grouped by series), PNG and JPEG. Pixels are kept
//! at full depth; rendering and the model's input image are computed from them.

mod codecs;
mod dicom;
mod element_lengths;
mod error;
pub mod lut;
mod model_input;
pub mod pixels;
mod raster;
pub mod render;
pub mod study;

use std::path::{Path, PathBuf};

pub use error::ImagingError;
pub use model_input::model_input;
pub use raster::rgb_on_white;
pub use render::{RenderInfo, Rendered};
pub use study::{Image, KeyTags, PatientTags, Photometric, Study};

/// The most decoded pixel data one file may claim (checked before allocating).
pub const MAX_PIXEL_BYTES: u64 = 2 * 1024 * 1024 * 1024;

/// Refuses absurd dimensions before any buffer is allocated.
pub(crate) fn check_size(path: &Path, rows: u64, columns: u64, frames: u64, bytes_per_pixel: u64) -> Result<(), ImagingError> {
    let total = rows.saturating_mul(columns).saturating_mul(frames.max(1)).saturating_mul(bytes_per_pixel.max(1));
    if rows == 0 || columns == 0 {
        return Err(ImagingError::NoImage { path: path.to_path_buf(), reason: "its image has no rows or columns".into() });
    }
    if total > MAX_PIXEL_BYTES {
        return Err(ImagingError::TooLarge {
            path: path.to_path_buf(),
            rows,
            columns,
            frames,
            limit_mb: MAX_PIXEL_BYTES / (1024 * 1024),
        });
    }
    Ok(())
}

/// Opens a file, a folder of DICOM files, or a DICOMDIR (the images it names).
pub fn open(path: &Path) -> Result<Study, ImagingError> {
    if path.is_dir() {
        return open_folder(path);
    }
    let bytes = std::fs::read(path).map_err(|source| ImagingError::Io { path: path.to_path_buf(), source })?;
    if let Some(files) = dicom::directory_files(path, &bytes) {
        return open_listed(path, &files);
    }
    let image = open_bytes(path, &bytes)?;
    Ok(Study { source: path.to_path_buf(), images: vec![image] })
}

/// The images a DICOMDIR names, as one study (like a folder); the files it
/// names that are missing or are not images are left out, and none opening
/// is said in words.
fn open_listed(dicomdir: &Path, files: &[PathBuf]) -> Result<Study, ImagingError> {
    let images: Vec<Image> = files.iter().filter_map(|f| open_file(f).ok()).collect();
    if images.is_empty() {
        return Err(ImagingError::NoImage {
            path: dicomdir.to_path_buf(),
            reason: format!("it is a DICOMDIR naming {} file(s), none of which could be opened here", files.len()),
        });
    }
    Ok(Study { source: dicomdir.to_path_buf(), images: in_reading_order(images) })
}

/// Series in series-number order, each in instance order (then by file).
fn in_reading_order(mut images: Vec<Image>) -> Vec<Image> {
    images.sort_by(|a, b| {
        let key = |i: &Image| (i.tags.series_number, i.tags.series_instance_uid.clone(), i.tags.instance_number, i.source.clone());
        key(a).cmp(&key(b))
    });
    images
}

/// Opens one file, whatever its extension says: the content decides.
pub fn open_file(path: &Path) -> Result<Image, ImagingError> {
    let bytes = std::fs::read(path).map_err(|source| ImagingError::Io { path: path.to_path_buf(), source })?;
    open_bytes(path, &bytes)
}

/// Opens one file's bytes, read already (the store's copy of an image, opened
/// from its sealed file); `path` names it in messages.
pub fn open_bytes(path: &Path, bytes: &[u8]) -> Result<Image, ImagingError> {
    if bytes.starts_with(b"\x89PNG\r\n\x1a\n") || bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
        return raster::open(path, bytes);
    }
    dicom::open(path, bytes)
}

/// Every DICOM image in a folder (and its subfolders), grouped by series (in
/// series-number order) and sorted by instance number. Files that are not images are skipped.
fn open_folder(dir: &Path) -> Result<Study, ImagingError> {
    let mut files = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let entries = std::fs::read_dir(&d).map_err(|source| ImagingError::Io { path: d.clone(), source })?;
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                files.push(p);
            }
        }
    }
    files.sort();
    let images: Vec<Image> = files.iter().filter_map(|f| open_file(f).ok()).collect();
    if images.is_empty() {
        return Err(ImagingError::EmptyFolder { path: dir.to_path_buf() });
    }
    Ok(Study { source: dir.to_path_buf(), images: in_reading_order(images) })
}
