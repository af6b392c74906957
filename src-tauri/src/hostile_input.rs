//! Every parser that reads files from outside, fed raw bytes the way the app
//! meets them: the entry points of the fuzz targets in `fuzz/`, and of the
//! replay of their corpora in `make test`. Each may fail; none may panic.

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;

use medgemma_models::formats::{ChatTemplate, GgufFile};
use medgemma_models::{Content, DeviceChoice, GenerationParams, Message, Model, ModelSource, Role};

use crate::drafting::templates;
use crate::imaging;
use crate::store::Store;

/// The parsers, by the name of their fuzz target.
pub const TARGETS: &[(&str, fn(&[u8]))] = &[
    ("dicom", dicom),
    ("gguf", gguf),
    ("safetensors", safetensors),
    ("shard_index", shard_index),
    ("bundle", bundle),
    ("chat_template", chat_template),
    ("templates_toml", templates_toml),
];

/// A scratch folder of this process (files are written there because the
/// app's parsers, like the app, read files).
fn scratch() -> &'static Path {
    static DIR: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    DIR.get_or_init(|| {
        let base = if Path::new("/dev/shm").is_dir() { PathBuf::from("/dev/shm") } else { std::env::temp_dir() };
        let dir = base.join(format!("medgemma-desk-fuzz-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("a scratch folder");
        dir
    })
}

fn file_with(name: &str, data: &[u8]) -> PathBuf {
    let path = scratch().join(name);
    std::fs::write(&path, data).expect("the scratch folder is writable");
    path
}

/// A dropped file: opened (DICOM, or PNG/JPEG by content), every frame
/// decoded and rendered by default, and made into the model's input.
pub fn dicom(data: &[u8]) {
    let path = file_with("dropped", data);
    if let Ok(study) = imaging::open(&path) {
        for image in &study.images {
            for frame in 0..image.frames.len() {
                let _ = image.render(frame, image.windows.first());
                let _ = image.render(frame, None);
            }
        }
        let _ = imaging::model_input(&study, 0, 0, None);
    }
}

/// A GGUF file: header, metadata and tensor table checked against the file.
pub fn gguf(data: &[u8]) {
    let path = file_with("model.gguf", data);
    if let Ok(file) = GgufFile::open(&path) {
        let _ = file.architecture();
        let _ = file.tensor_bytes_total();
        let names: Vec<String> = file.tensor_names().map(str::to_owned).collect();
        for name in names.iter().take(8) {
            let _ = file.info(name);
        }
    }
}

/// The smallest Gemma 3 config a model folder can have, for the weights' parsers.
const TINY_CONFIG: &str = r#"{"architectures": ["Gemma3ForCausalLM"], "model_type": "gemma3_text",
 "hidden_size": 8, "intermediate_size": 16, "num_hidden_layers": 1, "num_attention_heads": 1,
 "num_key_value_heads": 1, "head_dim": 8, "vocab_size": 16, "max_position_embeddings": 32,
 "sliding_window": 4, "query_pre_attn_scalar": 8}"#;

/// A model folder named `folder` holding the tiny config and `data` as
/// `file`, loaded and run for two tokens.
fn load_folder_with(folder: &str, file: &str, data: &[u8]) {
    let dir = scratch().join(folder);
    let _ = std::fs::create_dir_all(&dir);
    let _ = std::fs::write(dir.join("config.json"), TINY_CONFIG);
    let _ = std::fs::write(dir.join(file), data);
    if let Ok(model) = Model::load(&ModelSource::at(&dir), DeviceChoice::Cpu) {
        let params = GenerationParams { max_new_tokens: 2, ignore_eos: true, ..Default::default() };
        let _ = model.generate_from_pixels(&[2, 3], &[], &params, &mut |_| {}, &AtomicBool::new(false));
    }
}

/// A model folder's `model.safetensors`: header, names, shapes and offsets.
pub fn safetensors(data: &[u8]) {
    load_folder_with("single", "model.safetensors", data);
}

/// A sharded model folder's `model.safetensors.index.json` (its shards absent,
/// or named anywhere).
pub fn shard_index(data: &[u8]) {
    load_folder_with("sharded", "model.safetensors.index.json", data);
}

/// A session bundle from a colleague, imported into a store.
pub fn bundle(data: &[u8]) {
    thread_local! {
        static STORE: std::cell::RefCell<Option<Store>> = const { std::cell::RefCell::new(None) };
    }
    let path = file_with("case.mgdesk.json", data);
    STORE.with(|cell| {
        let mut cell = cell.borrow_mut();
        if cell.is_none() {
            let dir = scratch().join("store");
            let _ = std::fs::create_dir_all(&dir);
            *cell = Store::open(&dir).ok();
        }
        if let Some(store) = cell.as_mut() {
            // An import that worked is taken out again: the store stays small.
            if let Ok(id) = store.import_session(&path) {
                let _ = store.delete_session(id);
            }
        }
    });
}

/// A chat template as a model file carries it, rendering a conversation with an image.
pub fn chat_template(data: &[u8]) {
    let template = ChatTemplate::from_source(String::from_utf8_lossy(data).into_owned());
    let conversation = [
        Message::text(Role::System, "You are an expert radiologist."),
        Message { role: Role::User, content: vec![Content::Text("Describe this X-ray.".into()), Content::Image] },
        Message::text(Role::Assistant, "No acute disease."),
        Message::text(Role::User, "Is the heart enlarged?"),
    ];
    let _ = template.render(&conversation, "<bos>");
}

/// A department's report template (TOML).
pub fn templates_toml(data: &[u8]) {
    let _ = templates::parse("fuzz", &String::from_utf8_lossy(data));
}

/// Runs `target` over every file of `corpus` (the replay `make test` does);
/// returns the number of inputs.
pub fn replay(target: fn(&[u8]), corpus: &Path) -> std::io::Result<usize> {
    let mut n = 0;
    let mut files: Vec<PathBuf> = std::fs::read_dir(corpus)?.flatten().map(|e| e.path()).filter(|p| p.is_file()).collect();
    files.sort();
    for file in files {
        match std::fs::read(&file) {
            Ok(bytes) => target(&bytes),
            // Gone since the listing: a fuzzer running beside the replay
            // replaces corpus inputs with smaller ones.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        }
        n += 1;
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `make test` replays each fuzz target's corpus and the inputs of every
    /// crash fuzzing found (`fuzz/regressions/<target>/`): none may panic.
    /// The DICOM corpus grows from the downloaded dev set, so it is not
    /// committed (it is replayed when a fuzz run left it here); the dev set
    /// itself is opened by the imaging tests, its crashes replay here.
    #[test]
    fn every_fuzz_corpus_and_regression_replays_without_a_panic() {
        let fuzz = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz");
        for (name, target) in TARGETS {
            let corpus = fuzz.join("corpus").join(name);
            let regressions = fuzz.join("regressions").join(name);
            let replayed = |dir: &Path| replay(*target, dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
            if *name == "dicom" {
                assert!(replayed(&regressions) > 0, "fuzz/regressions/dicom is empty");
                if corpus.is_dir() {
                    replayed(&corpus);
                }
                continue;
            }
            assert!(replayed(&corpus) > 0, "fuzz/corpus/{name} is empty");
            if regressions.is_dir() {
                replayed(&regressions);
            }
        }
    }

    /// Found by fuzzing: a 49 KB DICOM file whose element states 1.1 GB made
    /// dicom-rs allocate 1.1 GB before reading it (4 GB can be stated). It
    /// is refused first, in one sentence.
    #[test]
    fn a_dicom_file_that_states_more_bytes_than_it_has_is_refused_before_they_are_allocated() {
        let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/regressions/dicom/oom-stated-length-1112477738");
        let err = imaging::open(&file).err().expect("refused");
        assert!(err.to_string().contains("says it holds 1112477738 bytes, but only"), "{err}");
    }
}
