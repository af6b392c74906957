//! The first screen a clinician sees, in the real window.

use crate::harness::App;

#[tokio::test(flavor = "current_thread")]
#[ignore = "needs a display and tauri-driver: run by `make test` under Xvfb"]
async fn first_screen_shows_the_empty_state_and_the_version_from_rust() {
    let app = App::launch().await;

    assert_eq!(app.client.title().await.unwrap(), "MedGemma Desk");
    // The version line is the last thing the first screen fills in: once it is
    // there, the screenshot shows the whole screen.
    let version = app.text_of("[data-testid=app-version]").await;
    let png = app.screenshot("main-window").await;
    assert!(png.starts_with(b"\x89PNG"), "the screenshot is not a PNG");

    assert_eq!(app.text_of("[data-testid=empty-state]").await, "Drop a chest X-ray here");
    // WebDriver returns rendered text: the headings are styled upper-case.
    assert!(app.text_of("nav").await.to_lowercase().contains("sessions"));
    assert!(app.text_of("aside").await.to_lowercase().contains("case notes"));

    // The version is answered by the Rust side over IPC, not baked into the UI.
    assert_eq!(version, format!("MedGemma Desk {}", env!("CARGO_PKG_VERSION")));

    // The GUI honours --data-dir: the app and its webview write there.
    let shown = app.text_of("[data-testid=data-dir]").await;
    assert_eq!(shown, app.data_dir.path().display().to_string());

    assert!(app.data_dir.path().join("webview").is_dir(), "the webview's data is not in --data-dir");

    app.quit().await;
}

/// Double-clicking a second .dcm while the app runs: the new launch hands the
/// file to the running window and exits; no second process opens the store.
#[tokio::test(flavor = "current_thread")]
#[ignore = "needs a display, a D-Bus session and tauri-driver: run by `make test`"]
async fn a_second_launch_hands_its_file_to_the_running_window() {
    assert!(
        std::env::var_os("DBUS_SESSION_BUS_ADDRESS").is_some(),
        "single instance needs a D-Bus session bus: run the window tests through `make test` (dbus-run-session)"
    );
    let app = crate::harness::App::launch().await;
    app.text_of("[data-testid=empty-state]").await;
    let cr = crate::viewer::dev_set_file("pydicom-data-1.0.0/data_store/data/RG3_UNCI.dcm");
    let started = std::time::Instant::now();
    let second = std::process::Command::new(crate::harness::app_binary())
        .args(["--data-dir", app.data_dir.path().to_str().unwrap(), cr.to_str().unwrap()])
        .output()
        .expect("the second launch runs");
    assert!(second.status.success(), "the second launch exits cleanly: {}", String::from_utf8_lossy(&second.stderr));
    assert!(started.elapsed() < std::time::Duration::from_secs(20), "it exits instead of opening a window");
    app.wait_for_text("[data-testid=image-details]", "1760 × 1760").await;
    app.wait_for_count("[data-testid=session-item]", 1).await;
    app.quit().await;
}
