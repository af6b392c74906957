//! The conversation a draft asks the model: the template's role as a system
//! message, then one user turn with the image and the instruction, the case
//! notes and the required sections; for a follow-up, the earlier answer and
//! the clinician's question. The model's own chat template turns it into text.

use medgemma_models::{Content, Message, Role};

use super::templates::Template;
use crate::store::Notes;

/// The case notes as the model reads them; empty fields are left out.
pub fn notes_block(notes: &Notes) -> String {
    [
        ("Indication", &notes.indication),
        ("Clinical history", &notes.history),
        ("Comparison", &notes.comparison),
        ("Notes", &notes.free_text),
    ]
    .iter()
    .filter(|(_, v)| !v.trim().is_empty())
    .map(|(k, v)| format!("{k}: {}", v.trim()))
    .collect::<Vec<_>>()
    .join("\n")
}

/// The first user turn's text.
pub fn first_request(template: &Template, notes: &Notes, question: Option<&str>) -> String {
    let mut parts = Vec::new();
    if !template.instruction.trim().is_empty() {
        parts.push(template.instruction.trim().to_string());
    }
    let notes = notes_block(notes);
    if !notes.is_empty() {
        parts.push(notes);
    }
    if !template.sections.is_empty() {
        parts.push(format!("Use these section headings, in this order: {}.", template.sections.join(", ")));
    }
    if let Some(q) = question.map(str::trim).filter(|q| !q.is_empty()) {
        parts.push(q.to_string());
    }
    parts.join("\n\n")
}

/// The whole conversation. `earlier` is the answer a follow-up builds on
/// (with the question that produced it, if any); `question` the new question.
pub fn conversation(
    template: &Template,
    notes: &Notes,
    with_image: bool,
    earlier: Option<(&str, Option<&str>)>,
    question: Option<&str>,
) -> Vec<Message> {
    let mut messages = Vec::new();
    if !template.system.trim().is_empty() {
        messages.push(Message::text(Role::System, template.system.trim()));
    }
    let first_question = match earlier {
        Some((_, q)) => q,
        None => question,
    };
    // Text first, then the image, as MedGemma's own examples are laid out.
    let mut content = vec![Content::Text(first_request(template, notes, first_question))];
    if with_image {
        content.push(Content::Image);
    }
    messages.push(Message { role: Role::User, content });
    if let Some((answer, _)) = earlier {
        messages.push(Message::text(Role::Assistant, answer));
        if let Some(q) = question {
            messages.push(Message::text(Role::User, q.trim()));
        }
    }
    messages
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::drafting::templates::built_in;

    fn cxr() -> Template {
        built_in().into_iter().find(|t| t.id == "chest-xray-report").unwrap()
    }

    #[test]
    fn notes_and_sections_follow_the_instruction() {
        let notes = Notes { indication: " Fever ".into(), comparison: "None".into(), ..Default::default() };
        let text = first_request(&cxr(), &notes, None);
        assert_eq!(
            text,
            "Write a radiology report for this chest X-ray.\n\nIndication: Fever\nComparison: None\n\n\
             Use these section headings, in this order: FINDINGS, IMPRESSION."
        );
    }

    #[test]
    fn a_follow_up_carries_the_earlier_answer_and_the_question() {
        let m = conversation(&cxr(), &Notes::default(), true, Some(("FINDINGS: clear.", None)), Some("Any effusion?"));
        let roles: Vec<Role> = m.iter().map(|m| m.role).collect();
        assert_eq!(roles, [Role::System, Role::User, Role::Assistant, Role::User]);
        assert!(matches!(m[1].content.last(), Some(Content::Image)));
    }
}
