//! GGUF models through the command line: the tiny Gemma 3 fixture converted
//! as llama.cpp converts MedGemma (tests/fixtures/tiny-gemma3/gguf: decoder +
//! mmproj) gives the transformers reference's greedy tokens with images, and
//! drafts a report kept with its provenance; a decoder without its projector
//! says what is missing.

use std::path::PathBuf;

use serde_json::Value;

use crate::{assert_one_line, medgemma_desk, stderr, stdout};

fn fixture() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/tiny-gemma3")
}

fn path(rel: &str) -> String {
    fixture().join(rel).display().to_string()
}

fn ids(v: &Value) -> Vec<u64> {
    v.as_array().unwrap().iter().map(|x| x.as_u64().unwrap()).collect()
}

fn case(name: &str) -> Value {
    let all: Value = serde_json::from_str(&std::fs::read_to_string(fixture().join("expected/cases.json")).unwrap()).unwrap();
    all["cases"].as_array().unwrap().iter().find(|c| c["name"] == name).unwrap().clone()
}

#[test]
fn generate_with_a_gguf_pair_gives_the_reference_greedy_tokens() {
    let c = case("one_image");
    let prompt: Vec<String> = ids(&c["input_ids"]).iter().map(u64::to_string).collect();
    let (model, mmproj, image) = (path("gguf/tiny-gemma3-f32.gguf"), path("gguf/mmproj-tiny-gemma3-f32.gguf"), path("images/grey.png"));
    let out = medgemma_desk(&[
        "generate", "--model", &model, "--mmproj", &mmproj, "--prompt-ids", &prompt.join(","), "--image", &image,
        "--max-tokens", "12", "--device", "cpu", "--json",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let json: Value = serde_json::from_str(stdout(&out).trim_end().lines().last().unwrap()).unwrap();
    let want: Vec<u64> = ids(&c["greedy_ids"]).into_iter().take_while(|&t| t != 1 && t != 6).take(12).collect();
    assert_eq!(ids(&json["generated_token_ids"]), want);
}

#[test]
fn a_gguf_decoder_without_its_projector_says_so_for_an_image() {
    let tmp = tempfile::tempdir().unwrap();
    let alone = tmp.path().join("medgemma-Q4_K_M.gguf");
    std::fs::copy(fixture().join("gguf/tiny-gemma3-f32.gguf"), &alone).unwrap();
    let image = path("images/grey.png");
    let out = medgemma_desk(&["generate", "--model", alone.to_str().unwrap(), "--prompt", "Describe", "--image", &image, "--device", "cpu"]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert_one_line(&err);
    assert!(err.contains("medgemma-Q4_K_M.gguf") && err.contains("mmproj"), "{err}");
}

#[test]
fn a_draft_from_a_gguf_pair_is_kept_with_its_provenance() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_str().unwrap();
    // The projector is found beside the model.
    let (model, image) = (path("gguf/tiny-gemma3-f32.gguf"), path("images/grey.png"));
    let out = medgemma_desk(&["draft", "--model", &model, "--image", &image, "--max-tokens", "8", "--json", "--data-dir", dir]);
    assert!(out.status.success(), "{}", stderr(&out));
    let d: Value = serde_json::from_str(stdout(&out).lines().find(|l| l.starts_with('{')).unwrap()).unwrap();
    let p = &d["provenance"];
    assert_eq!(p["model_id"], "tiny-gemma3-f32");
    assert_eq!(p["weights_sha256"].as_str().unwrap().len(), 64);
    assert!(p["generated_tokens"].as_u64().unwrap() > 0);
}
