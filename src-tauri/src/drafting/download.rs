//! Downloading a catalog model, only when the user asks: through `hf-hub`'s
//! blocking API into the Hugging Face cache (the same layout every other
//! tool shares, and where discovery looks), resumed from hf-hub's `.part`
//! file after an interruption, and checked against the file's sha256 (the
//! Hub's LFS etag, or the catalog's) before it is offered.
//!
//! This code runs only in the `models download` subcommand's own process
//! (the window starts that process on a click and kills it to cancel), so the
//! window's process never opens a network socket, and a server that stalls
//! is handled by dropping the process (see `cli::models`). Builds made with
//! the `lockdown` feature have none of it.

use std::path::{Path, PathBuf};

use hf_hub::api::sync::{ApiBuilder, ApiError};
use hf_hub::api::Progress;
use hf_hub::Cache;
use serde::Serialize;

/// Files fetched with every model repo when present; a repo without one of
/// the optional ones is still complete.
const REQUIRED: &[&str] = &["config.json", "tokenizer.json"];
const OPTIONAL: &[&str] = &[
    "tokenizer_config.json",
    "special_tokens_map.json",
    "generation_config.json",
    "preprocessor_config.json",
    "processor_config.json",
    "chat_template.json",
    "chat_template.jinja",
];
const INDEX: &str = "model.safetensors.index.json";
const SINGLE: &str = "model.safetensors";

#[derive(Debug, thiserror::Error)]
pub enum DownloadError {
    #[error(
        "{repo} is gated on Hugging Face: sign in there, accept the model's licence (Health AI Developer Foundations terms \
         for MedGemma) on its page, create a read token, and give it here"
    )]
    NeedsToken { repo: String },
    #[error(
        "the token has no access to {repo}: accept the model's licence on its Hugging Face page with the account the \
         token belongs to (it can take a while to be granted), or use a token of that account"
    )]
    NoAccess { repo: String },
    #[error("{repo} has no file {file} on the server")]
    NotFound { repo: String, file: String },
    #[error("{file} arrived damaged (its sha256 is {got}, the server says {want}); it was removed, download it again")]
    Checksum { file: String, got: String, want: String },
    #[error("the server answered {status} for {file}")]
    Status { file: String, status: u16 },
    #[error("the download of {file} broke off ({why}); what arrived is kept, download again to resume")]
    Interrupted { file: String, why: String },
    #[error("could not reach the server ({0}); check the network connection")]
    Unreachable(String),
    #[error("could not write the model into {path}: {why}")]
    Disk { path: PathBuf, why: String },
}

/// What the download is doing, for a progress bar.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "event", rename_all = "camelCase")]
pub enum DownloadEvent {
    /// A file starts (`size` bytes in all, `done` of them already here).
    #[serde(rename_all = "camelCase")]
    File { file: String, size: u64, done: u64 },
    /// Bytes of the current file so far.
    #[serde(rename_all = "camelCase")]
    Progress { file: String, done: u64, size: u64 },
    /// The file's sha256 is being checked.
    Verifying { file: String },
    /// Every file is here and checked; the model is at `path`.
    Done { path: PathBuf },
}

/// Where, and from whom, to download.
pub struct Source {
    /// The Hub's address (`HF_ENDPOINT`, else Hugging Face's own).
    pub endpoint: Option<String>,
    /// A Hugging Face token (for gated models).
    pub token: Option<String>,
    /// The Hugging Face cache folder.
    pub cache_dir: PathBuf,
    /// The data folder, where checked files are noted as verified.
    pub data_dir: Option<PathBuf>,
}

/// Downloads `repo`: the `files` given (a catalog entry's), or a safetensors
/// model's usual files (config, tokenizer, the index and every shard it names,
/// or the single weights file). Returns the snapshot folder.
pub fn download(
    source: &Source,
    repo: &str,
    files: &[String],
    known_sha256: Option<&str>,
    on_event: &mut dyn FnMut(DownloadEvent),
) -> Result<PathBuf, DownloadError> {
    let mut builder = ApiBuilder::from_cache(Cache::new(source.cache_dir.clone()))
        .with_progress(false)
        .with_retries(0)
        .with_token(source.token.clone());
    if let Some(endpoint) = &source.endpoint {
        builder = builder.with_endpoint(endpoint.trim_end_matches('/').to_string());
    }
    let api = builder.build().map_err(|e| DownloadError::Unreachable(e.to_string()))?;
    let remote = api.model(repo.to_string());
    let fetch = |file: &str, on_event: &mut dyn FnMut(DownloadEvent)| -> Result<PathBuf, DownloadError> {
        let path = remote
            .download_with_progress(file, Reporter { file: file.to_string(), size: 0, done: 0, started: false, last: None, on_event: &mut *on_event })
            .map_err(|e| explain(e, repo, file, &source.cache_dir))?;
        if let Some(sha) = verify(&path, file, if files.len() == 1 { known_sha256 } else { None }, on_event)? {
            if let Some(data_dir) = &source.data_dir {
                super::models::record_verified(data_dir, &path, &sha);
            }
        }
        Ok(path)
    };

    let mut last = None;
    if !files.is_empty() {
        for file in files {
            last = Some(fetch(file, on_event)?);
        }
    } else {
        for file in REQUIRED {
            last = Some(fetch(file, on_event)?);
        }
        for file in OPTIONAL {
            match fetch(file, on_event) {
                Ok(p) => last = Some(p),
                Err(DownloadError::NotFound { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        let shards = match fetch(INDEX, on_event) {
            Ok(index) => shards_of(&index).map_err(|why| DownloadError::Disk { path: index.clone(), why })?,
            Err(DownloadError::NotFound { .. }) => vec![SINGLE.to_string()],
            Err(e) => return Err(e),
        };
        for shard in shards {
            last = Some(fetch(&shard, on_event)?);
        }
    }
    let folder = last.and_then(|p| p.parent().map(Path::to_path_buf)).unwrap_or_default();
    on_event(DownloadEvent::Done { path: folder.clone() });
    Ok(folder)
}

/// The shard files a `model.safetensors.index.json` names, each once.
fn shards_of(index: &Path) -> Result<Vec<String>, String> {
    let text = std::fs::read(index).map_err(|e| e.to_string())?;
    let json: serde_json::Value = serde_json::from_slice(&text).map_err(|e| format!("the index is not JSON: {e}"))?;
    let mut shards: Vec<String> = json["weight_map"]
        .as_object()
        .ok_or("the index has no weight_map")?
        .values()
        .filter_map(|v| v.as_str().map(str::to_string))
        // A shard name is a file in the repo's top folder, never a path.
        .filter(|s| !s.contains(['/', '\\']) && s.ends_with(".safetensors"))
        .collect();
    shards.sort();
    shards.dedup();
    Ok(shards)
}

/// Checks a downloaded file against the sha256 it must have: the catalog's
/// when given, else the Hub's etag when that is a sha256 (the Hub names LFS
/// files, every weights file among them, by their sha256). On a mismatch the
/// file is removed so nothing damaged is ever offered. Returns the sha256
/// checked, if there was one to check against.
fn verify(path: &Path, file: &str, known: Option<&str>, on_event: &mut dyn FnMut(DownloadEvent)) -> Result<Option<String>, DownloadError> {
    let blob = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    let etag = blob.file_name().and_then(|n| n.to_str()).unwrap_or_default().to_string();
    let want = match known {
        Some(k) => k.to_ascii_lowercase(),
        None if etag.len() == 64 && etag.bytes().all(|b| b.is_ascii_hexdigit()) => etag.to_ascii_lowercase(),
        None => return Ok(None),
    };
    on_event(DownloadEvent::Verifying { file: file.to_string() });
    let got = crate::digest::sha256_file(&blob, &mut |_| {}).map_err(|e| DownloadError::Disk { path: blob.clone(), why: e.to_string() })?;
    if got != want {
        let _ = std::fs::remove_file(path);
        let _ = std::fs::remove_file(&blob);
        return Err(DownloadError::Checksum { file: file.to_string(), got, want });
    }
    Ok(Some(got))
}

/// hf-hub's progress callbacks, turned into [`DownloadEvent`]s (one per MiB
/// or per second, so a progress bar is not flooded and a slow transfer is not
/// taken for a stalled one).
struct Reporter<'a> {
    file: String,
    size: u64,
    done: u64,
    started: bool,
    last: Option<std::time::Instant>,
    on_event: &'a mut dyn FnMut(DownloadEvent),
}

impl Progress for Reporter<'_> {
    fn init(&mut self, size: usize, _filename: &str) {
        self.size = size as u64;
        self.done = 0;
    }

    fn update(&mut self, n: usize) {
        // hf-hub reports what a resumed file already has as the first update.
        if !self.started {
            self.started = true;
            self.done = n as u64;
            (self.on_event)(DownloadEvent::File { file: self.file.clone(), size: self.size, done: self.done });
            return;
        }
        let before = self.done >> 20;
        self.done += n as u64;
        let quiet = self.last.is_none_or(|t| t.elapsed() >= std::time::Duration::from_secs(1));
        if self.done >> 20 != before || self.done == self.size || quiet {
            self.last = Some(std::time::Instant::now());
            (self.on_event)(DownloadEvent::Progress { file: self.file.clone(), done: self.done, size: self.size });
        }
    }

    fn finish(&mut self) {}
}

/// hf-hub's errors in the words the user needs.
fn explain(e: ApiError, repo: &str, file: &str, cache_dir: &Path) -> DownloadError {
    let status = |e: &ureq::Error| match e {
        ureq::Error::StatusCode(code) => Some(*code),
        _ => None,
    };
    match e {
        ApiError::RequestError(inner) => match status(&inner) {
            Some(401) => DownloadError::NeedsToken { repo: repo.into() },
            Some(403) => DownloadError::NoAccess { repo: repo.into() },
            Some(404) => DownloadError::NotFound { repo: repo.into(), file: file.into() },
            Some(code) => DownloadError::Status { file: file.into(), status: code },
            None => match *inner {
                ureq::Error::Io(io)
                    if matches!(
                        io.kind(),
                        std::io::ErrorKind::ConnectionRefused | std::io::ErrorKind::HostUnreachable | std::io::ErrorKind::NetworkUnreachable
                    ) =>
                {
                    DownloadError::Unreachable(io.to_string())
                }
                ureq::Error::Io(io) => DownloadError::Interrupted { file: file.into(), why: io.to_string() },
                other => DownloadError::Unreachable(other.to_string()),
            },
        },
        ApiError::IoError(io) if matches!(io.kind(), std::io::ErrorKind::UnexpectedEof | std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::ConnectionAborted | std::io::ErrorKind::TimedOut) => {
            DownloadError::Interrupted { file: file.into(), why: io.to_string() }
        }
        // ENOSPC: the disk is full.
        ApiError::IoError(io) if io.raw_os_error() == Some(28) => DownloadError::Disk { path: cache_dir.into(), why: "the disk is full".into() },
        ApiError::IoError(io) => DownloadError::Interrupted { file: file.into(), why: io.to_string() },
        ApiError::InvalidResume => DownloadError::Interrupted { file: file.into(), why: "the part already here is larger than the file; delete it and download again".into() },
        ApiError::LockAcquisition(p) => DownloadError::Disk { path: p, why: "another download of this file is running".into() },
        other => DownloadError::Unreachable(other.to_string()),
    }
}
