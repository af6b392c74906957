//! The hand-out of work to candle's CPU worker threads, and the output pointer
//! the threads share to write their disjoint ranges.
//!
//! candle's pool rather than our own: the kernels run between candle's ops
//! hundreds of times per decode step, and a second pool would fight it for
//! the cores.

pub(crate) use candle_core::utils::barrier_pool;

/// Runs `f` over `0..n_items` on the CPU pool's threads, in chunks taken
/// from a shared cursor. The chunks are finer than candle's
/// `execute_chunked` (32 per thread rather than 8), so the thread that
/// finishes first waits less for the last one: a decode step runs some 200
/// matrix products, each ending in such a wait.
pub(crate) fn parallel_chunks(n_items: usize, f: impl Fn(std::ops::Range<usize>) + Sync) {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let pool = barrier_pool();
    let threads = pool.n_workers() + 1;
    if threads == 1 || n_items < 2 {
        return f(0..n_items);
    }
    let chunk = n_items.div_ceil(threads * 32).max(1);
    let cursor = AtomicUsize::new(0);
    pool.execute(|_| loop {
        let start = cursor.fetch_add(chunk, Ordering::Relaxed);
        if start >= n_items {
            break;
        }
        f(start..(start + chunk).min(n_items));
    });
}

/// An output buffer shared by the CPU pool's threads, each writing its own
/// disjoint range.
#[derive(Clone, Copy)]
pub(crate) struct SendPtr<T>(*mut T);
// SAFETY: used only to hand disjoint output ranges to the pool's threads.
unsafe impl<T> Send for SendPtr<T> {}
// SAFETY: as for Send: no two threads write the same element.
unsafe impl<T> Sync for SendPtr<T> {}
impl<T> SendPtr<T> {
    pub(crate) fn new(p: *mut T) -> Self {
        Self(p)
    }

    /// # Safety
    /// `i` is within the buffer.
    pub(crate) unsafe fn at(self, i: usize) -> *mut T {
        // SAFETY: the caller keeps `i` within the buffer.
        unsafe { self.0.add(i) }
    }
}
