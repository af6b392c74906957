//! MedGemma Desk, the app crate: the Tauri window, its IPC commands and the
//! headless command line, over the clinical services (imaging, store, drafting).

pub mod attribution;
pub mod cli;
pub mod commands;
pub mod data_dir;
pub mod digest;
pub mod drafting;
pub mod export;
pub mod hostile_input;
pub mod imaging;
#[cfg(test)]
mod layering;
pub mod model_input_png;
pub mod reading;
pub mod session;
pub mod settings;
pub mod state;
pub mod store;
pub mod store_key;
pub mod version;
mod window;

pub use data_dir::{DataDir, DataDirError};
pub use state::AppState;
pub use window::GuiError;

/// Adds the app's state, commands and plugins to a builder of any Tauri
/// runtime: the real one, or `tauri::test::mock_builder()` in unit tests.
pub fn configure<R: tauri::Runtime>(builder: tauri::Builder<R>, state: AppState) -> tauri::Builder<R> {
    builder.manage(state).invoke_handler(commands::handler()).on_window_event(window::on_event)
}

/// The name this data folder's running instance is found by (a D-Bus name on
/// Linux): one window per data folder; another data folder is another store
/// and may run beside it.
fn single_instance_id(data_dir: &std::path::Path) -> String {
    let hash = digest::sha256_hex(data_dir.as_os_str().as_encoded_bytes());
    format!("org.medgemmadesk.app.d{}", &hash[..16])
}

/// Opens the main window (with `paths` loaded, if any) and runs until it is closed.
/// `unwritable`: why the data folder cannot be written, if so; the window
/// then opens for viewing, with the store unavailable and the reason shown.
pub fn run_gui(data_dir: DataDir, unwritable: Option<String>, paths: Vec<std::path::PathBuf>) -> Result<(), GuiError> {
    window::ensure_display()?;
    let (webview_dir, sessions) = match &unwritable {
        None => (data_dir.webview(), session::Sessions::open(data_dir.path())),
        Some(reason) => {
            // WebKit must write its own files somewhere: a private temporary folder.
            let tmp = std::env::temp_dir().join(format!("medgemma-desk-webview-{}", std::process::id()));
            (tmp, session::Sessions::unavailable(&format!("{reason}; images can be viewed, but nothing is saved")))
        }
    };
    let sessions = std::sync::Arc::new(sessions);
    let drafting = drafting::Service::new(data_dir.path(), sessions.clone());
    let instance = single_instance_id(data_dir.path());
    configure(tauri::Builder::<tauri::Wry>::default(), AppState { data_dir, reading: Default::default(), sessions, drafting, downloads: Default::default() })
        // First: a second launch on the same data folder (double-clicking
        // another .dcm) hands its files to this window and exits, instead of
        // opening a second process on the same store.
        .plugin(
            tauri_plugin_single_instance::Builder::new()
                .dbus_id(instance)
                .callback(|app, argv, cwd| window::second_launch(app, argv, cwd))
                .build(),
        )
        .plugin(tauri_plugin_dialog::init())
        .setup(move |app| {
            window::open_main(app.handle(), webview_dir)?;
            if !paths.is_empty() {
                commands::imaging::open_in_background(app.handle(), paths);
            }
            Ok(())
        })
        .run(tauri::generate_context!())
        .map_err(|e| match e {
            // The window this launch found for the data folder quit before
            // taking its files (closed a moment ago and still exiting): start
            // again, to become the window or hand over to a newer one.
            tauri::Error::PluginInitialization(ref plugin, _) if plugin == "single-instance" => window::relaunch(e),
            e => GuiError::Tauri(e),
        })
}
