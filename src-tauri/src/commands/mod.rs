//! The IPC surface the UI calls, one file per area. Commands stay thin:
//! validate, call a service, map errors to `{ kind, message }`.

mod app;
mod names;

pub use names::COMMAND_NAMES;

/// The handler with every command; keep it in step with `names.rs`.
pub fn handler<R: tauri::Runtime>() -> impl Fn(tauri::ipc::Invoke<R>) -> bool + Send + Sync + 'static {
    tauri::generate_handler![app::app_info]
}

#[cfg(test)]
mod tests;
