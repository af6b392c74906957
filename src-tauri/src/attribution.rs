//! Where each sentence of a report came from: word for word from the AI
//! draft it was started from, edited from it, or the clinician's own. The
//! review shows it live; the store freezes it with each signed version.

use serde::{Deserialize, Serialize};
use similar::TextDiff;

/// Where a sentence of a report came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Origin {
    /// Word for word from the AI draft.
    Ai,
    /// From the AI draft, changed by the clinician.
    Edited,
    /// The clinician's own.
    Clinician,
}

/// A sentence of a report and its origin.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sentence {
    pub text: String,
    pub origin: Origin,
}

/// How alike two sentences must be (share of words in common) to count as an edit.
const EDITED_AT_LEAST: f32 = 0.5;

/// The report's sentences (split at . ! ? and line ends), each with its origin.
pub fn attribute(draft: &str, report: &str) -> Vec<Sentence> {
    let draft_sentences = sentences(draft);
    let norm = |s: &str| s.split_whitespace().collect::<Vec<_>>().join(" ");
    let draft_norm: Vec<String> = draft_sentences.iter().map(|s| norm(s)).collect();
    sentences(report)
        .into_iter()
        .map(|s| {
            let n = norm(&s);
            let origin = if draft_norm.iter().any(|d| *d == n) {
                Origin::Ai
            } else {
                let best = draft_norm.iter().map(|d| TextDiff::from_unicode_words(d.as_str(), n.as_str()).ratio()).fold(0.0f32, f32::max);
                if best >= EDITED_AT_LEAST { Origin::Edited } else { Origin::Clinician }
            };
            Sentence { text: s, origin }
        })
        .collect()
}

fn sentences(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    let chars: Vec<char> = text.chars().collect();
    for (i, &c) in chars.iter().enumerate() {
        if c == '\n' {
            push(&mut out, &mut current);
            continue;
        }
        current.push(c);
        let next_is_break = chars.get(i + 1).is_none_or(|n| n.is_whitespace());
        if matches!(c, '.' | '!' | '?') && next_is_break {
            push(&mut out, &mut current);
        }
    }
    push(&mut out, &mut current);
    out
}

fn push(out: &mut Vec<String>, current: &mut String) {
    let s = current.trim();
    if !s.is_empty() {
        out.push(s.to_string());
    }
    current.clear();
}
