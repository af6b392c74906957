//! What a data folder holds, byte for byte: shared by the encryption tests
//! of the store (unit), the command line and the window (included by path).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Every file under `dir` (recursively) with its bytes; one that vanishes
/// while being read (a WAL file at checkpoint) is left out.
pub fn files(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if let Ok(bytes) = std::fs::read(&p) {
                out.insert(p, bytes);
            }
        }
    }
    out
}

/// The files under `dir` that hold `needle` in UTF-8 or UTF-16 (either byte order).
pub fn files_holding(dir: &Path, needle: &str) -> Vec<PathBuf> {
    let forms: Vec<Vec<u8>> = vec![
        needle.as_bytes().to_vec(),
        needle.encode_utf16().flat_map(|u| u.to_le_bytes()).collect(),
        needle.encode_utf16().flat_map(|u| u.to_be_bytes()).collect(),
    ];
    files(dir)
        .into_iter()
        .filter(|(_, bytes)| forms.iter().any(|f| bytes.windows(f.len()).any(|w| w == f.as_slice())))
        .map(|(p, _)| p)
        .collect()
}
