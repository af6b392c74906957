//! Pixel data → sample values, as pydicom returns them: native data unpacked
//! (1-bit, planar, YBR_FULL_422, big endian, 32-bit), bits above Bits Stored
//! masked or sign-extended; encapsulated frames through their codecs (JPEG 8-
//! and 12-bit, lossless JPEG, JPEG-LS, JPEG 2000, RLE). YBR becomes RGB.
//! RLE is decoded here by hand: it is 40 lines, and dicom-rs's adapter supports
//! neither 32-bit data nor malformed segments without panicking.

use std::path::Path;

use super::error::ImagingError;
use super::pixels::Samples;

/// What the attributes say the pixel data holds.
#[derive(Debug, Clone)]
pub struct Layout {
    pub rows: usize,
    pub columns: usize,
    pub samples: usize,
    pub bits_allocated: u16,
    pub bits_stored: u16,
    pub signed: bool,
    pub planar: bool,
    pub frames: usize,
    pub photometric: String,
    pub big_endian: bool,
}

/// Decoded frames and how to read them.
pub struct Decoded {
    pub frames: Vec<Samples>,
    pub samples: usize,
    /// After colour conversion: MONOCHROME1/2, RGB or PALETTE COLOR.
    pub photometric: String,
    pub bits_stored: u16,
}

const JPEG_BASELINE: &str = "1.2.840.10008.1.2.4.50";
const JPEG_EXTENDED: &str = "1.2.840.10008.1.2.4.51";
const JPEG_LOSSLESS: &str = "1.2.840.10008.1.2.4.57";
const JPEG_LOSSLESS_SV1: &str = "1.2.840.10008.1.2.4.70";
const JPEG_LS_LOSSLESS: &str = "1.2.840.10008.1.2.4.80";
const JPEG_LS_NEAR: &str = "1.2.840.10008.1.2.4.81";
const J2K_LOSSLESS: &str = "1.2.840.10008.1.2.4.90";
const J2K: &str = "1.2.840.10008.1.2.4.91";
const HTJ2K: [&str; 3] = ["1.2.840.10008.1.2.4.201", "1.2.840.10008.1.2.4.202", "1.2.840.10008.1.2.4.203"];
const RLE: &str = "1.2.840.10008.1.2.5";

pub fn is_encapsulated_syntax(ts: &str) -> bool {
    ts.starts_with("1.2.840.10008.1.2.4.") || ts == RLE
}

fn is_ybr(pi: &str) -> bool {
    pi.starts_with("YBR")
}

// ------------------------------------------------------------------ native

pub fn decode_native(path: &Path, l: &Layout, bytes: &[u8], vr_is_ow: bool) -> Result<Decoded, ImagingError> {
    let mut bytes = bytes.to_vec();
    // dicom-rs reads a big-endian file's OW value as 16-bit words and hands
    // them over little-endian. That is already right for 16-bit samples, and
    // for 8-bit ones too: PS3.5 packs two 8-bit samples into each OW word with
    // the first in the low byte, as pydicom reads them (checked on 8-bit OW
    // RGB and palette files, odd sizes included). 32-bit samples are two
    // words, high word first: swap the halves. OB values come as file bytes.
    if l.big_endian && vr_is_ow {
        if l.bits_allocated == 32 {
            bytes.chunks_exact_mut(4).for_each(|c| {
                c.swap(0, 2);
                c.swap(1, 3);
            });
        }
    } else if l.big_endian && l.bits_allocated == 32 {
        bytes.chunks_exact_mut(4).for_each(|c| c.reverse());
    }
    let pixels = l.rows * l.columns;
    let ybr422 = l.photometric == "YBR_FULL_422" && l.bits_allocated == 8 && l.samples == 3;
    let frame_len = match l.bits_allocated {
        1 => 0,
        _ if ybr422 => pixels * 2,
        b => pixels * l.samples * (b as usize / 8),
    };
    let needed = if l.bits_allocated == 1 { (pixels * l.frames).div_ceil(8) } else { frame_len * l.frames };
    if bytes.len() < needed {
        return Err(ImagingError::unreadable(path, format!("its pixel data is truncated: {} of {needed} bytes", bytes.len())));
    }
    let mut frames = Vec::with_capacity(l.frames);
    for f in 0..l.frames {
        let samples = if l.bits_allocated == 1 {
            let start = f * pixels;
            Samples::U8((start..start + pixels).map(|i| (bytes[i / 8] >> (i % 8)) & 1).collect())
        } else {
            let chunk = &bytes[f * frame_len..(f + 1) * frame_len];
            if ybr422 {
                let mut out = Vec::with_capacity(pixels * 3);
                for c in chunk.chunks_exact(4) {
                    out.extend_from_slice(&[c[0], c[2], c[3], c[1], c[2], c[3]]);
                }
                Samples::U8(out)
            } else {
                let s = unpack_le(chunk, l.bits_allocated, l.bits_stored, l.signed);
                if l.planar && l.samples == 3 {
                    interleave_planes(&s, pixels)
                } else {
                    s
                }
            }
        };
        frames.push(samples);
    }
    finish(path, l, frames)
}

/// A stored value with the bits above Bits Stored masked off (unsigned) or
/// sign-extended from bit Bits Stored − 1 (signed), as pydicom corrects them.
#[inline]
fn fit_to_bits(v: u32, stored: u16, signed: bool) -> i64 {
    let shift = 32 - stored.clamp(1, 32) as u32;
    if signed {
        ((v << shift) as i32 >> shift) as i64
    } else if stored >= 32 {
        v as i64
    } else {
        (v & ((1u32 << stored) - 1)) as i64
    }
}

/// Little-endian words of `bits` → samples, fitted to `stored` bits.
fn unpack_le(b: &[u8], bits: u16, stored: u16, signed: bool) -> Samples {
    let fix = |v: u32| fit_to_bits(v, stored, signed);
    match bits {
        8 => {
            if signed {
                Samples::I16(b.iter().map(|&v| fix(v as u32) as i16).collect())
            } else {
                Samples::U8(b.iter().map(|&v| fix(v as u32) as u8).collect())
            }
        }
        16 => {
            let it = b.chunks_exact(2).map(|c| fix(u16::from_le_bytes([c[0], c[1]]) as u32));
            if signed {
                Samples::I16(it.map(|v| v as i16).collect())
            } else {
                Samples::U16(it.map(|v| v as u16).collect())
            }
        }
        _ => {
            let it = b.chunks_exact(4).map(|c| fix(u32::from_le_bytes([c[0], c[1], c[2], c[3]])));
            if signed {
                Samples::I32(it.map(|v| v as i32).collect())
            } else {
                Samples::U32(it.map(|v| v as u32).collect())
            }
        }
    }
}

fn interleave_planes(s: &Samples, pixels: usize) -> Samples {
    fn go<T: Copy>(v: &[T], pixels: usize) -> Vec<T> {
        (0..pixels * 3).map(|i| v[(i % 3) * pixels + i / 3]).collect()
    }
    match s {
        Samples::U8(v) => Samples::U8(go(v, pixels)),
        Samples::U16(v) => Samples::U16(go(v, pixels)),
        Samples::I16(v) => Samples::I16(go(v, pixels)),
        Samples::U32(v) => Samples::U32(go(v, pixels)),
        Samples::I32(v) => Samples::I32(go(v, pixels)),
        Samples::F32(v) => Samples::F32(go(v, pixels)),
    }
}

/// YBR → RGB where the data is still YBR, and the resulting photometric name.
fn finish(path: &Path, l: &Layout, frames: Vec<Samples>) -> Result<Decoded, ImagingError> {
    let mut photometric = l.photometric.clone();
    let mut frames = frames;
    if is_ybr(&l.photometric) && l.samples == 3 {
        if matches!(l.photometric.as_str(), "YBR_FULL" | "YBR_FULL_422") {
            frames = frames.into_iter().map(|f| ybr_full_to_rgb(&f, l.bits_stored)).collect();
        }
        photometric = "RGB".into();
    }
    for f in &frames {
        if f.len() != l.rows * l.columns * l.samples {
            return Err(ImagingError::unreadable(path, format!("a frame decoded to {} samples, not {}", f.len(), l.rows * l.columns * l.samples)));
        }
    }
    Ok(Decoded { frames, samples: l.samples, photometric, bits_stored: l.bits_stored })
}

/// PS3.3 C.7.6.3.1.2 in f32, rounded half up and clipped, as pydicom converts.
fn ybr_full_to_rgb(s: &Samples, bits: u16) -> Samples {
    let max = ((1u32 << bits.min(16)) - 1) as f32;
    let half = (1u32 << (bits.min(16) - 1)) as f32;
    let g_cb = -0.114f32 * 1.772 / 0.587;
    let g_cr = -0.299f32 * 1.402 / 0.587;
    let n = s.len() / 3;
    let mut out = Vec::with_capacity(s.len());
    for i in 0..n {
        let y = s.get(3 * i) as f32;
        let cb = s.get(3 * i + 1) as f32 - half;
        let cr = s.get(3 * i + 2) as f32 - half;
        let r = y + cb * 0.0 + cr * 1.402;
        let g = y + cb * g_cb + cr * g_cr;
        let b = y + cb * 1.772 + cr * 0.0;
        out.extend([r, g, b].map(|v| (v + 0.5).floor().clamp(0.0, max) as u32));
    }
    if bits <= 8 {
        Samples::U8(out.into_iter().map(|v| v as u8).collect())
    } else {
        Samples::U16(out.into_iter().map(|v| v as u16).collect())
    }
}

// ------------------------------------------------------------ encapsulated

/// Groups fragments into frames: one frame takes them all; one fragment per
/// frame; else the Basic Offset Table; else JPEG end-of-image markers.
fn frames_of(fragments: &[Vec<u8>], offsets: &[u32], frames: usize) -> Vec<Vec<u8>> {
    if frames <= 1 {
        return vec![fragments.concat()];
    }
    if fragments.len() == frames {
        return fragments.to_vec();
    }
    if offsets.len() == frames {
        let mut out = vec![Vec::new(); frames];
        let mut pos = 0u64;
        for frag in fragments {
            let idx = offsets.iter().rposition(|&o| o as u64 <= pos).unwrap_or(0);
            out[idx].extend_from_slice(frag);
            pos += frag.len() as u64 + 8;
        }
        return out;
    }
    let mut out = Vec::new();
    let mut cur = Vec::new();
    for frag in fragments {
        cur.extend_from_slice(frag);
        let trimmed = frag.iter().rposition(|&b| b != 0).map_or(&frag[..0], |i| &frag[..=i]);
        if trimmed.ends_with(&[0xFF, 0xD9]) {
            out.push(std::mem::take(&mut cur));
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

pub fn decode_encapsulated(path: &Path, ts: &str, l: &Layout, fragments: &[Vec<u8>], offsets: &[u32]) -> Result<Decoded, ImagingError> {
    let frames = frames_of(fragments, offsets, l.frames);
    if frames.len() < l.frames {
        return Err(ImagingError::unreadable(path, format!("it declares {} frames but holds {}", l.frames, frames.len())));
    }
    let mut out = Vec::with_capacity(l.frames);
    for data in frames.iter().take(l.frames) {
        let s = match ts {
            JPEG_BASELINE | JPEG_EXTENDED | JPEG_LOSSLESS | JPEG_LOSSLESS_SV1 => decode_jpeg(path, data, l)?,
            JPEG_LS_LOSSLESS | JPEG_LS_NEAR => decode_jpeg_ls(path, data, l)?,
            J2K_LOSSLESS | J2K => decode_j2k(path, data, l)?,
            RLE => decode_rle(path, data, l)?,
            t if HTJ2K.contains(&t) => decode_j2k(path, data, l)?,
            other => {
                let name = dicom_transfer_syntax_registry::TransferSyntaxIndex::get(&dicom_transfer_syntax_registry::TransferSyntaxRegistry, other)
                    .map(|t| t.name().to_owned())
                    .unwrap_or_else(|| other.to_owned());
                return Err(ImagingError::Unsupported { path: path.into(), what: format!("the transfer syntax {name}") });
            }
        };
        out.push(s);
    }
    // Codecs that convert colour themselves report RGB already.
    let mut layout = l.clone();
    if matches!(ts, J2K_LOSSLESS | J2K) || HTJ2K.contains(&ts) {
        if matches!(l.photometric.as_str(), "YBR_RCT" | "YBR_ICT") {
            layout.photometric = "RGB".into();
        }
    }
    if matches!(ts, JPEG_BASELINE | JPEG_EXTENDED | JPEG_LOSSLESS | JPEG_LOSSLESS_SV1) && is_ybr(&l.photometric) {
        layout.photometric = "RGB".into(); // the JPEG decoder converted YCbCr
    }
    finish(path, &layout, out)
}

/// The sample precision and whether the frame is lossless (SOF3), from the SOF marker.
fn jpeg_sof(data: &[u8]) -> Option<(u8, bool)> {
    let mut i = 2;
    while i + 4 < data.len() {
        if data[i] != 0xFF {
            i += 1;
            continue;
        }
        let marker = data[i + 1];
        if (0xC0..=0xCF).contains(&marker) && !matches!(marker, 0xC4 | 0xC8 | 0xCC) {
            return data.get(i + 4).map(|&p| (p, matches!(marker, 0xC3 | 0xC7 | 0xCB | 0xCF)));
        }
        if marker == 0xD8 || marker == 0x01 || (0xD0..=0xD7).contains(&marker) || marker == 0xFF {
            i += 2;
            continue;
        }
        let len = u16::from_be_bytes([data[i + 2], data[i + 3]]) as usize;
        i += 2 + len;
    }
    None
}

fn decode_jpeg(path: &Path, data: &[u8], l: &Layout) -> Result<Samples, ImagingError> {
    let bad = |e: String| ImagingError::unreadable(path, format!("its JPEG data cannot be decoded: {e}"));
    let (precision, lossless) = jpeg_sof(data).ok_or_else(|| bad("no frame header".into()))?;
    if precision > 8 && !lossless {
        // 12-bit DCT (JPEG Extended): jpeg-decoder and zune-jpeg stop at 8 bits.
        let img = libjpeg_turbo_rs::decompress_12bit(data).map_err(|e| bad(e.to_string()))?;
        let v: Vec<u16> = img.data.iter().map(|&x| x.clamp(0, 4095) as u16).collect();
        return Ok(fix_bits(Samples::U16(v), l));
    }
    let mut d = jpeg_decoder::Decoder::new(std::io::Cursor::new(data));
    d.read_info().map_err(|e| bad(e.to_string()))?;
    let info = d.info().ok_or_else(|| bad("no image information".into()))?;
    if info.pixel_format == jpeg_decoder::PixelFormat::RGB24 {
        // The DICOM photometric interpretation decides, not the JPEG's markers.
        d.set_color_transform(if is_ybr(&l.photometric) { jpeg_decoder::ColorTransform::YCbCr } else { jpeg_decoder::ColorTransform::RGB });
    }
    let bytes = d.decode().map_err(|e| bad(e.to_string()))?;
    let s = match info.pixel_format {
        jpeg_decoder::PixelFormat::L16 => Samples::U16(bytes.chunks_exact(2).map(|c| u16::from_ne_bytes([c[0], c[1]])).collect()),
        jpeg_decoder::PixelFormat::CMYK32 => return Err(bad("CMYK JPEG data".into())),
        _ => Samples::U8(bytes),
    };
    Ok(fix_bits(s, l))
}

/// Applies Bits Stored and Pixel Representation to codec output.
fn fix_bits(s: Samples, l: &Layout) -> Samples {
    let signed = l.signed;
    let vals: Vec<i64> = (0..s.len()).map(|i| fit_to_bits(s.get(i) as i64 as u32, l.bits_stored, signed)).collect();
    match (l.bits_allocated, signed) {
        (8, false) | (1, _) => Samples::U8(vals.into_iter().map(|v| v as u8).collect()),
        (8, true) | (16, true) => Samples::I16(vals.into_iter().map(|v| v as i16).collect()),
        (16, false) => Samples::U16(vals.into_iter().map(|v| v as u16).collect()),
        (_, true) => Samples::I32(vals.into_iter().map(|v| v as i32).collect()),
        (_, false) => Samples::U32(vals.into_iter().map(|v| v as u32).collect()),
    }
}

fn decode_jpeg_ls(path: &Path, data: &[u8], l: &Layout) -> Result<Samples, ImagingError> {
    let mut codec = charls::CharLS::default();
    let bytes = codec
        .decode(data)
        .map_err(|e| ImagingError::unreadable(path, format!("its JPEG-LS data cannot be decoded: {e:?}")))?;
    let s = if l.bits_stored <= 8 {
        Samples::U8(bytes)
    } else {
        Samples::U16(bytes.chunks_exact(2).map(|c| u16::from_le_bytes([c[0], c[1]])).collect())
    };
    Ok(fix_bits(s, l))
}

fn decode_j2k(path: &Path, data: &[u8], l: &Layout) -> Result<Samples, ImagingError> {
    let img = jpeg2k::Image::from_bytes(data).map_err(|e| ImagingError::unreadable(path, format!("its JPEG 2000 data cannot be decoded: {e}")))?;
    let comps = img.components();
    if comps.len() != l.samples {
        return Err(ImagingError::unreadable(path, format!("its JPEG 2000 data has {} components, not {}", comps.len(), l.samples)));
    }
    let n = l.rows * l.columns;
    let mut vals = Vec::with_capacity(n * comps.len());
    for i in 0..n {
        for c in comps {
            vals.push(c.data().get(i).copied().unwrap_or(0));
        }
    }
    Ok(fix_bits(Samples::I32(vals), l))
}

/// DICOM RLE (PS3.5 Annex G): up to 15 PackBits segments, one per byte of
/// each sample, most significant byte first.
fn decode_rle(path: &Path, data: &[u8], l: &Layout) -> Result<Samples, ImagingError> {
    let bad = |m: &str| ImagingError::unreadable(path, format!("its RLE data is damaged: {m}"));
    if data.len() < 64 {
        return Err(bad("the header is missing"));
    }
    let word = |i: usize| u32::from_le_bytes([data[4 * i], data[4 * i + 1], data[4 * i + 2], data[4 * i + 3]]) as usize;
    let segments = word(0);
    let bytes_per_sample = (l.bits_allocated as usize).div_ceil(8);
    if segments != bytes_per_sample * l.samples || segments > 15 {
        return Err(bad(&format!("{segments} segments for {} samples of {bytes_per_sample} bytes", l.samples)));
    }
    let n = l.rows * l.columns;
    let offsets: Vec<usize> = (1..=segments).map(word).collect();
    let mut planes = Vec::with_capacity(segments);
    for s in 0..segments {
        let start = offsets[s];
        let end = if s + 1 < segments { offsets[s + 1] } else { data.len() };
        if start > end || end > data.len() {
            return Err(bad("a segment lies outside the fragment"));
        }
        planes.push(unpack_bits(&data[start..end], n));
    }
    // Reassemble little-endian sample bytes, samples interleaved.
    let mut le = vec![0u8; n * l.samples * bytes_per_sample];
    for sample in 0..l.samples {
        for b in 0..bytes_per_sample {
            let plane = &planes[sample * bytes_per_sample + b];
            let byte_pos = bytes_per_sample - 1 - b;
            for i in 0..n {
                le[(i * l.samples + sample) * bytes_per_sample + byte_pos] = plane[i];
            }
        }
    }
    Ok(unpack_le(&le, l.bits_allocated, l.bits_stored, l.signed))
}

/// PackBits, padded or cut to exactly `n` bytes.
fn unpack_bits(src: &[u8], n: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(n);
    let mut i = 0;
    while i < src.len() && out.len() < n {
        let h = src[i] as i8;
        i += 1;
        if h >= 0 {
            let len = h as usize + 1;
            let end = (i + len).min(src.len());
            out.extend_from_slice(&src[i..end]);
            i = end;
        } else if h != -128 {
            if let Some(&b) = src.get(i) {
                out.extend(std::iter::repeat_n(b, (1 - h as isize) as usize));
            }
            i += 1;
        }
    }
    out.resize(n, 0);
    out
}

/// Expands a segmented palette (PS3.3 C.7.9.2): discrete, linear and indirect segments.
pub fn expand_segmented_lut(words: &[u16], entries: usize) -> Result<Vec<u16>, String> {
    let mut out: Vec<u16> = Vec::with_capacity(entries);
    let mut i = 0;
    while i + 1 < words.len() {
        let (op, len) = (words[i], words[i + 1] as usize);
        match op {
            0 => {
                let end = (i + 2 + len).min(words.len());
                out.extend_from_slice(&words[i + 2..end]);
                i += 2 + len;
            }
            1 => {
                let y1 = *words.get(i + 2).ok_or("a linear segment has no end value")? as f64;
                let y0 = *out.last().ok_or("a linear segment comes first")? as f64;
                for k in 1..=len {
                    out.push((y0 + (y1 - y0) * k as f64 / len as f64).round() as u16);
                }
                i += 3;
            }
            2 => {
                let offset = (*words.get(i + 2).ok_or("an indirect segment is cut")? as usize)
                    | ((*words.get(i + 3).ok_or("an indirect segment is cut")? as usize) << 16);
                let copy = expand_segmented_lut(&words[offset.min(words.len())..], usize::MAX)?;
                out.extend(copy.into_iter().take(len));
                i += 4;
            }
            other => return Err(format!("unknown palette segment type {other}")),
        }
        if out.len() >= entries {
            break;
        }
    }
    if entries != usize::MAX {
        out.truncate(entries);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packbits_literal_and_run() {
        assert_eq!(unpack_bits(&[2, 1, 2, 3, 0xFE, 9], 6), vec![1, 2, 3, 9, 9, 9]);
    }

    #[test]
    fn signed_12_bit_values_are_sign_extended() {
        let s = unpack_le(&[0xFF, 0x0F, 0x01, 0x00], 16, 12, true);
        assert_eq!(s, Samples::I16(vec![-1, 1]));
        let u = unpack_le(&[0xFF, 0xFF], 16, 12, false);
        assert_eq!(u, Samples::U16(vec![4095]));
    }

    #[test]
    fn planes_become_interleaved() {
        assert_eq!(interleave_planes(&Samples::U8(vec![1, 2, 10, 20, 100, 200]), 2), Samples::U8(vec![1, 10, 100, 2, 20, 200]));
    }

    #[test]
    fn segmented_lut_expands_discrete_and_linear() {
        assert_eq!(expand_segmented_lut(&[0, 2, 0, 10, 1, 2, 30], 4).unwrap(), vec![0, 10, 20, 30]);
    }

    #[test]
    fn fragments_split_by_the_offset_table() {
        let frags = vec![vec![1; 10], vec![2; 6], vec![3; 4]];
        let frames = frames_of(&frags, &[0, 18], 2);
        assert_eq!(frames[0].len(), 10);
        assert_eq!(frames[1].len(), 10);
    }
}
