// MedGemma Desk: with no subcommand the window opens; subcommands run headless.
// Everything lives in the library so tests can reach it; this only hands over.
fn main() -> std::process::ExitCode {
    medgemma_desk::cli::main()
}
