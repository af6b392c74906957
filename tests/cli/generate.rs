//! `medgemma-desk generate` on the tiny reference model: the same greedy
//! tokens as transformers, through the command line a user would type.

use std::path::PathBuf;

use serde_json::Value;

use crate::{assert_one_line, medgemma_desk, stderr, stdout};

fn fixture() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/tiny-gemma3")
}

fn model() -> String {
    fixture().join("model").display().to_string()
}

fn case(name: &str) -> Value {
    let all: Value = serde_json::from_str(&std::fs::read_to_string(fixture().join("expected/cases.json")).unwrap()).unwrap();
    all["cases"].as_array().unwrap().iter().find(|c| c["name"] == name).unwrap().clone()
}

fn ids(v: &Value) -> Vec<u64> {
    v.as_array().unwrap().iter().map(|x| x.as_u64().unwrap()).collect()
}

/// The JSON object on the last line of stdout.
fn result(out: &std::process::Output) -> Value {
    assert!(out.status.success(), "generate failed: {}", stderr(out));
    let text = stdout(out);
    let last = text.trim_end().lines().last().expect("some output");
    serde_json::from_str(last).unwrap_or_else(|e| panic!("last line is not JSON ({e}): {last}"))
}

/// The reference's greedy run, cut before its first end-of-turn token.
fn expected_answer(c: &Value) -> Vec<u64> {
    ids(&c["greedy_ids"]).into_iter().take_while(|&t| t != 1 && t != 6).collect()
}

#[test]
fn prompt_ids_with_images_give_the_reference_greedy_tokens() {
    // PNG images only: JPEG decoders may differ by a level (see the parity tests).
    for name in ["one_image", "rgba_image", "long_with_image", "multi_turn", "text_only", "long_text", "raw_text"] {
        let c = case(name);
        let prompt: Vec<String> = ids(&c["input_ids"]).iter().map(u64::to_string).collect();
        let prompt = prompt.join(",");
        let mut args = vec!["generate", "--model", &model(), "--prompt-ids", &prompt, "--max-tokens", "12", "--device", "cpu", "--json"]
            .into_iter()
            .map(str::to_owned)
            .collect::<Vec<_>>();
        for img in c["images"].as_array().unwrap() {
            args.push("--image".into());
            args.push(fixture().join("images").join(img.as_str().unwrap()).display().to_string());
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let json = result(&medgemma_desk(&args));
        assert_eq!(ids(&json["prompt_token_ids"]), ids(&c["input_ids"]), "{name}");
        assert_eq!(ids(&json["generated_token_ids"]), expected_answer(&c), "{name}");
        let reason = json["stop_reason"].as_str().unwrap();
        assert!(reason == "end_of_turn" || reason == "max_tokens", "{name}: {reason}");
        assert!(json["stats"]["prompt_tokens"].as_u64().unwrap() > 0);
    }
}

#[test]
fn a_prompt_with_system_and_image_goes_through_the_chat_template() {
    let c = case("one_image");
    let image = fixture().join("images/grey.png").display().to_string();
    let out = medgemma_desk(&[
        "generate", "--model", &model(), "--system", "You are an expert radiologist.", "--prompt", "Describe this X-ray.",
        "--image", &image, "--max-tokens", "12", "--json",
    ]);
    let json = result(&out);
    assert_eq!(ids(&json["prompt_token_ids"]), ids(&c["input_ids"]));
    assert_eq!(ids(&json["generated_token_ids"]), expected_answer(&c));
    // The text streamed before the JSON line is the answer's text.
    let text = stdout(&out);
    let streamed = text.trim_end().rsplit_once('\n').map(|(a, _)| a).unwrap_or("");
    assert_eq!(streamed.trim_end_matches('\n'), json["text"].as_str().unwrap());
}

#[test]
fn raw_prompts_are_tokenized_as_is_with_bos() {
    let c = case("raw_text");
    let json = result(&medgemma_desk(&["generate", "--model", &model(), "--raw", "--prompt", "The chest X-ray shows", "--max-tokens", "3", "--json"]));
    assert_eq!(ids(&json["prompt_token_ids"]), ids(&c["input_ids"]));
    assert_eq!(ids(&json["generated_token_ids"]), ids(&c["greedy_ids"])[..3].to_vec());
}

#[test]
fn seeded_sampling_is_reproducible() {
    let run = |seed: &str| {
        result(&medgemma_desk(&[
            "generate", "--model", &model(), "--prompt", "Describe the chest.", "--temperature", "1.0", "--top-k", "40", "--seed", seed,
            "--max-tokens", "10", "--json",
        ]))["generated_token_ids"]
            .clone()
    };
    assert_eq!(run("7"), run("7"));
}

#[test]
fn a_folder_that_is_not_a_model_is_named_in_one_line() {
    let tmp = tempfile::tempdir().unwrap();
    let out = medgemma_desk(&["generate", "--model", tmp.path().to_str().unwrap(), "--prompt", "hi"]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert_one_line(&err);
    assert!(err.contains("not a model folder") && err.contains("config.json"), "{err}");
}

/// A copy of the tiny model to break.
fn model_copy() -> tempfile::TempDir {
    let tmp = tempfile::tempdir().unwrap();
    for f in std::fs::read_dir(fixture().join("model")).unwrap() {
        let f = f.unwrap().path();
        std::fs::copy(&f, tmp.path().join(f.file_name().unwrap())).unwrap();
    }
    tmp
}

#[test]
fn a_tokenizer_that_is_not_json_is_named_in_one_line() {
    let tmp = model_copy();
    std::fs::write(tmp.path().join("tokenizer.json"), "{\"version\": \"1.0\", \"trunc").unwrap();
    let out = medgemma_desk(&["generate", "--model", tmp.path().to_str().unwrap(), "--prompt", "hi"]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert_one_line(&err);
    assert!(err.contains("tokenizer.json") && err.contains("cannot be used"), "{err}");
}

#[test]
fn a_config_of_another_architecture_is_named_in_one_line() {
    let tmp = model_copy();
    let path = tmp.path().join("config.json");
    let mut config: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    config["architectures"] = serde_json::json!(["LlamaForCausalLM"]);
    config["model_type"] = "llama".into();
    std::fs::write(&path, config.to_string()).unwrap();
    let out = medgemma_desk(&["generate", "--model", tmp.path().to_str().unwrap(), "--prompt", "hi"]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert_one_line(&err);
    assert!(err.contains("LlamaForCausalLM") && err.contains("not supported") && err.contains("Gemma 3"), "{err}");
}

#[test]
fn a_truncated_weights_file_is_refused_before_loading() {
    let tmp = model_copy();
    let weights = tmp.path().join("model.safetensors");
    let len = std::fs::metadata(&weights).unwrap().len();
    std::fs::OpenOptions::new().write(true).open(&weights).unwrap().set_len(len / 2).unwrap();
    let out = medgemma_desk(&["generate", "--model", tmp.path().to_str().unwrap(), "--prompt", "hi"]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert_one_line(&err);
    assert!(err.contains("model.safetensors") && err.contains("truncated"), "{err}");
}

#[test]
fn an_image_that_cannot_be_read_is_named() {
    let tmp = tempfile::tempdir().unwrap();
    let bad = tmp.path().join("scan.png");
    std::fs::write(&bad, b"not a png").unwrap();
    let out = medgemma_desk(&["generate", "--model", &model(), "--prompt", "hi", "--image", bad.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert_one_line(&err);
    assert!(err.contains("scan.png"), "{err}");
}

#[test]
fn bench_reports_prefill_decode_and_memory_as_json() {
    let image = fixture().join("images/grey.png").display().to_string();
    let out = medgemma_desk(&[
        "bench", "--model", &model(), "--prompt-tokens", "40", "--gen-tokens", "8", "--repetitions", "2", "--threads", "1", "--image", &image,
        "--json",
    ]);
    let json = result(&out);
    for key in ["prefill_tok_s", "decode_tok_s", "peak_rss_mb", "image_encode_ms"] {
        assert!(json[key].as_f64().is_some_and(|v| v > 0.0), "{key} missing or zero: {json}");
    }
    assert_eq!(json["threads"], 1);
    assert_eq!(json["prefill_runs_tok_s"].as_array().unwrap().len(), 2);
}
