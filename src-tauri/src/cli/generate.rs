//! `medgemma-desk generate`: run a model on a prompt (and images) and stream
//! the text to stdout; `--json` ends with one JSON object on its own line.

use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;

use clap::Args;
use medgemma_models::{Content, DeviceChoice, GenerationParams, Message, Model, ModelSource, Role};

#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("input").required(true).args(["prompt", "prompt_ids"])))]
pub struct GenerateArgs {
    /// The model folder (config.json, model.safetensors, tokenizer.json …),
    /// or a GGUF file (llama.cpp's format).
    #[arg(long, value_name = "PATH")]
    model: PathBuf,
    /// The vision projector GGUF of a GGUF model (default: the one
    /// mmproj*.gguf next to it).
    #[arg(long, value_name = "FILE")]
    mmproj: Option<PathBuf>,
    /// The user's message (through the model's chat template unless --raw).
    #[arg(long, value_name = "TEXT")]
    prompt: Option<String>,
    /// The fully expanded prompt as token ids, image soft tokens included.
    #[arg(long, value_name = "ID,ID,…", value_delimiter = ',')]
    prompt_ids: Option<Vec<u32>>,
    /// An image (PNG or JPEG); repeat for several, in order.
    #[arg(long, value_name = "FILE")]
    image: Vec<PathBuf>,
    /// A system prompt placed before the user's message.
    #[arg(long, value_name = "TEXT")]
    system: Option<String>,
    /// Tokenize the prompt as is, without the chat template.
    #[arg(long)]
    raw: bool,
    /// The most tokens to generate.
    #[arg(long, default_value_t = 512, value_name = "N")]
    max_tokens: usize,
    /// Sampling temperature; 0 (the default) decodes greedily.
    #[arg(long, default_value_t = 0.0, value_name = "T")]
    temperature: f64,
    #[arg(long, value_name = "K")]
    top_k: Option<usize>,
    #[arg(long, value_name = "P")]
    top_p: Option<f64>,
    #[arg(long, default_value_t = 1.0, value_name = "R")]
    repetition_penalty: f32,
    /// The random seed for sampling (greedy decoding ignores it).
    #[arg(long, default_value_t = 0, value_name = "S")]
    seed: u64,
    /// auto, cpu, cuda, cuda:N or metal.
    #[arg(long, default_value = "auto", value_name = "D")]
    device: String,
    /// CPU threads (default: all cores).
    #[arg(long, value_name = "N")]
    threads: Option<usize>,
    /// End with one JSON object: prompt and generated ids, text, stop reason, statistics.
    #[arg(long)]
    json: bool,
}

pub fn run(args: GenerateArgs) -> Result<(), String> {
    if let Some(n) = args.threads {
        crate::cli::set_cpu_threads(n)?;
    }
    let device: DeviceChoice = args.device.parse().map_err(|e: medgemma_models::DeviceError| e.to_string())?;
    let params = GenerationParams {
        max_new_tokens: args.max_tokens,
        temperature: args.temperature,
        top_k: args.top_k,
        top_p: args.top_p,
        repetition_penalty: args.repetition_penalty,
        seed: args.seed,
        ..Default::default()
    };
    params.validate().map_err(|e| e.to_string())?;
    let images = args.image.iter().map(|p| medgemma_models::open_image(p)).collect::<Result<Vec<_>, _>>().map_err(|e| e.to_string())?;
    let model = Model::load(&ModelSource::with_projector(&args.model, args.mmproj.as_deref()), device).map_err(|e| e.to_string())?;

    let ids = match (&args.prompt_ids, &args.prompt) {
        (Some(ids), _) => ids.clone(),
        (None, Some(text)) if args.raw => model.encode_raw(&model.expand_images(text)).map_err(|e| e.to_string())?,
        (None, Some(text)) => {
            let mut messages = Vec::new();
            if let Some(system) = &args.system {
                messages.push(Message::text(Role::System, system.clone()));
            }
            let mut content = vec![Content::Text(text.clone())];
            content.extend(images.iter().map(|_| Content::Image));
            messages.push(Message { role: Role::User, content });
            model.encode_conversation(&messages).map_err(|e| e.to_string())?
        }
        (None, None) => unreachable!("clap requires --prompt or --prompt-ids"),
    };

    let mut stdout = std::io::stdout().lock();
    let cancel = AtomicBool::new(false);
    let out = model
        .generate(&ids, &images, &params, &mut |piece| {
            let _ = stdout.write_all(piece.as_bytes());
            let _ = stdout.flush();
        }, &cancel)
        .map_err(|e| e.to_string())?;
    let _ = writeln!(stdout);
    if args.json {
        let json = serde_json::json!({
            "prompt_token_ids": ids,
            "generated_token_ids": out.token_ids,
            "text": out.text,
            "thinking": out.thinking,
            "stop_reason": out.stop_reason,
            "stats": out.stats,
        });
        let _ = writeln!(stdout, "{json}");
    }
    Ok(())
}
