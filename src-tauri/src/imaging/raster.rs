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
            let rgb = rgb_on_white(&img);
            let grey: Vec<u8> = rgb.pixels().map(|p| p.0[0]).collect();
            (Photometric::Monochrome2, Samples::U8(grey), 8, 1)
        }
        DynamicImage::ImageRgb16(c) => (Photometric::Rgb, Samples::U16(c.as_raw().clone()), 16, 3),
        DynamicImage::ImageRgb8(c) => (Photometric::Rgb, Samples::U8(c.as_raw().clone()), 8, 3),
        _ => {
            let rgb = rgb_on_white(&img);
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

/// RGB as the model's reference processor makes it: through RGBA (16-bit
/// channels reduced to their top 8 bits), alpha-composited onto opaque white.
/// The runtime does the same to images it is handed directly; imaging may not
/// import the runtime (docs/architecture.md), and a drafting test pins that the
/// two agree on every value and alpha.
pub fn rgb_on_white(image: &DynamicImage) -> image::RgbImage {
    let rgba = image.to_rgba8();
    let mut out = image::RgbImage::new(rgba.width(), rgba.height());
    for (src, dst) in rgba.pixels().zip(out.pixels_mut()) {
        let [r, g, b, a] = src.0;
        dst.0 = [r, g, b].map(|c| over_white(c, a));
    }
    out
}

/// Pillow's `alpha_composite` of one channel over opaque white: its integer
/// arithmetic with 7 fraction bits, so the result is Pillow's to the bit.
fn over_white(c: u8, a: u8) -> u8 {
    let (c, a) = (u32::from(c), u32::from(a));
    if a == 0 {
        return 255;
    }
    let coef1 = ((a * 255 * 255) << 7) / (a * 255 + 255 * (255 - a));
    let tmp = c * coef1 + 255 * ((255 << 7) - coef1) + (0x80 << 7);
    ((((tmp >> 8) + tmp) >> 8) >> 7) as u8
}
