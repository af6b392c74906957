//! Bad model files in the window: the draft is refused with one sentence a
//! clinician can act on, the app stays up (the image can still be read), and
//! the session keeps its image and notes.

use std::path::PathBuf;

use crate::harness::App;

/// A data folder whose only model is a copy of the tiny model, broken by `spoil`.
fn data_dir_with_broken_model(spoil: impl Fn(&std::path::Path)) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("models").join("tiny-gemma3");
    std::fs::create_dir_all(&model).unwrap();
    let fixture = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/tiny-gemma3/model");
    for entry in std::fs::read_dir(fixture).unwrap().flatten() {
        std::fs::copy(entry.path(), model.join(entry.file_name())).unwrap();
    }
    spoil(&model);
    dir
}

fn image() -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/tiny-gemma3/images/grey.png").display().to_string()
}

/// Draft pressed on a study with notes: the refusal, in words, and the window still working.
async fn refused(app: &App) -> String {
    app.wait_for_count("[data-testid=session-item][aria-current=true]", 1).await;
    app.type_into("[data-testid=notes-indication]", "Cough").await;
    app.wait_for_text("[data-testid=notes-save-state]", "Saved").await;
    app.click("[data-testid=draft-button]").await;
    app.wait_for_count("[data-testid=draft-error]", 1).await;
    let message = app.text_of("[data-testid=draft-error]").await;
    assert_eq!(message.lines().count(), 1, "one sentence: {message}");
    // Still up: the viewer answers, the session keeps its notes, no draft was kept.
    let before = app.text_of("[data-testid=viewer-overlay]").await;
    app.client.find(fantoccini::Locator::Css("body")).await.unwrap().send_keys("i").await.unwrap();
    let after = app.text_of("[data-testid=viewer-overlay]").await;
    assert_ne!(before.contains("inverted"), after.contains("inverted"), "the viewer still reacts");
    assert_eq!(app.value_of("[data-testid=notes-indication]").await, "Cough");
    assert!(app.client.find_all(fantoccini::Locator::Css("[data-testid=draft-tab]")).await.unwrap().is_empty());
    message
}

#[tokio::test(flavor = "current_thread")]
#[ignore = "needs a display and tauri-driver: run by `make test` under Xvfb"]
async fn a_tokenizer_that_is_not_json_is_refused_in_words_and_the_window_stays_up() {
    let data = data_dir_with_broken_model(|m| std::fs::write(m.join("tokenizer.json"), "{\"version\": \"1.0\", \"trunc").unwrap());
    let app = App::launch_in(data, &[&image()]).await;
    let message = refused(&app).await;
    assert!(message.contains("tokenizer.json") && message.contains("cannot be used"), "{message}");
    app.quit().await;
}

#[tokio::test(flavor = "current_thread")]
#[ignore = "needs a display and tauri-driver: run by `make test` under Xvfb"]
async fn a_model_too_big_for_the_free_memory_is_refused_before_loading() {
    // The free memory as the app sees it, capped at 1 MB.
    let envs = [("MEDGEMMA_DESK_MEMORY_LIMIT_MB".to_string(), "1".to_string())];
    let app = App::launch_env(data_dir_with_broken_model(|_| {}), &[&image()], &envs).await;
    let message = refused(&app).await;
    assert!(message.contains("needs about") && message.contains("free") && message.contains("smaller model"), "{message}");
    app.quit().await;
}
