//! The CLI on an encrypted store (a passphrase from the environment, as on a
//! machine with no keyring): drafts are kept encrypted, read back with the
//! passphrase, and a wrong or missing one is one clear line that changes nothing.

use std::path::PathBuf;

use crate::data_folder::{files, files_holding};
use crate::{assert_one_line, medgemma_desk_with, stderr, stdout};
use medgemma_desk::store_key::{PASSPHRASE_ENV, PASSPHRASE_FILE_ENV};

fn fixture(rel: &str) -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/tiny-gemma3").join(rel).display().to_string()
}

#[test]
fn drafts_are_kept_encrypted_and_a_wrong_passphrase_changes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_str().unwrap();
    let (model, image) = (fixture("model"), fixture("images/grey.png"));
    let note = "Patient ZELDA QUIMBY, fell from a ladder";
    let right = [(PASSPHRASE_ENV, "correct horse battery")];
    let args = ["draft", "--model", &model, "--image", &image, "--indication", note, "--max-tokens", "8", "--json", "--data-dir", dir];
    let out = medgemma_desk_with(&args, &right);
    assert!(out.status.success(), "{}", stderr(&out));

    // Not one byte of the data folder holds the note, in any file.
    assert_eq!(files_holding(tmp.path(), "ZELDA QUIMBY"), Vec::<PathBuf>::new(), "the note is readable in the data folder");
    let before = files(tmp.path());
    let record = String::from_utf8(before[&tmp.path().join("encryption.json")].clone()).unwrap();
    assert!(record.contains("\"passphrase\"") && !record.contains("correct horse"), "{record}");

    // With the passphrase (here from a file) the session reads back.
    let pass_file = tmp.path().join("..").join(format!("{}.pass", tmp.path().file_name().unwrap().to_string_lossy()));
    std::fs::write(&pass_file, "correct horse battery\n").unwrap();
    let shown = medgemma_desk_with(&["sessions", "show", "1", "--json", "--data-dir", dir], &[(PASSPHRASE_FILE_ENV, pass_file.to_str().unwrap())]);
    let _ = std::fs::remove_file(&pass_file);
    assert!(shown.status.success(), "{}", stderr(&shown));
    let shown: serde_json::Value = serde_json::from_str(stdout(&shown).trim()).unwrap();
    assert_eq!(shown["notes"]["indication"], note);

    // Wrong, then none: one line each, exit 1, and the data folder unchanged.
    let wrong = medgemma_desk_with(&["sessions", "list", "--data-dir", dir], &[(PASSPHRASE_ENV, "correct horse battery?")]);
    assert_eq!(wrong.status.code(), Some(1));
    assert_one_line(&stderr(&wrong));
    assert!(stderr(&wrong).contains("the passphrase is not the one this sessions store was encrypted with; nothing was changed"), "{}", stderr(&wrong));
    let none = medgemma_desk_with(&["draft", "--model", &model, "--image", &image, "--data-dir", dir], &[]);
    assert_eq!(none.status.code(), Some(1));
    assert_one_line(&stderr(&none));
    assert!(stderr(&none).contains("encrypted with a passphrase") && stderr(&none).contains(PASSPHRASE_ENV), "{}", stderr(&none));
    assert_eq!(files(tmp.path()), before, "a refused passphrase changed the data folder");
}

#[test]
fn sessions_encrypt_encrypts_a_store_kept_unencrypted() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_str().unwrap();
    let (model, image) = (fixture("model"), fixture("images/grey.png"));
    let note = "Patient ZELDA QUIMBY, fell from a ladder";
    let plain = [(medgemma_desk::store_key::UNENCRYPTED_ENV, "1")];
    let out = medgemma_desk_with(&["draft", "--model", &model, "--image", &image, "--indication", note, "--max-tokens", "8", "--data-dir", dir], &plain);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(!files_holding(tmp.path(), "ZELDA QUIMBY").is_empty(), "the control: kept unencrypted, the note is readable");

    let right = [(PASSPHRASE_ENV, "correct horse battery")];
    let out = medgemma_desk_with(&["sessions", "encrypt", "--data-dir", dir], &right);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out).trim(), "1 sessions: Encrypted (passphrase)");
    assert_eq!(files_holding(tmp.path(), "ZELDA QUIMBY"), Vec::<PathBuf>::new(), "the note is readable after encrypting");
    let locked = medgemma_desk_with(&["sessions", "list", "--data-dir", dir], &[]);
    assert_eq!(locked.status.code(), Some(1), "{}", stderr(&locked));
    let shown = medgemma_desk_with(&["sessions", "show", "1", "--json", "--data-dir", dir], &right);
    let shown: serde_json::Value = serde_json::from_str(stdout(&shown).trim()).unwrap();
    assert_eq!(shown["notes"]["indication"], note);
}
