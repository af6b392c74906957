//! The file formats users' model folders come in: chat templates rendered as
//! transformers renders them, config.json and preprocessor_config.json in
//! every generation (all from tests/fixtures/tiny-gemma3/expected).

use std::path::{Path, PathBuf};

use medgemma_models::formats::ChatTemplate;
use medgemma_models::{Content, Gemma3Config, ImageProcessor, Message, Role};
use serde_json::Value;

fn expected() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/tiny-gemma3/expected")
}

fn read(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn messages(v: &Value) -> Vec<Message> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|m| {
            let role = match m["role"].as_str().unwrap() {
                "system" => Role::System,
                "user" => Role::User,
                _ => Role::Assistant,
            };
            let content = match &m["content"] {
                Value::String(s) => vec![Content::Text(s.clone())],
                Value::Array(parts) => parts
                    .iter()
                    .map(|p| match p["type"].as_str().unwrap() {
                        "image" => Content::Image,
                        _ => Content::Text(p["text"].as_str().unwrap().to_owned()),
                    })
                    .collect(),
                other => panic!("content {other}"),
            };
            Message { role, content }
        })
        .collect()
}

#[test]
fn the_models_template_and_the_builtin_format_render_like_transformers() {
    let cases = read(&expected().join("chat_template_cases.json"));
    let dir = expected().join("../model");
    let from_model = ChatTemplate::from_model_dir(&dir).unwrap();
    assert!(!from_model.is_builtin(), "the fixture ships chat_template.jinja");
    for template in [from_model, ChatTemplate::gemma3_builtin()] {
        for c in cases["cases"].as_array().unwrap() {
            let name = c["name"].as_str().unwrap();
            let got = template.render_with(&messages(&c["messages"]), c["bos_token"].as_str().unwrap(), c["add_generation_prompt"].as_bool().unwrap());
            match c["expected"].as_str() {
                Some(want) => assert_eq!(got.unwrap(), want, "{name} (builtin: {})", template.is_builtin()),
                None => {
                    let err = got.unwrap_err().to_string();
                    assert!(err.contains("alternate"), "{name}: {err}");
                }
            }
        }
    }
}

#[test]
fn a_template_in_chat_template_json_is_found() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::copy(expected().join("config_variants/chat_template.json"), tmp.path().join("chat_template.json")).unwrap();
    let t = ChatTemplate::from_model_dir(tmp.path()).unwrap();
    assert!(!t.is_builtin());
    let m = [Message::text(Role::User, "Hi")];
    assert_eq!(t.render(&m, "<bos>").unwrap(), "<bos><start_of_turn>user\nHi<end_of_turn>\n<start_of_turn>model\n");
}

#[test]
fn a_folder_without_any_template_uses_the_gemma3_turn_format() {
    let tmp = tempfile::tempdir().unwrap();
    assert!(ChatTemplate::from_model_dir(tmp.path()).unwrap().is_builtin());
}

#[test]
fn every_config_generation_describes_the_same_model() {
    let reference = Gemma3Config::from_file(&expected().join("../model/config.json")).unwrap();
    let dir = expected().join("config_variants");
    let mut seen = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_str().unwrap().to_owned();
        if !name.starts_with("config.") {
            continue;
        }
        let cfg = Gemma3Config::from_file(&path).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(cfg.text, reference.text, "{name}");
        assert_eq!(cfg.vision, reference.vision, "{name}");
        assert_eq!(
            (cfg.mm_tokens_per_image, cfg.image_token_id, cfg.boi_token_id, cfg.eoi_token_id),
            (reference.mm_tokens_per_image, reference.image_token_id, reference.boi_token_id, reference.eoi_token_id),
            "{name}"
        );
        seen += 1;
    }
    assert_eq!(seen, 4, "expected four config generations");
}

#[test]
fn a_preprocessor_config_with_nulls_reads_like_the_clean_one() {
    let clean = ImageProcessor::from_file(&expected().join("../model/preprocessor_config.json"), 896).unwrap();
    let nulls = ImageProcessor::from_file(&expected().join("config_variants/preprocessor_config.hub_nulls.json"), 896).unwrap();
    assert_eq!(clean, nulls);
    assert_eq!((clean.width, clean.height), (32, 32));
}
