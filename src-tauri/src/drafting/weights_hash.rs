//! The sha256 of a model's weights, as provenance records it, cached in the
//! data folder by path, size and modification time (hashing gigabytes takes seconds).

use std::path::{Path, PathBuf};

/// The sha256 of the weights (`ModelSource::weight_files`): of one file, or
/// of the listing of several files' names and hashes. Cached in `cache` (a
/// JSON file) by path, size and modification time, since hashing gigabytes
/// takes seconds.
pub fn files_sha256(files: &[PathBuf], cache: Option<&Path>) -> std::io::Result<String> {
    let mut known: serde_json::Map<String, serde_json::Value> =
        cache.and_then(|c| std::fs::read(c).ok()).and_then(|b| serde_json::from_slice(&b).ok()).unwrap_or_default();
    let mut changed = false;
    let mut each = Vec::new();
    for f in files {
        let key = hash_key(f)?;
        let hash = match known.get(&key).and_then(|v| v.as_str()) {
            Some(h) => h.to_string(),
            None => {
                let h = crate::digest::sha256_file(f, &mut |_| {})?;
                known.insert(key, h.clone().into());
                changed = true;
                h
            }
        };
        each.push((f.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default(), hash));
    }
    if changed {
        if let Some(c) = cache {
            if let Some(parent) = c.parent() {
                let _ = std::fs::create_dir_all(parent);
            }
            let _ = std::fs::write(c, serde_json::Value::Object(known).to_string());
        }
    }
    Ok(match each.as_slice() {
        [(_, one)] => one.clone(),
        many => {
            let listing: String = many.iter().map(|(n, h)| format!("{h}  {n}\n")).collect();
            crate::digest::sha256_hex(listing.as_bytes())
        }
    })
}

/// A weights file's entry in the hash cache: its path, size and modification
/// time (a changed file gets a new entry).
pub(crate) fn hash_key(file: &Path) -> std::io::Result<String> {
    let meta = std::fs::metadata(file)?;
    let mtime = meta.modified().ok().and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok()).map_or(0, |d| d.as_nanos());
    Ok(format!("{}|{}|{mtime}", file.display(), meta.len()))
}

/// Records a weights file's sha256 computed elsewhere (an import hashes while
/// it copies), so the first draft need not hash it again.
pub fn remember_hash(cache: &Path, file: &Path, sha256: &str) {
    let Ok(key) = hash_key(file) else { return };
    let mut known: serde_json::Map<String, serde_json::Value> =
        std::fs::read(cache).ok().and_then(|b| serde_json::from_slice(&b).ok()).unwrap_or_default();
    known.insert(key, sha256.into());
    if let Some(parent) = cache.parent() {
        let _ = std::fs::create_dir_all(parent);
    }
    let _ = std::fs::write(cache, serde_json::Value::Object(known).to_string());
}
