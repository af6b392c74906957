//! Encrypting a plain store in place (a store made before encryption, or one
//! kept unencrypted by choice): SQLCipher's own `sqlcipher_export` copies
//! every table, index and the full-text index into a new encrypted file; the
//! image files and model inputs are sealed beside their plain copies and the
//! new file's rows point to the sealed ones; only then does the new file take
//! the store's name. Until that rename the plain store is whole and in use;
//! after it the encrypted one is. Then the plain files and the plain backups
//! (which hold the same patient data) are deleted and an encrypted backup made.

use std::path::PathBuf;

use rusqlite::{params, Connection};

use super::at_rest::{self, StoreKey};
use super::backup::backups;
use super::images::{io_error, stored_path};
use super::{Store, StoreError, FILE_NAME};

const PARTIAL: &str = ".medgemma-desk.encrypting.sqlite3";

impl Store {
    /// Encrypts this plain store and its files with `key`; returns the store,
    /// now encrypted. On failure the plain store is as it was (the partial
    /// copy and any sealed file it made are removed).
    pub fn encrypt(self, key: &StoreKey) -> Result<Store, StoreError> {
        if self.key.is_some() {
            return Ok(self);
        }
        let data_dir = self.data_dir.clone();
        let partial = data_dir.join(PARTIAL);
        for suffix in ["", "-wal", "-shm", "-journal"] {
            let _ = std::fs::remove_file(data_dir.join(format!("{PARTIAL}{suffix}")));
        }
        let mut sealed = Vec::new();
        let made = self.encrypted_copy(key, &partial, &mut sealed);
        let plain_files = match made {
            Ok(plain_files) => plain_files,
            Err(e) => {
                for path in sealed.iter().chain(std::iter::once(&partial)) {
                    let _ = std::fs::remove_file(path);
                }
                return Err(e);
            }
        };
        // The plain store's connection closes (checkpointing its log) before
        // the encrypted copy takes its name.
        drop(self);
        std::fs::rename(&partial, data_dir.join(FILE_NAME)).map_err(io_error)?;
        std::fs::File::open(&data_dir).and_then(|d| d.sync_all()).map_err(io_error)?;
        for suffix in ["-wal", "-shm"] {
            let _ = std::fs::remove_file(data_dir.join(format!("{FILE_NAME}{suffix}")));
        }
        // The plain copies of what is now sealed, and the plain backups.
        for path in plain_files.into_iter().chain(backups(&data_dir)) {
            if let Err(e) = std::fs::remove_file(&path) {
                tracing::warn!("could not remove the plain file {} after encrypting: {e}", path.display());
            }
        }
        let store = Store::open_with(&data_dir, Some(key))?;
        store.backup_if_due()?;
        Ok(store)
    }

    /// Writes the encrypted copy at `partial` and the sealed files (their
    /// paths pushed to `sealed` as they are written); returns the plain files
    /// the copy no longer names.
    fn encrypted_copy(&self, key: &StoreKey, partial: &std::path::Path, sealed: &mut Vec<PathBuf>) -> Result<Vec<PathBuf>, StoreError> {
        super::create_private_file(partial).map_err(io_error)?;
        let version: i64 = self.conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
        self.conn.execute("ATTACH DATABASE ?1 AS encrypted KEY ?2", params![partial.to_string_lossy(), &*key.sqlcipher_pragma()])?;
        let exported = (|| -> rusqlite::Result<()> {
            self.conn.pragma_update(Some("encrypted"), "cipher_page_size", at_rest::CIPHER_PAGE_SIZE)?;
            self.conn.query_row("SELECT sqlcipher_export('encrypted')", [], |_| Ok(()))?;
            self.conn.pragma_update(Some("encrypted"), "user_version", version)
        })();
        let detached = self.conn.execute("DETACH DATABASE encrypted", []);
        exported?;
        detached?;

        let conn = Connection::open(partial)?;
        at_rest::key_connection(&conn, key)?;
        let copy = Store { conn, data_dir: self.data_dir.clone(), key: Some(key.clone()) };
        let mut plain_files = Vec::new();
        let images: Vec<(String, String)> = {
            let mut stmt = copy.conn.prepare("SELECT sha256, stored_path FROM images")?;
            let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
            rows.collect::<Result<_, _>>()?
        };
        let tx = copy.conn.unchecked_transaction()?;
        for (sha, path) in images {
            let plain = self.data_dir.join(&path);
            let bytes = std::fs::read(&plain).map_err(|e| StoreError::DamagedFile { path: plain.clone(), reason: e.to_string() })?;
            let bytes = self.unseal(&plain, bytes, &sha)?;
            let at = stored_path(Some(key), &sha);
            if copy.write_image_file(&sha, &bytes)? {
                sealed.push(self.data_dir.join(&at));
            }
            tx.execute("UPDATE images SET stored_path = ?1 WHERE sha256 = ?2", params![at.to_string_lossy(), sha])?;
            plain_files.push(plain);
        }
        let seen: Vec<String> = {
            let mut stmt = copy.conn.prepare(
                "SELECT model_input_sha256 FROM drafts WHERE model_input_sha256 IS NOT NULL
                 UNION SELECT model_input_sha256 FROM images WHERE model_input_sha256 IS NOT NULL",
            )?;
            let rows = stmt.query_map([], |r| r.get(0))?;
            rows.collect::<Result<_, _>>()?
        };
        for sha in seen {
            // A draft made before model inputs were kept names none: nothing to seal.
            let Some((plain, png)) = self.model_input_png(&sha)? else { continue };
            if let Some(at) = copy.write_model_input_png(&sha, &png)? {
                sealed.push(self.data_dir.join(at));
            }
            plain_files.push(plain);
        }
        tx.commit()?;
        copy.conn.pragma_update(None, "journal_mode", "DELETE")?;
        let problems = copy.integrity_check();
        drop(copy);
        if let Err(problems) = problems {
            return Err(StoreError::Database(format!("the encrypted copy failed its check: {}", problems.join("; "))));
        }
        std::fs::File::open(partial).and_then(|f| f.sync_all()).map_err(io_error)?;
        Ok(plain_files)
    }
}
