//! An X-ray draft's model work on one device, timed: image encode, time to
//! the first token of a prompt with one image (its soft tokens plus N text
//! tokens), and decode speed. A lean binary (the runtime alone, no window
//! libraries) that tests/gpu/run.sh carries to a GPU machine and runs beside
//! transformers on the same weights, image and token ids.
//!
//!   device_bench --model DIR --image PNG [--device cuda] [--precision auto]
//!                [--text-tokens 300] [--gen-tokens 64] [--repetitions 3]
//!
//! Prints one JSON line. GPU work is asynchronous: every timed span ends
//! with a device synchronisation.

use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::time::Instant;

use clap::Parser;
use medgemma_models::{DeviceChoice, GenerationParams, Model, ModelSource, Precision};

#[derive(Parser)]
struct Args {
    /// A Gemma 3 multimodal model folder (config.json, safetensors).
    #[arg(long)]
    model: PathBuf,
    /// The image (PNG or JPEG).
    #[arg(long)]
    image: PathBuf,
    #[arg(long, default_value = "auto")]
    device: String,
    #[arg(long, default_value = "auto")]
    precision: String,
    /// Text tokens around the image (the notes and instructions of a draft).
    #[arg(long, default_value_t = 300)]
    text_tokens: usize,
    #[arg(long, default_value_t = 64)]
    gen_tokens: usize,
    #[arg(long, default_value_t = 3)]
    repetitions: usize,
}

/// The prompt's token ids, as tests/gpu/reference.py builds them too: BOS,
/// half the text, the image (begin, soft tokens, end), the other half.
/// Ordinary tokens are a fixed cycle over ids 300..1300, or up to the end of
/// a smaller vocabulary (no special token).
fn xray_prompt(text_tokens: usize, vocab: usize, mm_tokens: usize, boi: u32, image: u32, eoi: u32) -> Vec<u32> {
    let span = 1000.min(vocab.saturating_sub(300)).max(1);
    let text = move |from: usize, n: usize| (from..from + n).map(move |i| 300 + (i * 7919 % span) as u32);
    let half = text_tokens / 2;
    let mut ids = vec![2];
    ids.extend(text(0, half));
    ids.push(boi);
    ids.extend(std::iter::repeat_n(image, mm_tokens));
    ids.push(eoi);
    ids.extend(text(half, text_tokens - half));
    ids
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
}

fn main() -> Result<(), String> {
    let a = Args::parse();
    let words = |e: medgemma_models::ModelError| e.to_string();
    let device: DeviceChoice = a.device.parse().map_err(|e: medgemma_models::DeviceError| e.to_string())?;
    let precision: Precision = a.precision.parse().map_err(|e: medgemma_models::DeviceError| e.to_string())?;
    if a.repetitions == 0 {
        return Err("--repetitions must be at least 1".into());
    }
    let t = Instant::now();
    let model = Model::load_as(&ModelSource::at(&a.model), device, precision).map_err(words)?;
    let sync = || model.device().synchronize().map_err(|e| e.to_string());
    sync()?;
    let load_ms = t.elapsed().as_secs_f64() * 1e3;
    let c = model.config();
    let ids = xray_prompt(a.text_tokens, c.text.vocab_size, c.mm_tokens_per_image, c.boi_token_id, c.image_token_id, c.eoi_token_id);
    let image = medgemma_models::open_image(&a.image).map_err(words)?;
    let pixels = model.preprocess(&image).map_err(words)?;

    // Warm-up: kernels loaded and tuned, memory pools filled.
    let cancel = AtomicBool::new(false);
    let warm = GenerationParams { max_new_tokens: 2, ignore_eos: true, ..Default::default() };
    model.generate_from_pixels(&ids, std::slice::from_ref(&pixels), &warm, &mut |_| {}, &cancel).map_err(words)?;
    sync()?;

    let mut encode = Vec::new();
    for _ in 0..a.repetitions {
        let t = Instant::now();
        let features = model.image_features(&pixels).map_err(words)?;
        sync()?;
        encode.push(t.elapsed().as_secs_f64() * 1e3);
        drop(features);
    }
    let params = GenerationParams { max_new_tokens: a.gen_tokens, ignore_eos: true, ..Default::default() };
    let (mut ttft, mut decode) = (Vec::new(), Vec::new());
    for _ in 0..a.repetitions {
        // From the preprocessed pixels: the vision tower, the projector and the
        // whole prompt's prefill are in the time to the first token.
        let out = model.generate_from_pixels(&ids, std::slice::from_ref(&pixels), &params, &mut |_| {}, &cancel).map_err(words)?;
        ttft.push(out.stats.time_to_first_token_ms);
        decode.push(out.stats.decode_tok_s);
    }
    let result = serde_json::json!({
        "impl": "medgemma-desk",
        "device": model.device_name(),
        "dtype": model.compute_dtype(),
        "prompt_tokens": ids.len(),
        "gen_tokens": a.gen_tokens,
        "repetitions": a.repetitions,
        "load_ms": load_ms,
        "image_encode_ms": median(encode.clone()),
        "image_encode_runs_ms": encode,
        "ttft_ms": median(ttft.clone()),
        "ttft_runs_ms": ttft,
        "decode_tok_s": median(decode.clone()),
        "decode_runs_tok_s": decode,
    });
    println!("{result}");
    Ok(())
}
