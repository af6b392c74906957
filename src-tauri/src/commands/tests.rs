//! The permission system must know every command: a command without a grant
//! fails at run time in the window, which no compiler catches.

use std::collections::BTreeSet;
use std::path::Path;

use tauri::ipc::{CallbackFn, InvokeBody};
use tauri::test::{get_ipc_response, mock_builder, INVOKE_KEY};
use tauri::webview::InvokeRequest;

use super::{COMMAND_NAMES, CORE_PERMISSIONS};
use crate::state::AppState;
use crate::data_dir::DataDir;

fn crate_dir() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Names of every `#[tauri::command]` function in src/commands/.
fn commands_in_source() -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    for entry in std::fs::read_dir(crate_dir().join("src/commands")).unwrap() {
        let text = std::fs::read_to_string(entry.unwrap().path()).unwrap();
        let mut lines = text.lines().map(str::trim);
        while let Some(line) = lines.next() {
            if line.starts_with("#[tauri::command") {
                let sig = lines.find(|l| l.contains("fn ")).expect("a function after #[tauri::command]");
                let name = sig.split("fn ").nth(1).unwrap().split(['(', '<']).next().unwrap();
                found.insert(name.trim().to_owned());
            }
        }
    }
    found
}

/// Every permission the capabilities grant.
fn granted_permissions() -> BTreeSet<String> {
    let mut granted = BTreeSet::new();
    for entry in std::fs::read_dir(crate_dir().join("capabilities")).unwrap() {
        let path = entry.unwrap().path();
        let json: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        for p in json["permissions"].as_array().unwrap() {
            let id = p.as_str().or_else(|| p["identifier"].as_str()).unwrap();
            granted.insert(id.to_owned());
        }
    }
    granted
}

fn permission_for(command: &str) -> String {
    format!("allow-{}", command.replace('_', "-"))
}

#[test]
fn every_command_in_source_is_listed_for_the_manifest() {
    let listed: BTreeSet<String> = COMMAND_NAMES.iter().map(|s| s.to_string()).collect();
    assert_eq!(commands_in_source(), listed, "src/commands/names.rs is out of step with the #[tauri::command] functions");
}

#[test]
fn every_command_has_a_permission_in_the_capabilities() {
    let granted = granted_permissions();
    for name in COMMAND_NAMES {
        assert!(granted.contains(&permission_for(name)), "no capability grants {}", permission_for(name));
    }
}

#[test]
fn capabilities_grant_nothing_beyond_the_apps_commands() {
    let mut expected: BTreeSet<String> = COMMAND_NAMES.iter().map(|c| permission_for(c)).collect();
    expected.extend(CORE_PERMISSIONS.iter().map(|p| p.to_string()));
    let extra: Vec<_> = granted_permissions().difference(&expected).cloned().collect();
    assert!(extra.is_empty(), "capabilities grant more than the app uses: {extra:?}");
}

fn invoke(cmd: &str) -> Result<serde_json::Value, serde_json::Value> {
    let tmp = tempfile::tempdir().unwrap();
    let sessions = std::sync::Arc::new(crate::session::Sessions::open_with(tmp.path(), crate::store_key::KeySource::Unencrypted));
    let state = AppState {
        data_dir: DataDir::prepare(Some(tmp.path())).unwrap(),
        reading: Default::default(),
        drafting: crate::drafting::Service::new(tmp.path(), sessions.clone()),
        sessions,
        downloads: Default::default(),
    };
    let app = crate::configure(mock_builder(), state).build(tauri::generate_context!()).unwrap();
    let webview = tauri::WebviewWindowBuilder::new(&app, crate::window::MAIN_WINDOW, Default::default())
        .build()
        .unwrap();
    let request = InvokeRequest {
        cmd: cmd.into(),
        callback: CallbackFn(0),
        error: CallbackFn(1),
        url: "tauri://localhost".parse().unwrap(),
        body: InvokeBody::default(),
        headers: Default::default(),
        invoke_key: INVOKE_KEY.to_string(),
    };
    get_ipc_response(&webview, request).map(|body| body.deserialize::<serde_json::Value>().unwrap_or(serde_json::Value::Null))
}

/// Whether the permission system refused the command (as opposed to the
/// command itself failing on its arguments).
fn refused_by_acl(err: &serde_json::Value) -> bool {
    let s = err.to_string();
    s.contains("not allowed") || s.contains("Command not found") || s.contains("not found")
}

#[test]
fn every_registered_command_passes_the_permission_system() {
    // Built on the real generated context (capabilities and app manifest), so
    // a command missing from either is refused here exactly as in the window.
    for name in COMMAND_NAMES {
        if *name == "open_dialog" || *name == "model_pick_folder" {
            continue; // opens a real dialog; its permission is checked above
        }
        if let Err(e) = invoke(name) {
            assert!(!refused_by_acl(&e), "command {name} was refused: {e}");
        }
    }
}

#[test]
fn an_unknown_command_is_refused() {
    assert!(invoke("not_a_command").is_err());
}

#[test]
fn app_info_reports_the_crate_version() {
    let info = invoke("app_info").unwrap();
    assert_eq!(info["version"], crate::version::APP_VERSION);
    assert_eq!(info["name"], "MedGemma Desk");
}
