//! The drafting service: its policy on its own, and one draft made through the
//! window's path and the command line's on the tiny real Gemma 3 fixture.

use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Duration;

use super::*;
use crate::session::OpenedStudy;
use crate::store::SessionDetail;

fn fixture(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/tiny-gemma3").join(rel)
}

fn template(temperature: f64) -> Template {
    let mut t = templates::find(Path::new("/nonexistent"), templates::DEFAULT_TEMPLATE).expect("the built-in template");
    t.temperature = temperature;
    t
}

fn stored(params: serde_json::Value, seed: u64, question: Option<&str>) -> NewDraft {
    NewDraft {
        model_id: "m".into(),
        weights_sha256: "0".repeat(64),
        quantization: "f32".into(),
        device: "cpu".into(),
        app_version: crate::version::APP_VERSION.into(),
        prompt: "p".into(),
        params,
        seed,
        prompt_tokens: 1,
        generated_tokens: 1,
        timings: serde_json::json!({}),
        stop_reason: "end_of_turn".into(),
        text: "No acute findings.".into(),
        template: templates::DEFAULT_TEMPLATE.into(),
        question: question.map(str::to_string),
        error: None,
    }
}

fn order(mode: DraftMode, base: Option<NewDraft>, question: Option<&str>, seed: Option<u64>) -> Order {
    Order { mode, template: template(0.0), notes: Notes::default(), image: None, base, question: question.map(str::to_string), seed, max_tokens: None }
}

#[test]
fn a_greedy_template_drafts_greedily_and_a_chosen_seed_samples() {
    assert_eq!(sampling_for(DraftMode::First, &template(0.0), None, None).unwrap(), Sampling::greedy());
    let seeded = sampling_for(DraftMode::First, &template(0.0), None, Some(42)).unwrap();
    assert_eq!((seeded.temperature, seeded.seed, seeded.top_p, seeded.top_k), (0.7, 42, Some(0.95), Some(64)));
    let warm = sampling_for(DraftMode::First, &template(0.3), None, None).unwrap();
    assert_eq!(warm.temperature, 0.3);
}

#[test]
fn regenerate_samples_with_a_new_seed_even_on_a_greedy_template() {
    let a = sampling_for(DraftMode::Regenerate, &template(0.0), None, None).unwrap();
    assert_eq!(a.temperature, 0.7);
    let seeds: std::collections::BTreeSet<u64> =
        (0..8).map(|_| sampling_for(DraftMode::Regenerate, &template(0.0), None, None).unwrap().seed).collect();
    assert!(seeds.len() > 1, "every regenerate got the same seed: {seeds:?}");
}

#[test]
fn reproduce_takes_the_stored_parameters_and_seed() {
    let base = stored(serde_json::json!({"temperature": 0.4, "top_p": 0.9, "top_k": 20, "max_new_tokens": 300}), 77, Some("Is there a pneumothorax?"));
    let s = sampling_for(DraftMode::Reproduce, &template(0.0), Some(&base), Some(1)).unwrap();
    assert_eq!(s, Sampling { temperature: 0.4, top_p: Some(0.9), top_k: Some(20), seed: 77 });
    let req = order(DraftMode::Reproduce, Some(base), None, None).request().unwrap();
    assert_eq!(req.question.as_deref(), Some("Is there a pneumothorax?"));
    // A greedy draft stored without sampling fields reproduces greedily.
    let greedy = sampling_for(DraftMode::Reproduce, &template(0.9), Some(&stored(serde_json::json!({"max_new_tokens": 10}), 0, None)), None).unwrap();
    assert_eq!(greedy, Sampling::greedy());
}

#[test]
fn reproduce_and_follow_up_need_a_base_and_a_follow_up_needs_a_question() {
    assert!(matches!(order(DraftMode::Reproduce, None, None, None).request(), Err(ServiceError::NoBase)));
    assert!(matches!(order(DraftMode::FollowUp, None, Some("why?"), None).request(), Err(ServiceError::NoBase)));
    let base = stored(serde_json::json!({}), 0, Some("first question"));
    assert!(matches!(order(DraftMode::FollowUp, Some(base.clone()), Some("   "), None).request(), Err(ServiceError::NoQuestion)));
    let req = order(DraftMode::FollowUp, Some(base), Some(" Which side? "), None).request().unwrap();
    assert_eq!(req.question.as_deref(), Some("Which side?"));
    assert_eq!(req.earlier, Some(("No acute findings.".to_string(), Some("first question".to_string()))));
}

#[test]
fn imaging_composites_alpha_onto_white_exactly_as_the_runtime_does() {
    // Every channel value at every alpha, as one 256×256 RGBA image.
    let rgba = image::RgbaImage::from_fn(256, 256, |x, y| image::Rgba([x as u8, 255 - x as u8, (x ^ y) as u8, y as u8]));
    let img = image::DynamicImage::ImageRgba8(rgba);
    // The runtime composites inside its resize; at the image's own size the
    // model sees the same pixels either way.
    let processor = medgemma_models::ImageProcessor::gemma3(256);
    let ours = processor.resized(&image::DynamicImage::ImageRgb8(imaging::rgb_on_white(&img))).unwrap();
    assert_eq!(ours, processor.resized(&img).unwrap());
}

/// A session as the store keeps it, with its drafts.
fn drafts(sessions: &Sessions, id: SessionId) -> SessionDetail {
    sessions.with_store(|s| s.session(id)).expect("the store").expect("the session")
}

#[test]
fn the_window_and_the_command_line_give_the_same_draft() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path();
    std::fs::create_dir_all(data.join(MODELS_DIR)).unwrap();
    let model = data.join(MODELS_DIR).join("tiny-gemma3");
    std::os::unix::fs::symlink(fixture("model"), &model).unwrap();
    let image = fixture("images/grey.png");
    let notes = Notes { indication: "cough for two weeks".into(), history: "smoker".into(), comparison: String::new(), free_text: String::new() };

    // The window: the study on screen, its session with the notes, Draft pressed.
    let sessions = Arc::new(Sessions::open(data));
    let service = Service::new(data, sessions.clone());
    let reading = Reading::default();
    assert!(reading.open(std::slice::from_ref(&image)));
    let opened = reading.with_study(OpenedStudy::of).unwrap();
    let id = sessions.start(&opened).unwrap();
    sessions.with_store(|s| s.save_notes(id, &notes)).unwrap();
    let (tx, rx) = mpsc::channel();
    let order = WindowOrder { session: id, template_id: templates::DEFAULT_TEMPLATE.into(), mode: DraftMode::First, base_draft_id: None, question: None };
    service.start(&reading, order, move |ev| { let _ = tx.send(ev); }, || {}).unwrap();
    let window_draft_id = loop {
        match rx.recv_timeout(Duration::from_secs(300)).expect("the draft finishes") {
            DraftEvent::Finished { draft_id, .. } => break draft_id,
            DraftEvent::Failed { message, .. } => panic!("the window's draft failed: {message}"),
            _ => {}
        }
    };

    // The command line, on the same model file, image and notes.
    let code = crate::cli::run([
        "medgemma-desk", "--data-dir", &data.display().to_string(), "draft", "--model", &model.display().to_string(),
        "--image", &image.display().to_string(), "--indication", &notes.indication, "--history", &notes.history,
    ]);
    assert_eq!(code, std::process::ExitCode::SUCCESS);

    let all = sessions.with_store(|s| s.find_sessions("", 10)).unwrap();
    let cli_id = all.sessions.iter().map(|s| s.id).find(|&s| s != id).expect("the CLI kept a session");
    let window = drafts(&sessions, id).drafts.into_iter().find(|d| d.id.0 == window_draft_id).unwrap().draft;
    let cli = drafts(&sessions, cli_id).drafts.pop().expect("the CLI kept its draft").draft;
    assert!(!window.text.is_empty());
    let same = |d: &NewDraft| (d.text.clone(), d.prompt.clone(), d.params.clone(), d.seed, d.model_id.clone(), d.weights_sha256.clone(), d.template.clone(), d.prompt_tokens, d.generated_tokens);
    assert_eq!(same(&window), same(&cli));
}
