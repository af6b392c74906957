//! The signed report out of the app, in three forms: Markdown (for people to
//! paste), PDF (for people to print and file, written by the app itself) and
//! FHIR R4 (for systems). Each carries the report, its status, the AI-draft
//! statement and each sentence's origin as frozen at sign-off. The session's
//! original image file is read for what the rows do not hold: the patient's
//! identity (FHIR's subject) and the thumbnail (PDF).

mod fhir;
mod markdown;
mod pdf;

use std::path::Path;

pub use fhir::fhir;
pub use markdown::markdown;
pub use pdf::pdf;

use crate::attribution::Origin;
use crate::imaging::{Image, PatientTags};
use crate::store::{Draft, Report, SessionDetail};

/// The forms a report can be exported in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Markdown,
    Pdf,
    Fhir,
}

impl Format {
    /// The name used by the CLI, the window and the audit log.
    pub fn parse(name: &str) -> Option<Format> {
        match name {
            "markdown" => Some(Format::Markdown),
            "pdf" => Some(Format::Pdf),
            "fhir" => Some(Format::Fhir),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Format::Markdown => "markdown",
            Format::Pdf => "pdf",
            Format::Fhir => "fhir",
        }
    }

    pub fn extension(self) -> &'static str {
        match self {
            Format::Markdown => "md",
            Format::Pdf => "pdf",
            Format::Fhir => "json",
        }
    }

    /// What a Save dialog calls the file type.
    pub fn label(self) -> &'static str {
        match self {
            Format::Markdown => "Markdown",
            Format::Pdf => "PDF",
            Format::Fhir => "FHIR R4 JSON",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error("the PDF could not be made: {0}")]
    Pdf(String),
    #[error("the FHIR JSON could not be written: {0}")]
    Json(#[from] serde_json::Error),
}

/// The report of session `s` in `format`, as the bytes of the file.
/// `data_dir` is the store's folder, where the original images are kept.
pub fn report(format: Format, s: &SessionDetail, data_dir: &Path) -> Result<Vec<u8>, ExportError> {
    Ok(match format {
        Format::Markdown => markdown(s).into_bytes(),
        Format::Fhir => {
            let image = first_image(s, data_dir);
            serde_json::to_vec_pretty(&fhir(s, image.as_ref().map(|i| &i.patient), image.as_ref().and_then(|i| i.tags.study_date.as_deref())))?
        }
        Format::Pdf => pdf(s, first_image(s, data_dir).as_ref())?,
    })
}

/// Writes an export readable by the user only (it holds clinical text).
pub fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

/// The session's first stored image that still opens. An image whose file
/// is gone or unreadable is passed over: the report itself is in the rows,
/// and the export says when the patient could not be identified.
fn first_image(s: &SessionDetail, data_dir: &Path) -> Option<Image> {
    s.images.iter().find_map(|i| crate::imaging::open_file(&data_dir.join(&i.stored_path)).ok())
}

/// The report proper (newest non-addendum version) and the signed addenda after it.
fn report_parts(s: &SessionDetail) -> (Option<&Report>, Vec<&Report>) {
    let main = s.reports.iter().rev().find(|r| r.addendum_of.is_none());
    let addenda = s.reports.iter().filter(|r| r.addendum_of.is_some() && r.status != "draft").collect();
    (main, addenda)
}

fn source_draft<'a>(s: &'a SessionDetail, report: Option<&Report>) -> Option<&'a Draft> {
    let id = report.and_then(|r| r.from_draft)?;
    s.drafts.iter().find(|d| d.id.0 == id)
}

fn status_words(status: &str) -> &'static str {
    match status {
        "final" => "Final",
        "preliminary" => "Preliminary",
        _ => "Not signed (draft)",
    }
}

/// "Final, signed … (version N)": the report's status as every export states it.
fn status_line(main: Option<&Report>) -> String {
    match main {
        Some(r) => format!("{}{} (version {})", status_words(&r.status), signed_words(r), r.version),
        None => "no report written yet".into(),
    }
}

/// ", signed <time>" once a version is signed.
fn signed_words(r: &Report) -> String {
    r.signed_at.as_ref().map(|t| format!(", signed {t}")).unwrap_or_default()
}

/// "Addendum (Final, signed …)".
fn addendum_heading(a: &Report) -> String {
    format!("Addendum ({}{})", status_words(&a.status), signed_words(a))
}

/// The case notes that were filled in, with their labels.
fn case_notes(s: &SessionDetail) -> Vec<(&'static str, &str)> {
    let n = &s.notes;
    [("Indication", &n.indication), ("Clinical history", &n.history), ("Comparison", &n.comparison), ("Notes", &n.free_text)]
        .into_iter()
        .map(|(k, v)| (k, v.trim()))
        .filter(|(_, v)| !v.is_empty())
        .collect()
}

fn origin_words(origin: Origin) -> &'static str {
    match origin {
        Origin::Ai => "AI draft, unchanged",
        Origin::Edited => "AI draft, edited by the clinician",
        Origin::Clinician => "the clinician",
    }
}

/// The sentence saying where the report came from: the AI draft's record
/// (model, quantization, device, weights hash, template, seed), or the clinician.
fn record_words(s: &SessionDetail, main: Option<&Report>) -> String {
    match source_draft(s, main) {
        Some(d) => format!(
            "Started from an AI draft by {} ({}, {}), weights sha256 {}, template \"{}\", seed {}, made {} with MedGemma Desk {}.{} \
             The clinician reviewed and edited it before signing.",
            d.draft.model_id,
            d.draft.quantization,
            d.draft.device,
            d.draft.weights_sha256,
            d.draft.template,
            d.draft.seed,
            d.created_at,
            d.draft.app_version,
            seen_words(s, &d.draft)
        ),
        None => format!("Written by the clinician in MedGemma Desk {}.", crate::version::APP_VERSION),
    }
}

/// Which image and frame the draft's model saw, where the session has more
/// than one of either (" The model saw image 2 of 3 (LAT.dcm), frame 5 of
/// 30."); nothing for one single-frame image.
fn seen_words(s: &SessionDetail, d: &crate::store::NewDraft) -> String {
    let Some(v) = d.views.first() else { return String::new() };
    let image = s.images.iter().find(|i| i.sha256 == v.image_sha256);
    let frames = image.and_then(|i| i.tags.get("frames")).and_then(serde_json::Value::as_u64).unwrap_or(1);
    let name = image.and_then(|i| i.tags.get("file_name")).and_then(serde_json::Value::as_str).filter(|n| !n.is_empty());
    let mut parts = Vec::new();
    if s.images.len() > 1 {
        parts.push(format!("image {} of {}{}", v.position + 1, s.images.len(), name.map(|n| format!(" ({n})")).unwrap_or_default()));
    }
    if frames > 1 || v.frame > 0 {
        parts.push(format!("frame {} of {frames}", v.frame + 1));
    }
    if parts.is_empty() {
        return String::new();
    }
    format!(" The model saw {}.", parts.join(", "))
}

/// The report text and its signed addenda, each with its heading, in order:
/// what every export shows as the report.
fn signed_versions<'a>(main: Option<&'a Report>, addenda: &[&'a Report]) -> Vec<&'a Report> {
    main.into_iter().chain(addenda.iter().copied()).collect()
}

/// A DICOM person name (`Family^Given^Middle^Prefix^Suffix`) as people write it.
fn person_name(dicom: &str) -> String {
    let parts: Vec<&str> = dicom.split('^').map(str::trim).collect();
    let pick = |i: usize| parts.get(i).copied().unwrap_or("");
    [pick(3), pick(1), pick(2), pick(0), pick(4)].iter().filter(|p| !p.is_empty()).copied().collect::<Vec<_>>().join(" ")
}

/// A DICOM date (`YYYYMMDD`) as an ISO date, when it is one.
fn iso_date(dicom: &str) -> Option<String> {
    let d = dicom.trim();
    (d.len() == 8 && d.bytes().all(|b| b.is_ascii_digit())).then(|| format!("{}-{}-{}", &d[..4], &d[4..6], &d[6..]))
}

/// Who the report is about, in words, from the image's patient tags.
fn patient_words(patient: Option<&PatientTags>) -> Option<String> {
    let p = patient?;
    let name = p.patient_name.as_deref().map(person_name).filter(|n| !n.is_empty());
    let id = p.patient_id.as_deref().map(str::trim).filter(|i| !i.is_empty());
    if name.is_none() && id.is_none() {
        return None;
    }
    let mut out = name.unwrap_or_else(|| "Name not recorded".into());
    if let Some(id) = id {
        out.push_str(&format!(", ID {id}"));
    }
    if let Some(born) = p.patient_birth_date.as_deref().and_then(iso_date) {
        out.push_str(&format!(", born {born}"));
    }
    if let Some(sex) = p.patient_sex.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        out.push_str(&format!(", sex {sex}"));
    }
    Some(out)
}

#[cfg(test)]
mod tests;
