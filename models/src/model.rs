//! The public face of the runtime: load a model folder on a device, build
//! prompts from conversations, and generate with a per-token callback and a
//! cancel flag.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use candle_core::{DType, Device, Tensor};
use image::DynamicImage;

use crate::chat::{expand_image_tokens, ChatTemplate, Message};
use crate::config::Gemma3Config;
use crate::device::DeviceChoice;
use crate::error::{ModelError, Result};
use crate::gemma3::{Gemma3, KvCache, TokenKind};
use crate::generate::{split_thinking, Generation, GenerationParams, GenerationStats, Sampler, StopReason, TextStream};
use crate::processor::ImageProcessor;
use crate::reuse::{Checkpoint, Reuse};
use crate::tokenizer::TextTokenizer;

/// The tokens that mark images in Gemma 3 prompts.
pub const BOI: &str = "<start_of_image>";
pub const EOI: &str = "<end_of_image>";
pub const IMAGE_SOFT_TOKEN: &str = "<image_soft_token>";

pub struct Model {
    pub dir: PathBuf,
    pub gemma: Gemma3,
    pub tokenizer: Option<TextTokenizer>,
    pub template: ChatTemplate,
    pub processor: Option<ImageProcessor>,
    device: Device,
    /// A GGUF decoder with image tokens whose vision projector was not found.
    projector_missing: bool,
}

/// The dtype a device computes in: f32 on CPU (exact, and candle's CPU
/// kernels are fastest in f32); bf16 on CUDA and Metal, where Gemma 3 was
/// trained in bf16 and f16 overflows its activations.
pub fn dtype_for(device: &Device) -> DType {
    if device.is_cpu() {
        DType::F32
    } else {
        DType::BF16
    }
}

impl Model {
    /// Loads a Hugging Face model folder on the chosen device.
    pub fn load(dir: &Path, device: DeviceChoice) -> Result<Self> {
        let device = device.open()?;
        let dtype = dtype_for(&device);
        Self::load_on(dir, &device, dtype)
    }

    /// Loads a GGUF decoder with the vision projector `mmproj` (None: the one
    /// next to it, if any), or a model folder when `mmproj` is None.
    pub fn load_with_projector(path: &Path, mmproj: Option<&Path>, device: DeviceChoice) -> Result<Self> {
        let device = device.open()?;
        let dtype = dtype_for(&device);
        match mmproj {
            Some(p) => Self::load_gguf(path, Some(p), &device, dtype),
            None => Self::load_on(path, &device, dtype),
        }
    }

    pub fn load_on(dir: &Path, device: &Device, dtype: DType) -> Result<Self> {
        if dir.is_file() && crate::gguf::is_gguf_path(dir) {
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
        check_fits(crate::memory::need(&config, dtype.size_in_bytes() as u64, crate::memory::DRAFT_CONTEXT), device)?;
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
        let processor = ImageProcessor::for_model_dir(dir, &config)?;
        let template = ChatTemplate::from_model_dir(dir)?;
        let gemma = Gemma3::load(dir, config, device, dtype)?;
        Ok(Self { dir: dir.into(), gemma, tokenizer, template, processor, device: device.clone(), projector_missing: false })
    }

    /// Loads a GGUF decoder (llama.cpp's format) with the tokenizer and chat
    /// template in its metadata, and its vision projector: `mmproj`, else the
    /// one `mmproj*.gguf` next to it. Both files are checked, and the
    /// projector matched to the decoder, before any tensor is read.
    pub fn load_gguf(path: &Path, mmproj: Option<&Path>, device: &Device, dtype: DType) -> Result<Self> {
        let file = crate::gguf::GgufFile::open(path)?;
        // The architecture and hyperparameters first: a file we cannot run is
        // named before its (large) vocabulary is read.
        crate::gguf::config::text_config(&file)?;
        let tokenizer = crate::gguf::tokenizer::from_gguf(&file)?;
        let mut config = crate::gguf::config::gemma3_config(&file, &tokenizer)?;
        let projector_path = mmproj.map(Path::to_path_buf).or_else(|| crate::gguf::projector_next_to(path));
        let (projector, processor) = match &projector_path {
            Some(p) => {
                let pfile = crate::gguf::GgufFile::open(p)?;
                let pc = crate::gguf::config::projector_config(&pfile)?;
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
        let mut need = crate::memory::need(&config, dtype.size_in_bytes() as u64, crate::memory::DRAFT_CONTEXT);
        need.weights_bytes = file.tensor_bytes_total() + projector.as_ref().map_or(0, |p| p.tensor_bytes_total());
        check_fits(need, device)?;
        let template = match file.string("tokenizer.chat_template") {
            Some(src) => ChatTemplate::from_source(src),
            None => ChatTemplate::gemma3_builtin(),
        };
        let w = crate::weights::Weights::gguf(file, projector, device, dtype);
        let gemma = Gemma3::from_weights(&w, config)?;
        Ok(Self {
            dir: path.into(),
            gemma,
            tokenizer: Some(tokenizer),
            template,
            processor,
            device: device.clone(),
            projector_missing,
        })
    }

    pub fn config(&self) -> &Gemma3Config {
        &self.gemma.config
    }

    pub fn device(&self) -> &Device {
        &self.device
    }

    fn tokenizer(&self) -> Result<&TextTokenizer> {
        self.tokenizer.as_ref().ok_or_else(|| ModelError::NotAModel {
            path: self.dir.clone(),
            reason: "it has no tokenizer.json (pass token ids instead of text)".into(),
        })
    }

    /// The prompt text for a conversation (chat template, images expanded).
    pub fn render_prompt(&self, messages: &[Message]) -> Result<String> {
        let bos = self.tokenizer.as_ref().map_or("<bos>", |t| t.bos_text());
        let text = self.template.render(messages, bos)?;
        Ok(expand_image_tokens(&text, BOI, IMAGE_SOFT_TOKEN, EOI, self.config().mm_tokens_per_image))
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

    pub fn decode(&self, ids: &[u32]) -> Result<String> {
        self.tokenizer()?.decode(ids)
    }

    /// The exact pixels the model sees for an image, [3, size, size].
    pub fn preprocess(&self, image: &DynamicImage) -> Result<Tensor> {
        let p = self.processor.as_ref().ok_or_else(|| self.no_vision())?;
        p.preprocess(image, &self.device)
    }

    /// Why this model cannot look at images.
    fn no_vision(&self) -> ModelError {
        if self.projector_missing {
            ModelError::NoProjector { path: self.dir.clone() }
        } else {
            ModelError::NoVision
        }
    }

    /// The soft-token embeddings of one image, [mm_tokens, hidden].
    pub fn image_features(&self, pixels: &Tensor) -> Result<Tensor> {
        self.gemma.image_features(pixels)
    }

    /// Preprocesses each image.
    pub fn preprocess_all(&self, images: &[DynamicImage]) -> Result<Vec<Tensor>> {
        images.iter().map(|img| self.preprocess(img)).collect()
    }

    /// Logits of every prompt position [t, vocab] (f32), without generating.
    /// `pixels` are preprocessed images ([3, size, size] each), in prompt order.
    pub fn prompt_logits(&self, ids: &[u32], pixels: &[Tensor]) -> Result<Tensor> {
        let feats = pixels.iter().map(|p| self.image_features(p)).collect::<Result<Vec<_>>>()?;
        let (embeds, kinds) = self.gemma.embed_prompt(ids, &feats, 0)?;
        let mut cache = self.gemma.text.new_cache();
        let hidden = self.gemma.prefill(&embeds, &kinds, &mut cache, 512)?;
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
        let pixels = self.preprocess_all(images)?;
        self.generate_from_pixels(ids, &pixels, params, on_text, cancel, start)
    }

    /// `generate` for images already preprocessed (see `preprocess`).
    pub fn generate_from_pixels(
        &self,
        ids: &[u32],
        pixels: &[Tensor],
        params: &GenerationParams,
        on_text: &mut dyn FnMut(&str),
        cancel: &AtomicBool,
        start: Instant,
    ) -> Result<Generation> {
        self.check_request(ids, params)?;
        let mut stats = GenerationStats { prompt_tokens: ids.len(), images: pixels.len(), ..Default::default() };

        let feats = pixels.iter().map(|p| self.image_features(p)).collect::<Result<Vec<_>>>()?;
        stats.image_encode_ms = ms(start);

        let prefill_start = Instant::now();
        let (embeds, kinds) = self.gemma.embed_prompt(ids, &feats, 0)?;
        let mut cache = self.gemma.text.new_cache();
        let hidden = self.gemma.prefill(&embeds, &kinds, &mut cache, params.prefill_chunk)?;
        let mut logits = self.gemma.text.last_logits(&hidden)?;
        stats.prefill_ms = ms(prefill_start);
        stats.prefill_tok_s = per_second(ids.len(), stats.prefill_ms);

        let (tokens, stop_reason) = self.decode_loop(&mut cache, &mut logits, ids, params, on_text, cancel, &mut stats, start)?;
        self.finish(tokens, stop_reason, stats, start)
    }

    /// `generate`, reusing what earlier generations left in `reuse`: the
    /// features of images with the same key (e.g. the hash of the exact
    /// model-input pixels), and the decoder's memory of the longest earlier
    /// prompt or conversation this one starts with. The output is the same as
    /// `generate`'s; `stats` says how much was reused.
    #[allow(clippy::too_many_arguments)]
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
        let mut stats = GenerationStats { prompt_tokens: ids.len(), images: images.len(), ..Default::default() };
        let keys: Vec<String> = images.iter().map(|(k, _)| k.clone()).collect();
        let mut feats = Vec::with_capacity(images.len());
        for (key, image) in images {
            match reuse.features(key) {
                Some(f) => {
                    stats.images_reused += 1;
                    feats.push(f);
                }
                None => {
                    let f = self.image_features(&self.preprocess(image)?)?;
                    reuse.keep_features(key.clone(), f.clone());
                    feats.push(f);
                }
            }
        }
        stats.image_encode_ms = ms(start);

        let prefill_start = Instant::now();
        let all_kinds = self.gemma.token_kinds(ids, 0);
        let (mut cache, from, mut logits) = self.resume(reuse, ids, &keys, &all_kinds);
        stats.reused_prompt_tokens = from;
        let mut logits = match logits.take() {
            Some(l) => l,
            None => {
                let images_before = image_runs_before(&all_kinds, from);
                let (embeds, kinds) = self.gemma.embed_prompt(&ids[from..], &feats[images_before..], images_before as u32)?;
                let hidden = self.gemma.prefill(&embeds, &kinds, &mut cache, params.prefill_chunk)?;
                self.gemma.text.last_logits(&hidden)?
            }
        };
        stats.prefill_ms = ms(prefill_start);
        stats.prefill_tok_s = per_second(ids.len() - from, stats.prefill_ms);
        reuse.keep_checkpoint(Checkpoint { ids: ids.to_vec(), image_keys: keys.clone(), cache: cache.try_clone()?, logits: Some(logits.clone()) });

        let (tokens, stop_reason) = self.decode_loop(&mut cache, &mut logits, ids, params, on_text, cancel, &mut stats, start)?;
        // The conversation so far, as far as the cache has read it: a follow-up starts here.
        let read: Vec<u32> = ids.iter().chain(tokens.iter()).copied().take(cache.seen()).collect();
        if read.len() > ids.len() {
            reuse.keep_checkpoint(Checkpoint { ids: read, image_keys: keys, cache, logits: None });
        }
        self.finish(tokens, stop_reason, stats, start)
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
    fn resume(&self, reuse: &Reuse, ids: &[u32], keys: &[String], kinds: &[TokenKind]) -> (KvCache, usize, Option<Tensor>) {
        let mut best: Option<(usize, &crate::reuse::Checkpoint)> = None;
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
            let images = image_runs_before(kinds, n);
            if n == 0 || c.image_keys.len() < images || c.image_keys[..images] != keys[..images] {
                continue;
            }
            if best.is_none_or(|(m, _)| n > m) && (n == c.ids.len() || c.cache.can_truncate(n)) {
                best = Some((n, c));
            }
        }
        match best {
            Some((n, c)) => {
                // A copy that fails (out of memory) only costs the reuse.
                match c.cache.try_clone() {
                    Ok(mut cache) => {
                        if cache.truncate(n) {
                            let logits = (n == ids.len()).then(|| c.logits.clone()).flatten();
                            return (cache, n, logits);
                        }
                        (self.gemma.text.new_cache(), 0, None)
                    }
                    Err(_) => (self.gemma.text.new_cache(), 0, None),
                }
            }
            None => (self.gemma.text.new_cache(), 0, None),
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn decode_loop(
        &self,
        cache: &mut KvCache,
        logits: &mut Tensor,
        prompt: &[u32],
        params: &GenerationParams,
        on_text: &mut dyn FnMut(&str),
        cancel: &AtomicBool,
        stats: &mut GenerationStats,
        start: Instant,
    ) -> Result<(Vec<u32>, StopReason)> {
        let limit = self.config().text.max_position_embeddings;
        let stops = &self.config().eos_token_ids;
        let mut sampler = Sampler::new(params);
        let mut history = prompt.to_vec();
        let mut tokens = Vec::new();
        let mut stream = TextStream::default();
        let decode_start = Instant::now();
        let reason = loop {
            if cancel.load(Ordering::Relaxed) {
                break StopReason::Cancelled;
            }
            if tokens.len() >= params.max_new_tokens {
                break StopReason::MaxTokens;
            }
            if cache.seen() >= limit {
                break StopReason::ContextFull;
            }
            let next = sampler.sample(logits, &history)?;
            if tokens.is_empty() {
                stats.time_to_first_token_ms = ms(start);
            }
            if !params.ignore_eos && stops.contains(&next) {
                break StopReason::EndOfTurn;
            }
            tokens.push(next);
            history.push(next);
            if let Some(t) = &self.tokenizer {
                if let Some(piece) = stream.push(next, |ids| t.decode(ids))? {
                    on_text(&piece);
                }
            }
            if tokens.len() >= params.max_new_tokens {
                break StopReason::MaxTokens;
            }
            let embeds = self.gemma.text.embed(&[next])?;
            let hidden = self.gemma.text.forward(&embeds, &[TokenKind::Text], cache)?;
            *logits = self.gemma.text.last_logits(&hidden)?;
        };
        stats.generated_tokens = tokens.len();
        stats.decode_ms = ms(decode_start);
        stats.decode_tok_s = per_second(tokens.len().saturating_sub(1), stats.decode_ms);
        Ok((tokens, reason))
    }
}

/// Refuses, before any weight is read, a model that cannot fit in the
/// device's free memory (RAM, or the GPU's own), saying what to do.
fn check_fits(need: crate::memory::MemoryNeed, device: &Device) -> Result<()> {
    let Some(available) = crate::memory::available_bytes_on(device) else {
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
    Err(ModelError::TooBig {
        need_gb: crate::memory::gb(need.total()),
        available_gb: crate::memory::gb(available),
        device: name.into(),
        suggestion: suggestion.into(),
    })
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

fn ms(since: Instant) -> f64 {
    since.elapsed().as_secs_f64() * 1000.0
}

fn per_second(n: usize, ms: f64) -> f64 {
    if ms > 0.0 {
        n as f64 / (ms / 1000.0)
    } else {
        0.0
    }
}
