//! Image resizing that gives the same bytes as Pillow's `Image.resize` (the
//! reference processor's resampler): separable, antialiased convolution,
//! horizontal pass first, 8-bit intermediate, 22-bit fixed-point weights.
//! Written by hand because no Rust crate reproduces Pillow bit for bit, and the
//! model must see exactly the pixels it was trained on.

/// Pillow's resampling filters (`PIL.Image.Resampling`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Filter {
    Box,
    Bilinear,
    Hamming,
    Bicubic,
    Lanczos,
}

impl Filter {
    /// From the integer a `preprocessor_config.json` stores (`resample`).
    pub fn from_pil_code(code: u64) -> Option<Self> {
        match code {
            4 => Some(Self::Box),
            2 => Some(Self::Bilinear),
            5 => Some(Self::Hamming),
            3 => Some(Self::Bicubic),
            1 => Some(Self::Lanczos),
            _ => None,
        }
    }

    fn support(self) -> f64 {
        match self {
            Self::Box => 0.5,
            Self::Bilinear | Self::Hamming => 1.0,
            Self::Bicubic => 2.0,
            Self::Lanczos => 3.0,
        }
    }

    fn weight(self, x: f64) -> f64 {
        match self {
            Self::Box => {
                if x > -0.5 && x <= 0.5 {
                    1.0
                } else {
                    0.0
                }
            }
            Self::Bilinear => {
                let x = x.abs();
                if x < 1.0 {
                    1.0 - x
                } else {
                    0.0
                }
            }
            Self::Hamming => {
                let x = x.abs();
                if x == 0.0 {
                    1.0
                } else if x >= 1.0 {
                    0.0
                } else {
                    let px = x * std::f64::consts::PI;
                    px.sin() / px * (0.54 + 0.46 * px.cos())
                }
            }
            Self::Bicubic => {
                const A: f64 = -0.5;
                let x = x.abs();
                if x < 1.0 {
                    ((A + 2.0) * x - (A + 3.0)) * x * x + 1.0
                } else if x < 2.0 {
                    (((x - 5.0) * x + 8.0) * x - 4.0) * A
                } else {
                    0.0
                }
            }
            Self::Lanczos => {
                if (-3.0..3.0).contains(&x) {
                    sinc(x) * sinc(x / 3.0)
                } else {
                    0.0
                }
            }
        }
    }
}

fn sinc(x: f64) -> f64 {
    if x == 0.0 {
        1.0
    } else {
        let px = x * std::f64::consts::PI;
        px.sin() / px
    }
}

const PRECISION_BITS: u32 = 32 - 8 - 2;

/// For each output pixel: the first input pixel and its fixed-point weights.
struct Coefficients {
    bounds: Vec<(usize, usize)>,
    ksize: usize,
    weights: Vec<i32>,
}

fn coefficients(in_size: usize, out_size: usize, filter: Filter) -> Coefficients {
    let scale = in_size as f64 / out_size as f64;
    let filterscale = scale.max(1.0);
    let support = filter.support() * filterscale;
    let ksize = support.ceil() as usize * 2 + 1;
    let mut bounds = Vec::with_capacity(out_size);
    let mut weights = vec![0i32; out_size * ksize];
    let mut k = vec![0f64; ksize];
    for xx in 0..out_size {
        let center = (xx as f64 + 0.5) * scale;
        let ss = 1.0 / filterscale;
        // Pillow truncates toward zero with a C cast after adding 0.5.
        let xmin = ((center - support + 0.5) as i64).max(0) as usize;
        let xmax = ((center + support + 0.5) as i64).min(in_size as i64) as usize;
        let n = xmax.saturating_sub(xmin);
        let mut ww = 0.0;
        for (x, kx) in k.iter_mut().enumerate().take(n) {
            let w = filter.weight((x as f64 + xmin as f64 - center + 0.5) * ss);
            *kx = w;
            ww += w;
        }
        for (x, kx) in k.iter().enumerate().take(n) {
            let w = if ww != 0.0 { kx / ww } else { *kx };
            let fixed = w * (1u64 << PRECISION_BITS) as f64;
            weights[xx * ksize + x] = if w < 0.0 { (-0.5 + fixed) as i32 } else { (0.5 + fixed) as i32 };
        }
        bounds.push((xmin, n));
    }
    Coefficients { bounds, ksize, weights }
}

fn clip8(acc: i64) -> u8 {
    (acc >> PRECISION_BITS).clamp(0, 255) as u8
}

/// Resizes an interleaved 8-bit image (`channels` per pixel) like Pillow 13.
pub fn resize_u8(src: &[u8], width: usize, height: usize, channels: usize, out_w: usize, out_h: usize, filter: Filter) -> Vec<u8> {
    // Pillow 13 runs the vertical pass first when the height shrinks by more
    // than twice as many pixels as the width (older Pillow: always horizontal
    // first). The 8-bit rounding between passes makes the order visible.
    let (dh, dw) = (height as i64 - out_h as i64, width as i64 - out_w as i64);
    let vertical_first = dh > 0 && dh > 2 * dw;
    let mut data = src.to_vec();
    let mut w = width;
    if vertical_first {
        if out_h != height {
            data = vertical_pass(&data, w, height, channels, out_h, filter);
        }
        if out_w != width {
            data = horizontal_pass(&data, w, out_h, channels, out_w, filter);
        }
    } else {
        if out_w != width {
            data = horizontal_pass(&data, w, height, channels, out_w, filter);
            w = out_w;
        }
        if out_h != height {
            data = vertical_pass(&data, w, height, channels, out_h, filter);
        }
    }
    data
}

fn horizontal_pass(data: &[u8], w: usize, h: usize, channels: usize, out_w: usize, filter: Filter) -> Vec<u8> {
    let c = coefficients(w, out_w, filter);
    let mut out = vec![0u8; out_w * h * channels];
    for y in 0..h {
        let row = &data[y * w * channels..(y + 1) * w * channels];
        for (xx, &(xmin, n)) in c.bounds.iter().enumerate() {
            let k = &c.weights[xx * c.ksize..xx * c.ksize + n];
            for ch in 0..channels {
                let mut acc: i64 = 1 << (PRECISION_BITS - 1);
                for (x, &kw) in k.iter().enumerate() {
                    acc += row[(xmin + x) * channels + ch] as i64 * kw as i64;
                }
                out[(y * out_w + xx) * channels + ch] = clip8(acc);
            }
        }
    }
    out
}

fn vertical_pass(data: &[u8], w: usize, h: usize, channels: usize, out_h: usize, filter: Filter) -> Vec<u8> {
    let c = coefficients(h, out_h, filter);
    let stride = w * channels;
    let mut out = vec![0u8; stride * out_h];
    for (yy, &(ymin, n)) in c.bounds.iter().enumerate() {
        let k = &c.weights[yy * c.ksize..yy * c.ksize + n];
        for x in 0..stride {
            let mut acc: i64 = 1 << (PRECISION_BITS - 1);
            for (y, &kw) in k.iter().enumerate() {
                acc += data[(ymin + y) * stride + x] as i64 * kw as i64;
            }
            out[yy * stride + x] = clip8(acc);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_size_is_a_copy() {
        let src: Vec<u8> = (0..48).map(|i| (i * 5) as u8).collect();
        assert_eq!(resize_u8(&src, 4, 4, 3, 4, 4, Filter::Bilinear), src);
    }

    #[test]
    fn a_flat_image_stays_flat() {
        let src = vec![77u8; 31 * 17 * 3];
        for f in [Filter::Box, Filter::Bilinear, Filter::Hamming, Filter::Bicubic, Filter::Lanczos] {
            let out = resize_u8(&src, 31, 17, 3, 8, 8, f);
            assert!(out.iter().all(|&v| v == 77), "{f:?}");
        }
    }

    #[test]
    fn weights_of_each_output_pixel_sum_to_one() {
        let c = coefficients(97, 32, Filter::Bilinear);
        for (i, &(_, n)) in c.bounds.iter().enumerate() {
            let sum: i64 = c.weights[i * c.ksize..i * c.ksize + n].iter().map(|&w| w as i64).sum();
            assert!((sum - (1 << PRECISION_BITS)).abs() <= n as i64, "{sum}");
        }
    }
}
