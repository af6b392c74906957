//! Image bytes, content-addressed: each original file is kept once under
//! `images/<first two hex digits>/<sha256>` in the data folder, whatever number
//! of sessions show it. The file is written (synced) and renamed into place
//! before the row that points to it is committed, so a crash leaves at worst
//! an unreferenced file, never a row without its bytes.
//!
//! In an encrypted store the file is sealed (`at_rest`) and named by a keyed
//! hash of the sha256 instead, so neither its bytes nor its name tell which
//! image it is; the row records where it is either way.

use std::io::Write;
use std::path::{Path, PathBuf};

use rusqlite::{params, OptionalExtension};
use serde_json::{json, Value};

use super::at_rest::StoreKey;
use super::sessions::{audit, touch};
use super::{timestamp, SessionId, Store, StoreError};
use crate::digest::sha256_hex;

/// The folder, inside the data folder, that holds image bytes.
pub const IMAGES_DIR: &str = "images";


/// Where the bytes of `sha256` live, relative to the data folder, in a plain store.
pub fn relative_path(sha256: &str) -> PathBuf {
    Path::new(IMAGES_DIR).join(&sha256[..2]).join(sha256)
}

/// Where the bytes of `sha256` live in a store with `key` (or a plain one).
pub(super) fn stored_path(key: Option<&StoreKey>, sha256: &str) -> PathBuf {
    match key {
        Some(key) => {
            let name = key.file_name(sha256);
            Path::new(IMAGES_DIR).join(&name[..2]).join(name)
        }
        None => relative_path(sha256),
    }
}

impl Store {
    /// Adds an image (its original bytes, the key tags we show) to the end of
    /// a session's images and returns its sha256. Bytes already kept for any
    /// session are not written again.
    pub fn add_image(
        &mut self,
        id: SessionId,
        bytes: &[u8],
        tags: &Value,
    ) -> Result<String, StoreError> {
        let sha = sha256_hex(bytes);
        let written = self.write_image_file(&sha, bytes)?;
        let result = self.link_image(id, &sha, bytes.len(), tags);
        if result.is_err() && written {
            // Nothing points to the new file: take it back so a failed save changes nothing.
            let _ = std::fs::remove_file(self.data_dir.join(stored_path(self.key.as_ref(), &sha)));
        }
        result.map(|()| sha)
    }

    fn link_image(
        &mut self,
        id: SessionId,
        sha: &str,
        size: usize,
        tags: &Value,
    ) -> Result<(), StoreError> {
        let at = timestamp::now();
        let tx = self.conn.transaction()?;
        touch(&tx, id, &at)?;
        tx.execute(
            "INSERT INTO images (sha256, byte_size, stored_path, tags_json) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (sha256) DO NOTHING",
            params![
                sha,
                size as i64,
                stored_path(self.key.as_ref(), sha).to_string_lossy(),
                tags.to_string()
            ],
        )?;
        let position: i64 = tx.query_row(
            "SELECT coalesce(max(position) + 1, 0) FROM session_images WHERE session_id = ?1",
            [id.0],
            |r| r.get(0),
        )?;
        tx.execute(
            "INSERT INTO session_images (session_id, image_sha256, position) VALUES (?1, ?2, ?3)",
            params![id.0, sha, position],
        )?;
        audit(
            &tx,
            id,
            &at,
            "edited",
            json!({ "what": "image", "position": position }),
        )?;
        tx.commit()?;
        Ok(())
    }

    /// The absolute path of a kept image's file, if the store knows the image
    /// (in an encrypted store the file is sealed: read it with `image_bytes`).
    pub fn image_path(&self, sha256: &str) -> Result<Option<PathBuf>, StoreError> {
        let stored: Option<String> = self
            .conn
            .query_row(
                "SELECT stored_path FROM images WHERE sha256 = ?1",
                [sha256],
                |r| r.get(0),
            )
            .optional()?;
        Ok(stored.map(|p| self.data_dir.join(p)))
    }

    /// The original bytes of a kept image, checked against their hash; `None`
    /// when the store does not know the image.
    pub fn image_bytes(&self, sha256: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let Some(path) = self.image_path(sha256)? else { return Ok(None) };
        let file = std::fs::read(&path).map_err(|e| StoreError::DamagedFile { path: path.clone(), reason: e.to_string() })?;
        self.unseal(&path, file, sha256).map(Some)
    }

    /// The plaintext of a kept file whose plaintext hashes to `sha256`: opened
    /// with the store's key when the store is encrypted, and checked.
    pub(super) fn unseal(&self, path: &Path, file: Vec<u8>, sha256: &str) -> Result<Vec<u8>, StoreError> {
        let damaged = |reason: String| StoreError::DamagedFile { path: path.to_path_buf(), reason };
        let plain = match &self.key {
            Some(key) => key.open(&file, sha256).map_err(|e| damaged(e.to_string()))?,
            None => file,
        };
        if sha256_hex(&plain) != sha256 {
            return Err(damaged("its bytes do not match the hash the store recorded".into()));
        }
        Ok(plain)
    }

    /// Writes the bytes under their hash unless they are there already
    /// (sealed in an encrypted store). Returns whether a new file was written.
    pub(super) fn write_image_file(&self, sha: &str, bytes: &[u8]) -> Result<bool, StoreError> {
        self.write_kept_file(&stored_path(self.key.as_ref(), sha), bytes, sha)
    }

    /// Writes `bytes` (whose hash is `sha`) at `relative`, sealed when the
    /// store is encrypted.
    pub(super) fn write_kept_file(&self, relative: &Path, bytes: &[u8], sha: &str) -> Result<bool, StoreError> {
        match &self.key {
            Some(key) => {
                // The sealed length is fixed, so a file already there is not sealed again.
                let target = self.data_dir.join(relative);
                if std::fs::metadata(&target).is_ok_and(|m| m.len() == StoreKey::sealed_len(bytes.len()) as u64) {
                    return Ok(false);
                }
                self.write_content_file(relative, &key.seal(bytes, sha))
            }
            None => self.write_content_file(relative, bytes),
        }
    }

    /// Writes content-addressed bytes at `relative` (inside the data folder)
    /// unless a file of their size is there already: synced, then renamed
    /// into place, then the folder synced. Returns whether a file was written.
    pub(super) fn write_content_file(&self, relative: &Path, bytes: &[u8]) -> Result<bool, StoreError> {
        let target = self.data_dir.join(relative);
        if std::fs::metadata(&target).is_ok_and(|m| m.len() == bytes.len() as u64) {
            return Ok(false);
        }
        let dir = target.parent().unwrap_or(&self.data_dir);
        if let Some(top) = relative.components().next() {
            create_private_dir(&self.data_dir.join(top)).map_err(io_error)?;
        }
        create_private_dir(dir).map_err(io_error)?;
        let name = target.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let tmp = dir.join(format!(".{name}.partial"));
        let write = || -> std::io::Result<()> {
            let mut file = private_file(&tmp)?;
            file.write_all(bytes)?;
            file.sync_all()?;
            std::fs::rename(&tmp, &target)?;
            // The rename itself is durable once the folder is synced.
            std::fs::File::open(dir)?.sync_all()
        };
        write().map_err(|e| {
            let _ = std::fs::remove_file(&tmp);
            io_error(e)
        })?;
        Ok(true)
    }
}

fn private_file(path: &Path) -> std::io::Result<std::fs::File> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path)
}

pub(super) fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir)
}

/// A file-system failure in words a clinician can act on.
pub(super) fn io_error(err: std::io::Error) -> StoreError {
    match err.raw_os_error() {
        Some(28) | Some(27) | Some(122) => StoreError::DiskFull, // ENOSPC, EFBIG, EDQUOT
        Some(30) | Some(13) | Some(1) => StoreError::ReadOnly,   // EROFS, EACCES, EPERM
        _ => StoreError::Database(format!("could not write to the data folder: {err}")),
    }
}
