//! Products with GGUF block-quantized matrices: `y = x Wᵀ` for W stored
//! [out, in] in a GGUF quant type.
//!
//! On the CPU, a few rows of activations at a time (the decode step, one
//! token) go through our own kernels for the types Gemma 3 GGUF files are made
//! of (Q8_0, Q4_K, Q6_K): the activations are quantized to 8 bits per block
//! as llama.cpp does, each weight row is read once straight from the file's
//! blocks (no repacked copy), and the rows are shared among candle's CPU
//! worker threads. Long prompts of Q8_0 rows whose length candle's tiled
//! kernels do not take (not a multiple of 256, as Gemma 3 270M's 640) are
//! dequantized and multiplied in f32. Everything else is candle's `QMatMul`.

mod formats;
#[cfg(target_arch = "x86_64")]
mod x86;

use std::sync::{Arc, OnceLock};

use candle_core::quantized::{GgmlDType, QMatMul, QTensor};
use candle_core::{DType, Device, Module, Tensor};

pub use formats::{dot_rows_scalar, Activation, Format};

/// Rows of activations up to which the matrix-vector kernels are used.
const MAX_GEMV_ROWS: usize = 4;
/// Weight rows handed to a thread at a time.
const ROWS_PER_ITEM: usize = 16;

type DotRows = fn(Format, &[u8], usize, &Activation, &mut [f32]);

/// The dot-product kernels this CPU runs, fastest first.
fn available_kernels() -> Vec<(&'static str, DotRows)> {
    #[allow(unused_mut)]
    let mut kernels: Vec<(&'static str, DotRows)> = Vec::new();
    #[cfg(target_arch = "x86_64")]
    {
        if x86::avx512_available() {
            kernels.push(("avx512", |format, w, k, a, out| {
                // SAFETY: avx512_available() checked the CPU features; the
                // caller passes `out.len()` whole rows of `k` weights.
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
            kernels.push(("avx2", |format, w, k, a, out| {
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
    kernels.push(("scalar", dot_rows_scalar));
    kernels
}

/// The fastest dot-product kernels this CPU runs.
fn dot_rows() -> DotRows {
    static KERNEL: OnceLock<(&'static str, DotRows)> = OnceLock::new();
    KERNEL.get_or_init(|| available_kernels()[0]).1
}

/// The name of the CPU kernels in use ("avx512", "avx2" or "scalar").
pub fn kernel_name() -> &'static str {
    static NAME: OnceLock<&'static str> = OnceLock::new();
    NAME.get_or_init(|| available_kernels()[0].0)
}

/// A quantized weight matrix [out, in].
#[derive(Debug, Clone)]
pub struct QuantizedMatrix {
    tensor: Arc<QTensor>,
    candle: QMatMul,
    /// Set when our kernels take this matrix (a CPU tensor of a known type).
    format: Option<Format>,
    out_dim: usize,
    in_dim: usize,
}

impl QuantizedMatrix {
    pub fn new(tensor: Arc<QTensor>) -> candle_core::Result<Self> {
        let (out_dim, in_dim) = tensor.shape().dims2()?;
        let format = match (tensor.device(), tensor.dtype()) {
            (Device::Cpu, GgmlDType::Q8_0) => Some(Format::Q8_0),
            (Device::Cpu, GgmlDType::Q4K) => Some(Format::Q4K),
            (Device::Cpu, GgmlDType::Q6K) => Some(Format::Q6K),
            _ => None,
        }
        .filter(|f| in_dim % f.block().0 == 0)
        // Without SIMD kernels (not x86-64, or no AVX2) candle's own, which
        // have NEON kernels, beat our scalar reference.
        .filter(|_| kernel_name() != "scalar");
        Ok(Self { candle: QMatMul::from_arc(tensor.clone())?, tensor, format, out_dim, in_dim })
    }

    /// `x Wᵀ` for f32 `x` [..., in].
    pub fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        let Some(format) = self.format else {
            return self.candle.forward(x);
        };
        let rows = x.elem_count() / self.in_dim;
        if rows <= MAX_GEMV_ROWS && x.dtype() == DType::F32 {
            return self.gemv(format, x);
        }
        if format == Format::Q8_0 && x.dtype() == DType::F32 {
            #[cfg(target_arch = "x86_64")]
            if x86::avx512_available() {
                return self.q8_0_gemm_avx512(x);
            }
            if self.in_dim % formats::QK_K != 0 {
                return self.q8_0_by_f32_gemm(x);
            }
        }
        self.candle.forward(x)
    }

    /// Many rows against a Q8_0 matrix, in 8-bit integers on AVX-512 VNNI:
    /// the activations quantized to Q8_0 (as llama.cpp does), tiles of 16
    /// weight rows shared among the CPU pool's threads.
    #[cfg(target_arch = "x86_64")]
    fn q8_0_gemm_avx512(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        let (n, k) = (self.out_dim, self.in_dim);
        let nb = k / formats::QK8_0;
        let xs = x.flatten_all()?.to_vec1::<f32>()?;
        let m = xs.len() / k;
        let (mut act_u8, mut act_d) = (vec![0u8; m * k], vec![0f32; m * nb]);
        let (dst_u8, dst_d) = (SendPtr::new(act_u8.as_mut_ptr()), SendPtr::new(act_d.as_mut_ptr()));
        let pool = candle_core::utils::barrier_pool();
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
        let data = self.tensor.data()?;
        let weights: &[u8] = &data;
        let row_bytes = Format::Q8_0.row_bytes(k);
        let mut out = vec![0f32; m * n];
        let dst = SendPtr::new(out.as_mut_ptr());
        let tile = x86::GEMM_TILE_ROWS;
        pool.execute_chunked(n.div_ceil(tile), |tiles| {
            for t in tiles {
                let (r0, r1) = (t * tile, ((t + 1) * tile).min(n));
                // SAFETY: avx512_available() was checked; this tile alone
                // writes columns r0..r1 of every output row.
                unsafe {
                    x86::gemm_q8_0_avx512(&weights[r0 * row_bytes..r1 * row_bytes], r1 - r0, k, &act_u8, &act_d, m, dst.at(r0), n)
                };
            }
        });
        let mut shape = x.dims().to_vec();
        if let Some(last) = shape.last_mut() {
            *last = n;
        }
        Tensor::from_vec(out, shape, x.device())
    }

    /// Many rows against a Q8_0 matrix whose rows candle's tiled kernels do
    /// not take (not whole 256s; its fallback is a scalar-order loop): the
    /// activations rounded to Q8_0 as llama.cpp and our decode step quantize
    /// them, the weights dequantized, in f32 GEMM. Large matrices (a tied
    /// output head) go a slice of rows at a time, to bound the f32 copy.
    fn q8_0_by_f32_gemm(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        const MAX_ELEMENTS: usize = 1 << 22;
        let mut xs = x.flatten_all()?.to_vec1::<f32>()?;
        formats::round_to_q8_0(&mut xs);
        let x = Tensor::from_vec(xs, x.shape(), x.device())?;
        let rows = (MAX_ELEMENTS / self.in_dim).max(1);
        if rows >= self.out_dim {
            return x.broadcast_matmul(&self.dequantize_q8_0(0, self.out_dim)?.t()?);
        }
        let parts = (0..self.out_dim)
            .step_by(rows)
            .map(|r0| x.broadcast_matmul(&self.dequantize_q8_0(r0, (r0 + rows).min(self.out_dim))?.t()?))
            .collect::<candle_core::Result<Vec<_>>>()?;
        Tensor::cat(&parts, x.rank() - 1)
    }

    /// Rows r0..r1 of the Q8_0 matrix in f32, shared among the CPU pool's
    /// threads (candle's `dequantize` runs on one, and takes the whole matrix).
    fn dequantize_q8_0(&self, r0: usize, r1: usize) -> candle_core::Result<Tensor> {
        let (n, k) = (r1 - r0, self.in_dim);
        let data = self.tensor.data()?;
        let blocks: &[u8] = &data[formats::Format::Q8_0.row_bytes(k) * r0..formats::Format::Q8_0.row_bytes(k) * r1];
        let mut out = vec![0f32; n * k];
        let dst = SendPtr::new(out.as_mut_ptr());
        let per_item = ROWS_PER_ITEM * k / formats::QK8_0;
        candle_core::utils::barrier_pool().execute_chunked((n * k / formats::QK8_0).div_ceil(per_item), |items| {
            let (b0, b1) = (items.start * per_item, (items.end * per_item).min(n * k / formats::QK8_0));
            // SAFETY: disjoint block ranges, each 32 values of `out`.
            let o = unsafe { std::slice::from_raw_parts_mut(dst.at(b0 * formats::QK8_0), (b1 - b0) * formats::QK8_0) };
            let src = &blocks[b0 * formats::Q8_0_BYTES..b1 * formats::Q8_0_BYTES];
            for (blk, vals) in src.chunks_exact(formats::Q8_0_BYTES).zip(o.chunks_exact_mut(formats::QK8_0)) {
                let d = formats::f16_at(blk, 0);
                for (v, &q) in vals.iter_mut().zip(&blk[2..]) {
                    *v = d * q as i8 as f32;
                }
            }
        });
        Tensor::from_vec(out, (n, k), &Device::Cpu)
    }

    fn gemv(&self, format: Format, x: &Tensor) -> candle_core::Result<Tensor> {
        let mut out = Self::gemv_many(&[(self, format)], x)?;
        Ok(out.remove(0))
    }

    /// `x Wᵢᵀ` for several matrices of the same input width (a layer's q, k
    /// and v, or gate and up): one quantization of `x` per weight format and
    /// one hand-out of rows to the threads for all of them. A decode step's
    /// small products take microseconds, so each saved hand-out counts.
    pub fn forward_many(ms: &[&QuantizedMatrix], x: &Tensor) -> candle_core::Result<Vec<Tensor>> {
        let rows = x.elem_count() / ms.first().map_or(1, |m| m.in_dim);
        let formats: Option<Vec<(&QuantizedMatrix, Format)>> = ms.iter().map(|m| m.format.map(|f| (*m, f))).collect();
        match formats {
            Some(f) if rows <= MAX_GEMV_ROWS && x.dtype() == DType::F32 && ms.iter().all(|m| m.in_dim == ms[0].in_dim) => {
                Self::gemv_many(&f, x)
            }
            _ => ms.iter().map(|m| m.forward(x)).collect(),
        }
    }

    fn gemv_many(ms: &[(&QuantizedMatrix, Format)], x: &Tensor) -> candle_core::Result<Vec<Tensor>> {
        let k = ms[0].0.in_dim;
        let xs = x.flatten_all()?.to_vec1::<f32>()?;
        let tokens = xs.len() / k;
        // The activations once per format (Q8_0 and K-quants block differently).
        let mut acts: [Option<Vec<Activation>>; 3] = [None, None, None];
        for &(_, f) in ms {
            let slot = &mut acts[f as usize];
            if slot.is_none() {
                *slot = Some(xs.chunks_exact(k).map(|row| Activation::quantize(row, f.block().0)).collect());
            }
        }
        let data = ms.iter().map(|(m, _)| m.tensor.data()).collect::<candle_core::Result<Vec<_>>>()?;
        let mut outs: Vec<Vec<f32>> = ms.iter().map(|(m, _)| vec![0f32; tokens * m.out_dim]).collect();
        let dsts: Vec<SendPtr<f32>> = outs.iter_mut().map(|o| SendPtr::new(o.as_mut_ptr())).collect();
        // Items of ROWS_PER_ITEM rows, numbered across the matrices in order.
        let firsts: Vec<usize> = ms
            .iter()
            .scan(0, |acc, (m, _)| {
                let first = *acc;
                *acc += m.out_dim.div_ceil(ROWS_PER_ITEM);
                Some(first)
            })
            .collect();
        let total = firsts.last().copied().unwrap_or(0) + ms.last().map_or(0, |(m, _)| m.out_dim.div_ceil(ROWS_PER_ITEM));
        let kernel = dot_rows();
        parallel_chunks(total, |items| {
            let mut item = items.start;
            while item < items.end {
                let i = firsts.iter().rposition(|&f| f <= item).unwrap_or(0);
                let ((m, format), n) = (ms[i], ms[i].0.out_dim);
                let end = items.end.min(firsts.get(i + 1).copied().unwrap_or(usize::MAX));
                let (r0, r1) = ((item - firsts[i]) * ROWS_PER_ITEM, ((end - firsts[i]) * ROWS_PER_ITEM).min(n));
                let row_bytes = format.row_bytes(m.in_dim);
                let w = &data[i][r0 * row_bytes..r1 * row_bytes];
                for (t, a) in acts[format as usize].iter().flatten().enumerate() {
                    // SAFETY: each thread writes only rows r0..r1 of each output
                    // row t of matrix i; the item ranges handed out are disjoint.
                    let o = unsafe { std::slice::from_raw_parts_mut(dsts[i].at(t * n + r0), r1 - r0) };
                    kernel(format, w, k, a, o);
                }
                item = end;
            }
        });
        ms.iter()
            .zip(outs)
            .map(|((m, _), out)| {
                let mut shape = x.dims().to_vec();
                if let Some(last) = shape.last_mut() {
                    *last = m.out_dim;
                }
                Tensor::from_vec(out, shape, x.device())
            })
            .collect()
    }
}

/// Runs `f` over `0..n_items` on the CPU pool's threads, in chunks taken
/// from a shared cursor. The chunks are finer than candle's
/// `execute_chunked` (32 per thread rather than 8), so the thread that
/// finishes first waits less for the last one: a decode step runs some 200
/// matrix products, each ending in such a wait.
fn parallel_chunks(n_items: usize, f: impl Fn(std::ops::Range<usize>) + Sync) {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let pool = candle_core::utils::barrier_pool();
    let threads = pool.n_workers() + 1;
    if threads == 1 || n_items < 2 {
        return f(0..n_items);
    }
    let chunk = n_items.div_ceil(threads * 32).max(1);
    let cursor = AtomicUsize::new(0);
    pool.execute(|_| loop {
        let start = cursor.fetch_add(chunk, Ordering::Relaxed);
        if start >= n_items {
            break;
        }
        f(start..(start + chunk).min(n_items));
    });
}

/// An output buffer shared by the CPU pool's threads, each writing its own
/// disjoint range.
#[derive(Clone, Copy)]
pub(crate) struct SendPtr<T>(*mut T);
// SAFETY: used only to hand disjoint output ranges to the pool's threads.
unsafe impl<T> Send for SendPtr<T> {}
unsafe impl<T> Sync for SendPtr<T> {}
impl<T> SendPtr<T> {
    pub(crate) fn new(p: *mut T) -> Self {
        Self(p)
    }

    /// # Safety
    /// `i` is within the buffer.
    pub(crate) unsafe fn at(self, i: usize) -> *mut T {
        self.0.add(i)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn random(n: usize, seed: u64) -> Vec<f32> {
        // A small LCG: the values only need to be varied and repeatable.
        let mut s = seed;
        (0..n)
            .map(|_| {
                s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                ((s >> 40) as f32 / (1u64 << 24) as f32 - 0.5) * 2.0
            })
            .collect()
    }

    fn matrix(dtype: GgmlDType, n: usize, k: usize) -> (QuantizedMatrix, Tensor) {
        let w = Tensor::from_vec(random(n * k, 7), (n, k), &Device::Cpu).unwrap();
        let q = QTensor::quantize(&w, dtype).unwrap();
        let dense = q.dequantize(&Device::Cpu).unwrap();
        (QuantizedMatrix::new(Arc::new(q)).unwrap(), dense)
    }

    /// Every SIMD kernel set this CPU runs gives the scalar reference's sums (same integers,
    /// float order differs), for every format, including odd row counts.
    #[test]
    fn simd_kernels_match_the_scalar_reference() {
        for (dtype, format) in [(GgmlDType::Q8_0, Format::Q8_0), (GgmlDType::Q4K, Format::Q4K), (GgmlDType::Q6K, Format::Q6K)] {
            let (n, k) = (37, 1024 + if format == Format::Q8_0 { 96 } else { 0 });
            let (m, _) = matrix(dtype, n, k);
            let data = m.tensor.data().unwrap();
            let a = Activation::quantize(&random(k, 3), format.block().0);
            let mut slow = vec![0f32; n];
            dot_rows_scalar(format, &data, k, &a, &mut slow);
            for (name, kernel) in available_kernels() {
                let mut fast = vec![0f32; n];
                kernel(format, &data, k, &a, &mut fast);
                for (f, s) in fast.iter().zip(&slow) {
                    assert!((f - s).abs() <= 1e-4 * (1.0 + s.abs()), "{name} {format:?}: {f} vs {s}");
                }
            }
        }
    }

    /// The integer GEMM gives what f32 GEMM gives on the same 8-bit
    /// activations (exact integer block sums; only float order differs),
    /// for row and token counts that are not multiples of the tiles.
    #[test]
    fn integer_gemm_matches_f32_gemm_on_the_same_rounded_activations() {
        #[cfg(target_arch = "x86_64")]
        if x86::avx512_available() {
            let (n, k) = (37, 704);
            let (m, _) = matrix(GgmlDType::Q8_0, n, k);
            let x = Tensor::from_vec(random(23 * k, 5), (23, k), &Device::Cpu).unwrap();
            let ours = m.q8_0_gemm_avx512(&x).unwrap();
            let reference = m.q8_0_by_f32_gemm(&x).unwrap();
            let scale = reference.abs().unwrap().max_all().unwrap().to_scalar::<f32>().unwrap();
            let err = (ours - &reference).unwrap().abs().unwrap().max_all().unwrap().to_scalar::<f32>().unwrap();
            assert!(err < 1e-5 * scale, "max error {err} against scale {scale}");
        }
    }

    /// Several matrices of mixed formats and sizes in one pass give what
    /// each gives alone.
    #[test]
    fn forward_many_equals_one_at_a_time() {
        let k = 512;
        let ms = [matrix(GgmlDType::Q4K, 37, k).0, matrix(GgmlDType::Q6K, 5, k).0, matrix(GgmlDType::Q8_0, 70, k).0];
        for rows in [1, 2] {
            let x = Tensor::from_vec(random(rows * k, 9), (rows, k), &Device::Cpu).unwrap();
            let together = QuantizedMatrix::forward_many(&ms.iter().collect::<Vec<_>>(), &x).unwrap();
            for (m, t) in ms.iter().zip(together) {
                let alone = m.forward(&x).unwrap();
                let diff = (alone - t).unwrap().abs().unwrap().max_all().unwrap().to_scalar::<f32>().unwrap();
                assert_eq!(diff, 0.0);
            }
        }
    }

    /// The product equals the dequantized f32 product up to the 8-bit
    /// rounding of the activations (well under 1 % of the output's scale).
    #[test]
    fn products_match_dequantized_f32_for_one_and_many_rows() {
        for dtype in [GgmlDType::Q8_0, GgmlDType::Q4K, GgmlDType::Q6K] {
            let (n, k) = (45, 640 + if dtype == GgmlDType::Q8_0 { 0 } else { 128 });
            let (m, dense) = matrix(dtype, n, k);
            for rows in [1, 3, 9, 22] {
                let x = Tensor::from_vec(random(rows * k, 11), (1, rows, k), &Device::Cpu).unwrap();
                let ours = m.forward(&x).unwrap();
                assert_eq!(ours.dims(), &[1, rows, n]);
                let reference = x.broadcast_matmul(&dense.t().unwrap()).unwrap();
                let scale = reference.abs().unwrap().max_all().unwrap().to_scalar::<f32>().unwrap();
                let err = (ours - &reference).unwrap().abs().unwrap().max_all().unwrap().to_scalar::<f32>().unwrap();
                assert!(err < 0.01 * scale, "{dtype:?} rows={rows}: max error {err} against scale {scale}");
            }
        }
    }
}
