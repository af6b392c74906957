//! SHA-256 as the app writes it (64 lower-case hex digits): of bytes, of a
//! file read in pieces with progress; used by the store, drafting and import.

use sha2::{Digest, Sha256};

/// The sha256 of a file, read in 1 MiB pieces; `progress` hears the bytes
/// read so far (hashing a 8 GB model takes a while: the user sees it move).
pub fn sha256_file(path: &std::path::Path, progress: &mut dyn FnMut(u64)) -> std::io::Result<String> {
    use std::io::Read;
    let mut file = std::fs::File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut done = 0u64;
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        done += n as u64;
        progress(done);
    }
    Ok(hex(&hasher.finalize()))
}

/// Lower-case hex of a digest.
pub fn hex(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push_str(&format!("{b:02x}"));
    }
    out
}

/// Lower-case hex sha256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

/// Whether `s` is a sha256 as we write it (64 lower-case hex digits). Paths are
/// built from it, so nothing else may pass (no `/`, no `..`).
pub fn is_sha256(s: &str) -> bool {
    s.len() == 64
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}
