//! AVX2 and AVX-512 VNNI products of GGUF quantized weight rows with 8-bit
//! activations: the decode step's matrix-vector products, the prompt's Q8_0 GEMM.
//!
//! In the dot products each block multiplies unsigned 4/6-bit weights (or
//! |w| for Q8_0) with signed activations in 16-bit pairs (`maddubs`), applies
//! the block's integer scales in a 16×16→32-bit multiply-add, and converts to
//! float once per block. No product can
//! saturate: 63·127·2 < 2¹⁵ for Q6_K, 15·127·2 for Q4_K, 128·127·2 for Q8_0.
//!
//! Written by hand because no maintained crate offers GGUF block kernels
//! that candle does not; candle's own take another route (a repacked copy of
//! each matrix, or a scalar-order fallback when a row is not a multiple of
//! 256), which is what made decode slower than llama.cpp.

use std::arch::x86_64::*;

use super::formats::{Activation, Q4_K_BYTES, Q6_K_BYTES, Q8_0_BYTES, QK8_0, QK_K};

/// Whether this CPU runs these kernels.
pub fn available() -> bool {
    is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") && is_x86_feature_detected!("f16c")
}

/// # Safety
/// The CPU has AVX (the AVX2 kernels below are its only callers).
#[inline(always)]
#[allow(unused_unsafe)] // the intrinsics are safe where the build enables the feature (target-cpu=native)
unsafe fn hsum(v: __m256) -> f32 {
    // SAFETY: the caller has AVX (this function's contract); no memory is touched.
    unsafe {
        hsum128(_mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1)))
    }
}

/// # Safety
/// The CPU has SSE3 (always so under the AVX2 kernels, its only callers).
#[inline(always)]
#[allow(unused_unsafe)] // the intrinsics are safe where the build enables the feature (target-cpu=native)
unsafe fn hsum128(s: __m128) -> f32 {
    // SAFETY: the caller has SSE3 (this function's contract); no memory is touched.
    unsafe {
        let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
        _mm_cvtss_f32(_mm_add_ss(s, _mm_shuffle_ps(s, s, 1)))
    }
}

/// # Safety
/// `p` points to 2 readable bytes; the CPU has F16C.
#[inline(always)]
unsafe fn f16_to_f32(p: *const u8) -> f32 {
    // SAFETY: the caller guarantees the 2 bytes at `p` and F16C; the read is unaligned-safe.
    unsafe {
        let bits = (p as *const u16).read_unaligned();
        _mm_cvtss_f32(_mm_cvtph_ps(_mm_cvtsi32_si128(bits as i32)))
    }
}

/// How far ahead of the block being read the kernels ask for weight bytes.
/// One core's hardware prefetchers alone left a decode step below memory
/// speed; measured on a 2-core AVX-512 machine, 2–8 KiB ahead gave 15–20 %
/// more bandwidth per core on Q4_K rows.
const PREFETCH_AHEAD: usize = 4096;

/// Asks for the `bytes` of weights `PREFETCH_AHEAD` past `p` (a hint: it
/// never faults, even past the end of the matrix).
///
/// # Safety
/// None beyond x86-64 (SSE): a prefetch never faults, wherever it points.
#[inline(always)]
#[allow(unused_unsafe)] // the intrinsics are safe where the build enables the feature (target-cpu=native)
unsafe fn prefetch(p: *const u8, bytes: usize) {
    // SAFETY: `_mm_prefetch` is a hint that never faults; `wrapping_add` never overflows.
    unsafe {
        let mut off = 0;
        while off < bytes {
            _mm_prefetch::<_MM_HINT_T0>(p.wrapping_add(PREFETCH_AHEAD + off) as *const i8);
            off += 64;
        }
    }
}

/// # Safety
/// `p` points to 32 readable bytes; the CPU has AVX.
#[inline(always)]
unsafe fn load(p: *const u8) -> __m256i {
    // SAFETY: the caller guarantees the 32 bytes at `p` and AVX; the load is unaligned.
    unsafe {
        _mm256_loadu_si256(p as *const __m256i)
    }
}

/// Shuffle masks that broadcast 16-bit lane `i` of a 128-bit register to
/// all eight lanes (within each 128-bit half of a 256-bit register).
///
/// # Safety
/// The CPU has AVX; `i` < 8.
#[inline(always)]
unsafe fn lane_broadcast_mask(i: usize) -> __m256i {
    // SAFETY: the 32-byte load reads the local array `m` of 32 bytes.
    unsafe {
        let lo = (2 * i) as i8;
        let pair = [lo, lo + 1];
        let mut m = [0i8; 32];
        for (j, b) in m.iter_mut().enumerate() {
            *b = pair[j % 2];
        }
        _mm256_loadu_si256(m.as_ptr() as *const __m256i)
    }
}

/// The eight sums of eight i32x8 vectors, as one i32x8 (a transposing
/// reduction: 6 horizontal adds, 2 lane permutes, 1 add).
///
/// # Safety
/// The CPU has AVX2.
#[inline(always)]
#[allow(unused_unsafe)] // the intrinsics are safe where the build enables the feature (target-cpu=native)
unsafe fn sums8(p: [__m256i; 8]) -> __m256i {
    // SAFETY: the caller has AVX2 (this function's contract); no memory is touched.
    unsafe {
        let h01 = _mm256_hadd_epi32(p[0], p[1]);
        let h23 = _mm256_hadd_epi32(p[2], p[3]);
        let h45 = _mm256_hadd_epi32(p[4], p[5]);
        let h67 = _mm256_hadd_epi32(p[6], p[7]);
        let lo = _mm256_hadd_epi32(h01, h23);
        let hi = _mm256_hadd_epi32(h45, h67);
        _mm256_add_epi32(_mm256_permute2x128_si256(lo, hi, 0x20), _mm256_permute2x128_si256(lo, hi, 0x31))
    }
}

/// q·a of one Q8_0 block as eight i32 partial sums: |w| times a with w's sign.
///
/// # Safety
/// `blk` points to a Q8_0 block (34 bytes), `xs` to 32 activations; the CPU has AVX2.
#[inline(always)]
unsafe fn q8_0_block(blk: *const u8, xs: *const u8) -> __m256i {
    // SAFETY: the caller guarantees the block's 34 bytes and the 32 activation bytes, and AVX2.
    unsafe {
        let wq = load(blk.add(2));
        let aq = load(xs);
        _mm256_madd_epi16(_mm256_maddubs_epi16(_mm256_sign_epi8(wq, wq), _mm256_sign_epi8(aq, wq)), _mm256_set1_epi16(1))
    }
}

/// # Safety
/// The CPU must have AVX2, FMA and F16C; `w` holds `out.len()` rows of `k`
/// Q8_0 weights and `a` is `k` activations in blocks of 32.
#[target_feature(enable = "avx2,fma,f16c")]
pub unsafe fn dot_rows_q8_0(w: &[u8], k: usize, a: &Activation, out: &mut [f32]) {
    let nb = k / QK8_0;
    let row_bytes = nb * Q8_0_BYTES;
    assert!(w.len() >= out.len() * row_bytes && a.qs.len() >= k && a.d.len() >= nb);
    // SAFETY: the CPU has AVX2, FMA and F16C (this function's contract); the assert above keeps every row read (`out.len()` rows of `row_bytes`) inside `w` and every activation read (`k` bytes, `nb` scales) inside `a`; the prefetches never fault.
    unsafe {
        let xs = a.qs.as_ptr() as *const u8;
        for (r, o) in out.iter_mut().enumerate() {
            let row = w.as_ptr().add(r * row_bytes);
            let mut acc = _mm256_setzero_ps();
            let mut b = 0;
            // Eight blocks at a time: their integer sums are reduced together and
            // scaled by one vector of eight block scales.
            while b + 8 <= nb {
                prefetch(row.add(b * Q8_0_BYTES), 8 * Q8_0_BYTES);
                let p = [0, 1, 2, 3, 4, 5, 6, 7].map(|i| q8_0_block(row.add((b + i) * Q8_0_BYTES), xs.add((b + i) * QK8_0)));
                let bits = [0, 1, 2, 3, 4, 5, 6, 7].map(|i| (row.add((b + i) * Q8_0_BYTES) as *const u16).read_unaligned());
                let dw = _mm256_cvtph_ps(_mm_loadu_si128(bits.as_ptr() as *const __m128i));
                let scale = _mm256_mul_ps(dw, _mm256_loadu_ps(a.d.as_ptr().add(b)));
                acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(sums8(p)), scale, acc);
                b += 8;
            }
            let mut tail = _mm256_setzero_ps();
            while b < nb {
                let blk = row.add(b * Q8_0_BYTES);
                let p = q8_0_block(blk, xs.add(b * QK8_0));
                let scale = _mm256_set1_ps(f16_to_f32(blk) * *a.d.get_unchecked(b));
                tail = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p), scale, tail);
                b += 1;
            }
            *o = hsum(_mm256_add_ps(acc, tail));
        }
    }
}

/// The per-block constants of a Q4_K block against activation scale `da`:
/// [d·da, dmin·da] (lanes 0, 1), and its eight scales and eight mins as
/// 16-bit lanes (see `formats::q4k_scales_mins` for the bit layout, done
/// here on four 32-bit lanes at once).
///
/// # Safety
/// `blk` points to a Q4_K block (144 bytes); the CPU has AVX2 and F16C.
#[inline(always)]
unsafe fn q4k_block_header(blk: *const u8, da: f32) -> (__m128, __m128i, __m128i) {
    // SAFETY: the caller guarantees the block: the 4 bytes at 0 and the 16 at 4 are inside its 144; and AVX2, F16C.
    unsafe {
        let dd = _mm_mul_ps(_mm_cvtph_ps(_mm_cvtsi32_si128((blk as *const i32).read_unaligned())), _mm_set1_ps(da));
        // Lanes u0, u1, u2 of the 12 scale bytes (the 4th lane, from qs, is unused).
        let u = _mm_loadu_si128(blk.add(4) as *const __m128i);
        let low6 = _mm_and_si128(u, _mm_set1_epi32(0x3f3f_3f3f));
        let u2 = _mm_srlv_epi32(_mm_shuffle_epi32(u, 0b1010_1010), _mm_setr_epi32(0, 4, 0, 0));
        let top2 = _mm_slli_epi32(_mm_and_si128(_mm_srli_epi32(u, 6), _mm_set1_epi32(0x0303_0303)), 4);
        let high = _mm_or_si128(_mm_and_si128(u2, _mm_set1_epi32(0x0f0f_0f0f)), top2);
        // [scales 0-3, scales 4-7, mins 0-3, mins 4-7] as bytes.
        let both = _mm_unpacklo_epi32(low6, high);
        (dd, _mm_cvtepu8_epi16(both), _mm_cvtepu8_epi16(_mm_srli_si128(both, 8)))
    }
}

/// # Safety
/// As `dot_rows_q8_0`, for Q4_K rows and activations in blocks of 256.
#[target_feature(enable = "avx2,fma,f16c")]
pub unsafe fn dot_rows_q4k(w: &[u8], k: usize, a: &Activation, out: &mut [f32]) {
    let nb = k / QK_K;
    let row_bytes = nb * Q4_K_BYTES;
    assert!(w.len() >= out.len() * row_bytes && a.qs.len() >= k && a.d.len() >= nb && a.sums32.len() >= nb * 8);
    // SAFETY: as in `dot_rows_q8_0`: the features are this function's contract, and the assert above bounds every read of `w` and `a` (Q4_K rows of `row_bytes`, `nb` scales, 8 sums of 32 per block).
    unsafe {
        let m4 = _mm256_set1_epi8(0x0f);
        let masks = [0, 1, 2, 3, 4, 5, 6, 7].map(|i| lane_broadcast_mask(i));
        for (r, o) in out.iter_mut().enumerate() {
            let row = w.as_ptr().add(r * row_bytes);
            let mut acc = _mm256_setzero_ps();
            let mut acc_min = _mm_setzero_ps();
            for b in 0..nb {
                let blk = row.add(b * Q4_K_BYTES);
                prefetch(blk, Q4_K_BYTES);
                let (dd, sc, mins) = q4k_block_header(blk, *a.d.get_unchecked(b));
                // Σ_j min_j · (sum of the 32 activations of sub-block j).
                let sums = _mm_loadu_si128(a.sums32.as_ptr().add(b * 8) as *const __m128i);
                let min_dot = _mm_cvtepi32_ps(_mm_madd_epi16(mins, sums));
                acc_min = _mm_fmadd_ps(min_dot, _mm_permute_ps(dd, 0b0101_0101), acc_min);
                // Σ_j sc_j · (q·a over sub-block j).
                let sc16 = _mm256_broadcastsi128_si256(sc);
                let qs = blk.add(16);
                let xs = a.qs.as_ptr().add(b * QK_K) as *const u8;
                let mut sum = _mm256_setzero_si256();
                for c in 0..4 {
                    let q = load(qs.add(32 * c));
                    let lo = _mm256_and_si256(q, m4);
                    let hi = _mm256_and_si256(_mm256_srli_epi16(q, 4), m4);
                    let p0 = _mm256_maddubs_epi16(lo, load(xs.add(64 * c)));
                    let p1 = _mm256_maddubs_epi16(hi, load(xs.add(64 * c + 32)));
                    let p0 = _mm256_madd_epi16(p0, _mm256_shuffle_epi8(sc16, masks[2 * c]));
                    let p1 = _mm256_madd_epi16(p1, _mm256_shuffle_epi8(sc16, masks[2 * c + 1]));
                    sum = _mm256_add_epi32(sum, _mm256_add_epi32(p0, p1));
                }
                acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(sum), _mm256_broadcastss_ps(dd), acc);
            }
            let m = hsum128(acc_min);
            *o = hsum(acc) - m;
        }
    }
}

/// # Safety
/// As `dot_rows_q8_0`, for Q6_K rows and activations in blocks of 256.
#[target_feature(enable = "avx2,fma,f16c")]
pub unsafe fn dot_rows_q6k(w: &[u8], k: usize, a: &Activation, out: &mut [f32]) {
    let nb = k / QK_K;
    let row_bytes = nb * Q6_K_BYTES;
    assert!(w.len() >= out.len() * row_bytes && a.qs.len() >= k && a.d.len() >= nb && a.bsums.len() >= nb * 16);
    // SAFETY: as in `dot_rows_q8_0`: the features are this function's contract, and the assert above bounds every read of `w` and `a` (Q6_K rows of `row_bytes`, `nb` scales, 16 sums of 16 per block); the mask loads read local 32-byte arrays.
    unsafe {
        let m4 = _mm256_set1_epi8(0x0f);
        let m30 = _mm256_set1_epi8(0x30);
        // Scale pair (2i, 2i+1) of a half: 2i in the low 128 bits, 2i+1 in the high.
        let pair_masks = [0usize, 1, 2, 3].map(|i| {
            let mut m = [0i8; 32];
            for (j, b) in m.iter_mut().enumerate() {
                let lane = if j < 16 { 2 * i } else { 2 * i + 1 };
                *b = (2 * lane + j % 2) as i8;
            }
            _mm256_loadu_si256(m.as_ptr() as *const __m256i)
        });
        for (r, o) in out.iter_mut().enumerate() {
            let row = w.as_ptr().add(r * row_bytes);
            let mut acc = _mm256_setzero_ps();
            for b in 0..nb {
                let blk = row.add(b * Q6_K_BYTES);
                prefetch(blk, Q6_K_BYTES);
                let d = f16_to_f32(blk.add(208)) * *a.d.get_unchecked(b);
                let sc_all = _mm256_cvtepi8_epi16(_mm_loadu_si128(blk.add(192) as *const __m128i));
                // The −32 offset: Σ_g sc_g · (sum of the 16 activations of g).
                let bsums = _mm256_loadu_si256(a.bsums.as_ptr().add(b * 16) as *const __m256i);
                let offset = _mm256_madd_epi16(sc_all, bsums);
                let xs = a.qs.as_ptr().add(b * QK_K) as *const u8;
                let mut sum = _mm256_setzero_si256();
                for half in 0..2 {
                    let ql = blk.add(64 * half);
                    let qh = load(blk.add(128 + 32 * half));
                    let (ql0, ql1) = (load(ql), load(ql.add(32)));
                    // The half's eight scales as 16-bit lanes, in both 128-bit halves.
                    let sc8 = if half == 0 { _mm256_castsi256_si128(sc_all) } else { _mm256_extracti128_si256(sc_all, 1) };
                    let sc8 = _mm256_broadcastsi128_si256(sc8);
                    let q = [
                        _mm256_or_si256(_mm256_and_si256(ql0, m4), _mm256_and_si256(_mm256_slli_epi16(qh, 4), m30)),
                        _mm256_or_si256(_mm256_and_si256(ql1, m4), _mm256_and_si256(_mm256_slli_epi16(qh, 2), m30)),
                        _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(ql0, 4), m4), _mm256_and_si256(qh, m30)),
                        _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(ql1, 4), m4), _mm256_and_si256(_mm256_srli_epi16(qh, 2), m30)),
                    ];
                    for (i, qi) in q.into_iter().enumerate() {
                        let p = _mm256_maddubs_epi16(qi, load(xs.add(128 * half + 32 * i)));
                        sum = _mm256_add_epi32(sum, _mm256_madd_epi16(p, _mm256_shuffle_epi8(sc8, pair_masks[i])));
                    }
                }
                let total = _mm256_sub_epi32(sum, _mm256_slli_epi32(offset, 5));
                acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(total), _mm256_set1_ps(d), acc);
            }
            *o = hsum(acc);
        }
    }
}

/// Whether this CPU runs the AVX-512 (VNNI) kernels.
pub fn avx512_available() -> bool {
    available()
        && is_x86_feature_detected!("avx512f")
        && is_x86_feature_detected!("avx512bw")
        && is_x86_feature_detected!("avx512vnni")
}

/// Two 32-byte runs as one 512-bit register.
///
/// # Safety
/// `lo` and `hi` each point to 32 readable bytes; the CPU has AVX-512 F.
#[inline(always)]
unsafe fn load_pair(lo: *const u8, hi: *const u8) -> __m512i {
    // SAFETY: the caller guarantees the two 32-byte runs and AVX-512 F.
    unsafe {
        _mm512_inserti64x4(_mm512_castsi256_si512(load(lo)), load(hi), 1)
    }
}

/// Shuffle masks broadcasting 16-bit lane `a` (low 256 bits) and `b` (high
/// 256 bits) of a 128-bit register repeated in all four 128-bit lanes.
///
/// # Safety
/// The CPU has AVX-512 F; `a`, `b` < 8.
#[inline(always)]
unsafe fn lane_pair_mask(a: usize, b: usize) -> __m512i {
    // SAFETY: the 64-byte load reads the local array `m` of 64 bytes.
    unsafe {
        let mut m = [0i8; 64];
        for (j, v) in m.iter_mut().enumerate() {
            let lane = if j < 32 { a } else { b };
            *v = (2 * lane + j % 2) as i8;
        }
        _mm512_loadu_si512(m.as_ptr() as *const _)
    }
}

/// # Safety
/// As `dot_rows_q4k`, on a CPU with AVX-512 F, BW and VNNI.
#[target_feature(enable = "avx512f,avx512bw,avx512vnni,avx2,fma,f16c")]
pub unsafe fn dot_rows_q4k_avx512(w: &[u8], k: usize, a: &Activation, out: &mut [f32]) {
    let nb = k / QK_K;
    let row_bytes = nb * Q4_K_BYTES;
    assert!(w.len() >= out.len() * row_bytes && a.qs.len() >= k && a.d.len() >= nb && a.sums32.len() >= nb * 8);
    // SAFETY: as in `dot_rows_q4k`, with AVX-512 F, BW and VNNI from this function's contract.
    unsafe {
        let m4 = _mm512_set1_epi8(0x0f);
        // Register half h of 64 qs bytes from offset 64i: low nibbles are
        // sub-blocks 4i and 4i+2, high nibbles 4i+1 and 4i+3.
        let masks = [lane_pair_mask(0, 2), lane_pair_mask(1, 3), lane_pair_mask(4, 6), lane_pair_mask(5, 7)];
        for (r, o) in out.iter_mut().enumerate() {
            let row = w.as_ptr().add(r * row_bytes);
            let mut acc = _mm512_setzero_ps();
            let mut acc_min = _mm_setzero_ps();
            for b in 0..nb {
                let blk = row.add(b * Q4_K_BYTES);
                prefetch(blk, Q4_K_BYTES);
                let (dd, sc, mins) = q4k_block_header(blk, *a.d.get_unchecked(b));
                let sums = _mm_loadu_si128(a.sums32.as_ptr().add(b * 8) as *const __m128i);
                acc_min = _mm_fmadd_ps(_mm_cvtepi32_ps(_mm_madd_epi16(mins, sums)), _mm_permute_ps(dd, 0b0101_0101), acc_min);
                let sc16 = _mm512_broadcast_i32x4(sc);
                let qs = blk.add(16);
                let xs = a.qs.as_ptr().add(b * QK_K) as *const u8;
                let mut sum = _mm512_setzero_si512();
                for i in 0..2 {
                    let q = _mm512_loadu_si512(qs.add(64 * i) as *const _);
                    let lo = _mm512_and_si512(q, m4);
                    let hi = _mm512_and_si512(_mm512_srli_epi16(q, 4), m4);
                    let x = xs.add(128 * i);
                    let p_lo = _mm512_maddubs_epi16(lo, load_pair(x, x.add(64)));
                    let p_hi = _mm512_maddubs_epi16(hi, load_pair(x.add(32), x.add(96)));
                    sum = _mm512_dpwssd_epi32(sum, p_lo, _mm512_shuffle_epi8(sc16, masks[2 * i]));
                    sum = _mm512_dpwssd_epi32(sum, p_hi, _mm512_shuffle_epi8(sc16, masks[2 * i + 1]));
                }
                acc = _mm512_fmadd_ps(_mm512_cvtepi32_ps(sum), _mm512_broadcastss_ps(dd), acc);
            }
            let m = hsum128(acc_min);
            *o = _mm512_reduce_add_ps(acc) - m;
        }
    }
}

/// # Safety
/// As `dot_rows_q6k`, on a CPU with AVX-512 F, BW and VNNI.
#[target_feature(enable = "avx512f,avx512bw,avx512vnni,avx2,fma,f16c")]
pub unsafe fn dot_rows_q6k_avx512(w: &[u8], k: usize, a: &Activation, out: &mut [f32]) {
    let nb = k / QK_K;
    let row_bytes = nb * Q6_K_BYTES;
    assert!(w.len() >= out.len() * row_bytes && a.qs.len() >= k && a.d.len() >= nb && a.bsums.len() >= nb * 16);
    // SAFETY: as in `dot_rows_q6k`, with AVX-512 F, BW and VNNI from this function's contract; the index loads read local 64-byte arrays.
    unsafe {
        let m4 = _mm512_set1_epi8(0x0f);
        let m30 = _mm512_set1_epi8(0x30);
        // Per 256-bit half: the shift that brings qh's 2-bit field to bits 4-5.
        let shl_a = _mm512_inserti64x4(_mm512_set1_epi16(4), _mm256_set1_epi16(2), 1);
        let shr_b = _mm512_inserti64x4(_mm512_set1_epi16(0), _mm256_set1_epi16(2), 1);
        // Scale g (one per 16 weights) to the 128-bit lane holding its weights:
        // register A of half h holds scales 8h..8h+4, register B 8h+4..8h+8.
        let scale_index = |first: i16| {
            let mut idx = [0i16; 32];
            for (j, v) in idx.iter_mut().enumerate() {
                *v = first + (j / 8) as i16;
            }
            _mm512_loadu_si512(idx.as_ptr() as *const _)
        };
        let idx = [scale_index(0), scale_index(4), scale_index(8), scale_index(12)];
        for (r, o) in out.iter_mut().enumerate() {
            let row = w.as_ptr().add(r * row_bytes);
            let mut acc = _mm512_setzero_ps();
            for b in 0..nb {
                let blk = row.add(b * Q6_K_BYTES);
                prefetch(blk, Q6_K_BYTES);
                let d = f16_to_f32(blk.add(208)) * *a.d.get_unchecked(b);
                let sc_all = _mm256_cvtepi8_epi16(_mm_loadu_si128(blk.add(192) as *const __m128i));
                let bsums = _mm256_loadu_si256(a.bsums.as_ptr().add(b * 16) as *const __m256i);
                let offset = _mm512_zextsi256_si512(_mm256_madd_epi16(sc_all, bsums));
                let sc = _mm512_zextsi256_si512(sc_all);
                let xs = a.qs.as_ptr().add(b * QK_K) as *const u8;
                let mut sum = _mm512_setzero_si512();
                for half in 0..2 {
                    let ql = _mm512_loadu_si512(blk.add(64 * half) as *const _);
                    let qh = _mm512_broadcast_i64x4(load(blk.add(128 + 32 * half)));
                    // A: weights 0-63 of the half; B: weights 64-127.
                    let qa = _mm512_or_si512(_mm512_and_si512(ql, m4), _mm512_and_si512(_mm512_sllv_epi16(qh, shl_a), m30));
                    let qb = _mm512_or_si512(
                        _mm512_and_si512(_mm512_srli_epi16(ql, 4), m4),
                        _mm512_and_si512(_mm512_srlv_epi16(qh, shr_b), m30),
                    );
                    let x = xs.add(128 * half);
                    let pa = _mm512_maddubs_epi16(qa, _mm512_loadu_si512(x as *const _));
                    let pb = _mm512_maddubs_epi16(qb, _mm512_loadu_si512(x.add(64) as *const _));
                    sum = _mm512_dpwssd_epi32(sum, pa, _mm512_permutexvar_epi16(idx[2 * half], sc));
                    sum = _mm512_dpwssd_epi32(sum, pb, _mm512_permutexvar_epi16(idx[2 * half + 1], sc));
                }
                let total = _mm512_sub_epi32(sum, _mm512_slli_epi32(offset, 5));
                acc = _mm512_fmadd_ps(_mm512_cvtepi32_ps(total), _mm512_set1_ps(d), acc);
            }
            *o = _mm512_reduce_add_ps(acc);
        }
    }
}

/// Rows of a Q8_0 matrix taken together by `gemm_q8_0_avx512`: one 512-bit
/// register holds the same four weights of each.
pub const GEMM_TILE_ROWS: usize = 16;

/// Many activation rows times a Q8_0 matrix (prompt processing), on AVX-512
/// VNNI. `w` holds up to `GEMM_TILE_ROWS` rows (`rows` of them) of `k`
/// weights; `acts` are the token rows quantized to Q8_0 with `+128` (as
/// unsigned bytes, `act_u8`), and `out[c * ldo + r]` receives token c's
/// product with row r.
///
/// The tile's rows are first interleaved four bytes at a time, so one
/// `vpdpbusd` multiplies four activation bytes (broadcast) with four weights
/// of each of the 16 rows. The +128 offset makes the activations unsigned
/// (as `vpdpbusd` needs); 128·Σw per row and block is subtracted back, so
/// each block's integer sum is exactly Σ a·w, scaled in f32 as llama.cpp does.
///
/// # Safety
/// The CPU has AVX-512 F, BW and VNNI; `w` holds `rows` rows of `k` Q8_0
/// weights; `act_u8` holds `tokens × k` bytes and `act_d` `tokens × k/32`
/// scales; `out` points to `(tokens - 1) * ldo + rows` values that no other
/// thread writes (other tiles write other columns of the same rows).
#[target_feature(enable = "avx512f,avx512bw,avx512vnni,avx2,fma,f16c")]
#[allow(clippy::too_many_arguments)]
pub unsafe fn gemm_q8_0_avx512(
    w: &[u8],
    rows: usize,
    k: usize,
    act_u8: &[u8],
    act_d: &[f32],
    tokens: usize,
    out: *mut f32,
    ldo: usize,
) {
    let nb = k / QK8_0;
    let row_bytes = nb * Q8_0_BYTES;
    assert!(rows <= GEMM_TILE_ROWS && w.len() >= rows * row_bytes);
    assert!(act_u8.len() >= tokens * k && act_d.len() >= tokens * nb);
    // SAFETY: the features are this function's contract; the asserts above bound the reads of `w`, `act_u8` and `act_d`; `tile`, `scales` and `corr` are sized for `nb` blocks of 16 rows; the masked stores write `rows` values at `out + c·ldo` for c < tokens, which the caller reserves for this call.
    unsafe {
        // The tile, interleaved: block b, group g (4 bytes) → 64 bytes, row-major.
        let mut tile = vec![0u8; nb * 8 * 64];
        let mut scales = vec![0f32; nb * GEMM_TILE_ROWS];
        let mut corr = vec![0i32; nb * GEMM_TILE_ROWS];
        for r in 0..rows {
            let row = &w[r * row_bytes..(r + 1) * row_bytes];
            for (b, blk) in row.chunks_exact(Q8_0_BYTES).enumerate() {
                scales[b * GEMM_TILE_ROWS + r] = super::formats::f16_at(blk, 0);
                let qs = &blk[2..];
                corr[b * GEMM_TILE_ROWS + r] = 128 * qs.iter().map(|&q| q as i8 as i32).sum::<i32>();
                for g in 0..8 {
                    tile[(b * 8 + g) * 64 + 4 * r..][..4].copy_from_slice(&qs[4 * g..4 * g + 4]);
                }
            }
        }
        let mask: __mmask16 = if rows == GEMM_TILE_ROWS { 0xffff } else { (1u16 << rows) - 1 };
        let tp = tile.as_ptr();
        let mut c = 0;
        while c + 4 <= tokens {
            let mut acc = [_mm512_setzero_ps(); 4];
            for b in 0..nb {
                let wv: [__m512i; 8] = std::array::from_fn(|g| _mm512_loadu_si512(tp.add((b * 8 + g) * 64) as *const _));
                let neg_corr = _mm512_sub_epi32(_mm512_setzero_si512(), _mm512_loadu_si512(corr.as_ptr().add(b * 16) as *const _));
                let dw = _mm512_loadu_ps(scales.as_ptr().add(b * 16));
                for (j, a) in acc.iter_mut().enumerate() {
                    let x = act_u8.as_ptr().add((c + j) * k + b * QK8_0) as *const i32;
                    let mut s = neg_corr;
                    for (g, wg) in wv.iter().enumerate() {
                        s = _mm512_dpbusd_epi32(s, _mm512_set1_epi32(x.add(g).read_unaligned()), *wg);
                    }
                    let scale = _mm512_mul_ps(dw, _mm512_set1_ps(*act_d.get_unchecked((c + j) * nb + b)));
                    *a = _mm512_fmadd_ps(_mm512_cvtepi32_ps(s), scale, *a);
                }
            }
            for (j, a) in acc.iter().enumerate() {
                _mm512_mask_storeu_ps(out.add((c + j) * ldo), mask, *a);
            }
            c += 4;
        }
        while c < tokens {
            let mut acc = _mm512_setzero_ps();
            for b in 0..nb {
                let x = act_u8.as_ptr().add(c * k + b * QK8_0) as *const i32;
                let mut s = _mm512_sub_epi32(_mm512_setzero_si512(), _mm512_loadu_si512(corr.as_ptr().add(b * 16) as *const _));
                for g in 0..8 {
                    let wg = _mm512_loadu_si512(tp.add((b * 8 + g) * 64) as *const _);
                    s = _mm512_dpbusd_epi32(s, _mm512_set1_epi32(x.add(g).read_unaligned()), wg);
                }
                let scale = _mm512_mul_ps(_mm512_loadu_ps(scales.as_ptr().add(b * 16)), _mm512_set1_ps(*act_d.get_unchecked(c * nb + b)));
                acc = _mm512_fmadd_ps(_mm512_cvtepi32_ps(s), scale, acc);
            }
            _mm512_mask_storeu_ps(out.add(c * ldo), mask, acc);
            c += 1;
        }
    }
}
