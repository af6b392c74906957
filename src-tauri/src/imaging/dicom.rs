//! DICOM files → `Image`: dicom-rs parses the data set (with or without
//! preamble and File Meta, stopping at the pixel data so trailing bytes do not
//! matter); the attributes are read here, tolerating VR UN; pixels are decoded
//! by `codecs` to the values pydicom returns.

use std::path::Path;

use dicom_core::header::HasLength;
use dicom_core::{DicomValue, Tag, VR};
use dicom_dictionary_std::{tags, uids};
use dicom_object::{InMemDicomObject, OpenFileOptions};
use dicom_transfer_syntax_registry::{TransferSyntaxIndex, TransferSyntaxRegistry};

use super::codecs::{self, Layout};
use super::element_lengths;
use super::error::ImagingError;
use super::lut::{ModalityLut, VoiFunction, VoiTable, Window};
use super::study::{Image, KeyTags, Palette, PatientTags, Photometric};

/// The image files a DICOMDIR (a media directory, PS3.10 §8 / PS3.3 F.3)
/// names, relative to the folder it is in; `None` when the file is not a
/// DICOMDIR. A Referenced File ID that leaves that folder (an absolute path,
/// "..") is left out: a directory points into its own medium only.
pub fn directory_files(path: &Path, bytes: &[u8]) -> Option<Vec<std::path::PathBuf>> {
    // Only a file whose File Meta names the Media Storage Directory SOP Class
    // is parsed here: every other file is parsed once, by `open`.
    let meta = &bytes[..bytes.len().min(1024)];
    let class = uids::MEDIA_STORAGE_DIRECTORY_STORAGE.as_bytes();
    // The UID itself, not a longer one it begins (the next byte is padding or the next tag).
    let named = meta.windows(class.len() + 1).any(|w| w.starts_with(class) && !matches!(w[class.len()], b'0'..=b'9' | b'.'));
    if !named {
        return None;
    }
    let (obj, _) = parse(path, bytes).ok()?;
    let records = obj.get(tags::DIRECTORY_RECORD_SEQUENCE)?;
    let items = records.items()?;
    let root = path.parent().unwrap_or(Path::new("."));
    let mut files = Vec::new();
    for item in items {
        let Some(id) = item.get(tags::REFERENCED_FILE_ID).and_then(|e| e.to_multi_str().ok()) else { continue };
        let parts: Vec<&str> = id.iter().map(|p| p.trim()).filter(|p| !p.is_empty()).collect();
        if parts.is_empty() || parts.iter().any(|p| *p == ".." || *p == "." || p.contains(['/', '\\'])) {
            continue;
        }
        let file = found_on_medium(root, &parts);
        if !files.contains(&file) {
            files.push(file);
        }
    }
    Some(files)
}

/// `parts` under `root`, as named, or (media written in capitals, copied
/// where names were lowered) in lower case where that exists instead.
fn found_on_medium(root: &Path, parts: &[&str]) -> std::path::PathBuf {
    let exact: std::path::PathBuf = parts.iter().fold(root.to_path_buf(), |p, c| p.join(c));
    if exact.exists() {
        return exact;
    }
    let lower: std::path::PathBuf = parts.iter().fold(root.to_path_buf(), |p, c| p.join(c.to_ascii_lowercase()));
    if lower.exists() { lower } else { exact }
}

pub fn open(path: &Path, bytes: &[u8]) -> Result<Image, ImagingError> {
    let (obj, ts_uid) = parse(path, bytes)?;
    let a = Attrs { obj: &obj, path };
    if obj.get(tags::PIXEL_DATA).is_none() {
        let what = a.text(tags::MODALITY).map(|m| format!("a {m} object")).unwrap_or_else(|| "no pixel data".into());
        return Err(ImagingError::NoImage { path: path.into(), reason: what });
    }
    let rows = a.required_uint(tags::ROWS, "Rows")?;
    let columns = a.required_uint(tags::COLUMNS, "Columns")?;
    let bits_allocated = a.required_uint(tags::BITS_ALLOCATED, "Bits Allocated")? as u16;
    let bits_stored = a.uint(tags::BITS_STORED)?.map_or(bits_allocated, |b| b as u16);
    let spp = a.uint(tags::SAMPLES_PER_PIXEL)?.unwrap_or(1) as u16;
    let signed = a.uint(tags::PIXEL_REPRESENTATION)?.unwrap_or(0) == 1;
    let planar = a.uint(tags::PLANAR_CONFIGURATION)?.unwrap_or(0) == 1;
    let frames = match a.text(tags::NUMBER_OF_FRAMES) {
        None => 1,
        Some(t) => t.trim().parse::<u32>().map_err(|_| ImagingError::unreadable(path, format!("Number of Frames is \"{t}\", not a number")))?,
    }
    .max(1);
    let pi = a.text(tags::PHOTOMETRIC_INTERPRETATION).unwrap_or_else(|| "MONOCHROME2".into()).trim().to_ascii_uppercase();
    if !matches!(bits_allocated, 1 | 8 | 16 | 32) || bits_stored == 0 || bits_stored > bits_allocated || !matches!(spp, 1 | 3) {
        return Err(ImagingError::Unsupported {
            path: path.into(),
            what: format!("{bits_allocated}-bit pixels with {bits_stored} bits stored and {spp} samples per pixel"),
        });
    }
    super::check_size(path, rows as u64, columns as u64, frames as u64, (bits_allocated as u64).div_ceil(8) * spp as u64)?;

    let layout = Layout {
        rows: rows as usize,
        columns: columns as usize,
        samples: spp as usize,
        bits_allocated,
        bits_stored,
        signed,
        planar,
        frames: frames as usize,
        photometric: pi.clone(),
        big_endian: ts_uid == "1.2.840.10008.1.2.2",
    };
    let pixel = obj.get(tags::PIXEL_DATA).ok_or_else(|| ImagingError::NoImage { path: path.into(), reason: "no pixel data".into() })?;
    let decoded = match pixel.value() {
        DicomValue::PixelSequence(seq) => codecs::decode_encapsulated(path, &ts_uid, &layout, seq.fragments(), seq.offset_table())?,
        DicomValue::Primitive(p) => {
            if codecs::is_encapsulated_syntax(&ts_uid) {
                return Err(ImagingError::unreadable(path, "its transfer syntax is compressed but the pixel data is not encapsulated"));
            }
            codecs::decode_native(path, &layout, &p.to_bytes(), pixel.vr() == VR::OW)?
        }
        DicomValue::Sequence(_) => return Err(ImagingError::unreadable(path, "its pixel data is a sequence, not an image")),
    };

    let photometric = match decoded.photometric.as_str() {
        "MONOCHROME1" => Photometric::Monochrome1,
        "MONOCHROME2" => Photometric::Monochrome2,
        "RGB" => Photometric::Rgb,
        "PALETTE COLOR" => Photometric::PaletteColor(a.palette()?),
        other => return Err(ImagingError::Unsupported { path: path.into(), what: format!("the {other} colour model") }),
    };
    let monochrome = photometric.is_monochrome();
    let modality_lut = if monochrome { a.modality_lut(signed)? } else { ModalityLut::Identity };
    let (windows, voi_tables) = if monochrome { (a.windows(), a.voi_tables(signed)?) } else { (Vec::new(), Vec::new()) };
    let spacing = a.spacing(tags::PIXEL_SPACING).map(|s| (s, "Pixel Spacing"))
        .or_else(|| a.spacing(tags::IMAGER_PIXEL_SPACING).map(|s| (s, "Imager Pixel Spacing")));
    let ts_name = TransferSyntaxRegistry.get(&ts_uid).map(|t| t.name().to_owned());
    let tags = KeyTags {
        modality: a.text(tags::MODALITY),
        view_position: a.text(tags::VIEW_POSITION),
        body_part: a.text(tags::BODY_PART_EXAMINED),
        study_date: a.text(tags::STUDY_DATE),
        series_description: a.text(tags::SERIES_DESCRIPTION),
        series_instance_uid: a.text(tags::SERIES_INSTANCE_UID),
        study_instance_uid: a.text(tags::STUDY_INSTANCE_UID),
        instance_number: a.text(tags::INSTANCE_NUMBER).and_then(|t| t.trim().parse().ok()),
        series_number: a.text(tags::SERIES_NUMBER).and_then(|t| t.trim().parse().ok()),
        rows,
        columns,
        pixel_spacing_mm: spacing.map(|(s, _)| s),
        pixel_spacing_attribute: spacing.map(|(_, attribute)| attribute),
        transfer_syntax: Some(ts_uid.clone()),
        transfer_syntax_name: ts_name,
        photometric_interpretation: pi,
        bits_allocated,
        bits_stored,
        signed,
        frames,
        manufacturer: a.text(tags::MANUFACTURER),
    };
    let patient = PatientTags {
        patient_name: a.text(tags::PATIENT_NAME),
        patient_id: a.text(tags::PATIENT_ID),
        patient_birth_date: a.text(tags::PATIENT_BIRTH_DATE),
        patient_sex: a.text(tags::PATIENT_SEX),
        accession_number: a.text(tags::ACCESSION_NUMBER),
        institution_name: a.text(tags::INSTITUTION_NAME),
        referring_physician: a.text(tags::REFERRING_PHYSICIAN_NAME),
    };
    Ok(Image {
        source: path.into(),
        rows,
        columns,
        samples_per_pixel: decoded.samples as u16,
        photometric,
        bits_stored: decoded.bits_stored,
        frames: decoded.frames,
        modality_lut,
        windows,
        voi_tables,
        tags,
        patient,
    })
}

/// The data set and its transfer syntax. Files with a preamble or "DICM" at
/// the start are read with their File Meta; files without any are read as a
/// bare Implicit VR Little Endian data set, as pydicom's `force=True` does.
fn parse(path: &Path, bytes: &[u8]) -> Result<(InMemDicomObject, String), ImagingError> {
    let has_marker = bytes.get(128..132) == Some(b"DICM") || bytes.starts_with(b"DICM");
    // Before dicom-rs allocates what the file's lengths say.
    let lengths = element_lengths::check(bytes);
    if has_marker {
        let pixel_data_end = lengths.map_err(|why| ImagingError::unreadable(path, why))?;
        let read = |b: &[u8]| OpenFileOptions::new().read_to(tags::PIXEL_DATA).from_reader(b);
        // The reader reads one more element after the pixel data: trailing
        // bytes must not reach it (too short for a header they fail it; a
        // header stating gigabytes would be allocated), so it gets the file
        // up to the end of the pixel data.
        let end = pixel_data_end.or_else(|| end_of_pixel_data(bytes)).unwrap_or(bytes.len());
        let obj = read(&bytes[..end])
            .map_err(|e| ImagingError::unreadable(path, error_chain(&e)))?;
        let ts = obj.meta().transfer_syntax().trim_end_matches(['\0', ' ']).to_owned();
        if TransferSyntaxRegistry.get(&ts).is_none() {
            return Err(ImagingError::Unsupported { path: path.into(), what: format!("the transfer syntax {ts}") });
        }
        return Ok((obj.into_inner(), ts));
    }
    let pixel_data_end = lengths.map_err(|why| ImagingError::NotAnImage {
        path: path.into(),
        reason: format!("it is not DICOM (no \"DICM\" marker) and does not read as a bare data set: {why}"),
    })?;
    let bytes = &bytes[..pixel_data_end.unwrap_or(bytes.len())];
    let ts = TransferSyntaxRegistry
        .get(uids::IMPLICIT_VR_LITTLE_ENDIAN)
        .ok_or_else(|| ImagingError::unreadable(path, "no Implicit VR Little Endian codec"))?;
    let obj = InMemDicomObject::read_dataset_with_ts(std::io::Cursor::new(bytes), ts).map_err(|e| ImagingError::NotAnImage {
        path: path.into(),
        reason: format!("it is not DICOM (no \"DICM\" marker) and does not read as a bare data set: {}", error_chain(&e)),
    })?;
    // A bare data set must at least look like an image to be taken for DICOM.
    if obj.get(tags::ROWS).is_none() && obj.get(tags::PIXEL_DATA).is_none() && obj.get(tags::SOP_CLASS_UID).is_none() {
        return Err(ImagingError::NotAnImage { path: path.into(), reason: "it has no DICOM image attributes".into() });
    }
    Ok((obj, uids::IMPLICIT_VR_LITTLE_ENDIAN.to_owned()))
}

/// Where the Pixel Data element ends (explicit or implicit VR little endian,
/// defined or undefined length), found by scanning for its tag.
fn end_of_pixel_data(bytes: &[u8]) -> Option<usize> {
    let tag = [0xE0, 0x7F, 0x10, 0x00];
    let mut from = 0;
    while let Some(off) = bytes[from..].windows(4).position(|w| w == tag) {
        let at = from + off;
        from = at + 4;
        let vr = bytes.get(at + 4..at + 6)?;
        let (len_at, header) = if matches!(vr, b"OB" | b"OW" | b"OF" | b"OD" | b"OL" | b"UN") { (at + 8, 12) } else { (at + 4, 8) };
        let len = u32::from_le_bytes(bytes.get(len_at..len_at + 4)?.try_into().ok()?);
        if len == u32::MAX {
            // Encapsulated: ends after the sequence delimiter (FFFE,E0DD).
            let delim = [0xFE, 0xFF, 0xDD, 0xE0, 0, 0, 0, 0];
            let rest = &bytes[at + header..];
            return rest.windows(8).position(|w| w == delim).map(|p| at + header + p + 8);
        }
        let end = at + header + len as usize;
        if end <= bytes.len() {
            return Some(end);
        }
    }
    None
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut msg = e.to_string();
    let mut src = e.source();
    while let Some(s) = src {
        msg.push_str(": ");
        msg.push_str(&s.to_string());
        src = s.source();
    }
    msg
}

/// Attribute access that tolerates VR UN (values re-read by their dictionary type).
struct Attrs<'a> {
    obj: &'a InMemDicomObject,
    path: &'a Path,
}

impl Attrs<'_> {
    fn text(&self, tag: Tag) -> Option<String> {
        let e = self.obj.get(tag)?;
        let s = if e.vr() == VR::UN {
            String::from_utf8_lossy(&e.to_bytes().ok()?).into_owned()
        } else {
            e.to_str().ok()?.into_owned()
        };
        let s = s.trim_matches(|c: char| c == '\0' || c.is_whitespace()).to_owned();
        (!s.is_empty()).then_some(s)
    }

    fn floats(&self, tag: Tag) -> Option<Vec<f64>> {
        let e = self.obj.get(tag)?;
        if matches!(e.vr(), VR::UN | VR::DS | VR::IS) {
            let t = self.text(tag)?;
            return t.split('\\').map(|p| p.trim().parse::<f64>().ok()).collect();
        }
        e.to_multi_float64().ok()
    }

    /// A row and column spacing in mm: two positive, finite numbers, or none.
    fn spacing(&self, tag: Tag) -> Option<(f64, f64)> {
        match self.floats(tag)?.as_slice() {
            &[row, column, ..] if [row, column].iter().all(|v| v.is_finite() && *v > 0.0) => Some((row, column)),
            _ => None,
        }
    }

    /// An unsigned integer attribute (US, or UN holding little-endian bytes).
    fn uint(&self, tag: Tag) -> Result<Option<u32>, ImagingError> {
        let Some(e) = self.obj.get(tag) else { return Ok(None) };
        if e.vr() == VR::UN {
            let b = e.to_bytes().map_err(|err| ImagingError::unreadable(self.path, err.to_string()))?;
            return Ok(match b.len() {
                2 => Some(u16::from_le_bytes([b[0], b[1]]) as u32),
                4 => Some(u32::from_le_bytes([b[0], b[1], b[2], b[3]])),
                0 => None,
                _ => return Err(ImagingError::unreadable(self.path, format!("attribute {tag} has {} bytes", b.len()))),
            });
        }
        if matches!(e.vr(), VR::IS | VR::DS) {
            return Ok(self.text(tag).and_then(|t| t.parse().ok()));
        }
        match e.to_int::<u32>() {
            Ok(v) => Ok(Some(v)),
            Err(_) if e.is_empty() => Ok(None),
            Err(err) => Err(ImagingError::unreadable(self.path, format!("attribute {tag}: {err}"))),
        }
    }

    fn required_uint(&self, tag: Tag, name: &str) -> Result<u32, ImagingError> {
        self.uint(tag)?
            .ok_or_else(|| ImagingError::NoImage { path: self.path.into(), reason: format!("{name} is missing") })
    }

    /// 16-bit words of a LUT's data (US/OW/SS, or bytes as little-endian words).
    fn words(&self, item: &InMemDicomObject, tag: Tag, entries: usize, bits: u32) -> Result<Vec<u16>, ImagingError> {
        let e = item.get(tag).ok_or_else(|| ImagingError::unreadable(self.path, format!("a lookup table has no data {tag}")))?;
        if let Ok(w) = e.uint16_slice() {
            return Ok(w.to_vec());
        }
        if let Ok(w) = e.int16_slice() {
            return Ok(w.iter().map(|&v| v as u16).collect());
        }
        let b = e.to_bytes().map_err(|err| ImagingError::unreadable(self.path, err.to_string()))?;
        if bits <= 8 && b.len() == entries {
            return Ok(b.iter().map(|&v| v as u16).collect());
        }
        Ok(b.chunks_exact(2).map(|c| u16::from_le_bytes([c[0], c[1]])).collect())
    }

    fn descriptor(&self, item: &InMemDicomObject, tag: Tag, signed_first: bool) -> Result<(usize, i64, u32), ImagingError> {
        let e = item.get(tag).ok_or_else(|| ImagingError::unreadable(self.path, "a lookup table has no descriptor"))?;
        let v: Vec<i64> = if e.vr() == VR::UN {
            let b = e.to_bytes().map_err(|err| ImagingError::unreadable(self.path, err.to_string()))?;
            b.chunks_exact(2).map(|c| u16::from_le_bytes([c[0], c[1]]) as i64).collect()
        } else {
            e.to_multi_int::<i64>().map_err(|err| ImagingError::unreadable(self.path, err.to_string()))?
        };
        if v.len() < 3 {
            return Err(ImagingError::unreadable(self.path, "a lookup table descriptor has fewer than three values"));
        }
        let entries = if v[0] == 0 { 65536 } else { (v[0] as u16) as usize };
        let first = if signed_first { (v[1] as u16) as i16 as i64 } else { (v[1] as u16) as i64 };
        Ok((entries, first, v[2].clamp(1, 16) as u32))
    }

    fn modality_lut(&self, signed: bool) -> Result<ModalityLut, ImagingError> {
        if let Some(item) = self.obj.get(tags::MODALITY_LUT_SEQUENCE).and_then(|e| e.items()).and_then(|i| i.first()) {
            let (entries, first, bits) = self.descriptor(item, tags::LUT_DESCRIPTOR, signed)?;
            let data = self.words(item, tags::LUT_DATA, entries, bits)?;
            let explanation = item.get(tags::LUT_EXPLANATION).and_then(|e| e.to_str().ok()).map(|s| s.trim().to_owned());
            return Ok(ModalityLut::Table { first_mapped: first, data: data.into_iter().map(f64::from).collect(), explanation });
        }
        let slope = self.floats(tags::RESCALE_SLOPE).and_then(|v| v.first().copied());
        let intercept = self.floats(tags::RESCALE_INTERCEPT).and_then(|v| v.first().copied());
        Ok(match (slope, intercept) {
            (None, None) => ModalityLut::Identity,
            (s, i) => ModalityLut::Rescale { slope: s.unwrap_or(1.0), intercept: i.unwrap_or(0.0) },
        })
    }

    fn windows(&self) -> Vec<Window> {
        let centers = self.floats(tags::WINDOW_CENTER).unwrap_or_default();
        let widths = self.floats(tags::WINDOW_WIDTH).unwrap_or_default();
        let function = self.text(tags::VOILUT_FUNCTION).and_then(|f| VoiFunction::parse(&f)).unwrap_or(VoiFunction::Linear);
        let explanations: Vec<String> =
            self.text(tags::WINDOW_CENTER_WIDTH_EXPLANATION).map(|t| t.split('\\').map(|s| s.trim().to_owned()).collect()).unwrap_or_default();
        centers
            .iter()
            .zip(&widths)
            .enumerate()
            .map(|(i, (&center, &width))| Window { center, width, function, explanation: explanations.get(i).filter(|s| !s.is_empty()).cloned() })
            .collect()
    }

    fn voi_tables(&self, signed: bool) -> Result<Vec<VoiTable>, ImagingError> {
        let Some(items) = self.obj.get(tags::VOILUT_SEQUENCE).and_then(|e| e.items()) else { return Ok(Vec::new()) };
        items
            .iter()
            .map(|item| {
                let (entries, first, bits) = self.descriptor(item, tags::LUT_DESCRIPTOR, signed)?;
                let data = self.words(item, tags::LUT_DATA, entries, bits)?;
                let explanation = item.get(tags::LUT_EXPLANATION).and_then(|e| e.to_str().ok()).map(|s| s.trim().to_owned());
                Ok(VoiTable { first_mapped: first, bits, data: data.into_iter().map(f64::from).collect(), explanation })
            })
            .collect()
    }

    fn palette(&self) -> Result<Palette, ImagingError> {
        let descs = [
            tags::RED_PALETTE_COLOR_LOOKUP_TABLE_DESCRIPTOR,
            tags::GREEN_PALETTE_COLOR_LOOKUP_TABLE_DESCRIPTOR,
            tags::BLUE_PALETTE_COLOR_LOOKUP_TABLE_DESCRIPTOR,
        ];
        let data = [
            tags::RED_PALETTE_COLOR_LOOKUP_TABLE_DATA,
            tags::GREEN_PALETTE_COLOR_LOOKUP_TABLE_DATA,
            tags::BLUE_PALETTE_COLOR_LOOKUP_TABLE_DATA,
        ];
        let segmented = [
            tags::SEGMENTED_RED_PALETTE_COLOR_LOOKUP_TABLE_DATA,
            tags::SEGMENTED_GREEN_PALETTE_COLOR_LOOKUP_TABLE_DATA,
            tags::SEGMENTED_BLUE_PALETTE_COLOR_LOOKUP_TABLE_DATA,
        ];
        let mut tables = Vec::new();
        let mut first_mapped = 0;
        let mut bits = 8;
        for c in 0..3 {
            let (entries, first, b) = self.descriptor(self.obj, descs[c], false)?;
            first_mapped = first;
            bits = b;
            let table = if self.obj.get(segmented[c]).is_some() {
                let words = self.words(self.obj, segmented[c], 0, 16)?;
                codecs::expand_segmented_lut(&words, entries).map_err(|why| ImagingError::unreadable(self.path, why))?
            } else {
                self.words(self.obj, data[c], entries, b)?
            };
            tables.push(table);
        }
        let blue = tables.pop().unwrap_or_default();
        let green = tables.pop().unwrap_or_default();
        let red = tables.pop().unwrap_or_default();
        Ok(Palette { first_mapped, bits, red, green, blue })
    }
}
