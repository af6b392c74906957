//! The IPC surface the UI calls, one file per area. Commands stay thin:
//! validate, call a service, map errors to `{ kind, message }`.

mod app;
mod drafting;
mod events;
pub mod models;
pub mod imaging;
mod names;
mod sessions;

pub use names::{COMMAND_NAMES, CORE_PERMISSIONS};

/// An error as the UI receives it: a stable kind and a sentence for the user.
#[derive(Debug, Clone, serde::Serialize)]
pub struct CommandError {
    pub kind: String,
    pub message: String,
}

impl CommandError {
    pub fn internal(message: impl Into<String>) -> Self {
        Self { kind: "internal".into(), message: message.into() }
    }
}

/// The handler with every command; keep it in step with `names.rs`.
pub fn handler<R: tauri::Runtime>() -> impl Fn(tauri::ipc::Invoke<R>) -> bool + Send + Sync + 'static {
    tauri::generate_handler![
        app::app_info,
        imaging::reading_state,
        imaging::open_paths,
        imaging::open_dialog,
        imaging::frame_pixels,
        sessions::session_state,
        sessions::sessions_list,
        sessions::session_open,
        sessions::session_save_notes,
        sessions::session_save_report,
        sessions::session_sign,
        sessions::session_delete,
        sessions::dismiss_store_notice,
        sessions::store_unlock,
        sessions::measurement_add,
        sessions::measurement_delete,
        sessions::session_priors,
        sessions::session_compare,
        sessions::store_encrypt,
        drafting::drafting_state,
        drafting::draft_start,
        drafting::draft_stop,
        drafting::draft_review,
        drafting::model_input_image,
        drafting::report_export,
        models::models_state,
        models::settings_save,
        models::model_unload,
        models::model_import,
        models::model_pick_folder,
        models::model_download,
        models::model_download_cancel
    ]
}

#[cfg(test)]
mod tests;
