//! The default display of a frame, exactly as PS3.3 C.11 prescribes (and as
//! pydicom renders it): Modality LUT, then the VOI LUT Sequence, else the first
//! valid window, else the frame's min/max; rounded once; MONOCHROME1 inverted.
//! Colour images: RGB as stored (scaled to 8 bits), palettes looked up.

use serde::Serialize;

use super::lut::{to_display_byte, Voi, Window};
use super::pixels::Samples;
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
        self.default_voi_without_range().unwrap_or_else(|| {
            let (min, max) = self.modality_range(frame);
            Voi::MinMax { min, max }
        })
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

    /// The table path of `render` for integer frames whose values span at most
    /// 2^20 levels; None when the frame is float or too sparse for a table.
    fn render_by_table(&self, frame: usize, window: Option<&Window>, invert: bool) -> Option<(Voi, Vec<u8>)> {
        match &self.frames[frame] {
            Samples::U8(v) => self.table_render(v, window, invert),
            Samples::U16(v) => self.table_render(v, window, invert),
            Samples::I16(v) => self.table_render(v, window, invert),
            Samples::U32(v) => self.table_render(v, window, invert),
            Samples::I32(v) => self.table_render(v, window, invert),
            Samples::F32(_) => None,
        }
    }

    fn table_render<T: Copy + Into<i64>>(&self, v: &[T], window: Option<&Window>, invert: bool) -> Option<(Voi, Vec<u8>)> {
        let (mut lo, mut hi) = (i64::MAX, i64::MIN);
        for &x in v {
            let x: i64 = x.into();
            lo = lo.min(x);
            hi = hi.max(x);
        }
        if lo > hi || hi - lo >= 1 << 20 {
            return None;
        }
        let span = (hi - lo + 1) as usize;
        let voi = match window.map(|w| Voi::Window(w.clone())).or_else(|| self.default_voi_without_range()) {
            Some(voi) => voi,
            None => {
                // Min/max over the modality values actually present.
                let mut present = vec![false; span];
                for &x in v {
                    present[(x.into() - lo) as usize] = true;
                }
                let (mut mn, mut mx) = (f64::INFINITY, f64::NEG_INFINITY);
                for (i, _) in present.iter().enumerate().filter(|(_, p)| **p) {
                    let m = self.modality_lut.apply((lo + i as i64) as f64);
                    mn = mn.min(m);
                    mx = mx.max(m);
                }
                Voi::MinMax { min: mn, max: mx }
            }
        };
        let table: Vec<u8> = (0..span)
            .map(|i| {
                let b = to_display_byte(voi.apply(self.modality_lut.apply((lo + i as i64) as f64)));
                if invert {
                    255 - b
                } else {
                    b
                }
            })
            .collect();
        Some((voi, v.iter().map(|&x| table[(x.into() - lo) as usize]).collect()))
    }

    /// The default VOI when it does not depend on the pixels (a table or a valid window).
    fn default_voi_without_range(&self) -> Option<Voi> {
        if let Some(t) = self.voi_tables.first() {
            return Some(Voi::Table(t.clone()));
        }
        self.windows.first().filter(|w| w.is_valid()).map(|w| Voi::Window(w.clone()))
    }

    /// Renders `frame` with the default VOI, or with `window` when given.
    pub fn render(&self, frame: usize, window: Option<&Window>) -> (Rendered, RenderInfo) {
        let n = (self.rows * self.columns) as usize;
        let samples = &self.frames[frame];
        match &self.photometric {
            Photometric::Monochrome1 | Photometric::Monochrome2 => {
                let invert = self.photometric == Photometric::Monochrome1;
                // Integer data: every stored value maps to one display byte, so
                // compute each value's byte once and look pixels up (the same
                // arithmetic, far fewer evaluations on a 3000² radiograph).
                if let Some((voi, out)) = self.render_by_table(frame, window, invert) {
                    let r = Rendered { width: self.columns, height: self.rows, channels: 1, pixels: out };
                    return (r, RenderInfo { voi: Some(voi), inverted: invert });
                }
                let voi = match window {
                    Some(w) => Voi::Window(w.clone()),
                    None => self.default_voi(frame),
                };
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
