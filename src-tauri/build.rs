// Declares the app's own IPC commands in the app manifest, so that they pass
// Tauri's permission system like plugin commands do (capabilities/ grants them).
include!("src/commands/names.rs");

fn main() {
    let manifest = tauri_build::AppManifest::new().commands(COMMAND_NAMES);
    tauri_build::try_build(tauri_build::Attributes::new().app_manifest(manifest))
        .expect("tauri-build failed: check tauri.conf.json, capabilities/ and that ui/dist exists (make ui)");
}
