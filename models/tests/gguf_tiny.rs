//! The GGUF path against the transformers reference: the tiny Gemma 3
//! fixture converted to a GGUF pair as llama.cpp converts MedGemma
//! (tests/fixtures/tiny-gemma3/to_gguf.py: decoder + mmproj, F32) must give
//! the reference's logits (1e-4) and greedy tokens, images included.

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::OnceLock;

use candle_core::{Device, IndexOp, Tensor};
use medgemma_models::{DeviceChoice, GenerationParams, Model, ModelSource};
use serde_json::Value;

const LOGIT_TOLERANCE: f32 = 1e-4;

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/tiny-gemma3")
}

struct Fixture {
    model: Model,
    cases: Vec<Value>,
    tensors: std::collections::HashMap<String, Tensor>,
}

fn load() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let dir = fixture();
        let model = Model::load(
            &ModelSource::with_projector(&dir.join("gguf/tiny-gemma3-f32.gguf"), Some(&dir.join("gguf/mmproj-tiny-gemma3-f32.gguf"))),
            DeviceChoice::Cpu,
        )
        .expect("the tiny GGUF pair loads");
        let cases: Value = serde_json::from_str(&std::fs::read_to_string(dir.join("expected/cases.json")).unwrap()).unwrap();
        let tensors = candle_core::safetensors::load(dir.join("expected/tensors.safetensors"), &Device::Cpu).unwrap();
        Fixture { model, cases: cases["cases"].as_array().unwrap().clone(), tensors }
    })
}

fn ids(v: &Value) -> Vec<u32> {
    v.as_array().unwrap().iter().map(|x| x.as_u64().unwrap() as u32).collect()
}

fn pixels(f: &Fixture, c: &Value) -> Vec<Tensor> {
    let name = c["name"].as_str().unwrap();
    let n = c["images"].as_array().map_or(0, Vec::len);
    (0..n).map(|i| f.tensors[&format!("{name}.pixel_values")].i(i).unwrap()).collect()
}

fn max_abs_diff(a: &Tensor, b: &Tensor) -> f32 {
    assert_eq!(a.dims(), b.dims(), "shapes differ");
    (a - b).unwrap().abs().unwrap().flatten_all().unwrap().max(0).unwrap().to_scalar::<f32>().unwrap()
}

#[test]
fn the_pair_reads_the_reference_configuration() {
    let c = load().model.config();
    let v = c.vision.as_ref().expect("the projector adds the tower");
    assert_eq!((v.hidden_size, v.num_hidden_layers, v.image_size, v.patch_size), (32, 2, 32, 4));
    assert_eq!(c.mm_tokens_per_image, 16, "the pooling factor 2 is read from the projector file");
    assert!((c.text.query_pre_attn_scalar - 20.0).abs() < 1e-4, "attention.scale is honoured");
    assert_eq!((c.text.rope_global.linear_factor, c.text.sliding_window), (8.0, 16));
}

#[test]
fn logits_at_every_position_match_the_reference_with_and_without_images() {
    let f = load();
    for c in &f.cases {
        let name = c["name"].as_str().unwrap();
        let logits = f.model.prompt_logits(&ids(&c["input_ids"]), &pixels(f, c)).unwrap();
        let diff = max_abs_diff(&logits, &f.tensors[&format!("{name}.logits")]);
        assert!(diff <= LOGIT_TOLERANCE, "{name}: max |Δlogit| {diff}");
    }
}

#[test]
fn greedy_generation_equals_the_reference() {
    let f = load();
    for c in &f.cases {
        let want = ids(&c["greedy_ids"]);
        let params = GenerationParams { max_new_tokens: want.len(), ignore_eos: true, ..Default::default() };
        let out = f.model.generate_from_pixels(&ids(&c["input_ids"]), &pixels(f, c), &params, &mut |_| {}, &AtomicBool::new(false)).unwrap();
        assert_eq!(out.token_ids, want, "{}", c["name"]);
    }
}

#[test]
fn an_image_through_the_projector_preprocesses_as_the_reference() {
    let f = load();
    let c = f.cases.iter().find(|c| c["name"] == "one_image").unwrap();
    let path = fixture().join("images").join(c["images"][0].as_str().unwrap());
    let image = medgemma_models::open_image(&path).unwrap();
    let ours = f.model.preprocess(&image).unwrap();
    assert!(max_abs_diff(&ours, &pixels(f, c)[0]) <= 1e-6);
}

#[test]
fn without_its_projector_the_decoder_writes_text_and_names_what_is_missing_for_images() {
    let dir = tempfile::tempdir().unwrap();
    let alone = dir.path().join("tiny-gemma3-f32.gguf");
    std::fs::copy(fixture().join("gguf/tiny-gemma3-f32.gguf"), &alone).unwrap();
    let model = Model::load(&ModelSource::at(&alone), DeviceChoice::Cpu).expect("the decoder loads alone");
    let c = load().cases.iter().find(|c| c["name"] == "text_only").unwrap();
    let logits = model.prompt_logits(&ids(&c["input_ids"]), &[]).unwrap();
    assert!(max_abs_diff(&logits, &load().tensors["text_only.logits"]) <= LOGIT_TOLERANCE);
    let image = image::DynamicImage::new_rgb8(8, 8);
    let err = model.preprocess(&image).unwrap_err().to_string();
    assert!(err.contains("tiny-gemma3-f32.gguf") && err.contains("mmproj"), "{err}");

    // Next to it, the projector is found without being named.
    std::fs::copy(fixture().join("gguf/mmproj-tiny-gemma3-f32.gguf"), dir.path().join("mmproj-tiny-gemma3-f32.gguf")).unwrap();
    let model = Model::load(&ModelSource::at(&alone), DeviceChoice::Cpu).unwrap();
    assert!(model.config().vision.is_some());
}

#[test]
fn files_swapped_between_decoder_and_projector_are_named() {
    // (A projector of another width: tests/gguf_real.rs, with the 270M.)
    let dir = fixture().join("gguf");
    let err = Model::load(&ModelSource::with_projector(&dir.join("mmproj-tiny-gemma3-f32.gguf"), None), DeviceChoice::Cpu)
        .err()
        .expect("a projector is not a decoder")
        .to_string();
    assert!(err.contains("\"clip\" is not supported"), "{err}");
    let err = Model::load(&ModelSource::with_projector(&dir.join("tiny-gemma3-f32.gguf"), Some(&dir.join("tiny-gemma3-f32.gguf"))), DeviceChoice::Cpu)
        .err()
        .expect("a decoder is not a projector")
        .to_string();
    assert!(err.contains("not a vision projector"), "{err}");
}
