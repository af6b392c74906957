//! Building blocks shared by the decoder and the vision tower: linear layers
//! (dense, or quantized from GGUF), Gemma's RMSNorm and SigLIP's LayerNorm.

use std::sync::Arc;

use candle_core::quantized::QTensor;
use candle_core::{DType, Module, Tensor, D};

use crate::quantized_matmul::QuantizedMatrix;

/// `y = x Wᵀ + b`, with W stored [out, in] as in PyTorch's Linear: dense,
/// or a quantized GGUF matrix (see `quantized_matmul`).
#[derive(Debug, Clone)]
pub enum Linear {
    Dense { weight: Tensor, bias: Option<Tensor> },
    Quantized { weight: QuantizedMatrix, bias: Option<Tensor> },
}

impl Linear {
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
    /// `scale` is `1 + weight`, in f32, as the weights loader prepares it.
    pub fn new(scale: Tensor, eps: f64) -> Self {
        Self { scale, eps: eps as f32 }
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
    /// `weight` and `bias` in f32.
    pub fn new(weight: Tensor, bias: Tensor, eps: f64) -> Self {
        Self { weight, bias, eps: eps as f32 }
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
/// f32 it is medgemma-kernels' fused pass (candle's `gelu` calls libm's tanh
/// per element, which was a seventh of a long prompt).
pub fn gelu_tanh_mul(gate: &Tensor, up: &Tensor) -> candle_core::Result<Tensor> {
    if !gate.device().is_cpu() || gate.dtype() != DType::F32 || up.dtype() != DType::F32 || gate.shape() != up.shape() {
        return gate.gelu()? * up;
    }
    let (g, u) = (gate.flatten_all()?.to_vec1::<f32>()?, up.flatten_all()?.to_vec1::<f32>()?);
    Tensor::from_vec(medgemma_kernels::gelu::gelu_tanh_mul(&g, &u), gate.shape(), gate.device())
}

#[cfg(test)]
mod tests {
    use super::*;

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
