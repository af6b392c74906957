//! Image preprocessing identical to the reference Gemma 3 image processor:
//! RGB (alpha composited onto white, as Pillow does), resize to the square
//! input with Pillow's resampler, rescale by 1/255, normalise by mean and std.

use std::path::Path;

use candle_core::{Device, Tensor};
use image::DynamicImage;
use serde_json::Value;

use crate::error::{ModelError, Result};
use crate::resample::{resize_u8, Filter};

#[derive(Debug, Clone, PartialEq)]
pub struct ImageProcessor {
    pub height: usize,
    pub width: usize,
    pub filter: Filter,
    pub rescale_factor: Option<f64>,
    pub mean: Option<[f32; 3]>,
    pub std: Option<[f32; 3]>,
}

impl ImageProcessor {
    /// Gemma 3 defaults at a given square size (896 for MedGemma).
    pub fn gemma3(size: usize) -> Self {
        Self {
            height: size,
            width: size,
            filter: Filter::Bilinear,
            rescale_factor: Some(1.0 / 255.0),
            mean: Some([0.5; 3]),
            std: Some([0.5; 3]),
        }
    }

    /// Reads `preprocessor_config.json`; absent keys take Gemma 3's defaults.
    pub fn from_file(path: &Path, default_size: usize) -> Result<Self> {
        let bad = |reason: String| ModelError::BadConfig { path: path.into(), reason };
        let text = std::fs::read_to_string(path).map_err(|source| ModelError::Io { path: path.into(), source })?;
        let v: Value = serde_json::from_str(&text).map_err(|e| bad(format!("not JSON: {e}")))?;
        let mut p = Self::gemma3(default_size);
        if let Some(size) = v.get("size") {
            let side = |k: &str| size.get(k).and_then(Value::as_u64).map(|n| n as usize);
            p.height = side("height").or(side("shortest_edge")).unwrap_or(default_size);
            p.width = side("width").or(side("shortest_edge")).unwrap_or(default_size);
        }
        if let Some(code) = v.get("resample").and_then(Value::as_u64) {
            p.filter = Filter::from_pil_code(code).ok_or_else(|| bad(format!("resample filter {code} is not supported")))?;
        }
        let flag = |k: &str| v.get(k).and_then(Value::as_bool).unwrap_or(true);
        p.rescale_factor = flag("do_rescale").then(|| v.get("rescale_factor").and_then(Value::as_f64).unwrap_or(1.0 / 255.0));
        let triple = |k: &str, d: f32| -> Result<[f32; 3]> {
            match v.get(k) {
                Some(Value::Array(a)) if a.len() == 3 => {
                    let f = |i: usize| a[i].as_f64().map(|x| x as f32).ok_or_else(|| bad(format!("{k} must hold numbers")));
                    Ok([f(0)?, f(1)?, f(2)?])
                }
                Some(Value::Number(n)) => Ok([n.as_f64().unwrap_or(d as f64) as f32; 3]),
                None => Ok([d; 3]),
                Some(other) => Err(bad(format!("{k} must be three numbers, not {other}"))),
            }
        };
        if flag("do_normalize") {
            p.mean = Some(triple("image_mean", 0.5)?);
            p.std = Some(triple("image_std", 0.5)?);
        } else {
            p.mean = None;
            p.std = None;
        }
        if p.height == 0 || p.width == 0 {
            return Err(bad("the image size must be positive".into()));
        }
        Ok(p)
    }

    /// The processor of a model folder whose vision tower takes `image_size`
    /// pixels: its `preprocessor_config.json`, or Gemma 3's defaults.
    pub(crate) fn for_model_dir(dir: &Path, image_size: usize) -> Result<Self> {
        let p = dir.join("preprocessor_config.json");
        if p.is_file() {
            Self::from_file(&p, image_size)
        } else {
            Ok(Self::gemma3(image_size))
        }
    }

    /// The exact 8-bit pixels the model sees, before rescaling and
    /// normalisation: RGB on white, resized to the model's input size.
    pub fn resized(&self, image: &DynamicImage) -> Result<image::RgbImage> {
        let rgb = to_rgb_on_white(image);
        let (w, h) = (rgb.width() as usize, rgb.height() as usize);
        if w == 0 || h == 0 {
            return Err(ModelError::Image("the image is empty".into()));
        }
        let resized = resize_u8(rgb.as_raw(), w, h, 3, self.width, self.height, self.filter);
        image::RgbImage::from_raw(self.width as u32, self.height as u32, resized)
            .ok_or_else(|| ModelError::Image("the resized image has the wrong size".into()))
    }

    /// The model's input [3, height, width] (f32) for one image.
    pub fn preprocess(&self, image: &DynamicImage, device: &Device) -> Result<Tensor> {
        let resized = self.resized(image)?.into_raw();
        let plane = self.width * self.height;
        let mut out = vec![0f32; 3 * plane];
        for (i, px) in resized.chunks_exact(3).enumerate() {
            for c in 0..3 {
                // As the reference: rescale in f64, store f32, normalise in f32.
                let mut v = match self.rescale_factor {
                    Some(s) => (px[c] as f64 * s) as f32,
                    None => px[c] as f32,
                };
                if let (Some(m), Some(s)) = (self.mean, self.std) {
                    v = (v - m[c]) / s[c];
                }
                out[c * plane + i] = v;
            }
        }
        Ok(Tensor::from_vec(out, (3, self.height, self.width), device)?)
    }
}

/// Reads an image file (PNG, JPEG) for the model.
pub fn open_image(path: &Path) -> Result<DynamicImage> {
    image::ImageReader::open(path)
        .map_err(|e| ModelError::Image(format!("{}: {e}", path.display())))?
        .with_guessed_format()
        .map_err(|e| ModelError::Image(format!("{}: {e}", path.display())))?
        .decode()
        .map_err(|e| ModelError::Image(format!("{}: {e}", path.display())))
}

/// RGB the way the reference gets it: every image goes through RGBA and is
/// alpha-composited onto opaque white with Pillow's integer arithmetic. 16-bit
/// images are first reduced to their top 8 bits.
pub fn to_rgb_on_white(image: &DynamicImage) -> image::RgbImage {
    let rgba = image.to_rgba8();
    let (w, h) = rgba.dimensions();
    let mut out = image::RgbImage::new(w, h);
    for (src, dst) in rgba.pixels().zip(out.pixels_mut()) {
        let [r, g, b, a] = src.0;
        dst.0 = [over_white(r, a), over_white(g, a), over_white(b, a)];
    }
    out
}

/// Pillow's `alpha_composite` of one channel over an opaque white background.
fn over_white(c: u8, a: u8) -> u8 {
    if a == 0 {
        return 255;
    }
    const BITS: u32 = 7;
    let (c, a) = (c as u32, a as u32);
    let blend = 255 * (255 - a);
    let outa255 = a * 255 + blend;
    let coef1 = a * 255 * 255 * (1 << BITS) / outa255;
    let coef2 = 255 * (1 << BITS) - coef1;
    let tmp = c * coef1 + 255 * coef2 + (0x80 << BITS);
    let div255 = ((tmp >> 8) + tmp) >> 8;
    (div255 >> BITS) as u8
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opaque_pixels_keep_their_value() {
        for c in 0..=255u8 {
            assert_eq!(over_white(c, 255), c);
        }
    }

    #[test]
    fn transparent_pixels_become_white() {
        assert_eq!(over_white(0, 0), 255);
        let half = over_white(0, 128);
        assert!((126..=128).contains(&half), "{half}");
    }

    #[test]
    fn grey_is_replicated_to_three_channels() {
        let img = DynamicImage::ImageLuma8(image::GrayImage::from_fn(5, 3, |x, y| image::Luma([(x * 40 + y) as u8])));
        let rgb = to_rgb_on_white(&img);
        assert!(rgb.pixels().all(|p| p.0[0] == p.0[1] && p.0[1] == p.0[2]));
    }

    #[test]
    fn an_image_already_at_the_input_size_is_left_as_it_is() {
        // What a draft keeps as "what the model saw" goes back through the
        // processor on a re-run: it must come out the same, pixel for pixel.
        let img = DynamicImage::ImageRgb8(image::RgbImage::from_fn(37, 23, |x, y| image::Rgb([(x * 7) as u8, (y * 11) as u8, (x * y) as u8])));
        let p = ImageProcessor::gemma3(16);
        let once = p.resized(&img).unwrap();
        let twice = p.resized(&DynamicImage::ImageRgb8(once.clone())).unwrap();
        assert_eq!(once, twice);
        let a = p.preprocess(&img, &Device::Cpu).unwrap().flatten_all().unwrap().to_vec1::<f32>().unwrap();
        let b = p.preprocess(&DynamicImage::ImageRgb8(once), &Device::Cpu).unwrap().flatten_all().unwrap().to_vec1::<f32>().unwrap();
        assert_eq!(a, b);
    }

    #[test]
    fn output_is_normalised_to_minus_one_one() {
        let img = DynamicImage::ImageLuma8(image::GrayImage::from_fn(7, 9, |x, _| image::Luma([if x < 3 { 0 } else { 255 }])));
        let t = ImageProcessor::gemma3(8).preprocess(&img, &Device::Cpu).unwrap();
        assert_eq!(t.dims(), &[3, 8, 8]);
        let v: Vec<f32> = t.flatten_all().unwrap().to_vec1().unwrap();
        assert!(v.iter().all(|x| (-1.0..=1.0).contains(x)));
        assert!(v.contains(&-1.0) && v.contains(&1.0));
    }
}
