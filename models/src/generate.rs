//! Turning logits into tokens (the sampler and the decode loop): greedy by default (clinical determinism), or
//! seeded sampling; stop tokens; text streamed as whole UTF-8 characters;
//! cancellation; and the statistics a user sees (time to first token, tok/s).

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use candle_core::Tensor;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

use crate::error::{ModelError, Result};
use crate::gemma3::{Gemma3, KvCache, TokenKind};
use crate::tokenizer::TextTokenizer;

/// How to generate. `temperature == 0` means greedy. Read back from a
/// stored record, a missing field takes its default (as it was then).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct GenerationParams {
    pub max_new_tokens: usize,
    pub temperature: f64,
    pub top_k: Option<usize>,
    pub top_p: Option<f64>,
    pub repetition_penalty: f32,
    pub seed: u64,
    /// Prompt tokens per prefill step (an image's soft tokens are never split).
    pub prefill_chunk: usize,
    /// Keep generating past end-of-turn tokens (benchmarks, parity tests).
    pub ignore_eos: bool,
}

impl Default for GenerationParams {
    fn default() -> Self {
        Self { max_new_tokens: 512, temperature: 0.0, top_k: None, top_p: None, repetition_penalty: 1.0, seed: 0, prefill_chunk: 512, ignore_eos: false }
    }
}

impl GenerationParams {
    pub fn validate(&self) -> Result<()> {
        let bad = |m: &str| Err(ModelError::BadParameter(m.into()));
        if !(self.temperature >= 0.0 && self.temperature.is_finite()) {
            return bad("temperature must be 0 or more");
        }
        if let Some(p) = self.top_p {
            if !(p > 0.0 && p <= 1.0) {
                return bad("top-p must be in (0, 1]");
            }
        }
        if self.top_k == Some(0) {
            return bad("top-k must be at least 1");
        }
        if !(self.repetition_penalty > 0.0) {
            return bad("repetition penalty must be positive");
        }
        Ok(())
    }

    pub fn is_greedy(&self) -> bool {
        self.temperature == 0.0
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StopReason {
    /// The model ended its turn (`<end_of_turn>` or `<eos>`).
    EndOfTurn,
    MaxTokens,
    Cancelled,
    /// The context window is full.
    ContextFull,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct GenerationStats {
    pub prompt_tokens: usize,
    pub generated_tokens: usize,
    pub images: usize,
    pub image_encode_ms: f64,
    pub prefill_ms: f64,
    pub prefill_tok_s: f64,
    pub time_to_first_token_ms: f64,
    pub decode_ms: f64,
    pub decode_tok_s: f64,
    pub total_ms: f64,
    /// Prompt tokens whose decoder memory came from an earlier generation.
    pub reused_prompt_tokens: usize,
    /// Images whose features came from an earlier generation.
    pub images_reused: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Generation {
    pub token_ids: Vec<u32>,
    pub text: String,
    /// MedGemma 1.5's thinking section, when it wrote one; `text` is the answer.
    pub thinking: Option<String>,
    pub stop_reason: StopReason,
    pub stats: GenerationStats,
}

/// Picks the next token from the last position's logits.
pub struct Sampler {
    params: GenerationParams,
    rng: rand_chacha::ChaCha8Rng,
}

impl Sampler {
    pub fn new(params: &GenerationParams) -> Self {
        Self { params: params.clone(), rng: rand_chacha::ChaCha8Rng::seed_from_u64(params.seed) }
    }

    pub fn sample(&mut self, logits: &Tensor, history: &[u32]) -> Result<u32> {
        let mut logits: Vec<f32> = logits.to_vec1()?;
        if self.params.repetition_penalty != 1.0 {
            let p = self.params.repetition_penalty;
            let mut seen = history.to_vec();
            seen.sort_unstable();
            seen.dedup();
            for id in seen {
                if let Some(l) = logits.get_mut(id as usize) {
                    *l = if *l > 0.0 { *l / p } else { *l * p };
                }
            }
        }
        if self.params.is_greedy() {
            return Ok(argmax(&logits));
        }
        let t = self.params.temperature as f32;
        let mut cand: Vec<(u32, f32)> = logits.iter().enumerate().map(|(i, &l)| (i as u32, l / t)).collect();
        cand.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        if let Some(k) = self.params.top_k {
            cand.truncate(k);
        }
        let max = cand[0].1;
        let mut probs: Vec<f32> = cand.iter().map(|&(_, l)| (l - max).exp()).collect();
        let sum: f32 = probs.iter().sum();
        probs.iter_mut().for_each(|p| *p /= sum);
        if let Some(top_p) = self.params.top_p {
            let mut acc = 0.0;
            let mut keep = probs.len();
            for (i, p) in probs.iter().enumerate() {
                acc += p;
                if acc as f64 >= top_p {
                    keep = i + 1;
                    break;
                }
            }
            probs.truncate(keep);
            cand.truncate(keep);
            let sum: f32 = probs.iter().sum();
            probs.iter_mut().for_each(|p| *p /= sum);
        }
        let r: f32 = self.rng.random();
        let mut acc = 0.0;
        for (i, p) in probs.iter().enumerate() {
            acc += p;
            if r < acc {
                return Ok(cand[i].0);
            }
        }
        Ok(cand[probs.len() - 1].0)
    }
}

/// Index of the largest logit; the first one on ties, as the reference.
pub fn argmax(logits: &[f32]) -> u32 {
    let mut best = 0;
    for (i, &l) in logits.iter().enumerate() {
        if l > logits[best] {
            best = i;
        }
    }
    best as u32
}

/// Streams decoded text: emits only whole characters, so a character spread
/// over several byte-fallback tokens arrives in one piece.
#[derive(Default)]
pub struct TextStream {
    ids: Vec<u32>,
    emitted: usize,
}

impl TextStream {
    /// Adds a token; returns the text that became complete, if any.
    pub fn push(&mut self, id: u32, decode: impl Fn(&[u32]) -> Result<String>) -> Result<Option<String>> {
        self.ids.push(id);
        let text = decode(&self.ids)?;
        if text.ends_with('\u{FFFD}') || text.len() <= self.emitted || !text.is_char_boundary(self.emitted) {
            return Ok(None);
        }
        let new = text[self.emitted..].to_owned();
        self.emitted = text.len();
        Ok(Some(new))
    }
}

/// Splits MedGemma 1.5's thinking (`<unused94>thought … <unused95>`) from the answer.
pub fn split_thinking(text: &str) -> (Option<String>, String) {
    const OPEN: &str = "<unused94>";
    const CLOSE: &str = "<unused95>";
    match (text.find(OPEN), text.find(CLOSE)) {
        (Some(a), Some(b)) if a < b => {
            let thought = text[a + OPEN.len()..b].trim_start_matches("thought").trim().to_owned();
            let answer = format!("{}{}", &text[..a], &text[b + CLOSE.len()..]).trim().to_owned();
            (Some(thought), answer)
        }
        _ => (None, text.to_owned()),
    }
}

/// The decode loop, after the prompt is read: sample from `logits`, stream
/// the text, stop (end of turn, token limit, full context, cancel), and feed
/// each token back through the decoder. The tokens made and why it stopped.
#[allow(clippy::too_many_arguments)]
pub(crate) fn decode_loop(
    gemma: &Gemma3,
    tokenizer: Option<&TextTokenizer>,
    cache: &mut KvCache,
    logits: &mut Tensor,
    prompt: &[u32],
    params: &GenerationParams,
    on_text: &mut dyn FnMut(&str),
    cancel: &AtomicBool,
    stats: &mut GenerationStats,
    start: Instant,
) -> Result<(Vec<u32>, StopReason)> {
    let limit = gemma.config.text.max_position_embeddings;
    let stops = &gemma.config.eos_token_ids;
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
        if let Some(t) = tokenizer {
            if let Some(piece) = stream.push(next, |ids| t.decode(ids))? {
                on_text(&piece);
            }
        }
        if tokens.len() >= params.max_new_tokens {
            break StopReason::MaxTokens;
        }
        let embeds = gemma.text.embed(&[next])?;
        let hidden = gemma.text.forward(&embeds, &[TokenKind::Text], cache)?;
        *logits = gemma.text.last_logits(&hidden)?;
    };
    stats.generated_tokens = tokens.len();
    stats.decode_ms = ms(decode_start);
    stats.decode_tok_s = per_second(tokens.len().saturating_sub(1), stats.decode_ms);
    Ok((tokens, reason))
}

/// Milliseconds since `since`.
pub(crate) fn ms(since: Instant) -> f64 {
    since.elapsed().as_secs_f64() * 1000.0
}

/// `n` per second over `ms` milliseconds (0 when no time passed).
pub(crate) fn per_second(n: usize, ms: f64) -> f64 {
    if ms > 0.0 {
        n as f64 / (ms / 1000.0)
    } else {
        0.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    #[test]
    fn greedy_takes_the_first_maximum() {
        assert_eq!(argmax(&[0.1, 3.0, 3.0, -1.0]), 1);
    }

    #[test]
    fn seeded_sampling_repeats() {
        let params = GenerationParams { temperature: 1.0, top_k: Some(50), top_p: Some(0.9), seed: 42, ..Default::default() };
        let logits = Tensor::new((0..100).map(|i| (i % 7) as f32).collect::<Vec<_>>().as_slice(), &Device::Cpu).unwrap();
        let draw = |p: &GenerationParams| {
            let mut s = Sampler::new(p);
            (0..20).map(|_| s.sample(&logits, &[]).unwrap()).collect::<Vec<_>>()
        };
        assert_eq!(draw(&params), draw(&params));
        assert_ne!(draw(&params), draw(&GenerationParams { seed: 43, ..params.clone() }));
    }

    #[test]
    fn top_k_one_is_greedy() {
        let params = GenerationParams { temperature: 2.0, top_k: Some(1), seed: 1, ..Default::default() };
        let logits = Tensor::new(&[0.5f32, 2.0, 1.0], &Device::Cpu).unwrap();
        let mut s = Sampler::new(&params);
        assert!((0..10).all(|_| s.sample(&logits, &[]).unwrap() == 1));
    }

    #[test]
    fn repetition_penalty_discourages_seen_tokens() {
        let params = GenerationParams { repetition_penalty: 2.0, ..Default::default() };
        let logits = Tensor::new(&[1.0f32, 1.5], &Device::Cpu).unwrap();
        assert_eq!(Sampler::new(&params).sample(&logits, &[1]).unwrap(), 0);
    }

    #[test]
    fn stream_holds_partial_characters() {
        // "é" as two byte tokens: nothing until both arrive.
        let decode = |ids: &[u32]| -> Result<String> {
            let bytes: Vec<u8> = ids.iter().map(|&i| i as u8).collect();
            Ok(String::from_utf8_lossy(&bytes).into_owned())
        };
        let mut s = TextStream::default();
        assert_eq!(s.push(b'a' as u32, decode).unwrap().as_deref(), Some("a"));
        assert_eq!(s.push(0xC3, decode).unwrap(), None);
        assert_eq!(s.push(0xA9, decode).unwrap().as_deref(), Some("é"));
    }

    #[test]
    fn thinking_is_separated_from_the_answer() {
        let (t, a) = split_thinking("<unused94>thought\nLook at the apex.<unused95>No pneumothorax.");
        assert_eq!(t.as_deref(), Some("Look at the apex."));
        assert_eq!(a, "No pneumothorax.");
        assert_eq!(split_thinking("plain").0, None);
    }

    #[test]
    fn bad_parameters_are_refused() {
        assert!(GenerationParams { top_p: Some(0.0), ..Default::default() }.validate().is_err());
        assert!(GenerationParams { temperature: -1.0, ..Default::default() }.validate().is_err());
        assert!(GenerationParams::default().validate().is_ok());
    }
}
