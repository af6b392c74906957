//! Who the app is: its name and version, as the UI and every stored draft and
//! export report them. A leaf: it imports nothing of the crate.

/// The app's version, as the UI and every stored draft report it.
pub const APP_VERSION: &str = env!("CARGO_PKG_VERSION");
/// The window's title and the name users see.
pub const APP_NAME: &str = "MedGemma Desk";
