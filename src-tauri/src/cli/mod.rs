//! The command line: no subcommand opens the window; subcommands run headless
//! (no display needed). Exit codes: 0 done, 1 failed, 2 the command line was wrong.

use std::ffi::OsString;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::data_dir::DataDir;

mod bench;
mod bench_store;
mod draft;
mod generate;
mod info;
mod models;
mod render;
mod sessions;
mod statistics;

#[derive(Debug, Parser)]
#[command(
    name = "medgemma-desk",
    version,
    about = "MedGemma Desk: draft chest X-ray reports with MedGemma, offline, on this computer.",
    long_about = "MedGemma Desk: draft chest X-ray reports with MedGemma, offline, on this computer.\n\n\
                  With no subcommand the app window opens. The subcommands run without a window.",
    disable_help_subcommand = true,
    subcommand_precedence_over_arg = true
)]
pub struct Cli {
    /// Folder for the app's data (sessions, images, models, settings).
    /// Default: the platform's app data folder.
    #[arg(long, global = true, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,

    /// Images to open in the window (DICOM, PNG, JPEG, or a folder of DICOM files).
    #[arg(value_name = "FILE")]
    pub paths: Vec<PathBuf>,

    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Show an image's key DICOM tags, windows, frames and transfer syntax.
    Info(info::InfoArgs),
    /// Render an image exactly as the viewer shows it, to a PNG file.
    Render(render::RenderArgs),
    /// Run a model on a prompt (and images), streaming the text.
    Generate(generate::GenerateArgs),
    /// Draft a report for an image with a template, and keep the session.
    Draft(draft::DraftArgs),
    /// List, show, search, export, import or delete stored sessions.
    Sessions(sessions::SessionsArgs),
    /// List the models on this computer (data folder, Hugging Face cache) and the known ones.
    Models(models::ModelsArgs),
    /// Measure model speed (prefill and decode tokens per second).
    Bench(bench::BenchArgs),
}

/// Parses the process's arguments, runs, and maps the outcome to an exit code.
pub fn main() -> ExitCode {
    install_panic_message();
    init_logging();
    run(std::env::args_os())
}

/// The whole command line, from arguments to exit code (tests call this).
pub fn run<I, T>(args: I) -> ExitCode
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(err) => return report_parse_error(err),
    };
    match execute(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Usage(message)) => {
            eprintln!("medgemma-desk: {message}");
            ExitCode::from(2)
        }
        Err(Failure::Failed(message)) => {
            eprintln!("medgemma-desk: {message}");
            ExitCode::from(1)
        }
    }
}

/// How a command ended badly: a wrong command line (exit 2) or a failure (exit 1).
enum Failure {
    Usage(String),
    Failed(String),
}

impl From<String> for Failure {
    fn from(s: String) -> Self {
        Failure::Failed(s)
    }
}

fn execute(cli: Cli) -> Result<(), Failure> {
    match cli.command {
        None => {
            // A bare word that names no file is a mistyped subcommand, not an image.
            if let Some(p) = cli
                .paths
                .iter()
                .find(|p| !p.exists() && !p.to_string_lossy().contains(['/', '.', '\\']))
            {
                return Err(Failure::Usage(format!(
                    "unrecognized subcommand '{}' (see medgemma-desk --help)",
                    p.display()
                )));
            }
            let (data_dir, unwritable) = DataDir::for_window(cli.data_dir.as_deref()).map_err(|e| e.to_string())?;
            Ok(crate::run_gui(data_dir, unwritable.map(|e| e.to_string()), cli.paths).map_err(|e| e.to_string())?)
        }
        Some(Command::Generate(args)) => Ok(generate::run(args)?),
        Some(Command::Bench(args)) => Ok(bench::run(args)?),
        Some(Command::Info(args)) => Ok(info::run(args)?),
        Some(Command::Render(args)) => Ok(render::run(args)?),
        Some(Command::Sessions(args)) => Ok(sessions::run(args, cli.data_dir.as_deref())?),
        Some(Command::Draft(args)) => Ok(draft::run(args, cli.data_dir.as_deref())?),
        Some(Command::Models(args)) => Ok(models::run(args, cli.data_dir.as_deref())?),
    }
}

/// Help and version go to stdout with exit 0; anything else is a usage error:
/// one line on stderr, exit 2 (clap's own multi-line output is for humans at a
/// prompt; scripts and launchers need one line).
fn report_parse_error(err: clap::Error) -> ExitCode {
    use clap::error::ErrorKind;
    match err.kind() {
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => {
            let _ = write!(std::io::stdout(), "{}", err.render());
            ExitCode::SUCCESS
        }
        _ => {
            let rendered = err.render().to_string();
            let first = rendered
                .lines()
                .find(|l| !l.trim().is_empty())
                .unwrap_or("invalid command line");
            let first = first.trim_start_matches("error: ");
            eprintln!("medgemma-desk: {first} (see medgemma-desk --help)");
            ExitCode::from(2)
        }
    }
}

/// Limits the CPU threads the model runtime uses (its thread pool reads this
/// before its first use, so call it before loading a model).
pub(crate) fn set_cpu_threads(n: usize) -> Result<(), String> {
    if n == 0 {
        return Err("--threads must be at least 1".into());
    }
    // SAFETY: called on the main thread before any other thread is started.
    std::env::set_var("RAYON_NUM_THREADS", n.to_string());
    Ok(())
}

/// A panic is a bug, but the user still gets one line, not a trace.
fn install_panic_message() {
    if std::env::var_os("RUST_BACKTRACE").is_some() {
        return;
    }
    std::panic::set_hook(Box::new(|info| {
        let what = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown error".into());
        let what = what.lines().next().unwrap_or_default().to_owned();
        eprintln!("medgemma-desk: internal error, please report it: {what}");
    }));
}

fn init_logging() {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_env("MEDGEMMA_LOG").unwrap_or_else(|_| EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn help_lists_every_subcommand() {
        let help = Cli::command().render_long_help().to_string();
        for sub in [
            "info", "render", "generate", "draft", "sessions", "models", "bench",
        ] {
            assert!(help.contains(sub), "--help lacks {sub}:\n{help}");
        }
        assert!(help.contains("--data-dir"));
    }

    #[test]
    fn data_dir_is_global() {
        let cli =
            Cli::try_parse_from(["medgemma-desk", "sessions", "list", "--data-dir", "/tmp/x"])
                .unwrap();
        assert_eq!(
            cli.data_dir.as_deref(),
            Some(std::path::Path::new("/tmp/x"))
        );
    }

    #[test]
    fn data_dir_may_come_before_the_subcommand() {
        let cli =
            Cli::try_parse_from(["medgemma-desk", "--data-dir", "/tmp/x", "sessions", "list"])
                .unwrap();
        assert!(matches!(cli.command, Some(Command::Sessions(_))));
        assert_eq!(
            cli.data_dir.as_deref(),
            Some(std::path::Path::new("/tmp/x"))
        );
        let cli = Cli::try_parse_from([
            "medgemma-desk",
            "--data-dir",
            "/tmp/x",
            "chest.dcm",
            "b.png",
        ])
        .unwrap();
        assert!(cli.command.is_none());
        assert_eq!(cli.paths.len(), 2);
    }

    #[test]
    fn unknown_subcommand_is_a_usage_error() {
        assert_eq!(run(["medgemma-desk", "frobnicate"]), ExitCode::from(2));
    }
}
