//! Whole-app tests in the real window: the built app on WebKitGTK, driven
//! through tauri-driver + WebKitWebDriver. They need a display (Xvfb) and the
//! drivers, so they are `#[ignore]`d in a plain `cargo test`; `make test` runs
//! them with `--ignored` under xvfb-run.

mod bad_models;
#[path = "../data_folder.rs"]
mod data_folder;
mod drafting;
mod encryption;
mod harness;
mod installed;
mod measure;
#[path = "../cli/mock_hub.rs"]
#[allow(dead_code)]
mod mock_hub;
mod models;
mod privacy;
mod series;
mod sessions;
mod theme;
#[path = "../cli/trace.rs"]
mod trace;
mod viewer;
mod window;
