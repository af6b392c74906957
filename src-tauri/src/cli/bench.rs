//! `medgemma-desk bench`: prefill and decode speed the way llama-bench
//! measures it (a synthetic prompt of N tokens, then M generated tokens,
//! median over R runs), plus the vision tower's image encode time; and, with
//! --dicom, opening and rendering images as the viewer does.

use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::time::Instant;

use clap::Args;
use medgemma_models::{DeviceChoice, GenerationParams, Model, ModelSource};
use rand::{Rng, SeedableRng};

use super::statistics::median;

#[derive(Debug, Args)]
pub struct BenchArgs {
    /// The model folder, or a GGUF file.
    #[arg(long, value_name = "PATH", required_unless_present_any = ["dicom", "sessions"])]
    model: Option<PathBuf>,
    /// The vision projector GGUF of a GGUF model (default: the one next to it).
    #[arg(long, value_name = "FILE", requires = "model")]
    mmproj: Option<PathBuf>,
    /// Time the sessions store with this many generated sessions instead.
    #[arg(long, value_name = "N", conflicts_with_all = ["model", "dicom"])]
    sessions: Option<usize>,
    /// With --sessions: generate into (and keep) this folder's store.
    #[arg(long, value_name = "DIR", requires = "sessions")]
    store_dir: Option<PathBuf>,
    /// With --sessions: an encrypted store (SQLCipher, a fresh random key).
    #[arg(long, requires = "sessions")]
    encrypted: bool,
    /// Time opening and rendering this image file instead (repeatable).
    #[arg(long, value_name = "FILE")]
    dicom: Vec<PathBuf>,
    /// Tokens in the synthetic prompt.
    #[arg(long, default_value_t = 512, value_name = "N")]
    prompt_tokens: usize,
    /// Tokens to generate after it.
    #[arg(long, default_value_t = 128, value_name = "M")]
    gen_tokens: usize,
    /// CPU threads (default: all cores).
    #[arg(long, value_name = "T")]
    threads: Option<usize>,
    #[arg(long, default_value_t = 5, value_name = "R")]
    repetitions: usize,
    /// Also time the vision tower on this image (multimodal models).
    #[arg(long, value_name = "FILE")]
    image: Option<PathBuf>,
    #[arg(long, default_value = "auto", value_name = "D")]
    device: String,
    /// End with one JSON object of the results.
    #[arg(long)]
    json: bool,
}

/// Peak resident memory of this process in MiB (Linux; 0 elsewhere).
pub fn peak_rss_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("VmHWM:")).map(str::to_owned))
        .and_then(|l| l.split_whitespace().nth(1).and_then(|kb| kb.parse::<f64>().ok()))
        .map_or(0.0, |kb| kb / 1024.0)
}

/// Open + default render of each file, median of `reps` runs (in-process).
fn bench_images(files: &[PathBuf], reps: usize) -> Result<serde_json::Value, String> {
    let mut out = Vec::new();
    for f in files {
        let mut runs = Vec::new();
        for _ in 0..reps {
            let t = Instant::now();
            let study = crate::imaging::open(f).map_err(|e| e.to_string())?;
            let (r, _) = study.images[0].render(0, None);
            std::hint::black_box(&r);
            runs.push(t.elapsed().as_secs_f64() * 1000.0);
        }
        let img = &crate::imaging::open(f).map_err(|e| e.to_string())?.images[0];
        out.push(serde_json::json!({
            "file": f.display().to_string(),
            "size": [img.columns, img.rows],
            "transfer_syntax": img.tags.transfer_syntax_name,
            "open_render_ms": median(runs.clone()),
            "runs_ms": runs,
        }));
    }
    Ok(serde_json::json!({ "images": out, "repetitions": reps }))
}

pub fn run(args: BenchArgs) -> Result<(), String> {
    if let Some(n) = args.threads {
        crate::cli::set_cpu_threads(n)?;
    }
    if args.repetitions == 0 || args.prompt_tokens == 0 {
        return Err("--repetitions and --prompt-tokens must be at least 1".into());
    }
    if let Some(n) = args.sessions {
        return super::bench_store::run(n, args.repetitions, args.store_dir.clone(), args.json, args.encrypted);
    }
    let Some(model_dir) = args.model.clone() else {
        let result = bench_images(&args.dicom, args.repetitions)?;
        for img in result["images"].as_array().into_iter().flatten() {
            println!("{}: open + render {:.0} ms (median of {})", img["file"].as_str().unwrap_or(""), img["open_render_ms"].as_f64().unwrap_or(0.0), args.repetitions);
        }
        if args.json {
            println!("{result}");
        }
        return Ok(());
    };
    let device: DeviceChoice = args.device.parse().map_err(|e: medgemma_models::DeviceError| e.to_string())?;
    let load_start = Instant::now();
    let model = Model::load(&ModelSource::with_projector(&model_dir, args.mmproj.as_deref()), device).map_err(|e| e.to_string())?;
    let load_ms = load_start.elapsed().as_secs_f64() * 1000.0;
    let vocab = model.config().text.vocab_size as u32;
    let limit = model.config().text.max_position_embeddings;
    if args.prompt_tokens + args.gen_tokens > limit {
        return Err(format!("{} + {} tokens exceed the model's context of {limit}", args.prompt_tokens, args.gen_tokens));
    }

    // A synthetic prompt: BOS, then random ordinary tokens (as llama-bench).
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1234);
    let low = 300.min(vocab / 2);
    let mut ids = vec![2u32];
    ids.extend((1..args.prompt_tokens).map(|_| rng.random_range(low..vocab)));
    let image_token = model.config().image_token_id;
    ids.iter_mut().filter(|t| **t == image_token).for_each(|t| *t = low);

    let params = GenerationParams { max_new_tokens: args.gen_tokens, ignore_eos: true, ..Default::default() };
    let cancel = AtomicBool::new(false);
    // A warm-up run first, as llama-bench does: a short prompt and one token
    // (weights repacked for the CPU kernels on first use, pages touched).
    let warm = GenerationParams { max_new_tokens: 2, ignore_eos: true, ..Default::default() };
    model.generate_from_pixels(&ids[..ids.len().min(32)], &[], &warm, &mut |_| {}, &cancel).map_err(|e| e.to_string())?;
    let (mut prefill, mut decode) = (Vec::new(), Vec::new());
    for _ in 0..args.repetitions {
        let out = model.generate_from_pixels(&ids, &[], &params, &mut |_| {}, &cancel).map_err(|e| e.to_string())?;
        prefill.push(out.stats.prefill_tok_s);
        decode.push(out.stats.decode_tok_s);
    }

    let mut encode = Vec::new();
    if let Some(path) = &args.image {
        let img = medgemma_models::open_image(path).map_err(|e| e.to_string())?;
        let pixels = model.preprocess(&img).map_err(|e| e.to_string())?;
        for _ in 0..args.repetitions {
            let t = Instant::now();
            model.image_features(&pixels).map_err(|e| e.to_string())?;
            encode.push(t.elapsed().as_secs_f64() * 1000.0);
        }
    }

    let threads = args.threads.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let result = serde_json::json!({
        "model": model_dir.display().to_string(),
        "device": format!("{:?}", model.device()),
        "cpu_kernels": medgemma_models::cpu_kernels(),
        "threads": threads,
        "prompt_tokens": args.prompt_tokens,
        "gen_tokens": args.gen_tokens,
        "repetitions": args.repetitions,
        "load_ms": load_ms,
        "prefill_tok_s": median(prefill.clone()),
        "decode_tok_s": median(decode.clone()),
        "prefill_runs_tok_s": prefill,
        "decode_runs_tok_s": decode,
        "image_encode_ms": (!encode.is_empty()).then(|| median(encode.clone())),
        "image_encode_runs_ms": encode,
        "peak_rss_mb": peak_rss_mb(),
    });
    println!(
        "prefill {:.1} tok/s, decode {:.1} tok/s (median of {}, {} threads), peak RSS {:.0} MiB",
        result["prefill_tok_s"].as_f64().unwrap_or(0.0),
        result["decode_tok_s"].as_f64().unwrap_or(0.0),
        args.repetitions,
        threads,
        result["peak_rss_mb"].as_f64().unwrap_or(0.0)
    );
    if args.json {
        println!("{result}");
    }
    Ok(())
}
