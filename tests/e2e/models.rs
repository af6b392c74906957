//! The Models screen in the real window: from the "no model yet" screen,
//! import the tiny Gemma 3 fixture folder (copied, hashed, with a progress
//! bar) and see it become the drafting model; pick the device; switch offline
//! lockdown on and off; download a catalog model from a mock Hub on
//! 127.0.0.1, cancelling a stalled try first.

use std::time::Duration;

use crate::harness::App;
use crate::mock_hub::{fixture, Behaviour, MockHub};

#[tokio::test(flavor = "current_thread")]
#[ignore = "needs a display and tauri-driver: run by `make test` under Xvfb"]
async fn a_model_is_imported_chosen_and_downloaded_from_the_models_screen() {
    let hub = MockHub::start("google/medgemma-4b-it", Behaviour { stall: true, ..Default::default() });
    let data = tempfile::tempdir().unwrap();
    let hf = tempfile::tempdir().unwrap();
    let envs = [("HF_HUB_CACHE".to_string(), hf.path().display().to_string()), ("HF_ENDPOINT".to_string(), hub.url.clone())];
    let app = App::launch_env(data, &[], &envs).await;

    // No model yet: the draft pane says so and leads to the Models screen.
    app.click("[data-testid=no-model-open-models]").await;
    app.text_of("[data-testid=models-screen]").await;
    app.wait_for_count("[data-testid=model-row]", 0).await;

    // Import the fixture folder by copy.
    app.type_into("[data-testid=import-path]", fixture().to_str().unwrap()).await;
    app.click("[data-testid=import-button]").await;
    let notice = app.wait_for_text("[data-testid=models-notice]", "Imported").await;
    assert!(notice.contains("model") && notice.contains("sha256"), "{notice}");
    app.wait_for_count("[data-testid=model-row]", 1).await;
    app.text_of("[data-testid=model-active]").await;
    assert!(app.data_dir.path().join("models/model/model.safetensors").is_file(), "the weights were copied into the data folder");

    // The device: CPU, kept in the settings.
    let picker = app.client.find(fantoccini::Locator::Css("[data-testid=device-picker]")).await.unwrap();
    picker.select_by_value("cpu").await.unwrap();
    let settings = app.data_dir.path().join("settings.json");
    wait_until(|| std::fs::read_to_string(&settings).is_ok_and(|s| s.contains("\"device\": \"cpu\""))).await;

    // Offline lockdown hides every download button.
    app.click("[data-testid=lockdown-toggle]").await;
    app.text_of("[data-testid=downloads-off]").await;
    app.wait_for_count("[data-testid=download-button]", 0).await;
    app.click("[data-testid=lockdown-toggle]").await;
    app.text_of("[data-testid=download-button]").await;

    // A download from a server that stalls: cancelled from the window.
    app.click("[data-testid=download-button]").await;
    app.click("[data-testid=download-cancel]").await;
    app.wait_for_text("[data-testid=models-notice]", "cancelled").await;

    // The server answers now: the download finishes and the model is listed whole.
    hub.state.lock().unwrap().stall = false;
    app.click("[data-testid=download-button]").await;
    app.wait_for_text("[data-testid=models-notice]", "Downloaded").await;
    app.wait_for_count("[data-testid=model-row]", 2).await;
    app.wait_for_count("[data-testid=model-missing]", 0).await;
    app.wait_for_count("[data-testid=model-verified]", 1).await;
    app.screenshot("models").await;
    assert!(hub.state.lock().unwrap().log.iter().any(|(p, _)| p.ends_with("/model.safetensors")));

    // Closing the screen: the draft pane no longer says "no model".
    app.click("[data-testid=models-close]").await;
    app.wait_for_count("[data-testid=no-model]", 0).await;
    app.quit().await;
}

async fn wait_until(mut ok: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    while !ok() {
        assert!(std::time::Instant::now() < deadline, "timed out");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Dragging a model folder from the desktop onto the window opens the Models
/// screen ready to import it (not the viewer, which would call it "not an image").
#[tokio::test(flavor = "current_thread")]
#[ignore = "needs a display, tauri-driver and xdotool: run by `make test` under Xvfb"]
async fn a_model_folder_dropped_on_the_window_is_offered_for_import() {
    let app = App::launch().await;
    app.text_of("[data-testid=empty-state]").await;
    let mut source = crate::viewer::drag_onto_app(&fixture());
    app.text_of("[data-testid=models-screen]").await;
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    while app.value_of("[data-testid=import-path]").await != fixture().display().to_string() {
        assert!(std::time::Instant::now() < deadline, "the dropped folder is not offered for import");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    app.click("[data-testid=import-link]").await;
    app.click("[data-testid=import-button]").await;
    app.wait_for_text("[data-testid=models-notice]", "Imported").await;
    assert!(app.data_dir.path().join("models/model").is_symlink(), "linked where it is, as chosen");
    // The viewer was left alone.
    assert_eq!(app.client.find_all(fantoccini::Locator::Css("[data-testid=open-error]")).await.unwrap().len(), 0);
    let _ = std::process::Command::new("kill").arg(source.id().to_string()).status();
    crate::harness::wait_at_most(&mut source, Duration::from_secs(20), "the drag source");
    app.quit().await;
}
