/// Every IPC command the app registers. build.rs declares these in the app
/// manifest (one `allow-<name>` permission each); a unit test checks that the
/// handler, this list and the capabilities agree.
pub const COMMAND_NAMES: &[&str] = &[
    "app_info",
    "reading_state",
    "open_paths",
    "open_dialog",
    "frame_pixels",
    "session_state",
    "sessions_list",
    "session_open",
    "session_save_notes",
    "session_save_report",
    "session_sign",
    "session_delete",
    "measurement_add",
    "measurement_delete",
    "session_priors",
    "session_compare",
    "dismiss_store_notice",
    "store_unlock",
    "store_encrypt",
    "drafting_state",
    "draft_start",
    "draft_stop",
    "draft_review",
    "model_input_image",
    "report_export",
    "models_state",
    "settings_save",
    "model_unload",
    "model_import",
    "model_pick_folder",
    "model_download",
    "model_download_cancel",
];

/// Tauri core permissions the window needs beyond our commands: listening for
/// the events the app emits (the study changed, a file hovers over the window).
pub const CORE_PERMISSIONS: &[&str] = &["core:event:allow-listen", "core:event:allow-unlisten"];
