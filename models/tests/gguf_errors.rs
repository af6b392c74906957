//! Bad GGUF files get one sentence naming the file and the problem, before
//! any tensor is allocated. The files are written here byte by byte in the
//! GGUF v3 layout, so each test holds exactly one fault.

use std::path::{Path, PathBuf};

use medgemma_models::{DeviceChoice, Model, ModelSource};

enum Kv {
    Str(&'static str),
    U32(u32),
}

struct Tensor {
    name: &'static str,
    /// ggml order: the innermost dimension first.
    dims: Vec<u64>,
    ggml_type: u32,
    bytes: usize,
}

fn string(out: &mut Vec<u8>, s: &str) {
    out.extend((s.len() as u64).to_le_bytes());
    out.extend(s.as_bytes());
}

fn gguf(kv: &[(&str, Kv)], tensors: &[Tensor]) -> Vec<u8> {
    let mut out = b"GGUF".to_vec();
    out.extend(3u32.to_le_bytes());
    out.extend((tensors.len() as u64).to_le_bytes());
    out.extend((kv.len() as u64).to_le_bytes());
    for (key, value) in kv {
        string(&mut out, key);
        match value {
            Kv::Str(s) => {
                out.extend(8u32.to_le_bytes());
                string(&mut out, s);
            }
            Kv::U32(n) => {
                out.extend(4u32.to_le_bytes());
                out.extend(n.to_le_bytes());
            }
        }
    }
    let mut offset = 0u64;
    for t in tensors {
        string(&mut out, t.name);
        out.extend((t.dims.len() as u32).to_le_bytes());
        for d in &t.dims {
            out.extend(d.to_le_bytes());
        }
        out.extend(t.ggml_type.to_le_bytes());
        out.extend(offset.to_le_bytes());
        offset += (t.bytes as u64).div_ceil(32) * 32;
    }
    while out.len() % 32 != 0 {
        out.push(0);
    }
    for t in tensors {
        out.extend(vec![0u8; (t.bytes).div_ceil(32) * 32]);
    }
    out
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

fn load_error(path: &Path) -> String {
    Model::load(&ModelSource::at(path), DeviceChoice::Cpu).err().expect("the file is refused").to_string()
}

fn embedding(ggml_type: u32, bytes: usize) -> Tensor {
    Tensor { name: "token_embd.weight", dims: vec![64, 4], ggml_type, bytes }
}

#[test]
fn an_architecture_we_do_not_run_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "llama.gguf", &gguf(&[("general.architecture", Kv::Str("llama"))], &[embedding(0, 64 * 4 * 4)]));
    let err = load_error(&path);
    assert!(err.contains("llama.gguf") && err.contains("\"llama\" is not supported"), "{err}");
}

#[test]
fn an_unknown_quantization_type_is_named() {
    let dir = tempfile::tempdir().unwrap();
    // ggml type 20 is IQ4_NL, which candle cannot compute with.
    let path = write(dir.path(), "iq4.gguf", &gguf(&[("general.architecture", Kv::Str("gemma3"))], &[embedding(20, 64 * 4)]));
    let err = load_error(&path);
    assert!(err.contains("iq4.gguf") && err.contains("ggml type 20") && err.contains("Q4_K"), "{err}");
}

#[test]
fn a_file_that_is_not_gguf_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "model.gguf", b"<!DOCTYPE html><html>Sign in to download</html>");
    let err = load_error(&path);
    assert!(err.contains("model.gguf") && err.contains("not a GGUF file"), "{err}");
}

#[test]
fn tensor_data_past_the_end_is_named_as_truncation() {
    let dir = tempfile::tempdir().unwrap();
    let mut bytes = gguf(
        &[("general.architecture", Kv::Str("gemma3")), ("gemma3.block_count", Kv::U32(1))],
        &[embedding(0, 64 * 4 * 4)],
    );
    bytes.truncate(bytes.len() - 100);
    let path = write(dir.path(), "short.gguf", &bytes);
    let err = load_error(&path);
    assert!(err.contains("short.gguf") && err.contains("truncated") && err.contains("token_embd.weight"), "{err}");
}

#[test]
fn missing_hyperparameters_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "bare.gguf", &gguf(&[("general.architecture", Kv::Str("gemma3"))], &[embedding(0, 64 * 4 * 4)]));
    let err = load_error(&path);
    assert!(err.contains("bare.gguf") && err.contains("gemma3.embedding_length"), "{err}");
}
