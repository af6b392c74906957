//! Daily online backups (SQLite's backup API, so the app keeps working while
//! it runs) and recovery: a store that fails its integrity check on open is
//! moved aside, never deleted, and the newest good backup takes its place.

use std::path::{Path, PathBuf};

use rusqlite::Connection;

use super::at_rest::StoreKey;
use super::images::create_private_dir;
use super::{timestamp, Store, StoreError, FILE_NAME};

/// The folder, inside the data folder, that holds the daily backups.
pub const BACKUPS_DIR: &str = "backups";
/// The folder damaged stores are moved to.
pub const DAMAGED_DIR: &str = "damaged";
/// How many daily backups are kept.
pub const KEEP_BACKUPS: usize = 7;

const PREFIX: &str = "medgemma-desk-";
const SUFFIX: &str = ".sqlite3";

/// What happened when a damaged store was found on open.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recovery {
    /// Where the damaged file was moved (kept for a specialist to look at).
    pub moved_to: PathBuf,
    /// The backup now in use, or `None` when there was no good backup and an
    /// empty store was started.
    pub restored_from: Option<PathBuf>,
    /// What SQLite found wrong.
    pub problems: Vec<String>,
}

impl Recovery {
    /// The message shown to the user.
    pub fn message(&self) -> String {
        let moved = self.moved_to.display();
        match &self.restored_from {
            Some(backup) => format!(
                "The sessions store was damaged, so the backup {} was restored. Work saved after that \
                 backup is not in the list; the damaged file was kept as {moved}.",
                backup.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()
            ),
            None => format!(
                "The sessions store was damaged and there was no backup to restore, so a new, empty \
                 store was started; the damaged file was kept as {moved}."
            ),
        }
    }
}

impl Store {
    /// Opens the store; if it is damaged (not a database, or its integrity
    /// check fails), moves it aside and restores the newest good backup.
    pub fn open_or_recover(data_dir: &Path) -> Result<(Store, Option<Recovery>), StoreError> {
        Store::open_or_recover_with(data_dir, None)
    }

    /// `open_or_recover` for a store encrypted with `key` (checked by the
    /// caller: with a wrong key every store would look damaged). Backups are
    /// encrypted with the same key.
    pub fn open_or_recover_with(
        data_dir: &Path,
        key: Option<&StoreKey>,
    ) -> Result<(Store, Option<Recovery>), StoreError> {
        let problems = match Store::open_with(data_dir, key) {
            Ok(store) => match store.integrity_check() {
                Ok(()) => return Ok((store, None)),
                Err(problems) => problems,
            },
            Err(StoreError::Damaged { .. }) => {
                vec!["the file is not a readable SQLite database".into()]
            }
            Err(other) => return Err(other),
        };
        tracing::warn!("the sessions store failed its integrity check: {problems:?}");
        let moved_to = move_aside(data_dir).map_err(|e| StoreError::Open {
            path: data_dir.join(FILE_NAME),
            reason: format!("it is damaged and could not be moved aside: {e}"),
        })?;
        for backup in backups(data_dir) {
            if std::fs::copy(&backup, data_dir.join(FILE_NAME)).is_err() {
                continue;
            }
            match Store::open_with(data_dir, key) {
                Ok(store) if store.integrity_check().is_ok() => {
                    return Ok((
                        store,
                        Some(Recovery {
                            moved_to,
                            restored_from: Some(backup),
                            problems,
                        }),
                    ));
                }
                _ => {
                    // A bad backup: drop it from the live name and try an older one.
                    for suffix in ["", "-wal", "-shm"] {
                        let _ = std::fs::remove_file(data_dir.join(format!("{FILE_NAME}{suffix}")));
                    }
                }
            }
        }
        let store = Store::open_with(data_dir, key)?;
        Ok((
            store,
            Some(Recovery {
                moved_to,
                restored_from: None,
                problems,
            }),
        ))
    }

    /// Makes today's backup unless it exists, then keeps only the newest
    /// `KEEP_BACKUPS`. Returns the new backup's path, if one was made.
    pub fn backup_if_due(&self) -> Result<Option<PathBuf>, StoreError> {
        let today = &timestamp::now()[..10];
        let dir = self.data_dir.join(BACKUPS_DIR);
        let target = dir.join(format!("{PREFIX}{today}{SUFFIX}"));
        if target.exists() {
            return Ok(None);
        }
        self.backup_to(&target)?;
        for old in backups(&self.data_dir).into_iter().skip(KEEP_BACKUPS) {
            let _ = std::fs::remove_file(old);
        }
        Ok(Some(target))
    }

    /// An online backup into `target` (written under a temporary name, then renamed).
    pub fn backup_to(&self, target: &Path) -> Result<(), StoreError> {
        let dir = target.parent().unwrap_or(&self.data_dir);
        create_private_dir(dir).map_err(super::images::io_error)?;
        let tmp = dir.join(".backup.partial");
        let _ = std::fs::remove_file(&tmp);
        super::create_private_file(&tmp).map_err(super::images::io_error)?;
        let result = self
            .copy_into(&tmp)
            .map_err(StoreError::from)
            .and_then(|()| std::fs::rename(&tmp, target).map_err(super::images::io_error));
        if result.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        result
    }
}

impl Store {
    /// SQLite's online backup into the file at `tmp`, keyed like the store
    /// (SQLCipher copies pages only between databases with the same key).
    fn copy_into(&self, tmp: &Path) -> rusqlite::Result<()> {
        let mut dst = Connection::open(tmp)?;
        if let Some(key) = &self.key {
            super::at_rest::key_connection(&dst, key)?;
        }
        let backup = rusqlite::backup::Backup::new(&self.conn, &mut dst)?;
        backup.run_to_completion(256, std::time::Duration::ZERO, None)?;
        Ok(())
    }
}

/// The backups in `data_dir`, newest first.
pub fn backups(data_dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(data_dir.join(BACKUPS_DIR)) else {
        return Vec::new();
    };
    let mut found: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(PREFIX) && n.ends_with(SUFFIX))
        })
        .collect();
    found.sort();
    found.reverse();
    found
}

/// Moves the store and its WAL and shared-memory files into `damaged/`.
fn move_aside(data_dir: &Path) -> std::io::Result<PathBuf> {
    let dir = data_dir.join(DAMAGED_DIR);
    create_private_dir(&dir)?;
    let stamp = timestamp::now().replace([':', '.'], "-");
    let moved = dir.join(format!("{PREFIX}{stamp}{SUFFIX}"));
    std::fs::rename(data_dir.join(FILE_NAME), &moved)?;
    for suffix in ["-wal", "-shm"] {
        let from = data_dir.join(format!("{FILE_NAME}{suffix}"));
        if from.exists() {
            std::fs::rename(&from, dir.join(format!("{PREFIX}{stamp}{SUFFIX}{suffix}")))?;
        }
    }
    Ok(moved)
}
