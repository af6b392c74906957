//! `medgemma-desk models list`: the models this computer has (the data
//! folder's `models/` and the Hugging Face cache), whether each is complete,
//! how big, and whether it fits the memory free now; then the catalog's
//! models that are not here yet. `models import`: a model folder copied or
//! linked in, checked and hashed. `models download`: a catalog model fetched
//! on request (not in `lockdown` builds).

use std::path::Path;

use clap::{Args, Subcommand};

use crate::drafting::models::{catalog, find_all, MODELS_DIR};
use crate::data_dir::DataDir;

#[derive(Debug, Args)]
pub struct ModelsArgs {
    #[command(subcommand)]
    action: Action,
}

#[derive(Debug, Subcommand)]
enum Action {
    /// List the models found on this computer (nothing is downloaded).
    List {
        /// Print one JSON object: `found` (each model) and `catalog`.
        #[arg(long)]
        json: bool,
    },
    /// Import a model folder (copied into the data folder, or linked where it is).
    Import {
        /// The model folder (with config.json, tokenizer.json and the weights).
        path: std::path::PathBuf,
        /// Link to the folder instead of copying it (it must then stay where it is).
        #[arg(long)]
        link: bool,
        /// The name it gets in the models folder (default: the folder's name).
        #[arg(long)]
        name: Option<String>,
        /// Print progress as JSON lines and end with the imported model as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Download a catalog model (or any Hugging Face model repo) into the Hugging
    /// Face cache. Gated models (MedGemma) need a token: set HF_TOKEN, or sign in
    /// once with Hugging Face's own tools; a token is never taken on the command line.
    Download {
        /// A catalog id (see `models list`) or a repo id such as google/medgemma-4b-it.
        model: String,
        /// The Hub's address (default: HF_ENDPOINT, else Hugging Face).
        #[arg(long)]
        endpoint: Option<String>,
        /// Give up when the server sends nothing for this many seconds.
        #[arg(long, default_value_t = 60)]
        stall_seconds: u64,
        /// Print progress as JSON lines (for the window).
        #[arg(long)]
        json: bool,
    },
}

fn gb(bytes: u64) -> String {
    format!("{:.1} GB", bytes as f64 / 1e9)
}

pub fn run(args: ModelsArgs, data_dir: Option<&Path>) -> Result<(), String> {
    let data_dir = DataDir::prepare(data_dir).map_err(|e| e.to_string())?;
    let json = match args.action {
        Action::List { json } => json,
        Action::Import { path, link, name, json } => return import(&data_dir, &path, link, name.as_deref(), json),
        Action::Download { model, endpoint, stall_seconds, json } => {
            return download(&data_dir, &model, endpoint, stall_seconds, json)
        }
    };
    let found = find_all(data_dir.path());
    let known = catalog();
    if json {
        println!("{}", serde_json::json!({ "found": found, "catalog": known, "models_dir": data_dir.path().join(MODELS_DIR) }));
        return Ok(());
    }
    if found.is_empty() {
        println!("No models found. Put a MedGemma model folder in {}", data_dir.path().join(MODELS_DIR).display());
    }
    for m in &found {
        let state = match (m.usable(), m.format.as_str()) {
            (true, _) => "complete".to_string(),
            (false, "gguf") => format!("cannot be used yet: needs {}", m.missing.join(", ")),
            (false, _) => format!("incomplete: missing {}", m.missing.join(", ")),
        };
        let fit = match (m.fits_cpu, m.cpu_need_bytes) {
            (Some(true), Some(n)) => format!("fits on the CPU (needs {})", gb(n)),
            (Some(false), Some(n)) => format!("too big for the free memory on the CPU (needs {})", gb(n)),
            _ => "memory need unknown".into(),
        };
        println!("{}  [{}, {}, {}{}]", m.id, m.format, m.dtype, gb(m.size_bytes), if m.vision { ", images" } else { "" });
        println!("    {}  ({})", m.path.display(), m.source);
        let verified = if m.verified { "verified (sha256 matches the published files)" } else { "not verified (no published checksum was checked)" };
        println!("    {state}; {fit}; {verified}");
    }
    let missing: Vec<_> = known.iter().filter(|k| !found.iter().any(|f| f.catalog_id.as_deref() == Some(k.id.as_str()))).collect();
    if !missing.is_empty() {
        println!("\nKnown models not on this computer:");
        for k in missing {
            println!("  {}  ({}){}\n    {}", k.name, k.repo, if k.supported { "" } else { " — not supported by this version yet" }, k.description);
            if let Some(n) = k.need_gb {
                println!("    needs about {:.1} GB of memory on the CPU, {:.1} GB on a GPU", n.cpu, n.gpu);
            }
        }
    }
    Ok(())
}

fn import(data_dir: &DataDir, path: &Path, link: bool, name: Option<&str>, json: bool) -> Result<(), String> {
    use crate::drafting::import::{import, ImportEvent, Mode};
    let mode = if link { Mode::Link } else { Mode::Copy };
    let mut last_pct = u64::MAX;
    let cache = data_dir.path().join("cache").join("weights-sha256.json");
    let imported = import(data_dir.path(), path, mode, name, Some(&cache), &mut |e| {
        let ImportEvent::Progress { total_done, total_size, .. } = &e;
        let pct = if *total_size == 0 { 100 } else { total_done * 100 / total_size };
        if pct != last_pct {
            last_pct = pct;
            if json {
                println!("{}", serde_json::to_string(&e).unwrap_or_default());
            } else {
                eprint!("\r{} {}: {pct}%", if link { "Hashing" } else { "Copying and hashing" }, path.display());
            }
        }
    })
    .map_err(|e| {
        if !json {
            eprintln!();
        }
        e.to_string()
    })?;
    if json {
        println!("{}", serde_json::json!({ "event": "done", "imported": imported }));
    } else {
        eprintln!();
        println!(
            "Imported {} ({}) into {}; weights sha256 {} ({})",
            imported.model.id,
            gb(imported.model.size_bytes),
            imported.model.path.display(),
            imported.sha256,
            match imported.verified {
                Some(true) => "matches the published model",
                _ => "no published checksum to compare with",
            }
        );
    }
    Ok(())
}

#[cfg(any(not(feature = "download"), feature = "lockdown"))]
fn download(_: &DataDir, _: &str, _: Option<String>, _: u64, _: bool) -> Result<(), String> {
    Err("this build of MedGemma Desk is offline-only (lockdown): it cannot download models; import a model folder instead (models import)".into())
}

/// Runs the download on a thread and watches it: a server that sends nothing
/// for `stall_seconds` ends this process with a message (hf-hub's blocking
/// client has no read timeout, and a thread stuck in a read cannot be stopped
/// any other way; what arrived stays in the `.part` file for the next try).
#[cfg(all(feature = "download", not(feature = "lockdown")))]
fn download(data_dir: &DataDir, model: &str, endpoint: Option<String>, stall_seconds: u64, json: bool) -> Result<(), String> {
    use crate::drafting::download::{download, DownloadEvent, Source};
    if crate::settings::Settings::load(data_dir.path()).offline_lockdown {
        return Err("downloads are switched off on this computer (offline lockdown in the Models screen); import a model folder instead".into());
    }
    let entry = catalog().into_iter().find(|c| c.id == model || c.repo == model);
    if entry.as_ref().is_some_and(|e| !e.supported) {
        return Err(format!("{model} is in the catalog but this version cannot run it yet"));
    }
    let repo = entry.as_ref().map_or(model.to_string(), |e| e.repo.clone());
    let files = entry.as_ref().map(|e| e.files.clone()).unwrap_or_default();
    let sha = entry.as_ref().and_then(|e| e.sha256.clone());
    let cache_dir = crate::drafting::models::hf_cache_dir().ok_or("no home folder for the Hugging Face cache; set HF_HOME")?;
    let endpoint = endpoint.or_else(|| std::env::var("HF_ENDPOINT").ok().filter(|v| !v.is_empty()));
    let shown = endpoint.clone().unwrap_or_else(|| "Hugging Face".into());
    let token = std::env::var("HF_TOKEN").ok().filter(|t| !t.is_empty()).or_else(|| hf_hub::Cache::new(cache_dir.clone()).token());
    let source = Source { endpoint, token, cache_dir, data_dir: Some(data_dir.path().to_path_buf()) };
    let (tx, rx) = std::sync::mpsc::channel::<Result<DownloadEvent, String>>();
    std::thread::spawn(move || {
        let events = tx.clone();
        let result = download(&source, &repo, &files, sha.as_deref(), &mut |e| {
            let _ = events.send(Ok(e));
        });
        if let Err(e) = result {
            let _ = tx.send(Err(e.to_string()));
        }
    });
    loop {
        match rx.recv_timeout(std::time::Duration::from_secs(stall_seconds.max(1))) {
            Ok(Ok(event)) => {
                if json {
                    println!("{}", serde_json::to_string(&event).unwrap_or_default());
                } else {
                    match &event {
                        DownloadEvent::File { file, size, done } if *done > 0 => eprintln!("{file}: resuming at {} of {}", gb(*done), gb(*size)),
                        DownloadEvent::File { file, size, .. } => eprintln!("{file}: {}", gb(*size)),
                        DownloadEvent::Progress { file, done, size } => eprint!("\r{file}: {}%", if *size == 0 { 100 } else { done * 100 / size }),
                        DownloadEvent::Verifying { file } => eprintln!("\r{file}: checking sha256"),
                        DownloadEvent::Done { path } => println!("Downloaded into {}", path.display()),
                    }
                }
                if matches!(event, DownloadEvent::Done { .. }) {
                    return Ok(());
                }
            }
            Ok(Err(e)) => return Err(e),
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                return Err(format!(
                    "the download stalled: {shown} sent nothing for {stall_seconds} s; what arrived is kept, run the same command again to resume"
                ))
            }
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => return Err("the download stopped without a reason".into()),
        }
    }
}
