//! Products with GGUF block-quantized weight rows (Q8_0, Q4_K, Q6_K) on byte
//! slices: the kernel sets, chosen once at run time, and the threaded hand-out.
//!
//! The activations are quantized to 8 bits per block as llama.cpp does, each
//! weight row is read once straight from the file's blocks (no repacked
//! copy), and the rows are shared among candle's CPU worker threads.
//!
//! Kernel sets, fastest first: AVX-512 VNNI (`avx512`), AVX2 (`avx2`) and the
//! scalar reference (`scalar`). The fastest this CPU runs is used, capped by
//! the environment variable `MEDGEMMA_KERNELS=avx512|avx2|scalar` when set (to
//! measure or test a lower set on a CPU that has a higher one).

pub mod formats;
#[cfg(target_arch = "x86_64")]
mod x86;

use std::sync::OnceLock;

use crate::threads::{barrier_pool, parallel_chunks, SendPtr};

pub use formats::{dot_rows_scalar, round_to_q8_0, Activation, Format, Q8_0_BYTES, QK8_0, QK_K};

/// Weight rows handed to a thread at a time.
const ROWS_PER_ITEM: usize = 16;

/// Dot products of `out.len()` rows of `k` weights (`&[u8]`, one format) with
/// one activation row.
pub type DotRows = fn(Format, &[u8], usize, &Activation, &mut [f32]);

/// A set of kernels; ordered from the slowest to the fastest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum KernelSet {
    Scalar,
    Avx2,
    Avx512,
}

impl KernelSet {
    /// "avx512", "avx2" or "scalar", as `MEDGEMMA_KERNELS` spells it.
    pub fn name(self) -> &'static str {
        match self {
            Self::Scalar => "scalar",
            Self::Avx2 => "avx2",
            Self::Avx512 => "avx512",
        }
    }

    fn from_name(name: &str) -> Option<Self> {
        [Self::Scalar, Self::Avx2, Self::Avx512].into_iter().find(|s| s.name() == name.trim().to_ascii_lowercase())
    }
}

/// The dot-product kernels this CPU runs, fastest first (whatever
/// `MEDGEMMA_KERNELS` says: tests go through all of them).
pub fn available_kernels() -> Vec<(KernelSet, DotRows)> {
    #[allow(unused_mut)]
    let mut kernels: Vec<(KernelSet, DotRows)> = Vec::new();
    #[cfg(target_arch = "x86_64")]
    {
        if x86::avx512_available() {
            kernels.push((KernelSet::Avx512, |format, w, k, a, out| {
                // SAFETY: avx512_available() checked the CPU features; the
                // kernels assert that `w` holds `out.len()` whole rows of `k`
                // weights and `a` `k` activations.
                unsafe {
                    match format {
                        Format::Q8_0 => x86::dot_rows_q8_0(w, k, a, out),
                        Format::Q4K => x86::dot_rows_q4k_avx512(w, k, a, out),
                        Format::Q6K => x86::dot_rows_q6k_avx512(w, k, a, out),
                    }
                }
            }));
        }
        if x86::available() {
            kernels.push((KernelSet::Avx2, |format, w, k, a, out| {
                // SAFETY: as above, with x86::available().
                unsafe {
                    match format {
                        Format::Q8_0 => x86::dot_rows_q8_0(w, k, a, out),
                        Format::Q4K => x86::dot_rows_q4k(w, k, a, out),
                        Format::Q6K => x86::dot_rows_q6k(w, k, a, out),
                    }
                }
            }));
        }
    }
    kernels.push((KernelSet::Scalar, dot_rows_scalar));
    kernels
}

/// The kernels in use: the fastest this CPU runs, no faster than
/// `MEDGEMMA_KERNELS` when it names a set.
fn selected_kernels() -> (KernelSet, DotRows) {
    static KERNEL: OnceLock<(KernelSet, DotRows)> = OnceLock::new();
    *KERNEL.get_or_init(|| {
        let cap = match std::env::var("MEDGEMMA_KERNELS") {
            Ok(name) => KernelSet::from_name(&name).unwrap_or_else(|| {
                eprintln!("medgemma-kernels: MEDGEMMA_KERNELS={name:?} is not avx512, avx2 or scalar; ignored");
                KernelSet::Avx512
            }),
            Err(_) => KernelSet::Avx512,
        };
        available_kernels().into_iter().find(|(set, _)| *set <= cap).expect("the scalar kernels always run")
    })
}

/// The kernel set in use (see the module's comment).
pub fn kernel_set() -> KernelSet {
    selected_kernels().0
}

/// A matrix's weight rows: `rows` rows of GGUF blocks of one format.
#[derive(Debug, Clone, Copy)]
pub struct WeightRows<'a> {
    pub blocks: &'a [u8],
    pub format: Format,
    pub rows: usize,
}

/// `x Wᵢᵀ` for several matrices of the same input width `k` (a layer's q, k
/// and v, or gate and up), `xs` a few rows of `k` activations: one
/// quantization of `xs` per weight format and one hand-out of rows to the
/// threads for all of them. A decode step's small products take
/// microseconds, so each saved hand-out counts. Output i is [tokens, rows_i].
pub fn gemv_many(ms: &[WeightRows], k: usize, xs: &[f32]) -> Vec<Vec<f32>> {
    let tokens = xs.len() / k;
    for m in ms {
        assert!(k.is_multiple_of(m.format.block().0) && m.blocks.len() >= m.rows * m.format.row_bytes(k), "weights too short");
    }
    // The activations once per format (Q8_0 and K-quants block differently).
    let mut acts: [Option<Vec<Activation>>; 3] = [None, None, None];
    for m in ms {
        let slot = &mut acts[m.format as usize];
        if slot.is_none() {
            *slot = Some(xs.chunks_exact(k).map(|row| Activation::quantize(row, m.format.block().0)).collect());
        }
    }
    let mut outs: Vec<Vec<f32>> = ms.iter().map(|m| vec![0f32; tokens * m.rows]).collect();
    let dsts: Vec<SendPtr<f32>> = outs.iter_mut().map(|o| SendPtr::new(o.as_mut_ptr())).collect();
    // Items of ROWS_PER_ITEM rows, numbered across the matrices in order.
    let firsts: Vec<usize> = ms
        .iter()
        .scan(0, |acc, m| {
            let first = *acc;
            *acc += m.rows.div_ceil(ROWS_PER_ITEM);
            Some(first)
        })
        .collect();
    let total = firsts.last().copied().unwrap_or(0) + ms.last().map_or(0, |m| m.rows.div_ceil(ROWS_PER_ITEM));
    let kernel = selected_kernels().1;
    parallel_chunks(total, |items| {
        let mut item = items.start;
        while item < items.end {
            let i = firsts.iter().rposition(|&f| f <= item).unwrap_or(0);
            let (m, n) = (ms[i], ms[i].rows);
            let end = items.end.min(firsts.get(i + 1).copied().unwrap_or(usize::MAX));
            let (r0, r1) = ((item - firsts[i]) * ROWS_PER_ITEM, ((end - firsts[i]) * ROWS_PER_ITEM).min(n));
            let row_bytes = m.format.row_bytes(k);
            let w = &m.blocks[r0 * row_bytes..r1 * row_bytes];
            for (t, a) in acts[m.format as usize].iter().flatten().enumerate() {
                // SAFETY: each thread writes only rows r0..r1 of each output
                // row t of matrix i; the item ranges handed out are disjoint.
                let o = unsafe { std::slice::from_raw_parts_mut(dsts[i].at(t * n + r0), r1 - r0) };
                kernel(m.format, w, k, a, o);
            }
            item = end;
        }
    });
    outs
}

/// Many rows `xs` [m, k] against a Q8_0 matrix `weights` [n, k] in 8-bit
/// integers on AVX-512 VNNI: the activations quantized to Q8_0 (as llama.cpp
/// does), tiles of 16 weight rows shared among the CPU pool's threads. The
/// output is [m, n]; None when the AVX-512 set is not in use.
#[cfg_attr(not(target_arch = "x86_64"), allow(unused_variables))]
pub fn q8_0_gemm(weights: &[u8], n: usize, k: usize, xs: &[f32]) -> Option<Vec<f32>> {
    #[cfg(target_arch = "x86_64")]
    if kernel_set() == KernelSet::Avx512 {
        // SAFETY: the AVX-512 set is in use, so the CPU has it.
        return Some(unsafe { q8_0_gemm_avx512(weights, n, k, xs) });
    }
    None
}

/// # Safety
/// The CPU has AVX-512 F, BW and VNNI (`x86::avx512_available()`).
#[cfg(target_arch = "x86_64")]
unsafe fn q8_0_gemm_avx512(weights: &[u8], n: usize, k: usize, xs: &[f32]) -> Vec<f32> {
    let nb = k / QK8_0;
    let row_bytes = Format::Q8_0.row_bytes(k);
    assert!(k.is_multiple_of(QK8_0) && weights.len() >= n * row_bytes, "weights too short");
    let m = xs.len() / k;
    let (mut act_u8, mut act_d) = (vec![0u8; m * k], vec![0f32; m * nb]);
    let (dst_u8, dst_d) = (SendPtr::new(act_u8.as_mut_ptr()), SendPtr::new(act_d.as_mut_ptr()));
    let pool = barrier_pool();
    pool.execute_chunked(m, |tokens| {
        // SAFETY: each token's bytes and scales are written by one thread.
        let (q, d) = unsafe {
            (
                std::slice::from_raw_parts_mut(dst_u8.at(tokens.start * k), tokens.len() * k),
                std::slice::from_raw_parts_mut(dst_d.at(tokens.start * nb), tokens.len() * nb),
            )
        };
        formats::quantize_q8_0_offset(&xs[tokens.start * k..tokens.end * k], q, d);
    });
    let mut out = vec![0f32; m * n];
    let dst = SendPtr::new(out.as_mut_ptr());
    let tile = x86::GEMM_TILE_ROWS;
    pool.execute_chunked(n.div_ceil(tile), |tiles| {
        for t in tiles {
            let (r0, r1) = (t * tile, ((t + 1) * tile).min(n));
            // SAFETY: the caller checked the CPU has AVX-512; this tile alone
            // writes columns r0..r1 of every one of the m output rows of n.
            unsafe {
                x86::gemm_q8_0_avx512(&weights[r0 * row_bytes..r1 * row_bytes], r1 - r0, k, &act_u8, &act_d, m, dst.at(r0), n)
            };
        }
    });
    out
}

/// Rows of a Q8_0 matrix `blocks` ([n, k]) in f32, shared among the CPU
/// pool's threads (candle's `dequantize` runs on one, and takes the whole matrix).
pub fn dequantize_q8_0(blocks: &[u8], n: usize, k: usize) -> Vec<f32> {
    assert!(k.is_multiple_of(QK8_0) && blocks.len() >= Format::Q8_0.row_bytes(k) * n, "weights too short");
    let mut out = vec![0f32; n * k];
    let dst = SendPtr::new(out.as_mut_ptr());
    let per_item = ROWS_PER_ITEM * k / QK8_0;
    barrier_pool().execute_chunked((n * k / QK8_0).div_ceil(per_item), |items| {
        let (b0, b1) = (items.start * per_item, (items.end * per_item).min(n * k / QK8_0));
        // SAFETY: disjoint block ranges, each 32 values of `out`.
        let o = unsafe { std::slice::from_raw_parts_mut(dst.at(b0 * QK8_0), (b1 - b0) * QK8_0) };
        let src = &blocks[b0 * Q8_0_BYTES..b1 * Q8_0_BYTES];
        for (blk, vals) in src.chunks_exact(Q8_0_BYTES).zip(o.chunks_exact_mut(QK8_0)) {
            let d = formats::f16_at(blk, 0);
            for (v, &q) in vals.iter_mut().zip(&blk[2..]) {
                *v = d * q as i8 as f32;
            }
        }
    });
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_values::lcg_values as random;
    use candle_core::quantized::{GgmlDType, QTensor};
    use candle_core::{Device, Tensor};

    /// An [n, k] matrix of random weights as GGUF blocks (quantized by candle).
    fn blocks(dtype: GgmlDType, n: usize, k: usize) -> Vec<u8> {
        let w = Tensor::from_vec(random(n * k, 7), (n, k), &Device::Cpu).unwrap();
        QTensor::quantize(&w, dtype).unwrap().data().unwrap().to_vec()
    }

    /// Says which kernel sets this CPU lacks, so that a pass does not read as
    /// "all sets tested" when only the lower ones ran.
    fn report_missing_sets(tested: &[KernelSet]) {
        if !tested.contains(&KernelSet::Avx512) {
            let instead = if tested.contains(&KernelSet::Avx2) { "AVX2" } else { "scalar" };
            eprintln!("SKIPPED: avx512 (F, BW, VNNI) not on this CPU; the {instead} kernels were tested instead");
        }
        if !tested.contains(&KernelSet::Avx2) {
            eprintln!("SKIPPED: avx2 (with FMA, F16C) not on this CPU; the scalar kernels were tested instead");
        }
    }

    /// Every SIMD kernel set this CPU runs (AVX-512 and AVX2 both, whatever
    /// MEDGEMMA_KERNELS says) gives the scalar reference's sums (same
    /// integers, float order differs), for every format, including odd row counts.
    #[test]
    fn simd_kernels_match_the_scalar_reference() {
        let kernels = available_kernels();
        for (dtype, format) in [(GgmlDType::Q8_0, Format::Q8_0), (GgmlDType::Q4K, Format::Q4K), (GgmlDType::Q6K, Format::Q6K)] {
            let (n, k) = (37, 1024 + if format == Format::Q8_0 { 96 } else { 0 });
            let data = blocks(dtype, n, k);
            let a = Activation::quantize(&random(k, 3), format.block().0);
            let mut slow = vec![0f32; n];
            dot_rows_scalar(format, &data, k, &a, &mut slow);
            for (set, kernel) in &kernels {
                let mut fast = vec![0f32; n];
                kernel(format, &data, k, &a, &mut fast);
                for (f, s) in fast.iter().zip(&slow) {
                    assert!((f - s).abs() <= 1e-4 * (1.0 + s.abs()), "{set:?} {format:?}: {f} vs {s}");
                }
            }
        }
        let tested: Vec<KernelSet> = kernels.iter().map(|(set, _)| *set).collect();
        eprintln!("kernel sets tested against the scalar reference: {tested:?}");
        report_missing_sets(&tested);
    }

    /// The integer GEMM gives what f32 GEMM gives on the same 8-bit
    /// activations (exact integer block sums; only float order differs),
    /// for row and token counts that are not multiples of the tiles.
    #[test]
    fn integer_gemm_matches_f32_gemm_on_the_same_rounded_activations() {
        #[cfg(target_arch = "x86_64")]
        if x86::avx512_available() {
            let (n, k, m) = (37, 704, 23);
            let w = blocks(GgmlDType::Q8_0, n, k);
            let x = random(m * k, 5);
            // SAFETY: avx512_available() checked the CPU.
            let ours = unsafe { q8_0_gemm_avx512(&w, n, k, &x) };
            let mut rounded = x.clone();
            round_to_q8_0(&mut rounded);
            let dense = dequantize_q8_0(&w, n, k);
            let reference: Vec<f32> = (0..m * n)
                .map(|i| {
                    let (t, r) = (i / n, i % n);
                    rounded[t * k..(t + 1) * k].iter().zip(&dense[r * k..(r + 1) * k]).map(|(a, b)| a * b).sum()
                })
                .collect();
            let scale = reference.iter().fold(0f32, |s, v| s.max(v.abs()));
            let err = ours.iter().zip(&reference).fold(0f32, |e, (a, b)| e.max((a - b).abs()));
            assert!(err < 1e-5 * scale, "max error {err} against scale {scale}");
            return;
        }
        eprintln!("SKIPPED: avx512 (F, BW, VNNI) not on this CPU; the integer GEMM was not tested (prompts use the f32 path)");
    }

    /// MEDGEMMA_KERNELS's names, and the order that caps the set.
    #[test]
    fn kernel_set_names_and_order() {
        for set in [KernelSet::Scalar, KernelSet::Avx2, KernelSet::Avx512] {
            assert_eq!(KernelSet::from_name(set.name()), Some(set));
        }
        assert_eq!(KernelSet::from_name(" AVX2 "), Some(KernelSet::Avx2));
        assert_eq!(KernelSet::from_name("neon"), None);
        assert!(KernelSet::Scalar < KernelSet::Avx2 && KernelSet::Avx2 < KernelSet::Avx512);
        eprintln!("kernel set in use: {} (MEDGEMMA_KERNELS={:?})", kernel_set().name(), std::env::var("MEDGEMMA_KERNELS").ok());
        if let Ok(cap) = std::env::var("MEDGEMMA_KERNELS") {
            if let Some(cap) = KernelSet::from_name(&cap) {
                assert!(kernel_set() <= cap, "MEDGEMMA_KERNELS={cap:?} but {:?} is in use", kernel_set());
            }
        }
    }
}
