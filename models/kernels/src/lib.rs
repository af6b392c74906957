//! medgemma-kernels: every unsafe SIMD routine of MedGemma Desk's model
//! runtime, on plain slices (`&[f32]`, GGUF block bytes), no candle tensors.
//!
//! - [`quantized`]: products with GGUF Q8_0 / Q4_K / Q6_K weight rows
//!   (AVX-512 VNNI, AVX2, scalar reference), the kernel set chosen at run time
//!   (`MEDGEMMA_KERNELS=avx512|avx2|scalar` caps it), rows shared among threads;
//! - [`gelu`]: Gemma's fused `gelu_tanh(gate) · up` with a vectorizing exp;
//! - [`attention`]: attention for a few query rows (a decode step);
//! - [`byte_views`]: byte views of word buffers (aligned copies of GGUF data).
//!
//! The unsafe rule: `medgemma-models` has no unsafe code of its own besides its
//! memory maps; everything else unsafe lives here, each `unsafe` block with a
//! `// SAFETY:` comment and each `unsafe fn` with its `# Safety` contract.
//! The only candle use is its CPU worker pool (see `threads`).

#![deny(unsafe_op_in_unsafe_fn)]
#![deny(clippy::undocumented_unsafe_blocks)]

pub mod attention;
pub mod byte_views;
pub mod gelu;
pub mod quantized;
#[doc(hidden)]
pub mod test_values;
mod threads;
