//! One session as a self-contained file, to move it to another computer or
//! keep it outside the app: a single JSON document with the session, its
//! notes, every draft with its provenance, every report version, and the
//! original image bytes and the images the drafts' model saw (base64, each
//! checked against its sha256 on import).
//!
//! One JSON file rather than a zip of JSON + images: it needs no archive
//! library, cannot hold paths (so cannot write outside the data folder), and
//! every part of it is validated by one typed parse before anything is written.
//! Import is all or nothing: a bundle that fails any check changes nothing.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use base64::Engine;
use rusqlite::params;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::images::stored_path;
use crate::digest::{is_sha256, sha256_hex};
use crate::model_input_png;
use super::sessions::{audit, insert_draft};
use super::{measurements, timestamp, MeasureKind, NewDraft, NewMeasurement, Notes, SessionId, Store, StoreError};

/// What the file says it is.
pub const FORMAT: &str = "medgemma-desk-session";
/// The bundle layout this build writes and reads (2 added `model_inputs`, 3
/// each draft's `views` (the image and frame its model saw) and the
/// session's `measurements`; older bundles
/// are read as having none, so an older app refuses a newer bundle rather
/// than drop what it cannot keep).
pub const FORMAT_VERSION: u32 = 3;
/// The suffix exported files get.
pub const EXTENSION: &str = "mgdesk.json";

/// Bundles bigger than this are refused before they are read (an image may be
/// up to 2 GB; base64 adds a third).
const MAX_BUNDLE_BYTES: u64 = 3 << 30;
const MAX_TEXT: usize = 1 << 20;
const MAX_PROMPT: usize = 16 << 20;
const MAX_ITEMS: usize = 10_000;

/// Why a bundle was refused.
#[derive(Debug, thiserror::Error)]
pub enum BundleError {
    #[error("{path} is not a MedGemma Desk session bundle ({reason}); nothing was imported")]
    Invalid { path: String, reason: String },
    #[error("{path} was exported by a newer version of MedGemma Desk (bundle format {found}); update the app to import it")]
    TooNew { path: String, found: u32 },
    #[error("cannot read {path}: {reason}")]
    Read { path: String, reason: String },
    #[error("cannot write {path}: {reason}")]
    Write { path: String, reason: String },
    #[error(transparent)]
    Store(#[from] StoreError),
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Bundle {
    format: String,
    format_version: u32,
    app_version: String,
    exported_at: String,
    session: BundleSession,
    notes: Notes,
    images: Vec<BundleImage>,
    /// The images the drafts' model saw (each named by a draft).
    #[serde(default)]
    model_inputs: Vec<BundleModelInput>,
    drafts: Vec<BundleDraft>,
    reports: Vec<BundleReport>,
    /// Lengths and angles drawn on the images (format 3).
    #[serde(default)]
    measurements: Vec<BundleMeasurement>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct BundleMeasurement {
    created_at: String,
    image_sha256: String,
    frame: u32,
    kind: MeasureKind,
    points: Vec<[f64; 2]>,
}

impl BundleMeasurement {
    fn measurement(&self) -> NewMeasurement {
        NewMeasurement { image_sha256: self.image_sha256.clone(), frame: self.frame, kind: self.kind, points: self.points.clone() }
    }
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct BundleModelInput {
    /// The pixels' sha256 (as drafts name it), not the PNG's.
    sha256: String,
    /// The PNG file's bytes, base64 (standard alphabet, padded).
    data: String,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct BundleSession {
    title: String,
    created_at: String,
    updated_at: String,
    status: String,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct BundleImage {
    sha256: String,
    tags: Value,
    model_input_sha256: Option<String>,
    /// The original file's bytes, base64 (standard alphabet, padded).
    data: String,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct BundleDraft {
    created_at: String,
    /// The position (0-based) in `drafts` of the draft this one re-ran
    /// (`rerun_of` inside is a row id of the exporting store, so not kept).
    #[serde(default)]
    rerun_of_index: Option<usize>,
    #[serde(flatten)]
    draft: NewDraft,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct BundleReport {
    version: i64,
    text: String,
    status: String,
    signed_at: Option<String>,
    created_at: String,
    /// The version (not the row id) of the final report this one adds to.
    addendum_of_version: Option<i64>,
    /// The position (0-based) in `drafts` of the draft this version started from.
    #[serde(default)]
    from_draft_index: Option<usize>,
    /// Each sentence's origin, as frozen when this version was signed.
    #[serde(default)]
    origins: Option<Vec<crate::attribution::Sentence>>,
}

impl Store {
    /// Writes one session to `out` as a bundle (private to the user, 0600).
    pub fn export_session(&mut self, id: SessionId, out: &Path) -> Result<(), BundleError> {
        let detail = self.session(id)?.ok_or(StoreError::NoSuchSession(id))?;
        let mut images = Vec::with_capacity(detail.images.len());
        for image in &detail.images {
            let path = self.data_dir.join(&image.stored_path);
            let file = std::fs::read(&path).map_err(|e| BundleError::Read {
                path: path.display().to_string(),
                reason: e.to_string(),
            })?;
            let bytes = self.unseal(&path, file, &image.sha256)?;
            images.push(BundleImage {
                sha256: image.sha256.clone(),
                tags: image.tags.clone(),
                model_input_sha256: image.model_input_sha256.clone(),
                data: base64::engine::general_purpose::STANDARD.encode(bytes),
            });
        }
        let mut model_inputs = Vec::new();
        let named: BTreeSet<&String> = detail.drafts.iter().filter_map(|d| d.draft.model_input_sha256.as_ref()).collect();
        for sha in named {
            // Drafts made before these images were kept have none to carry.
            if let Some((_, bytes)) = self.model_input_png(sha)? {
                model_inputs.push(BundleModelInput { sha256: sha.clone(), data: base64::engine::general_purpose::STANDARD.encode(bytes) });
            }
        }
        let version_of: BTreeMap<i64, i64> =
            detail.reports.iter().map(|r| (r.id, r.version)).collect();
        let draft_index: BTreeMap<i64, usize> = detail.drafts.iter().enumerate().map(|(i, d)| (d.id.0, i)).collect();
        let bundle = Bundle {
            format: FORMAT.into(),
            format_version: FORMAT_VERSION,
            app_version: crate::version::APP_VERSION.into(),
            exported_at: timestamp::now(),
            session: BundleSession {
                title: detail.summary.title.clone(),
                created_at: detail.summary.created_at.clone(),
                updated_at: detail.summary.updated_at.clone(),
                status: detail.summary.status.as_str().into(),
            },
            notes: detail.notes.clone(),
            images,
            model_inputs,
            drafts: detail
                .drafts
                .iter()
                .map(|d| BundleDraft {
                    created_at: d.created_at.clone(),
                    rerun_of_index: d.draft.rerun_of.and_then(|r| draft_index.get(&r).copied()),
                    draft: NewDraft { rerun_of: None, ..d.draft.clone() },
                })
                .collect(),
            reports: detail
                .reports
                .iter()
                .map(|r| BundleReport {
                    version: r.version,
                    text: r.text.clone(),
                    status: r.status.clone(),
                    signed_at: r.signed_at.clone(),
                    created_at: r.created_at.clone(),
                    addendum_of_version: r.addendum_of.and_then(|a| version_of.get(&a).copied()),
                    from_draft_index: r.from_draft.and_then(|d| draft_index.get(&d).copied()),
                    origins: r.origins.clone(),
                })
                .collect(),
            measurements: detail
                .measurements
                .iter()
                .map(|m| BundleMeasurement {
                    created_at: m.created_at.clone(),
                    image_sha256: m.measurement.image_sha256.clone(),
                    frame: m.measurement.frame,
                    kind: m.measurement.kind,
                    points: m.measurement.points.clone(),
                })
                .collect(),
        };
        write_private(out, &bundle).map_err(|e| BundleError::Write {
            path: out.display().to_string(),
            reason: e.to_string(),
        })?;
        let at = timestamp::now();
        let tx = self.conn.transaction().map_err(StoreError::from)?;
        audit(
            &tx,
            id,
            &at,
            "exported",
            json!({ "images": detail.images.len() }),
        )
        .map_err(StoreError::from)?;
        tx.commit().map_err(StoreError::from)?;
        Ok(())
    }

    /// Imports a bundle as a new session and returns its number. Everything is
    /// checked first; a bundle that fails any check changes nothing.
    pub fn import_session(&mut self, file: &Path) -> Result<SessionId, BundleError> {
        let shown = file.display().to_string();
        let size = std::fs::metadata(file)
            .map_err(|e| BundleError::Read {
                path: shown.clone(),
                reason: e.to_string(),
            })?
            .len();
        let invalid = |reason: String| BundleError::Invalid {
            path: shown.clone(),
            reason,
        };
        if size > MAX_BUNDLE_BYTES {
            return Err(invalid(format!(
                "it is {} MB, more than a bundle can be",
                size >> 20
            )));
        }
        let text = std::fs::read(file).map_err(|e| BundleError::Read {
            path: shown.clone(),
            reason: e.to_string(),
        })?;
        // The format is checked before the strict parse, so a newer bundle says so
        // instead of failing on a field this version does not know.
        let head: Value = serde_json::from_slice(&text)
            .map_err(|e| invalid(format!("it is not valid JSON: {e}")))?;
        if head.get("format").and_then(Value::as_str) != Some(FORMAT) {
            return Err(invalid("it has no MedGemma Desk session header".into()));
        }
        match head.get("format_version").and_then(Value::as_u64) {
            Some(v) if v > FORMAT_VERSION as u64 => {
                return Err(BundleError::TooNew {
                    path: shown,
                    found: u32::try_from(v).unwrap_or(u32::MAX),
                })
            }
            Some(_) => {}
            None => return Err(invalid("it has no format version".into())),
        }
        let bundle: Bundle = serde_json::from_value(head).map_err(|e| invalid(e.to_string()))?;
        let (images, model_inputs) = validate(&bundle).map_err(invalid)?;

        let mut written = Vec::new();
        let result = (|| -> Result<SessionId, StoreError> {
            for (sha, bytes) in &images {
                if self.write_image_file(sha, bytes)? {
                    written.push(stored_path(self.key.as_ref(), sha));
                }
            }
            for (sha, png) in &model_inputs {
                if let Some(at) = self.write_model_input_png(sha, png)? {
                    written.push(at);
                }
            }
            self.insert_bundle(&bundle, &images)
        })();
        if result.is_err() {
            for path in written {
                let _ = std::fs::remove_file(self.data_dir.join(path));
            }
        }
        Ok(result?)
    }

    fn insert_bundle(
        &mut self,
        bundle: &Bundle,
        images: &[(String, Vec<u8>)],
    ) -> Result<SessionId, StoreError> {
        let at = timestamp::now();
        let s = &bundle.session;
        let tx = self.conn.transaction()?;
        tx.execute(
            "INSERT INTO sessions (title, created_at, updated_at, status) VALUES (?1, ?2, ?3, ?4)",
            params![s.title, s.created_at, s.updated_at, s.status],
        )?;
        let id = SessionId(tx.last_insert_rowid());
        let n = &bundle.notes;
        tx.execute(
            "INSERT INTO notes (session_id, indication, history, comparison, free_text, updated_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![
                id.0,
                n.indication,
                n.history,
                n.comparison,
                n.free_text,
                s.updated_at
            ],
        )?;
        for (position, (image, (sha, bytes))) in bundle.images.iter().zip(images).enumerate() {
            tx.execute(
                "INSERT INTO images (sha256, byte_size, stored_path, tags_json, model_input_sha256)
                 VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (sha256) DO NOTHING",
                params![
                    sha,
                    bytes.len() as i64,
                    stored_path(self.key.as_ref(), sha).to_string_lossy(),
                    image.tags.to_string(),
                    image.model_input_sha256
                ],
            )?;
            tx.execute(
                "INSERT INTO session_images (session_id, image_sha256, position) VALUES (?1, ?2, ?3)",
                params![id.0, sha, position as i64],
            )?;
        }
        let mut draft_rows = Vec::with_capacity(bundle.drafts.len());
        for d in &bundle.drafts {
            // Validated: a re-run names a draft before it.
            let rerun_of = d.rerun_of_index.and_then(|i| draft_rows.get(i).copied());
            draft_rows.push(insert_draft(&tx, id, &d.created_at, &NewDraft { rerun_of, ..d.draft.clone() })?.0);
        }
        let mut row_of_version = BTreeMap::new();
        for r in &bundle.reports {
            let addendum_of = r
                .addendum_of_version
                .and_then(|v| row_of_version.get(&v).copied());
            tx.execute(
                "INSERT INTO reports (session_id, version, text, status, signed_at, created_at, addendum_of, origins_json, from_draft)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                params![
                    id.0,
                    r.version,
                    r.text,
                    r.status,
                    r.signed_at,
                    r.created_at,
                    addendum_of,
                    r.origins.as_ref().and_then(|o| serde_json::to_string(o).ok()),
                    // Validated: the index names one of the bundle's drafts.
                    r.from_draft_index.and_then(|i| draft_rows.get(i).copied())
                ],
            )?;
            row_of_version.insert(r.version, tx.last_insert_rowid());
        }
        for m in &bundle.measurements {
            // Validated: on one of the bundle's images, inside it.
            measurements::insert(&tx, id, &m.created_at, &m.measurement())?;
        }
        audit(
            &tx,
            id,
            &at,
            "imported",
            json!({ "images": images.len(), "drafts": bundle.drafts.len(), "reports": bundle.reports.len() }),
        )?;
        tx.commit()?;
        Ok(id)
    }
}

/// The decoded bytes of a bundle's files, each with its sha256.
type Files = Vec<(String, Vec<u8>)>;

/// Every check a bundle must pass; returns the decoded images and model inputs.
fn validate(b: &Bundle) -> Result<(Files, Files), String> {
    let text = |what: &str, s: &str, max: usize| {
        if s.len() > max {
            Err(format!("its {what} is longer than {} KB", max >> 10))
        } else {
            Ok(())
        }
    };
    let time = |what: &str, s: &str| {
        if is_timestamp(s) {
            Ok(())
        } else {
            Err(format!(
                "its {what} is not a time (\"{}\")",
                s.chars().take(40).collect::<String>()
            ))
        }
    };
    text("title", &b.session.title, 4096)?;
    time("creation time", &b.session.created_at)?;
    time("change time", &b.session.updated_at)?;
    if !["open", "drafted", "preliminary", "final"].contains(&b.session.status.as_str()) {
        return Err(format!(
            "its status \"{}\" is unknown",
            b.session.status.chars().take(20).collect::<String>()
        ));
    }
    for (what, s) in [
        ("indication", &b.notes.indication),
        ("history", &b.notes.history),
        ("comparison", &b.notes.comparison),
        ("notes", &b.notes.free_text),
    ] {
        text(what, s, MAX_TEXT)?;
    }
    if b.images.len() > 1000 || b.model_inputs.len() > MAX_ITEMS || b.drafts.len() > MAX_ITEMS || b.reports.len() > MAX_ITEMS {
        return Err("it holds more images, drafts or reports than a session can".into());
    }
    let mut seen = BTreeSet::new();
    let mut images = Vec::with_capacity(b.images.len());
    for (i, image) in b.images.iter().enumerate() {
        if !is_sha256(&image.sha256) || !image.model_input_sha256.as_deref().is_none_or(is_sha256) {
            return Err(format!("image {} has a malformed hash", i + 1));
        }
        if !image.tags.is_object() {
            return Err(format!("image {} has no tags object", i + 1));
        }
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(&image.data)
            .map_err(|_| format!("image {} is not valid base64", i + 1))?;
        if sha256_hex(&bytes) != image.sha256 {
            return Err(format!(
                "image {} does not match its sha256 (the file is damaged or was altered)",
                i + 1
            ));
        }
        if !seen.insert(image.sha256.clone()) {
            return Err(format!("image {} appears twice", i + 1));
        }
        images.push((image.sha256.clone(), bytes));
    }
    for (i, d) in b.drafts.iter().enumerate() {
        let n = i + 1;
        time(&format!("draft {n}'s time"), &d.created_at)?;
        text(&format!("draft {n}"), &d.draft.text, MAX_TEXT)?;
        text(&format!("draft {n}'s prompt"), &d.draft.prompt, MAX_PROMPT)?;
        for (what, s) in [
            ("model", &d.draft.model_id),
            ("weights hash", &d.draft.weights_sha256),
            ("quantization", &d.draft.quantization),
            ("device", &d.draft.device),
            ("app version", &d.draft.app_version),
            ("stop reason", &d.draft.stop_reason),
        ] {
            text(&format!("draft {n}'s {what}"), s, 4096)?;
        }
        if let Some(t) = &d.draft.thinking {
            text(&format!("draft {n}'s thinking"), t, MAX_TEXT)?;
        }
        if d.draft.model_input_sha256.as_ref().is_some_and(|h| h.len() != 64 || !h.bytes().all(|b| b.is_ascii_hexdigit())) {
            return Err(format!("draft {n}'s model-input hash is not a sha256"));
        }
        // The images a draft saw are the bundle's own, at their own places.
        let seen_here = |v: &crate::store::DraftView| b.images.get(v.position as usize).is_some_and(|i| i.sha256 == v.image_sha256);
        if d.draft.views.len() > b.images.len() || !d.draft.views.iter().all(seen_here) {
            return Err(format!("draft {n} names an image the bundle does not hold at that place"));
        }
        if d.draft.prompt_ids.len() > MAX_PROMPT || d.draft.token_ids.len() > MAX_TEXT {
            return Err(format!("draft {n} lists more token ids than a draft can have"));
        }
        if d.rerun_of_index.is_some_and(|r| r >= i) {
            return Err(format!("draft {n} is a re-run of a draft that does not come before it"));
        }
    }
    if b.measurements.len() > 10_000 {
        return Err("it holds more measurements than a session can have".into());
    }
    for (i, m) in b.measurements.iter().enumerate() {
        let n = i + 1;
        let image = b.images.iter().find(|im| im.sha256 == m.image_sha256).ok_or_else(|| format!("measurement {n} is on an image the bundle does not hold"))?;
        measurements::check(&m.measurement(), &image.tags).map_err(|why| format!("measurement {n} cannot be right: {why}"))?;
        time(&format!("measurement {n}'s time"), &m.created_at)?;
    }
    let named: BTreeSet<&String> = b.drafts.iter().filter_map(|d| d.draft.model_input_sha256.as_ref()).collect();
    let mut model_inputs = Vec::with_capacity(b.model_inputs.len());
    for (i, input) in b.model_inputs.iter().enumerate() {
        let n = i + 1;
        if !named.contains(&input.sha256) || model_inputs.iter().any(|(sha, _)| sha == &input.sha256) {
            return Err(format!("model-input image {n} is not named by any draft, or appears twice"));
        }
        let png = base64::engine::general_purpose::STANDARD
            .decode(&input.data)
            .map_err(|_| format!("model-input image {n} is not valid base64"))?;
        model_input_png::decode(&png, &input.sha256).map_err(|why| format!("model-input image {n} is damaged or was altered: {why}"))?;
        model_inputs.push((input.sha256.clone(), png));
    }
    let mut finals = BTreeSet::new();
    for (i, r) in b.reports.iter().enumerate() {
        if r.version != i as i64 + 1 {
            return Err("its report versions are not numbered 1, 2, 3, …".into());
        }
        text(&format!("report version {}", r.version), &r.text, MAX_TEXT)?;
        time("report time", &r.created_at)?;
        match (r.status.as_str(), &r.signed_at) {
            ("draft", None) => {}
            ("preliminary" | "final", Some(at)) => time("sign-off time", at)?,
            _ => {
                return Err(format!(
                    "report version {} has an impossible status or sign-off",
                    r.version
                ))
            }
        }
        if let Some(of) = r.addendum_of_version {
            if !finals.contains(&of) {
                return Err(format!(
                    "report version {} is an addendum to a report that is not final",
                    r.version
                ));
            }
        }
        if r.from_draft_index.is_some_and(|i| i >= b.drafts.len()) {
            return Err(format!("report version {} names a draft the bundle does not have", r.version));
        }
        if r.status == "final" && r.addendum_of_version.is_none() {
            finals.insert(r.version);
        }
    }
    Ok((images, model_inputs))
}

/// `YYYY-MM-DDTHH:MM:SS.mmmZ`, as the store writes times.
fn is_timestamp(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 24
        && b.iter().enumerate().all(|(i, c)| match i {
            4 | 7 => *c == b'-',
            10 => *c == b'T',
            13 | 16 => *c == b':',
            19 => *c == b'.',
            23 => *c == b'Z',
            _ => c.is_ascii_digit(),
        })
}

/// Writes JSON to a temporary file next to `out`, syncs it and renames it into
/// place, so a failed export never leaves half a bundle under the real name.
fn write_private(out: &Path, bundle: &Bundle) -> std::io::Result<()> {
    let dir = match out.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => std::path::PathBuf::from("."),
    };
    let name = out
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "bundle".into());
    let tmp = dir.join(format!(".{name}.partial"));
    let result = (|| {
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut file = std::io::BufWriter::new(options.open(&tmp)?);
        serde_json::to_writer(&mut file, bundle)?;
        let file = file.into_inner().map_err(|e| e.into_error())?;
        file.sync_all()?;
        std::fs::rename(&tmp, out)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}
