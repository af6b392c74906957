//! The command line as a user or a launcher meets it: the built binary, run
//! with no display, checked for its exit codes and its one-line messages.

use std::process::{Command, Output};

#[path = "../data_folder.rs"]
mod data_folder;
mod draft;
mod encryption;
mod export;
mod generate;
mod gguf;
mod imaging;
mod mock_hub;
mod models;
mod privacy;
mod sessions;
mod trace;

/// The CLI as most tests use it: a new store is made unencrypted (its explicit
/// choice), so tests can read it with the store's API; tests/cli/encryption.rs
/// runs it encrypted.
pub(crate) fn medgemma_desk(args: &[&str]) -> Output {
    medgemma_desk_with(args, &[(medgemma_desk::store_key::UNENCRYPTED_ENV, "1")])
}

pub(crate) fn medgemma_desk_with(args: &[&str], env: &[(&str, &str)]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_medgemma-desk"))
        .args(args)
        .env_remove("DISPLAY")
        .env_remove("WAYLAND_DISPLAY")
        .env_remove("RUST_BACKTRACE")
        .env_remove(medgemma_desk::store_key::PASSPHRASE_ENV)
        .env_remove(medgemma_desk::store_key::PASSPHRASE_FILE_ENV)
        .env_remove(medgemma_desk::store_key::UNENCRYPTED_ENV)
        .envs(env.iter().copied())
        .output()
        .expect("the app binary runs")
}

pub(crate) fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

pub(crate) fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub(crate) fn assert_one_line(text: &str) {
    assert_eq!(text.trim_end().lines().count(), 1, "expected one line, got:\n{text}");
    assert!(!text.contains("panicked"), "a panic reached the user:\n{text}");
}

#[test]
fn version_prints_the_crate_version() {
    let out = medgemma_desk(&["--version"]);
    assert!(out.status.success());
    assert_eq!(stdout(&out).trim(), format!("medgemma-desk {}", env!("CARGO_PKG_VERSION")));
}

#[test]
fn help_lists_every_headless_subcommand_and_the_data_dir() {
    let out = medgemma_desk(&["--help"]);
    assert!(out.status.success());
    let help = stdout(&out);
    for sub in ["info", "render", "generate", "draft", "sessions", "models", "bench", "--data-dir"] {
        assert!(help.contains(sub), "--help lacks {sub}:\n{help}");
    }
}

#[test]
fn unknown_subcommand_exits_2_with_one_line() {
    let out = medgemma_desk(&["frobnicate"]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert_one_line(&err);
    assert!(err.contains("frobnicate"), "{err}");
}

#[test]
fn unknown_flag_exits_2_with_one_line() {
    let out = medgemma_desk(&["--no-such-flag"]);
    assert_eq!(out.status.code(), Some(2));
    assert_one_line(&stderr(&out));
}

#[test]
fn gui_without_a_display_says_so_in_one_line() {
    let tmp = tempfile::tempdir().unwrap();
    let out = medgemma_desk(&["--data-dir", tmp.path().to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert_one_line(&err);
    assert!(err.contains("no display"), "{err}");
}

#[test]
fn unwritable_data_dir_says_so_in_one_line() {
    // Root ignores permission bits, so use a path below a plain file: no one
    // can create a folder there.
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("not-a-folder");
    std::fs::write(&file, b"x").unwrap();
    let bad = file.join("data");
    // (The window opens anyway, for viewing: tests/e2e/window.rs.)
    let out = medgemma_desk(&["--data-dir", bad.to_str().unwrap(), "sessions", "list"]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert_one_line(&err);
    assert!(err.contains("cannot create the data folder"), "{err}");
}

#[test]
fn models_list_runs_without_a_display_and_lists_the_catalog() {
    let tmp = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_medgemma-desk"))
        .args(["models", "list", "--json", "--data-dir", tmp.path().to_str().unwrap()])
        .env_remove("DISPLAY")
        .env_remove("WAYLAND_DISPLAY")
        .env("HF_HUB_CACHE", tmp.path().join("no-hf-cache"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let v: serde_json::Value = serde_json::from_str(stdout(&out).trim()).unwrap();
    assert_eq!(v["found"], serde_json::json!([]));
    assert!(v["catalog"].as_array().unwrap().iter().any(|m| m["repo"] == "google/medgemma-4b-it"));
    // With the tiny model in the data folder: found, complete, with its memory need.
    let models = tmp.path().join("models");
    std::fs::create_dir_all(&models).unwrap();
    let fixture = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/tiny-gemma3/model");
    std::os::unix::fs::symlink(fixture.canonicalize().unwrap(), models.join("tiny")).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_medgemma-desk"))
        .args(["models", "list", "--json", "--data-dir", tmp.path().to_str().unwrap()])
        .env("HF_HUB_CACHE", tmp.path().join("no-hf-cache"))
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_str(stdout(&out).trim()).unwrap();
    assert_eq!(v["found"][0]["id"], "tiny");
    assert_eq!(v["found"][0]["missing"], serde_json::json!([]));
    assert!(v["found"][0]["cpuNeedBytes"].as_u64().unwrap() > 0);
}

#[test]
fn a_model_too_big_for_the_free_memory_is_refused_in_words() {
    let tmp = tempfile::tempdir().unwrap();
    let model = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/tiny-gemma3/model");
    let image = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/tiny-gemma3/images/grey.png");
    let out = Command::new(env!("CARGO_BIN_EXE_medgemma-desk"))
        .args(["draft", "--model", model.to_str().unwrap(), "--image", image.to_str().unwrap(), "--no-save", "--device", "cpu"])
        .args(["--data-dir", tmp.path().to_str().unwrap()])
        .env("MEDGEMMA_DESK_MEMORY_LIMIT_MB", "1")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    let last = err.lines().last().unwrap_or("");
    assert!(last.contains("needs about") && last.contains("GB of memory on the CPU") && last.contains("smaller model"), "{err}");
}
