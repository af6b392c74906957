//! Attention for a handful of query rows (a decode step) on the CPU: the
//! candle side of medgemma-kernels' `attention` (views of the cache's buffers).

use candle_core::{DType, Storage, Tensor};
use medgemma_kernels::attention::{CacheView, Shape};

pub use medgemma_kernels::attention::Params;

/// Query rows per kv head up to which this path is taken.
const MAX_ROWS: usize = 16;

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
    let kview = CacheView { data: kd, start: k_layout.start_offset(), head_stride: ks[0], key_stride: ks[1] };
    let vview = CacheView { data: vd, start: v_layout.start_offset(), head_stride: vs[0], key_stride: vs[1] };
    let out = medgemma_kernels::attention::attend(&qs, kview, vview, mask.as_deref(), Shape { kv, rows, hd, s }, p);
    Ok(Some(Tensor::from_vec(out, (kv, rows, hd), q.device())?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, D};

    /// The same numbers as softmax(q kᵀ·scale + mask) v in candle, over
    /// several runs of keys, with a strided (cache-view) k and v and a mask
    /// that hides whole runs.
    #[test]
    fn matches_plain_attention_with_mask_and_views() {
        // 2, 4, 6 and 8 query rows per kv head: the register-blocked sums and the general path.
        for (groups, t) in [(2, 1), (2, 2), (2, 3), (4, 2)] {
            check(groups, t);
        }
    }

    fn check(groups: usize, t: usize) {
        let dev = Device::Cpu;
        let (kv, s, hd, cap) = (2, 150, 64, 200);
        let q = Tensor::randn(0f32, 1.0, (kv, groups * t, hd), &dev).unwrap();
        let buf_k = Tensor::randn(0f32, 1.0, (kv, cap, hd), &dev).unwrap();
        let buf_v = Tensor::randn(0f32, 1.0, (kv, cap, hd), &dev).unwrap();
        let (k, v) = (buf_k.narrow(1, 0, s).unwrap(), buf_v.narrow(1, 0, s).unwrap());
        // Query i sees keys 70 + i .. s - t + i (a sliding window after the first run).
        let mask: Vec<f32> = (0..t)
            .flat_map(|i| (0..s).map(move |j| if j >= 70 + i && j <= s - t + i { 0.0 } else { f32::NEG_INFINITY }))
            .collect();
        let mask = Tensor::from_vec(mask, (t, s), &dev).unwrap();
        let p = Params { t, scale: 0.3, softcap: None };
        let ours = attend(&q, &k, &v, Some(&mask), &p).unwrap().unwrap();
        let scores = (q.matmul(&k.t().unwrap()).unwrap() * 0.3).unwrap();
        let scores = scores.reshape((kv, groups, t, s)).unwrap().broadcast_add(&mask).unwrap();
        let probs = candle_nn::ops::softmax(&scores, D::Minus1).unwrap().reshape((kv, groups * t, s)).unwrap();
        let reference = probs.matmul(&v.contiguous().unwrap()).unwrap();
        let err = (ours - reference).unwrap().abs().unwrap().max_all().unwrap().to_scalar::<f32>().unwrap();
        assert!(err < 1e-5, "{groups} groups, {t} queries: max error {err}");
    }
}
