//! The encrypted store in the real window. With the desktop's keyring (the
//! Secret Service `make test` starts: tests/keyring.sh) the store is encrypted
//! without a question; without one the window asks for a passphrase, refuses
//! a short or a wrong one in words, and keeps every session encrypted with it.
//! Either way no patient name, ID or notes text is in any byte of the data folder.

use std::path::Path;

use crate::data_folder::files_holding;
use crate::harness::App;
use crate::viewer::dev_set_file;

/// The patient's name and ID as the DICOM file states them.
pub(crate) fn patient_of(file: &Path) -> (String, String) {
    let obj = dicom_object::open_file(file).unwrap();
    let text = |name: &str| obj.element_by_name(name).unwrap().to_str().unwrap().trim().to_string();
    (text("PatientName"), text("PatientID"))
}

/// Asserts that none of `needles` is readable anywhere in the data folder
/// (a needle under 4 bytes, a short patient ID, would match by chance: skipped).
pub(crate) fn assert_nothing_readable(dir: &Path, needles: &[&str]) {
    for needle in needles.iter().filter(|n| n.len() >= 4) {
        let found = files_holding(dir, needle);
        assert!(found.is_empty(), "{needle:?} is readable in {found:?}");
    }
}

fn no_keyring() -> Vec<(String, String)> {
    // No session bus: no Secret Service (the window, single instance
    // included, works without one, as on a bare desktop).
    vec![("DBUS_SESSION_BUS_ADDRESS".into(), "unix:path=/nonexistent/medgemma-desk-tests/bus".into())]
}

async fn answer(app: &App, passphrase: &str, again: Option<&str>) {
    app.client
        .execute(
            "for (const [id, v] of [['unlock-passphrase', arguments[0]], ['unlock-repeat', arguments[1]]]) {
               const el = document.querySelector(`[data-testid=${id}]`);
               if (el && v !== null) { el.value = v; el.dispatchEvent(new Event('input', { bubbles: true })); }
             }",
            vec![serde_json::json!(passphrase), serde_json::json!(again)],
        )
        .await
        .unwrap();
    app.click("[data-testid=unlock-submit]").await;
}

#[tokio::test(flavor = "current_thread")]
#[ignore = "needs a display and tauri-driver: run by `make test` under Xvfb"]
async fn without_a_keyring_the_window_asks_for_a_passphrase_and_keeps_sessions_encrypted() {
    let cr = dev_set_file("pydicom-data-1.0.0/data_store/data/RG3_UNCI.dcm");
    let (name, id) = patient_of(&cr);
    let app = App::launch_env(tempfile::tempdir().unwrap(), &[], &no_keyring()).await;

    // A new store with no keyring: the window asks, and says why.
    app.wait_for_text("[data-testid=store-unlock]", "no system keyring").await;
    app.screenshot("passphrase").await;
    answer(&app, "short", Some("short")).await;
    app.wait_for_text("[data-testid=unlock-message]", "at least 8 characters").await;
    answer(&app, "Kestrel meadow 42", Some("Kestrel meadow 24")).await;
    app.wait_for_text("[data-testid=unlock-message]", "not the same").await;
    answer(&app, "Kestrel meadow 42", Some("Kestrel meadow 42")).await;
    app.wait_for_count("[data-testid=store-unlock]", 0).await;
    app.wait_for_text("[data-testid=store-protection]", "Encrypted (passphrase)").await;

    // A study opened now is kept, notes as typed.
    app.client
        .execute("return window.__TAURI_INTERNALS__.invoke('open_paths', { paths: [arguments[0]] })", vec![serde_json::json!(cr.to_str().unwrap())])
        .await
        .unwrap();
    app.wait_for_count("[data-testid=session-item]", 1).await;
    app.type_into("[data-testid=notes-indication]", "Fell from a ladder on Tuesday").await;
    app.wait_for_text("[data-testid=notes-save-state]", "Saved").await;

    // The next start asks for the passphrase; a wrong one is refused in words.
    let app = app.restart_env(&no_keyring()).await;
    app.wait_for_text("[data-testid=store-unlock]", "encrypted with a passphrase").await;
    answer(&app, "Kestrel meadow 43", None).await;
    app.wait_for_text("[data-testid=unlock-message]", "not the one this sessions store was encrypted with").await;
    app.wait_for_count("[data-testid=session-item]", 0).await;
    // Put off ("Not now": images can be viewed), then asked for again from the status line.
    app.click("[data-testid=unlock-later]").await;
    app.wait_for_count("[data-testid=store-unlock]", 0).await;
    app.wait_for_count("[data-testid=store-unlock-again]", 1).await;
    app.screenshot("passphrase-put-off").await;
    app.click("[data-testid=store-unlock-again]").await;
    app.wait_for_count("[data-testid=store-unlock]", 1).await;
    answer(&app, "Kestrel meadow 42", None).await;
    app.wait_for_count("[data-testid=store-unlock]", 0).await;
    app.wait_for_count("[data-testid=session-item]", 1).await;
    app.click("[data-testid=session-item]").await;
    app.wait_for_text("[data-testid=image-details]", "1760 × 1760").await;
    assert_eq!(app.value_of("[data-testid=notes-indication]").await, "Fell from a ladder on Tuesday");
    app.screenshot("encrypted-passphrase").await;

    assert_nothing_readable(app.data_dir.path(), &[&name, &id, "Fell from a ladder on Tuesday"]);
    app.quit().await;
}

#[tokio::test(flavor = "current_thread")]
#[ignore = "needs a display and tauri-driver: run by `make test` under Xvfb"]
async fn an_unencrypted_store_is_encrypted_from_the_status_line_with_the_keyring() {
    let cr = dev_set_file("pydicom-data-1.0.0/data_store/data/RG3_UNCI.dcm");
    let (name, _) = patient_of(&cr);
    // Kept unencrypted by choice (as a store from before encryption would be).
    let plain = vec![("MEDGEMMA_DESK_UNENCRYPTED".to_string(), "1".to_string())];
    let app = App::launch_env(tempfile::tempdir().unwrap(), &[cr.to_str().unwrap()], &plain).await;
    app.wait_for_count("[data-testid=session-item]", 1).await;
    app.type_into("[data-testid=notes-indication]", "Fell from a ladder on Tuesday").await;
    app.wait_for_text("[data-testid=notes-save-state]", "Saved").await;
    app.wait_for_text("[data-testid=store-protection]", "Not encrypted (chosen)").await;
    assert!(!files_holding(app.data_dir.path(), "Fell from a ladder on Tuesday").is_empty(), "the control: readable before");

    app.click("[data-testid=store-encrypt]").await;
    app.wait_for_text("[data-testid=store-protection]", "Encrypted (key in the system keyring)").await;
    app.wait_for_count("[data-testid=store-encrypt]", 0).await;
    app.wait_for_count("[data-testid=session-item]", 1).await;
    assert_nothing_readable(app.data_dir.path(), &[&name, "Fell from a ladder on Tuesday"]);

    // The next start opens it with the keyring's key, with nothing asked.
    let app = app.restart().await;
    app.wait_for_text("[data-testid=store-protection]", "Encrypted (key in the system keyring)").await;
    app.click("[data-testid=session-item]").await;
    app.wait_for_text("[data-testid=image-details]", "1760 × 1760").await;
    assert_eq!(app.value_of("[data-testid=notes-indication]").await, "Fell from a ladder on Tuesday");
    app.quit().await;
}
