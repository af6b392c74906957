//! The GGUF block layouts our CPU kernels read (Q8_0, Q4_K, Q6_K, as ggml
//! defines them), the 8-bit activation blocks they are multiplied with, and
//! plain scalar dot products: the reference the SIMD kernels are tested
//! against, and the path on CPUs without them.
//!
//! Block layouts (little-endian, packed):
//! - Q8_0, 32 weights in 34 bytes: `d: f16`, `qs: [i8; 32]`; w = d·q.
//! - Q4_K, 256 weights in 144 bytes: `d: f16`, `dmin: f16`, `scales: [u8; 12]`
//!   (eight 6-bit scales and eight 6-bit mins), `qs: [u8; 128]` (4-bit);
//!   sub-block j of 32 has w = d·sc_j·q − dmin·m_j. Bytes 32c..32c+32 of `qs`
//!   hold sub-block 2c in their low nibbles and 2c+1 in their high nibbles.
//! - Q6_K, 256 weights in 210 bytes: `ql: [u8; 128]` (low 4 bits),
//!   `qh: [u8; 64]` (high 2 bits), `scales: [i8; 16]` (one per 16), `d: f16`;
//!   w = d·sc·(q − 32).

use half::f16;

/// Weights per Q8_0 block, per K-quant super-block.
pub const QK8_0: usize = 32;
pub const QK_K: usize = 256;
pub const Q8_0_BYTES: usize = 34;
pub const Q4_K_BYTES: usize = 144;
pub const Q6_K_BYTES: usize = 210;

/// The weight formats with our own kernels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Q8_0 = 0,
    Q4K = 1,
    Q6K = 2,
}

impl Format {
    /// Weights per block, and bytes per block.
    pub fn block(self) -> (usize, usize) {
        match self {
            Self::Q8_0 => (QK8_0, Q8_0_BYTES),
            Self::Q4K => (QK_K, Q4_K_BYTES),
            Self::Q6K => (QK_K, Q6_K_BYTES),
        }
    }

    /// Bytes of one row of `k` weights.
    pub fn row_bytes(self, k: usize) -> usize {
        let (n, bytes) = self.block();
        k / n * bytes
    }
}

/// One activation row quantized to 8 bits for the integer dot products: a
/// scale per block (32 values for Q8_0 weights, 256 for K-quants, as ggml's
/// Q8_0 and Q8_K), and for K-quants the sums of each 16 and each 32
/// quantized values.
#[derive(Debug, Clone, Default)]
pub struct Activation {
    pub d: Vec<f32>,
    pub qs: Vec<i8>,
    pub bsums: Vec<i16>,
    pub sums32: Vec<i16>,
}

impl Activation {
    /// Quantizes `x` in blocks of `block` (32 or 256): d = max|x|/127,
    /// q = round(x/d). Sums of 16 are kept when the block is 256.
    pub fn quantize(x: &[f32], block: usize) -> Self {
        let mut a = Self { d: Vec::with_capacity(x.len() / block), qs: vec![0; x.len()], ..Self::default() };
        for (xs, qs) in x.chunks_exact(block).zip(a.qs.chunks_exact_mut(block)) {
            let amax = xs.iter().fold(0f32, |m, v| m.max(v.abs()));
            let d = amax / 127.0;
            let id = if d > 0.0 { 1.0 / d } else { 0.0 };
            for (q, v) in qs.iter_mut().zip(xs) {
                *q = (v * id).round().clamp(-127.0, 127.0) as i8;
            }
            a.d.push(d);
        }
        if block == QK_K {
            a.bsums = a.qs.chunks_exact(16).map(|c| c.iter().map(|&q| q as i16).sum()).collect();
            a.sums32 = a.bsums.chunks_exact(2).map(|p| p[0] + p[1]).collect();
        }
        a
    }
}

/// Rounds each block of 32 values to what Q8_0 holds of it (d·round(x/d),
/// d = max|x|/127): the precision llama.cpp multiplies Q8_0 weights at.
pub fn round_to_q8_0(x: &mut [f32]) {
    for block in x.chunks_mut(QK8_0) {
        let amax = block.iter().fold(0f32, |m, v| m.max(v.abs()));
        if amax == 0.0 {
            continue;
        }
        let d = amax / 127.0;
        let id = 1.0 / d;
        for v in block.iter_mut() {
            *v = (*v * id).round() * d;
        }
    }
}

/// Quantizes rows of `x` to Q8_0 for the integer GEMM: per block of 32,
/// d = max|x|/127 into `d`, and round(x/d) + 128 as unsigned bytes into `q`.
pub fn quantize_q8_0_offset(x: &[f32], q: &mut [u8], d: &mut [f32]) {
    for ((xs, qs), dd) in x.chunks_exact(QK8_0).zip(q.chunks_exact_mut(QK8_0)).zip(d.iter_mut()) {
        let amax = xs.iter().fold(0f32, |m, v| m.max(v.abs()));
        let scale = amax / 127.0;
        let id = if scale > 0.0 { 1.0 / scale } else { 0.0 };
        for (qv, &v) in qs.iter_mut().zip(xs) {
            *qv = ((v * id).round() as i32 + 128) as u8;
        }
        *dd = scale;
    }
}

/// The f16 at byte `at` of `b`, as f32.
pub(crate) fn f16_at(b: &[u8], at: usize) -> f32 {
    f16::from_bits(u16::from_le_bytes([b[at], b[at + 1]])).to_f32()
}

/// The eight 6-bit scales and eight 6-bit mins of a Q4_K block, from its 12
/// scale bytes: scales 0-3 and mins 0-3 are the low 6 bits of bytes 0-3 and
/// 4-7; scales and mins 4-7 take their low 4 bits from bytes 8-11 and their
/// top 2 bits from the top of bytes 0-3 (scales) and 4-7 (mins).
#[inline(always)]
pub fn q4k_scales_mins(s: &[u8]) -> ([u8; 8], [u8; 8]) {
    let word = |i: usize| u32::from_le_bytes([s[i], s[i + 1], s[i + 2], s[i + 3]]);
    let (u0, u1, u2) = (word(0), word(4), word(8));
    let sc_lo = u0 & 0x3f3f_3f3f;
    let m_lo = u1 & 0x3f3f_3f3f;
    let sc_hi = (u2 & 0x0f0f_0f0f) | (((u0 >> 6) & 0x0303_0303) << 4);
    let m_hi = ((u2 >> 4) & 0x0f0f_0f0f) | (((u1 >> 6) & 0x0303_0303) << 4);
    let join = |lo: u32, hi: u32| {
        let mut out = [0u8; 8];
        out[..4].copy_from_slice(&lo.to_le_bytes());
        out[4..].copy_from_slice(&hi.to_le_bytes());
        out
    };
    (join(sc_lo, sc_hi), join(m_lo, m_hi))
}

/// Dot products of `out.len()` consecutive weight rows of `k` weights with
/// one activation row, in plain scalar code.
pub fn dot_rows_scalar(format: Format, w: &[u8], k: usize, a: &Activation, out: &mut [f32]) {
    let row_bytes = format.row_bytes(k);
    for (r, o) in out.iter_mut().enumerate() {
        let row = &w[r * row_bytes..(r + 1) * row_bytes];
        *o = match format {
            Format::Q8_0 => dot_q8_0(row, a),
            Format::Q4K => dot_q4k(row, a),
            Format::Q6K => dot_q6k(row, a),
        };
    }
}

fn dot_q8_0(row: &[u8], a: &Activation) -> f32 {
    row.chunks_exact(Q8_0_BYTES)
        .enumerate()
        .map(|(b, blk)| {
            let s: i32 = blk[2..].iter().zip(&a.qs[b * QK8_0..]).map(|(&w, &x)| w as i8 as i32 * x as i32).sum();
            f16_at(blk, 0) * a.d[b] * s as f32
        })
        .sum()
}

fn dot_q4k(row: &[u8], a: &Activation) -> f32 {
    let mut total = 0f32;
    for (b, blk) in row.chunks_exact(Q4_K_BYTES).enumerate() {
        let (d, dmin) = (f16_at(blk, 0) * a.d[b], f16_at(blk, 2) * a.d[b]);
        let (sc, mins) = q4k_scales_mins(&blk[4..16]);
        let qs = &blk[16..];
        let xs = &a.qs[b * QK_K..];
        let (mut dot, mut min) = (0i32, 0i32);
        for j in 0..8 {
            let (chunk, shift) = (j / 2, 4 * (j % 2));
            let s: i32 = (0..32).map(|l| ((qs[32 * chunk + l] >> shift) & 0xf) as i32 * xs[32 * j + l] as i32).sum();
            dot += sc[j] as i32 * s;
            let sum_x = a.bsums[b * 16 + 2 * j] as i32 + a.bsums[b * 16 + 2 * j + 1] as i32;
            min += mins[j] as i32 * sum_x;
        }
        total += d * dot as f32 - dmin * min as f32;
    }
    total
}

/// The 6-bit value of weight `i` (0..256) of a Q6_K block.
pub fn q6k_value(blk: &[u8], i: usize) -> i32 {
    let (half, rest) = (i / 128, i % 128);
    let (quarter, l) = (rest / 32, rest % 32);
    let ql = blk[64 * half + l + 32 * (quarter % 2)];
    let low = if quarter < 2 { ql & 0xf } else { ql >> 4 };
    let high = (blk[128 + 32 * half + l] >> (2 * quarter)) & 3;
    (low | (high << 4)) as i32
}

fn dot_q6k(row: &[u8], a: &Activation) -> f32 {
    let mut total = 0f32;
    for (b, blk) in row.chunks_exact(Q6_K_BYTES).enumerate() {
        let d = f16_at(blk, 208) * a.d[b];
        let xs = &a.qs[b * QK_K..];
        let mut dot = 0i32;
        for g in 0..16 {
            let s: i32 = (16 * g..16 * g + 16).map(|i| (q6k_value(blk, i) - 32) * xs[i] as i32).sum();
            dot += blk[192 + g] as i8 as i32 * s;
        }
        total += d * dot as f32;
    }
    total
}
