//! `medgemma-desk bench --sessions N`: the sessions store at scale. Generates
//! N sessions (notes, an AI draft and a report each, from a radiology word
//! list) and times what the clinician waits for: opening the store (with its
//! integrity check), the sidebar's first page, the whole list, and search as
//! they type. Median of R runs each.

use std::path::{Path, PathBuf};
use std::time::Instant;

use rand::{Rng, SeedableRng};
use serde_json::json;

use super::statistics::median;
use crate::store::at_rest::StoreKey;
use crate::store::{NewDraft, Notes, Store};

const WORDS: &[&str] = &[
    "heart", "size", "normal", "mediastinum", "lungs", "clear", "consolidation", "right", "left", "lower", "upper",
    "lobe", "pleural", "effusion", "small", "moderate", "large", "pneumothorax", "no", "evidence", "of", "atelectasis",
    "cardiomegaly", "hilar", "prominence", "interstitial", "markings", "opacity", "nodule", "mass", "fracture", "rib",
    "costophrenic", "angle", "blunting", "endotracheal", "tube", "tip", "above", "carina", "line", "catheter",
    "congestion", "edema", "emphysema", "hyperinflation", "scarring", "granuloma", "calcified", "aortic", "knuckle",
    "diaphragm", "elevated", "stable", "compared", "prior", "study", "improved", "worsened", "unchanged",
];
const INDICATIONS: &[&str] = &[
    "Fever and cough", "Shortness of breath", "Chest pain", "Pre-operative", "Trauma", "Follow-up pneumonia",
    "Line placement", "Haemoptysis", "Weight loss", "Suspected pneumothorax",
];

fn sentence(rng: &mut impl Rng, words: usize) -> String {
    let mut s: Vec<&str> = (0..words).map(|_| WORDS[rng.random_range(0..WORDS.len())]).collect();
    s.push(".");
    s.join(" ")
}

fn draft(rng: &mut impl Rng) -> NewDraft {
    let findings: Vec<String> = (0..8).map(|_| sentence(rng, 12)).collect();
    NewDraft {
        model_id: "google/medgemma-4b-it".into(),
        weights_sha256: "0".repeat(64),
        quantization: "Q4_K_M".into(),
        device: "cpu".into(),
        app_version: crate::version::APP_VERSION.into(),
        prompt: "<start_of_turn>user\nDescribe this chest X-ray.<end_of_turn>\n<start_of_turn>model\n".into(),
        params: json!({ "temperature": 0.0, "max_new_tokens": 400 }),
        seed: rng.random(),
        prompt_tokens: 300,
        generated_tokens: 180,
        timings: json!({ "prefill_ms": 900.0, "decode_ms": 12000.0 }),
        stop_reason: "end_of_turn".into(),
        text: format!("FINDINGS:\n{}\n\nIMPRESSION:\n{}", findings.join(" "), sentence(rng, 8)),
        template: "chest-xray-report".into(),
        question: None,
        error: None,
        ..Default::default()
    }
}

/// Fills `dir`'s store up to `n` sessions (a store already that big is reused).
fn generate(dir: &Path, n: usize, key: Option<&StoreKey>) -> Result<f64, String> {
    let mut store = Store::open_with(dir, key).map_err(|e| e.to_string())?;
    let have = store.find_sessions("", 1).map_err(|e| e.to_string())?.total as usize;
    let start = Instant::now();
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(42 + have as u64);
    for i in have..n {
        let id = store.create_session(&format!("CR CHEST PA · case {i}")).map_err(|e| e.to_string())?;
        let notes = Notes {
            indication: INDICATIONS[rng.random_range(0..INDICATIONS.len())].into(),
            history: sentence(&mut rng, 6),
            comparison: "None".into(),
            free_text: String::new(),
        };
        store.save_notes(id, &notes).map_err(|e| e.to_string())?;
        store.add_draft(id, &draft(&mut rng)).map_err(|e| e.to_string())?;
        store.save_report(id, &format!("IMPRESSION: {}", sentence(&mut rng, 10))).map_err(|e| e.to_string())?;
    }
    Ok(start.elapsed().as_secs_f64())
}

fn time_ms<T>(reps: usize, mut f: impl FnMut() -> Result<T, String>) -> Result<(f64, Vec<f64>), String> {
    let mut runs = Vec::with_capacity(reps);
    for _ in 0..reps {
        let t = Instant::now();
        std::hint::black_box(f()?);
        runs.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    Ok((median(runs.clone()), runs))
}

/// `encrypted`: the store is a SQLCipher file with a fresh random key (as a
/// new store with its key in the keyring), to measure what encryption costs.
pub fn run(n: usize, reps: usize, keep: Option<PathBuf>, json_out: bool, encrypted: bool) -> Result<(), String> {
    let key = if encrypted { Some(StoreKey::generate().map_err(|e| e.to_string())?) } else { None };
    let key = key.as_ref();
    let (dir, temporary) = match keep {
        Some(d) => (d, false),
        None => (std::env::temp_dir().join(format!("medgemma-desk-bench-{}", std::process::id())), true),
    };
    std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let result = (|| -> Result<serde_json::Value, String> {
        eprintln!("==> generating {n} sessions in {}", dir.display());
        let generate_s = generate(&dir, n, key)?;
        let mut rows = Vec::new();
        let (open_ms, open_runs) = time_ms(reps, || {
            let (store, recovery) = Store::open_or_recover_with(&dir, key).map_err(|e| e.to_string())?;
            if recovery.is_some() {
                return Err("the generated store failed its integrity check".into());
            }
            Ok(store)
        })?;
        rows.push(json!({ "what": "open the store (with integrity check)", "median_ms": open_ms, "runs_ms": open_runs }));
        let store = Store::open_with(&dir, key).map_err(|e| e.to_string())?;
        let mut query = |label: &str, q: &str, limit: usize| -> Result<(), String> {
            let mut matched = 0;
            let (ms, runs) = time_ms(reps, || {
                let page = store.find_sessions(q, limit).map_err(|e| e.to_string())?;
                matched = page.total;
                Ok(page)
            })?;
            rows.push(json!({ "what": label, "query": q, "matched": matched, "median_ms": ms, "runs_ms": runs }));
            Ok(())
        };
        query("sidebar: newest 200", "", 200)?;
        query("search, common word", "effusion", 200)?;
        query("search, prefix as typed", "pneumo", 200)?;
        query("search, two words", "right lower", 200)?;
        query("search, rare (one session)", &format!("case {}", n / 2), 200)?;
        query("search, no match", "zzzz", 200)?;
        let (all_ms, all_runs) = time_ms(reps, || store.list_sessions().map_err(|e| e.to_string()))?;
        rows.push(json!({ "what": "whole list (CLI `sessions list`)", "median_ms": all_ms, "runs_ms": all_runs }));
        let size = std::fs::metadata(dir.join(crate::store::FILE_NAME)).map(|m| m.len()).unwrap_or(0);
        Ok(json!({ "sessions": n, "repetitions": reps, "encrypted": encrypted, "generate_s": generate_s, "store_bytes": size,
                   "store": dir.join(crate::store::FILE_NAME).display().to_string(), "rows": rows }))
    })();
    if temporary {
        let _ = std::fs::remove_dir_all(&dir);
    }
    let result = result?;
    for row in result["rows"].as_array().into_iter().flatten() {
        println!("{:<40} {:>8.2} ms", row["what"].as_str().unwrap_or(""), row["median_ms"].as_f64().unwrap_or(0.0));
    }
    if json_out {
        println!("{result}");
    }
    Ok(())
}
