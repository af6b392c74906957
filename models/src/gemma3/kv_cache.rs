//! Keys and values of the tokens seen so far, per layer. Sliding-window layers
//! keep only the last `window - 1` positions: no later query can see further.

use candle_core::Tensor;

use super::attention_mask::TokenKind;
use crate::error::Result;

pub struct LayerCache {
    /// Keys and values [1, kv_heads, capacity, head_dim], written in place:
    /// positions [0, len) hold the cached tokens.
    k: Option<Tensor>,
    v: Option<Tensor>,
    len: usize,
    /// Absolute position of the first cached key.
    start: usize,
    window: Option<usize>,
}

/// A new buffer [1, kv, capacity, hd] holding `len` positions of `from`
/// starting at `offset`.
fn copy_into_new(from: &Tensor, offset: usize, len: usize, capacity: usize) -> Result<Tensor> {
    let (b, kv, _, hd) = from.dims4()?;
    let buf = Tensor::zeros((b, kv, capacity, hd), from.dtype(), from.device())?;
    if len > 0 {
        buf.slice_set(&from.narrow(2, offset, len)?.contiguous()?, 2, 0)?;
    }
    Ok(buf)
}

impl LayerCache {
    /// The absolute position of the first cached key (what the next step sees first).
    pub fn start(&self) -> usize {
        self.start
    }

    /// Appends the new keys and values ([1, kv_heads, t, head_dim]) and returns all cached ones
    /// (views of the buffers: a decode step copies only its own token).
    pub fn append(&mut self, k: &Tensor, v: &Tensor) -> Result<(Tensor, Tensor)> {
        let need = self.len + k.dim(2)?;
        let capacity = self.k.as_ref().map_or(Ok(0), |b| b.dim(2))?;
        if need > capacity {
            // Grow by half at least, in steps of 256 positions.
            let capacity = need.max(capacity + capacity / 2).next_multiple_of(256);
            let grow = |old: &Option<Tensor>, new: &Tensor| match old {
                Some(old) => copy_into_new(old, 0, self.len, capacity),
                None => copy_into_new(new, 0, 0, capacity),
            };
            self.k = Some(grow(&self.k, k)?);
            self.v = Some(grow(&self.v, v)?);
        }
        let (Some(kb), Some(vb)) = (&self.k, &self.v) else {
            unreachable!("the buffers were just allocated")
        };
        kb.slice_set(&k.contiguous()?, 2, self.len)?;
        vb.slice_set(&v.contiguous()?, 2, self.len)?;
        self.len = need;
        Ok((kb.narrow(2, 0, need)?, vb.narrow(2, 0, need)?))
    }

    /// Drops keys no query can see any more on a sliding layer. The mask
    /// hides keys beyond the window, so this runs only once a quarter window
    /// has piled up, not at every step.
    fn trim(&mut self) -> Result<()> {
        let Some(window) = self.window else { return Ok(()) };
        let keep = window.saturating_sub(1);
        if self.len <= keep + (keep / 4).max(32) {
            return Ok(());
        }
        let drop = self.len - keep;
        if let (Some(k), Some(v)) = (&self.k, &self.v) {
            let capacity = k.dim(2)?;
            let (k, v) = (copy_into_new(k, drop, keep, capacity)?, copy_into_new(v, drop, keep, capacity)?);
            self.k = Some(k);
            self.v = Some(v);
            self.start += drop;
            self.len = keep;
        }
        Ok(())
    }

    /// A copy that shares no storage (the buffers are written in place).
    fn deep_clone(&self) -> Result<Self> {
        let copy = |t: &Option<Tensor>| t.as_ref().map(|t| copy_into_new(t, 0, self.len, self.len.max(1))).transpose();
        Ok(Self { k: copy(&self.k)?, v: copy(&self.v)?, len: self.len, start: self.start, window: self.window })
    }
}

pub struct KvCache {
    layers: Vec<LayerCache>,
    kinds: Vec<TokenKind>,
}

impl KvCache {
    /// One entry per layer: `Some(window)` for sliding layers.
    pub fn new(windows: Vec<Option<usize>>) -> Self {
        Self {
            layers: windows.into_iter().map(|window| LayerCache { k: None, v: None, len: 0, start: 0, window }).collect(),
            kinds: Vec::new(),
        }
    }

    /// How many positions the cache has seen (the next token's position).
    pub fn seen(&self) -> usize {
        self.kinds.len()
    }

    pub fn kinds(&self) -> &[TokenKind] {
        &self.kinds
    }

    pub(crate) fn record(&mut self, kinds: &[TokenKind]) {
        self.kinds.extend_from_slice(kinds);
    }

    pub(crate) fn layer_mut(&mut self, i: usize) -> &mut LayerCache {
        &mut self.layers[i]
    }

    pub(crate) fn trim(&mut self) {
        for l in &mut self.layers {
            // Trimming only drops memory; on failure the cache stays whole and correct.
            let _ = l.trim();
        }
    }

    /// Forgets every position from `len` on, so the cache is as it was after
    /// `len` tokens. Returns false (and changes nothing) when a sliding layer
    /// has already dropped keys that position `len - 1` would still attend to.
    pub fn truncate(&mut self, len: usize) -> bool {
        if !self.can_truncate(len) {
            return false;
        }
        for l in &mut self.layers {
            l.len = len.saturating_sub(l.start);
        }
        self.kinds.truncate(len);
        true
    }

    /// Whether `truncate(len)` would succeed.
    pub fn can_truncate(&self, len: usize) -> bool {
        len <= self.seen()
            && self.layers.iter().all(|l| match l.window {
                // Keys at [len - (window - 1), len) are needed, and the layer holds [start, seen).
                Some(w) => l.start == 0 || len >= l.start + w.saturating_sub(1),
                None => l.start == 0,
            })
    }
}

impl KvCache {
    /// An independent copy (a checkpoint for prompt reuse): the buffers are
    /// written in place, so a clone must not share them.
    pub fn try_clone(&self) -> Result<Self> {
        Ok(Self { layers: self.layers.iter().map(LayerCache::deep_clone).collect::<Result<_>>()?, kinds: self.kinds.clone() })
    }
}
