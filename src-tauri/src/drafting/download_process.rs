//! A catalog model's download as a child process (`medgemma-desk models
//! download --json`), watched: its progress lines, its end, and Cancel as a kill.
//!
//! The window's own process so never opens a network socket; hf-hub keeps
//! what arrived in its `.part` file when killed, and the next try resumes.

use std::io::BufRead;
use std::path::Path;
use std::sync::{Arc, Mutex};

use serde::Serialize;

use super::models;
use crate::settings::{Settings, DOWNLOADS_BUILT_IN};

/// A download's progress as the window hears it: the child's JSON lines, then
/// its end.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "event", rename_all = "camelCase")]
pub enum DownloadUpdate {
    Progress { line: serde_json::Value },
    Finished,
    Failed { message: String },
    Cancelled,
}

/// Why a download did not start.
#[derive(Debug, thiserror::Error)]
pub enum DownloadStartError {
    #[error("downloads are switched off on this computer (offline lockdown); import a model folder instead")]
    Lockdown,
    #[error("{0} is not a model this version can download")]
    UnknownModel(String),
    #[error("a download is already running; wait for it or cancel it")]
    Busy,
    #[error("the download could not start: {0}")]
    Spawn(String),
}

/// The download running now, if any (one at a time).
#[derive(Default)]
pub struct Downloads {
    child: Arc<Mutex<Option<std::process::Child>>>,
}

impl Downloads {
    /// Whether a download is running.
    pub fn running(&self) -> bool {
        self.child.lock().map(|mut c| c.as_mut().is_some_and(|c| matches!(c.try_wait(), Ok(None)))).unwrap_or(false)
    }

    /// Starts downloading catalog model `model` into `data_dir`'s caches;
    /// `token` (for gated models) goes to the child in its environment, never
    /// on a command line. `on_update` hears progress and the end, on a thread
    /// of its own.
    pub fn start(
        &self,
        data_dir: &Path,
        model: &str,
        token: Option<String>,
        on_update: impl Fn(DownloadUpdate) + Send + 'static,
    ) -> Result<(), DownloadStartError> {
        if !DOWNLOADS_BUILT_IN || Settings::load(data_dir).offline_lockdown {
            return Err(DownloadStartError::Lockdown);
        }
        if !models::catalog().iter().any(|c| c.id == model && c.supported) {
            return Err(DownloadStartError::UnknownModel(model.to_string()));
        }
        let exe = std::env::current_exe().map_err(|e| DownloadStartError::Spawn(e.to_string()))?;
        let mut cmd = std::process::Command::new(exe);
        cmd.arg("--data-dir").arg(data_dir).args(["models", "download", model, "--json"]);
        cmd.stdin(std::process::Stdio::null()).stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped());
        if let Some(t) = token.map(|t| t.trim().to_string()).filter(|t| !t.is_empty()) {
            cmd.env("HF_TOKEN", t);
        }
        let mut guard = self.child.lock().map_err(|_| DownloadStartError::Spawn("the download state is poisoned".into()))?;
        if guard.as_mut().is_some_and(|c| matches!(c.try_wait(), Ok(None))) {
            return Err(DownloadStartError::Busy);
        }
        let mut child = cmd.spawn().map_err(|e| DownloadStartError::Spawn(e.to_string()))?;
        let stdout = child.stdout.take();
        let stderr = child.stderr.take();
        *guard = Some(child);
        drop(guard);
        let watched = self.child.clone();
        std::thread::spawn(move || {
            if let Some(out) = stdout {
                for line in std::io::BufReader::new(out).lines().map_while(Result::ok) {
                    if let Ok(v) = serde_json::from_str(&line) {
                        on_update(DownloadUpdate::Progress { line: v });
                    }
                }
            }
            let mut said = String::new();
            if let Some(mut err) = stderr {
                let _ = std::io::Read::read_to_string(&mut err, &mut said);
            }
            let status = watched.lock().ok().and_then(|mut c| c.take()).and_then(|mut c| c.wait().ok());
            on_update(match status {
                Some(s) if s.success() => DownloadUpdate::Finished,
                // Killed by Cancel.
                Some(s) if s.code().is_none() => DownloadUpdate::Cancelled,
                _ => DownloadUpdate::Failed {
                    message: said.lines().last().map(|l| l.trim_start_matches("medgemma-desk: ").to_string()).unwrap_or_else(|| "the download failed".into()),
                },
            });
        });
        Ok(())
    }

    /// Cancels the running download (what arrived is kept for a later resume).
    pub fn cancel(&self) {
        if let Ok(mut guard) = self.child.lock() {
            if let Some(child) = guard.as_mut() {
                let _ = child.kill();
            }
        }
    }
}
