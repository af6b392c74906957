//! Getting a model onto the computer: `models import` (copy or link, checked
//! complete, hashed) and `models download` against a local mock of the
//! Hugging Face Hub on 127.0.0.1 serving the tiny Gemma 3 fixture: a whole
//! download, one broken off and resumed, a gated repo without and with the
//! wrong token, a server that stalls, and a file damaged in transfer. After
//! each, `models list` offers the model only when it is whole.

use std::path::Path;
use std::process::{Command, Output};

use crate::mock_hub::{fixture, sha256, Behaviour, MockHub};

const REPO: &str = "test-org/tiny-gemma3";

/// Runs the app's CLI with its own Hugging Face cache and data folder.
fn desk(tmp: &Path, args: &[&str], token: Option<&str>) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_medgemma-desk"));
    c.arg("--data-dir").arg(tmp.join("data")).args(args);
    c.env("HF_HUB_CACHE", tmp.join("hf")).env("HF_HOME", tmp.join("hf-home")).env_remove("HF_ENDPOINT").env_remove("DISPLAY");
    match token {
        Some(t) => c.env("HF_TOKEN", t),
        None => c.env_remove("HF_TOKEN"),
    };
    c.output().unwrap()
}

/// `models list --json`'s entry for the downloaded repo, if listed.
fn listed(tmp: &Path) -> Option<serde_json::Value> {
    let out = desk(tmp, &["models", "list", "--json"], None);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    json["found"].as_array().unwrap().iter().find(|m| m["id"] == REPO).cloned()
}

fn download(tmp: &Path, hub: &MockHub, token: Option<&str>, extra: &[&str]) -> Output {
    let mut args = vec!["models", "download", REPO, "--endpoint", &hub.url];
    args.extend_from_slice(extra);
    desk(tmp, &args, token)
}

fn err(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn a_model_downloads_whole_verified_and_is_then_offered() {
    let tmp = tempfile::tempdir().unwrap();
    let hub = MockHub::start(REPO, Behaviour::default());
    let out = download(tmp.path(), &hub, None, &["--json"]);
    assert!(out.status.success(), "{}", err(&out));
    let events: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout).lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert!(events.iter().any(|e| e["event"] == "verifying" && e["file"] == "model.safetensors"), "the weights were checked");
    assert_eq!(events.last().unwrap()["event"], "done");
    let model = listed(tmp.path()).expect("the downloaded model is listed");
    assert_eq!(model["missing"], serde_json::json!([]), "{model}");
    assert_eq!(model["source"], "Hugging Face cache");
    assert_eq!(model["verified"], true, "checked against the Hub's sha256: {model}");
    // The files are the fixture's, byte for byte.
    let got = std::fs::read(Path::new(model["path"].as_str().unwrap()).join("model.safetensors")).unwrap();
    assert_eq!(sha256(&got), sha256(&std::fs::read(fixture().join("model.safetensors")).unwrap()));
}

#[test]
fn a_broken_off_download_is_not_offered_and_resumes_where_it_stopped() {
    let tmp = tempfile::tempdir().unwrap();
    let half = std::fs::metadata(fixture().join("model.safetensors")).unwrap().len() as usize / 2;
    let hub = MockHub::start(REPO, Behaviour { cut: Some(("model.safetensors".into(), half)), ..Default::default() });
    let out = download(tmp.path(), &hub, None, &[]);
    assert_eq!(out.status.code(), Some(1), "{}", err(&out));
    assert!(err(&out).contains("broke off") && err(&out).contains("resume"), "{}", err(&out));
    let model = listed(tmp.path()).expect("the partial repo is listed");
    assert_ne!(model["missing"], serde_json::json!([]), "a partial download is not offered: {model}");

    let out = download(tmp.path(), &hub, None, &[]);
    assert!(out.status.success(), "{}", err(&out));
    let ranges = hub.ranges_for("model.safetensors");
    assert!(ranges.contains(&format!("bytes={half}-")), "the second run asked only for the rest: {ranges:?}");
    assert_eq!(listed(tmp.path()).unwrap()["missing"], serde_json::json!([]));
}

#[test]
fn a_gated_repo_explains_the_licence_and_the_token() {
    let tmp = tempfile::tempdir().unwrap();
    let hub = MockHub::start(REPO, Behaviour { token: Some("hf_good".into()), ..Default::default() });
    let out = download(tmp.path(), &hub, None, &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(err(&out).contains("gated") && err(&out).contains("licence") && err(&out).contains("token"), "{}", err(&out));
    let out = download(tmp.path(), &hub, Some("hf_wrong"), &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(err(&out).contains("no access"), "{}", err(&out));
    assert!(listed(tmp.path()).is_none_or(|m| m["missing"] != serde_json::json!([])));
    let out = download(tmp.path(), &hub, Some("hf_good"), &[]);
    assert!(out.status.success(), "{}", err(&out));
}

#[test]
fn a_stalled_server_is_given_up_with_a_message() {
    let tmp = tempfile::tempdir().unwrap();
    let hub = MockHub::start(REPO, Behaviour { stall: true, ..Default::default() });
    let started = std::time::Instant::now();
    let out = download(tmp.path(), &hub, None, &["--stall-seconds", "2"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(err(&out).contains("stalled"), "{}", err(&out));
    assert!(started.elapsed() < std::time::Duration::from_secs(60));
}

#[test]
fn a_file_damaged_in_transfer_is_removed_and_the_model_not_offered() {
    let tmp = tempfile::tempdir().unwrap();
    let hub = MockHub::start(REPO, Behaviour { corrupt: Some("model.safetensors".into()), ..Default::default() });
    let out = download(tmp.path(), &hub, None, &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(err(&out).contains("damaged"), "{}", err(&out));
    let model = listed(tmp.path()).expect("the repo is listed");
    assert!(model["missing"].to_string().contains("safetensors"), "{model}");
}

#[test]
fn downloads_can_be_switched_off() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(tmp.path().join("data")).unwrap();
    std::fs::write(tmp.path().join("data/settings.json"), r#"{"offlineLockdown": true}"#).unwrap();
    let hub = MockHub::start(REPO, Behaviour::default());
    let out = download(tmp.path(), &hub, None, &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(err(&out).contains("lockdown"), "{}", err(&out));
    assert!(hub.state.lock().unwrap().log.is_empty(), "nothing was asked of the server");
}

#[test]
fn a_model_folder_is_imported_by_copy_or_link_and_an_incomplete_one_refused() {
    let tmp = tempfile::tempdir().unwrap();
    // Copy: hashed while copied; the sha256 is the weights file's own.
    let out = desk(tmp.path(), &["models", "import", fixture().to_str().unwrap(), "--name", "copied"], None);
    assert!(out.status.success(), "{}", err(&out));
    let weights = sha256(&std::fs::read(fixture().join("model.safetensors")).unwrap());
    assert!(String::from_utf8_lossy(&out.stdout).contains(&weights), "{}", String::from_utf8_lossy(&out.stdout));
    let copied = tmp.path().join("data/models/copied");
    assert!(copied.is_dir() && !copied.is_symlink());
    // Link: nothing copied.
    let out = desk(tmp.path(), &["models", "import", fixture().to_str().unwrap(), "--name", "linked", "--link", "--json"], None);
    assert!(out.status.success(), "{}", err(&out));
    let last: serde_json::Value = serde_json::from_str(String::from_utf8_lossy(&out.stdout).lines().last().unwrap()).unwrap();
    assert_eq!(last["imported"]["sha256"], weights);
    assert!(tmp.path().join("data/models/linked").is_symlink());
    // The same name twice is refused.
    let out = desk(tmp.path(), &["models", "import", fixture().to_str().unwrap(), "--name", "linked"], None);
    assert_eq!(out.status.code(), Some(1));
    assert!(err(&out).contains("already"), "{}", err(&out));

    // A sharded model with a shard missing: refused, the missing file named, nothing left behind.
    let broken = tmp.path().join("broken");
    std::fs::create_dir_all(&broken).unwrap();
    for f in ["config.json", "tokenizer.json"] {
        std::fs::copy(fixture().join(f), broken.join(f)).unwrap();
    }
    std::fs::write(
        broken.join("model.safetensors.index.json"),
        r#"{"weight_map": {"a": "model-00001-of-00002.safetensors", "b": "model-00002-of-00002.safetensors"}}"#,
    )
    .unwrap();
    std::fs::copy(fixture().join("model.safetensors"), broken.join("model-00001-of-00002.safetensors")).unwrap();
    let out = desk(tmp.path(), &["models", "import", broken.to_str().unwrap()], None);
    assert_eq!(out.status.code(), Some(1));
    assert!(err(&out).contains("model-00002-of-00002.safetensors"), "{}", err(&out));
    let names: Vec<String> = std::fs::read_dir(tmp.path().join("data/models")).unwrap().flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect();
    assert_eq!(names.len(), 2, "only the two good imports are there: {names:?}");

    let out = desk(tmp.path(), &["models", "list", "--json"], None);
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let ids: Vec<&str> = json["found"].as_array().unwrap().iter().filter(|m| m["missing"] == serde_json::json!([])).filter_map(|m| m["id"].as_str()).collect();
    assert_eq!(ids, ["copied", "linked"]);
    assert!(json["found"].as_array().unwrap().iter().all(|m| m["verified"] == false), "no published checksum to verify an import against");
}
