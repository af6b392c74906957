//! What an opened file is: one or more images (series), each with every frame
//! at full depth, its LUTs and windows, and the tags a reader needs. Patient
//! identity is kept apart and shown only on request.

use std::path::PathBuf;

use serde::Serialize;

use super::lut::{ModalityLut, VoiTable, Window};
use super::pixels::Samples;

/// How the samples are to be read (after decoding: YBR is already RGB).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Photometric {
    /// Minimum value is white (most CR archives).
    Monochrome1,
    Monochrome2,
    Rgb,
    /// Indices into a colour palette.
    PaletteColor(Palette),
}

impl Photometric {
    pub fn is_monochrome(&self) -> bool {
        matches!(self, Photometric::Monochrome1 | Photometric::Monochrome2)
    }
}

/// Red, green and blue tables of a PALETTE COLOR image.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Palette {
    pub first_mapped: i64,
    /// Bits per entry (8 or 16).
    pub bits: u32,
    #[serde(skip)]
    pub red: Vec<u16>,
    #[serde(skip)]
    pub green: Vec<u16>,
    #[serde(skip)]
    pub blue: Vec<u16>,
}

/// The tags shown beside the image; nothing that identifies the patient.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct KeyTags {
    pub modality: Option<String>,
    pub view_position: Option<String>,
    pub body_part: Option<String>,
    pub study_date: Option<String>,
    pub series_description: Option<String>,
    pub series_instance_uid: Option<String>,
    /// Used to group files into studies; not shown or stored.
    #[serde(skip)]
    pub study_instance_uid: Option<String>,
    pub instance_number: Option<i64>,
    pub series_number: Option<i64>,
    pub rows: u32,
    pub columns: u32,
    /// Row and column spacing in mm, as the file states it: Pixel Spacing,
    /// else Imager Pixel Spacing; a stated value that is not a positive number
    /// (some writers put "0\\0" for "not calibrated") is no spacing.
    pub pixel_spacing_mm: Option<(f64, f64)>,
    /// Which of the two it is: "Pixel Spacing" (in the patient) or "Imager
    /// Pixel Spacing" (at the detector: a distance in the patient is smaller
    /// by the geometric magnification).
    pub pixel_spacing_attribute: Option<&'static str>,
    pub transfer_syntax: Option<String>,
    pub transfer_syntax_name: Option<String>,
    pub photometric_interpretation: String,
    pub bits_allocated: u16,
    pub bits_stored: u16,
    pub signed: bool,
    pub frames: u32,
    pub manufacturer: Option<String>,
}

/// Patient-identifying tags, kept apart: never shown or stored unless asked for.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct PatientTags {
    pub patient_name: Option<String>,
    pub patient_id: Option<String>,
    pub patient_birth_date: Option<String>,
    pub patient_sex: Option<String>,
    pub accession_number: Option<String>,
    pub institution_name: Option<String>,
    pub referring_physician: Option<String>,
}

/// One image: a DICOM instance, or a PNG/JPEG file.
#[derive(Debug, Clone)]
pub struct Image {
    pub source: PathBuf,
    pub rows: u32,
    pub columns: u32,
    pub samples_per_pixel: u16,
    pub photometric: Photometric,
    pub bits_stored: u16,
    pub frames: Vec<Samples>,
    pub modality_lut: ModalityLut,
    /// Every WindowCenter/Width pair, in file order, with its explanation.
    pub windows: Vec<Window>,
    pub voi_tables: Vec<VoiTable>,
    pub tags: KeyTags,
    pub patient: PatientTags,
}

/// What was opened: the images of one file, or of a folder grouped by series.
#[derive(Debug, Clone)]
pub struct Study {
    pub source: PathBuf,
    pub images: Vec<Image>,
}
