//! Numerical parity with the reference implementation (Hugging Face
//! transformers, float32) on a tiny random Gemma 3 multimodal model saved in
//! the real checkpoint layout: tests/fixtures/tiny-gemma3 (see its README).
//! Loaded through the same public API as a real model.
//!
//! On the CPU in f32 by default. The same test binary checks a GPU
//! (tests/gpu/run.sh): MEDGEMMA_TEST_DEVICE=cuda, MEDGEMMA_TEST_PRECISION=f32
//! or bf16, MEDGEMMA_TEST_LOGIT_TOLERANCE for bf16's wider one. Each
//! comparison prints what it measured (`--nocapture` shows it).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::OnceLock;

use candle_core::{Device, IndexOp, Tensor};
use medgemma_models::{Content, DeviceChoice, GenerationParams, Message, Model, ModelSource, Precision, Role};
use serde_json::Value;

/// The largest |Δlogit| (and |Δfeature|) allowed: 1e-4 in f32 anywhere.
fn tolerance() -> f32 {
    std::env::var("MEDGEMMA_TEST_LOGIT_TOLERANCE").ok().and_then(|t| t.parse().ok()).unwrap_or(1e-4)
}

/// The device and precision under test (the CPU in f32 unless set).
fn device_under_test() -> (DeviceChoice, Precision) {
    let env = |k: &str, d: &str| std::env::var(k).unwrap_or_else(|_| d.to_owned());
    let device = env("MEDGEMMA_TEST_DEVICE", "cpu").parse().expect("MEDGEMMA_TEST_DEVICE: cpu, cuda, cuda:N or metal");
    let precision = env("MEDGEMMA_TEST_PRECISION", "f32").parse().expect("MEDGEMMA_TEST_PRECISION: f32 or bf16");
    (device, precision)
}

/// The fixture folder; MEDGEMMA_FIXTURE_DIR names it where the test binary
/// runs away from its sources (a GPU machine).
fn fixture() -> PathBuf {
    match std::env::var_os("MEDGEMMA_FIXTURE_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/tiny-gemma3"),
    }
}

struct Fixture {
    model: Model,
    cases: Vec<Value>,
    tensors: HashMap<String, Tensor>,
}

fn load() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let dir = fixture();
        let (device, precision) = device_under_test();
        let model = Model::load_as(&ModelSource::at(&dir.join("model")), device, precision).expect("the tiny model loads");
        eprintln!("parity on {} in {}", model.device_name(), model.compute_dtype());
        let cases: Value = serde_json::from_str(&std::fs::read_to_string(dir.join("expected/cases.json")).unwrap()).unwrap();
        let tensors = candle_core::safetensors::load(dir.join("expected/tensors.safetensors"), &Device::Cpu).unwrap();
        Fixture { model, cases: cases["cases"].as_array().unwrap().clone(), tensors }
    })
}

fn case(name: &str) -> &'static Value {
    load().cases.iter().find(|c| c["name"] == name).unwrap_or_else(|| panic!("no case {name}"))
}

fn ids(v: &Value) -> Vec<u32> {
    v.as_array().unwrap().iter().map(|x| x.as_u64().unwrap() as u32).collect()
}

fn tensor(name: &str) -> &'static Tensor {
    load().tensors.get(name).unwrap_or_else(|| panic!("no tensor {name}"))
}

/// max |a − b|, computed on the CPU in f32 (`a` may be on the device under test).
fn max_abs_diff(a: &Tensor, b: &Tensor) -> f32 {
    assert_eq!(a.dims(), b.dims(), "shapes differ");
    let a = a.to_device(&Device::Cpu).unwrap().to_dtype(candle_core::DType::F32).unwrap();
    (&a - b).unwrap().abs().unwrap().flatten_all().unwrap().max(0).unwrap().to_scalar::<f32>().unwrap()
}

/// The reference's preprocessed pixels of a case, one [3, S, S] per image,
/// on the device under test.
fn reference_pixels(name: &str) -> Vec<Tensor> {
    let c = case(name);
    let n = c["images"].as_array().unwrap().len();
    let device = load().model.device();
    (0..n).map(|i| tensor(&format!("{name}.pixel_values")).i(i).unwrap().to_device(device).unwrap()).collect()
}

fn messages(c: &Value) -> Vec<Message> {
    c["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            let role = match m["role"].as_str().unwrap() {
                "system" => Role::System,
                "user" => Role::User,
                _ => Role::Assistant,
            };
            let content = m["content"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| match p["type"].as_str().unwrap() {
                    "image" => Content::Image,
                    _ => Content::Text(p["text"].as_str().unwrap().to_owned()),
                })
                .collect();
            Message { role, content }
        })
        .collect()
}

const CHAT_CASES: &[&str] = &["text_only", "one_image", "two_images", "long_text", "long_with_image", "rgba_image", "multi_turn"];
const ALL_CASES: &[&str] = &["text_only", "one_image", "two_images", "long_text", "long_with_image", "rgba_image", "multi_turn", "raw_text"];

#[test]
fn chat_template_and_tokenizer_give_the_reference_ids() {
    let model = &load().model;
    for name in CHAT_CASES {
        let c = case(name);
        assert_eq!(model.render_prompt(&messages(c)).unwrap(), c["expanded_text"].as_str().unwrap(), "{name}: prompt text");
        assert_eq!(model.encode_conversation(&messages(c)).unwrap(), ids(&c["input_ids"]), "{name}: token ids");
    }
    let raw = case("raw_text");
    assert_eq!(model.encode_raw(raw["prompt_text"].as_str().unwrap()).unwrap(), ids(&raw["input_ids"]));
}

#[test]
fn preprocessed_pixels_equal_the_reference() {
    let model = &load().model;
    for name in ["one_image", "two_images", "long_with_image", "rgba_image"] {
        let c = case(name);
        for (i, file) in c["images"].as_array().unwrap().iter().enumerate() {
            let file = file.as_str().unwrap();
            let img = medgemma_models::open_image(&fixture().join("images").join(file)).unwrap();
            let ours = model.preprocess(&img).unwrap();
            let want = tensor(&format!("{name}.pixel_values")).i(i).unwrap();
            let diff = max_abs_diff(&ours, &want);
            // One 8-bit level is 2/255 after normalisation. PNGs decode to the
            // same bytes as Pillow, so they must match exactly; a JPEG may be
            // decoded by a different IDCT (zune-jpeg vs libjpeg-turbo).
            let limit = if file.ends_with(".jpg") { 2.0 / 255.0 * 3.0 + 1e-6 } else { 1e-6 };
            assert!(diff <= limit, "{name} image {file}: max |Δpixel| = {diff}");
        }
    }
}

#[test]
fn image_features_match_after_the_projector() {
    let model = &load().model;
    for name in ["one_image", "two_images", "long_with_image", "rgba_image", "multi_turn"] {
        for (i, px) in reference_pixels(name).iter().enumerate() {
            let ours = model.image_features(px).unwrap();
            let want = tensor(&format!("{name}.image_features")).i(i).unwrap();
            let diff = max_abs_diff(&ours, &want);
            eprintln!("{name} image {i}: max |Δfeature| = {diff:e}");
            assert!(diff <= tolerance(), "{name} image {i}: max |Δfeature| = {diff}");
        }
    }
}

#[test]
fn logits_at_every_position_match_within_1e_4() {
    let model = &load().model;
    for name in ALL_CASES {
        let c = case(name);
        let logits = model.prompt_logits(&ids(&c["input_ids"]), &reference_pixels(name)).unwrap();
        let diff = max_abs_diff(&logits, tensor(&format!("{name}.logits")));
        eprintln!("{name}: max |Δlogit| = {diff:e}");
        assert!(diff <= tolerance(), "{name}: max |Δlogit| = {diff}");
    }
}

#[test]
fn logits_do_not_depend_on_the_prefill_chunk_size() {
    // Chunks of 5 tokens split the long prompts across the sliding window but
    // never split an image's soft tokens.
    let model = &load().model;
    for name in ["long_text", "long_with_image", "two_images"] {
        let c = case(name);
        let input = ids(&c["input_ids"]);
        let logits = model.prompt_logits_in_chunks(&input, &reference_pixels(name), 5).unwrap();
        let diff = max_abs_diff(&logits, tensor(&format!("{name}.logits")));
        assert!(diff <= tolerance(), "{name}: chunked prefill max |Δlogit| = {diff}");
    }
}

#[test]
fn greedy_generation_with_the_kv_cache_equals_the_reference() {
    let model = &load().model;
    for name in ALL_CASES {
        let c = case(name);
        let want = ids(&c["greedy_ids"]);
        let params = GenerationParams { max_new_tokens: want.len(), ignore_eos: true, ..Default::default() };
        let out = model.generate_from_pixels(&ids(&c["input_ids"]), &reference_pixels(name), &params, &mut |_| {}, &AtomicBool::new(false)).unwrap();
        assert_eq!(out.token_ids, want, "{name}: greedy tokens");
    }
}

#[test]
fn generation_stops_at_the_end_of_turn() {
    // With stopping on, the output is the reference's greedy run cut before its first end token.
    let model = &load().model;
    let stops = &model.config().eos_token_ids;
    for name in ALL_CASES {
        let c = case(name);
        let greedy = ids(&c["greedy_ids"]);
        let cut: Vec<u32> = greedy.iter().copied().take_while(|t| !stops.contains(t)).collect();
        let params = GenerationParams { max_new_tokens: greedy.len(), ..Default::default() };
        let out = model.generate_from_pixels(&ids(&c["input_ids"]), &reference_pixels(name), &params, &mut |_| {}, &AtomicBool::new(false)).unwrap();
        assert_eq!(out.token_ids, cut, "{name}");
        let expected_reason = if cut.len() < greedy.len() { "EndOfTurn" } else { "MaxTokens" };
        assert_eq!(format!("{:?}", out.stop_reason), expected_reason, "{name}");
    }
}

#[test]
fn streamed_text_is_whole_characters_and_adds_up_to_the_answer() {
    let model = &load().model;
    let c = case("text_only");
    let mut pieces = Vec::new();
    let params = GenerationParams { max_new_tokens: 12, ignore_eos: true, ..Default::default() };
    let out = model.generate_from_pixels(&ids(&c["input_ids"]), &[], &params, &mut |p| pieces.push(p.to_owned()), &AtomicBool::new(false)).unwrap();
    assert!(pieces.iter().all(|p| !p.contains('\u{FFFD}') || out.text.contains('\u{FFFD}')));
    let joined: String = pieces.concat();
    assert!(out.text.starts_with(&joined), "{joined:?} vs {:?}", out.text);
}

#[test]
fn cancel_stops_before_the_next_token() {
    let model = &load().model;
    let c = case("text_only");
    let cancel = AtomicBool::new(false);
    let mut seen = 0;
    let params = GenerationParams { max_new_tokens: 12, ignore_eos: true, ..Default::default() };
    let out = model
        .generate_from_pixels(
            &ids(&c["input_ids"]),
            &[],
            &params,
            &mut |_| {
                seen += 1;
                if seen == 2 {
                    cancel.store(true, std::sync::atomic::Ordering::Relaxed);
                }
            },
            &cancel,
        )
        .unwrap();
    assert_eq!(format!("{:?}", out.stop_reason), "Cancelled");
    // The flag was set while the second piece of text was delivered: at most
    // one more token was being computed then, and none after it.
    assert!(out.token_ids.len() <= ids(&c["greedy_ids"]).len());
    let streamed_tokens_bound = out.token_ids.len();
    assert!(streamed_tokens_bound >= 2);
    let again = model.generate_from_pixels(&ids(&c["input_ids"]), &[], &params, &mut |_| {}, &AtomicBool::new(true)).unwrap();
    assert!(again.token_ids.is_empty(), "a cancelled run must not produce tokens");
}

#[test]
fn a_prompt_longer_than_the_context_is_refused_before_running() {
    let model = &load().model;
    let limit = model.config().text.max_position_embeddings;
    let long = vec![300u32; limit + 1];
    let err = model.generate_from_pixels(&long, &[], &GenerationParams::default(), &mut |_| {}, &AtomicBool::new(false)).unwrap_err();
    assert!(err.to_string().contains(&format!("at most {limit}")), "{err}");
}

#[test]
fn a_token_outside_the_vocabulary_is_refused() {
    let model = &load().model;
    let vocab = model.config().text.vocab_size as u32;
    let err = model.generate_from_pixels(&[2, vocab], &[], &GenerationParams::default(), &mut |_| {}, &AtomicBool::new(false)).unwrap_err();
    assert!(err.to_string().contains(&format!("token id {vocab} is outside")), "{err}");
}

#[test]
fn a_sharded_checkpoint_loads_to_the_same_model() {
    // Split the fixture's weights over two shards with an index, as the Hub
    // stores large models, and check the logits do not change.
    let src = fixture().join("model");
    let tmp = tempfile::tempdir().unwrap();
    for f in std::fs::read_dir(&src).unwrap() {
        let f = f.unwrap().path();
        if f.file_name().unwrap() != "model.safetensors" {
            std::fs::copy(&f, tmp.path().join(f.file_name().unwrap())).unwrap();
        }
    }
    let all = candle_core::safetensors::load(src.join("model.safetensors"), &Device::Cpu).unwrap();
    let mut names: Vec<&String> = all.keys().collect();
    names.sort();
    let (a, b) = names.split_at(names.len() / 2);
    let mut map = serde_json::Map::new();
    for (file, part) in [("model-00001-of-00002.safetensors", a), ("model-00002-of-00002.safetensors", b)] {
        let tensors: HashMap<String, Tensor> = part.iter().map(|n| ((*n).clone(), all[*n].clone())).collect();
        candle_core::safetensors::save(&tensors, tmp.path().join(file)).unwrap();
        for n in part.iter() {
            map.insert((*n).clone(), Value::String(file.into()));
        }
    }
    let index = serde_json::json!({"metadata": {}, "weight_map": map});
    std::fs::write(tmp.path().join("model.safetensors.index.json"), index.to_string()).unwrap();

    let sharded = Model::load(&ModelSource::at(tmp.path()), DeviceChoice::Cpu).unwrap();
    let c = case("one_image");
    let pixels: Vec<Tensor> = reference_pixels("one_image").iter().map(|p| p.to_device(&Device::Cpu).unwrap()).collect();
    let logits = sharded.prompt_logits(&ids(&c["input_ids"]), &pixels).unwrap();
    assert!(max_abs_diff(&logits, tensor("one_image.logits")) <= 1e-4);

    // A missing shard is named before anything loads.
    std::fs::remove_file(tmp.path().join("model-00002-of-00002.safetensors")).unwrap();
    let err = Model::load(&ModelSource::at(tmp.path()), DeviceChoice::Cpu).err().unwrap().to_string();
    assert!(err.contains("model-00002-of-00002.safetensors"), "{err}");

    // An index that names no file for a tensor, a shard outside the folder, or
    // no shard at all is refused in words (the first was a panic, found by
    // fuzzing: fuzz/regressions/shard_index/).
    for (weight_map, says) in [
        (serde_json::json!({ "language_model.model.embed_tokens.weight": { "total_size": 164096 } }), "gives language_model.model.embed_tokens.weight no file name"),
        (serde_json::json!({ "a": "../model-00001-of-00002.safetensors" }), "not a file in the model folder"),
        (serde_json::json!({ "a": "/etc/hostname" }), "not a file in the model folder"),
        (serde_json::json!({}), "names no shard"),
    ] {
        let index = serde_json::json!({ "metadata": {}, "weight_map": weight_map });
        std::fs::write(tmp.path().join("model.safetensors.index.json"), index.to_string()).unwrap();
        let err = Model::load(&ModelSource::at(tmp.path()), DeviceChoice::Cpu).err().expect("refused").to_string();
        assert!(err.contains(says), "{err}");
    }
}
