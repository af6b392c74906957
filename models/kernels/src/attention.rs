//! Attention for a handful of query rows (a decode step) on f32 slices
//! straight from the KV cache's buffers, split over runs of keys among threads.
//!
//! Scores, softmax and the weighted sum of values, flash-decoding style:
//! candle's general matmul packs its operands for every call, which for one
//! query costs more than the arithmetic.

use crate::threads::{barrier_pool, SendPtr};

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

/// The shape of one call: `kv` heads of `rows` query rows of `hd` values,
/// against `s` keys.
#[derive(Debug, Clone, Copy)]
pub struct Shape {
    pub kv: usize,
    pub rows: usize,
    pub hd: usize,
    pub s: usize,
}

/// Keys or values [kv, s, hd] inside a cache buffer: element (h, j, d) is
/// `data[start + h * head_stride + j * key_stride + d]`.
#[derive(Debug, Clone, Copy)]
pub struct CacheView<'a> {
    pub data: &'a [f32],
    pub start: usize,
    pub head_stride: usize,
    pub key_stride: usize,
}

/// `softmax(q kᵀ·scale (+softcap) + mask) v` for `qs` [kv, rows, hd]
/// (contiguous), `k` and `v` [kv, s, hd], `mask` [t, s] (0 or −∞): the
/// output [kv, rows, hd]. Rows that see no key are zeros.
pub fn attend(qs: &[f32], k: CacheView, v: CacheView, mask: Option<&[f32]>, shape: Shape, p: &Params) -> Vec<f32> {
    let Shape { kv, rows, hd, s } = shape;
    let (kd, vd) = (k.data, v.data);
    let (k0, v0) = (k.start, v.start);
    let (ks, vs) = ([k.head_stride, k.key_stride], [v.head_stride, v.key_stride]);
    // Flash-decoding: each item is one kv head and one run of keys, for all
    // of that head's query rows (each key and value is read once); it keeps
    // per row its running max, sum of weights and weighted values, and the
    // runs are merged after.
    let chunks = s.div_ceil(KEYS_PER_ITEM);
    let part = hd + 2; // weighted values, then max, then sum
    let mut partial = vec![0f32; kv * chunks * rows * part];
    let dst = SendPtr::new(partial.as_mut_ptr());
    barrier_pool().execute_chunked(kv * chunks, |items| {
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
                    if let Some(m) = mask {
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
    out
}

/// Σ_j w[r][j]·v_j over the keys `keys`, for R rows at once (R known at
/// compile time, so the R sums live in registers).
fn weighted_sums<'a, const R: usize>(
    weights: &impl Fn(usize) -> &'a [f32],
    keys: std::ops::Range<usize>,
    value: impl Fn(usize) -> Option<&'a [f32; DIMS]>,
) -> [[f32; DIMS]; R] {
    let mut acc = [[0f32; DIMS]; R];
    let w: [&[f32]; R] = std::array::from_fn(weights);
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

