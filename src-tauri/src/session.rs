//! The session on screen and its place in the store: a study opened from
//! outside becomes a new session (its original files kept by content); a
//! session picked from the list is opened from the store's own copies; notes
//! and the report are saved as the clinician types (the UI debounces).
//!
//! The store may be unavailable (a newer app's store, a locked or read-only
//! folder, a full disk): viewing still works, and the reason is shown.

use std::path::PathBuf;

use image::RgbImage;
use std::sync::{Mutex, MutexGuard};

use serde::Serialize;

use crate::imaging::{KeyTags, Study};
use crate::store::{DraftId, NewDraft, SessionId, Store, StoreError};
use crate::store_key::{self, KeySource, Protection};

/// What the store is doing, for the status line.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StoreStatus {
    /// Sessions can be kept.
    pub available: bool,
    /// Why not, in words for the clinician.
    pub problem: Option<String>,
    /// Something the clinician must know once (a damaged store was restored).
    pub notice: Option<String>,
    /// The last save that failed (cleared by the next one that works).
    pub last_error: Option<String>,
    /// How the store is protected at rest, in words (once it is open).
    pub protection: Option<String>,
    /// Whether it is encrypted (once it is open).
    pub encrypted: bool,
    /// The store waits for a passphrase: "new" to set one for a new store
    /// (or choose to keep it unencrypted), "existing" to enter its passphrase.
    pub passphrase: Option<String>,
}

/// Why a session action failed.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    #[error("sessions cannot be kept right now: {0}")]
    Unavailable(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{0}")]
    Other(String),
}

impl SessionError {
    /// A stable name the UI can branch on.
    pub fn kind(&self) -> &'static str {
        match self {
            SessionError::Unavailable(_) => "store_unavailable",
            SessionError::Store(StoreError::DiskFull) => "disk_full",
            SessionError::Store(StoreError::ReadOnly) => "read_only",
            SessionError::Store(StoreError::Busy) => "busy",
            SessionError::Store(StoreError::NoSuchSession(_)) => "no_such_session",
            SessionError::Store(_) => "store",
            SessionError::Other(_) => "session",
        }
    }
}

pub struct Sessions {
    store: Mutex<Result<Store, String>>,
    data_dir: Option<PathBuf>,
    protection: Mutex<Option<Protection>>,
    /// Set while the store waits for a passphrase (`Some(true)`: a new one).
    asks_passphrase: Mutex<Option<bool>>,
    notice: Mutex<Option<String>>,
    current: Mutex<Option<SessionId>>,
    last_error: Mutex<Option<String>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding the lock leaves plain data behind: keep going.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Sessions {
    /// Opens (or recovers) the store in `data_dir` with its key (from the
    /// keyring, or as the environment says: `store_key::KeySource::from_env`)
    /// and makes today's backup. A store that needs a passphrase stays
    /// closed until `unlock` is given one.
    pub fn open(data_dir: &std::path::Path) -> Sessions {
        match KeySource::from_env() {
            Ok(source) => Sessions::open_with(data_dir, source),
            Err(e) => {
                let sessions = Sessions::open_with(data_dir, KeySource::Auto);
                tracing::warn!("{e}");
                sessions
            }
        }
    }

    /// `open` with the key from `source`.
    pub fn open_with(data_dir: &std::path::Path, source: KeySource) -> Sessions {
        let sessions = Sessions {
            store: Mutex::new(Err("the sessions store is not open yet".into())),
            data_dir: Some(data_dir.to_path_buf()),
            protection: Mutex::new(None),
            asks_passphrase: Mutex::new(None),
            notice: Mutex::new(None),
            current: Mutex::new(None),
            last_error: Mutex::new(None),
        };
        // The reason is in the status (the window shows it, the CLI prints it).
        if let Err(reason) = sessions.unlock(source) {
            tracing::debug!("the sessions store was not opened: {reason}");
        }
        sessions
    }

    /// Opens the store with a key from `source` (a passphrase typed in the
    /// window, or the choice of an unencrypted new store). Does nothing to an
    /// open store. On failure the store stays closed and the reason is shown.
    pub fn unlock(&self, source: KeySource) -> Result<(), String> {
        let Some(data_dir) = &self.data_dir else { return Err("there is no data folder".into()) };
        if lock(&self.store).is_ok() {
            return Ok(());
        }
        let unlocked = match store_key::unlock(data_dir, &source) {
            Ok(unlocked) => unlocked,
            Err(e) => {
                *lock(&self.asks_passphrase) = e.asks_for_passphrase();
                let reason = e.to_string();
                *lock(&self.store) = Err(reason.clone());
                return Err(reason);
            }
        };
        *lock(&self.asks_passphrase) = None;
        let (store, notice) = match Store::open_or_recover_with(data_dir, unlocked.key.as_ref()) {
            Ok((store, recovery)) => {
                if let Err(e) = store.backup_if_due() {
                    tracing::warn!("today's backup of the sessions store failed: {e}");
                }
                (Ok(store), recovery.map(|r| r.message()))
            }
            Err(e) => (Err(e.to_string()), None),
        };
        let result = store.as_ref().map(|_| ()).map_err(Clone::clone);
        *lock(&self.protection) = Some(unlocked.protection);
        *lock(&self.store) = store;
        *lock(&self.notice) = notice;
        if result.is_ok() {
            // What failed while the store was locked is not a failure of the open store.
            *lock(&self.last_error) = None;
        }
        result
    }

    /// Encrypts the open store if it is not encrypted, with a key from
    /// `source` (the keyring, or a passphrase). On failure the store is as it
    /// was and stays open.
    pub fn encrypt(&self, source: KeySource) -> Result<(), String> {
        let Some(data_dir) = &self.data_dir else { return Err("there is no data folder".into()) };
        let mut guard = lock(&self.store);
        let store = match std::mem::replace(&mut *guard, Err("the sessions store is being encrypted".into())) {
            Ok(store) => store,
            Err(reason) => {
                *guard = Err(reason.clone());
                return Err(reason);
            }
        };
        match store_key::encrypt_store(store, data_dir, &source) {
            Ok((store, protection)) => {
                *guard = Ok(store);
                *lock(&self.protection) = Some(protection);
                Ok(())
            }
            Err((store, reason)) => {
                // The plain store is whole: given back, or opened again.
                *guard = match store {
                    Some(store) => Ok(store),
                    None => Store::open_with(data_dir, None).map_err(|e| e.to_string()),
                };
                drop(guard);
                *lock(&self.last_error) = Some(reason.clone());
                Err(reason)
            }
        }
    }

    /// A service with no store (for tests of everything else).
    pub fn unavailable(reason: &str) -> Sessions {
        Sessions {
            store: Mutex::new(Err(reason.into())),
            data_dir: None,
            protection: Mutex::new(None),
            asks_passphrase: Mutex::new(None),
            notice: Mutex::new(None),
            current: Mutex::new(None),
            last_error: Mutex::new(None),
        }
    }

    pub fn status(&self) -> StoreStatus {
        let store = lock(&self.store);
        let protection = if store.is_ok() { *lock(&self.protection) } else { None };
        StoreStatus {
            available: store.is_ok(),
            problem: store.as_ref().err().cloned(),
            notice: lock(&self.notice).clone(),
            last_error: lock(&self.last_error).clone(),
            protection: protection.map(|p| p.describe().to_string()),
            encrypted: matches!(protection, Some(Protection::Keyring | Protection::Passphrase)),
            passphrase: lock(&self.asks_passphrase).map(|new| if new { "new" } else { "existing" }.to_string()),
        }
    }

    /// The clinician has read the notice.
    pub fn dismiss_notice(&self) {
        *lock(&self.notice) = None;
    }

    /// Runs `f` on the store (blocking: call off the UI thread). A failure is
    /// also kept for the status line until a later call succeeds.
    pub fn with_store<T>(&self, f: impl FnOnce(&mut Store) -> Result<T, StoreError>) -> Result<T, SessionError> {
        let mut guard = lock(&self.store);
        let result = match guard.as_mut() {
            Ok(store) => f(store).map_err(SessionError::from),
            Err(reason) => Err(SessionError::Unavailable(reason.clone())),
        };
        drop(guard);
        *lock(&self.last_error) = result.as_ref().err().map(|e| e.to_string());
        result
    }

    pub fn current(&self) -> Option<SessionId> {
        *lock(&self.current)
    }

    pub fn set_current(&self, id: Option<SessionId>) {
        *lock(&self.current) = id;
    }

    /// Keeps a study opened from outside as a new session: its original files
    /// (each once), the key tags shown, a title from them. It becomes current.
    pub fn start(&self, opened: &OpenedStudy) -> Result<SessionId, SessionError> {
        let mut files = Vec::with_capacity(opened.sources.len());
        for (path, tags) in &opened.sources {
            let bytes = std::fs::read(path)
                .map_err(|e| SessionError::Other(format!("cannot read {} again to keep it: {e}", path.display())))?;
            let mut tags = serde_json::to_value(tags).unwrap_or_default();
            if let Some(obj) = tags.as_object_mut() {
                let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
                obj.insert("file_name".into(), name.into());
            }
            files.push((bytes, tags));
        }
        let title = &opened.title;
        let id = self.with_store(|store| {
            let id = store.create_session(title)?;
            for (bytes, tags) in &files {
                if let Err(e) = store.add_image(id, bytes, tags) {
                    // All or nothing: a session without its images is no use.
                    let _ = store.delete_session(id);
                    return Err(e);
                }
            }
            if let Some(patient) = &opened.patient_id {
                store.set_patient(id, patient)?;
            }
            Ok(id)
        })?;
        self.set_current(Some(id));
        Ok(id)
    }
}

impl Sessions {
    /// Keeps a draft (finished, stopped or failed part-way) with its
    /// provenance, and the image its model saw (kept first, under the hash
    /// the draft records).
    pub fn keep_draft(&self, id: SessionId, draft: &NewDraft, model_input: Option<&RgbImage>) -> Result<DraftId, SessionError> {
        self.with_store(|store| match model_input {
            Some(image) => {
                let sha256 = store.keep_model_input(image)?;
                store.add_draft(id, &NewDraft { model_input_sha256: Some(sha256), ..draft.clone() })
            }
            None => store.add_draft(id, draft),
        })
    }
}

/// What a new session is made from: the study's files (each once) with their
/// key tags, and its title. Taken from the study on screen without copying pixels.
#[derive(Debug, Clone)]
pub struct OpenedStudy {
    pub title: String,
    pub sources: Vec<(PathBuf, KeyTags)>,
    /// The Patient ID the images state (the first that states one): the
    /// store keeps only a hash of it, to find the patient's priors.
    pub patient_id: Option<String>,
}

impl OpenedStudy {
    pub fn of(study: &Study) -> OpenedStudy {
        let mut sources: Vec<(PathBuf, KeyTags)> = Vec::new();
        for image in &study.images {
            if !sources.iter().any(|(p, _)| p == &image.source) {
                sources.push((image.source.clone(), image.tags.clone()));
            }
        }
        let patient_id = study.images.iter().find_map(|i| i.patient.patient_id.clone().filter(|p| !p.trim().is_empty()));
        OpenedStudy { title: title_for(study), sources, patient_id }
    }
}

/// "CR CHEST PA · 2024-03-01", or the file name when the tags say nothing.
pub fn title_for(study: &Study) -> String {
    let Some(image) = study.images.first() else { return "Untitled".into() };
    let t = &image.tags;
    let mut words: Vec<&str> = [&t.modality, &t.body_part, &t.view_position]
        .into_iter()
        .filter_map(|v| v.as_deref())
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect();
    if words.is_empty() {
        let name = image.source.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "Image".into());
        return name;
    }
    let date = t.study_date.as_deref().filter(|d| d.len() == 8 && d.bytes().all(|b| b.is_ascii_digit()));
    let date = date.map(|d| format!("{}-{}-{}", &d[..4], &d[4..6], &d[6..]));
    if let Some(date) = &date {
        words.push("·");
        words.push(date);
    }
    words.join(" ")
}
