//! The exact image handed to the model: the default display (or the chosen
//! window) in 8 bits, grey replicated to RGB. The processor then resizes it.

use image::RgbImage;

use super::error::ImagingError;
use super::lut::Window;
use super::study::Study;

/// Frame `frame` of the study's image `image`, rendered as the viewer shows it
/// by default (or with `window`).
pub fn model_input(study: &Study, image: usize, frame: usize, window: Option<&Window>) -> Result<RgbImage, ImagingError> {
    let count = study.images.len();
    let Some(img) = study.images.get(image) else {
        return Err(match count {
            0 => ImagingError::EmptyFolder { path: study.source.clone() },
            _ => ImagingError::NoSuchImage { path: study.source.clone(), image, images: count },
        });
    };
    if frame >= img.frames.len() {
        return Err(ImagingError::NoSuchFrame { path: img.source.clone(), frame, frames: img.frames.len() });
    }
    let (r, _) = img.render(frame, window);
    let rgb: Vec<u8> = if r.channels == 1 { r.pixels.iter().flat_map(|&v| [v, v, v]).collect() } else { r.pixels };
    RgbImage::from_raw(r.width, r.height, rgb).ok_or_else(|| ImagingError::unreadable(&img.source, "the rendered frame has the wrong size"))
}
