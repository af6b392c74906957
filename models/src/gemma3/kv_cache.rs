//! Keys and values of the tokens seen so far, per layer. Sliding-window layers
//! keep only the last `window - 1` positions: no later query can see further.

use candle_core::Tensor;

use super::attention_mask::TokenKind;
use crate::error::Result;

pub struct LayerCache {
    k: Option<Tensor>,
    v: Option<Tensor>,
    /// Absolute position of the first cached key.
    start: usize,
    window: Option<usize>,
}

impl LayerCache {
    /// The absolute position of the first cached key (what the next step sees first).
    pub fn start(&self) -> usize {
        self.start
    }

    /// Appends the new keys and values ([1, kv_heads, t, head_dim]) and returns all cached ones.
    pub fn append(&mut self, k: &Tensor, v: &Tensor) -> Result<(Tensor, Tensor)> {
        let (k, v) = match (&self.k, &self.v) {
            (Some(pk), Some(pv)) => (Tensor::cat(&[pk, k], 2)?, Tensor::cat(&[pv, v], 2)?),
            _ => (k.clone(), v.clone()),
        };
        self.k = Some(k.clone());
        self.v = Some(v.clone());
        Ok((k, v))
    }

    fn len(&self) -> usize {
        self.k.as_ref().map_or(0, |k| k.dim(2).unwrap_or(0))
    }

    fn trim(&mut self) -> Result<()> {
        let Some(window) = self.window else { return Ok(()) };
        let keep = window.saturating_sub(1);
        let len = self.len();
        if len > keep {
            let drop = len - keep;
            self.k = Some(self.k.as_ref().map(|k| k.narrow(2, drop, keep)).transpose()?.unwrap().contiguous()?);
            self.v = Some(self.v.as_ref().map(|v| v.narrow(2, drop, keep)).transpose()?.unwrap().contiguous()?);
            self.start += drop;
        }
        Ok(())
    }
}

/// The decoder's memory of one conversation: every layer's keys and values and
/// what kind each position was (text, or a soft token of image n).
pub struct KvCache {
    layers: Vec<LayerCache>,
    kinds: Vec<TokenKind>,
}

impl KvCache {
    /// One entry per layer: `Some(window)` for sliding layers.
    pub fn new(windows: Vec<Option<usize>>) -> Self {
        Self {
            layers: windows.into_iter().map(|window| LayerCache { k: None, v: None, start: 0, window }).collect(),
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
        let seen = self.seen();
        if len > seen {
            return false;
        }
        let feasible = self.layers.iter().all(|l| match l.window {
            // Keys at [len - (window - 1), len) are needed, and the layer holds [start, seen).
            Some(w) => l.start == 0 || len >= l.start + w.saturating_sub(1),
            None => l.start == 0,
        });
        if !feasible {
            return false;
        }
        for l in &mut self.layers {
            let keep = len.saturating_sub(l.start);
            let narrow = |t: &Option<Tensor>| t.as_ref().map(|t| t.narrow(2, 0, keep)).transpose();
            match (narrow(&l.k), narrow(&l.v)) {
                (Ok(k), Ok(v)) => {
                    l.k = if keep == 0 { None } else { k };
                    l.v = if keep == 0 { None } else { v };
                }
                _ => return false,
            }
        }
        self.kinds.truncate(len);
        true
    }

    /// Bytes held by the cached keys and values.
    pub fn bytes(&self) -> usize {
        self.layers
            .iter()
            .flat_map(|l| [&l.k, &l.v])
            .flatten()
            .map(|t| t.elem_count() * t.dtype().size_in_bytes())
            .sum()
    }
}

impl Clone for KvCache {
    fn clone(&self) -> Self {
        Self {
            layers: self
                .layers
                .iter()
                .map(|l| LayerCache { k: l.k.clone(), v: l.v.clone(), start: l.start, window: l.window })
                .collect(),
            kinds: self.kinds.clone(),
        }
    }
}
