//! PNG and JPEG files as images: 8- and 16-bit grey, RGB, RGBA (alpha
//! composited onto white, as the model's processor does).

use std::path::Path;

use image::DynamicImage;

use super::error::ImagingError;
use super::lut::{ModalityLut, VoiTable};
use super::pixels::Samples;
use super::study::{Image, KeyTags, PatientTags, Photometric};

pub fn open(path: &Path, bytes: &[u8]) -> Result<Image, ImagingError> {
    let img = image::load_from_memory(bytes).map_err(|e| ImagingError::unreadable(path, e.to_string()))?;
    let (w, h) = (img.width(), img.height());
    super::check_size(path, w as u64, h as u64, 1, 3 * 2)?;
    let (photometric, samples, bits, spp) = match &img {
        DynamicImage::ImageLuma8(g) => (Photometric::Monochrome2, Samples::U8(g.as_raw().clone()), 8, 1),
        DynamicImage::ImageLuma16(g) => (Photometric::Monochrome2, Samples::U16(g.as_raw().clone()), 16, 1),
        DynamicImage::ImageLumaA8(_) | DynamicImage::ImageLumaA16(_) => {
            let rgb = medgemma_models::processor::to_rgb_on_white(&img);
            let grey: Vec<u8> = rgb.pixels().map(|p| p.0[0]).collect();
            (Photometric::Monochrome2, Samples::U8(grey), 8, 1)
        }
        DynamicImage::ImageRgb16(c) => (Photometric::Rgb, Samples::U16(c.as_raw().clone()), 16, 3),
        DynamicImage::ImageRgb8(c) => (Photometric::Rgb, Samples::U8(c.as_raw().clone()), 8, 3),
        _ => {
            let rgb = medgemma_models::processor::to_rgb_on_white(&img);
            (Photometric::Rgb, Samples::U8(rgb.into_raw()), 8, 3)
        }
    };
    // An 8-bit file is shown as authored (an identity table); a 16-bit grey
    // file has no intended window, so the viewer starts from its min/max.
    let voi_tables = if bits == 8 && photometric.is_monochrome() {
        vec![VoiTable { first_mapped: 0, bits: 8, data: (0..256).map(f64::from).collect(), explanation: Some("as stored".into()) }]
    } else {
        Vec::new()
    };
    Ok(Image {
        source: path.to_path_buf(),
        rows: h,
        columns: w,
        samples_per_pixel: spp,
        tags: KeyTags {
            rows: h,
            columns: w,
            photometric_interpretation: match photometric {
                Photometric::Rgb => "RGB".into(),
                _ => "MONOCHROME2".into(),
            },
            bits_allocated: bits,
            bits_stored: bits,
            frames: 1,
            ..Default::default()
        },
        photometric,
        bits_stored: bits,
        frames: vec![samples],
        modality_lut: ModalityLut::Identity,
        windows: Vec::new(),
        voi_tables,
        patient: PatientTags::default(),
    })
}
