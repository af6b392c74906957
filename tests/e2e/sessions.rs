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

/// Two films of the same patient (pydicom-data's RG3 CR, kept uncompressed
/// and as JPEG 2000: Patient ID 11RG3 in both): the first is reported and
/// signed; opening the second offers the first as a prior, and "Use as
/// comparison" puts its impression in the notes the draft's prompt reads;
/// "Show beside this study" opens it in a second viewer, whose zoom and pan
/// follow this study's when linked. A film of another patient is offered none.
#[tokio::test(flavor = "current_thread")]
#[ignore = "needs a display and tauri-driver: run by `make test` under Xvfb"]
async fn a_prior_of_the_same_patient_is_offered_as_comparison() {
    let first = dev_set_file("pydicom-data-1.0.0/data_store/data/RG3_UNCI.dcm");
    let app = App::launch_with(&[first.to_str().unwrap()]).await;
    app.wait_for_count("[data-testid=session-item][aria-current=true]", 1).await;
    app.type_into("[data-testid=report-editor]", "FINDINGS: Healed fracture.\nIMPRESSION: No acute bony abnormality.").await;
    app.wait_for_text("[data-testid=report-save-state]", "Saved").await;
    app.click("[data-testid=sign-final]").await;
    app.wait_for_text("[data-testid=session-status]", "Final").await;
    assert_eq!(app.client.find_all(fantoccini::Locator::Css("[data-testid=prior-item]")).await.unwrap().len(), 0, "no priors yet");

    let open = |path: std::path::PathBuf| {
        let client = app.client.clone();
        async move {
            client
                .execute("return window.__TAURI_INTERNALS__.invoke('open_paths', { paths: [arguments[0]] })", vec![serde_json::json!(path.to_str().unwrap())])
                .await
                .unwrap();
        }
    };
    open(dev_set_file("pydicom-data-1.0.0/data_store/data/RG3_J2KR.dcm")).await;
    app.wait_for_count("[data-testid=session-item]", 2).await;
    app.wait_for_count("[data-testid=prior-item]", 1).await;
    let prior = app.text_of("[data-testid=prior-item]").await;
    assert!(prior.contains("No acute bony abnormality."), "{prior}");
    app.click("[data-testid=prior-use]").await;
    app.wait_for_text("[data-testid=notes-save-state]", "Saved").await;
    let comparison = app.value_of("[data-testid=notes-comparison]").await;
    assert!(comparison.contains("(signed ") && comparison.ends_with(": No acute bony abnormality."), "{comparison}");

    // Side by side: the prior in its own viewer left of this study; with
    // zoom/pan linked, 1:1 on this study (Z) is 1:1 on the prior too.
    app.click("[data-testid=prior-compare]").await;
    app.wait_for_count("[data-testid=viewer-canvas]", 2).await;
    // (Read from the pane's label: WebKit's WebDriver gives an ellipsised title no text.)
    let pane = app.client.find(fantoccini::Locator::Css("[data-testid=prior-pane]")).await.unwrap();
    let title = pane.attr("aria-label").await.unwrap().unwrap_or_default();
    assert!(title.starts_with("Prior: CR EXTREMITY AP"), "{title}");
    let zooms = || async {
        let mut out = Vec::new();
        for el in app.client.find_all(fantoccini::Locator::Css("[data-testid=viewer-zoom]")).await.unwrap() {
            out.push(el.text().await.unwrap());
        }
        out
    };
    app.click("[data-testid=link-views]").await;
    let body = app.client.find(fantoccini::Locator::Css("body")).await.unwrap();
    body.send_keys("z").await.unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while zooms().await != ["100%", "100%"] {
        assert!(std::time::Instant::now() < deadline, "linked zoom: {:?}", zooms().await);
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    app.screenshot("priors").await;
    app.click("[data-testid=prior-close]").await;
    app.wait_for_count("[data-testid=viewer-canvas]", 1).await;

    open(dev_set_file("pydicom-3.0.2/pydicom/data/test_files/CT_small.dcm")).await;
    app.wait_for_count("[data-testid=session-item]", 3).await;
    app.wait_for_text("[data-testid=image-details]", "CT").await;
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert_eq!(app.client.find_all(fantoccini::Locator::Css("[data-testid=prior-item]")).await.unwrap().len(), 0, "another patient");
    app.quit().await;
}
