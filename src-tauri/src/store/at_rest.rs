//! Encryption at rest: the store's one secret and what is derived from it.
//!
//! The database is a SQLCipher file (every page encrypted and authenticated by
//! SQLCipher itself, keyed with a raw key so no slow KDF runs at each open);
//! the files beside it (original images, model inputs) are sealed with
//! XChaCha20-Poly1305, bound to the hash of their plaintext, and named by a
//! keyed hash so that a file name does not reveal which image it holds. Each
//! use gets its own key, derived from the secret with HKDF-SHA256.
//!
//! Where the secret comes from (the OS keyring, a passphrase) is
//! `crate::store_key`'s business; this module only uses it.

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use zeroize::Zeroizing;

/// SQLCipher's page size for our stores: larger than its 4 KiB default, so
/// that a search reading the full-text index decrypts and authenticates a
/// quarter as many pages (docs/benchmarks.md has the effect). Not recorded in
/// the (encrypted) file: every connection to an encrypted store must set it.
pub const CIPHER_PAGE_SIZE: u32 = 16384;
/// SQLite's page cache for an encrypted store, in KiB: decrypted pages stay in
/// memory, so the sidebar and searches do not decrypt the same pages again.
const ENCRYPTED_CACHE_KIB: i64 = 64 * 1024;

/// Keys a new connection to an encrypted store: the first statements on it.
pub fn key_connection(conn: &rusqlite::Connection, key: &StoreKey) -> rusqlite::Result<()> {
    conn.pragma_update(None, "key", &*key.sqlcipher_pragma())?;
    conn.pragma_update(None, "cipher_page_size", CIPHER_PAGE_SIZE)?;
    conn.pragma_update(None, "cache_size", -ENCRYPTED_CACHE_KIB)?;
    // Sorts and temporary indexes stay in memory, never in a plain temp file.
    conn.pragma_update(None, "temp_store", "MEMORY")
}

/// The first bytes of every sealed file (format version 1).
const MAGIC: &[u8; 8] = b"MGDSEAL1";
const NONCE_LEN: usize = 24;
const TAG_LEN: usize = 16;

/// The store's 32-byte secret. Never written to the data folder.
#[derive(Clone)]
pub struct StoreKey(Zeroizing<[u8; 32]>);

impl std::fmt::Debug for StoreKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StoreKey(…)")
    }
}

/// Why a sealed file could not be opened.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SealError {
    #[error("it is not a sealed file of this app")]
    NotSealed,
    #[error("it does not open with this store's key (a different key, or the file was changed)")]
    WrongKeyOrDamaged,
}

impl StoreKey {
    pub fn from_bytes(bytes: [u8; 32]) -> StoreKey {
        StoreKey(Zeroizing::new(bytes))
    }

    /// A new random secret from the OS's generator.
    pub fn generate() -> Result<StoreKey, getrandom::Error> {
        let mut bytes = Zeroizing::new([0u8; 32]);
        getrandom::fill(bytes.as_mut())?;
        Ok(StoreKey(bytes))
    }

    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// A 32-byte key for one use (`info` names the use).
    fn derive(&self, info: &str) -> Zeroizing<[u8; 32]> {
        let mut out = Zeroizing::new([0u8; 32]);
        hkdf::Hkdf::<Sha256>::new(Some(b"medgemma-desk at rest v1"), self.0.as_ref())
            .expand(info.as_bytes(), out.as_mut())
            .unwrap_or_else(|_| unreachable!("32 bytes is a valid HKDF-SHA256 output length"));
        out
    }

    /// The value for `PRAGMA key`: SQLCipher's raw-key form `x'…'` (64 hex digits).
    pub fn sqlcipher_pragma(&self) -> Zeroizing<String> {
        let key = self.derive("sqlcipher page key");
        let mut s = Zeroizing::new(String::with_capacity(67));
        s.push_str("x'");
        for b in key.iter() {
            s.push_str(&format!("{b:02x}"));
        }
        s.push('\'');
        s
    }

    /// A short public value that tells whether a key is this one without
    /// revealing it (kept in the data folder's encryption settings), so that a
    /// wrong key is told apart from a damaged store before anything is touched.
    pub fn check_value(&self) -> String {
        hex(&self.derive("key check")[..16])
    }

    /// The file name a sealed file of plaintext hash `sha256` is kept under.
    pub fn file_name(&self, sha256: &str) -> String {
        self.keyed_hash("file names", sha256)
    }

    /// HMAC-SHA256 of `data` under the key derived for `use_`, in hex.
    fn keyed_hash(&self, use_: &str, data: &str) -> String {
        let key = self.derive(use_);
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key.as_ref())
            .unwrap_or_else(|_| unreachable!("HMAC takes a key of any length"));
        mac.update(data.as_bytes());
        hex(&mac.finalize().into_bytes())
    }

    /// The name a patient's ID is found under in this store (a keyed hash:
    /// the store never keeps the ID itself, and the same ID gives the same
    /// name only under the same key).
    pub fn patient_key(&self, patient_id: &str) -> String {
        self.keyed_hash("patient keys", patient_id)
    }

    /// Seals `plaintext`, bound to `label` (the plaintext's hash): a sealed
    /// file moved under another image's name does not open.
    pub fn seal(&self, plaintext: &[u8], label: &str) -> Vec<u8> {
        let cipher = self.file_cipher();
        let mut nonce = [0u8; NONCE_LEN];
        // The OS generator failing is not something the app can work around;
        // a fixed nonce would be far worse than stopping here.
        getrandom::fill(&mut nonce).unwrap_or_else(|e| panic!("the OS random generator failed: {e}"));
        let sealed = cipher
            .encrypt(XNonce::from_slice(&nonce), Payload { msg: plaintext, aad: label.as_bytes() })
            .unwrap_or_else(|_| unreachable!("XChaCha20-Poly1305 seals any length the app holds in memory"));
        let mut out = Vec::with_capacity(MAGIC.len() + NONCE_LEN + sealed.len());
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&sealed);
        out
    }

    /// Opens what `seal` made with the same `label`.
    pub fn open(&self, sealed: &[u8], label: &str) -> Result<Vec<u8>, SealError> {
        if sealed.len() < MAGIC.len() + NONCE_LEN + TAG_LEN || !sealed.starts_with(MAGIC) {
            return Err(SealError::NotSealed);
        }
        let (nonce, body) = sealed[MAGIC.len()..].split_at(NONCE_LEN);
        self.file_cipher()
            .decrypt(XNonce::from_slice(nonce), Payload { msg: body, aad: label.as_bytes() })
            .map_err(|_| SealError::WrongKeyOrDamaged)
    }

    /// The length of a sealed file of `plaintext_len` bytes.
    pub fn sealed_len(plaintext_len: usize) -> usize {
        MAGIC.len() + NONCE_LEN + plaintext_len + TAG_LEN
    }

    fn file_cipher(&self) -> XChaCha20Poly1305 {
        let key = self.derive("file seal");
        XChaCha20Poly1305::new(chacha20poly1305::Key::from_slice(key.as_ref()))
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(n: u8) -> StoreKey {
        StoreKey::from_bytes([n; 32])
    }

    #[test]
    fn a_sealed_file_opens_with_its_key_and_label_only() {
        let sealed = key(1).seal(b"Doe^Jane", "abc");
        assert_eq!(sealed.len(), StoreKey::sealed_len(8));
        assert!(!sealed.windows(8).any(|w| w == b"Doe^Jane"));
        assert_eq!(key(1).open(&sealed, "abc").unwrap(), b"Doe^Jane");
        assert_eq!(key(2).open(&sealed, "abc"), Err(SealError::WrongKeyOrDamaged));
        assert_eq!(key(1).open(&sealed, "abd"), Err(SealError::WrongKeyOrDamaged));
        let mut flipped = sealed.clone();
        let last = flipped.len() - 1;
        flipped[last] ^= 1;
        assert_eq!(key(1).open(&flipped, "abc"), Err(SealError::WrongKeyOrDamaged));
        assert_eq!(key(1).open(b"\x89PNG\r\n\x1a\n plain", "abc"), Err(SealError::NotSealed));
        // Two seals of the same bytes differ (a fresh nonce each time).
        assert_ne!(sealed, key(1).seal(b"Doe^Jane", "abc"));
    }

    #[test]
    fn derived_values_differ_per_key_and_use_and_hide_the_secret() {
        let (a, b) = (key(1), key(2));
        assert_ne!(a.check_value(), b.check_value());
        assert_ne!(a.file_name("00"), b.file_name("00"));
        assert_ne!(a.file_name("00"), a.file_name("01"));
        let pragma = a.sqlcipher_pragma();
        assert!(pragma.starts_with("x'") && pragma.ends_with('\'') && pragma.len() == 67);
        assert!(!pragma.contains(&hex(a.as_bytes())));
        assert_eq!(a.check_value(), key(1).check_value());
    }
}
