//! The signed report out of the app: Markdown (for people), and FHIR R4 (for
//! systems) as a `collection` Bundle of the `DiagnosticReport`, the AI model
//! as a `Device`, and a `Provenance` saying the model wrote the draft the
//! report started from. Provenance, not an extension: it is FHIR's own
//! resource for "who or what made this", which any FHIR server understands
//! and HL7's AI-transparency guidance builds on; an extension would be
//! invisible to every system that does not know it. A PDF is the report view
//! printed from the window.

use base64::Engine;
use serde_json::{json, Value};

use crate::store::{Draft, Report, SessionDetail};

/// Writes an export readable by the user only (it holds clinical text).
pub fn write_private(path: &std::path::Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path)?;
    file.write_all(bytes)?;
    file.sync_all()
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

/// The report as Markdown, with its status, notes, addenda and AI provenance.
pub fn markdown(s: &SessionDetail) -> String {
    let (main, addenda) = report_parts(s);
    let mut out = format!("# {}\n\n", s.summary.title);
    match main {
        Some(r) => {
            out.push_str(&format!("**Status:** {}", status_words(&r.status)));
            if let Some(at) = &r.signed_at {
                out.push_str(&format!(", signed {at}"));
            }
            out.push_str(&format!(" (version {})\n\n", r.version));
        }
        None => out.push_str("**Status:** no report written yet\n\n"),
    }
    let n = &s.notes;
    let notes: Vec<String> = [("Indication", &n.indication), ("Clinical history", &n.history), ("Comparison", &n.comparison), ("Notes", &n.free_text)]
        .iter()
        .filter(|(_, v)| !v.trim().is_empty())
        .map(|(k, v)| format!("- **{k}:** {}", v.trim()))
        .collect();
    if !notes.is_empty() {
        out.push_str(&format!("## Case notes\n\n{}\n\n", notes.join("\n")));
    }
    out.push_str("## Report\n\n");
    out.push_str(main.map_or("", |r| r.text.trim()));
    out.push_str("\n\n");
    for a in &addenda {
        out.push_str(&format!("## Addendum ({}{})\n\n{}\n\n", status_words(&a.status), a.signed_at.as_ref().map(|t| format!(", signed {t}")).unwrap_or_default(), a.text.trim()));
    }
    out.push_str("---\n\n");
    if main.is_none_or(|r| r.status == "draft") {
        out.push_str("**AI-generated draft — not reviewed by a clinician.**\n\n");
    }
    match source_draft(s, main) {
        Some(d) => out.push_str(&format!(
            "Started from an AI draft by {} ({}, {}), weights sha256 {}, template \"{}\", seed {}, made {} with MedGemma Desk {}. \
             The clinician reviewed and edited it before signing.\n",
            d.draft.model_id, d.draft.quantization, d.draft.device, d.draft.weights_sha256, d.draft.template, d.draft.seed, d.created_at, d.draft.app_version
        )),
        None => out.push_str(&format!("Written by the clinician in MedGemma Desk {}.\n", crate::version::APP_VERSION)),
    }
    // Each signed version's sentences with their origin, as frozen at its sign-off.
    for r in main.into_iter().chain(addenda.iter().copied()) {
        let Some(origins) = r.origins.as_ref().filter(|o| !o.is_empty()) else { continue };
        let what = if r.addendum_of.is_some() { "addendum" } else { "report" };
        out.push_str(&format!("\n**Origin of each sentence of the {what}, version {} (fixed at sign-off):**\n\n", r.version));
        for s in origins {
            let origin = match s.origin {
                crate::attribution::Origin::Ai => "AI draft, unchanged",
                crate::attribution::Origin::Edited => "AI draft, edited by the clinician",
                crate::attribution::Origin::Clinician => "the clinician",
            };
            out.push_str(&format!("- {} — *{origin}*\n", s.text));
        }
    }
    out
}

/// A random UUID (version 4) as a `urn:uuid:` reference.
fn urn_uuid() -> String {
    let b: [u8; 16] = rand::random();
    let h: String = b.iter().enumerate().map(|(i, x)| {
        let x = match i {
            6 => (x & 0x0f) | 0x40,
            8 => (x & 0x3f) | 0x80,
            _ => *x,
        };
        format!("{x:02x}")
    }).collect();
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

/// The report as a FHIR R4 `Bundle` (type `collection`).
pub fn fhir(s: &SessionDetail) -> Value {
    let (main, addenda) = report_parts(s);
    let status = match main.map(|r| r.status.as_str()) {
        Some("final") if !addenda.is_empty() => "amended",
        Some("final") => "final",
        Some("preliminary") => "preliminary",
        _ => "partial",
    };
    let md = markdown(s);
    let report_ref = urn_uuid();
    let mut text = main.map(|r| r.text.clone()).unwrap_or_default();
    for a in &addenda {
        text.push_str(&format!("\n\nAddendum: {}", a.text.trim()));
    }
    let mut report = json!({
        "resourceType": "DiagnosticReport",
        "status": status,
        "category": [{ "coding": [{ "system": "http://terminology.hl7.org/CodeSystem/v2-0074", "code": "RAD", "display": "Radiology" }] }],
        "code": { "coding": [{ "system": "http://loinc.org", "code": "18748-4", "display": "Diagnostic imaging study" }], "text": s.summary.title },
        "conclusion": conclusion(&text),
        "presentedForm": [{
            "contentType": "text/markdown; charset=utf-8",
            "language": "en",
            "title": s.summary.title,
            "data": base64::engine::general_purpose::STANDARD.encode(md.as_bytes()),
        }],
    });
    if let Some(at) = main.and_then(|r| r.signed_at.clone()) {
        report["issued"] = json!(at);
    }
    let mut entries = vec![json!({ "fullUrl": report_ref, "resource": report })];
    if let Some(d) = source_draft(s, main) {
        let device_ref = urn_uuid();
        entries.push(json!({
            "fullUrl": device_ref,
            "resource": {
                "resourceType": "Device",
                "deviceName": [{ "name": d.draft.model_id, "type": "model-name" }],
                "version": [{ "value": format!("weights sha256 {}", d.draft.weights_sha256) }],
                "note": [{ "text": format!("{} on {}, run by MedGemma Desk {}", d.draft.quantization, d.draft.device, d.draft.app_version) }],
            }
        }));
        entries.push(json!({
            "fullUrl": urn_uuid(),
            "resource": {
                "resourceType": "Provenance",
                "target": [{ "reference": report_ref }],
                "recorded": d.created_at,
                "activity": { "text": "AI-generated draft, reviewed and edited by a clinician" },
                "agent": [{
                    "type": { "coding": [{ "system": "http://terminology.hl7.org/CodeSystem/provenance-participant-type", "code": "author", "display": "Author" }] },
                    "who": { "reference": device_ref, "display": d.draft.model_id },
                }],
                "entity": [{
                    "role": "source",
                    "what": { "display": format!("AI draft {} (template \"{}\", seed {}, {} prompt tokens)", d.id, d.draft.template, d.draft.seed, d.draft.prompt_tokens) },
                }],
            }
        }));
    }
    json!({ "resourceType": "Bundle", "type": "collection", "timestamp": crate::store::now(), "entry": entries })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{NewDraft, Notes, SignOff, Store};

    fn signed_session() -> (tempfile::TempDir, SessionDetail) {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(dir.path()).unwrap();
        let id = store.create_session("CR CHEST PA").unwrap();
        store.save_notes(id, &Notes { indication: "Cough".into(), ..Default::default() }).unwrap();
        let draft = NewDraft {
            model_id: "medgemma-4b-it".into(),
            weights_sha256: "ab".repeat(32),
            quantization: "bf16".into(),
            device: "cuda".into(),
            app_version: crate::version::APP_VERSION.into(),
            prompt: "p".into(),
            params: json!({}),
            seed: 3,
            prompt_tokens: 300,
            generated_tokens: 50,
            timings: json!({}),
            stop_reason: "end_of_turn".into(),
            text: "FINDINGS: clear.\nIMPRESSION: Normal.".into(),
            template: "chest-xray-report".into(),
            question: None,
            error: None,
            ..Default::default()
        };
        let d = store.add_draft(id, &draft).unwrap();
        store.save_report_from_draft(id, "FINDINGS: clear lungs.\nIMPRESSION: No acute disease.", d).unwrap();
        store.sign_report(id, SignOff::Final).unwrap();
        let detail = store.session(id).unwrap().unwrap();
        (dir, detail)
    }

    #[test]
    fn markdown_has_status_report_and_provenance() {
        let (_d, s) = signed_session();
        let md = markdown(&s);
        assert!(md.contains("**Status:** Final, signed"), "{md}");
        assert!(md.contains("IMPRESSION: No acute disease."));
        assert!(md.contains("- **Indication:** Cough"));
        assert!(md.contains("Started from an AI draft by medgemma-4b-it (bf16, cuda)"), "{md}");
        assert!(!md.contains("not reviewed"), "a signed report is not labelled unreviewed");
    }

    #[test]
    fn fhir_bundle_holds_report_device_and_provenance() {
        let (_d, s) = signed_session();
        let b = fhir(&s);
        assert_eq!(b["resourceType"], "Bundle");
        let entries = b["entry"].as_array().unwrap();
        let kinds: Vec<&str> = entries.iter().map(|e| e["resource"]["resourceType"].as_str().unwrap()).collect();
        assert_eq!(kinds, ["DiagnosticReport", "Device", "Provenance"]);
        let report = &entries[0]["resource"];
        assert_eq!(report["status"], "final");
        assert_eq!(report["conclusion"], "No acute disease.");
        let md = base64::engine::general_purpose::STANDARD.decode(report["presentedForm"][0]["data"].as_str().unwrap()).unwrap();
        assert!(String::from_utf8(md).unwrap().contains("clear lungs"));
        assert_eq!(entries[2]["resource"]["target"][0]["reference"], entries[0]["fullUrl"]);
        assert_eq!(entries[2]["resource"]["agent"][0]["who"]["reference"], entries[1]["fullUrl"]);
        assert!(entries[0]["fullUrl"].as_str().unwrap().starts_with("urn:uuid:"));
    }
}
