//! Repeatable pseudo-random values in [-1, 1) for the tests of the kernels
//! and of their callers in medgemma-models (not for anything else).

/// `n` values from a small LCG seeded with `seed`: varied and repeatable.
pub fn lcg_values(n: usize, seed: u64) -> Vec<f32> {
    let mut s = seed;
    (0..n)
        .map(|_| {
            s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            ((s >> 40) as f32 / (1u64 << 24) as f32 - 0.5) * 2.0
        })
        .collect()
}
