//! What the UI asks about the app itself: name, version, where data is kept.

use serde::Serialize;

use crate::state::AppState;

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct AppInfo {
    pub name: String,
    pub version: String,
    pub data_dir: String,
}

#[tauri::command]
pub fn app_info(state: tauri::State<'_, AppState>) -> AppInfo {
    AppInfo {
        name: crate::version::APP_NAME.to_owned(),
        version: crate::version::APP_VERSION.to_owned(),
        data_dir: state.data_dir.path().display().to_string(),
    }
}
