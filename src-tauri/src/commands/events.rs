//! The names of the events the window listens to (Tauri's event system), in
//! one leaf so every command file can emit them without importing another.

/// The study on screen changed (opened, failed to open, closed).
pub const READING_CHANGED: &str = "reading-changed";
/// The sessions list or the session on screen changed.
pub const SESSIONS_CHANGED: &str = "sessions-changed";
