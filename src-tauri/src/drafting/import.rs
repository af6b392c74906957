//! Importing a model folder the user has (a USB stick, a colleague's copy, a
//! download made elsewhere) into the data folder's `models/`: copied, or
//! linked where it is (the user's choice), checked complete first (every
//! shard its index names, the tokenizer), and hashed (sha256, compared with
//! the catalog's where the catalog knows it) with progress, because hashing
//! 8 GB takes a while. A copy is written under a hidden name and renamed only
//! when whole, so a model half-copied is never offered.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::models::{catalog, describe_folder, ModelEntry, MODELS_DIR};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Copy the files into the data folder (the model stays if the source goes).
    Copy,
    /// Link to the folder where it is (no space used; it must stay there).
    Link,
}

#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("{0} is not a model folder (it has no config.json)")]
    NotAModel(PathBuf),
    #[error("{0} is a GGUF file: this version reads safetensors model folders; GGUF support is coming")]
    Gguf(PathBuf),
    #[error("the model in {path} is incomplete; missing: {}", missing.join(", "))]
    Incomplete { path: PathBuf, missing: Vec<String> },
    #[error("a model named {0} is already in the models folder; give the import another name")]
    Exists(String),
    #[error("{file} does not match the published model (sha256 {got}, expected {want}); nothing was imported")]
    Checksum { file: String, got: String, want: String },
    #[error("could not import into {path}: {why}")]
    Disk { path: PathBuf, why: String },
    #[error("could not read {path}: {why}")]
    Read { path: PathBuf, why: String },
}

/// What an import is doing, for a progress bar.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "event", rename_all = "camelCase")]
pub enum ImportEvent {
    /// `done` of `size` bytes of `file` copied (and hashed) or hashed.
    #[serde(rename_all = "camelCase")]
    Progress { file: String, done: u64, size: u64, total_done: u64, total_size: u64 },
}

/// The result: the model as discovery now sees it, and whether its weights
/// matched a published checksum (`None`: the catalog has none for it).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Imported {
    pub model: ModelEntry,
    pub sha256: String,
    pub verified: Option<bool>,
}

fn disk(path: &Path) -> impl Fn(std::io::Error) -> ImportError + '_ {
    move |e| ImportError::Disk {
        path: path.to_path_buf(),
        why: if e.raw_os_error() == Some(28) { "the disk is full".into() } else { e.to_string() },
    }
}

/// Imports the model folder `source` as `name` (default: the folder's name).
pub fn import(
    data_dir: &Path,
    source: &Path,
    mode: Mode,
    name: Option<&str>,
    weights_cache: Option<&Path>,
    on_event: &mut dyn FnMut(ImportEvent),
) -> Result<Imported, ImportError> {
    if source.is_file() && source.extension().is_some_and(|e| e.eq_ignore_ascii_case("gguf")) {
        return Err(ImportError::Gguf(source.to_path_buf()));
    }
    let source = std::fs::canonicalize(source).map_err(|e| ImportError::Read { path: source.to_path_buf(), why: e.to_string() })?;
    if !source.join("config.json").is_file() {
        return Err(ImportError::NotAModel(source));
    }
    let name = name.map(str::to_string).or_else(|| source.file_name().map(|n| n.to_string_lossy().into_owned())).unwrap_or_else(|| "model".into());
    if name.is_empty() || name.starts_with('.') || name.contains(['/', '\\']) {
        return Err(ImportError::Exists(name));
    }
    let described = describe_folder(&source, name.clone(), "import");
    if !described.missing.is_empty() {
        return Err(ImportError::Incomplete { path: source, missing: described.missing });
    }
    let models = data_dir.join(MODELS_DIR);
    std::fs::create_dir_all(&models).map_err(disk(&models))?;
    let dest = models.join(&name);
    if dest.symlink_metadata().is_ok() {
        return Err(ImportError::Exists(name));
    }

    let files = files_of(&source)?;
    let total_size: u64 = files.iter().map(|(_, s)| s).sum();
    let mut total_done = 0u64;
    let mut hashes: Vec<(String, String)> = Vec::new();
    let staging = models.join(format!(".importing-{name}"));
    let result = (|| {
        if mode == Mode::Copy {
            let _ = std::fs::remove_dir_all(&staging);
            std::fs::create_dir_all(&staging).map_err(disk(&staging))?;
        }
        // config.json last: until it is there, the folder is not a model.
        let mut ordered: Vec<&(String, u64)> = files.iter().filter(|(f, _)| f != "config.json").collect();
        ordered.extend(files.iter().filter(|(f, _)| f == "config.json"));
        for (file, size) in ordered {
            let from = source.join(file);
            let weights = file.ends_with(".safetensors");
            let mut progress = |done: u64| {
                on_event(ImportEvent::Progress { file: file.clone(), done, size: *size, total_done: total_done + done, total_size })
            };
            let hash = match mode {
                Mode::Copy => Some(copy_hashing(&from, &staging.join(file), &mut progress)?),
                Mode::Link if weights => Some(crate::digest::sha256_file(&from, &mut progress).map_err(|e| ImportError::Read { path: from.clone(), why: e.to_string() })?),
                Mode::Link => None,
            };
            total_done += size;
            if let (true, Some(h)) = (weights, hash) {
                hashes.push((file.clone(), h));
            }
        }
        Ok::<(), ImportError>(())
    })();
    if let Err(e) = result {
        let _ = std::fs::remove_dir_all(&staging);
        return Err(e);
    }
    hashes.sort();
    // The same identity the drafting engine records for a model's weights.
    let sha256 = match hashes.as_slice() {
        [(_, one)] => one.clone(),
        many => crate::digest::sha256_hex(many.iter().map(|(n, h)| format!("{h}  {n}\n")).collect::<String>().as_bytes()),
    };
    let published = catalog().into_iter().find(|c| Some(c.id.as_str()) == described.catalog_id.as_deref()).and_then(|c| c.sha256);
    if let Some(want) = &published {
        if !want.eq_ignore_ascii_case(&sha256) {
            let _ = std::fs::remove_dir_all(&staging);
            return Err(ImportError::Checksum { file: "the weights".into(), got: sha256, want: want.clone() });
        }
    }
    match mode {
        Mode::Copy => {
            sync_dir(&staging);
            std::fs::rename(&staging, &dest).map_err(disk(&dest))?;
            sync_dir(&models);
        }
        Mode::Link => {
            #[cfg(unix)]
            std::os::unix::fs::symlink(&source, &dest).map_err(disk(&dest))?;
            #[cfg(not(unix))]
            return Err(ImportError::Disk { path: dest, why: "linking is not available on this system; copy instead".into() });
        }
    }
    if let Some(cache) = weights_cache {
        for (file, hash) in &hashes {
            super::weights_hash::remember_hash(cache, &dest.join(file), hash);
        }
    }
    if published.is_some() {
        for (file, hash) in &hashes {
            super::models::record_verified(data_dir, &dest.join(file), hash);
        }
    }
    let mut model = describe_folder(&dest, name, "data folder");
    model.verified = published.is_some();
    Ok(Imported { model, sha256, verified: published.map(|_| true) })
}

/// The regular files of the model folder (not its subfolders), with sizes.
fn files_of(dir: &Path) -> Result<Vec<(String, u64)>, ImportError> {
    let read = |e: std::io::Error| ImportError::Read { path: dir.to_path_buf(), why: e.to_string() };
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(read)?.flatten() {
        let meta = std::fs::metadata(entry.path()).map_err(read)?;
        if meta.is_file() {
            files.push((entry.file_name().to_string_lossy().into_owned(), meta.len()));
        }
    }
    files.sort();
    Ok(files)
}

/// Copies one file, hashing it in the same pass; fsynced.
fn copy_hashing(from: &Path, to: &Path, progress: &mut dyn FnMut(u64)) -> Result<String, ImportError> {
    use sha2::Digest;
    let mut src = std::fs::File::open(from).map_err(|e| ImportError::Read { path: from.to_path_buf(), why: e.to_string() })?;
    let mut dst = std::fs::File::create(to).map_err(disk(to))?;
    let mut hasher = sha2::Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut done = 0u64;
    loop {
        let n = src.read(&mut buf).map_err(|e| ImportError::Read { path: from.to_path_buf(), why: e.to_string() })?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        dst.write_all(&buf[..n]).map_err(disk(to))?;
        done += n as u64;
        progress(done);
    }
    dst.sync_all().map_err(disk(to))?;
    Ok(crate::digest::hex(&hasher.finalize()))
}

fn sync_dir(dir: &Path) {
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
}
