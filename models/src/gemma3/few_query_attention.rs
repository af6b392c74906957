//! Attention for a handful of query rows (a decode step) on the CPU, straight
//! from the cache's buffers: scores, softmax and the weighted sum of values,
//! split over runs of keys shared among candle's CPU threads. candle's
//! general matmul packs its operands for every call, which for one query
//! costs more than the arithmetic.

use candle_core::{DType, Storage, Tensor};

/// Query rows per kv head up to which this path is taken.
const MAX_ROWS: usize = 16;
/// Keys per work item.
const KEYS_PER_ITEM: usize = 64;
/// Value dimensions summed at a time.
const DIMS: usize = 32;

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
    // Flash-decoding: each item is one kv head and one run of keys, for all
    // of that head's query rows (each key and value is read once); it keeps
    // per row its running max, sum of weights and weighted values, and the
    // runs are merged after.
    let chunks = s.div_ceil(KEYS_PER_ITEM);
    let part = hd + 2; // weighted values, then max, then sum
    let mut partial = vec![0f32; kv * chunks * rows * part];
    let dst = crate::quantized_matmul::SendPtr::new(partial.as_mut_ptr());
    candle_core::utils::barrier_pool().execute_chunked(kv * chunks, |items| {
        let mut scores = vec![0f32; rows * KEYS_PER_ITEM];
        for item in items {
            let (h, c) = (item / chunks, item % chunks);
            let (j0, j1) = (c * KEYS_PER_ITEM, ((c + 1) * KEYS_PER_ITEM).min(s));
            // SAFETY: each item writes only its own `rows × part` values.
            let out = unsafe { std::slice::from_raw_parts_mut(dst.at(item * rows * part), rows * part) };
            for j in j0..j1 {
                let key = &kd[k0 + h * ks[0] + j * ks[1]..][..hd];
                for r in 0..rows {
                    let query = &qs[(h * rows + r) * hd..][..hd];
                    let mut x = dot(query, key) * p.scale;
                    if let Some(cap) = p.softcap {
                        x = (x / cap).tanh() * cap;
                    }
                    if let Some(m) = &mask {
                        x += m[(r % p.t) * s + j];
                    }
                    scores[r * KEYS_PER_ITEM + j - j0] = x;
                }
            }
            for r in 0..rows {
                let sc = &mut scores[r * KEYS_PER_ITEM..r * KEYS_PER_ITEM + (j1 - j0)];
                let max = sc.iter().copied().fold(f32::NEG_INFINITY, f32::max);
                let o = &mut out[r * part..(r + 1) * part];
                o[hd] = max;
                if max == f32::NEG_INFINITY {
                    continue; // every key of this run is masked
                }
                let mut total = 0f32;
                for x in sc.iter_mut() {
                    *x = (*x - max).exp();
                    total += *x;
                }
                o[hd + 1] = total;
            }
            // Σ_j w_j·v_j for every row, 32 dimensions at a time: each value
            // chunk is loaded once for all rows, whose sums stay in registers.
            let value = |j: usize, d0: usize| -> Option<&[f32; DIMS]> {
                let at = v0 + h * vs[0] + j * vs[1] + d0;
                vd.get(at..at + DIMS).and_then(|v| v.try_into().ok())
            };
            let weights = |r: usize| &scores[r * KEYS_PER_ITEM..r * KEYS_PER_ITEM + (j1 - j0)];
            if hd % DIMS == 0 && matches!(rows, 1 | 2 | 4 | 8) {
                for d0 in (0..hd).step_by(DIMS) {
                    let sums: Vec<[f32; DIMS]> = match rows {
                        1 => weighted_sums::<1>(&weights, j0..j1, |j| value(j, d0)).to_vec(),
                        2 => weighted_sums::<2>(&weights, j0..j1, |j| value(j, d0)).to_vec(),
                        4 => weighted_sums::<4>(&weights, j0..j1, |j| value(j, d0)).to_vec(),
                        _ => weighted_sums::<8>(&weights, j0..j1, |j| value(j, d0)).to_vec(),
                    };
                    for (r, sum) in sums.iter().enumerate() {
                        if out[r * part + hd] != f32::NEG_INFINITY {
                            out[r * part + d0..r * part + d0 + DIMS].copy_from_slice(sum);
                        }
                    }
                }
            } else {
                for r in 0..rows {
                    if out[r * part + hd] == f32::NEG_INFINITY {
                        continue;
                    }
                    let w = weights(r);
                    for (j, &wj) in (j0..j1).zip(w) {
                        axpy(wj, &vd[v0 + h * vs[0] + j * vs[1]..][..hd], &mut out[r * part..r * part + hd]);
                    }
                }
            }
        }
    });
    // Merge the runs: rescale each to the overall max, then normalize.
    let mut out = vec![0f32; kv * rows * hd];
    for h in 0..kv {
        for r in 0..rows {
            let run = |c: usize| &partial[((h * chunks + c) * rows + r) * part..][..part];
            let max = (0..chunks).map(|c| run(c)[hd]).fold(f32::NEG_INFINITY, f32::max);
            if max == f32::NEG_INFINITY {
                continue; // nothing visible: zeros, as no weight is defined
            }
            let o = &mut out[(h * rows + r) * hd..][..hd];
            let mut total = 0f32;
            for c in 0..chunks {
                let x = run(c);
                if x[hd] == f32::NEG_INFINITY {
                    continue;
                }
                let f = (x[hd] - max).exp();
                total += f * x[hd + 1];
                axpy(f, &x[..hd], o);
            }
            o.iter_mut().for_each(|v| *v /= total);
        }
    }
    Ok(Some(Tensor::from_vec(out, (kv, rows, hd), q.device())?))
}

/// Σ_j w[r][j]·v_j over the keys `keys`, for R rows at once (R known at
/// compile time, so the R sums live in registers).
fn weighted_sums<'a, const R: usize>(
    weights: &impl Fn(usize) -> &'a [f32],
    keys: std::ops::Range<usize>,
    value: impl Fn(usize) -> Option<&'a [f32; DIMS]>,
) -> [[f32; DIMS]; R] {
    let mut acc = [[0f32; DIMS]; R];
    let w: [&[f32]; R] = std::array::from_fn(|r| weights(r));
    for (i, j) in keys.enumerate() {
        let Some(v) = value(j) else { continue };
        for r in 0..R {
            let wr = w[r][i];
            for d in 0..DIMS {
                acc[r][d] += wr * v[d];
            }
        }
    }
    acc
}

/// Σ a·b in 32 lanes: the compiler vectorizes it into several independent
/// accumulators, so the additions do not wait on each other.
fn dot(a: &[f32], b: &[f32]) -> f32 {
    const LANES: usize = 32;
    let mut acc = [0f32; LANES];
    let (ac, bc) = (a.chunks_exact(LANES), b.chunks_exact(LANES));
    let tail: f32 = ac.remainder().iter().zip(bc.remainder()).map(|(x, y)| x * y).sum();
    for (x, y) in ac.zip(bc) {
        for i in 0..LANES {
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
