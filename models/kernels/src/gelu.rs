//! Gemma's gated MLP activation, `gelu_tanh(gate) · up`, on f32 slices: one
//! pass with a polynomial exp that vectorizes, split among the CPU threads.

use crate::threads::{barrier_pool, SendPtr};

/// `gelu_tanh(g) · u`, element-wise (`g` and `u` of the same length). Candle's
/// `gelu` calls libm's tanh per element, which was a seventh of a long prompt.
pub fn gelu_tanh_mul(g: &[f32], u: &[f32]) -> Vec<f32> {
    assert_eq!(g.len(), u.len(), "gate and up differ in length");
    let mut out = vec![0f32; g.len()];
    const CHUNK: usize = 4096;
    if g.len() <= 4 * CHUNK {
        gelu_tanh_mul_slice(g, u, &mut out);
    } else {
        let dst = SendPtr::new(out.as_mut_ptr());
        barrier_pool().execute_chunked(g.len().div_ceil(CHUNK), |items| {
            let (a, b) = (items.start * CHUNK, (items.end * CHUNK).min(g.len()));
            // SAFETY: the pool hands out disjoint item ranges within `out`.
            let o = unsafe { std::slice::from_raw_parts_mut(dst.at(a), b - a) };
            gelu_tanh_mul_slice(&g[a..b], &u[a..b], o);
        });
    }
    out
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

    /// The threaded fused pass (long input) gives libm's 0.5x(1 + tanh u)·y.
    #[test]
    fn fused_gelu_matches_the_tanh_formula() {
        let n = 40_000;
        let x: Vec<f32> = (0..n).map(|i| (i as f32 - n as f32 / 2.0) / 2_000.0).collect();
        let y: Vec<f32> = (0..n).map(|i| 1.0 + (i % 7) as f32 / 7.0).collect();
        let ours = gelu_tanh_mul(&x, &y);
        let err = x
            .iter()
            .zip(&y)
            .zip(&ours)
            .map(|((&x, &y), &o)| {
                let reference = 0.5 * x * (1.0 + (0.797_884_6 * (x + 0.044715 * x * x * x)).tanh()) * y;
                (o - reference).abs()
            })
            .fold(0f32, f32::max);
        assert!(err < 2e-5, "max error {err}");
    }
}
