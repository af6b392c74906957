//! Opening a real radiograph in the real window: the CR from the DICOM dev set
//! (MONOCHROME1, 1760², window 550/1024 in the file), given on the command
//! line as a file association launch does.

use std::path::PathBuf;
use std::process::Command;

use crate::harness::App;

pub(crate) fn dev_set_file(rel: &str) -> PathBuf {
    let fetch = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/dicom/fetch.sh");
    let out = Command::new("bash").arg(fetch).arg("--quiet").output().expect("bash runs");
    assert!(out.status.success(), "fetch.sh failed: {}", String::from_utf8_lossy(&out.stderr));
    PathBuf::from(String::from_utf8_lossy(&out.stdout).trim().lines().last().unwrap()).join(rel)
}

#[tokio::test(flavor = "current_thread")]
#[ignore = "needs a display and tauri-driver: run by `make test` under Xvfb"]
async fn a_real_cr_opens_windowed_from_the_file_and_is_not_blank() {
    let cr = dev_set_file("pydicom-data-1.0.0/data_store/data/RG3_UNCI.dcm");
    let app = App::launch_with(&[cr.to_str().unwrap()]).await;

    // The overlay shows the DICOM window and that MONOCHROME1 is displayed inverted.
    let overlay = app.wait_for_text("[data-testid=viewer-overlay]", "W 1024 C 550").await;
    assert!(overlay.contains("inverted"), "{overlay}");
    let details = app.text_of("[data-testid=image-details]").await;
    assert!(details.contains("CR") && details.contains("1760 × 1760"), "{details}");

    // The canvas shows an image: its pixels vary (a blank canvas is one colour).
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let canvas = app.client.find(fantoccini::Locator::Css("[data-testid=viewer-canvas]")).await.unwrap();
    let png = canvas.screenshot().await.unwrap();
    let img = image::load_from_memory(&png).unwrap().to_luma8();
    let (w, h) = img.dimensions();
    let centre: Vec<f64> = img.enumerate_pixels().filter(|(x, y, _)| *x > w / 4 && *x < 3 * w / 4 && *y > h / 4 && *y < 3 * h / 4).map(|(_, _, p)| p.0[0] as f64).collect();
    let mean = centre.iter().sum::<f64>() / centre.len() as f64;
    let var = centre.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / centre.len() as f64;
    assert!(var.sqrt() > 10.0, "the viewer looks blank: mean {mean:.1}, sd {:.1}", var.sqrt());
    app.screenshot("viewer-cr").await;

    // Invert from the toolbar: the overlay drops "inverted".
    app.client.find(fantoccini::Locator::Css("button[title^='Invert']")).await.unwrap().click().await.unwrap();
    let overlay = app.text_of("[data-testid=viewer-overlay]").await;
    assert!(!overlay.contains("inverted"), "{overlay}");

    // Keyboard-first: I inverts again, 2 picks the next preset (Auto: the full range).
    let body = app.client.find(fantoccini::Locator::Css("body")).await.unwrap();
    body.send_keys("i").await.unwrap();
    app.wait_for_text("[data-testid=viewer-overlay]", "inverted").await;
    body.send_keys("2").await.unwrap();
    app.wait_for_text("[data-testid=viewer-overlay]", "full range").await;
    app.quit().await;
}

#[tokio::test(flavor = "current_thread")]
#[ignore = "needs a display and tauri-driver: run by `make test` under Xvfb"]
async fn a_file_that_is_not_an_image_gets_a_message_in_the_window() {
    let tmp = tempfile::tempdir().unwrap();
    let notes = tmp.path().join("referral.txt");
    std::fs::write(&notes, "Please review the chest film.").unwrap();
    let app = App::launch_with(&[notes.to_str().unwrap()]).await;
    let msg = app.wait_for_text("[data-testid=open-error]", "referral.txt").await;
    assert!(msg.contains("Could not open"), "{msg}");
    // The empty state is still there to try again.
    assert_eq!(app.text_of("[data-testid=empty-state]").await, "Drop a chest X-ray here");
    app.quit().await;
}

fn xdotool(args: &[&str]) -> String {
    let out = Command::new("xdotool").args(args).output().expect("xdotool is installed by `make test`");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[tokio::test(flavor = "current_thread")]
#[ignore = "needs a display, tauri-driver and xdotool: run by `make test` under Xvfb"]
async fn a_file_dropped_from_the_desktop_opens_in_the_viewer() {
    let cr = dev_set_file("pydicom-data-1.0.0/data_store/data/RG3_UNCR.dcm");
    let app = App::launch().await;
    app.text_of("[data-testid=empty-state]").await;

    let mut source = drag_onto_app(&cr);
    let overlay = app.wait_for_text("[data-testid=viewer-overlay]", "W 1024 C 550").await;
    assert!(overlay.contains("inverted"), "{overlay}");
    let _ = Command::new("kill").arg(source.id().to_string()).status();
    crate::harness::wait_at_most(&mut source, std::time::Duration::from_secs(20), "the drag source");
    app.quit().await;
}

/// A PNG and a JPEG dropped from the desktop (a real OS drop, as above) open
/// in the viewer at their own size, each as its own session.
#[tokio::test(flavor = "current_thread")]
#[ignore = "needs a display, tauri-driver and xdotool: run by `make test` under Xvfb"]
async fn a_png_and_a_jpeg_dropped_from_the_desktop_open_in_the_viewer() {
    let images = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/tiny-gemma3/images");
    let app = App::launch().await;
    app.text_of("[data-testid=empty-state]").await;
    for (file, size, sessions) in [("grey.png", "97 × 61", 1), ("rgb.jpg", "120 × 90", 2)] {
        let mut source = drag_onto_app(&images.join(file));
        app.wait_for_text("[data-testid=image-details]", size).await;
        app.wait_for_count("[data-testid=session-item]", sessions).await;
        let _ = Command::new("kill").arg(source.id().to_string()).status();
        crate::harness::wait_at_most(&mut source, std::time::Duration::from_secs(20), "the drag source");
    }
    app.quit().await;
}

#[tokio::test(flavor = "current_thread")]
#[ignore = "needs a display and tauri-driver: run by `make test` under Xvfb"]
async fn a_path_that_no_longer_exists_gets_a_message_in_the_window() {
    let tmp = tempfile::tempdir().unwrap();
    let gone = tmp.path().join("moved-away.dcm");
    let app = App::launch_with(&[gone.to_str().unwrap()]).await;
    let msg = app.wait_for_text("[data-testid=open-error]", "moved-away.dcm").await;
    assert!(msg.contains("Could not open"), "{msg}");
    assert_eq!(app.text_of("[data-testid=empty-state]").await, "Drop a chest X-ray here");
    app.quit().await;
}

/// Drags `path` from a GTK drag source (as a file manager is) in the screen's
/// bottom-right corner onto the middle of the app's image area, with real
/// pointer events (xdotool): the app receives a genuine OS drop. Returns the
/// drag source's process, to be ended by the caller.
pub(crate) fn drag_onto_app(path: &std::path::Path) -> std::process::Child {
    use std::io::BufRead;
    // A GTK drag source (as a file manager is) in the screen's bottom-right corner.
    let source = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/e2e/drag_source.py");
    let mut child = Command::new("/usr/bin/python3")
        .arg(&source)
        .args([path.to_str().unwrap(), "1500", "900"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("python3 with GTK bindings is installed by `make test`");
    // "ready" once its window is mapped; read on a thread so a source that
    // never starts fails the test instead of hanging it.
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = std::io::BufReader::new(stdout).read_line(&mut line);
        let _ = tx.send(line);
    });
    let ready = rx.recv_timeout(std::time::Duration::from_secs(30)).unwrap_or_default();
    assert_eq!(ready.trim(), "ready", "the GTK drag source did not start");

    // Where the app's image area is on the screen.
    let id = xdotool(&["search", "--name", "^MedGemma Desk$"]).lines().next().expect("the app window is on the display").to_owned();
    let geo = xdotool(&["getwindowgeometry", "--shell", &id]);
    let val = |k: &str| geo.lines().find_map(|l| l.strip_prefix(&format!("{k}="))).and_then(|v| v.parse::<i64>().ok()).unwrap();
    let (x, y, w, h) = (val("X"), val("Y"), val("WIDTH"), val("HEIGHT"));
    let (tx, ty) = (x + 248 + (w - 248 - 380) / 2, y + h / 2);

    // Press on the source, move across in steps (GTK starts a drag after a few pixels), release on the app.
    xdotool(&["mousemove", "1540", "930", "mousedown", "1"]);
    for i in 1..=20 {
        let px = 1540 + (tx - 1540) * i / 20;
        let py = 930 + (ty - 930) * i / 20;
        xdotool(&["mousemove", &px.to_string(), &py.to_string()]);
        std::thread::sleep(std::time::Duration::from_millis(40));
    }
    std::thread::sleep(std::time::Duration::from_millis(200));
    xdotool(&["mouseup", "1"]);

    child
}

/// Keyboard-first reading: `?` lists every shortcut (and closes with Esc), and
/// each viewer key listed there acts on the image: T turns, H flips, Z shows
/// 1:1, F fits, R resets.
#[tokio::test(flavor = "current_thread")]
#[ignore = "needs a display and tauri-driver: run by `make test` under Xvfb"]
async fn every_viewer_shortcut_is_listed_and_acts() {
    let cr = dev_set_file("pydicom-data-1.0.0/data_store/data/RG3_UNCI.dcm");
    let app = App::launch_with(&[cr.to_str().unwrap()]).await;
    app.wait_for_text("[data-testid=viewer-overlay]", "W 1024 C 550").await;
    let body = app.client.find(fantoccini::Locator::Css("body")).await.unwrap();
    let attr = |css: &'static str, name: &'static str| {
        let client = app.client.clone();
        async move {
            let el = client.find(fantoccini::Locator::Css(css)).await.unwrap();
            el.attr(name).await.unwrap().unwrap_or_default()
        }
    };

    body.send_keys("?").await.unwrap();
    let list = app.wait_for_text("[data-testid=shortcuts]", "Keyboard shortcuts").await;
    for key in ["Ctrl+O", "Ctrl+Enter", "I", "T", "H", "F", "Z", "R", "1 – 9", "PageUp / PageDown", "C", "[ / ]", "L", "A"] {
        assert!(list.contains(key), "{key} is not listed:\n{list}");
    }
    app.screenshot("shortcuts").await;
    body.send_keys("\u{e00c}").await.unwrap(); // Escape
    app.wait_for_count("[data-testid=shortcuts]", 0).await;

    body.send_keys("t").await.unwrap();
    assert_eq!(attr("[data-testid=rotate]", "data-rotation").await, "90");
    body.send_keys("h").await.unwrap();
    assert_eq!(attr("[data-testid=flip]", "aria-pressed").await, "true");
    body.send_keys("z").await.unwrap();
    app.wait_for_text("[data-testid=viewer-zoom]", "100%").await;
    body.send_keys("f").await.unwrap();
    let fitted = app.text_of("[data-testid=viewer-zoom]").await;
    assert_ne!(fitted, "100%", "F fits the 1760² image into the window");
    body.send_keys("r").await.unwrap();
    assert_eq!(attr("[data-testid=rotate]", "data-rotation").await, "0");
    assert_eq!(attr("[data-testid=flip]", "aria-pressed").await, "false");

    // A key typed into the notes is text, not a shortcut.
    app.type_into("[data-testid=notes-indication]", "?t").await;
    assert_eq!(app.client.find_all(fantoccini::Locator::Css("[data-testid=shortcuts]")).await.unwrap().len(), 0);
    assert_eq!(attr("[data-testid=rotate]", "data-rotation").await, "0");
    app.quit().await;
}

/// The mouse in the real window (WebDriver pointer and wheel input): a left
/// drag right by 100 px and down by 50 px widens the window and lowers its
/// centre by exactly what the viewer's rule says (twice the image's value
/// range per viewport width), the wheel zooms in, a right drag pans.
#[tokio::test(flavor = "current_thread")]
#[ignore = "needs a display and tauri-driver: run by `make test` under Xvfb"]
async fn dragging_sets_the_window_by_the_expected_amount_the_wheel_zooms_and_a_right_drag_pans() {
    use fantoccini::actions::{InputSource, MouseActions, PointerAction, WheelAction, WheelActions, MOUSE_BUTTON_LEFT, MOUSE_BUTTON_RIGHT};
    use std::time::Duration;
    let cr = dev_set_file("pydicom-data-1.0.0/data_store/data/RG3_UNCI.dcm");
    let app = App::launch_with(&[cr.to_str().unwrap()]).await;
    app.wait_for_text("[data-testid=viewer-overlay]", "W 1024 C 550").await;
    // The frame is on screen and the viewport measured (its width is 1 until then).
    app.wait_for_text("[data-testid=viewer-zoom]", "%").await;
    let canvas = app.client.find(fantoccini::Locator::Css("[data-testid=viewer-canvas]")).await.unwrap();
    let number = |s: Option<String>| s.unwrap_or_default();
    let range: Vec<f64> = number(canvas.attr("data-range").await.unwrap()).split(' ').map(|v| v.parse().unwrap()).collect();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let viewport: f64 = loop {
        let w: f64 = number(canvas.attr("data-viewport-width").await.unwrap()).parse().unwrap();
        if w > 1.0 {
            break w;
        }
        assert!(std::time::Instant::now() < deadline, "the viewport was never measured");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let per_pixel = (range[1] - range[0]).max(1.0) / viewport * 2.0;

    let drag = |button: u64, dx: f64, dy: f64| {
        MouseActions::new("mouse".into())
            .then(PointerAction::MoveToElement { element: canvas.clone(), duration: None, x: 0.0, y: 0.0 })
            .then(PointerAction::Down { button })
            .then(PointerAction::MoveBy { duration: Some(Duration::from_millis(150)), x: dx, y: 0.0 })
            .then(PointerAction::MoveBy { duration: Some(Duration::from_millis(150)), x: 0.0, y: dy })
            .then(PointerAction::Up { button })
    };
    app.client.perform_actions(drag(MOUSE_BUTTON_LEFT, 100.0, 50.0)).await.unwrap();
    let overlay = app.wait_for_text("[data-testid=viewer-overlay]", "custom").await;
    let value = |key: &str| -> f64 {
        let at = overlay.find(key).unwrap_or_else(|| panic!("{key} in {overlay}")) + key.len();
        overlay[at..].split_whitespace().next().unwrap().parse().unwrap()
    };
    let (width, centre) = (value("W "), value("C "));
    assert!((width - (1024.0 + 100.0 * per_pixel)).abs() <= 0.06, "W {width}, expected {}", 1024.0 + 100.0 * per_pixel);
    assert!((centre - (550.0 - 50.0 * per_pixel)).abs() <= 0.06, "C {centre}, expected {}", 550.0 - 50.0 * per_pixel);

    // The wheel over the image zooms in.
    let fitted: f64 = app.text_of("[data-testid=viewer-zoom]").await.trim_end_matches('%').parse().unwrap();
    let rect = app
        .client
        .execute("const r = arguments[0].getBoundingClientRect(); return [Math.round(r.left + r.width / 2), Math.round(r.top + r.height / 2)];", vec![serde_json::to_value(&canvas).unwrap()])
        .await
        .unwrap();
    let (cx, cy) = (rect[0].as_i64().unwrap(), rect[1].as_i64().unwrap());
    let wheel = WheelActions::new("wheel".into()).then(WheelAction::Scroll { duration: None, x: cx, y: cy, delta_x: 0, delta_y: -300 });
    app.client.perform_actions(wheel).await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let zoomed: f64 = app.text_of("[data-testid=viewer-zoom]").await.trim_end_matches('%').parse().unwrap();
    assert!(zoomed > fitted * 1.3, "the wheel zoomed from {fitted}% to {zoomed}%");

    // A right drag pans by the distance dragged.
    let pan = || async {
        let pan = number(canvas.attr("data-pan").await.unwrap());
        pan.split(' ').map(|v| v.parse::<f64>().unwrap()).collect::<Vec<_>>()
    };
    let before = pan().await;
    app.client.perform_actions(drag(MOUSE_BUTTON_RIGHT, 40.0, -30.0)).await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let after = pan().await;
    let moved = (after[0] - before[0], after[1] - before[1]);
    assert!((moved.0 - 40.0).abs() <= 1.0 && (moved.1 + 30.0).abs() <= 1.0, "panned by {moved:?}");
    app.screenshot("viewer-window-zoom-pan").await;
    app.quit().await;
}
