//! Building blocks shared by the decoder and the vision tower: linear layers
//! (dense now, quantized with GGUF), Gemma's RMSNorm and SigLIP's LayerNorm.

use candle_core::{DType, Module, Tensor, D};

use crate::error::Result;
use crate::weights::Weights;

/// `y = x Wᵀ + b`, with W stored [out, in] as in PyTorch's Linear.
#[derive(Debug, Clone)]
pub struct Linear {
    weight: Tensor,
    bias: Option<Tensor>,
}

impl Linear {
    pub fn load(w: &Weights, name: &str, in_dim: usize, out_dim: usize, bias: bool) -> Result<Self> {
        let weight = w.get(&format!("{name}.weight"), &[out_dim, in_dim])?;
        let bias = if bias { Some(w.get(&format!("{name}.bias"), &[out_dim])?) } else { None };
        Ok(Self { weight, bias })
    }

    pub fn from_weight(weight: Tensor) -> Self {
        Self { weight, bias: None }
    }
}

impl Module for Linear {
    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        let y = x.broadcast_matmul(&self.weight.t()?)?;
        match &self.bias {
            Some(b) => y.broadcast_add(b),
            None => Ok(y),
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
        let weight = w.get_f32(&format!("{name}.weight"), &[dim])?;
        Ok(Self { scale: (weight + 1.0)?, eps: eps as f32 })
    }
}

impl Module for GemmaRmsNorm {
    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        let dtype = x.dtype();
        let xf = x.to_dtype(DType::F32)?;
        let ms = xf.sqr()?.mean_keepdim(D::Minus1)?;
        let normed = xf.broadcast_div(&(ms + self.eps as f64)?.sqrt()?)?;
        normed.broadcast_mul(&self.scale)?.to_dtype(dtype)
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
