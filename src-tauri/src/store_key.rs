//! Where the sessions store's secret comes from: the OS keyring (created on
//! first run), a passphrase the clinician types (when there is no keyring),
//! or nothing, on an explicit choice. The data folder keeps only a small
//! record of which (`encryption.json`: the mode, a passphrase's salt and
//! Argon2id settings, and a check value), never the secret.
//!
//! The check value lets a wrong key be told apart from a damaged store before
//! the store is opened: with a wrong key SQLCipher sees every page as garbage,
//! and the store's recovery would otherwise move a sound file aside.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::store::at_rest::StoreKey;
use crate::store::FILE_NAME;

/// The record's file name inside the data folder.
pub const RECORD_FILE: &str = "encryption.json";
/// The keyring entry's service name; the user name is the data folder.
pub const KEYRING_SERVICE: &str = "MedGemma Desk sessions store";
/// Environment: a passphrase (or a file holding one) for a store without a
/// keyring, and the explicit choice of an unencrypted store, for the CLI and
/// for machines with no keyring and no one to type (a department's batch node).
pub const PASSPHRASE_ENV: &str = "MEDGEMMA_DESK_PASSPHRASE";
pub const PASSPHRASE_FILE_ENV: &str = "MEDGEMMA_DESK_PASSPHRASE_FILE";
pub const UNENCRYPTED_ENV: &str = "MEDGEMMA_DESK_UNENCRYPTED";
/// What the CLI adds when the store waits for a passphrase.
pub const CLI_HINT: &str = "set MEDGEMMA_DESK_PASSPHRASE (or MEDGEMMA_DESK_PASSPHRASE_FILE to a file holding it), \
     or MEDGEMMA_DESK_UNENCRYPTED=1 to make a new store unencrypted";
/// The shortest passphrase a new store accepts.
pub const MIN_PASSPHRASE_CHARS: usize = 8;

/// Argon2id settings for a new passphrase (RFC 9106's second recommended
/// set, one lane: 64 MiB, 3 passes; about half a second on a laptop core).
const ARGON2_M_KIB: u32 = 64 * 1024;
const ARGON2_T: u32 = 3;
const ARGON2_P: u32 = 1;

/// How the store is protected, for the status line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Protection {
    /// Encrypted; the key is in the OS keyring.
    Keyring,
    /// Encrypted; the key comes from the clinician's passphrase.
    Passphrase,
    /// Not encrypted, by the clinician's (or administrator's) choice.
    Unencrypted,
    /// Not encrypted: the store was made by a version without encryption.
    UnencryptedOlder,
}

impl Protection {
    pub fn describe(self) -> &'static str {
        match self {
            Protection::Keyring => "Encrypted (key in the system keyring)",
            Protection::Passphrase => "Encrypted (passphrase)",
            Protection::Unencrypted => "Not encrypted (chosen)",
            Protection::UnencryptedOlder => "Not encrypted (store made by an older version)",
        }
    }
}

/// What `unlock` found: the key to open the store with (if any) and how it is protected.
#[derive(Debug, Clone)]
pub struct Unlocked {
    pub key: Option<StoreKey>,
    pub protection: Protection,
}

/// Where the key should come from this time.
#[derive(Debug, Clone, Default)]
pub enum KeySource {
    /// The record decides; a new store gets a key in the keyring.
    #[default]
    Auto,
    /// A passphrase: checked against an existing passphrase store, or used
    /// for a new store.
    Passphrase(Zeroizing<String>),
    /// A new store is made unencrypted (an existing one is opened as it is).
    Unencrypted,
}

impl KeySource {
    /// The window's answer: a passphrase typed, or `otherwise` when none was.
    pub fn typed(passphrase: Option<String>, otherwise: KeySource) -> KeySource {
        passphrase.map_or(otherwise, |p| KeySource::Passphrase(Zeroizing::new(p)))
    }

    /// The CLI's and the app's start: from the environment, else `Auto`.
    pub fn from_env() -> Result<KeySource, KeyError> {
        if let Some(p) = std::env::var_os(PASSPHRASE_ENV) {
            return Ok(KeySource::Passphrase(Zeroizing::new(p.to_string_lossy().into_owned())));
        }
        if let Some(file) = std::env::var_os(PASSPHRASE_FILE_ENV) {
            let text = std::fs::read_to_string(&file).map_err(|e| KeyError::PassphraseFile {
                path: PathBuf::from(&file),
                reason: e.to_string(),
            })?;
            // One line, as password files are written (`echo … > file`).
            let line = text.lines().next().unwrap_or("").to_string();
            return Ok(KeySource::Passphrase(Zeroizing::new(line)));
        }
        if std::env::var_os(UNENCRYPTED_ENV).is_some_and(|v| v == "1") {
            return Ok(KeySource::Unencrypted);
        }
        Ok(KeySource::Auto)
    }
}

/// Why the store's key could not be had, in words a clinician can act on.
/// None of these changes anything in the data folder.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error(
        "this computer has no system keyring MedGemma Desk can use ({reason}), so the new sessions \
         store needs a passphrase (or an explicit choice to keep it unencrypted)"
    )]
    NeedsNewPassphrase { reason: String },
    #[error("the sessions store is encrypted with a passphrase; enter it to open the store")]
    NeedsPassphrase,
    #[error("the passphrase is not the one this sessions store was encrypted with; nothing was changed")]
    WrongPassphrase,
    #[error("a new passphrase needs at least {MIN_PASSPHRASE_CHARS} characters")]
    ShortPassphrase,
    #[error(
        "the key of the encrypted sessions store is not in this computer's keyring ({reason}). \
         The store was not opened and nothing was changed: unlock the keyring, or sign in as the \
         user who made the store, and start MedGemma Desk again"
    )]
    KeyringMissing { reason: String },
    #[error(
        "the key in this computer's keyring is not the key of this sessions store; the store was \
         not opened and nothing was changed"
    )]
    WrongKey,
    #[error("the store's encryption record {path} is damaged ({reason}); the store was not opened and nothing was changed")]
    Record { path: PathBuf, reason: String },
    #[error("cannot read the passphrase file {path}: {reason}")]
    PassphraseFile { path: PathBuf, reason: String },
    #[error("cannot write the store's encryption record in the data folder: {0}")]
    Write(String),
    #[error("the system's random number generator failed: {0}")]
    Random(String),
}

impl KeyError {
    /// Whether the window should ask for a passphrase: `Some(true)` to set a
    /// new one, `Some(false)` to enter the existing one.
    pub fn asks_for_passphrase(&self) -> Option<bool> {
        match self {
            KeyError::NeedsNewPassphrase { .. } | KeyError::ShortPassphrase => Some(true),
            KeyError::NeedsPassphrase | KeyError::WrongPassphrase => Some(false),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
enum Mode {
    Keyring,
    Passphrase,
    None,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Record {
    format: u32,
    mode: Mode,
    /// The key's check value (`StoreKey::check_value`); absent for `none`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    check: Option<String>,
    /// Argon2id salt (hex) and settings, for `passphrase`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    salt: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    argon2: Option<[u32; 3]>,
}

/// Finds (or, for a new store, makes) the store's key. Changes nothing in the
/// data folder unless the store is new.
pub fn unlock(data_dir: &Path, source: &KeySource) -> Result<Unlocked, KeyError> {
    let record_path = data_dir.join(RECORD_FILE);
    match read_record(&record_path)? {
        // An encrypted store's record beside a plain store: encrypting it was
        // cut short before the encrypted copy took the store's name, so the
        // plain store is the whole truth. The record goes; the store is older.
        Some(record) if record.mode != Mode::None && plain_sqlite_header(&data_dir.join(FILE_NAME)) => {
            remove_record(&record_path)?;
            Ok(Unlocked { key: None, protection: Protection::UnencryptedOlder })
        }
        Some(record) => open_existing(data_dir, &record_path, &record, source),
        None if store_exists(data_dir) => older_store(data_dir, &record_path),
        None => create(data_dir, &record_path, source),
    }
}

/// Opens (or recovers) the store in `data_dir` with the key `source` gives:
/// the CLI's way in (the window uses `session::Sessions`, which can ask).
pub fn open_store(
    data_dir: &Path,
    source: &KeySource,
) -> Result<(crate::store::Store, Option<crate::store::Recovery>), String> {
    let unlocked = unlock(data_dir, source).map_err(|e| match e.asks_for_passphrase() {
        Some(_) => format!("{e} ({CLI_HINT})"),
        None => e.to_string(),
    })?;
    crate::store::Store::open_or_recover_with(data_dir, unlocked.key.as_ref()).map_err(|e| e.to_string())
}

/// Encrypts an open plain store (older, or unencrypted by choice) with a new
/// key from `source`: the keyring (`Auto`) or a passphrase. The record is
/// written first; until the encrypted copy takes the store's name the plain
/// store stays whole and `unlock` treats the record as stale.
pub fn encrypt_store(
    store: crate::store::Store,
    data_dir: &Path,
    source: &KeySource,
) -> Result<(crate::store::Store, Protection), (Option<crate::store::Store>, String)> {
    if store.is_encrypted() {
        return Err((Some(store), "the sessions store is encrypted already".into()));
    }
    if matches!(source, KeySource::Unencrypted) {
        return Err((Some(store), "choose the keyring or a passphrase to encrypt the sessions store".into()));
    }
    let record_path = data_dir.join(RECORD_FILE);
    let unlocked = match create(data_dir, &record_path, source) {
        Ok(unlocked) => unlocked,
        Err(e) => return Err((Some(store), e.to_string())),
    };
    let Some(key) = unlocked.key else { return Err((Some(store), "no key was made".into())) };
    match store.encrypt(&key) {
        Ok(store) => Ok((store, unlocked.protection)),
        Err(e) => {
            let _ = remove_record(&record_path);
            Err((None, format!("the sessions store was not encrypted and is as it was: {e}")))
        }
    }
}

fn remove_record(path: &Path) -> Result<(), KeyError> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(KeyError::Write(e.to_string())),
    }
}

fn open_existing(data_dir: &Path, record_path: &Path, record: &Record, source: &KeySource) -> Result<Unlocked, KeyError> {
    let damaged = |reason: &str| KeyError::Record { path: record_path.to_path_buf(), reason: reason.into() };
    match record.mode {
        Mode::None => Ok(Unlocked { key: None, protection: Protection::Unencrypted }),
        Mode::Keyring => {
            let key = keyring_get(data_dir).map_err(|reason| KeyError::KeyringMissing { reason })?;
            if record.check.as_deref() != Some(key.check_value().as_str()) {
                return Err(KeyError::WrongKey);
            }
            Ok(Unlocked { key: Some(key), protection: Protection::Keyring })
        }
        Mode::Passphrase => {
            let KeySource::Passphrase(passphrase) = source else { return Err(KeyError::NeedsPassphrase) };
            let salt = record.salt.as_deref().and_then(unhex).ok_or_else(|| damaged("its salt is missing or not hex"))?;
            let params = record.argon2.ok_or_else(|| damaged("its Argon2 settings are missing"))?;
            let key = derive(passphrase, &salt, params).map_err(|e| damaged(&e))?;
            if record.check.as_deref() != Some(key.check_value().as_str()) {
                return Err(KeyError::WrongPassphrase);
            }
            Ok(Unlocked { key: Some(key), protection: Protection::Passphrase })
        }
    }
}

/// A store with no record: made before encryption (plain), unless its first
/// page is not plain SQLite and the keyring holds a key for this folder (the
/// record was lost); then that key is used and the record written again.
fn older_store(data_dir: &Path, record_path: &Path) -> Result<Unlocked, KeyError> {
    if !plain_sqlite_header(&data_dir.join(FILE_NAME)) {
        if let Ok(key) = keyring_get(data_dir) {
            let record = Record { format: 1, mode: Mode::Keyring, check: Some(key.check_value()), salt: None, argon2: None };
            write_record(record_path, &record)?;
            return Ok(Unlocked { key: Some(key), protection: Protection::Keyring });
        }
    }
    Ok(Unlocked { key: None, protection: Protection::UnencryptedOlder })
}

fn create(data_dir: &Path, record_path: &Path, source: &KeySource) -> Result<Unlocked, KeyError> {
    match source {
        KeySource::Unencrypted => {
            write_record(record_path, &Record { format: 1, mode: Mode::None, check: None, salt: None, argon2: None })?;
            Ok(Unlocked { key: None, protection: Protection::Unencrypted })
        }
        KeySource::Passphrase(passphrase) => {
            if passphrase.chars().count() < MIN_PASSPHRASE_CHARS {
                return Err(KeyError::ShortPassphrase);
            }
            let mut salt = [0u8; 16];
            getrandom::fill(&mut salt).map_err(|e| KeyError::Random(e.to_string()))?;
            let params = [ARGON2_M_KIB, ARGON2_T, ARGON2_P];
            let key = derive(passphrase, &salt, params).map_err(KeyError::Write)?;
            let record = Record {
                format: 1,
                mode: Mode::Passphrase,
                check: Some(key.check_value()),
                salt: Some(hex(&salt)),
                argon2: Some(params),
            };
            write_record(record_path, &record)?;
            Ok(Unlocked { key: Some(key), protection: Protection::Passphrase })
        }
        KeySource::Auto => {
            let key = StoreKey::generate().map_err(|e| KeyError::Random(e.to_string()))?;
            keyring_set(data_dir, &key).map_err(|reason| KeyError::NeedsNewPassphrase { reason })?;
            // Read back: a keyring that accepts a secret but cannot return it
            // (locked, a broken provider) would lose the store at the next start.
            match keyring_get(data_dir) {
                Ok(back) if back.as_bytes() == key.as_bytes() => {}
                Ok(_) => return Err(KeyError::NeedsNewPassphrase { reason: "it returned a different secret".into() }),
                Err(reason) => return Err(KeyError::NeedsNewPassphrase { reason }),
            }
            let record = Record { format: 1, mode: Mode::Keyring, check: Some(key.check_value()), salt: None, argon2: None };
            write_record(record_path, &record)?;
            Ok(Unlocked { key: Some(key), protection: Protection::Keyring })
        }
    }
}

fn derive(passphrase: &str, salt: &[u8], [m, t, p]: [u32; 3]) -> Result<StoreKey, String> {
    let params = argon2::Params::new(m, t, p, Some(32)).map_err(|e| e.to_string())?;
    let argon = argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params);
    let mut out = Zeroizing::new([0u8; 32]);
    argon.hash_password_into(passphrase.as_bytes(), salt, out.as_mut()).map_err(|e| e.to_string())?;
    Ok(StoreKey::from_bytes(*out))
}

/// The keyring entry of this data folder (one key per folder).
fn keyring_entry(data_dir: &Path) -> Result<keyring::Entry, String> {
    let user = std::fs::canonicalize(data_dir).unwrap_or_else(|_| data_dir.to_path_buf());
    keyring::Entry::new(KEYRING_SERVICE, &user.to_string_lossy()).map_err(keyring_words)
}

/// A keyring failure in words.
fn keyring_words(e: keyring::Error) -> String {
    match e {
        keyring::Error::NoEntry => "there is no entry for this data folder".into(),
        keyring::Error::NoDefaultStore => "no keyring service (Secret Service, Keychain or Credential Manager) is running".into(),
        keyring::Error::NoStorageAccess(e) => format!("the keyring is locked or refused access: {e}"),
        other => format!("the keyring failed: {other}"),
    }
}

fn keyring_get(data_dir: &Path) -> Result<StoreKey, String> {
    let secret = Zeroizing::new(keyring_entry(data_dir)?.get_secret().map_err(keyring_words)?);
    let bytes: [u8; 32] = secret.as_slice().try_into().map_err(|_| "its entry is not a 32-byte key".to_string())?;
    Ok(StoreKey::from_bytes(bytes))
}

fn keyring_set(data_dir: &Path, key: &StoreKey) -> Result<(), String> {
    keyring_entry(data_dir)?.set_secret(key.as_bytes()).map_err(keyring_words)
}

fn store_exists(data_dir: &Path) -> bool {
    std::fs::metadata(data_dir.join(FILE_NAME)).is_ok_and(|m| m.len() > 0)
}

fn plain_sqlite_header(path: &Path) -> bool {
    use std::io::Read;
    let mut head = [0u8; 16];
    std::fs::File::open(path).and_then(|mut f| f.read_exact(&mut head)).is_ok() && &head == b"SQLite format 3\0"
}

fn read_record(path: &Path) -> Result<Option<Record>, KeyError> {
    let text = match std::fs::read(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(KeyError::Record { path: path.to_path_buf(), reason: e.to_string() }),
    };
    let record: Record =
        serde_json::from_slice(&text).map_err(|e| KeyError::Record { path: path.to_path_buf(), reason: e.to_string() })?;
    if record.format != 1 {
        let reason = format!("it is format {}, written by a newer version", record.format);
        return Err(KeyError::Record { path: path.to_path_buf(), reason });
    }
    Ok(Some(record))
}

/// Written (0600), synced, renamed into place, folder synced.
fn write_record(path: &Path, record: &Record) -> Result<(), KeyError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let tmp = dir.join(format!(".{RECORD_FILE}.partial"));
    let write = || -> std::io::Result<()> {
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut file = options.open(&tmp)?;
        file.write_all(&serde_json::to_vec_pretty(record).map_err(std::io::Error::other)?)?;
        file.sync_all()?;
        std::fs::rename(&tmp, path)?;
        std::fs::File::open(dir)?.sync_all()
    };
    write().map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        KeyError::Write(e.to_string())
    })
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if s.len() % 2 != 0 {
        return None;
    }
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok()).collect()
}

#[cfg(test)]
mod tests;
