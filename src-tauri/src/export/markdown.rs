//! The report as Markdown: for people, to read or paste into another system.

use super::{addendum_heading, case_notes, origin_words, record_words, report_parts, signed_versions, status_line};
use crate::store::SessionDetail;

/// The report as Markdown, with its status, notes, addenda and AI provenance.
pub fn markdown(s: &SessionDetail) -> String {
    let (main, addenda) = report_parts(s);
    let mut out = format!("# {}\n\n", s.summary.title);
    out.push_str(&format!("**Status:** {}\n\n", status_line(main)));
    let notes: Vec<String> = case_notes(s).into_iter().map(|(k, v)| format!("- **{k}:** {v}")).collect();
    if !notes.is_empty() {
        out.push_str(&format!("## Case notes\n\n{}\n\n", notes.join("\n")));
    }
    out.push_str("## Report\n\n");
    out.push_str(main.map_or("", |r| r.text.trim()));
    out.push_str("\n\n");
    for a in &addenda {
        out.push_str(&format!("## {}\n\n{}\n\n", addendum_heading(a), a.text.trim()));
    }
    out.push_str("---\n\n");
    if main.is_none_or(|r| r.status == "draft") {
        out.push_str("**AI-generated draft — not reviewed by a clinician.**\n\n");
    }
    out.push_str(&record_words(s, main));
    out.push('\n');
    // Each signed version's sentences with their origin, as frozen at its sign-off.
    for r in signed_versions(main, &addenda) {
        let Some(origins) = r.origins.as_ref().filter(|o| !o.is_empty()) else { continue };
        let what = if r.addendum_of.is_some() { "addendum" } else { "report" };
        out.push_str(&format!("\n**Origin of each sentence of the {what}, version {} (fixed at sign-off):**\n\n", r.version));
        for s in origins {
            let origin = origin_words(s.origin);
            out.push_str(&format!("- {} — *{origin}*\n", s.text));
        }
    }
    out
}
