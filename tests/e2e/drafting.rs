//! Drafting in the real window with the tiny Gemma 3 fixture model (real
//! architecture and vision tower, random weights): notes, template, Draft,
//! the draft streaming in, Stop, Regenerate, the report started from a draft,
//! sign-off, restart, and everything found again. And: the same seed gives
//! the same draft.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::harness::App;
use crate::viewer::dev_set_file;

/// A data folder with the tiny model installed where the app looks for models.
pub(crate) fn data_dir_with_model() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let models = dir.path().join("models");
    std::fs::create_dir_all(&models).unwrap();
    let fixture = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/tiny-gemma3/model").canonicalize().unwrap();
    std::os::unix::fs::symlink(fixture, models.join("tiny-gemma3")).unwrap();
    // The shipped templates plus a department's own short one (the tiny model's
    // context is 512 tokens: short drafts leave room for follow-up questions).
    let templates = dir.path().join("templates");
    std::fs::create_dir_all(&templates).unwrap();
    let shipped = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../assets/templates");
    for entry in std::fs::read_dir(shipped).unwrap().flatten() {
        std::fs::copy(entry.path(), templates.join(entry.file_name())).unwrap();
    }
    std::fs::write(
        templates.join("short-note.toml"),
        "name = \"Short note\"\ninstruction = \"Describe this X-ray in one sentence.\"\nmax_tokens = 40\n",
    )
    .unwrap();
    dir
}

async fn attr(app: &App, css: &str, name: &str) -> Option<String> {
    let el = app.client.find(fantoccini::Locator::Css(css)).await.ok()?;
    el.attr(name).await.ok().flatten()
}

/// Presses Draft-like `button` and records the live pane's text each time it
/// changes, until the pane is gone (finished). Returns the distinct texts seen.
pub(crate) async fn watch_stream(app: &App, stop_after: Option<usize>) -> Vec<String> {
    let mut seen: Vec<String> = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let live = app.client.find(fantoccini::Locator::Css("[data-testid=draft-live]")).await;
        match live {
            Ok(el) => {
                if let Ok(text) = el.text().await {
                    if !text.is_empty() && seen.last() != Some(&text) {
                        seen.push(text);
                    }
                }
                if stop_after.is_some_and(|n| seen.len() >= n) {
                    app.click("[data-testid=draft-stop]").await;
                    // Stop halts within a token: the pane closes soon after.
                    app.wait_for_count("[data-testid=draft-live]", 0).await;
                    return seen;
                }
            }
            Err(_) if !seen.is_empty() || app.client.find(fantoccini::Locator::Css("[data-testid=draft-stop]")).await.is_err() => {
                return seen;
            }
            Err(_) => {}
        }
        assert!(Instant::now() < deadline, "the draft never finished");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "current_thread")]
#[ignore = "needs a display and tauri-driver: run by `make test` under Xvfb"]
async fn a_draft_streams_stops_regenerates_and_is_signed_and_kept() {
    let cr = dev_set_file("pydicom-data-1.0.0/data_store/data/RG3_UNCI.dcm");
    let app = App::launch_in(data_dir_with_model(), &[cr.to_str().unwrap()]).await;
    app.wait_for_count("[data-testid=session-item][aria-current=true]", 1).await;
    app.type_into("[data-testid=notes-indication]", "Cough and fever").await;
    app.wait_for_text("[data-testid=notes-save-state]", "Saved").await;

    // Pick the chest X-ray template and draft; stop it midway: the text so far is kept, marked stopped.
    let picker = app.client.find(fantoccini::Locator::Css("[data-testid=template-picker]")).await.unwrap();
    picker.select_by_value("chest-xray-report").await.unwrap();
    app.click("[data-testid=draft-button]").await;
    let partial = watch_stream(&app, Some(3)).await;
    assert!(partial.len() >= 3, "{partial:?}");
    app.wait_for_count("[data-testid=draft-tab]", 1).await;
    let meta = app.text_of("[data-testid=draft] .meta").await;
    assert!(meta.contains("stopped by you"), "{meta}");
    let kept = app.text_of("[data-testid=draft-text]").await;
    assert!(!kept.is_empty(), "the text written before Stop is kept");
    let label = app.text_of("[data-testid=draft] .ai-label").await;
    assert!(label.contains("AI-generated draft — not reviewed"), "{label}");

    // The same settings again, to the end: at least two partial updates arrive before it ends.
    // The window stays responsive meanwhile: inverting the image works mid-stream.
    let overlay_before = app.text_of("[data-testid=viewer-overlay]").await;
    app.click("[data-testid=reproduce]").await;
    app.wait_for_count("[data-testid=draft-live]", 1).await;
    app.client.find(fantoccini::Locator::Css("body")).await.unwrap().send_keys("i").await.unwrap();
    let overlay_during = app.text_of("[data-testid=viewer-overlay]").await;
    assert_ne!(overlay_before.contains("inverted"), overlay_during.contains("inverted"), "the viewer reacts while the draft streams");
    assert_eq!(app.client.find_all(fantoccini::Locator::Css("[data-testid=draft-live]")).await.unwrap().len(), 1, "still streaming");
    let updates = watch_stream(&app, None).await;
    assert!(updates.len() >= 2, "the draft streamed in pieces: {updates:?}");
    let stats = app.text_of("[data-testid=draft-stats]").await;
    assert!(stats.contains("tokens/s") && stats.contains("first token"), "{stats}");
    app.wait_for_count("[data-testid=draft-tab]", 2).await;
    let first = app.text_of("[data-testid=draft-text]").await;
    assert!(first.len() > kept.len() && first.starts_with(kept.trim_end()), "the whole draft continues the stopped one:\n{kept}\n{first}");
    let verdict = app.text_of("[data-testid=draft-verdict]").await;
    assert!(verdict.contains("Re-run of Draft 1") && verdict.contains("before it was stopped"), "{verdict}");

    // Regenerate with a new seed: a third draft.
    app.click("[data-testid=regenerate]").await;
    watch_stream(&app, None).await;
    app.wait_for_count("[data-testid=draft-tab]", 3).await;

    // The report starts from the complete draft, is edited, and signed.
    app.client.find_all(fantoccini::Locator::Css("[data-testid=draft-tab]")).await.unwrap()[1].click().await.unwrap();
    app.click("[data-testid=use-draft]").await;
    let report = app.value_of("[data-testid=report-editor]").await;
    assert_eq!(report.trim(), first.trim().replace('\n', "\n").trim(), "the editor starts from the chosen draft");
    app.type_into("[data-testid=report-editor]", " Clinician addition: no pneumothorax.").await;
    app.wait_for_text("[data-testid=report-save-state]", "Saved").await;
    // Review: the draft and the report side by side, the clinician's words marked as theirs.
    app.click("[data-testid=review-button]").await;
    app.wait_for_text("[data-testid=review-report]", "no pneumothorax").await;
    let added = app.client.find_all(fantoccini::Locator::Css("[data-testid=review-report] ins")).await.unwrap();
    let mut added_text = String::new();
    for el in added {
        added_text.push_str(&el.text().await.unwrap());
    }
    assert!(added_text.contains("pneumothorax"), "the clinician's words are marked as added: {added_text:?}");
    let origins: Vec<String> = {
        let items = app.client.find_all(fantoccini::Locator::Css("[data-testid=review-sentences] li")).await.unwrap();
        let mut v = Vec::new();
        for li in items {
            v.push(li.attr("data-origin").await.unwrap().unwrap_or_default());
        }
        v
    };
    assert!(origins.iter().any(|o| o == "ai") && origins.iter().any(|o| o != "ai"), "{origins:?}");
    app.screenshot("review").await;
    app.click("[data-testid=review-close]").await;

    // What the model saw: the image at the model's own input size (32 for the tiny model).
    app.click("[data-testid=model-saw-toggle]").await;
    let img = app.client.wait().at_most(Duration::from_secs(15)).for_element(fantoccini::Locator::Css("[data-testid=model-saw]")).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let arg = serde_json::to_value(&img).unwrap();
        let w = app.client.execute("return arguments[0].naturalWidth;", vec![arg]).await.unwrap();
        if w == serde_json::json!(32) {
            break;
        }
        assert!(Instant::now() < deadline, "the model-input image is {w} wide, not 32");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // It is the image kept with the draft shown, named by its pixels' hash, in the data folder.
    let sha = attr(&app, "[data-testid=model-saw]", "data-sha256").await.unwrap_or_default();
    assert!(sha.len() == 64 && sha.bytes().all(|b| b.is_ascii_hexdigit()), "the draft's model input is named: {sha:?}");
    let caption = app.text_of("[data-testid=model-saw-caption]").await;
    assert!(caption.contains("kept with it") && caption.contains(&sha[..12]), "{caption}");
    // The store is encrypted (the window tests run with a keyring): the kept
    // image is sealed under a keyed name, neither its hash nor a PNG in the
    // clear; the 32-pixel image above is the app reading it back through the store.
    let kept = crate::data_folder::files(&app.data_dir.path().join("model-inputs"));
    assert!(!kept.is_empty(), "the model input is kept in the data folder");
    for (path, bytes) in &kept {
        assert!(!path.to_string_lossy().contains(&sha), "{} is named by the image's hash", path.display());
        assert!(bytes.starts_with(b"MGDSEAL1") && !bytes.windows(4).any(|w| w == b"IHDR"), "{} is not sealed", path.display());
    }

    app.click("[data-testid=sign-final]").await;
    app.wait_for_text("[data-testid=signed-report]", "no pneumothorax").await;
    app.screenshot("drafting").await;
    // After sign-off the review shows each sentence's origin as fixed at sign-off.
    app.click("[data-testid=review-button]").await;
    app.wait_for_count("[data-testid=review-frozen]", 1).await;
    let frozen: Vec<String> = {
        let items = app.client.find_all(fantoccini::Locator::Css("[data-testid=review-sentences] li")).await.unwrap();
        let mut v = Vec::new();
        for li in items {
            v.push(li.attr("data-origin").await.unwrap().unwrap_or_default());
        }
        v
    };
    assert_eq!(frozen, origins, "the origins fixed at sign-off are the ones reviewed before it");
    app.click("[data-testid=review-close]").await;

    // Restart and reopen: drafts, report and notes are all there.
    let app = app.restart().await;
    app.wait_for_count("[data-testid=session-item]", 1).await;
    app.wait_for_text("[data-testid=session-status]", "Final").await;
    app.click("[data-testid=session-item]").await;
    app.wait_for_count("[data-testid=draft-tab]", 3).await;
    assert_eq!(app.value_of("[data-testid=notes-indication]").await, "Cough and fever");
    app.wait_for_text("[data-testid=signed-report]", "Clinician addition: no pneumothorax.").await;
    let label = app.text_of("[data-testid=draft] .ai-label").await;
    assert!(label.contains("signed"), "{label}");
    app.quit().await;
}

#[tokio::test(flavor = "current_thread")]
#[ignore = "needs a display and tauri-driver: run by `make test` under Xvfb"]
async fn the_same_seed_gives_the_same_draft() {
    let image = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/tiny-gemma3/images/rgb.jpg");
    let app = App::launch_in(data_dir_with_model(), &[image.to_str().unwrap()]).await;
    app.wait_for_count("[data-testid=session-item][aria-current=true]", 1).await;
    // The department's own template is offered.
    let picker = app.client.find(fantoccini::Locator::Css("[data-testid=template-picker]")).await.unwrap();
    picker.select_by_value("short-note").await.unwrap();
    app.click("[data-testid=draft-button]").await;
    watch_stream(&app, None).await;
    app.wait_for_count("[data-testid=draft-tab]", 1).await;
    // A sampled draft (new seed), then the same seed again.
    app.click("[data-testid=regenerate]").await;
    watch_stream(&app, None).await;
    app.wait_for_count("[data-testid=draft-tab]", 2).await;
    let sampled = app.text_of("[data-testid=draft-text]").await;
    let meta = app.text_of("[data-testid=draft] .meta").await;
    assert!(meta.contains("seed"), "{meta}");
    app.click("[data-testid=reproduce]").await;
    watch_stream(&app, None).await;
    app.wait_for_count("[data-testid=draft-tab]", 3).await;
    let again = app.text_of("[data-testid=draft-text]").await;
    assert_eq!(again, sampled, "the same seed and settings give the same draft");
    let verdict = app.text_of("[data-testid=draft-verdict]").await;
    assert!(verdict.contains("reproduced exactly"), "the re-run says it came out the same: {verdict}");
    let meta_again = app.text_of("[data-testid=draft] .meta").await;
    let seed = |m: &str| m.split("seed ").nth(1).and_then(|s| s.split_whitespace().next()).map(str::to_string);
    assert_eq!(seed(&meta_again), seed(&meta));
    let reused = app.text_of("[data-testid=draft-reuse]").await;
    assert!(reused.contains("Reused") && reused.contains("image"), "a regeneration reuses the prompt and image: {reused}");

    // A follow-up question about the first (greedy) draft: answered as its own draft, reusing the conversation.
    app.click("[data-testid=draft-tab]").await;
    app.type_into("[data-testid=follow-up]", "Is the heart enlarged?").await;
    app.client.find(fantoccini::Locator::Css("[data-testid=follow-up]")).await.unwrap().send_keys("\u{E007}").await.unwrap();
    watch_stream(&app, None).await;
    app.wait_for_count("[data-testid=draft-tab]", 4).await;
    let q = app.text_of("[data-testid=draft] .question").await;
    assert!(q.contains("Is the heart enlarged?"), "{q}");
    let reused = app.text_of("[data-testid=draft-reuse]").await;
    assert!(reused.contains("Reused"), "{reused}");
    let _ = attr(&app, "[data-testid=draft]", "data-draft-id").await;

    // The advanced settings: the chosen values are used, kept and shown.
    app.click("[data-testid=advanced] summary").await;
    app.type_into("[data-testid=sampling-temperature]", "0.9").await;
    app.type_into("[data-testid=sampling-top-k]", "20").await;
    app.type_into("[data-testid=sampling-seed]", "1234").await;
    app.click("[data-testid=draft-button]").await;
    watch_stream(&app, None).await;
    app.wait_for_count("[data-testid=draft-tab]", 5).await;
    let meta = app.text_of("[data-testid=draft] .meta").await;
    assert!(meta.contains("temperature 0.9") && meta.contains("top-k 20") && meta.contains("seed 1234"), "{meta}");
    app.quit().await;
}

/// MedGemma 1.5 thinks before it answers. Its thinking is kept with the draft,
/// shown collapsed beside it, and left out of the report started from the
/// draft and of every export. The tiny model does not think, so the draft
/// arrives as a colleague's session bundle would bring one (imported with
/// `sessions import`), written as MedGemma 1.5 writes it.
#[tokio::test(flavor = "current_thread")]
#[ignore = "needs a display and tauri-driver: run by `make test` under Xvfb"]
async fn a_drafts_thinking_is_shown_collapsed_and_kept_out_of_the_report_and_exports() {
    const THINKING: &str = "Check the costophrenic angles before the heart size.";
    const ANSWER: &str = "FINDINGS: The lungs are clear. IMPRESSION: No acute disease.";
    let dir = tempfile::tempdir().unwrap();
    let at = "2026-12-01T09:30:00.000Z";
    let bundle = serde_json::json!({
        "format": "medgemma-desk-session", "format_version": 2, "app_version": "0.1.0", "exported_at": at,
        "session": { "title": "CR CHEST PA", "created_at": at, "updated_at": at, "status": "drafted" },
        "notes": { "indication": "Cough", "history": "", "comparison": "", "free_text": "" },
        "images": [], "model_inputs": [], "reports": [],
        "drafts": [{
            "created_at": at, "model_id": "google/medgemma-1.5-4b-it", "weights_sha256": "a".repeat(64),
            "quantization": "bf16", "device": "cpu", "app_version": "0.1.0",
            "prompt": "<bos><start_of_turn>user\nDescribe this X-ray.<end_of_turn>\n<start_of_turn>model\n",
            "params": { "temperature": 0.0 }, "seed": 0, "prompt_tokens": 12, "generated_tokens": 40, "timings": {},
            "stop_reason": "end_of_turn", "text": ANSWER, "template": "chest-xray-report", "thinking": THINKING
        }]
    });
    let file = dir.path().join("colleague.mgdesk.json");
    std::fs::write(&file, serde_json::to_vec(&bundle).unwrap()).unwrap();
    let desk = |args: &[&str]| {
        let out = std::process::Command::new(crate::harness::app_binary())
            .arg("--data-dir")
            .arg(dir.path())
            .args(args)
            .output()
            .unwrap();
        assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
    };
    desk(&["sessions", "import", file.to_str().unwrap()]);

    let app = App::launch_in(dir, &[]).await;
    app.click("[data-testid=session-item]").await;
    app.wait_for_count("[data-testid=draft-thinking]", 1).await;
    assert_eq!(attr(&app, "[data-testid=draft-thinking]", "open").await, None, "the thinking starts collapsed");
    let text = app.text_of("[data-testid=draft-text]").await;
    assert!(text.contains("The lungs are clear") && !text.contains("costophrenic"), "the draft is the answer alone: {text}");
    app.click("[data-testid=draft-thinking] summary").await;
    app.wait_for_text("[data-testid=draft-thinking]", "costophrenic angles").await;

    // The report started from the draft has the answer, not the thinking.
    app.click("[data-testid=use-draft]").await;
    let deadline = Instant::now() + Duration::from_secs(10);
    let report = loop {
        let report = app.value_of("[data-testid=report-editor]").await;
        if report.contains("The lungs are clear") || Instant::now() > deadline {
            break report;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(report.contains("The lungs are clear") && !report.contains("costophrenic"), "{report:?}");
    app.click("[data-testid=sign-final]").await;
    app.wait_for_text("[data-testid=signed-report]", "lungs are clear").await;
    // No export carries it.
    let dir = app.data_dir.path().to_path_buf();
    let kept = tempfile::tempdir().unwrap();
    for format in ["markdown", "pdf", "fhir"] {
        let out = kept.path().join(format!("report.{format}"));
        let out_arg = out.to_str().unwrap().to_string();
        let status = std::process::Command::new(crate::harness::app_binary())
            .arg("--data-dir")
            .arg(&dir)
            .args(["sessions", "export", "1", "--format", format, "--output", &out_arg])
            .output()
            .unwrap();
        assert!(status.status.success(), "{format}: {}", String::from_utf8_lossy(&status.stderr));
        let text = match format {
            "pdf" => String::from_utf8(std::process::Command::new("pdftotext").arg(&out).arg("-").output().unwrap().stdout).unwrap(),
            _ => std::fs::read_to_string(&out).unwrap(),
        };
        assert!(text.contains("lungs are clear"), "{format} has the report: {text}");
        assert!(!text.contains("costophrenic"), "{format} leaves the thinking out: {text}");
    }
    app.quit().await;
}
