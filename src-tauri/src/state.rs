//! What the running window shares with its commands: the data folder, the
//! study on screen, the sessions, the model thread and the download running.

use std::sync::Arc;

use crate::data_dir::DataDir;
use crate::{drafting, reading, session};

/// What the running app shares with its commands.
pub struct AppState {
    pub data_dir: DataDir,
    /// The study on screen.
    pub reading: reading::Reading,
    /// The sessions store and the session on screen.
    pub sessions: Arc<session::Sessions>,
    /// The drafting service (it owns the model thread).
    pub drafting: drafting::Service,
    /// The model download running, if any.
    pub downloads: drafting::download_process::Downloads,
}
