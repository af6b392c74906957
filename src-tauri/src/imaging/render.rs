//! The default display of a frame, exactly as PS3.3 C.11 prescribes (and as
//! pydicom renders it): Modality LUT, then the VOI LUT Sequence, else the first
//! valid window, else the frame's min/max; rounded once; MONOCHROME1 inverted.
//! Colour images: RGB as stored (scaled to 8 bits), palettes looked up.

use serde::Serialize;

use super::lut::{to_display_byte, Voi, Window};
use super::study::{Image, Photometric};

/// An 8-bit frame ready to show or save: grey (1 channel) or RGB (3).
#[derive(Debug, Clone, PartialEq)]
pub struct Rendered {
    pub width: u32,
    pub height: u32,
    pub channels: u8,
    pub pixels: Vec<u8>,
}

/// Which VOI was used, for the overlay and the record.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RenderInfo {
    pub voi: Option<Voi>,
    pub inverted: bool,
}

impl Image {
    /// The VOI the viewer starts with for `frame`.
    pub fn default_voi(&self, frame: usize) -> Voi {
        if let Some(t) = self.voi_tables.first() {
            return Voi::Table(t.clone());
        }
        if let Some(w) = self.windows.first().filter(|w| w.is_valid()) {
            return Voi::Window(w.clone());
        }
        let (min, max) = self.modality_range(frame);
        Voi::MinMax { min, max }
    }

    /// Smallest and largest modality value of a frame.
    pub fn modality_range(&self, frame: usize) -> (f64, f64) {
        let samples = &self.frames[frame];
        let mut lo = f64::INFINITY;
        let mut hi = f64::NEG_INFINITY;
        for i in 0..samples.len() {
            let m = self.modality_lut.apply(samples.get(i));
            lo = lo.min(m);
            hi = hi.max(m);
        }
        if lo > hi {
            (0.0, 0.0)
        } else {
            (lo, hi)
        }
    }

    /// Renders `frame` with the default VOI, or with `window` when given.
    pub fn render(&self, frame: usize, window: Option<&Window>) -> (Rendered, RenderInfo) {
        let n = (self.rows * self.columns) as usize;
        let samples = &self.frames[frame];
        match &self.photometric {
            Photometric::Monochrome1 | Photometric::Monochrome2 => {
                let voi = match window {
                    Some(w) => Voi::Window(w.clone()),
                    None => self.default_voi(frame),
                };
                let invert = self.photometric == Photometric::Monochrome1;
                let mut out = Vec::with_capacity(n);
                for i in 0..n {
                    let v = to_display_byte(voi.apply(self.modality_lut.apply(samples.get(i))));
                    out.push(if invert { 255 - v } else { v });
                }
                let r = Rendered { width: self.columns, height: self.rows, channels: 1, pixels: out };
                (r, RenderInfo { voi: Some(voi), inverted: invert })
            }
            Photometric::Rgb => {
                let bits = self.bits_stored.clamp(1, 32) as u32;
                let max = ((1u64 << bits) - 1) as f64;
                let pixels = (0..n * 3)
                    .map(|i| {
                        let v = samples.get(i);
                        if bits == 8 {
                            v.clamp(0.0, 255.0) as u8
                        } else {
                            to_display_byte(v * 255.0 / max)
                        }
                    })
                    .collect();
                (Rendered { width: self.columns, height: self.rows, channels: 3, pixels }, RenderInfo { voi: None, inverted: false })
            }
            Photometric::PaletteColor(p) => {
                let last = p.red.len().min(p.green.len()).min(p.blue.len()).saturating_sub(1);
                let entry = |table: &[u16], idx: usize| -> u8 {
                    let v = table.get(idx).copied().unwrap_or(0) as f64;
                    if p.bits > 8 {
                        to_display_byte(v * 255.0 / 65535.0)
                    } else {
                        v.clamp(0.0, 255.0) as u8
                    }
                };
                let mut pixels = Vec::with_capacity(n * 3);
                for i in 0..n {
                    let idx = (samples.get(i) - p.first_mapped as f64).clamp(0.0, last as f64) as usize;
                    pixels.extend([entry(&p.red, idx), entry(&p.green, idx), entry(&p.blue, idx)]);
                }
                (Rendered { width: self.columns, height: self.rows, channels: 3, pixels }, RenderInfo { voi: None, inverted: false })
            }
        }
    }
}
