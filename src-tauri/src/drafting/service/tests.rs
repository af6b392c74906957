//! The drafting service: its policy on its own, and one draft made through the
//! window's path and the command line's on the tiny real Gemma 3 fixture.

use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Duration;

use super::*;
use crate::session::OpenedStudy;
use crate::store::SessionDetail;

/// The drafting service on an encrypted store (a passphrase, as without a keyring).
fn encrypted() -> crate::store_key::KeySource {
    crate::store_key::KeySource::Passphrase(zeroize::Zeroizing::new("drafting tests passphrase".into()))
}

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
        ..Default::default()
    }
}

fn order(mode: DraftMode, base: Option<NewDraft>, question: Option<&str>, seed: Option<u64>) -> Order {
    let base = base.map(|b| (DraftId(7), b));
    let sampling = SamplingChoice { seed, ..Default::default() };
    Order { mode, template: template(0.0), notes: Notes::default(), image: None, views: Vec::new(), base, question: question.map(str::to_string), sampling, max_tokens: None }
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
    assert_eq!(s, Sampling { temperature: 0.4, top_p: Some(0.9), top_k: Some(20), repetition_penalty: 1.0, seed: 77 });
    let req = order(DraftMode::Reproduce, Some(base.clone()), None, None).request().unwrap();
    assert_eq!(req.question.as_deref(), Some("Is there a pneumothorax?"));
    // It is a re-run from the base's own record.
    let replay = req.replay.expect("a reproduction replays its base");
    assert_eq!((replay.of, replay.original), (7, base));
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
    let sessions = Arc::new(Sessions::open_with(data, crate::store_key::KeySource::Unencrypted));
    let service = Service::new(data, sessions.clone());
    let reading = Reading::default();
    assert!(reading.open(std::slice::from_ref(&image)));
    let opened = reading.with_study(OpenedStudy::of).unwrap();
    let id = sessions.start(&opened).unwrap();
    sessions.with_store(|s| s.save_notes(id, &notes)).unwrap();
    let (tx, rx) = mpsc::channel();
    let order = WindowOrder { session: id, template_id: templates::DEFAULT_TEMPLATE.into(), mode: DraftMode::First, base_draft_id: None, question: None, sampling: SamplingChoice::default(), on_screen: OnScreen::default() };
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

/// Runs the window's draft `order` to its end; the id of the draft kept.
fn window_draft(service: &Service, reading: &Reading, order: WindowOrder) -> i64 {
    let (tx, rx) = mpsc::channel();
    service.start(reading, order, move |ev| { let _ = tx.send(ev); }, || {}).unwrap();
    loop {
        match rx.recv_timeout(Duration::from_secs(300)).expect("the draft finishes") {
            DraftEvent::Finished { draft_id, .. } => break draft_id,
            DraftEvent::Failed { message, .. } => panic!("the window's draft failed: {message}"),
            _ => {}
        }
    }
}

#[test]
fn a_draft_is_re_run_from_its_record_and_another_model_file_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    // A copy of the model, so that its weights can be changed afterwards.
    let model = tmp.path().join("tiny-gemma3");
    std::fs::create_dir_all(&model).unwrap();
    for entry in std::fs::read_dir(fixture("model")).unwrap().flatten() {
        std::fs::copy(entry.path(), model.join(entry.file_name())).unwrap();
    }
    let (data_arg, model_arg) = (data.display().to_string(), model.display().to_string());
    let image = fixture("images/grey.png").display().to_string();
    // The command line in this process: its new store is made unencrypted by choice.
    std::fs::create_dir_all(&data).unwrap();
    crate::store_key::unlock(&data, &crate::store_key::KeySource::Unencrypted).unwrap();
    let code = crate::cli::run([
        "medgemma-desk", "--data-dir", &data_arg, "draft", "--model", &model_arg, "--image", &image, "--indication", "cough",
    ]);
    assert_eq!(code, std::process::ExitCode::SUCCESS);
    let sessions = Sessions::open_with(&data, crate::store_key::KeySource::Auto);
    let session = sessions.with_store(|s| s.find_sessions("", 10)).unwrap().sessions[0].id;
    let first = drafts(&sessions, session).drafts.pop().expect("the draft was kept");
    // The record holds what a re-run needs.
    assert_eq!(first.draft.prompt_ids.len(), first.draft.prompt_tokens as usize);
    assert_eq!(first.draft.token_ids.len(), first.draft.generated_tokens as usize);
    // What the model saw is kept with the draft, at the model's input size, under its pixels' hash.
    let seen_sha = first.draft.model_input_sha256.clone().expect("the draft names the image its model saw");
    let seen = sessions.with_store(|s| s.model_input(&seen_sha)).unwrap().expect("the model input is kept");
    assert_eq!(seen.dimensions(), (32, 32), "the tiny model's input size");
    assert_eq!(crate::model_input_png::pixels_sha256(&seen), seen_sha);

    // The same model file on the same device: the same tokens, kept beside it with the verdict.
    let id = first.id.0.to_string();
    // The command line in this process: its new store is made unencrypted by choice.
    std::fs::create_dir_all(&data).unwrap();
    crate::store_key::unlock(&data, &crate::store_key::KeySource::Unencrypted).unwrap();
    let code = crate::cli::run(["medgemma-desk", "--data-dir", &data_arg, "draft", "--rerun", &id, "--model", &model_arg]);
    assert_eq!(code, std::process::ExitCode::SUCCESS);
    let after = drafts(&sessions, session).drafts;
    assert_eq!(after.len(), 2);
    let again = &after[1].draft;
    assert_eq!(again.rerun_of, Some(first.id.0));
    assert_eq!(again.rerun_verdict.as_deref(), Some(format!("reproduced exactly ({} tokens)", first.draft.token_ids.len()).as_str()));
    assert_eq!((&again.token_ids, &again.text, &again.prompt_ids), (&first.draft.token_ids, &first.draft.text, &first.draft.prompt_ids));

    // One changed byte in the weights: refused before generating, naming both, nothing kept.
    let weights = model.join("model.safetensors");
    let mut bytes = std::fs::read(&weights).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0x01;
    std::fs::write(&weights, bytes).unwrap();
    let loaded = LoadedModel::load(&model, None, medgemma_models::DeviceChoice::Cpu, None).unwrap();
    let err = rerun_on(&loaded, &sessions, first.id, &mut |_| {}, &AtomicBool::new(false)).err().expect("another model file is refused");
    let words = err.to_string();
    assert!(matches!(err, ServiceError::Draft(DraftError::OtherModel { .. })), "{words}");
    assert!(words.contains(&first.draft.weights_sha256[..12]) && words.contains(&loaded.weights_sha256[..12]), "{words}");
    assert_eq!(drafts(&sessions, session).drafts.len(), 2, "nothing was kept");
    // A draft that does not exist is named.
    let missing = rerun_on(&loaded, &sessions, DraftId(999), &mut |_| {}, &AtomicBool::new(false)).err().unwrap();
    assert_eq!(missing.to_string(), "there is no draft 999");

    // The original model file again, but the original image gone from the store: the
    // image the model saw was kept with the draft, so the re-run still reproduces it.
    let original = LoadedModel::load(&fixture("model"), None, medgemma_models::DeviceChoice::Cpu, None).unwrap();
    assert_eq!(original.weights_sha256, first.draft.weights_sha256, "the fixture is the file the draft was made with");
    let image_sha = drafts(&sessions, session).images[0].sha256.clone();
    let stored = sessions.with_store(|s| s.image_path(&image_sha)).unwrap().unwrap();
    std::fs::remove_file(&stored).unwrap();
    let (_, again) = rerun_on(&original, &sessions, first.id, &mut |_| {}, &AtomicBool::new(false)).expect("the kept model input is enough");
    assert!(again.draft.rerun_verdict.as_deref().is_some_and(|v| v.starts_with("reproduced exactly")), "{:?}", again.draft.rerun_verdict);

    // The kept model input damaged: refused, saying which file, nothing kept.
    let seen_path = sessions.with_store(|s| Ok(s.model_input_path(&seen_sha))).unwrap().unwrap();
    let mut png = std::fs::read(&seen_path).unwrap();
    let middle = png.len() / 2;
    png[middle] ^= 0xff;
    std::fs::write(&seen_path, &png).unwrap();
    let damaged = rerun_on(&original, &sessions, first.id, &mut |_| {}, &AtomicBool::new(false)).err().expect("a damaged input is not used");
    assert!(damaged.to_string().contains("is damaged") && damaged.to_string().contains(&seen_sha), "{damaged}");

    // Both gone: said in one sentence, nothing kept.
    std::fs::remove_file(&seen_path).unwrap();
    let gone = rerun_on(&original, &sessions, first.id, &mut |_| {}, &AtomicBool::new(false)).err().expect("no image, no re-run");
    assert!(matches!(gone, ServiceError::ImageGone(_)), "{gone}");
    assert_eq!(drafts(&sessions, session).drafts.len(), 2, "nothing was kept");
}

#[test]
fn the_window_re_runs_a_follow_up_with_its_conversation() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path();
    std::fs::create_dir_all(data.join(MODELS_DIR)).unwrap();
    std::os::unix::fs::symlink(fixture("model"), data.join(MODELS_DIR).join("tiny-gemma3")).unwrap();
    let sessions = Arc::new(Sessions::open_with(data, encrypted()));
    let service = Service::new(data, sessions.clone());
    let reading = Reading::default();
    assert!(reading.open(&[fixture("images/grey.png")]));
    let id = sessions.start(&reading.with_study(OpenedStudy::of).unwrap()).unwrap();
    let order = |mode, base_draft_id, question: Option<&str>| WindowOrder {
        session: id,
        template_id: templates::DEFAULT_TEMPLATE.into(),
        mode,
        base_draft_id,
        question: question.map(str::to_string),
        sampling: SamplingChoice::default(),
        on_screen: OnScreen::default(),
    };
    let first = window_draft(&service, &reading, order(DraftMode::First, None, None));
    let follow = window_draft(&service, &reading, order(DraftMode::FollowUp, Some(first), Some("Which side?")));
    let again = window_draft(&service, &reading, order(DraftMode::Reproduce, Some(follow), None));
    let all = drafts(&sessions, id).drafts;
    let find = |n: i64| all.iter().find(|d| d.id.0 == n).unwrap().draft.clone();
    let (follow, again) = (find(follow), find(again));
    // The re-run read the follow-up's whole conversation, not a new prompt.
    assert!(follow.prompt.contains("Which side?") && follow.prompt_ids.len() > find(first).prompt_ids.len());
    assert_eq!((&again.prompt, &again.prompt_ids, &again.question), (&follow.prompt, &follow.prompt_ids, &follow.question));
    assert_eq!(again.token_ids, follow.token_ids);
    assert!(again.rerun_verdict.as_deref().is_some_and(|v| v.starts_with("reproduced exactly")), "{:?}", again.rerun_verdict);
}

#[test]
fn chosen_sampling_values_are_used_and_bad_ones_refused() {
    // Turning the temperature up from a greedy template samples, with the chosen seed.
    let s = SamplingChoice { temperature: Some(0.8), seed: Some(42), ..Default::default() }.apply(Sampling::greedy()).unwrap();
    assert_eq!(s, Sampling { temperature: 0.8, top_p: Some(0.95), top_k: Some(64), repetition_penalty: 1.0, seed: 42 });
    let s = SamplingChoice { top_k: Some(5), repetition_penalty: Some(1.3), ..Default::default() }.apply(s).unwrap();
    assert_eq!((s.top_k, s.repetition_penalty, s.seed), (Some(5), 1.3, 42));
    // Zero is greedy: nothing of sampling is recorded.
    assert_eq!(SamplingChoice { temperature: Some(0.0), ..Default::default() }.apply(s).unwrap(), Sampling { repetition_penalty: 1.3, ..Sampling::greedy() });
    // Through the order: what the request samples with.
    let mut o = order(DraftMode::First, None, None, Some(9));
    o.sampling.temperature = Some(0.5);
    assert_eq!(o.request().unwrap().sampling.temperature, 0.5);
    for bad in [
        SamplingChoice { temperature: Some(-1.0), ..Default::default() },
        SamplingChoice { top_p: Some(1.5), ..Default::default() },
        SamplingChoice { top_k: Some(0), ..Default::default() },
        SamplingChoice { repetition_penalty: Some(0.0), ..Default::default() },
    ] {
        assert!(matches!(bad.apply(Sampling::greedy()), Err(ServiceError::BadSetting(_))), "{bad:?}");
    }
}

/// "What the model saw" is the drafting model's own input, for a GGUF model
/// (its vision projector's size) as for a model folder (its config's).
#[test]
fn what_the_model_saw_is_the_drafting_models_input_for_gguf_and_folders() {
    let image = fixture("images/grey.png");
    let view = |install: &dyn Fn(&Path)| {
        let tmp = tempfile::tempdir().unwrap();
        let models = tmp.path().join(MODELS_DIR);
        std::fs::create_dir_all(&models).unwrap();
        install(&models);
        let service = Service::new(tmp.path(), Arc::new(Sessions::open_with(tmp.path(), encrypted())));
        let reading = Reading::default();
        assert!(reading.open(std::slice::from_ref(&image)));
        service.model_view(&reading, OnScreen::default()).unwrap().dimensions()
    };
    let folder = view(&|models| std::os::unix::fs::symlink(fixture("model"), models.join("tiny-gemma3")).unwrap());
    let gguf = view(&|models| {
        let pair = models.join("tiny-gguf");
        std::fs::create_dir_all(&pair).unwrap();
        std::fs::copy(fixture("gguf/tiny-gemma3-f32.gguf"), pair.join("tiny-gemma3-f32.gguf")).unwrap();
        std::fs::copy(fixture("gguf/mmproj-tiny-gemma3-f32.gguf"), pair.join("mmproj-tiny-gemma3-f32.gguf")).unwrap();
    });
    // The tiny model reads 32×32 images; the file on screen is 97×61.
    assert_eq!(folder, (32, 32));
    assert_eq!(gguf, (32, 32));
    // Without a model, the image as the viewer hands it over.
    assert_eq!(view(&|_| {}), (97, 61));
}

/// The window drafts from the image on screen, not always the first: with
/// two images open and the second on screen, the draft's model sees the
/// second (its kept model input is that image as the model reads it), the
/// draft records which image and frame it was, a re-run repeats that record,
/// and an image that is not open is refused before anything is kept.
#[test]
fn the_window_drafts_the_image_on_screen_and_records_which() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path();
    std::fs::create_dir_all(data.join(MODELS_DIR)).unwrap();
    std::os::unix::fs::symlink(fixture("model"), data.join(MODELS_DIR).join("tiny-gemma3")).unwrap();
    let sessions = Arc::new(Sessions::open_with(data, crate::store_key::KeySource::Unencrypted));
    let service = Service::new(data, sessions.clone());
    let reading = Reading::default();
    let files = [fixture("images/grey.png"), fixture("images/rgb2.png")];
    assert!(reading.open(&files));
    let id = sessions.start(&reading.with_study(OpenedStudy::of).unwrap()).unwrap();
    let order = |mode, base_draft_id, image| WindowOrder {
        session: id,
        template_id: templates::DEFAULT_TEMPLATE.into(),
        mode,
        base_draft_id,
        question: None,
        sampling: SamplingChoice::default(),
        on_screen: OnScreen { image, frame: 0 },
    };
    let second = window_draft(&service, &reading, order(DraftMode::First, None, 1));
    let first = window_draft(&service, &reading, order(DraftMode::First, None, 0));
    let again = window_draft(&service, &reading, order(DraftMode::Reproduce, Some(second), 0));
    let all = drafts(&sessions, id).drafts;
    let find = |n: i64| all.iter().find(|d| d.id.0 == n).unwrap().draft.clone();
    let (second, first, again) = (find(second), find(first), find(again));

    let sha = |p: &PathBuf| crate::digest::sha256_hex(&std::fs::read(p).unwrap());
    assert_eq!(second.views, vec![DraftView { image_sha256: sha(&files[1]), position: 1, frame: 0 }]);
    assert_eq!(first.views, vec![DraftView { image_sha256: sha(&files[0]), position: 0, frame: 0 }]);
    // What the model saw is the second image, as the model reads it.
    let loaded = LoadedModel::load(&fixture("model"), None, medgemma_models::DeviceChoice::Cpu, None).unwrap();
    let shown = reading.with_study(|s| model_input(s, 1, 0)).unwrap().unwrap();
    let expected = loaded.model.input_image(&image::DynamicImage::ImageRgb8(shown)).unwrap();
    assert_eq!(second.model_input_sha256.as_deref(), Some(crate::model_input_png::pixels_sha256(&expected).as_str()));
    assert_ne!(second.model_input_sha256, first.model_input_sha256, "two images, two model inputs");
    // A re-run (pressed with the first image on screen) sees what its draft saw.
    assert_eq!(again.views, second.views);
    assert_eq!(again.model_input_sha256, second.model_input_sha256);
    assert!(again.rerun_verdict.as_deref().unwrap_or_default().starts_with("reproduced exactly"), "{:?}", again.rerun_verdict);

    let before = drafts(&sessions, id).drafts.len();
    let missing = service.start(&reading, order(DraftMode::First, None, 2), |_| {}, || {}).err().expect("no third image");
    assert_eq!(missing.kind(), "image");
    assert!(missing.to_string().contains("image 3 does not exist"), "{missing}");
    assert_eq!(drafts(&sessions, id).drafts.len(), before, "nothing was kept");
}
