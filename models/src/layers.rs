//! Building blocks shared by the decoder and the vision tower: linear layers
//! (dense, or quantized from GGUF), Gemma's RMSNorm and SigLIP's LayerNorm.

use std::sync::Arc;

use candle_core::quantized::QTensor;
use candle_core::{DType, Module, Tensor, D};

use crate::error::Result;
use crate::quantized_matmul::QuantizedMatrix;
use crate::weights::Weights;

/// `y = x Wᵀ + b`, with W stored [out, in] as in PyTorch's Linear: dense,
/// or a quantized GGUF matrix (see `quantized_matmul`).
#[derive(Debug, Clone)]
pub enum Linear {
    Dense { weight: Tensor, bias: Option<Tensor> },
    Quantized { weight: QuantizedMatrix, bias: Option<Tensor> },
}

impl Linear {
    pub fn load(w: &Weights, name: &str, in_dim: usize, out_dim: usize, bias: bool) -> Result<Self> {
        w.linear(name, in_dim, out_dim, bias)
    }

    pub fn dense(weight: Tensor, bias: Option<Tensor>) -> Self {
        Self::Dense { weight, bias }
    }

    pub fn quantized(weight: QuantizedMatrix, bias: Option<Tensor>) -> Self {
        Self::Quantized { weight, bias }
    }

    pub fn from_weight(weight: Tensor) -> Self {
        Self::Dense { weight, bias: None }
    }
}

impl Linear {
    /// `x Wᵢᵀ (+ bᵢ)` for several layers reading the same input; quantized
    /// ones share one pass over the CPU threads (see `QuantizedMatrix::forward_many`).
    pub fn forward_many(layers: &[&Linear], x: &Tensor) -> candle_core::Result<Vec<Tensor>> {
        let quantized: Option<Vec<&QuantizedMatrix>> = layers
            .iter()
            .map(|l| match l {
                Self::Quantized { weight, bias: None } => Some(weight),
                _ => None,
            })
            .collect();
        match quantized {
            Some(ms) if ms.len() > 1 => {
                let dtype = x.dtype();
                QuantizedMatrix::forward_many(&ms, &x.to_dtype(DType::F32)?.contiguous()?)?
                    .into_iter()
                    .map(|y| y.to_dtype(dtype))
                    .collect()
            }
            _ => layers.iter().map(|l| l.forward(x)).collect(),
        }
    }
}

impl Module for Linear {
    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        let (y, bias) = match self {
            Self::Dense { weight, bias } => (x.broadcast_matmul(&weight.t()?)?, bias),
            // The quantized kernels take f32 activations.
            Self::Quantized { weight, bias } => {
                let dtype = x.dtype();
                (weight.forward(&x.to_dtype(DType::F32)?.contiguous()?)?.to_dtype(dtype)?, bias)
            }
        };
        match bias {
            Some(b) => y.broadcast_add(b),
            None => Ok(y),
        }
    }
}

/// A token embedding table [vocab, hidden]: dense, or quantized (GGUF), whose
/// rows are dequantized as they are looked up.
#[derive(Debug, Clone)]
pub enum Embedding {
    Dense(Tensor),
    Quantized { table: Arc<QTensor>, dtype: DType },
}

impl Embedding {
    /// The rows of `ids` (a 1-D u32 tensor), [n, hidden], in the run's dtype.
    pub fn lookup(&self, ids: &Tensor) -> candle_core::Result<Tensor> {
        match self {
            Self::Dense(t) => t.index_select(ids, 0),
            Self::Quantized { table, dtype } => table.embedding(ids)?.to_dtype(*dtype),
        }
    }

    /// The output head tied to this table: logits = h Eᵀ.
    pub fn tied_head(&self) -> candle_core::Result<Linear> {
        match self {
            Self::Dense(t) => Ok(Linear::from_weight(t.clone())),
            Self::Quantized { table, .. } => Ok(Linear::quantized(QuantizedMatrix::new(table.clone())?, None)),
        }
    }
}

/// Gemma's RMSNorm: computed in f32 and scaled by `(1 + weight)`.
#[derive(Debug, Clone)]
pub struct GemmaRmsNorm {
    scale: Tensor,
    eps: f32,
}

impl GemmaRmsNorm {
    pub fn load(w: &Weights, name: &str, dim: usize, eps: f64) -> Result<Self> {
        Ok(Self { scale: w.gemma_norm_scale(&format!("{name}.weight"), dim)?, eps: eps as f32 })
    }
}

impl Module for GemmaRmsNorm {
    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        // candle's fused kernel: x / √(mean(x²) + eps) · scale, in one pass
        // (a decode step runs six norms per layer).
        let dtype = x.dtype();
        candle_nn::ops::rms_norm(&x.to_dtype(DType::F32)?.contiguous()?, &self.scale, self.eps)?.to_dtype(dtype)
    }
}

/// LayerNorm with weight and bias (SigLIP), computed in f32.
#[derive(Debug, Clone)]
pub struct LayerNorm {
    weight: Tensor,
    bias: Tensor,
    eps: f32,
}

impl LayerNorm {
    pub fn load(w: &Weights, name: &str, dim: usize, eps: f64) -> Result<Self> {
        Ok(Self {
            weight: w.get_f32(&format!("{name}.weight"), &[dim])?,
            bias: w.get_f32(&format!("{name}.bias"), &[dim])?,
            eps: eps as f32,
        })
    }
}

impl Module for LayerNorm {
    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        let dtype = x.dtype();
        let xf = x.to_dtype(DType::F32)?;
        let mean = xf.mean_keepdim(D::Minus1)?;
        let centered = xf.broadcast_sub(&mean)?;
        let var = centered.sqr()?.mean_keepdim(D::Minus1)?;
        let normed = centered.broadcast_div(&(var + self.eps as f64)?.sqrt()?)?;
        normed.broadcast_mul(&self.weight)?.broadcast_add(&self.bias)?.to_dtype(dtype)
    }
}

/// Softmax over the last dimension, in f32.
pub fn softmax_f32(x: &Tensor) -> candle_core::Result<Tensor> {
    let dtype = x.dtype();
    candle_nn::ops::softmax_last_dim(&x.to_dtype(DType::F32)?)?.to_dtype(dtype)
}

/// `gelu_tanh(gate) · up`, element-wise: Gemma's gated MLP. On the CPU in
/// f32 it is one pass with a polynomial exp that vectorizes (candle's `gelu`
/// calls libm's tanh per element, which was a seventh of a long prompt).
pub fn gelu_tanh_mul(gate: &Tensor, up: &Tensor) -> candle_core::Result<Tensor> {
    if !gate.device().is_cpu() || gate.dtype() != DType::F32 || up.dtype() != DType::F32 || gate.shape() != up.shape() {
        return gate.gelu()? * up;
    }
    let (g, u) = (gate.flatten_all()?.to_vec1::<f32>()?, up.flatten_all()?.to_vec1::<f32>()?);
    let mut out = vec![0f32; g.len()];
    const CHUNK: usize = 4096;
    if g.len() <= 4 * CHUNK {
        gelu_tanh_mul_slice(&g, &u, &mut out);
    } else {
        let dst = crate::quantized_matmul::SendPtr::new(out.as_mut_ptr());
        candle_core::utils::barrier_pool().execute_chunked(g.len().div_ceil(CHUNK), |items| {
            let (a, b) = (items.start * CHUNK, (items.end * CHUNK).min(g.len()));
            // SAFETY: the pool hands out disjoint item ranges within `out`.
            let o = unsafe { std::slice::from_raw_parts_mut(dst.at(a), b - a) };
            gelu_tanh_mul_slice(&g[a..b], &u[a..b], o);
        });
    }
    Tensor::from_vec(out, gate.shape(), gate.device())
}

/// gelu_tanh(x) = x / (1 + exp(−2u)), u = √(2/π)(x + 0.044715x³), the same
/// function as 0.5x(1 + tanh u).
fn gelu_tanh_mul_slice(g: &[f32], u: &[f32], out: &mut [f32]) {
    const SQRT_2_OVER_PI: f32 = 0.797_884_6;
    for ((o, &x), &y) in out.iter_mut().zip(g).zip(u) {
        let inner = SQRT_2_OVER_PI * (x + 0.044715 * x * x * x);
        *o = x / (1.0 + exp_approx(-2.0 * inner)) * y;
    }
}

/// eˣ to a few units in the last place, in plain float operations that the
/// compiler turns into SIMD: x = n·ln2 + r with ln2 split in two parts so r
/// is exact (Cody–Waite), 2ⁿ from the exponent bits, eʳ (|r| ≤ ½ln2) from
/// its Taylor series to degree 7.
#[inline(always)]
fn exp_approx(x: f32) -> f32 {
    const LN2_HI: f32 = 0.693_145_75;
    const LN2_LO: f32 = 1.428_606_8e-6;
    let x = x.clamp(-87.0, 88.0);
    // Round to nearest with the 1.5·2²³ trick (no rounding instruction needed).
    let n = (x * std::f32::consts::LOG2_E + 12_582_912.0) - 12_582_912.0;
    let r = (x - n * LN2_HI) - n * LN2_LO;
    let p = 1.0 + r * (1.0 + r * (0.5 + r * (1.0 / 6.0 + r * (1.0 / 24.0 + r * (1.0 / 120.0 + r * (1.0 / 720.0 + r / 5040.0))))));
    p * f32::from_bits(((n as i32 + 127) as u32) << 23)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exp_approx_is_within_a_few_ulps_of_libm() {
        let mut worst = 0f32;
        for i in -8700..8800 {
            let x = i as f32 / 100.0 + 0.003;
            worst = worst.max(((exp_approx(x) - x.exp()) / x.exp()).abs());
        }
        assert!(worst < 5e-7, "worst relative error {worst}");
    }

    #[test]
    fn fused_gelu_matches_candles_gelu_tanh() {
        let n = 40_000;
        let x: Vec<f32> = (0..n).map(|i| (i as f32 - n as f32 / 2.0) / 2_000.0).collect();
        let y: Vec<f32> = (0..n).map(|i| 1.0 + (i % 7) as f32 / 7.0).collect();
        let dev = candle_core::Device::Cpu;
        let (gx, uy) = (Tensor::from_vec(x, (4, n / 4), &dev).unwrap(), Tensor::from_vec(y, (4, n / 4), &dev).unwrap());
        let ours = gelu_tanh_mul(&gx, &uy).unwrap();
        let reference = (gx.gelu().unwrap() * &uy).unwrap();
        let err = (ours - reference).unwrap().abs().unwrap().max_all().unwrap().to_scalar::<f32>().unwrap();
        assert!(err < 2e-5, "max error {err}");
    }
}
