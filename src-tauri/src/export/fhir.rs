//! The report as a FHIR R4 `collection` Bundle, for systems:
//!
//! - the `DiagnosticReport` (status, LOINC code, conclusion, the Markdown as
//!   its presented form, the accession number and study date when the image
//!   has them), whose
//!   `subject` is
//! - a `Patient` made from the image's DICOM patient tags (ID, name, birth
//!   date, sex); an image without them gives a Patient that says, in its
//!   narrative, that the patient was not identified, so a receiving system
//!   never files the report under a guessed person;
//! - the AI model as a `Device`, when the report started from an AI draft;
//! - `Provenance` resources saying who wrote what.
//!
//! Provenance, not an extension: it is FHIR's own resource for "who or what
//! made this", which every FHIR server understands and HL7's AI-transparency
//! guidance builds on. Granularity: R4's `Provenance.target` names whole
//! resources and cannot point into a report's text, so one Provenance per
//! sentence would carry the same target and agents many times over. Instead,
//! for each signed version (the report, each addendum) there is one
//! Provenance per origin that occurs in it (AI draft unchanged; AI draft
//! edited by the clinician; the clinician's own), whose agents say who had
//! which part (the model as author and the clinician as verifier; the
//! clinician as author and the model as informant; the clinician alone), and
//! whose narrative lists the sentences it covers, word for word, as frozen at
//! sign-off. A report not yet signed has one Provenance: the AI draft it
//! started from, with the model as its only author.

use base64::Engine;
use serde_json::{json, Value};

use super::{markdown, report_parts, signed_versions, source_draft};
use crate::attribution::Origin;
use crate::imaging::PatientTags;
use crate::store::{Report, SessionDetail};

const PARTICIPANT_TYPE: &str = "http://terminology.hl7.org/CodeSystem/provenance-participant-type";
/// The app has no user accounts: the clinician is who signed in this app.
const CLINICIAN: &str = "The signing clinician (MedGemma Desk user)";

/// A random UUID (version 4) as a `urn:uuid:` reference.
fn urn_uuid() -> String {
    let b: [u8; 16] = rand::random();
    let h: String = b
        .iter()
        .enumerate()
        .map(|(i, x)| {
            let x = match i {
                6 => (x & 0x0f) | 0x40,
                8 => (x & 0x3f) | 0x80,
                _ => *x,
            };
            format!("{x:02x}")
        })
        .collect();
    format!("urn:uuid:{}-{}-{}-{}-{}", &h[..8], &h[8..12], &h[12..16], &h[16..20], &h[20..])
}

/// The IMPRESSION section when the report has one, else the whole text.
fn conclusion(text: &str) -> String {
    // Byte search, ASCII case-insensitive: the match is ASCII, so its ends are char boundaries.
    match text.as_bytes().windows(10).position(|w| w.eq_ignore_ascii_case(b"IMPRESSION")) {
        Some(i) => text[i + "IMPRESSION".len()..].trim_start_matches(|c: char| matches!(c, ':' | '*' | '#' | '-') || c.is_whitespace()).trim().to_string(),
        None => text.trim().to_string(),
    }
}

/// Text for an XHTML narrative.
fn xhtml_escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

/// A generated narrative: a heading and, when given, a list.
fn narrative(heading: &str, items: &[&str]) -> Value {
    let mut div = format!("<div xmlns=\"http://www.w3.org/1999/xhtml\"><p>{}</p>", xhtml_escape(heading));
    if !items.is_empty() {
        div.push_str("<ul>");
        for i in items {
            div.push_str(&format!("<li>{}</li>", xhtml_escape(i)));
        }
        div.push_str("</ul>");
    }
    div.push_str("</div>");
    json!({ "status": "generated", "div": div })
}

fn agent(code: &str, display: &str, who: Value) -> Value {
    json!({ "type": { "coding": [{ "system": PARTICIPANT_TYPE, "code": code, "display": display }] }, "who": who })
}

/// The Patient resource from the image's DICOM patient tags.
fn patient(tags: Option<&PatientTags>) -> Value {
    let mut p = json!({ "resourceType": "Patient" });
    let t = tags.cloned().unwrap_or_default();
    let clean = |v: &Option<String>| v.as_deref().map(str::trim).filter(|s| !s.is_empty()).map(str::to_string);
    let (id, name) = (clean(&t.patient_id), clean(&t.patient_name));
    if let Some(id) = &id {
        p["identifier"] = json!([{
            "type": { "coding": [{ "system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "MR", "display": "Medical record number" }] },
            "value": id,
        }]);
    }
    if let Some(n) = &name {
        let parts: Vec<&str> = n.split('^').map(str::trim).collect();
        let mut human = json!({ "text": super::person_name(n) });
        if let Some(family) = parts.first().filter(|f| !f.is_empty()) {
            human["family"] = json!(family);
        }
        let given: Vec<&str> = parts.iter().skip(1).take(2).filter(|g| !g.is_empty()).copied().collect();
        if !given.is_empty() {
            human["given"] = json!(given);
        }
        p["name"] = json!([human]);
    }
    if let Some(born) = clean(&t.patient_birth_date).as_deref().and_then(super::iso_date) {
        p["birthDate"] = json!(born);
    }
    // PS3.3 C.7.1.1 Patient's Sex: M, F, O; FHIR's AdministrativeGender.
    if let Some(sex) = clean(&t.patient_sex) {
        p["gender"] = json!(match sex.to_ascii_uppercase().as_str() {
            "M" => "male",
            "F" => "female",
            "O" => "other",
            _ => "unknown",
        });
    }
    if id.is_none() && name.is_none() {
        p["text"] = narrative("Patient not identified: the image carried no patient name or ID. Identify the patient before filing this report.", &[]);
    }
    p
}

/// The Provenance resources of one signed version: one per origin present.
fn version_provenance(r: &Report, report_ref: &str, device: Option<(&str, &str)>, draft_words: Option<&str>) -> Vec<Value> {
    let Some(origins) = r.origins.as_ref().filter(|o| !o.is_empty()) else { return Vec::new() };
    let what = if r.addendum_of.is_some() { format!("addendum (version {})", r.version) } else { format!("report, version {}", r.version) };
    let clinician = json!({ "display": CLINICIAN });
    let model = |(reference, name): (&str, &str)| json!({ "reference": reference, "display": name });
    let mut out = Vec::new();
    for origin in [Origin::Ai, Origin::Edited, Origin::Clinician] {
        let sentences: Vec<&str> = origins.iter().filter(|s| s.origin == origin).map(|s| s.text.as_str()).collect();
        if sentences.is_empty() {
            continue;
        }
        let (heading, agents) = match (origin, device) {
            (Origin::Ai, Some(d)) => (
                format!("Sentences of the {what} written by the AI model, unchanged, and verified by the signing clinician:"),
                vec![agent("author", "Author", model(d)), agent("verifier", "Verifier", clinician.clone())],
            ),
            (Origin::Edited, Some(d)) => (
                format!("Sentences of the {what} the clinician wrote by editing the AI model's draft:"),
                vec![agent("author", "Author", clinician.clone()), agent("informant", "Informant", model(d))],
            ),
            _ => (format!("Sentences of the {what} written by the clinician:"), vec![agent("author", "Author", clinician.clone())]),
        };
        let mut p = json!({
            "resourceType": "Provenance",
            "text": narrative(&heading, &sentences),
            "target": [{ "reference": report_ref }],
            "recorded": r.signed_at.clone().unwrap_or_else(|| r.created_at.clone()),
            "activity": { "text": format!("Signed {} {what}", if r.status == "final" { "final" } else { "preliminary" }) },
            "agent": agents,
        });
        if let (Origin::Ai | Origin::Edited, Some(words)) = (origin, draft_words) {
            p["entity"] = json!([{ "role": "source", "what": { "display": words } }]);
        }
        out.push(p);
    }
    out
}

/// The report as a FHIR R4 `Bundle` (type `collection`); `patient_tags` and
/// `study_date` (DICOM `YYYYMMDD`) are the image's, when an image could be read.
pub fn fhir(s: &SessionDetail, patient_tags: Option<&PatientTags>, study_date: Option<&str>) -> Value {
    let (main, addenda) = report_parts(s);
    let status = match main.map(|r| r.status.as_str()) {
        Some("final") if !addenda.is_empty() => "amended",
        Some("final") => "final",
        Some("preliminary") => "preliminary",
        _ => "partial",
    };
    let md = markdown(s);
    let report_ref = urn_uuid();
    let patient_ref = urn_uuid();
    let mut text = main.map(|r| r.text.clone()).unwrap_or_default();
    for a in &addenda {
        text.push_str(&format!("\n\nAddendum: {}", a.text.trim()));
    }
    let patient = patient(patient_tags);
    let subject_display = patient["name"][0]["text"].as_str().map(str::to_string).unwrap_or_else(|| "Patient not identified".into());
    let mut report = json!({
        "resourceType": "DiagnosticReport",
        "status": status,
        "category": [{ "coding": [{ "system": "http://terminology.hl7.org/CodeSystem/v2-0074", "code": "RAD", "display": "Radiology" }] }],
        "code": { "coding": [{ "system": "http://loinc.org", "code": "18748-4", "display": "Diagnostic imaging study" }], "text": s.summary.title },
        "subject": { "reference": patient_ref, "display": subject_display },
        "conclusion": conclusion(&text),
        "presentedForm": [{
            "contentType": "text/markdown; charset=utf-8",
            "language": "en",
            "title": s.summary.title,
            "data": base64::engine::general_purpose::STANDARD.encode(md.as_bytes()),
        }],
    });
    if let Some(acc) = patient_tags.and_then(|t| t.accession_number.as_deref()).map(str::trim).filter(|a| !a.is_empty()) {
        report["identifier"] = json!([{
            "type": { "coding": [{ "system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "ACSN", "display": "Accession ID" }] },
            "value": acc,
        }]);
    }
    if let Some(at) = main.and_then(|r| r.signed_at.clone()) {
        report["issued"] = json!(at);
    }
    // When the study was made (what the report is about), beside when it was issued.
    if let Some(date) = study_date.and_then(super::iso_date) {
        report["effectiveDateTime"] = json!(date);
    }
    let mut entries = vec![json!({ "fullUrl": report_ref, "resource": report }), json!({ "fullUrl": patient_ref, "resource": patient })];
    let draft = source_draft(s, main);
    let device_ref = urn_uuid();
    let draft_words = draft.map(|d| format!("AI draft {} (template \"{}\", seed {}, {} prompt tokens)", d.id, d.draft.template, d.draft.seed, d.draft.prompt_tokens));
    if let Some(d) = draft {
        entries.push(json!({
            "fullUrl": device_ref,
            "resource": {
                "resourceType": "Device",
                "deviceName": [{ "name": d.draft.model_id, "type": "model-name" }],
                "version": [{ "value": format!("weights sha256 {}", d.draft.weights_sha256) }],
                "note": [{ "text": format!("{} on {}, run by MedGemma Desk {}", d.draft.quantization, d.draft.device, d.draft.app_version) }],
            }
        }));
    }
    let device = draft.map(|d| (device_ref.as_str(), d.draft.model_id.as_str()));
    let mut provenance: Vec<Value> = signed_versions(main, &addenda).into_iter().flat_map(|r| version_provenance(r, &report_ref, device, draft_words.as_deref())).collect();
    if provenance.is_empty() {
        // Not signed (or signed before origins were kept): the draft's own record.
        if let (Some(d), Some((device_ref, name))) = (draft, device) {
            provenance.push(json!({
                "resourceType": "Provenance",
                "target": [{ "reference": report_ref }],
                "recorded": d.created_at,
                "activity": { "text": "AI-generated draft" },
                "agent": [agent("author", "Author", json!({ "reference": device_ref, "display": name }))],
                "entity": [{ "role": "source", "what": { "display": draft_words.clone().unwrap_or_default() } }],
            }));
        }
    }
    entries.extend(provenance.into_iter().map(|p| json!({ "fullUrl": urn_uuid(), "resource": p })));
    json!({ "resourceType": "Bundle", "type": "collection", "timestamp": crate::store::now(), "entry": entries })
}
