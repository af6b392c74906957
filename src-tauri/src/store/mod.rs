//! The sessions store: every case kept in one local SQLite file in the data
//! folder, durable under crashes, searchable, private to the user.

use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{Connection, ErrorCode, OpenFlags};

pub mod at_rest;
mod backup;
mod bundle;
mod encrypt;
mod images;
mod measurements;
mod model_inputs;
mod priors;
mod reports;
mod schema;
mod sessions;
mod timestamp;

pub use backup::{backups, Recovery, BACKUPS_DIR, DAMAGED_DIR, KEEP_BACKUPS};
pub use bundle::{BundleError, EXTENSION as BUNDLE_EXTENSION};
pub use images::IMAGES_DIR;
pub use measurements::{MeasureKind, Measurement, NewMeasurement};
pub use priors::Prior;
pub use model_inputs::MODEL_INPUTS_DIR;
pub use reports::{SignError, SignOff};
pub use timestamp::now;
pub use sessions::{
    Draft, DraftId, DraftView, ImageRef, NewDraft, Notes, Report, SessionDetail, SessionId, SessionPage, SessionStatus,
    SessionSummary,
};

/// The store's file name inside the data folder.
pub const FILE_NAME: &str = "medgemma-desk.sqlite3";

/// How long a write waits for another instance of the app to finish its own.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Why the store could not do what was asked, in words a clinician can act on.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(
        "the sessions store {path} was written by a newer version of MedGemma Desk \
         (schema {found}, this version knows up to {known}); update the app — nothing was changed"
    )]
    TooNew {
        path: PathBuf,
        found: i64,
        known: i64,
    },
    #[error(
        "the sessions store {path} is damaged or is not a MedGemma Desk store; nothing was changed"
    )]
    Damaged { path: PathBuf },
    #[error("cannot open the sessions store {path}: {reason}")]
    Open { path: PathBuf, reason: String },
    #[error("there is no session {0}")]
    NoSuchSession(SessionId),
    #[error("the disk is full; the last change was not saved (free some space and it will be saved again)")]
    DiskFull,
    #[error("the data folder is read-only; the last change was not saved")]
    ReadOnly,
    #[error("another MedGemma Desk window is busy with the sessions store; try again in a moment")]
    Busy,
    #[error("the sessions store failed: {0}")]
    Database(String),
    #[error("the file {path} in the data folder is damaged ({reason}); nothing was changed")]
    DamagedFile { path: PathBuf, reason: String },
    #[error("the measurement cannot be kept: {0}")]
    BadMeasurement(String),
}

impl From<rusqlite::Error> for StoreError {
    fn from(err: rusqlite::Error) -> Self {
        match err.sqlite_error_code() {
            Some(ErrorCode::DiskFull) => StoreError::DiskFull,
            Some(ErrorCode::ReadOnly) => StoreError::ReadOnly,
            Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => StoreError::Busy,
            _ => StoreError::Database(err.to_string()),
        }
    }
}

/// An open store. One per process; it is not shared between threads.
pub struct Store {
    conn: Connection,
    data_dir: PathBuf,
    /// The secret of an encrypted store (`None`: a plain SQLite file and plain files).
    key: Option<at_rest::StoreKey>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("data_dir", &self.data_dir)
            .field("encrypted", &self.key.is_some())
            .finish()
    }
}

impl Store {
    /// Opens (creating if needed) a plain (unencrypted) store in `data_dir`
    /// and brings its schema up to date. A store from a newer app version is
    /// refused unchanged.
    pub fn open(data_dir: &Path) -> Result<Store, StoreError> {
        Store::open_with(data_dir, None)
    }

    /// Opens (creating if needed) the store in `data_dir`, encrypted with
    /// `key` when one is given. The caller has checked the key against the
    /// data folder's record (`store_key`): a store that does not open with a
    /// checked key is damaged, not locked.
    pub fn open_with(data_dir: &Path, key: Option<&at_rest::StoreKey>) -> Result<Store, StoreError> {
        let path = data_dir.join(FILE_NAME);
        create_private_file(&path).map_err(|e| StoreError::Open {
            path: path.clone(),
            reason: e.to_string(),
        })?;
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let mut conn =
            Connection::open_with_flags(&path, flags).map_err(|e| open_error(&path, e))?;
        if let Some(key) = key {
            at_rest::key_connection(&conn, key).map_err(|e| open_error(&path, e))?;
        }
        conn.busy_timeout(BUSY_TIMEOUT)
            .map_err(|e| open_error(&path, e))?;
        configure(&conn, &path)?;
        let found: i64 = conn
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .map_err(|e| open_error(&path, e))?;
        if found > schema::LATEST {
            return Err(StoreError::TooNew {
                path,
                found,
                known: schema::LATEST,
            });
        }
        schema::migrations()
            .to_latest(&mut conn)
            .map_err(|e| match e {
                rusqlite_migration::Error::RusqliteError { err, .. } => open_error(&path, err),
                other => StoreError::Open {
                    path: path.clone(),
                    reason: other.to_string(),
                },
            })?;
        Ok(Store {
            conn,
            data_dir: data_dir.to_path_buf(),
            key: key.cloned(),
        })
    }

    /// Whether the store and the files beside it are encrypted.
    pub fn is_encrypted(&self) -> bool {
        self.key.is_some()
    }

    /// The store's file.
    pub fn path(&self) -> PathBuf {
        self.data_dir.join(FILE_NAME)
    }

    /// SQLite's own check of every page and index; `Ok(())` when it says "ok",
    /// otherwise the problems it found.
    pub fn integrity_check(&self) -> Result<(), Vec<String>> {
        let mut stmt = self
            .conn
            .prepare("PRAGMA integrity_check")
            .map_err(|e| vec![e.to_string()])?;
        let rows: Result<Vec<String>, _> = stmt
            .query_map([], |r| r.get(0))
            .map_err(|e| vec![e.to_string()])?
            .collect();
        match rows {
            Ok(rows) if rows == ["ok"] => Ok(()),
            Ok(rows) => Err(rows),
            Err(e) => Err(vec![e.to_string()]),
        }
    }
}

/// The connection settings every open uses.
fn configure(conn: &Connection, path: &Path) -> Result<(), StoreError> {
    // WAL: readers never block the writer, and a commit is one append to the log.
    let mode: String = conn
        .pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get(0))
        .map_err(|e| open_error(path, e))?;
    if !mode.eq_ignore_ascii_case("wal") {
        let reason = format!("its journal could not be switched to WAL (it is {mode})");
        return Err(StoreError::Open {
            path: path.to_path_buf(),
            reason,
        });
    }
    pragmas(conn).map_err(|e| open_error(path, e))
}

fn pragmas(conn: &Connection) -> rusqlite::Result<()> {
    // In WAL mode NORMAL syncs the log at each checkpoint, not at each commit. A
    // committed transaction is in the OS before COMMIT returns, so it survives the
    // app crashing or being killed (SIGKILL; tests/store proves it); only a power
    // loss or OS crash can lose the last few commits, never corrupt the file.
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    // Deleted rows are overwritten with zeros, so deleting really deletes.
    conn.pragma_update(None, "secure_delete", "ON")?;
    Ok(())
}

fn open_error(path: &Path, err: rusqlite::Error) -> StoreError {
    match err.sqlite_error_code() {
        Some(ErrorCode::NotADatabase | ErrorCode::DatabaseCorrupt) => StoreError::Damaged {
            path: path.to_path_buf(),
        },
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => StoreError::Busy,
        Some(ErrorCode::ReadOnly | ErrorCode::CannotOpen) if !writable(path) => {
            StoreError::ReadOnly
        }
        Some(ErrorCode::DiskFull) => StoreError::DiskFull,
        _ => StoreError::Open {
            path: path.to_path_buf(),
            reason: err.to_string(),
        },
    }
}

fn writable(path: &Path) -> bool {
    std::fs::OpenOptions::new().append(true).open(path).is_ok()
}

/// Creates the file readable and writable by the user only (0600 on Unix)
/// before SQLite opens it; SQLite gives its -wal and -shm files the same mode.
fn create_private_file(path: &Path) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.read(true).write(true).create(true).truncate(false);
    #[cfg(unix)]
    {
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        options.mode(0o600);
        let file = options.open(path)?;
        // An older file made with a wider mode is narrowed too.
        if file.metadata()?.permissions().mode() & 0o077 != 0 {
            file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
        }
    }
    #[cfg(not(unix))]
    options.open(path)?;
    Ok(())
}

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_lifecycle;
