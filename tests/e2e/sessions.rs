//! Sessions in the real window: an opened image becomes a session; notes and
//! the report are saved as typed (no Save button); after a restart the
//! sidebar lists it, search filters it, and clicking it restores everything.

use crate::harness::App;
use crate::viewer::dev_set_file;

#[tokio::test(flavor = "current_thread")]
#[ignore = "needs a display and tauri-driver: run by `make test` under Xvfb"]
async fn a_session_is_kept_as_typed_and_restored_after_a_restart() {
    let cr = dev_set_file("pydicom-data-1.0.0/data_store/data/RG3_UNCI.dcm");
    let app = App::launch_with(&[cr.to_str().unwrap()]).await;

    // Opening the image made a session, listed in the sidebar and current.
    app.wait_for_count("[data-testid=session-item]", 1).await;
    app.wait_for_count("[data-testid=session-item][aria-current=true]", 1).await;

    // No model yet: the draft pane says how to get one, and where to put it.
    let help = app.text_of("[data-testid=no-model]").await;
    let models_dir = app.data_dir.path().join("models");
    assert!(help.contains("No model yet") && help.contains(models_dir.to_str().unwrap()), "{help}");

    // Notes and the report are typed, never saved by hand.
    app.type_into("[data-testid=notes-indication]", "Fever and cough, 3 days — ü").await;
    app.type_into("[data-testid=notes-history]", "Ex-smoker").await;
    app.wait_for_text("[data-testid=notes-save-state]", "Saved").await;
    app.type_into("[data-testid=report-editor]", "FINDINGS: Right lower lobe consolidation.\nIMPRESSION: Pneumonia.").await;
    app.wait_for_text("[data-testid=report-save-state]", "Saved").await;
    app.click("[data-testid=sign-final]").await;
    app.wait_for_text("[data-testid=signed-report]", "Right lower lobe consolidation").await;
    app.wait_for_text("[data-testid=session-status]", "Final").await;

    // A second image is a second session, listed first.
    app.client
        .execute("return window.__TAURI_INTERNALS__.invoke('open_paths', { paths: [arguments[0]] })", vec![serde_json::json!(
            dev_set_file("pydicom-data-1.0.0/data_store/data/RG3_J2KR.dcm").to_str().unwrap()
        )])
        .await
        .unwrap();
    app.wait_for_count("[data-testid=session-item]", 2).await;
    app.wait_for_text("[data-testid=case-notes] [data-testid=notes-save-state]", "Saved").await;
    assert_eq!(app.value_of("[data-testid=notes-indication]").await, "", "the new session starts with empty notes");

    let app = app.restart().await;
    app.wait_for_count("[data-testid=session-item]", 2).await;

    // Search filters as the clinician types (the notes' words, by prefix).
    app.type_into("[data-testid=session-search]", "pneumon").await;
    app.wait_for_count("[data-testid=session-item]", 1).await;
    app.click("[data-testid=session-item]").await;

    // Everything is as it was: image, notes, signed report.
    app.wait_for_text("[data-testid=image-details]", "1760 × 1760").await;
    app.wait_for_text("[data-testid=viewer-overlay]", "W 1024 C 550").await;
    assert_eq!(app.value_of("[data-testid=notes-indication]").await, "Fever and cough, 3 days — ü");
    assert_eq!(app.value_of("[data-testid=notes-history]").await, "Ex-smoker");
    let signed = app.text_of("[data-testid=signed-report]").await;
    assert!(signed.contains("IMPRESSION: Pneumonia.") && signed.contains("Final"), "{signed}");
    app.screenshot("sessions").await;

    // The store is encrypted with its key in the desktop's keyring (make test
    // runs the window under gnome-keyring): no patient or notes text is
    // readable in any byte of the data folder, the webview's files included.
    app.wait_for_text("[data-testid=store-protection]", "Encrypted (key in the system keyring)").await;
    let (name, id) = crate::encryption::patient_of(&cr);
    crate::encryption::assert_nothing_readable(
        app.data_dir.path(),
        &[&name, &id, "Fever and cough, 3 days", "Ex-smoker", "Right lower lobe consolidation"],
    );

    // No match, no list.
    app.type_into("[data-testid=session-search]", " zzzz").await;
    app.wait_for_count("[data-testid=session-item]", 0).await;
    app.quit().await;
}
