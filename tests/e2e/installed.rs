//! The installed package (tests/bundle/check.sh sets MEDGEMMA_DESK_APP to the
//! binary dpkg put in /usr/bin): launched with a DICOM path as a file
//! association does, the image shows.

use crate::harness::App;
use crate::viewer::dev_set_file;

#[tokio::test(flavor = "current_thread")]
#[ignore = "runs against the installed .deb: tests/bundle/check.sh"]
async fn the_installed_app_opens_a_dicom_given_on_its_command_line() {
    assert!(std::env::var_os("MEDGEMMA_DESK_APP").is_some(), "run through tests/bundle/check.sh (it installs the .deb)");
    let cr = dev_set_file("pydicom-data-1.0.0/data_store/data/RG3_UNCI.dcm");
    let app = App::launch_with(&[cr.to_str().unwrap()]).await;
    let overlay = app.wait_for_text("[data-testid=viewer-overlay]", "W 1024 C 550").await;
    assert!(overlay.contains("inverted"), "{overlay}");
    app.wait_for_text("[data-testid=image-details]", "1760 × 1760").await;
    app.screenshot("installed-app").await;
    app.quit().await;
}
