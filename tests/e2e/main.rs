//! Whole-app tests in the real window: the built app on WebKitGTK, driven
//! through tauri-driver + WebKitWebDriver. They need a display (Xvfb) and the
//! drivers, so they are `#[ignore]`d in a plain `cargo test`; `make test` runs
//! them with `--ignored` under xvfb-run.

mod drafting;
mod harness;
mod installed;
mod privacy;
mod sessions;
mod viewer;
mod window;
