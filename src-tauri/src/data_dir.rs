//! Where the app keeps the clinician's data: the SQLite store, images, models,
//! templates and the webview's own files. One folder, chosen by `--data-dir`.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

/// Why the data folder cannot be used, in words a user can act on.
#[derive(Debug, thiserror::Error)]
pub enum DataDirError {
    #[error("no home folder was found to keep the app's data in; pass --data-dir DIR")]
    NoDefault,
    #[error("cannot create the data folder {path}: {source}")]
    Create { path: PathBuf, source: std::io::Error },
    #[error("the data folder {path} is not writable: {source}")]
    NotWritable { path: PathBuf, source: std::io::Error },
}

/// The app's data folder, known to exist and be writable once `prepare`d.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataDir(PathBuf);

impl DataDir {
    /// The folder the platform expects (`~/.local/share/medgemma-desk` on
    /// Linux, `~/Library/Application Support/org.medgemmadesk.MedGemma-Desk` on
    /// macOS, `%APPDATA%\MedGemma Desk\data` on Windows).
    pub fn platform_default() -> Result<PathBuf, DataDirError> {
        directories::ProjectDirs::from("org", "medgemmadesk", "MedGemma Desk")
            .map(|dirs| {
                if cfg!(target_os = "linux") {
                    // ProjectDirs would use "medgemmadesk"; keep the binary's name.
                    dirs.data_dir().with_file_name("medgemma-desk")
                } else {
                    dirs.data_dir().to_path_buf()
                }
            })
            .ok_or(DataDirError::NoDefault)
    }

    /// Resolves `--data-dir` (or the platform default), creates the folder
    /// private to the user (0700 on Unix) and proves it is writable.
    pub fn prepare(requested: Option<&Path>) -> Result<Self, DataDirError> {
        let path = match requested {
            Some(p) => absolute(p),
            None => Self::platform_default()?,
        };
        create_private_dir(&path).map_err(|source| DataDirError::Create { path: path.clone(), source })?;
        probe_writable(&path).map_err(|source| DataDirError::NotWritable { path: path.clone(), source })?;
        Ok(Self(path))
    }

    /// For the window: the data folder even when it cannot be written (a
    /// read-only disk, a full one, a folder of someone else's). The window
    /// still opens — viewing needs no writing — and the store says why it is
    /// not keeping sessions. Returns the reason alongside when not writable.
    pub fn for_window(requested: Option<&Path>) -> Result<(Self, Option<DataDirError>), DataDirError> {
        match Self::prepare(requested) {
            Ok(d) => Ok((d, None)),
            Err(e @ (DataDirError::Create { .. } | DataDirError::NotWritable { .. })) => {
                let path = match requested {
                    Some(p) => absolute(p),
                    None => Self::platform_default()?,
                };
                Ok((Self(path), Some(e)))
            }
            Err(e) => Err(e),
        }
    }

    pub fn path(&self) -> &Path {
        &self.0
    }

    /// The webview's cache and local storage, kept inside our data folder so
    /// that `--data-dir` really holds everything the app writes.
    pub fn webview(&self) -> PathBuf {
        self.0.join("webview")
    }
}

fn absolute(p: &Path) -> PathBuf {
    std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf())
}

fn create_private_dir(path: &Path) -> std::io::Result<()> {
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder.create(path)?;
    if !path.is_dir() {
        return Err(std::io::Error::new(std::io::ErrorKind::NotADirectory, "it is not a folder"));
    }
    Ok(())
}

/// Writes and removes a small file: permissions alone do not tell (a read-only
/// mount, a full disk, root on a 0500 folder all behave differently).
fn probe_writable(path: &Path) -> std::io::Result<()> {
    let probe = path.join(format!(".write-probe-{}", std::process::id()));
    let result = fs::File::create(&probe).and_then(|mut f| f.write_all(b"ok").and_then(|_| f.sync_all()));
    let _ = fs::remove_file(&probe);
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prepare_creates_a_private_folder() {
        let tmp = tempfile::tempdir().unwrap();
        let wanted = tmp.path().join("a").join("b");
        let dir = DataDir::prepare(Some(&wanted)).unwrap();
        assert!(dir.path().is_dir());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(dir.path()).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o700);
        }
        // The probe leaves nothing behind.
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[test]
    fn prepare_refuses_a_path_below_a_file() {
        let tmp = tempfile::tempdir().unwrap();
        let file = tmp.path().join("plain-file");
        fs::write(&file, b"x").unwrap();
        let err = DataDir::prepare(Some(&file.join("data"))).unwrap_err();
        assert!(matches!(err, DataDirError::Create { .. }), "{err}");
        assert!(err.to_string().contains("plain-file"), "{err}");
    }

    #[test]
    fn prepare_refuses_a_file_as_the_folder() {
        let tmp = tempfile::tempdir().unwrap();
        let file = tmp.path().join("plain-file");
        fs::write(&file, b"x").unwrap();
        assert!(DataDir::prepare(Some(&file)).is_err());
    }

    #[test]
    fn relative_paths_become_absolute() {
        let tmp = tempfile::tempdir().unwrap();
        let rel = pathdiff(tmp.path());
        let dir = DataDir::prepare(Some(&rel.join("d"))).unwrap();
        assert!(dir.path().is_absolute());
    }

    fn pathdiff(target: &Path) -> PathBuf {
        let cwd = std::env::current_dir().unwrap();
        let mut rel = PathBuf::new();
        for _ in cwd.components().skip(1) {
            rel.push("..");
        }
        rel.join(target.strip_prefix("/").unwrap())
    }
}
