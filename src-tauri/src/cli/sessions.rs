//! `medgemma-desk sessions …`: list, show, search, export, import and delete
//! the stored sessions in the data folder, as text or JSON, without a window.

use std::path::{Path, PathBuf};

use clap::{Args, Subcommand};

use crate::store::{BundleError, SessionId, SessionSummary, StoreError};
use crate::data_dir::DataDir;

#[derive(Debug, Args)]
pub struct SessionsArgs {
    #[command(subcommand)]
    action: Action,
}

#[derive(Debug, Subcommand)]
enum Action {
    /// List every session, newest first.
    List {
        /// Print a JSON array, one object per session.
        #[arg(long)]
        json: bool,
    },
    /// Show one session: notes, images, drafts and reports.
    Show {
        /// The session's number (see `sessions list`).
        id: i64,
        /// Print one JSON object instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Find sessions whose title, notes, drafts or reports contain every word.
    Search {
        /// Words to find (each also as the start of a longer word).
        text: String,
        /// Print a JSON array instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Write one session to a file: a bundle to import elsewhere (notes, drafts,
    /// reports, original images), or its report as Markdown, PDF or FHIR R4 JSON.
    Export {
        /// The session's number (see `sessions list`).
        id: i64,
        /// The file to write.
        #[arg(short, long, value_name = "FILE")]
        output: PathBuf,
        /// bundle (.mgdesk.json), markdown (.md), pdf (.pdf) or fhir (a FHIR R4 Bundle, .json).
        #[arg(long, default_value = "bundle", value_parser = ["bundle", "markdown", "pdf", "fhir"])]
        format: String,
    },
    /// Import a session from a bundle made by `sessions export` (as a new session).
    Import {
        /// The bundle file.
        file: PathBuf,
    },
    /// Encrypt a store that is not encrypted (made by an older version, or kept
    /// unencrypted by choice): its key goes to the system keyring, or comes
    /// from MEDGEMMA_DESK_PASSPHRASE / MEDGEMMA_DESK_PASSPHRASE_FILE.
    Encrypt,
    /// Delete a session and everything kept for it. This cannot be undone.
    Delete {
        /// The session's number (see `sessions list`).
        id: i64,
    },
}

pub fn run(args: SessionsArgs, data_dir: Option<&Path>) -> Result<(), String> {
    let data_dir = DataDir::prepare(data_dir).map_err(|e| e.to_string())?;
    let source = crate::store_key::KeySource::from_env().map_err(|e| e.to_string())?;
    let (mut store, recovery) = crate::store_key::open_store(data_dir.path(), &source)?;
    if let Some(recovery) = recovery {
        eprintln!("medgemma-desk: {}", recovery.message());
    }
    match args.action {
        Action::Encrypt => {
            let (store, protection) =
                crate::store_key::encrypt_store(store, data_dir.path(), &source).map_err(|(_, reason)| reason)?;
            let sessions = store.find_sessions("", 1).map_err(|e| e.to_string())?.total;
            println!("{sessions} sessions: {}", protection.describe());
            Ok(())
        }
        Action::List { json } => {
            print_list(&store.list_sessions().map_err(|e| e.to_string())?, json)
        }
        Action::Search { text, json } => {
            print_list(&store.search(&text).map_err(|e| e.to_string())?, json)
        }
        Action::Show { id, json } => {
            let id = SessionId(id);
            let detail = store
                .session(id)
                .map_err(|e| e.to_string())?
                .ok_or_else(|| no_such(id))?;
            if json {
                println!(
                    "{}",
                    serde_json::to_string(&detail).map_err(|e| e.to_string())?
                );
                return Ok(());
            }
            let s = &detail.summary;
            println!("Session {}: {}", s.id, s.title);
            println!("  Status      {}", s.status.as_str());
            println!("  Created     {}", s.created_at);
            println!("  Updated     {}", s.updated_at);
            let n = &detail.notes;
            for (label, text) in [
                ("Indication", &n.indication),
                ("History", &n.history),
                ("Comparison", &n.comparison),
                ("Notes", &n.free_text),
            ] {
                if !text.is_empty() {
                    println!("  {label:<11} {text}");
                }
            }
            println!("  Images      {}", detail.images.len());
            for d in &detail.drafts {
                println!(
                    "\nDraft {} ({}, {} on {}, {} tokens):",
                    d.id, d.created_at, d.draft.model_id, d.draft.device, d.draft.generated_tokens
                );
                println!("{}", d.draft.text);
            }
            for r in &detail.reports {
                println!("\nReport version {} ({}):", r.version, r.status);
                println!("{}", r.text);
            }
            Ok(())
        }
        Action::Export { id, output, format } if format != "bundle" => {
            let id = SessionId(id);
            let detail = store.session(id).map_err(|e| e.to_string())?.ok_or_else(|| no_such(id))?;
            let format = crate::export::Format::parse(&format).ok_or_else(|| format!("unknown export format {format}"))?;
            let bytes = crate::export::report(format, &detail, data_dir.path()).map_err(|e| e.to_string())?;
            crate::export::write_private(&output, &bytes).map_err(|e| format!("cannot write {}: {e}", output.display()))?;
            store.record_export(id, format.name()).map_err(|e| e.to_string())?;
            println!("Exported the report of session {id} to {} ({}).", output.display(), format.label());
            Ok(())
        }
        Action::Export { id, output, .. } => {
            store
                .export_session(SessionId(id), &output)
                .map_err(|e| match e {
                    BundleError::Store(StoreError::NoSuchSession(id)) => no_such(id),
                    other => other.to_string(),
                })?;
            println!("Exported session {id} to {}.", output.display());
            Ok(())
        }
        Action::Import { file } => {
            let id = store.import_session(&file).map_err(|e| e.to_string())?;
            println!("Imported {} as session {id}.", file.display());
            Ok(())
        }
        Action::Delete { id } => {
            let id = SessionId(id);
            store.delete_session(id).map_err(|e| match e {
                StoreError::NoSuchSession(id) => no_such(id),
                other => other.to_string(),
            })?;
            println!("Deleted session {id}.");
            Ok(())
        }
    }
}

fn no_such(id: SessionId) -> String {
    format!("there is no session {id} (see medgemma-desk sessions list)")
}

fn print_list(sessions: &[SessionSummary], json: bool) -> Result<(), String> {
    if json {
        println!(
            "{}",
            serde_json::to_string(sessions).map_err(|e| e.to_string())?
        );
        return Ok(());
    }
    if sessions.is_empty() {
        println!("No sessions.");
    }
    for s in sessions {
        println!(
            "{:>6}  {}  {:<11}  {}",
            s.id,
            s.created_at,
            s.status.as_str(),
            s.title
        );
    }
    Ok(())
}
