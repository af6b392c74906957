//! The user's settings, kept in `settings.json` in the data folder: the
//! offline lockdown switch, the device to run models on and the model chosen. A missing or
//! unreadable file means the defaults (never an error: settings must not stop
//! a clinician from working).

use std::path::Path;

use serde::{Deserialize, Serialize};

pub const FILE: &str = "settings.json";

/// Whether this build can download at all (`download` feature, no `lockdown`).
pub const DOWNLOADS_BUILT_IN: bool = cfg!(all(feature = "download", not(feature = "lockdown")));

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Settings {
    /// No download path: the Models screen offers import only. Always on in
    /// builds without downloads.
    pub offline_lockdown: bool,
    /// "auto", "cpu", "cuda" or "metal".
    pub device: String,
    /// The model folder drafts use (None: the first complete one found).
    pub model: Option<std::path::PathBuf>,
}

impl Default for Settings {
    fn default() -> Self {
        Self { offline_lockdown: false, device: "auto".into(), model: None }
    }
}

impl Settings {
    pub fn load(data_dir: &Path) -> Self {
        let mut s: Settings = std::fs::read(data_dir.join(FILE)).ok().and_then(|b| serde_json::from_slice(&b).ok()).unwrap_or_default();
        if !DOWNLOADS_BUILT_IN {
            s.offline_lockdown = true;
        }
        if !["auto", "cpu", "cuda", "metal"].contains(&s.device.as_str()) {
            s.device = "auto".into();
        }
        s
    }

    /// Writes the settings (whole file, replaced atomically).
    pub fn save(&self, data_dir: &Path) -> std::io::Result<()> {
        let tmp = data_dir.join(format!("{FILE}.tmp"));
        std::fs::write(&tmp, serde_json::to_vec_pretty(self).map_err(std::io::Error::other)?)?;
        std::fs::rename(tmp, data_dir.join(FILE))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_round_trip_and_bad_files_give_defaults() {
        let tmp = tempfile::tempdir().unwrap();
        assert_eq!(Settings::load(tmp.path()).device, "auto");
        let s = Settings { offline_lockdown: true, device: "cpu".into(), model: Some("/m".into()) };
        s.save(tmp.path()).unwrap();
        assert_eq!(Settings::load(tmp.path()), s);
        std::fs::write(tmp.path().join(FILE), "not json").unwrap();
        assert_eq!(Settings::load(tmp.path()).device, "auto");
        std::fs::write(tmp.path().join(FILE), r#"{"device": "tpu"}"#).unwrap();
        assert_eq!(Settings::load(tmp.path()).device, "auto", "an unknown device is not used");
    }
}
