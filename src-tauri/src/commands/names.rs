/// Every IPC command the app registers. build.rs declares these in the app
/// manifest (one `allow-<name>` permission each); a unit test checks that the
/// handler, this list and the capabilities agree.
pub const COMMAND_NAMES: &[&str] = &["app_info"];
