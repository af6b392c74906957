//! `medgemma-desk draft`: the drafting service without a window. Each study
//! (a file, or the files of one study in a folder) becomes a session in the
//! data folder with its notes and the draft, unless --no-save. A progress line
//! per study goes to stderr; the draft's text to stdout; --json ends each
//! study with one JSON object.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;

use clap::Args;
use medgemma_models::DeviceChoice;

use crate::drafting::service::{self, DraftMode, Order, SamplingChoice};
use crate::drafting::{templates, LoadedModel};
use crate::imaging::{self, Study};
use crate::session::{OpenedStudy, Sessions};
use crate::store::{DraftId, Notes};
use crate::data_dir::DataDir;

#[derive(Debug, Args)]
pub struct DraftArgs {
    /// The model folder (config.json, *.safetensors, tokenizer.json), or a
    /// GGUF file with its mmproj beside it.
    #[arg(long, value_name = "PATH")]
    model: PathBuf,
    /// The vision projector of a GGUF model (default: the one mmproj*.gguf beside it).
    #[arg(long, value_name = "PATH")]
    mmproj: Option<PathBuf>,
    /// An image (DICOM, PNG, JPEG) or a folder of DICOM files; repeat for a batch.
    #[arg(long, value_name = "FILE", required_unless_present = "rerun")]
    image: Vec<PathBuf>,
    /// Make stored draft ID again from its record (its prompt token ids,
    /// settings, seed and model-input image) on --model, which must be the
    /// same weights, and say whether it came out the same token for token.
    /// The re-run is kept as a new draft in the same session, with the verdict.
    #[arg(long, value_name = "ID", conflicts_with = "image")]
    rerun: Option<i64>,
    /// Free-text case notes.
    #[arg(long, value_name = "TEXT", default_value = "")]
    notes: String,
    /// The reason for the study.
    #[arg(long, value_name = "TEXT", default_value = "")]
    indication: String,
    /// Relevant clinical history.
    #[arg(long, value_name = "TEXT", default_value = "")]
    history: String,
    /// The prior study compared with.
    #[arg(long, value_name = "TEXT", default_value = "")]
    comparison: String,
    /// A question (needed by the free-question template).
    #[arg(long, value_name = "TEXT")]
    question: Option<String>,
    /// The template's id (a file name in the data folder's templates/, without .toml).
    #[arg(long, value_name = "NAME", default_value = templates::DEFAULT_TEMPLATE)]
    template: String,
    /// Sample with this seed (the same seed gives the same draft); without it the
    /// template decides, as in the window: greedy unless it sets a temperature.
    #[arg(long, value_name = "S")]
    seed: Option<u64>,
    /// Sampling temperature (0: greedy); default: the template's.
    #[arg(long, value_name = "T")]
    temperature: Option<f64>,
    /// Nucleus sampling: keep the most likely tokens up to this probability.
    #[arg(long, value_name = "P")]
    top_p: Option<f64>,
    /// Keep only the K most likely tokens when sampling.
    #[arg(long, value_name = "K")]
    top_k: Option<usize>,
    /// Penalise tokens already in the prompt or the answer (1: none).
    #[arg(long, value_name = "R")]
    repetition_penalty: Option<f32>,
    /// Which frame of a multi-frame image the model sees, from 1 (default: the first).
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    frame: u32,
    /// The most tokens to write (default: the template's).
    #[arg(long, value_name = "N")]
    max_tokens: Option<usize>,
    /// auto, cpu, cuda, cuda:N or metal.
    #[arg(long, default_value = "auto", value_name = "D")]
    device: String,
    /// CPU threads (default: all cores).
    #[arg(long, value_name = "N")]
    threads: Option<usize>,
    /// Do not keep the session in the data folder.
    #[arg(long)]
    no_save: bool,
    /// End each study with one JSON object: session_id, draft_id, text, provenance.
    #[arg(long)]
    json: bool,
}

/// The studies in the inputs: a file is one; a folder's files are grouped
/// by their Study Instance UID (a file without one is a study of its own).
fn studies(inputs: &[PathBuf]) -> Result<Vec<Study>, String> {
    let mut out = Vec::new();
    for input in inputs {
        let study = imaging::open(input).map_err(|e| e.to_string())?;
        if !input.is_dir() {
            out.push(study);
            continue;
        }
        let mut groups: BTreeMap<String, Vec<imaging::Image>> = BTreeMap::new();
        for image in study.images {
            let key = image.tags.study_instance_uid.clone().unwrap_or_else(|| image.source.display().to_string());
            groups.entry(key).or_default().push(image);
        }
        for (_, images) in groups {
            let source = images.first().map(|i| i.source.clone()).unwrap_or_else(|| input.clone());
            out.push(Study { source, images });
        }
    }
    Ok(out)
}

pub fn run(args: DraftArgs, data_dir: Option<&Path>) -> Result<(), String> {
    if let Some(n) = args.threads {
        crate::cli::set_cpu_threads(n)?;
    }
    let device: DeviceChoice = args.device.parse().map_err(|e: medgemma_models::DeviceError| e.to_string())?;
    let data_dir = DataDir::prepare(data_dir).map_err(|e| e.to_string())?;
    if let Some(id) = args.rerun {
        return rerun(&args, data_dir.path(), device, DraftId(id));
    }
    let template = templates::find(data_dir.path(), &args.template).map_err(|e| e.to_string())?;
    let notes = Notes { indication: args.indication.clone(), history: args.history.clone(), comparison: args.comparison.clone(), free_text: args.notes.clone() };
    let studies = studies(&args.image)?;
    let sessions = if args.no_save { None } else { Some(Sessions::open(data_dir.path())) };
    if let Some(status) = sessions.as_ref().map(|s| s.status()).filter(|s| s.problem.is_some()) {
        let problem = status.problem.unwrap_or_default();
        let hint = if status.passphrase.is_some() { format!("{}, or ", crate::store_key::CLI_HINT) } else { String::new() };
        return Err(format!("sessions cannot be kept: {problem} ({hint}use --no-save to draft without keeping them)"));
    }
    let hashes = data_dir.path().join("cache").join("weights-sha256.json");
    eprintln!("Loading {} …", args.model.display());
    let loaded = LoadedModel::load(&args.model, args.mmproj.as_deref(), device, Some(&hashes)).map_err(|e| e.to_string())?;
    let total = studies.len();
    for (n, study) in studies.iter().enumerate() {
        let name = study.source.file_name().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
        eprintln!("[{}/{total}] {name}: drafting …", n + 1);
        let frame = args.frame as usize - 1;
        let mut order = Order {
            mode: DraftMode::First,
            template: template.clone(),
            notes: notes.clone(),
            image: Some(service::model_input(study, 0, frame).map_err(|e| e.to_string())?),
            views: Vec::new(),
            base: None,
            question: args.question.clone(),
            sampling: SamplingChoice {
                temperature: args.temperature,
                top_p: args.top_p,
                top_k: args.top_k,
                repetition_penalty: args.repetition_penalty,
                seed: args.seed,
            },
            max_tokens: args.max_tokens,
        };
        let session_id = match &sessions {
            Some(s) => {
                let id = s.start(&OpenedStudy::of(study)).map_err(|e| e.to_string())?;
                s.with_store(|st| st.save_notes(id, &notes)).map_err(|e| e.to_string())?;
                let detail = s.with_store(|st| st.session(id)).map_err(|e| e.to_string())?;
                order.views = detail.iter().map(|d| service::draft_view(d, 0, frame)).collect::<Result<_, _>>().map_err(|e| e.to_string())?;
                Some(id)
            }
            None => None,
        };
        let mut stdout = std::io::stdout().lock();
        let outcome = service::draft_on(&loaded, order, &mut |piece| {
            use std::io::Write;
            if !args.json {
                let _ = stdout.write_all(piece.as_bytes());
                let _ = stdout.flush();
            }
        }, &AtomicBool::new(false));
        drop(stdout);
        let outcome = match outcome {
            Ok(o) => o,
            Err(e) => {
                // The session (image and notes) stays; the reason is the answer.
                return Err(match session_id {
                    Some(id) => format!("{e} (session {id} keeps the image and notes)"),
                    None => e.to_string(),
                });
            }
        };
        let draft_id = match (&sessions, session_id) {
            (Some(s), Some(id)) => Some(s.keep_draft(id, &outcome.draft, outcome.model_input.as_ref()).map_err(|e| format!("the draft could not be kept: {e}"))?),
            _ => None,
        };
        if !args.json {
            println!();
        }
        let stats = &outcome.stats;
        eprintln!(
            "[{}/{total}] {name}: {} tokens in {:.1} s ({:.1} tok/s), stopped: {}{}",
            n + 1,
            outcome.draft.generated_tokens,
            stats.total_ms / 1000.0,
            stats.decode_tok_s,
            outcome.draft.stop_reason,
            session_id.map(|id| format!(" → session {id}")).unwrap_or_default()
        );
        if args.json {
            let json = serde_json::json!({
                "session_id": session_id,
                "draft_id": draft_id,
                "text": outcome.draft.text,
                "source": study.source.display().to_string(),
                "model_input_sha256": outcome.draft.model_input_sha256,
                "provenance": outcome.draft,
            });
            println!("{json}");
        }
        if let Some(error) = &outcome.draft.error {
            return Err(error.clone());
        }
    }
    Ok(())
}

/// `draft --rerun ID`: the stored draft made again from its record, the
/// verdict on stderr (and in --json), the re-run kept beside it.
fn rerun(args: &DraftArgs, data_dir: &Path, device: DeviceChoice, id: DraftId) -> Result<(), String> {
    let sessions = Sessions::open(data_dir);
    let status = sessions.status();
    if let Some(problem) = status.problem {
        let hint = if status.passphrase.is_some() { format!(" ({})", crate::store_key::CLI_HINT) } else { String::new() };
        return Err(format!("the sessions cannot be read: {problem}{hint}"));
    }
    let hashes = data_dir.join("cache").join("weights-sha256.json");
    eprintln!("Loading {} …", args.model.display());
    let loaded = LoadedModel::load(&args.model, args.mmproj.as_deref(), device, Some(&hashes)).map_err(|e| e.to_string())?;
    eprintln!("Re-running draft {id} from its record …");
    let mut stdout = std::io::stdout().lock();
    let result = service::rerun_on(&loaded, &sessions, id, &mut |piece| {
        use std::io::Write;
        if !args.json {
            let _ = stdout.write_all(piece.as_bytes());
            let _ = stdout.flush();
        }
    }, &AtomicBool::new(false));
    drop(stdout);
    let (session, outcome) = result.map_err(|e| e.to_string())?;
    if !args.json {
        println!();
    }
    let kept = if args.no_save {
        None
    } else {
        let kept = sessions.keep_draft(session, &outcome.draft, outcome.model_input.as_ref());
        Some(kept.map_err(|e| format!("the re-run could not be kept: {e}"))?)
    };
    let verdict = outcome.draft.rerun_verdict.clone().unwrap_or_default();
    eprintln!("draft {id}: {verdict}{}", kept.map(|d| format!(" → draft {d} in session {session}")).unwrap_or_default());
    if args.json {
        let json = serde_json::json!({
            "session_id": session,
            "draft_id": kept,
            "rerun_of": id,
            "reproduced": verdict.starts_with("reproduced"),
            "verdict": verdict,
            "text": outcome.draft.text,
            "provenance": outcome.draft,
        });
        println!("{json}");
    }
    match &outcome.draft.error {
        Some(error) => Err(error.clone()),
        None => Ok(()),
    }
}
