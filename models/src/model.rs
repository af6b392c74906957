//! The runtime's front door: where a model comes from (`ModelSource`), loading
//! it on a device (`Model::load`), prompts from conversations, and generation
//! with a per-token callback and a cancel flag. Fresh, reused and follow-up
//! generation share one prefill path (`read_prompt`); the decode loop is in
//! `generate`, beside sampling.

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::time::Instant;

use candle_core::{DType, Device, Tensor};
use image::DynamicImage;

use crate::chat::{expand_image_tokens, ChatTemplate, Message};
use crate::config::{Gemma3Config, ProjectorConfig, TextConfig};
use crate::device::{DeviceChoice, Precision};
use crate::error::{ModelError, Result};
use crate::gemma3::{Gemma3, KvCache, TokenKind};
use crate::generate::{decode_loop, ms, per_second, split_thinking, Generation, GenerationParams, GenerationStats, StopReason};
use crate::gguf::{self, GgufFile};
use crate::memory::{self, MemoryNeed};
use crate::processor::ImageProcessor;
use crate::reuse::{Checkpoint, Reuse};
use crate::tokenizer::TextTokenizer;

/// The tokens that mark images in Gemma 3 prompts.
const BOI: &str = "<start_of_image>";
const EOI: &str = "<end_of_image>";
const IMAGE_SOFT_TOKEN: &str = "<image_soft_token>";

/// Where a model's files are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ModelSource {
    /// A Hugging Face model folder (config.json, *.safetensors, tokenizer.json …).
    Folder(PathBuf),
    /// A GGUF decoder (llama.cpp's format) and its vision projector; `None`:
    /// the one `mmproj*.gguf` beside the decoder, if there is one.
    Gguf { model: PathBuf, projector: Option<PathBuf> },
}

impl ModelSource {
    /// A `.gguf` file is a GGUF decoder (its projector looked for beside it);
    /// anything else is taken for a model folder (loading says what is wrong).
    pub fn at(path: &Path) -> Self {
        if path.is_file() && gguf::is_gguf_path(path) {
            ModelSource::Gguf { model: path.into(), projector: None }
        } else {
            ModelSource::Folder(path.into())
        }
    }

    /// `at(path)`, or with an explicit vision projector the GGUF pair.
    pub fn with_projector(path: &Path, projector: Option<&Path>) -> Self {
        match projector {
            Some(p) => ModelSource::Gguf { model: path.into(), projector: Some(p.into()) },
            None => Self::at(path),
        }
    }

    /// The folder, or the GGUF decoder file.
    pub fn path(&self) -> &Path {
        match self {
            ModelSource::Folder(dir) => dir,
            ModelSource::Gguf { model, .. } => model,
        }
    }

    pub fn is_gguf(&self) -> bool {
        matches!(self, ModelSource::Gguf { .. })
    }

    /// The model's name: the folder's, or the GGUF file's without `.gguf`.
    pub fn id(&self) -> String {
        let name = match self {
            ModelSource::Folder(dir) => dir.file_name(),
            ModelSource::Gguf { model, .. } => model.file_stem(),
        };
        name.map_or_else(|| "model".into(), |n| n.to_string_lossy().into_owned())
    }

    /// The vision projector a GGUF decoder is loaded with: the given one, else
    /// the one beside it. `None` for a folder.
    pub fn projector(&self) -> Option<PathBuf> {
        match self {
            ModelSource::Folder(_) => None,
            ModelSource::Gguf { model, projector } => projector.clone().or_else(|| gguf::projector_next_to(model)),
        }
    }

    /// The files holding the weights, in a fixed order (what a weights hash
    /// covers): a folder's `.safetensors` files by name; a GGUF decoder, then
    /// its projector.
    pub fn weight_files(&self) -> std::io::Result<Vec<PathBuf>> {
        match self {
            ModelSource::Folder(dir) => {
                let mut files: Vec<PathBuf> =
                    std::fs::read_dir(dir)?.flatten().map(|e| e.path()).filter(|p| p.extension().is_some_and(|e| e == "safetensors")).collect();
                files.sort();
                Ok(files)
            }
            ModelSource::Gguf { model, .. } => Ok(std::iter::once(model.clone()).chain(self.projector()).collect()),
        }
    }

    /// How an image is resized and normalised for this model, read from its
    /// files without loading weights; `None` for a model that reads no images
    /// (or a GGUF decoder without its projector).
    pub fn image_processor(&self) -> Result<Option<ImageProcessor>> {
        match self {
            ModelSource::Folder(dir) => {
                let config = Gemma3Config::from_file(&dir.join("config.json"))?;
                config.vision.map(|v| ImageProcessor::for_model_dir(dir, v.image_size)).transpose()
            }
            ModelSource::Gguf { .. } => match self.projector() {
                Some(p) => Ok(Some(ProjectorConfig::from_gguf(&GgufFile::open(&p)?)?.processor)),
                None => Ok(None),
            },
        }
    }
}

/// A loaded Gemma 3 / MedGemma model, ready to generate.
pub struct Model {
    source: ModelSource,
    gemma: Gemma3,
    tokenizer: Option<TextTokenizer>,
    template: ChatTemplate,
    processor: Option<ImageProcessor>,
    device: Device,
    /// What it computes in (f32, bf16).
    dtype: DType,
    /// A GGUF decoder with image tokens whose vision projector was not found.
    projector_missing: bool,
}

impl Model {
    /// Loads a model on the chosen device: the files are checked, and the
    /// model's memory need compared with the device's free memory, before any
    /// weight is read.
    pub fn load(source: &ModelSource, device: DeviceChoice) -> Result<Self> {
        Self::load_as(source, device, Precision::Auto)
    }

    /// `load`, computing in the given precision (see [`Precision`]).
    pub fn load_as(source: &ModelSource, device: DeviceChoice, precision: Precision) -> Result<Self> {
        let device = device.open()?;
        let dtype = precision.dtype_on(&device);
        match source {
            ModelSource::Folder(dir) => Self::load_folder(dir, &device, dtype),
            ModelSource::Gguf { model, projector } => Self::load_gguf(model, projector.as_deref(), &device, dtype),
        }
    }

    fn load_folder(dir: &Path, device: &Device, dtype: DType) -> Result<Self> {
        if dir.is_file() && gguf::is_gguf_path(dir) {
            return Self::load_gguf(dir, None, device, dtype);
        }
        if dir.is_file() {
            return Err(ModelError::NotAModel {
                path: dir.into(),
                reason: "it is a file; choose a model folder (config.json, model.safetensors …) or a .gguf file".into(),
            });
        }
        if !dir.is_dir() {
            return Err(ModelError::NotAModel { path: dir.into(), reason: "it is not a folder".into() });
        }
        let config_path = dir.join("config.json");
        if !config_path.is_file() {
            return Err(ModelError::NotAModel { path: dir.into(), reason: "it has no config.json".into() });
        }
        let mut config = Gemma3Config::from_file(&config_path)?;
        // Before any weight is read: refuse a model that cannot fit in the
        // chosen device's free memory (RAM, or the GPU's own), with what to do.
        check_fits(memory::memory_need(&config, dtype.size_in_bytes() as u64, memory::DRAFT_CONTEXT), device)?;
        let tokenizer = if dir.join("tokenizer.json").is_file() { Some(TextTokenizer::from_dir(dir)?) } else { None };
        // Stop on every end token the model declares anywhere: config.json,
        // generation_config.json, and the tokenizer's `<eos>`/`<end_of_turn>`.
        if let Some(gen) = crate::tokenizer::read_json(&dir.join("generation_config.json"))? {
            match &gen["eos_token_id"] {
                serde_json::Value::Array(ids) => config.eos_token_ids.extend(ids.iter().filter_map(|v| v.as_u64()).map(|i| i as u32)),
                serde_json::Value::Number(n) => config.eos_token_ids.extend(n.as_u64().map(|i| i as u32)),
                _ => {}
            }
        }
        if let Some(t) = &tokenizer {
            config.eos_token_ids.extend(["<eos>", "<end_of_turn>"].iter().filter_map(|s| t.token_id(s)));
        }
        config.eos_token_ids.sort_unstable();
        config.eos_token_ids.dedup();
        let processor = config.vision.as_ref().map(|v| ImageProcessor::for_model_dir(dir, v.image_size)).transpose()?;
        let template = ChatTemplate::from_model_dir(dir)?;
        let gemma = Gemma3::load(dir, config, device, dtype)?;
        Ok(Self { source: ModelSource::Folder(dir.into()), gemma, tokenizer, template, processor, device: device.clone(), dtype, projector_missing: false })
    }

    /// Loads a GGUF decoder (llama.cpp's format) with the tokenizer and chat
    /// template in its metadata, and its vision projector: `mmproj`, else the
    /// one `mmproj*.gguf` next to it. Both files are checked, and the
    /// projector matched to the decoder, before any tensor is read.
    fn load_gguf(path: &Path, mmproj: Option<&Path>, device: &Device, dtype: DType) -> Result<Self> {
        let file = GgufFile::open(path)?;
        // The architecture and hyperparameters first: a file we cannot run is
        // named before its (large) vocabulary is read.
        TextConfig::from_gguf(&file)?;
        let tokenizer = gguf::tokenizer::from_gguf(&file)?;
        let mut config = Gemma3Config::from_gguf(&file, &tokenizer)?;
        let projector_path = mmproj.map(Path::to_path_buf).or_else(|| gguf::projector_next_to(path));
        let (projector, processor) = match &projector_path {
            Some(p) => {
                let pfile = GgufFile::open(p)?;
                let pc = ProjectorConfig::from_gguf(&pfile)?;
                if pc.text_hidden != config.text.hidden_size {
                    return Err(ModelError::BadWeights {
                        path: p.clone(),
                        reason: format!(
                            "this vision projector maps images to width {}, but {} has width {}: they belong to different models",
                            pc.text_hidden,
                            path.display(),
                            config.text.hidden_size
                        ),
                    });
                }
                if tokenizer.token_id(IMAGE_SOFT_TOKEN).is_none() {
                    return Err(ModelError::BadWeights {
                        path: p.clone(),
                        reason: format!("{} has no image tokens, so it cannot take this vision projector", path.display()),
                    });
                }
                config.vision = Some(pc.vision);
                config.mm_tokens_per_image = pc.mm_tokens_per_image;
                (Some(pfile), Some(pc.processor))
            }
            None => (None, None),
        };
        // A multimodal decoder (it has image tokens) without its projector can
        // still write text; asked to look at an image, it says what is missing.
        let projector_missing = projector.is_none() && tokenizer.token_id(IMAGE_SOFT_TOKEN).is_some();
        let mut need = memory::memory_need(&config, dtype.size_in_bytes() as u64, memory::DRAFT_CONTEXT);
        need.weights_bytes = file.tensor_bytes_total() + projector.as_ref().map_or(0, |p| p.tensor_bytes_total());
        check_fits(need, device)?;
        let template = match file.string("tokenizer.chat_template") {
            Some(src) => ChatTemplate::from_source(src),
            None => ChatTemplate::gemma3_builtin(),
        };
        let w = crate::weights::Weights::gguf(file, projector, device, dtype);
        let gemma = Gemma3::from_weights(&w, config)?;
        Ok(Self {
            source: ModelSource::Gguf { model: path.into(), projector: projector_path },
            gemma,
            tokenizer: Some(tokenizer),
            template,
            processor,
            device: device.clone(),
            dtype,
            projector_missing,
        })
    }

    pub fn config(&self) -> &Gemma3Config {
        &self.gemma.config
    }

    /// Where it was loaded from.
    pub fn source(&self) -> &ModelSource {
        &self.source
    }

    pub fn device(&self) -> &Device {
        &self.device
    }

    /// The device it runs on, as provenance names it: "cpu", "cuda", "metal".
    pub fn device_name(&self) -> &'static str {
        match self.device.location() {
            candle_core::DeviceLocation::Cpu => "cpu",
            candle_core::DeviceLocation::Cuda { .. } => "cuda",
            candle_core::DeviceLocation::Metal { .. } => "metal",
        }
    }

    /// The dtype it computes in ("f32", "bf16"; see [`Precision`]).
    pub fn compute_dtype(&self) -> &'static str {
        self.dtype.as_str()
    }

    /// It has a vision tower (with its projector) and reads images.
    pub fn reads_images(&self) -> bool {
        self.processor.is_some() && self.gemma.has_vision()
    }

    /// What it needs in memory with `context` tokens of context, in its
    /// compute dtype.
    pub fn memory_need(&self, context: usize) -> MemoryNeed {
        memory::memory_need(self.config(), self.dtype.size_in_bytes() as u64, context)
    }

    fn tokenizer(&self) -> Result<&TextTokenizer> {
        self.tokenizer.as_ref().ok_or_else(|| ModelError::NotAModel {
            path: self.source.path().into(),
            reason: "it has no tokenizer.json (pass token ids instead of text)".into(),
        })
    }

    /// The prompt text for a conversation (chat template, images expanded).
    pub fn render_prompt(&self, messages: &[Message]) -> Result<String> {
        let bos = self.tokenizer.as_ref().map_or("<bos>", |t| t.bos_text());
        let text = self.template.render(messages, bos)?;
        Ok(self.expand_images(&text))
    }

    /// Raw prompt text with each `<start_of_image>` expanded into the run of
    /// image soft tokens the model reads an image into.
    pub fn expand_images(&self, text: &str) -> String {
        expand_image_tokens(text, BOI, IMAGE_SOFT_TOKEN, EOI, self.config().mm_tokens_per_image)
    }

    /// Token ids of a conversation, ready for `generate`.
    pub fn encode_conversation(&self, messages: &[Message]) -> Result<Vec<u32>> {
        let text = self.render_prompt(messages)?;
        // The template writes BOS itself.
        self.tokenizer()?.encode(&text, false)
    }

    /// Token ids of raw text, with BOS as the tokenizer config says.
    pub fn encode_raw(&self, text: &str) -> Result<Vec<u32>> {
        self.tokenizer()?.encode(text, true)
    }

    /// Token ids of text as it stands (no BOS; special tokens written in it
    /// are those tokens).
    pub fn encode_text(&self, text: &str) -> Result<Vec<u32>> {
        self.tokenizer()?.encode(text, false)
    }

    /// The id of one token of the vocabulary, by its text.
    pub fn token_id(&self, token: &str) -> Option<u32> {
        self.tokenizer.as_ref().and_then(|t| t.token_id(token))
    }

    pub fn decode(&self, ids: &[u32]) -> Result<String> {
        self.tokenizer()?.decode(ids)
    }

    /// The image as this model sees it, 8-bit: RGB on white, resized to its
    /// input size by its own processor (given this image again, the
    /// processor leaves it as it is).
    pub fn input_image(&self, image: &DynamicImage) -> Result<image::RgbImage> {
        let p = self.processor.as_ref().ok_or_else(|| self.no_vision())?;
        p.resized(image)
    }

    /// The exact pixels the model sees for an image, [3, size, size].
    pub fn preprocess(&self, image: &DynamicImage) -> Result<Tensor> {
        let p = self.processor.as_ref().ok_or_else(|| self.no_vision())?;
        p.preprocess(image, &self.device)
    }

    /// Why this model cannot look at images.
    fn no_vision(&self) -> ModelError {
        if self.projector_missing {
            ModelError::NoProjector { path: self.source.path().into() }
        } else {
            ModelError::NoVision
        }
    }

    /// The soft-token embeddings of one image, [mm_tokens, hidden], from its
    /// preprocessed pixels (see `preprocess`).
    pub fn image_features(&self, pixels: &Tensor) -> Result<Tensor> {
        self.gemma.image_features(pixels)
    }

    /// Logits of every prompt position [t, vocab] (f32), without generating.
    /// `pixels` are preprocessed images ([3, size, size] each), in prompt order.
    pub fn prompt_logits(&self, ids: &[u32], pixels: &[Tensor]) -> Result<Tensor> {
        self.prompt_logits_in_chunks(ids, pixels, GenerationParams::default().prefill_chunk)
    }

    /// `prompt_logits`, reading the prompt `chunk` tokens at a time (an
    /// image's soft tokens are never split).
    pub fn prompt_logits_in_chunks(&self, ids: &[u32], pixels: &[Tensor], chunk: usize) -> Result<Tensor> {
        let feats = pixels.iter().map(|p| self.image_features(p)).collect::<Result<Vec<_>>>()?;
        let mut cache = self.gemma.text.new_cache();
        let hidden = self.read_prompt(ids, &feats, &mut cache, 0, chunk)?;
        self.gemma.text.logits(&hidden)
    }

    /// Generates after the prompt `ids` (images fill its soft-token runs in
    /// order). `on_text` receives each complete piece of text as it is made;
    /// `cancel` is checked before every step.
    pub fn generate(
        &self,
        ids: &[u32],
        images: &[DynamicImage],
        params: &GenerationParams,
        on_text: &mut dyn FnMut(&str),
        cancel: &AtomicBool,
    ) -> Result<Generation> {
        let start = Instant::now();
        self.check_request(ids, params)?;
        let pixels = images.iter().map(|img| self.preprocess(img)).collect::<Result<Vec<_>>>()?;
        self.run_from_pixels(ids, &pixels, params, on_text, cancel, start)
    }

    /// `generate` for images already preprocessed (see `preprocess`).
    pub fn generate_from_pixels(
        &self,
        ids: &[u32],
        pixels: &[Tensor],
        params: &GenerationParams,
        on_text: &mut dyn FnMut(&str),
        cancel: &AtomicBool,
    ) -> Result<Generation> {
        let start = Instant::now();
        self.check_request(ids, params)?;
        self.run_from_pixels(ids, pixels, params, on_text, cancel, start)
    }

    /// A generation without reuse, from preprocessed images (timed from `start`).
    fn run_from_pixels(
        &self,
        ids: &[u32],
        pixels: &[Tensor],
        params: &GenerationParams,
        on_text: &mut dyn FnMut(&str),
        cancel: &AtomicBool,
        start: Instant,
    ) -> Result<Generation> {
        let feats = pixels.iter().map(|p| self.image_features(p)).collect::<Result<Vec<_>>>()?;
        self.run(ids, &feats, None, 0, params, on_text, cancel, start)
    }

    /// `generate`, reusing what earlier generations left in `reuse`: the
    /// features of images with the same key (e.g. the hash of the exact
    /// model-input pixels), and the decoder's memory of the longest earlier
    /// prompt or conversation this one starts with. The output is the same as
    /// `generate`'s; `stats` says how much was reused.
    pub fn generate_reusing(
        &self,
        reuse: &mut Reuse,
        ids: &[u32],
        images: &[(String, DynamicImage)],
        params: &GenerationParams,
        on_text: &mut dyn FnMut(&str),
        cancel: &AtomicBool,
    ) -> Result<Generation> {
        let start = Instant::now();
        self.check_request(ids, params)?;
        let mut feats = Vec::with_capacity(images.len());
        let mut images_reused = 0;
        for (key, image) in images {
            match reuse.features(key) {
                Some(f) => {
                    images_reused += 1;
                    feats.push(f);
                }
                None => {
                    let f = self.image_features(&self.preprocess(image)?)?;
                    reuse.keep_features(key.clone(), f.clone());
                    feats.push(f);
                }
            }
        }
        let keys: Vec<String> = images.iter().map(|(k, _)| k.clone()).collect();
        self.run(ids, &feats, Some((reuse, keys)), images_reused, params, on_text, cancel, start)
    }

    /// Every generation: resume from `reuse` where it can, read the rest of
    /// the prompt (the one prefill path), decode, and leave checkpoints.
    #[allow(clippy::too_many_arguments)]
    fn run(
        &self,
        ids: &[u32],
        feats: &[Tensor],
        mut reuse: Option<(&mut Reuse, Vec<String>)>,
        images_reused: usize,
        params: &GenerationParams,
        on_text: &mut dyn FnMut(&str),
        cancel: &AtomicBool,
        start: Instant,
    ) -> Result<Generation> {
        let mut stats = GenerationStats { prompt_tokens: ids.len(), images: feats.len(), images_reused, ..Default::default() };
        stats.image_encode_ms = ms(start);

        let prefill_start = Instant::now();
        let (mut cache, from, logits) = match &reuse {
            Some((r, keys)) => self.resume(r, ids, keys),
            None => (self.gemma.text.new_cache(), 0, None),
        };
        stats.reused_prompt_tokens = from;
        let mut logits = match logits {
            Some(l) => l,
            None => {
                let hidden = self.read_prompt(ids, feats, &mut cache, from, params.prefill_chunk)?;
                self.gemma.text.last_logits(&hidden)?
            }
        };
        stats.prefill_ms = ms(prefill_start);
        stats.prefill_tok_s = per_second(ids.len() - from, stats.prefill_ms);
        if let Some((r, keys)) = reuse.as_mut() {
            r.keep_checkpoint(Checkpoint { ids: ids.to_vec(), image_keys: keys.clone(), cache: cache.try_clone()?, logits: Some(logits.clone()) });
        }

        let (tokens, stop_reason) =
            decode_loop(&self.gemma, self.tokenizer.as_ref(), &mut cache, &mut logits, ids, params, on_text, cancel, &mut stats, start)?;
        if let Some((r, keys)) = reuse {
            // The conversation so far, as far as the cache has read it: a follow-up starts here.
            let read: Vec<u32> = ids.iter().chain(tokens.iter()).copied().take(cache.seen()).collect();
            if read.len() > ids.len() {
                r.keep_checkpoint(Checkpoint { ids: read, image_keys: keys, cache, logits: None });
            }
        }
        self.finish(tokens, stop_reason, stats, start)
    }

    /// The one prefill path: reads `ids[from..]` into `cache`, which has read
    /// `ids[..from]` (with their images), each image's soft tokens filled from
    /// `feats` (all the prompt's images, in order). The hidden states of the
    /// positions read.
    fn read_prompt(&self, ids: &[u32], feats: &[Tensor], cache: &mut KvCache, from: usize, chunk: usize) -> Result<Tensor> {
        let before = image_runs_before(&self.gemma.token_kinds(ids, 0), from);
        let (embeds, kinds) = self.gemma.embed_prompt(&ids[from..], feats.get(before..).unwrap_or_default(), before as u32)?;
        self.gemma.prefill(&embeds, &kinds, cache, chunk)
    }

    /// Refuses a request that cannot run: bad settings, an empty prompt, or
    /// one that fills the context.
    fn check_request(&self, ids: &[u32], params: &GenerationParams) -> Result<()> {
        params.validate()?;
        let limit = self.config().text.max_position_embeddings;
        if ids.is_empty() {
            return Err(ModelError::BadParameter("the prompt is empty".into()));
        }
        if ids.len() >= limit {
            return Err(ModelError::PromptTooLong { tokens: ids.len(), limit });
        }
        // The image token may lie outside the table (its rows are replaced);
        // any other id there would be read as row 0 and silently mean nothing.
        let (vocab, image) = (self.config().text.vocab_size as u32, self.config().image_token_id);
        if let Some(bad) = ids.iter().find(|&&i| i >= vocab && i != image) {
            return Err(ModelError::BadParameter(format!("token id {bad} is outside the model's vocabulary of {vocab} tokens")));
        }
        Ok(())
    }

    /// The generation's text (thinking split off) and final statistics.
    fn finish(&self, tokens: Vec<u32>, stop_reason: StopReason, mut stats: GenerationStats, start: Instant) -> Result<Generation> {
        let text = match &self.tokenizer {
            Some(t) => t.decode(&tokens)?,
            None => String::new(),
        };
        let (thinking, text) = split_thinking(&text);
        stats.total_ms = ms(start);
        Ok(Generation { token_ids: tokens, text, thinking, stop_reason, stats })
    }

    /// The best place to resume from: a cache that has read the first `n`
    /// tokens of `ids` (with the same images), and the logits after them when
    /// `n` is the whole prompt. A fresh cache and 0 when nothing fits.
    fn resume(&self, reuse: &Reuse, ids: &[u32], keys: &[String]) -> (KvCache, usize, Option<Tensor>) {
        let kinds = self.gemma.token_kinds(ids, 0);
        let mut best: Option<(usize, &Checkpoint)> = None;
        for c in &reuse.checkpoints {
            let common = c.ids.iter().zip(ids).take_while(|(a, b)| a == b).count();
            // Exactly this prompt, with its logits: nothing to compute.
            let whole = common == ids.len() && c.ids.len() == ids.len() && c.logits.is_some();
            // Otherwise at least the last prompt token must be read again for its logits.
            let mut n = if whole { common } else { common.min(ids.len() - 1) };
            // Never resume inside an image's soft tokens (they attend to each other).
            while n > 0 && n < kinds.len() && matches!((kinds[n - 1], kinds[n]), (TokenKind::Image(a), TokenKind::Image(b)) if a == b) {
                n -= 1;
            }
            let images = image_runs_before(&kinds, n);
            if n == 0 || c.image_keys.len() < images || keys.len() < images || c.image_keys[..images] != keys[..images] {
                continue;
            }
            if best.is_none_or(|(m, _)| n > m) && (n == c.ids.len() || c.cache.can_truncate(n)) {
                best = Some((n, c));
            }
        }
        if let Some((n, c)) = best {
            // A copy that fails (out of memory) only costs the reuse.
            if let Ok(mut cache) = c.cache.try_clone() {
                if cache.truncate(n) {
                    let logits = (n == ids.len()).then(|| c.logits.clone()).flatten();
                    return (cache, n, logits);
                }
            }
        }
        (self.gemma.text.new_cache(), 0, None)
    }
}

/// Refuses, before any weight is read, a model that cannot fit in the
/// device's free memory (RAM, or the GPU's own), saying what to do.
fn check_fits(need: MemoryNeed, device: &Device) -> Result<()> {
    let Some(available) = memory::available_bytes_on(device) else {
        return Ok(());
    };
    if need.total() <= available {
        return Ok(());
    }
    let (name, suggestion) = match device.location() {
        candle_core::DeviceLocation::Cpu => {
            ("CPU", "close other programs, or choose a smaller model (MedGemma 4B, or a 4-bit build of it) or a GPU")
        }
        candle_core::DeviceLocation::Cuda { .. } => {
            ("GPU", "close other programs using the GPU, or run it on the CPU (Models screen, Device), or choose a smaller model")
        }
        candle_core::DeviceLocation::Metal { .. } => ("Mac's shared memory", "close other programs, or choose a smaller model"),
    };
    Err(ModelError::TooBig { need_gb: memory::gb(need.total()), available_gb: memory::gb(available), device: name.into(), suggestion: suggestion.into() })
}

/// How many images' soft-token runs start before position `n`.
fn image_runs_before(kinds: &[TokenKind], n: usize) -> usize {
    let mut runs = 0;
    for i in 0..n.min(kinds.len()) {
        if matches!(kinds[i], TokenKind::Image(_)) && (i == 0 || !matches!(kinds[i - 1], TokenKind::Image(_))) {
            runs += 1;
        }
    }
    runs
}
