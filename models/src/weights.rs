//! Tensors by name, from memory-mapped safetensors files (one file or a
//! sharded set) or from GGUF files (llama.cpp's names, translated; quantized
//! matrices kept quantized). Checked for shape and converted to the run's
//! dtype. Every error names the file and the tensor.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use candle_core::quantized::{GgmlDType, QTensor};
use candle_core::{DType, Device, Tensor};
use serde_json::Value;

use crate::error::{ModelError, Result};
use crate::gguf::GgufFile;
use crate::layers::{Embedding, GemmaRmsNorm, LayerNorm, Linear};

enum Source {
    Safetensors { files: candle_core::safetensors::MmapedSafetensors, names: HashMap<String, (Vec<usize>, PathBuf)> },
    /// The decoder's file and the vision projector's (names as the Hugging
    /// Face checkpoint has them are translated to llama.cpp's).
    Gguf { text: GgufFile, projector: Option<GgufFile> },
}

pub struct Weights {
    source: Source,
    pub device: Device,
    pub dtype: DType,
    /// Where the decoder's tensors start (`language_model.model.`, `model.language_model.`, `model.`).
    pub text_prefix: String,
    /// Where the vision tower starts (`vision_tower.vision_model.` …), if any.
    pub vision_prefix: Option<String>,
    /// Where the projector starts (`multi_modal_projector.` …), if any.
    pub projector_prefix: Option<String>,
}

impl Weights {
    /// Opens `model.safetensors`, or every shard named by `model.safetensors.index.json`.
    pub fn open(dir: &Path, device: &Device, dtype: DType) -> Result<Self> {
        let files = safetensors_files(dir)?;
        // Named in messages; `safetensors_files` never returns an empty list.
        let first = files.first().cloned().unwrap_or_else(|| dir.to_path_buf());
        let mut names = HashMap::new();
        for file in &files {
            let shape = read_header(file)?;
            for (name, dims) in shape {
                names.insert(name, (dims, file.clone()));
            }
        }
        // SAFETY: the files are memory-mapped read-only; a file changed on disk
        // while mapped is the user's error, as with every mmap-based loader.
        // Unsafe allowed here: candle maps safetensors files only through it.
        #[allow(unsafe_code)]
        let mapped = unsafe { candle_core::safetensors::MmapedSafetensors::multi(&files) }.map_err(|e| ModelError::BadWeights {
            path: first.clone(),
            reason: e.to_string(),
        })?;
        let has = |p: &str| names.keys().any(|k| k.starts_with(p));
        let text_prefix = ["language_model.model.", "model.language_model.", "model.", ""]
            .into_iter()
            .find(|p| names.contains_key(&format!("{p}embed_tokens.weight")))
            .ok_or_else(|| ModelError::BadWeights {
                path: first.clone(),
                reason: "it has no token embedding (embed_tokens.weight); is it a Gemma 3 checkpoint?".into(),
            })?
            .to_owned();
        let vision_prefix = ["vision_tower.vision_model.", "model.vision_tower.vision_model.", "vision_model."]
            .into_iter()
            .find(|p| has(p))
            .map(str::to_owned);
        let projector_prefix = ["multi_modal_projector.", "model.multi_modal_projector."]
            .into_iter()
            .find(|p| has(p))
            .map(str::to_owned);
        Ok(Self {
            source: Source::Safetensors { files: mapped, names },
            device: device.clone(),
            dtype,
            text_prefix,
            vision_prefix,
            projector_prefix,
        })
    }

    /// A GGUF decoder, and its vision projector file if any, already opened and checked.
    pub fn gguf(text: GgufFile, projector: Option<GgufFile>, device: &Device, dtype: DType) -> Self {
        let vision = projector.is_some();
        Self {
            source: Source::Gguf { text, projector },
            device: device.clone(),
            dtype,
            text_prefix: String::new(),
            vision_prefix: vision.then(|| VISION_PREFIX.to_owned()),
            projector_prefix: vision.then(|| PROJECTOR_PREFIX.to_owned()),
        }
    }

    fn path(&self) -> PathBuf {
        match &self.source {
            Source::Safetensors { names, .. } => names.values().next().map(|(_, f)| f.clone()).unwrap_or_default(),
            Source::Gguf { text, .. } => text.path.clone(),
        }
    }

    /// The GGUF file and name of a tensor given by its Hugging Face name.
    fn gguf_name<'a>(text: &'a GgufFile, projector: Option<&'a GgufFile>, name: &str) -> Option<(&'a GgufFile, String)> {
        let vision = name.strip_prefix(VISION_PREFIX).or_else(|| name.strip_prefix(PROJECTOR_PREFIX));
        match (vision, projector) {
            (Some(rest), Some(p)) => crate::gguf::vision_tensor_name(rest).map(|n| (p, n)),
            (Some(_), None) => None,
            (None, _) => crate::gguf::text_tensor_name(name).map(|n| (text, n)),
        }
    }

    /// A GGUF tensor by its Hugging Face name, translated, and checked for `shape`.
    fn gguf_tensor(&self, text: &GgufFile, projector: Option<&GgufFile>, name: &str, shape: &[usize]) -> Result<QTensor> {
        let (file, gguf_name) = Self::gguf_name(text, projector, name).ok_or_else(|| ModelError::BadWeights {
            path: text.path.clone(),
            reason: format!("tensor {name} has no GGUF counterpart"),
        })?;
        file.qtensor(&gguf_name, shape, &self.device)
    }

    /// The tensor `name`, which must have `shape`, in the run's dtype.
    pub fn get(&self, name: &str, shape: &[usize]) -> Result<Tensor> {
        let t = match &self.source {
            Source::Safetensors { files, names } => {
                let Some((dims, file)) = names.get(name) else {
                    return Err(ModelError::BadWeights { path: self.path(), reason: format!("tensor {name} is missing") });
                };
                if dims.as_slice() != shape {
                    return Err(ModelError::BadWeights {
                        path: file.clone(),
                        reason: format!("tensor {name} has shape {dims:?}, expected {shape:?} from config.json"),
                    });
                }
                files
                    .load(name, &self.device)
                    .map_err(|e| ModelError::BadWeights { path: file.clone(), reason: format!("tensor {name}: {e}") })?
            }
            Source::Gguf { text, projector } => self.gguf_tensor(text, projector.as_ref(), name, shape)?.dequantize(&self.device)?,
        };
        Ok(t.to_dtype(self.dtype)?)
    }

    /// Like `get`, but always in f32 (norm weights are applied in f32).
    pub fn get_f32(&self, name: &str, shape: &[usize]) -> Result<Tensor> {
        Ok(self.get(name, shape)?.to_dtype(DType::F32)?)
    }

    /// The scale `1 + weight` of a Gemma RMSNorm, in f32. llama.cpp's
    /// converter stores Gemma norm weights with the 1 already added.
    pub fn gemma_norm_scale(&self, name: &str, dim: usize) -> Result<Tensor> {
        let weight = self.get_f32(name, &[dim])?;
        match &self.source {
            Source::Safetensors { .. } => Ok((weight + 1.0)?),
            Source::Gguf { .. } => Ok(weight),
        }
    }

    /// A linear layer `name` (`name.weight` [out, in], `name.bias` [out]);
    /// quantized GGUF matrices stay quantized.
    pub fn linear(&self, name: &str, in_dim: usize, out_dim: usize, bias: bool) -> Result<Linear> {
        let bias = if bias { Some(self.get(&format!("{name}.bias"), &[out_dim])?) } else { None };
        let weight_name = format!("{name}.weight");
        match &self.source {
            Source::Gguf { text, projector } => {
                let q = self.gguf_tensor(text, projector.as_ref(), &weight_name, &[out_dim, in_dim])?;
                if is_float(q.dtype()) {
                    Ok(Linear::dense(q.dequantize(&self.device)?.to_dtype(self.dtype)?, bias))
                } else {
                    Ok(Linear::quantized(crate::quantized_matmul::QuantizedMatrix::new(Arc::new(q))?, bias))
                }
            }
            Source::Safetensors { .. } => Ok(Linear::dense(self.get(&weight_name, &[out_dim, in_dim])?, bias)),
        }
    }

    /// A token embedding table [vocab, hidden]; a quantized GGUF table stays
    /// quantized (rows are dequantized as they are looked up).
    /// Gemma's RMSNorm `name` (its `.weight`, stored as `weight`, applied as `1 + weight`).
    pub fn gemma_rms_norm(&self, name: &str, dim: usize, eps: f64) -> Result<GemmaRmsNorm> {
        Ok(GemmaRmsNorm::new(self.gemma_norm_scale(&format!("{name}.weight"), dim)?, eps))
    }

    /// LayerNorm `name` (its `.weight` and `.bias`).
    pub fn layer_norm(&self, name: &str, dim: usize, eps: f64) -> Result<LayerNorm> {
        Ok(LayerNorm::new(self.get_f32(&format!("{name}.weight"), &[dim])?, self.get_f32(&format!("{name}.bias"), &[dim])?, eps))
    }

    pub fn embedding(&self, name: &str, vocab: usize, hidden: usize) -> Result<Embedding> {
        match &self.source {
            Source::Gguf { text, projector } => {
                let q = self.gguf_tensor(text, projector.as_ref(), name, &[vocab, hidden])?;
                if is_float(q.dtype()) {
                    Ok(Embedding::Dense(q.dequantize(&self.device)?.to_dtype(self.dtype)?))
                } else {
                    Ok(Embedding::Quantized { table: Arc::new(q), dtype: self.dtype })
                }
            }
            Source::Safetensors { .. } => Ok(Embedding::Dense(self.get(name, &[vocab, hidden])?)),
        }
    }

    pub fn contains(&self, name: &str) -> bool {
        match &self.source {
            Source::Safetensors { names, .. } => names.contains_key(name),
            Source::Gguf { text, projector } => {
                Self::gguf_name(text, projector.as_ref(), name).is_some_and(|(file, n)| file.contains(&n))
            }
        }
    }
}

/// Where a GGUF model's tower and projector tensors are looked up (the
/// Hugging Face names, as the safetensors path knows them).
const VISION_PREFIX: &str = "vision_tower.vision_model.";
const PROJECTOR_PREFIX: &str = "multi_modal_projector.";

fn is_float(t: GgmlDType) -> bool {
    matches!(t, GgmlDType::F32 | GgmlDType::F16 | GgmlDType::BF16)
}

/// The safetensors files of a model folder, checked to be all present.
pub fn safetensors_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let index = dir.join("model.safetensors.index.json");
    if index.exists() {
        let text = std::fs::read_to_string(&index).map_err(|source| ModelError::Io { path: index.clone(), source })?;
        let json: Value = serde_json::from_str(&text)
            .map_err(|e| ModelError::BadConfig { path: index.clone(), reason: format!("not JSON: {e}") })?;
        let map = json["weight_map"]
            .as_object()
            .ok_or_else(|| ModelError::BadConfig { path: index.clone(), reason: "no weight_map".into() })?;
        let bad = |reason: String| ModelError::BadConfig { path: index.clone(), reason };
        let mut shards = Vec::with_capacity(map.len());
        for (tensor, file) in map {
            let file = file.as_str().ok_or_else(|| bad(format!("its weight_map gives {tensor} no file name")))?;
            // A shard is a file beside the index: no absolute path, no "..".
            let plain = std::path::Path::new(file).components().all(|c| matches!(c, std::path::Component::Normal(_)));
            if file.is_empty() || !plain {
                return Err(bad(format!("its weight_map names {file:?} for {tensor}, which is not a file in the model folder")));
            }
            shards.push(file.to_owned());
        }
        if shards.is_empty() {
            return Err(bad("its weight_map names no shard".into()));
        }
        shards.sort();
        shards.dedup();
        let missing: Vec<&String> = shards.iter().filter(|s| !dir.join(s).is_file()).collect();
        if !missing.is_empty() {
            return Err(ModelError::BadWeights {
                path: dir.to_path_buf(),
                reason: format!("shards are missing: {}", missing.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ")),
            });
        }
        return Ok(shards.into_iter().map(|s| dir.join(s)).collect());
    }
    let single = dir.join("model.safetensors");
    if single.is_file() {
        return Ok(vec![single]);
    }
    Err(ModelError::NotAModel {
        path: dir.to_path_buf(),
        reason: "it has no model.safetensors or model.safetensors.index.json".into(),
    })
}

/// Reads a safetensors header and checks that every tensor lies inside the file
/// (a truncated download is caught here, before anything is allocated).
fn read_header(path: &Path) -> Result<Vec<(String, Vec<usize>)>> {
    use std::io::Read;
    let bad = |reason: String| ModelError::BadWeights { path: path.to_path_buf(), reason };
    let mut f = std::fs::File::open(path).map_err(|source| ModelError::Io { path: path.into(), source })?;
    let file_len = f.metadata().map_err(|source| ModelError::Io { path: path.into(), source })?.len();
    let mut len_bytes = [0u8; 8];
    f.read_exact(&mut len_bytes).map_err(|_| bad("the file is too short to be safetensors".into()))?;
    let header_len = u64::from_le_bytes(len_bytes);
    if header_len > 100_000_000 || 8 + header_len > file_len {
        return Err(bad(format!("the header claims {header_len} bytes but the file has {file_len}")));
    }
    let mut header = vec![0u8; header_len as usize];
    f.read_exact(&mut header).map_err(|e| bad(e.to_string()))?;
    let json: Value = serde_json::from_slice(&header).map_err(|e| bad(format!("the header is not JSON: {e}")))?;
    let data_len = file_len - 8 - header_len;
    let mut out = Vec::new();
    for (name, info) in json.as_object().ok_or_else(|| bad("the header is not a JSON object".into()))? {
        if name == "__metadata__" {
            continue;
        }
        let shape: Vec<usize> = info["shape"]
            .as_array()
            .ok_or_else(|| bad(format!("tensor {name} has no shape")))?
            .iter()
            .map(|d| d.as_u64().map(|d| d as usize))
            .collect::<Option<_>>()
            .ok_or_else(|| bad(format!("tensor {name} has a bad shape")))?;
        let end = info["data_offsets"][1].as_u64().ok_or_else(|| bad(format!("tensor {name} has no data offsets")))?;
        if end > data_len {
            return Err(bad(format!(
                "tensor {name} ends at byte {end} of the data but the file holds only {data_len}: the file is truncated"
            )));
        }
        out.push((name.clone(), shape));
    }
    Ok(out)
}
