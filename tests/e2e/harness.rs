//! Starts tauri-driver, launches the app in it with a fresh `--data-dir`, and
//! stops both cleanly. Uses fantoccini (a maintained, async Rust WebDriver
//! client) so the tests are plain `cargo test` targets with no Node runtime.

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder};
use serde_json::json;

/// The app binary cargo built for these tests (absolute, as tauri-driver
/// needs), or the installed one named by MEDGEMMA_DESK_APP (the package test).
pub fn app_binary() -> PathBuf {
    match std::env::var_os("MEDGEMMA_DESK_APP") {
        Some(p) => PathBuf::from(p),
        None => PathBuf::from(env!("CARGO_BIN_EXE_medgemma-desk")),
    }
}

fn tauri_driver() -> PathBuf {
    if let Some(p) = std::env::var_os("TAURI_DRIVER") {
        return PathBuf::from(p);
    }
    let in_cargo_home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".cargo")))
        .map(|h| h.join("bin/tauri-driver"));
    match in_cargo_home {
        Some(p) if p.exists() => p,
        _ => PathBuf::from("tauri-driver"),
    }
}

/// Waits for a child process at most `limit`; kills it (and says so) after.
/// Every wait in these tests is bounded: a hang must fail with a reason.
pub fn wait_at_most(child: &mut Child, limit: Duration, what: &str) -> std::process::ExitStatus {
    let deadline = Instant::now() + limit;
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{what} did not exit within {} s", limit.as_secs());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// tauri-driver and WebKitWebDriver. Dropped with SIGTERM, never SIGKILL: a
/// killed tauri-driver leaks WebKitWebDriver, which keeps the test's output
/// pipes open and hangs the run.
struct Driver {
    child: Child,
    port: u16,
}

impl Driver {
    fn start(envs: &[(String, String)]) -> Self {
        assert!(
            std::env::var_os("DISPLAY").is_some() || std::env::var_os("WAYLAND_DISPLAY").is_some(),
            "the window tests need a display: run them through `make test` (it starts Xvfb)"
        );
        let port = free_port();
        let native_port = free_port();
        let child = Command::new(tauri_driver())
            .args(["--port", &port.to_string(), "--native-port", &native_port.to_string()])
            // The tiny fixture model writes faster than WebDriver can press Stop:
            // the app's pacing aid slows its stream to a person's pace.
            .env("MEDGEMMA_DESK_TOKEN_PACE_MS", "40")
            // Only the models a test puts in its data folder, never this machine's Hugging Face cache.
            .env("HF_HUB_CACHE", "/nonexistent/medgemma-desk-tests/hf-cache")
            .envs(envs.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("tauri-driver not found: `make test` installs it (cargo install tauri-driver)");
        // tauri-driver, and WebKitWebDriver behind it (which tauri-driver
        // starts, and which on a loaded machine listens a while later: a
        // session asked for before then is dropped half-way).
        let deadline = Instant::now() + Duration::from_secs(60);
        for p in [port, native_port] {
            while TcpStream::connect(("127.0.0.1", p)).is_err() {
                assert!(Instant::now() < deadline, "tauri-driver/WebKitWebDriver did not listen on port {p} within 60 s");
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        Self { child, port }
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One running app, in its own temporary data folder.
pub struct App {
    pub client: Client,
    pub data_dir: tempfile::TempDir,
    _driver: Driver,
}

impl App {
    pub async fn launch() -> Self {
        Self::launch_with(&[]).await
    }

    /// Launches the app with extra command-line arguments (files to open).
    pub async fn launch_with(extra: &[&str]) -> Self {
        Self::launch_in(tempfile::tempdir().unwrap(), extra).await
    }

    /// Closes the app and starts it again on the same data folder, as a
    /// clinician does the next morning.
    pub async fn restart(self) -> Self {
        self.restart_env(&[]).await
    }

    /// `restart` with extra environment variables (as `launch_env`).
    pub async fn restart_env(self, envs: &[(String, String)]) -> Self {
        let App { client, data_dir, _driver } = self;
        let _ = client.close().await;
        drop(_driver);
        ensure_exited(data_dir.path());
        Self::launch_env(data_dir, &[], envs).await
    }

    /// Launches the app on an existing data folder.
    pub async fn launch_in(data_dir: tempfile::TempDir, extra: &[&str]) -> Self {
        Self::launch_env(data_dir, extra, &[]).await
    }

    /// Launches the app with extra environment variables (a test's own
    /// Hugging Face cache and Hub address, say).
    pub async fn launch_env(data_dir: tempfile::TempDir, extra: &[&str], envs: &[(String, String)]) -> Self {
        Self::launch_program(&app_binary(), data_dir, extra, envs).await
    }

    /// Launches `program` as the app: the app itself, or a wrapper that
    /// starts it (under strace, say) with the arguments it is given.
    pub async fn launch_program(program: &Path, data_dir: tempfile::TempDir, extra: &[&str], envs: &[(String, String)]) -> Self {
        let driver = Driver::start(envs);
        let mut args = vec!["--data-dir".to_string(), data_dir.path().display().to_string()];
        args.extend(extra.iter().map(|s| s.to_string()));
        let mut caps = serde_json::Map::new();
        caps.insert(
            "tauri:options".into(),
            json!({
                "application": program,
                "args": args,
            }),
        );
        caps.insert("browserName".into(), json!("wry"));
        let client = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(caps)
            .connect(&format!("http://127.0.0.1:{}", driver.port))
            .await
            .expect("could not start the app through tauri-driver");
        Self { client, data_dir, _driver: driver }
    }

    /// Waits until the element's text contains `needle`; returns the text.
    pub async fn wait_for_text(&self, css: &str, needle: &str) -> String {
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        loop {
            let text = self.text_of(css).await;
            if text.contains(needle) {
                return text;
            }
            assert!(std::time::Instant::now() < deadline, "{css} shows {text:?}, never {needle:?}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits until `css` matches exactly `n` elements.
    pub async fn wait_for_count(&self, css: &str, n: usize) {
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        loop {
            let found = self.client.find_all(fantoccini::Locator::Css(css)).await.map(|v| v.len()).unwrap_or(0);
            if found == n {
                return;
            }
            assert!(std::time::Instant::now() < deadline, "{css} matched {found} elements, never {n}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The current value of a form field.
    pub async fn value_of(&self, css: &str) -> String {
        let el = self.client.wait().at_most(Duration::from_secs(15)).for_element(fantoccini::Locator::Css(css)).await.unwrap();
        el.prop("value").await.unwrap().unwrap_or_default()
    }

    /// Scrolls an element to the middle of its scrolling panel, as a person
    /// scrolls to a control before using it.
    pub async fn scroll_to(&self, el: &fantoccini::elements::Element) {
        let arg = serde_json::to_value(el).unwrap();
        let _ = self.client.execute("arguments[0].scrollIntoView({ block: 'center' });", vec![arg]).await;
    }

    /// Types into a form field as the clinician does (key by key).
    pub async fn type_into(&self, css: &str, text: &str) {
        let el = self.client.wait().at_most(Duration::from_secs(15)).for_element(fantoccini::Locator::Css(css)).await.unwrap();
        self.scroll_to(&el).await;
        el.click().await.unwrap();
        el.send_keys(text).await.unwrap();
    }

    /// Clicks the first element matching `css`.
    pub async fn click(&self, css: &str) {
        let el = self.client.wait().at_most(Duration::from_secs(15)).for_element(fantoccini::Locator::Css(css)).await.unwrap();
        self.scroll_to(&el).await;
        el.click().await.unwrap_or_else(|e| panic!("cannot click {css}: {e}"));
    }

    /// Waits for an element and returns its text.
    pub async fn text_of(&self, css: &str) -> String {
        let el = self
            .client
            .wait()
            .at_most(Duration::from_secs(15))
            .for_element(fantoccini::Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("{css} never appeared: {e}"));
        el.text().await.unwrap()
    }

    /// Saves a screenshot under target/screenshots/, and into docs/screenshots/
    /// too when UPDATE_SCREENSHOTS=1 (commit those when they change meaningfully).
    pub async fn screenshot(&self, name: &str) -> Vec<u8> {
        let png = self.client.screenshot().await.unwrap();
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
        let out = root.join("target/screenshots");
        std::fs::create_dir_all(&out).unwrap();
        std::fs::write(out.join(format!("{name}.png")), &png).unwrap();
        if std::env::var_os("UPDATE_SCREENSHOTS").is_some_and(|v| v == "1") {
            std::fs::write(root.join("docs/screenshots").join(format!("{name}.png")), &png).unwrap();
        }
        png
    }

    pub async fn quit(self) {
        let App { client, data_dir, _driver } = self;
        let _ = client.close().await;
        drop(_driver);
        ensure_exited(data_dir.path());
    }
}

/// Makes sure the app on `data_dir` has exited, as it has for a clinician
/// who closed its window. Ending the WebDriver session normally closes it,
/// but on a loaded machine WebKitWebDriver can give up first and leave the
/// app running, orphaned: it then still answers for the data folder, and the
/// next launch on it would hand over to it instead of opening a window.
fn ensure_exited(data_dir: &Path) {
    let pattern = format!("medgemma-desk --data-dir {}", data_dir.display());
    let running = || Command::new("pgrep").args(["-f", &pattern]).stdout(Stdio::null()).status().is_ok_and(|s| s.success());
    for (wait, signal) in [(10, None), (20, Some("-TERM")), (10, Some("-KILL"))] {
        if let Some(sig) = signal {
            let _ = Command::new("pkill").args([sig, "-f", &pattern]).status();
        }
        let deadline = Instant::now() + Duration::from_secs(wait);
        while Instant::now() < deadline {
            if !running() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    panic!("the app on {} did not exit", data_dir.display());
}
