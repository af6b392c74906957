//! Attention for a handful of query rows (a decode step) on the CPU, straight
//! from the cache's buffers: scores, softmax and the weighted sum of values
//! per (head, query), the pairs shared among candle's CPU threads. candle's
//! general matmul packs its operands for every call, which for one query
//! costs more than the arithmetic.

use candle_core::{DType, Storage, Tensor};

/// Query rows per kv head up to which this path is taken.
const MAX_ROWS: usize = 16;

/// What an attention call needs besides its tensors.
pub struct Params {
    /// Query rows per kv head: `groups × t`, ordered group-major.
    pub t: usize,
    pub scale: f32,
    pub softcap: Option<f32>,
}

/// `softmax(q kᵀ·scale (+softcap) + mask) v` for q [kv, rows, hd] (contiguous),
/// k and v [kv, s, hd] (any strides, unit last stride), mask [t, s] (0 or
/// −∞). None when this path does not apply (not f32 on the CPU, many rows).
pub fn attend(q: &Tensor, k: &Tensor, v: &Tensor, mask: Option<&Tensor>, p: &Params) -> candle_core::Result<Option<Tensor>> {
    let (kv, rows, hd) = q.dims3()?;
    let s = k.dim(1)?;
    if rows > MAX_ROWS || !q.device().is_cpu() || [q, k, v].iter().any(|x| x.dtype() != DType::F32) {
        return Ok(None);
    }
    let qs = q.flatten_all()?.to_vec1::<f32>()?;
    let mask = match mask {
        Some(m) => Some(m.to_dtype(DType::F32)?.flatten_all()?.to_vec1::<f32>()?),
        None => None,
    };
    let (k_guard, k_layout) = k.storage_and_layout();
    let (v_guard, v_layout) = v.storage_and_layout();
    let (Storage::Cpu(kc), Storage::Cpu(vc)) = (&*k_guard, &*v_guard) else {
        return Ok(None);
    };
    let (kd, vd) = (kc.as_slice::<f32>()?, vc.as_slice::<f32>()?);
    let (ks, vs) = (k_layout.stride(), v_layout.stride());
    if ks[2] != 1 || vs[2] != 1 {
        return Ok(None);
    }
    let (k0, v0) = (k_layout.start_offset(), v_layout.start_offset());
    let mut out = vec![0f32; kv * rows * hd];
    let dst = crate::quantized_matmul::SendPtr::new(out.as_mut_ptr());
    candle_core::utils::barrier_pool().execute_chunked(kv * rows, |items| {
        let mut scores = vec![0f32; s];
        for item in items {
            let (h, r) = (item / rows, item % rows);
            let query = &qs[item * hd..(item + 1) * hd];
            let key = |j: usize| &kd[k0 + h * ks[0] + j * ks[1]..][..hd];
            let value = |j: usize| &vd[v0 + h * vs[0] + j * vs[1]..][..hd];
            let mask_row = mask.as_ref().map(|m| &m[(r % p.t) * s..(r % p.t + 1) * s]);
            let mut max = f32::NEG_INFINITY;
            for (j, sc) in scores.iter_mut().enumerate() {
                let mut x = dot(query, key(j)) * p.scale;
                if let Some(cap) = p.softcap {
                    x = (x / cap).tanh() * cap;
                }
                if let Some(m) = mask_row {
                    x += m[j];
                }
                *sc = x;
                max = max.max(x);
            }
            // SAFETY: each item writes its own row of `out`.
            let o = unsafe { std::slice::from_raw_parts_mut(dst.at(item * hd), hd) };
            if max == f32::NEG_INFINITY {
                continue; // nothing visible: zeros, as no weight is defined
            }
            let mut total = 0f32;
            for sc in scores.iter_mut() {
                *sc = (*sc - max).exp();
                total += *sc;
            }
            for (j, &w) in scores.iter().enumerate() {
                if w != 0.0 {
                    axpy(w / total, value(j), o);
                }
            }
        }
    });
    Ok(Some(Tensor::from_vec(out, (kv, rows, hd), q.device())?))
}

/// Σ a·b in eight lanes (so the compiler vectorizes it).
fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0f32; 8];
    let (ac, bc) = (a.chunks_exact(8), b.chunks_exact(8));
    let tail: f32 = ac.remainder().iter().zip(bc.remainder()).map(|(x, y)| x * y).sum();
    for (x, y) in ac.zip(bc) {
        for i in 0..8 {
            acc[i] += x[i] * y[i];
        }
    }
    acc.iter().sum::<f32>() + tail
}

/// y += w·x.
fn axpy(w: f32, x: &[f32], y: &mut [f32]) {
    for (yi, xi) in y.iter_mut().zip(x) {
        *yi += w * xi;
    }
}
