//! GGUF files as llama.cpp writes them: a Gemma 3 decoder
//! (`general.architecture = gemma3`), with its tokenizer and chat template in
//! the metadata. The header is read by candle's GGUF reader; every tensor is
//! checked to lie inside the file and to have a type we can compute with
//! before anything is allocated; tensors are then copied out of a memory map
//! one by one (the pages of each are released as soon as it is copied, so a
//! load never holds the file twice).

pub mod tokenizer;

use std::borrow::Cow;
use std::collections::HashMap;
use std::fs::File;
use std::path::{Path, PathBuf};

use candle_core::quantized::gguf_file::{Content, TensorInfo, Value};
use candle_core::quantized::{GgmlDType, QStorage, QTensor};
use candle_core::Device;

use crate::error::{ModelError, Result};

/// The quantization types this runtime computes with (all of candle's).
pub const SUPPORTED_TYPES: &str = "F32, F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K";

/// An open GGUF file: its metadata and tensor table, and a read-only map of its bytes.
pub struct GgufFile {
    pub path: PathBuf,
    content: Content,
    map: memmap2::Mmap,
}

impl std::fmt::Debug for GgufFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GgufFile").field("path", &self.path).field("tensors", &self.content.tensor_infos.len()).finish()
    }
}

impl GgufFile {
    /// Opens and checks a GGUF file: the header must parse, every tensor type
    /// must be one we support, and every tensor must lie inside the file (a
    /// truncated download is named here, before any tensor is read).
    pub fn open(path: &Path) -> Result<Self> {
        let bad = |reason: String| ModelError::BadWeights { path: path.to_path_buf(), reason };
        let mut file = File::open(path).map_err(|source| ModelError::Io { path: path.into(), source })?;
        let file_len = file.metadata().map_err(|source| ModelError::Io { path: path.into(), source })?.len();
        let mut magic = [0u8; 4];
        std::io::Read::read_exact(&mut file, &mut magic).map_err(|_| bad("the file is too short to be a GGUF model".into()))?;
        if &magic != b"GGUF" {
            return Err(ModelError::NotAModel { path: path.into(), reason: "it is not a GGUF file (no GGUF signature)".into() });
        }
        std::io::Seek::rewind(&mut file).map_err(|source| ModelError::Io { path: path.into(), source })?;
        let content = {
            let mut reader = std::io::BufReader::new(&mut file);
            Content::read(&mut reader).map_err(|e| bad(describe_header_error(&e.to_string())))?
        };
        for (name, info) in &content.tensor_infos {
            let bytes = tensor_bytes(name, info).map_err(bad)?;
            let end = content.tensor_data_offset.saturating_add(info.offset).saturating_add(bytes);
            if end > file_len {
                return Err(bad(format!(
                    "the file is truncated: tensor {name} ends at byte {end} but the file has only {file_len} bytes; download it again"
                )));
            }
        }
        // SAFETY: mapped read-only; a file changed on disk while it is being
        // loaded is the user's error, as with every mmap-based loader.
        // Unsafe allowed here: memmap2 cannot map a file without it.
        #[allow(unsafe_code)]
        let map = unsafe { memmap2::Mmap::map(&file) }.map_err(|source| ModelError::Io { path: path.into(), source })?;
        Ok(Self { path: path.to_path_buf(), content, map })
    }

    /// `general.architecture` (e.g. "gemma3", "clip").
    pub fn architecture(&self) -> Option<&str> {
        self.string("general.architecture")
    }

    pub fn metadata(&self) -> &HashMap<String, Value> {
        &self.content.metadata
    }

    pub fn value(&self, key: &str) -> Option<&Value> {
        self.content.metadata.get(key)
    }

    pub fn string(&self, key: &str) -> Option<&str> {
        match self.value(key) {
            Some(Value::String(s)) => Some(s),
            _ => None,
        }
    }

    /// An integer key of any width; an error names the key when it holds something else.
    pub fn uint(&self, key: &str) -> Result<Option<u64>> {
        match self.value(key) {
            None => Ok(None),
            Some(v) => as_u64(v).map(Some).ok_or_else(|| self.bad_key(key, "a whole number")),
        }
    }

    pub fn float(&self, key: &str) -> Result<Option<f64>> {
        match self.value(key) {
            None => Ok(None),
            Some(v) => as_f64(v).map(Some).ok_or_else(|| self.bad_key(key, "a number")),
        }
    }

    pub fn bool(&self, key: &str) -> Result<Option<bool>> {
        match self.value(key) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(v) => as_u64(v).map(|n| Some(n != 0)).ok_or_else(|| self.bad_key(key, "true or false")),
        }
    }

    pub fn array(&self, key: &str) -> Result<Option<&Vec<Value>>> {
        match self.value(key) {
            None => Ok(None),
            Some(Value::Array(a)) => Ok(Some(a)),
            Some(_) => Err(self.bad_key(key, "a list")),
        }
    }

    fn bad_key(&self, key: &str, expected: &str) -> ModelError {
        ModelError::BadConfig { path: self.path.clone(), reason: format!("metadata key {key} should be {expected}") }
    }

    /// Whether the tokenizer in the metadata has the piece `text` (e.g.
    /// `<image_soft_token>`: a multimodal decoder).
    pub fn has_token(&self, text: &str) -> bool {
        matches!(self.value("tokenizer.ggml.tokens"), Some(Value::Array(list)) if list.iter().any(|v| matches!(v, Value::String(s) if s == text)))
    }

    /// The bytes all tensors occupy (what a load holds in memory).
    pub fn tensor_bytes_total(&self) -> u64 {
        self.content.tensor_infos.iter().filter_map(|(n, i)| tensor_bytes(n, i).ok()).sum()
    }

    pub fn contains(&self, name: &str) -> bool {
        self.content.tensor_infos.contains_key(name)
    }

    pub fn tensor_names(&self) -> impl Iterator<Item = &str> {
        self.content.tensor_infos.keys().map(String::as_str)
    }

    /// The row-major shape and type of tensor `name`.
    pub fn info(&self, name: &str) -> Option<(&[usize], GgmlDType)> {
        self.content.tensor_infos.get(name).map(|i| (i.shape.dims(), i.ggml_dtype))
    }

    /// Tensor `name`, which must have `shape` (row-major, as PyTorch writes
    /// it), copied onto `device` in its stored type.
    pub fn qtensor(&self, name: &str, shape: &[usize], device: &Device) -> Result<QTensor> {
        let bad = |reason: String| ModelError::BadWeights { path: self.path.clone(), reason };
        let info = self.content.tensor_infos.get(name).ok_or_else(|| bad(format!("tensor {name} is missing")))?;
        if info.shape.dims() != shape {
            return Err(bad(format!("tensor {name} has shape {:?}, expected {shape:?} from the model's metadata", info.shape.dims())));
        }
        let len = tensor_bytes(name, info).map_err(bad)? as usize;
        let start = (self.content.tensor_data_offset + info.offset) as usize;
        let bytes = &self.map[start..start + len];
        // Q5_0 has no SIMD kernel in candle on the CPU; its values are whole
        // multiples of the block scale in [-16, 15], which Q8_0 holds exactly,
        // and both are dotted with 8-bit activations: the same products, fast.
        if info.ggml_dtype == GgmlDType::Q5_0 && device.is_cpu() {
            let q8 = q5_0_to_q8_0(bytes);
            let storage = QStorage::from_data(Cow::Owned(q8), device, GgmlDType::Q8_0).map_err(|e| bad(format!("tensor {name}: {e}")))?;
            self.release(start, len);
            return QTensor::new(storage, info.shape.clone()).map_err(|e| bad(format!("tensor {name}: {e}")));
        }
        // candle views the bytes as blocks, which need 4-byte alignment; GGUF
        // aligns tensors to 32 bytes, but a file that does not is copied first.
        let storage = if (bytes.as_ptr() as usize) % 8 == 0 {
            QStorage::from_data(Cow::Borrowed(bytes), device, info.ggml_dtype)
        } else {
            let mut aligned = vec![0u64; len.div_ceil(8)];
            let view = &mut medgemma_kernels::byte_views::u64_words_as_bytes_mut(&mut aligned)[..len];
            view.copy_from_slice(bytes);
            QStorage::from_data(Cow::Borrowed(view), device, info.ggml_dtype)
        }
        .map_err(|e| bad(format!("tensor {name}: {e}")))?;
        self.release(start, len);
        QTensor::new(storage, info.shape.clone()).map_err(|e| bad(format!("tensor {name}: {e}")))
    }

    /// Drops the mapped pages of a tensor already copied out (they stay in the
    /// page cache, but leave this process's resident memory).
    fn release(&self, start: usize, len: usize) {
        #[cfg(unix)]
        {
            let page = 4096;
            let from = start.div_ceil(page) * page;
            let to = (start + len) / page * page;
            if to > from {
                // SAFETY: the map is read-only and file-backed: dropped pages are
                // read back from the file if touched again; no reference into
                // this range outlives this call (the bytes were copied).
                // Unsafe allowed here: madvise on the map is unsafe in memmap2.
                #[allow(unsafe_code)]
                let _ = unsafe { self.map.unchecked_advise_range(memmap2::UncheckedAdvice::DontNeed, from, to - from) };
            }
        }
    }
}

/// Q5_0 blocks (f16 scale, 4 bytes of high bits, 16 bytes of low nibbles:
/// 22 bytes for 32 values) rewritten as Q8_0 blocks (f16 scale, 32 signed
/// bytes) with the same scale and the same integers: exact. The layout is
/// ggml's (`block_q5_0`, `block_q8_0`); the arithmetic is written out here
/// because candle keeps its block types' fields private.
fn q5_0_to_q8_0(src: &[u8]) -> Vec<u8> {
    const Q5: usize = 22;
    const Q8: usize = 34;
    let blocks = src.len() / Q5;
    let mut out = vec![0u8; blocks * Q8];
    for (b, dst) in src.chunks_exact(Q5).zip(out.chunks_exact_mut(Q8)) {
        dst[..2].copy_from_slice(&b[..2]);
        let qh = u32::from_le_bytes([b[2], b[3], b[4], b[5]]);
        let qs = &b[6..22];
        for j in 0..16 {
            let hi0 = ((qh >> j) << 4) & 0x10;
            let hi1 = (qh >> (j + 12)) & 0x10;
            let x0 = ((qs[j] as u32 & 0x0F) | hi0) as i32 - 16;
            let x1 = ((qs[j] as u32 >> 4) | hi1) as i32 - 16;
            dst[2 + j] = x0 as i8 as u8;
            dst[2 + j + 16] = x1 as i8 as u8;
        }
    }
    out
}

/// Whether `path` names a GGUF file (by its extension).
pub fn is_gguf_path(path: &Path) -> bool {
    path.extension().is_some_and(|e| e.eq_ignore_ascii_case("gguf"))
}

/// The bytes a tensor occupies; an error when its size does not fit its type's blocks.
fn tensor_bytes(name: &str, info: &TensorInfo) -> std::result::Result<u64, String> {
    let elems = info.shape.elem_count() as u64;
    let block = info.ggml_dtype.block_size() as u64;
    if elems % block != 0 {
        return Err(format!("tensor {name} has {elems} values, not a whole number of {:?} blocks of {block}", info.ggml_dtype));
    }
    Ok(elems / block * info.ggml_dtype.type_size() as u64)
}

/// The header reader's error, said for a user.
fn describe_header_error(e: &str) -> String {
    if let Some(n) = e.strip_prefix("unknown dtype for tensor ") {
        format!("it uses a quantization type (ggml type {n}) that MedGemma Desk cannot compute with; supported: {SUPPORTED_TYPES}")
    } else if e.contains("failed to fill whole buffer") || e.contains("remaining") || e.contains("UnexpectedEof") {
        format!("the file is truncated inside its header ({e}); download it again")
    } else {
        format!("its GGUF header cannot be read: {e}")
    }
}

fn as_u64(v: &Value) -> Option<u64> {
    match *v {
        Value::U8(n) => Some(n as u64),
        Value::U16(n) => Some(n as u64),
        Value::U32(n) => Some(n as u64),
        Value::U64(n) => Some(n),
        Value::I8(n) => u64::try_from(n).ok(),
        Value::I16(n) => u64::try_from(n).ok(),
        Value::I32(n) => u64::try_from(n).ok(),
        Value::I64(n) => u64::try_from(n).ok(),
        _ => None,
    }
}

fn as_f64(v: &Value) -> Option<f64> {
    match *v {
        Value::F32(x) => Some(x as f64),
        Value::F64(x) => Some(x),
        _ => as_u64(v).map(|n| n as f64),
    }
}

pub(crate) fn as_i64(v: &Value) -> Option<i64> {
    match *v {
        Value::I8(n) => Some(n as i64),
        Value::I16(n) => Some(n as i64),
        Value::I32(n) => Some(n as i64),
        Value::I64(n) => Some(n),
        _ => as_u64(v).and_then(|n| i64::try_from(n).ok()),
    }
}

pub(crate) fn value_f32(v: &Value) -> Option<f32> {
    as_f64(v).map(|x| x as f32)
}

/// The name llama.cpp's converter gives a Hugging Face Gemma 3 decoder tensor
/// (`layers.3.self_attn.q_proj.weight` → `blk.3.attn_q.weight`), or None.
pub fn text_tensor_name(hf: &str) -> Option<String> {
    let fixed = match hf {
        "embed_tokens.weight" => Some("token_embd.weight"),
        "norm.weight" => Some("output_norm.weight"),
        "lm_head.weight" => Some("output.weight"),
        _ => None,
    };
    if let Some(f) = fixed {
        return Some(f.to_owned());
    }
    layer_tensor_name(hf.strip_prefix("layers.")?, "blk", |module| {
        Some(match module {
            "self_attn.q_proj" => "attn_q",
            "self_attn.k_proj" => "attn_k",
            "self_attn.v_proj" => "attn_v",
            "self_attn.o_proj" => "attn_output",
            "self_attn.q_norm" => "attn_q_norm",
            "self_attn.k_norm" => "attn_k_norm",
            "mlp.gate_proj" => "ffn_gate",
            "mlp.up_proj" => "ffn_up",
            "mlp.down_proj" => "ffn_down",
            "input_layernorm" => "attn_norm",
            "post_attention_layernorm" => "post_attention_norm",
            "pre_feedforward_layernorm" => "ffn_norm",
            "post_feedforward_layernorm" => "post_ffw_norm",
            _ => return None,
        })
    })
}

/// `N.module.suffix` → `{block}.N.{gguf module}.suffix`.
fn layer_tensor_name(rest: &str, block: &str, module_name: impl Fn(&str) -> Option<&'static str>) -> Option<String> {
    let (layer, rest) = rest.split_once('.')?;
    let layer: usize = layer.parse().ok()?;
    let (module, suffix) = rest.rsplit_once('.')?;
    Some(format!("{block}.{layer}.{}.{suffix}", module_name(module)?))
}

/// The name llama.cpp's converter gives a Hugging Face SigLIP tower or Gemma 3
/// projector tensor in a vision projector file (`encoder.layers.2.mlp.fc1.bias`
/// → `v.blk.2.ffn_up.bias`; `mm_input_projection_weight` → `mm.input_projection.weight`).
/// `name` is relative to the tower's or the projector's prefix.
pub fn vision_tensor_name(name: &str) -> Option<String> {
    let fixed = match name {
        "embeddings.patch_embedding.weight" => "v.patch_embd.weight",
        "embeddings.patch_embedding.bias" => "v.patch_embd.bias",
        "embeddings.position_embedding.weight" => "v.position_embd.weight",
        "post_layernorm.weight" => "v.post_ln.weight",
        "post_layernorm.bias" => "v.post_ln.bias",
        "mm_input_projection_weight" => "mm.input_projection.weight",
        "mm_soft_emb_norm.weight" => "mm.soft_emb_norm.weight",
        _ => "",
    };
    if !fixed.is_empty() {
        return Some(fixed.to_owned());
    }
    layer_tensor_name(name.strip_prefix("encoder.layers.")?, "v.blk", |module| {
        Some(match module {
            "self_attn.q_proj" => "attn_q",
            "self_attn.k_proj" => "attn_k",
            "self_attn.v_proj" => "attn_v",
            "self_attn.out_proj" => "attn_out",
            "layer_norm1" => "ln1",
            "layer_norm2" => "ln2",
            "mlp.fc1" => "ffn_up",
            "mlp.fc2" => "ffn_down",
            _ => return None,
        })
    })
}

/// The vision projector next to a GGUF model: the one `mmproj*.gguf` file in
/// its folder (None when there is none, or several to choose from).
pub fn projector_next_to(model: &Path) -> Option<PathBuf> {
    let dir = model.parent()?;
    let mut found: Vec<PathBuf> = std::fs::read_dir(dir)
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.is_file()
                && is_gguf_path(p)
                && p.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.to_ascii_lowercase().starts_with("mmproj"))
        })
        .collect();
    (found.len() == 1).then(|| found.remove(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_llama_cpp() {
        assert_eq!(text_tensor_name("layers.17.self_attn.q_proj.weight").as_deref(), Some("blk.17.attn_q.weight"));
        assert_eq!(text_tensor_name("layers.0.post_feedforward_layernorm.weight").as_deref(), Some("blk.0.post_ffw_norm.weight"));
        assert_eq!(text_tensor_name("embed_tokens.weight").as_deref(), Some("token_embd.weight"));
        assert_eq!(text_tensor_name("layers.x.mlp.up_proj.weight"), None);
        assert_eq!(vision_tensor_name("encoder.layers.2.mlp.fc1.bias").as_deref(), Some("v.blk.2.ffn_up.bias"));
        assert_eq!(vision_tensor_name("mm_input_projection_weight").as_deref(), Some("mm.input_projection.weight"));
    }

    #[test]
    fn q5_0_becomes_q8_0_with_the_same_values() {
        use candle_core::quantized::{GgmlDType, QStorage, QTensor};
        // Quantize random values to Q5_0 with candle, convert, and compare the dequantized values.
        let values: Vec<f32> = (0..256).map(|i| ((i * 37 % 101) as f32 - 50.0) / 13.0).collect();
        let t = candle_core::Tensor::from_vec(values, (2, 128), &Device::Cpu).unwrap();
        let q5 = QTensor::quantize(&t, GgmlDType::Q5_0).unwrap();
        let bytes = q5.data().unwrap().into_owned();
        let q8 = QStorage::from_data(Cow::Owned(q5_0_to_q8_0(&bytes)), &Device::Cpu, GgmlDType::Q8_0).unwrap();
        let q8 = QTensor::new(q8, (2, 128)).unwrap();
        let a = q5.dequantize(&Device::Cpu).unwrap().flatten_all().unwrap().to_vec1::<f32>().unwrap();
        let b = q8.dequantize(&Device::Cpu).unwrap().flatten_all().unwrap().to_vec1::<f32>().unwrap();
        assert_eq!(a, b);
    }

    #[test]
    fn header_errors_are_said_plainly() {
        assert!(describe_header_error("unknown dtype for tensor 20").contains("ggml type 20"));
        assert!(describe_header_error("failed to fill whole buffer").contains("truncated"));
    }
}
