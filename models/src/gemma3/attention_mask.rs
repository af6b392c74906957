//! Who may attend to whom: causal, and bidirectional among the soft tokens of
//! the same image (as the reference does in prefill; begin/end-of-image tokens
//! are ordinary text); on sliding layers, never further back than the window.

use candle_core::{Device, Tensor};

use crate::error::Result;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenKind {
    Text,
    /// A soft token of the n-th image of the conversation.
    Image(u32),
}

pub struct AttentionMask {
    /// Absolute position of the first new (query) token.
    pub query_start: usize,
    pub queries: usize,
    /// Absolute position of the first key in the cache.
    pub key_start: usize,
    /// The sliding window, on sliding layers.
    pub window: Option<usize>,
}

impl AttentionMask {
    /// As the reference: (causal, or both soft tokens of the same image), and
    /// on sliding layers the key no further back than the window.
    pub fn allowed(&self, kinds: &[TokenKind], q: usize, k: usize) -> bool {
        let same_image = matches!((kinds[q], kinds[k]), (TokenKind::Image(a), TokenKind::Image(b)) if a == b);
        let in_window = self.window.is_none_or(|w| k > q || q - k < w);
        (k <= q || same_image) && in_window
    }

    /// The additive mask [queries, keys] (0 or −∞), or None when every key is allowed.
    pub fn build(&self, kinds: &[TokenKind], device: &Device) -> Result<Option<Tensor>> {
        let keys = self.query_start + self.queries - self.key_start;
        let mut data = Vec::with_capacity(self.queries * keys);
        let mut any_masked = false;
        for q in self.query_start..self.query_start + self.queries {
            for k in self.key_start..self.key_start + keys {
                let ok = self.allowed(kinds, q, k);
                any_masked |= !ok;
                data.push(if ok { 0f32 } else { f32::NEG_INFINITY });
            }
        }
        if !any_masked {
            return Ok(None);
        }
        Ok(Some(Tensor::from_vec(data, (self.queries, keys), device)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use TokenKind::{Image, Text};

    fn grid(mask: &AttentionMask, kinds: &[TokenKind]) -> Vec<String> {
        (mask.query_start..mask.query_start + mask.queries)
            .map(|q| {
                (mask.key_start..mask.query_start + mask.queries)
                    .map(|k| if mask.allowed(kinds, q, k) { 'x' } else { '.' })
                    .collect()
            })
            .collect()
    }

    #[test]
    fn causal_with_bidirectional_image_runs() {
        let kinds = [Text, Image(0), Image(0), Image(0), Text, Image(1), Image(1)];
        let m = AttentionMask { query_start: 0, queries: 7, key_start: 0, window: None };
        assert_eq!(
            grid(&m, &kinds),
            ["x......", "xxxx...", "xxxx...", "xxxx...", "xxxxx..", "xxxxxxx", "xxxxxxx"]
        );
    }

    #[test]
    fn sliding_window_drops_keys_too_far_back() {
        let kinds = [Text; 5];
        let m = AttentionMask { query_start: 0, queries: 5, key_start: 0, window: Some(2) };
        assert_eq!(grid(&m, &kinds), ["x....", "xx...", ".xx..", "..xx.", "...xx"]);
    }

    #[test]
    fn decode_step_over_a_window_masks_old_keys() {
        let kinds = [Text; 6];
        let m = AttentionMask { query_start: 5, queries: 1, key_start: 2, window: Some(3) };
        assert_eq!(grid(&m, &kinds), [".xxx"]);
    }

    #[test]
    fn the_window_also_limits_a_long_image() {
        let kinds = [Image(0); 4];
        let m = AttentionMask { query_start: 0, queries: 4, key_start: 0, window: Some(2) };
        assert_eq!(grid(&m, &kinds), ["xxxx", "xxxx", ".xxx", "..xx"]);
    }

    #[test]
    fn no_mask_when_nothing_is_hidden() {
        let kinds = [Text; 4];
        let m = AttentionMask { query_start: 3, queries: 1, key_start: 0, window: None };
        assert!(m.build(&kinds, &Device::Cpu).unwrap().is_none());
    }
}
