//! `medgemma-desk models list`: the models this computer has (the data
//! folder's `models/` and the Hugging Face cache), whether each is complete,
//! how big, and whether it fits the memory free now; then the catalog's
//! models that are not here yet.

use std::path::Path;

use clap::{Args, Subcommand};

use crate::drafting::models::{catalog, find_all, MODELS_DIR};
use crate::DataDir;

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
}

fn gb(bytes: u64) -> String {
    format!("{:.1} GB", bytes as f64 / 1e9)
}

pub fn run(args: ModelsArgs, data_dir: Option<&Path>) -> Result<(), String> {
    let data_dir = DataDir::prepare(data_dir).map_err(|e| e.to_string())?;
    let Action::List { json } = args.action;
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
        let state = if m.usable() { "complete".to_string() } else { format!("incomplete: missing {}", m.missing.join(", ")) };
        let fit = match (m.fits_cpu, m.cpu_need_bytes) {
            (Some(true), Some(n)) => format!("fits on the CPU (needs {})", gb(n)),
            (Some(false), Some(n)) => format!("too big for the free memory on the CPU (needs {})", gb(n)),
            _ => "memory need unknown".into(),
        };
        println!("{}  [{}, {}, {}{}]", m.id, m.format, m.dtype, gb(m.size_bytes), if m.vision { ", images" } else { "" });
        println!("    {}  ({})", m.path.display(), m.source);
        println!("    {state}; {fit}; not verified (no published checksum in the catalog)");
    }
    let missing: Vec<_> = known.iter().filter(|k| !found.iter().any(|f| f.catalog_id.as_deref() == Some(k.id.as_str()))).collect();
    if !missing.is_empty() {
        println!("\nKnown models not on this computer:");
        for k in missing {
            println!("  {}  ({}){}\n    {}", k.name, k.repo, if k.supported { "" } else { " — not supported by this version yet" }, k.description);
        }
    }
    Ok(())
}
