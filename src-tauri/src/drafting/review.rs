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

pub use crate::attribution::{attribute, Origin, Sentence};

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
