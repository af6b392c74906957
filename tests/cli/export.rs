//! The report's exports as other people's tools read them: the FHIR Bundle
//! through FHIR.js and HL7's FHIRPath engine (tests/fhir/validate.js, pinned
//! packages that `make test` installs), the PDF through poppler's `pdftotext`
//! and `pdftoppm`. Each starts from a real DICOM file (its patient tags give
//! FHIR's subject) and a report signed from an AI draft, with an addendum.

use std::path::{Path, PathBuf};
use std::process::Command;

use medgemma_desk::store::{NewDraft, Notes, SessionId, SignOff, Store};
use serde_json::{json, Value};

use crate::{medgemma_desk, stderr, stdout};

const DRAFT: &str = "FINDINGS: The lungs are clear. No pleural effusion. The heart size is normal.\nIMPRESSION: No acute cardiopulmonary disease.";
const REPORT: &str = "FINDINGS: The lungs are clear. No pleural effusion is seen. The heart size is normal.\nIMPRESSION: No acute cardiopulmonary disease.\nOld healed fracture of the left clavicle.";
const ADDENDUM: &str = "Addendum: compared with the prior study of 2004, the fracture is unchanged.";

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// A session on a real DICOM file (patient CompressedSamples^RG3, ID 11RG3),
/// its report started from an AI draft, edited, signed final, and an addendum signed.
fn signed_dicom_session(dir: &Path, report: &str) -> SessionId {
    std::fs::create_dir_all(dir).unwrap();
    let mut store = Store::open(dir).unwrap();
    let id = store.create_session("CR CHEST AP").unwrap();
    let bytes = std::fs::read(crate::privacy::dicom()).unwrap();
    store.add_image(id, &bytes, &json!({ "modality": "CR" })).unwrap();
    store.save_notes(id, &Notes { indication: "Fall, chest pain".into(), ..Default::default() }).unwrap();
    let draft = NewDraft {
        model_id: "medgemma-4b-it".into(),
        weights_sha256: "c0ffee".repeat(10) + "abcd",
        quantization: "Q4_K_M".into(),
        device: "cpu".into(),
        app_version: "0.1.0".into(),
        prompt: "p".into(),
        params: json!({}),
        seed: 7,
        prompt_tokens: 310,
        generated_tokens: 40,
        text: DRAFT.into(),
        template: "chest-xray-report".into(),
        ..Default::default()
    };
    let d = store.add_draft(id, &draft).unwrap();
    store.save_report_from_draft(id, report, d).unwrap();
    store.sign_report(id, SignOff::Final).unwrap();
    store.save_report(id, ADDENDUM).unwrap();
    store.sign_report(id, SignOff::Final).unwrap();
    id
}

fn export(data: &Path, id: SessionId, format: &str, file: &Path) {
    let out = medgemma_desk(&["--data-dir", data.to_str().unwrap(), "sessions", "export", &id.to_string(), "--format", format, "-o", file.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("Exported the report"), "{}", stdout(&out));
}

/// Runs the independent validator on `bundle`: (passed, what it printed).
fn validate(dir: &Path, name: &str, bundle: &Value) -> (bool, String) {
    let script = repo().join("tests/fhir/validate.js");
    assert!(
        repo().join("tests/fhir/node_modules/fhir").exists() && repo().join("tests/fhir/node_modules/fhirpath").exists(),
        "the FHIR validators are not installed: run `make test` (or `npm --prefix tests/fhir ci`)"
    );
    let file = dir.join(name);
    std::fs::write(&file, serde_json::to_vec_pretty(bundle).unwrap()).unwrap();
    let out = Command::new("node").arg(&script).arg(&file).output().expect("node runs");
    (out.status.success(), format!("{}{}", stdout(&out), stderr(&out)))
}

fn resource<'a>(bundle: &'a mut Value, kind: &str) -> &'a mut Value {
    let entries = bundle["entry"].as_array_mut().unwrap();
    let entry = entries.iter_mut().find(|e| e["resource"]["resourceType"] == kind).unwrap();
    &mut entry["resource"]
}

#[test]
fn the_fhir_export_passes_an_independent_r4_validator_and_broken_ones_do_not() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let id = signed_dicom_session(&data, REPORT);
    let file = tmp.path().join("report.json");
    export(&data, id, "fhir", &file);
    let bundle: Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
    let kinds: Vec<&str> = bundle["entry"].as_array().unwrap().iter().map(|e| e["resource"]["resourceType"].as_str().unwrap()).collect();
    assert_eq!(&kinds[..3], ["DiagnosticReport", "Patient", "Device"], "{kinds:?}");
    assert!(kinds[3..].iter().all(|k| *k == "Provenance") && kinds.len() >= 6, "a Provenance per origin per signed version: {kinds:?}");
    let patient = &bundle["entry"][1]["resource"];
    assert_eq!(patient["identifier"][0]["value"], "11RG3", "the subject comes from the DICOM file's Patient ID");
    assert_eq!(patient["birthDate"], "1979-04-08");
    assert_eq!(bundle["entry"][0]["resource"]["status"], "amended", "a final report with an addendum");
    assert_eq!(bundle["entry"][0]["resource"]["effectiveDateTime"], "2004-08-26", "the DICOM Study Date");

    let (ok, said) = validate(tmp.path(), "ok.json", &bundle);
    assert!(ok, "the export is not valid R4:\n{said}");
    assert!(said.starts_with("valid:"), "{said}");

    // Control cases: the same validator must catch a broken export.
    type Break = fn(&mut Value);
    let broken: [(&str, &str, Break); 6] = [
        ("no-subject", "dr-subject", |b| {
            resource(b, "DiagnosticReport").as_object_mut().unwrap().remove("subject");
        }),
        ("subject-elsewhere", "dr-subject-patient", |b| resource(b, "DiagnosticReport")["subject"]["reference"] = json!("urn:uuid:00000000-0000-4000-8000-000000000000")),
        ("bad-status", "DiagnosticReport.status", |b| resource(b, "DiagnosticReport")["status"] = json!("signed")),
        ("not-loinc", "dr-code-loinc", |b| resource(b, "DiagnosticReport")["code"]["coding"][0]["system"] = json!("http://example.org/codes")),
        ("bad-gender", "Patient.gender", |b| resource(b, "Patient")["gender"] = json!("F")),
        ("bad-instant", "fmt-recorded", |b| resource(b, "Provenance")["recorded"] = json!("yesterday")),
    ];
    for (name, expected, change) in broken {
        let mut b = bundle.clone();
        change(&mut b);
        let (ok, said) = validate(tmp.path(), &format!("{name}.json"), &b);
        assert!(!ok, "{name}: a broken export passed the validator:\n{said}");
        assert!(said.contains(expected), "{name}: expected a problem naming {expected}, got:\n{said}");
    }
    let mut b = bundle.clone();
    resource(&mut b, "Patient")["birthdate"] = json!("1979-04-08");
    let (ok, said) = validate(tmp.path(), "misspelt.json", &b);
    assert!(!ok && said.contains("Unexpected property"), "a misspelt element is caught:\n{said}");
}

fn pdftotext(pdf: &Path) -> String {
    let out = Command::new("pdftotext").args(["-enc", "UTF-8"]).arg(pdf).arg("-").output().expect("pdftotext runs (poppler-utils; make test installs it)");
    assert!(out.status.success(), "pdftotext could not read the PDF: {}", stderr(&out));
    // pdftotext breaks lines where the PDF does: join them to compare sentences.
    stdout(&out).split_whitespace().collect::<Vec<_>>().join(" ")
}

#[test]
fn the_pdf_export_is_a_pdf_with_the_report_the_record_and_each_sentences_origin() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let id = signed_dicom_session(&data, REPORT);
    let pdf = tmp.path().join("report.pdf");
    export(&data, id, "pdf", &pdf);
    let bytes = std::fs::read(&pdf).unwrap();
    assert!(bytes.starts_with(b"%PDF-"), "not a PDF");
    let text = pdftotext(&pdf);
    for expected in [
        "Radiology report",
        "CR CHEST AP",
        "Patient: RG3 CompressedSamples, ID 11RG3, born 1979-04-08, sex F",
        "Status: Final, signed",
        "Indication: Fall, chest pain",
        "No pleural effusion is seen.",
        "Old healed fracture of the left clavicle.",
        "Addendum (Final, signed",
        "the fracture is unchanged.",
        "Started from an AI draft by medgemma-4b-it (Q4_K_M, cpu), weights sha256 c0ffee",
        "seed 7",
        "Origin of each sentence of the report",
        "The lungs are clear. — AI draft, unchanged",
        "No pleural effusion is seen. — AI draft, edited by the clinician",
        "Old healed fracture of the left clavicle. — the clinician",
        "Origin of each sentence of the addendum",
        "Image: 1760 × 1760 pixels",
        "page 1 of 1",
    ] {
        assert!(text.contains(expected), "the PDF's text lacks {expected:?}:\n{text}");
    }
    assert!(!text.contains("not reviewed by a clinician"), "a signed report is not labelled unreviewed");

    // Looked at: the first page as a picture has the thumbnail (mid greys, not only text on white).
    let prefix = tmp.path().join("page");
    let out = Command::new("pdftoppm").args(["-r", "40", "-png", "-f", "1", "-l", "1"]).arg(&pdf).arg(&prefix).output().expect("pdftoppm runs");
    assert!(out.status.success(), "pdftoppm could not draw the PDF: {}", stderr(&out));
    let png = std::fs::read_dir(tmp.path()).unwrap().flatten().map(|e| e.path()).find(|p| p.to_string_lossy().contains("page") && p.extension().is_some_and(|e| e == "png")).unwrap();
    let page = image::open(&png).unwrap().to_luma8();
    let greys = page.pixels().filter(|p| (40..215).contains(&p.0[0])).count();
    assert!(greys > 2000, "the page has no image on it ({greys} mid-grey pixels)");
}

#[test]
fn a_long_report_runs_onto_more_pages_and_a_missing_image_file_loses_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let long: String = (1..=90).map(|i| format!("Finding number {i} is described in this sentence of the report.\n")).collect();
    let id = signed_dicom_session(&data, &long);
    // The stored original goes missing: the export still has every word, and says who is not identified.
    for e in walk(&data.join("images")) {
        std::fs::remove_file(e).unwrap();
    }
    let pdf = tmp.path().join("long.pdf");
    export(&data, id, "pdf", &pdf);
    let text = pdftotext(&pdf);
    assert!(text.contains("Finding number 1 is described") && text.contains("Finding number 90 is described"), "{text}");
    assert!(text.contains("page 2 of"), "90 lines do not fit one page:\n{text}");
    assert!(text.contains("Patient not identified in the image"), "{text}");
    let file = tmp.path().join("long.json");
    export(&data, id, "fhir", &file);
    let bundle: Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
    let (ok, said) = validate(tmp.path(), "long-checked.json", &bundle);
    assert!(ok, "{said}");
    assert!(bundle["entry"][1]["resource"]["text"]["div"].as_str().unwrap().contains("Patient not identified"));
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() {
            files.extend(walk(&p));
        } else {
            files.push(p);
        }
    }
    files
}
