use base64::Engine;
use serde_json::json;

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
        text: "FINDINGS: Clear lungs. No pleural effusion is present.\nIMPRESSION: Normal.".into(),
        template: "chest-xray-report".into(),
        question: None,
        error: None,
        ..Default::default()
    };
    let d = store.add_draft(id, &draft).unwrap();
    store.save_report_from_draft(id, "FINDINGS: Clear lungs. No pleural effusion is seen.\nIMPRESSION: Normal.\nOld healed fracture of the left clavicle.", d).unwrap();
    store.sign_report(id, SignOff::Final).unwrap();
    let detail = store.session(id).unwrap().unwrap();
    (dir, detail)
}

fn tags() -> PatientTags {
    PatientTags {
        patient_name: Some("Doe^Jane^Q".into()),
        patient_id: Some("MRN-0042".into()),
        patient_birth_date: Some("19610304".into()),
        patient_sex: Some("F".into()),
        accession_number: Some("ACC77".into()),
        ..Default::default()
    }
}

/// A session of two images, the draft made from frame 5 of the second: the
/// provenance says which; a one-image session's says nothing of it.
#[test]
fn the_provenance_names_the_image_and_frame_the_model_saw() {
    let (_d, one) = signed_session();
    assert!(!markdown(&one).contains("The model saw"), "one single-frame image: nothing to tell apart");
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(dir.path()).unwrap();
    let id = store.create_session("two views").unwrap();
    store.add_image(id, b"PA", &json!({ "file_name": "PA.dcm", "frames": 1 })).unwrap();
    let cine = store.add_image(id, b"cine", &json!({ "file_name": "loop.dcm", "frames": 30 })).unwrap();
    let draft = NewDraft {
        model_id: "medgemma-4b-it".into(),
        text: "FINDINGS: Clear.".into(),
        views: vec![crate::store::DraftView { image_sha256: cine, position: 1, frame: 4 }],
        ..one.drafts[0].draft.clone()
    };
    let d = store.add_draft(id, &draft).unwrap();
    store.save_report_from_draft(id, "FINDINGS: Clear.", d).unwrap();
    store.sign_report(id, SignOff::Final).unwrap();
    let two = store.session(id).unwrap().unwrap();
    let md = markdown(&two);
    assert!(md.contains("The model saw image 2 of 2 (loop.dcm), frame 5 of 30."), "{md}");
}

#[test]
fn markdown_has_status_report_and_provenance() {
    let (_d, s) = signed_session();
    let md = markdown(&s);
    assert!(md.contains("**Status:** Final, signed"), "{md}");
    assert!(md.contains("Old healed fracture of the left clavicle."));
    assert!(md.contains("- **Indication:** Cough"));
    assert!(md.contains("Started from an AI draft by medgemma-4b-it (bf16, cuda)"), "{md}");
    assert!(!md.contains("not reviewed"), "a signed report is not labelled unreviewed");
}

#[test]
fn fhir_bundle_holds_report_patient_device_and_provenance_per_origin() {
    let (_d, s) = signed_session();
    let b = fhir(&s, Some(&tags()), Some("20040826"));
    assert_eq!(b["resourceType"], "Bundle");
    let entries = b["entry"].as_array().unwrap();
    let kinds: Vec<&str> = entries.iter().map(|e| e["resource"]["resourceType"].as_str().unwrap()).collect();
    // AI unchanged ("Clear lungs."), edited ("No pleural effusion is seen."), the clinician's own (the fracture).
    assert_eq!(kinds, ["DiagnosticReport", "Patient", "Device", "Provenance", "Provenance", "Provenance"]);
    let report = &entries[0]["resource"];
    assert_eq!(report["status"], "final");
    assert_eq!(report["conclusion"], "Normal.\nOld healed fracture of the left clavicle.");
    assert_eq!(report["subject"]["reference"], entries[1]["fullUrl"]);
    assert_eq!(report["identifier"][0]["value"], "ACC77");
    assert_eq!(report["effectiveDateTime"], "2004-08-26", "the study date, beside the issue time");
    let md = base64::engine::general_purpose::STANDARD.decode(report["presentedForm"][0]["data"].as_str().unwrap()).unwrap();
    assert!(String::from_utf8(md).unwrap().contains("Clear lungs"));
    let patient = &entries[1]["resource"];
    assert_eq!(patient["identifier"][0]["value"], "MRN-0042");
    assert_eq!(patient["name"][0]["family"], "Doe");
    assert_eq!(patient["name"][0]["given"], json!(["Jane", "Q"]));
    assert_eq!(patient["birthDate"], "1961-03-04");
    assert_eq!(patient["gender"], "female");
    let (ai, edited, own) = (&entries[3]["resource"], &entries[4]["resource"], &entries[5]["resource"]);
    for p in [ai, edited, own] {
        assert_eq!(p["target"][0]["reference"], entries[0]["fullUrl"]);
    }
    assert_eq!(ai["agent"][0]["type"]["coding"][0]["code"], "author");
    assert_eq!(ai["agent"][0]["who"]["reference"], entries[2]["fullUrl"]);
    assert_eq!(ai["agent"][1]["type"]["coding"][0]["code"], "verifier");
    assert!(ai["text"]["div"].as_str().unwrap().contains("<li>FINDINGS: Clear lungs.</li>"), "{ai}");
    assert!(edited["agent"][0]["who"]["display"].as_str().unwrap().contains("clinician"), "{edited}");
    assert!(edited["text"]["div"].as_str().unwrap().contains("No pleural effusion is seen."), "{edited}");
    assert_eq!(own["agent"].as_array().unwrap().len(), 1, "the clinician's own sentences have one agent");
    assert!(own["text"]["div"].as_str().unwrap().contains("Old healed fracture"), "{own}");
    assert!(entries[0]["fullUrl"].as_str().unwrap().starts_with("urn:uuid:"));
}

#[test]
fn fhir_patient_without_identity_says_so() {
    let (_d, s) = signed_session();
    let b = fhir(&s, None, None);
    let patient = &b["entry"][1]["resource"];
    assert!(patient.get("identifier").is_none() && patient.get("name").is_none());
    assert!(patient["text"]["div"].as_str().unwrap().contains("Patient not identified"), "{patient}");
    assert_eq!(b["entry"][0]["resource"]["subject"]["display"], "Patient not identified");
}

#[test]
fn an_unsigned_report_has_the_drafts_provenance_only() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(dir.path()).unwrap();
    let id = store.create_session("CR").unwrap();
    let d = store.add_draft(id, &NewDraft { model_id: "m".into(), text: "IMPRESSION: x.".into(), ..Default::default() }).unwrap();
    store.save_report_from_draft(id, "IMPRESSION: x.", d).unwrap();
    let b = fhir(&store.session(id).unwrap().unwrap(), None, None);
    assert!(b["entry"][0]["resource"].get("effectiveDateTime").is_none());
    let kinds: Vec<&str> = b["entry"].as_array().unwrap().iter().map(|e| e["resource"]["resourceType"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["DiagnosticReport", "Patient", "Device", "Provenance"]);
    assert_eq!(b["entry"][0]["resource"]["status"], "partial");
    assert_eq!(b["entry"][3]["resource"]["activity"]["text"], "AI-generated draft");
}

#[test]
fn dicom_names_and_dates_read_as_people_write_them() {
    assert_eq!(person_name("Doe^Jane^Q^Dr^"), "Dr Jane Q Doe");
    assert_eq!(person_name("ANONYMOUS"), "ANONYMOUS");
    assert_eq!(iso_date("19610304").as_deref(), Some("1961-03-04"));
    assert_eq!(iso_date("1961"), None);
    assert_eq!(patient_words(Some(&tags())).as_deref(), Some("Jane Q Doe, ID MRN-0042, born 1961-03-04, sex F"));
    assert_eq!(patient_words(Some(&PatientTags::default())), None);
}
