//! The exact image handed to the model: the default display (or the chosen
//! window) in 8 bits, grey replicated to RGB. The processor then resizes it.

use image::RgbImage;

use super::error::ImagingError;
use super::lut::Window;
use super::study::Study;

/// `frame` of the study's first image, rendered as the viewer shows it by default.
pub fn model_input(study: &Study, frame: usize, window: Option<&Window>) -> Result<RgbImage, ImagingError> {
    let image = study.images.first().ok_or_else(|| ImagingError::EmptyFolder { path: study.source.clone() })?;
    if frame >= image.frames.len() {
        return Err(ImagingError::NoSuchFrame { path: image.source.clone(), frame, frames: image.frames.len() });
    }
    let (r, _) = image.render(frame, window);
    let rgb: Vec<u8> = if r.channels == 1 { r.pixels.iter().flat_map(|&v| [v, v, v]).collect() } else { r.pixels };
    RgbImage::from_raw(r.width, r.height, rgb).ok_or_else(|| ImagingError::unreadable(&image.source, "the rendered frame has the wrong size"))
}
