//! Review: what the clinician changed in the AI draft. Word-level tracked
//! changes (the `similar` crate's diff, not a hand-written one) and, for each
//! sentence of the report, whether the AI wrote it, the clinician edited it,
//! or the clinician wrote it.

use serde::Serialize;
use similar::{ChangeTag, TextDiff};

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ChangeKind {
    Same,
    Added,
    Removed,
}

/// A run of words kept, added by the clinician, or removed from the draft.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Change {
    pub kind: ChangeKind,
    pub text: String,
}

/// Word-level changes from `draft` to `report` (adjacent runs merged).
pub fn tracked_changes(draft: &str, report: &str) -> Vec<Change> {
    let diff = TextDiff::from_unicode_words(draft, report);
    let mut out: Vec<Change> = Vec::new();
    for change in diff.iter_all_changes() {
        let kind = match change.tag() {
            ChangeTag::Equal => ChangeKind::Same,
            ChangeTag::Insert => ChangeKind::Added,
            ChangeTag::Delete => ChangeKind::Removed,
        };
        match out.last_mut() {
            Some(last) if last.kind == kind => last.text.push_str(change.value()),
            _ => out.push(Change { kind, text: change.value().to_string() }),
        }
    }
    out
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Origin {
    /// Word for word from the AI draft.
    Ai,
    /// From the AI draft, changed by the clinician.
    Edited,
    /// The clinician's own.
    Clinician,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tracked_changes_are_word_level() {
        let c = tracked_changes("Small left effusion.", "Small right effusion.");
        let kinds: Vec<_> = c.iter().map(|c| (c.kind.clone(), c.text.as_str())).collect();
        assert_eq!(
            kinds,
            [
                (ChangeKind::Same, "Small "),
                (ChangeKind::Removed, "left"),
                (ChangeKind::Added, "right"),
                (ChangeKind::Same, " effusion."),
            ]
        );
    }

    #[test]
    fn each_sentence_is_ai_edited_or_the_clinicians() {
        let draft = "FINDINGS:\nThe lungs are clear. No pleural effusion is seen.\nIMPRESSION:\nNormal chest.";
        let report = "FINDINGS:\nThe lungs are clear. A small left pleural effusion is seen. Old rib fracture.\nIMPRESSION:\nNormal chest.";
        let got: Vec<(String, Origin)> = attribute(draft, report).into_iter().map(|s| (s.text, s.origin)).collect();
        assert_eq!(
            got,
            [
                ("FINDINGS:".to_string(), Origin::Ai),
                ("The lungs are clear.".to_string(), Origin::Ai),
                ("A small left pleural effusion is seen.".to_string(), Origin::Edited),
                ("Old rib fracture.".to_string(), Origin::Clinician),
                ("IMPRESSION:".to_string(), Origin::Ai),
                ("Normal chest.".to_string(), Origin::Ai),
            ]
        );
    }
}
