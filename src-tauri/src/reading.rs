//! The study on screen: what was opened (from a drop, the Open dialog or the
//! command line), or why it could not be. One place, so every way of opening
//! goes through the same code and the UI reads one state.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::Serialize;

use crate::imaging::{self, lut::{VoiFunction, Voi, Window}, Image, ImagingError, KeyTags, Study};

#[derive(Default)]
pub struct Reading {
    state: Mutex<ReadingState>,
}

#[derive(Default)]
struct ReadingState {
    study: Option<Study>,
    /// Why the last open failed: the current study stays on screen.
    error: Option<OpenFailure>,
    loading: Option<String>,
    /// The names to show for the study's images when they were opened from
    /// the store's copies (which are named by their hash).
    names: Vec<String>,
    /// A prior study shown beside this one (a stored session of the same
    /// patient), with its images' names and its session's title.
    comparison: Option<(Study, Vec<String>, String)>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OpenFailure {
    pub kind: String,
    pub message: String,
}

/// What the UI needs to show a study (pixels travel separately, as bytes).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StudyView {
    pub source: String,
    pub images: Vec<ImageView>,
    /// The images grouped by series, in the order they were opened.
    pub series: Vec<SeriesView>,
}

/// One series of the study: its images (by their place in `images`, in
/// instance order) and what a reader needs to tell it from the others.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SeriesView {
    pub number: Option<i64>,
    pub description: Option<String>,
    pub modality: Option<String>,
    pub images: Vec<usize>,
    /// Frames in all its images together.
    pub frames: usize,
}

/// Groups a study's images by Series Instance UID, keeping the order they
/// were opened in (a folder is opened in series and instance order); an
/// image without one (PNG, JPEG, a DICOM file that lacks it) is a series of
/// its own.
fn series_of(study: &Study) -> Vec<SeriesView> {
    let mut series: Vec<(Option<&str>, SeriesView)> = Vec::new();
    for (i, img) in study.images.iter().enumerate() {
        let uid = img.tags.series_instance_uid.as_deref();
        match series.iter_mut().find(|(u, _)| uid.is_some() && *u == uid) {
            Some((_, s)) => {
                s.images.push(i);
                s.frames += img.frames.len();
            }
            None => series.push((
                uid,
                SeriesView {
                    number: img.tags.series_number,
                    description: img.tags.series_description.clone().filter(|d| !d.trim().is_empty()),
                    modality: img.tags.modality.clone(),
                    images: vec![i],
                    frames: img.frames.len(),
                },
            )),
        }
    }
    series.into_iter().map(|(_, s)| s).collect()
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageView {
    pub file_name: String,
    pub rows: u32,
    pub columns: u32,
    pub frames: usize,
    /// "modality-f32": one little-endian f32 per pixel (window in the viewer);
    /// "rgb8": three bytes per pixel, shown as they are.
    pub pixel_format: &'static str,
    pub monochrome1: bool,
    pub windows: Vec<Window>,
    pub default_window: ViewerWindow,
    pub range: (f64, f64),
    pub tags: KeyTags,
}

/// A window as the viewer's shader applies it.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ViewerWindow {
    pub center: f64,
    pub width: f64,
    pub function: VoiFunction,
    pub label: String,
}

/// A prior study beside the one on screen: which session it is, and the study.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ComparisonView {
    pub title: String,
    pub study: StudyView,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ReadingSnapshot {
    pub study: Option<StudyView>,
    /// The prior shown beside the study, if any.
    pub comparison: Option<ComparisonView>,
    pub error: Option<OpenFailure>,
    pub loading: Option<String>,
}

fn viewer_window(img: &Image) -> ViewerWindow {
    match img.default_voi(0) {
        Voi::Window(w) => ViewerWindow {
            center: w.center,
            width: w.width,
            function: w.function,
            label: w.explanation.clone().unwrap_or_else(|| "DICOM window".into()),
        },
        Voi::MinMax { min, max } => ViewerWindow {
            center: (min + max) / 2.0,
            width: (max - min).max(1.0),
            function: VoiFunction::LinearExact,
            label: "full range".into(),
        },
        Voi::Table(t) => {
            let (min, max) = img.modality_range(0);
            ViewerWindow { center: (min + max) / 2.0, width: (max - min).max(1.0), function: VoiFunction::LinearExact, label: t.explanation.unwrap_or_else(|| "VOI LUT".into()) }
        }
    }
}

fn image_view(img: &Image, name: Option<&String>) -> ImageView {
    let monochrome = img.photometric.is_monochrome();
    ImageView {
        file_name: match name {
            Some(name) => name.clone(),
            None => img.source.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default(),
        },
        rows: img.rows,
        columns: img.columns,
        frames: img.frames.len(),
        pixel_format: if monochrome { "modality-f32" } else { "rgb8" },
        monochrome1: img.photometric == imaging::Photometric::Monochrome1,
        windows: img.windows.clone(),
        default_window: viewer_window(img),
        range: if monochrome { img.modality_range(0) } else { (0.0, 255.0) },
        tags: img.tags.clone(),
    }
}

fn study_view(study: &Study, names: &[String]) -> StudyView {
    StudyView {
        source: study.source.display().to_string(),
        images: study.images.iter().enumerate().map(|(i, img)| image_view(img, names.get(i))).collect(),
        series: series_of(study),
    }
}

impl Reading {
    fn lock(&self) -> std::sync::MutexGuard<'_, ReadingState> {
        // A panic while holding the lock leaves plain data behind: keep going.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn snapshot(&self) -> ReadingSnapshot {
        let s = self.lock();
        ReadingSnapshot {
            study: s.study.as_ref().map(|st| study_view(st, &s.names)),
            comparison: s.comparison.as_ref().map(|(st, names, title)| ComparisonView { title: title.clone(), study: study_view(st, names) }),
            error: s.error.clone(),
            loading: s.loading.clone(),
        }
    }

    /// Runs `f` on the study on screen, if any.
    pub fn with_study<T>(&self, f: impl FnOnce(&Study) -> T) -> Option<T> {
        self.lock().study.as_ref().map(f)
    }

    /// Opens the store's copies of a session's images (their bytes, read and
    /// opened by the store, labelled with their place in the data folder),
    /// shown under their original names. Returns whether they are now on screen.
    pub fn open_stored(&self, files: Vec<(PathBuf, Vec<u8>)>, names: Vec<String>) -> bool {
        let Some(first) = files.first().map(|(p, _)| p.clone()) else { return false };
        let opened = self.open_with(&first, files.len(), files.into_iter().map(|(p, b)| imaging::open_bytes(&p, &b).map(|image| Study { source: p, images: vec![image] })));
        if opened {
            self.lock().names = names;
        }
        opened
    }

    /// Shows the store's copies of a prior session's images beside the study
    /// on screen (`title` names it); `None` closes the comparison. An image
    /// that does not open is left out; none opening is an error in words.
    pub fn compare(&self, prior: Option<(Vec<(PathBuf, Vec<u8>)>, Vec<String>, String)>) -> Result<(), OpenFailure> {
        let Some((files, names, title)) = prior else {
            self.lock().comparison = None;
            return Ok(());
        };
        let mut images = Vec::new();
        let mut kept_names = Vec::new();
        let mut last_err = None;
        for ((path, bytes), name) in files.iter().zip(names) {
            match imaging::open_bytes(path, bytes) {
                Ok(image) => {
                    images.push(image);
                    kept_names.push(name);
                }
                Err(e) => last_err = Some(e),
            }
        }
        let Some(first) = files.first().map(|(p, _)| p.clone()) else {
            return Err(OpenFailure { kind: "no_image".into(), message: format!("{title} has no image kept") });
        };
        if images.is_empty() {
            let e = last_err.unwrap_or(ImagingError::EmptyFolder { path: first });
            return Err(OpenFailure { kind: e.kind().into(), message: e.to_string() });
        }
        self.lock().comparison = Some((Study { source: first, images }, kept_names, title));
        Ok(())
    }

    /// Opens `paths` (blocking: call off the UI thread). A folder or several
    /// files become one study; on failure the current study stays. Returns
    /// whether a new study is on screen.
    pub fn open(&self, paths: &[PathBuf]) -> bool {
        let Some(first) = paths.first() else { return false };
        self.open_with(first, paths.len(), paths.iter().map(|p| imaging::open(p)))
    }

    /// Puts the studies `opened` yields on screen as one study (named after
    /// `first`); on failure the current study stays.
    fn open_with(&self, first: &Path, count: usize, opened: impl Iterator<Item = Result<Study, ImagingError>>) -> bool {
        self.lock().loading = Some(first.display().to_string());
        let result = if count == 1 {
            opened.into_iter().next().unwrap_or_else(|| Err(ImagingError::EmptyFolder { path: first.to_path_buf() }))
        } else {
            let mut images = Vec::new();
            let mut last_err = None;
            for study in opened {
                match study {
                    Ok(s) => images.extend(s.images),
                    Err(e) => last_err = Some(e),
                }
            }
            match (images.is_empty(), last_err) {
                (true, Some(e)) => Err(e),
                _ => Ok(Study { source: first.to_path_buf(), images }),
            }
        };
        let mut s = self.lock();
        s.loading = None;
        match result {
            Ok(study) => {
                s.study = Some(study);
                s.error = None;
                s.names.clear();
                // A prior belongs beside the study it was opened for.
                s.comparison = None;
                true
            }
            Err(e) => {
                s.error = Some(OpenFailure { kind: e.kind().into(), message: e.to_string() });
                false
            }
        }
    }

    /// Pixels of one frame as bytes (see `ImageView::pixel_format`).
    pub fn frame_bytes(&self, image: usize, frame: usize) -> Result<Vec<u8>, OpenFailure> {
        self.frame_bytes_of(false, image, frame)
    }

    /// Pixels of one frame of the study (or, with `comparison`, of the prior beside it).
    pub fn frame_bytes_of(&self, comparison: bool, image: usize, frame: usize) -> Result<Vec<u8>, OpenFailure> {
        let s = self.lock();
        let missing = || OpenFailure { kind: "no_image".into(), message: "no image is open".into() };
        let study = if comparison { s.comparison.as_ref().map(|(st, _, _)| st) } else { s.study.as_ref() };
        let img = study.and_then(|st| st.images.get(image)).ok_or_else(missing)?;
        let samples = img.frames.get(frame).ok_or_else(missing)?;
        if img.photometric.is_monochrome() {
            let mut out = Vec::with_capacity(samples.len() * 4);
            for i in 0..samples.len() {
                out.extend_from_slice(&(img.modality_lut.apply(samples.get(i)) as f32).to_le_bytes());
            }
            Ok(out)
        } else {
            Ok(img.render(frame, None).0.pixels)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn png(dir: &std::path::Path) -> PathBuf {
        let p = dir.join("x.png");
        image::GrayImage::from_fn(4, 3, |x, y| image::Luma([(x * 10 + y) as u8])).save(&p).unwrap();
        p
    }

    #[test]
    fn a_failed_open_keeps_the_study_on_screen() {
        let tmp = tempfile::tempdir().unwrap();
        let r = Reading::default();
        r.open(&[png(tmp.path())]);
        assert!(r.snapshot().study.is_some());
        let bad = tmp.path().join("bad.dcm");
        std::fs::write(&bad, b"nonsense").unwrap();
        r.open(&[bad]);
        let snap = r.snapshot();
        assert!(snap.study.is_some(), "the previous study stays");
        assert!(snap.error.unwrap().message.contains("bad.dcm"));
    }

    #[test]
    fn monochrome_frames_travel_as_f32_modality_values() {
        let tmp = tempfile::tempdir().unwrap();
        let r = Reading::default();
        r.open(&[png(tmp.path())]);
        let bytes = r.frame_bytes(0, 0).unwrap();
        assert_eq!(bytes.len(), 4 * 3 * 4);
        assert_eq!(f32::from_le_bytes(bytes[4..8].try_into().unwrap()), 10.0);
        let v = r.snapshot().study.unwrap();
        assert_eq!(v.images[0].pixel_format, "modality-f32");
    }
}
