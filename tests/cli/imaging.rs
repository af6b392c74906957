//! `medgemma-desk info` and `render` as a user runs them.

use std::path::PathBuf;

use crate::{assert_one_line, medgemma_desk, stderr, stdout};

fn grey_png() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/tiny-gemma3/images/grey.png")
}

#[test]
fn render_writes_an_8_bit_png_as_authored() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out.png");
    let run = medgemma_desk(&["render", grey_png().to_str().unwrap(), "-o", out.to_str().unwrap()]);
    assert!(run.status.success(), "{}", stderr(&run));
    let ours = image::open(&out).unwrap().to_luma8();
    let original = image::open(grey_png()).unwrap().to_luma8();
    assert_eq!(ours, original);
}

#[test]
fn render_with_a_window_changes_the_contrast() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("narrow.png");
    let run = medgemma_desk(&["render", grey_png().to_str().unwrap(), "-o", out.to_str().unwrap(), "--window", "128,2"]);
    assert!(run.status.success(), "{}", stderr(&run));
    let px = image::open(&out).unwrap().to_luma8();
    assert!(px.pixels().all(|p| p.0[0] == 0 || p.0[0] == 255), "a width-2 window gives black and white only");
}

#[test]
fn render_of_a_damaged_file_exits_1_and_writes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let bad = tmp.path().join("broken.dcm");
    let mut bytes = vec![0u8; 128];
    bytes.extend_from_slice(b"DICM\x02\x00\x00\x00UL\x04\x00");
    std::fs::write(&bad, &bytes).unwrap();
    let out = tmp.path().join("out.png");
    let run = medgemma_desk(&["render", bad.to_str().unwrap(), "-o", out.to_str().unwrap()]);
    assert_eq!(run.status.code(), Some(1));
    let err = stderr(&run);
    assert_one_line(&err);
    assert!(err.contains("broken.dcm"), "{err}");
    assert!(!out.exists(), "no output file on failure");
}

#[test]
fn info_json_describes_the_image_without_patient_tags() {
    let run = medgemma_desk(&["info", grey_png().to_str().unwrap(), "--json"]);
    assert!(run.status.success(), "{}", stderr(&run));
    let v: serde_json::Value = serde_json::from_str(stdout(&run).trim()).unwrap();
    let img = &v["images"][0];
    assert_eq!(img["tags"]["columns"], 97);
    assert_eq!(img["tags"]["rows"], 61);
    assert!(img.get("patient").is_none(), "patient tags appear only with --phi");
    let with_phi = medgemma_desk(&["info", grey_png().to_str().unwrap(), "--json", "--phi"]);
    let v: serde_json::Value = serde_json::from_str(stdout(&with_phi).trim()).unwrap();
    assert!(v["images"][0].get("patient").is_some());
}
