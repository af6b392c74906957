//! Products with GGUF block-quantized matrices: `y = x Wᵀ` for W stored
//! [out, in] in a GGUF quant type; the candle side of medgemma-kernels' `quantized`.
//!
//! On the CPU, a few rows of activations at a time (the decode step, one
//! token) go through our own kernels for the types Gemma 3 GGUF files are made
//! of (Q8_0, Q4_K, Q6_K): the activations are quantized to 8 bits per block
//! as llama.cpp does, each weight row is read once straight from the file's
//! blocks (no repacked copy), and the rows are shared among candle's CPU
//! worker threads. Long prompts of Q8_0 rows whose length candle's tiled
//! kernels do not take (not a multiple of 256, as Gemma 3 270M's 640) are
//! dequantized and multiplied in f32. Everything else is candle's `QMatMul`.

use std::sync::Arc;

use candle_core::quantized::{GgmlDType, QMatMul, QTensor};
use candle_core::{DType, Device, Module, Tensor};
use medgemma_kernels::quantized::{self as kernels, KernelSet, WeightRows, QK_K};

pub use medgemma_kernels::quantized::Format;

/// Rows of activations up to which the matrix-vector kernels are used.
const MAX_GEMV_ROWS: usize = 4;

/// The name of the CPU kernels in use ("avx512", "avx2" or "scalar"; the
/// environment variable `MEDGEMMA_KERNELS` caps it, see medgemma-kernels).
pub fn cpu_kernels() -> &'static str {
    kernels::kernel_set().name()
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
        .filter(|_| kernels::kernel_set() != KernelSet::Scalar);
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
            if kernels::kernel_set() == KernelSet::Avx512 {
                return self.q8_0_gemm(x);
            }
            if self.in_dim % QK_K != 0 {
                return self.q8_0_by_f32_gemm(x);
            }
        }
        self.candle.forward(x)
    }

    /// Many rows against a Q8_0 matrix, in 8-bit integers on AVX-512 VNNI
    /// (see `medgemma_kernels::quantized::q8_0_gemm`); the caller checked
    /// that the AVX-512 set is in use.
    fn q8_0_gemm(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        let xs = x.flatten_all()?.to_vec1::<f32>()?;
        let data = self.tensor.data()?;
        let out = kernels::q8_0_gemm(&data, self.out_dim, self.in_dim, &xs)
            .ok_or_else(|| candle_core::Error::Msg("the AVX-512 kernels are not in use".into()))?;
        Tensor::from_vec(out, last_dim_replaced(x, self.out_dim), x.device())
    }

    /// Many rows against a Q8_0 matrix whose rows candle's tiled kernels do
    /// not take (not whole 256s; its fallback is a scalar-order loop): the
    /// activations rounded to Q8_0 as llama.cpp and our decode step quantize
    /// them, the weights dequantized, in f32 GEMM. Large matrices (a tied
    /// output head) go a slice of rows at a time, to bound the f32 copy.
    fn q8_0_by_f32_gemm(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        const MAX_ELEMENTS: usize = 1 << 22;
        let mut xs = x.flatten_all()?.to_vec1::<f32>()?;
        kernels::round_to_q8_0(&mut xs);
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
        let blocks: &[u8] = &data[Format::Q8_0.row_bytes(k) * r0..Format::Q8_0.row_bytes(k) * r1];
        Tensor::from_vec(kernels::dequantize_q8_0(blocks, n, k), (n, k), &Device::Cpu)
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
        let data = ms.iter().map(|(m, _)| m.tensor.data()).collect::<candle_core::Result<Vec<_>>>()?;
        let weights: Vec<WeightRows> =
            ms.iter().zip(&data).map(|((m, format), d)| WeightRows { blocks: d, format: *format, rows: m.out_dim }).collect();
        kernels::gemv_many(&weights, k, &xs)
            .into_iter()
            .zip(ms)
            .map(|(out, (m, _))| Tensor::from_vec(out, last_dim_replaced(x, m.out_dim), x.device()))
            .collect()
    }
}

/// `x`'s dims with the last one set to `n`.
fn last_dim_replaced(x: &Tensor, n: usize) -> Vec<usize> {
    let mut shape = x.dims().to_vec();
    if let Some(last) = shape.last_mut() {
        *last = n;
    }
    shape
}

#[cfg(test)]
mod tests {
    use super::*;
    use medgemma_kernels::test_values::lcg_values as random;

    fn matrix(dtype: GgmlDType, n: usize, k: usize) -> (QuantizedMatrix, Tensor) {
        let w = Tensor::from_vec(random(n * k, 7), (n, k), &Device::Cpu).unwrap();
        let q = QTensor::quantize(&w, dtype).unwrap();
        let dense = q.dequantize(&Device::Cpu).unwrap();
        (QuantizedMatrix::new(Arc::new(q)).unwrap(), dense)
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
