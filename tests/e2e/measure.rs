//! Measuring in the real window on a real DX (deid-data's cat.dcm: 3072 ×
//! 2614, Pixel Spacing 0.14 \ 0.14 mm): a length in mm from the file's
//! spacing, an angle, both kept with the session across a restart, and one
//! deleted again.

use fantoccini::actions::{InputSource, MouseActions, PointerAction, MOUSE_BUTTON_LEFT};

use crate::harness::App;
use crate::viewer::dev_set_file;

/// Clicks the canvas at (dx, dy) CSS pixels from its centre.
async fn click_at(app: &App, dx: f64, dy: f64) {
    let canvas = app.client.find(fantoccini::Locator::Css("[data-testid=viewer-canvas]")).await.unwrap();
    let click = MouseActions::new("mouse".into())
        .then(PointerAction::MoveToElement { element: canvas, duration: None, x: dx, y: dy })
        .then(PointerAction::Down { button: MOUSE_BUTTON_LEFT })
        .then(PointerAction::Up { button: MOUSE_BUTTON_LEFT });
    app.client.perform_actions(click).await.unwrap();
}

async fn labels(app: &App) -> Vec<String> {
    let mut out = Vec::new();
    for el in app.client.find_all(fantoccini::Locator::Css("[data-testid=measurement-item]")).await.unwrap() {
        out.push(el.text().await.unwrap());
    }
    out
}

#[tokio::test(flavor = "current_thread")]
#[ignore = "needs a display and tauri-driver: run by `make test` under Xvfb"]
async fn a_length_in_mm_and_an_angle_are_measured_kept_and_deleted() {
    let cat = dev_set_file("deid-data-0.0.20/deid_data/data/animals/cat.dcm");
    let app = App::launch_with(&[cat.to_str().unwrap()]).await;
    app.wait_for_count("[data-testid=session-item][aria-current=true]", 1).await;
    app.wait_for_text("[data-testid=viewer-overlay]", "W ").await;
    app.wait_for_text("[data-testid=viewer-zoom]", "%").await; // the frame is on screen, fitted
    let canvas = app.client.find(fantoccini::Locator::Css("[data-testid=viewer-canvas]")).await.unwrap();
    let zoom: f64 = canvas.attr("data-zoom").await.unwrap().unwrap().parse().unwrap();

    // L, then two clicks 200 CSS px apart across the image: 200 / zoom columns of 0.14 mm.
    let body = app.client.find(fantoccini::Locator::Css("body")).await.unwrap();
    body.send_keys("l").await.unwrap();
    app.wait_for_text("[data-testid=measure-hint]", "click 2 more points").await;
    click_at(&app, -100.0, 0.0).await;
    app.wait_for_text("[data-testid=measure-hint]", "click 1 more point").await;
    click_at(&app, 100.0, 0.0).await;
    app.wait_for_count("[data-testid=measurement-item]", 1).await;
    let length = labels(&app).await.remove(0);
    assert!(length.starts_with("Length ") && length.contains(" mm") && !length.contains("detector"), "{length}");
    let mm: f64 = length.trim_start_matches("Length ").split(' ').next().unwrap().parse().unwrap();
    let expected = 200.0 / zoom * 0.14;
    // WebDriver places the pointer on whole CSS pixels: each end within one.
    let slack = 2.0 / zoom * 0.14 + 0.05;
    assert!((mm - expected).abs() <= slack, "{mm} mm, expected {expected:.2} ± {slack:.2}");

    // A, then three clicks making a right angle at the second.
    body.send_keys("a").await.unwrap();
    app.wait_for_text("[data-testid=measure-hint]", "click 3 more points").await;
    for (dx, dy) in [(0.0, -120.0), (0.0, 0.0), (150.0, 0.0)] {
        click_at(&app, dx, dy).await;
    }
    app.wait_for_count("[data-testid=measurement-item]", 2).await;
    assert!(labels(&app).await[1].starts_with("Angle 90.0°"), "{:?}", labels(&app).await);
    // Both are drawn on the image.
    let drawn = app.client.find_all(fantoccini::Locator::Css("[data-testid=measurement-label]")).await.unwrap().len();
    assert_eq!(drawn, 2);
    app.screenshot("measure").await;

    // Kept with the session: after a restart, opening it shows both.
    let app = app.restart().await;
    app.wait_for_count("[data-testid=session-item]", 1).await;
    app.click("[data-testid=session-item]").await;
    app.wait_for_count("[data-testid=measurement-item]", 2).await;
    let again = labels(&app).await;
    assert!(again[0].starts_with(&format!("Length {mm:.1} mm")) && again[1].starts_with("Angle 90.0°"), "{again:?}");

    // Delete the length: the angle stays.
    app.click("[data-testid=measurement-delete]").await;
    app.wait_for_count("[data-testid=measurement-item]", 1).await;
    assert!(labels(&app).await[0].starts_with("Angle"), "{:?}", labels(&app).await);
    app.quit().await;
}
