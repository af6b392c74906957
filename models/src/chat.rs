//! Conversations of text and images, rendered through the model's own chat
//! template with minijinja (as transformers renders it: trim_blocks and
//! lstrip_blocks on), or the Gemma 3 turn format when the model has none.

use std::path::Path;

use serde::Serialize;
use serde_json::Value;

use crate::error::{ModelError, Result};
use crate::tokenizer::read_json;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    System,
    User,
    Assistant,
}

/// One piece of a message: text, or the place of the next image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Content {
    Text(String),
    Image,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub role: Role,
    pub content: Vec<Content>,
}

impl Message {
    pub fn text(role: Role, text: impl Into<String>) -> Self {
        Self { role, content: vec![Content::Text(text.into())] }
    }

    fn to_json(&self) -> Value {
        let parts: Vec<Value> = self
            .content
            .iter()
            .map(|c| match c {
                Content::Text(t) => serde_json::json!({"type": "text", "text": t}),
                Content::Image => serde_json::json!({"type": "image"}),
            })
            .collect();
        serde_json::json!({"role": self.role, "content": parts})
    }
}

/// A model's chat template: its Jinja source, or the built-in Gemma 3 format.
#[derive(Debug, Clone)]
pub struct ChatTemplate {
    source: Option<String>,
}

impl ChatTemplate {
    pub fn gemma3_builtin() -> Self {
        Self { source: None }
    }

    pub fn from_source(source: impl Into<String>) -> Self {
        Self { source: Some(source.into()) }
    }

    /// `chat_template.jinja`, `chat_template.json`, or `tokenizer_config.json`'s
    /// `chat_template` (a string, or a list of named templates: "default").
    pub fn from_model_dir(dir: &Path) -> Result<Self> {
        let jinja = dir.join("chat_template.jinja");
        if jinja.is_file() {
            let s = std::fs::read_to_string(&jinja).map_err(|source| ModelError::Io { path: jinja, source })?;
            return Ok(Self::from_source(s));
        }
        for file in ["chat_template.json", "tokenizer_config.json", "processor_config.json"] {
            if let Some(json) = read_json(&dir.join(file))? {
                match &json["chat_template"] {
                    Value::String(s) => return Ok(Self::from_source(s.clone())),
                    Value::Array(list) => {
                        let pick = list
                            .iter()
                            .find(|t| t["name"] == "default")
                            .or_else(|| list.first())
                            .and_then(|t| t["template"].as_str());
                        if let Some(s) = pick {
                            return Ok(Self::from_source(s));
                        }
                    }
                    _ => {}
                }
            }
        }
        Ok(Self::gemma3_builtin())
    }

    pub fn is_builtin(&self) -> bool {
        self.source.is_none()
    }

    /// The prompt text for `messages`, ending with the model's turn opener.
    pub fn render(&self, messages: &[Message], bos_token: &str) -> Result<String> {
        self.render_with(messages, bos_token, true)
    }

    /// As `render`; `add_generation_prompt` false leaves the model's turn unopened.
    pub fn render_with(&self, messages: &[Message], bos_token: &str, add_generation_prompt: bool) -> Result<String> {
        match &self.source {
            None => gemma3_turns(messages, bos_token, add_generation_prompt),
            Some(src) => render_jinja(src, messages, bos_token, add_generation_prompt),
        }
    }
}

fn render_jinja(src: &str, messages: &[Message], bos_token: &str, add_generation_prompt: bool) -> Result<String> {
    let mut env = minijinja::Environment::new();
    let syntax = minijinja::syntax::SyntaxConfig::builder()
        .trim_blocks(true)
        .lstrip_blocks(true)
        .build()
        .map_err(|e| ModelError::Template(e.to_string()))?;
    env.set_syntax(syntax);
    env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
    env.add_function("raise_exception", |msg: String| -> std::result::Result<String, minijinja::Error> {
        Err(minijinja::Error::new(minijinja::ErrorKind::InvalidOperation, msg))
    });
    env.add_template("chat", src).map_err(|e| ModelError::Template(e.to_string()))?;
    let tmpl = env.get_template("chat").map_err(|e| ModelError::Template(e.to_string()))?;
    let msgs: Vec<Value> = messages.iter().map(Message::to_json).collect();
    tmpl.render(minijinja::context! {
        messages => minijinja::Value::from(minijinja::value::Serde(&msgs)),
        bos_token => bos_token,
        eos_token => "<eos>",
        add_generation_prompt => add_generation_prompt,
    })
    .map_err(|e| ModelError::Template(e.to_string()))
}

/// The Gemma 3 turn format, for models that ship no template: a system prompt
/// opens the first user turn; the assistant's role is called "model".
fn gemma3_turns(messages: &[Message], bos_token: &str, add_generation_prompt: bool) -> Result<String> {
    let mut out = String::from(bos_token);
    let (prefix, rest) = match messages.first() {
        Some(m) if m.role == Role::System => (format!("{}\n\n", join_text(m)), &messages[1..]),
        _ => (String::new(), messages),
    };
    for (i, m) in rest.iter().enumerate() {
        let expect_user = i % 2 == 0;
        if (m.role == Role::User) != expect_user {
            return Err(ModelError::Template("conversation roles must alternate user/assistant/user/…".into()));
        }
        let role = if m.role == Role::Assistant { "model" } else { "user" };
        out.push_str("<start_of_turn>");
        out.push_str(role);
        out.push('\n');
        if i == 0 {
            out.push_str(&prefix);
        }
        for c in &m.content {
            match c {
                Content::Text(t) => out.push_str(t.trim()),
                Content::Image => out.push_str("<start_of_image>"),
            }
        }
        out.push_str("<end_of_turn>\n");
    }
    if add_generation_prompt {
        out.push_str("<start_of_turn>model\n");
    }
    Ok(out)
}

fn join_text(m: &Message) -> String {
    m.content
        .iter()
        .filter_map(|c| match c {
            Content::Text(t) => Some(t.as_str()),
            Content::Image => None,
        })
        .collect::<Vec<_>>()
        .join("")
}

/// What the processor does to each `<start_of_image>`: surround it with blank
/// lines and add the image's soft tokens and `<end_of_image>`.
pub fn expand_image_tokens(text: &str, boi: &str, soft: &str, eoi: &str, tokens_per_image: usize) -> String {
    let full = format!("\n\n{boi}{}{eoi}\n\n", soft.repeat(tokens_per_image));
    text.replace(boi, &full)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conv() -> Vec<Message> {
        vec![
            Message::text(Role::System, "You are an expert radiologist."),
            Message { role: Role::User, content: vec![Content::Text("Describe this X-ray".into()), Content::Image] },
        ]
    }

    #[test]
    fn builtin_format_matches_the_gemma3_prompt() {
        let text = ChatTemplate::gemma3_builtin().render(&conv(), "<bos>").unwrap();
        assert_eq!(
            text,
            "<bos><start_of_turn>user\nYou are an expert radiologist.\n\nDescribe this X-ray<start_of_image><end_of_turn>\n<start_of_turn>model\n"
        );
    }

    #[test]
    fn roles_must_alternate() {
        let bad = vec![Message::text(Role::User, "a"), Message::text(Role::User, "b")];
        assert!(ChatTemplate::gemma3_builtin().render(&bad, "<bos>").is_err());
    }

    #[test]
    fn jinja_raise_exception_becomes_an_error() {
        let t = ChatTemplate::from_source("{{ raise_exception('no') }}");
        let err = t.render(&conv(), "<bos>").unwrap_err();
        assert!(err.to_string().contains("no"), "{err}");
    }

    #[test]
    fn image_expansion_adds_soft_tokens() {
        let s = expand_image_tokens("a<boi>b", "<boi>", "<s>", "<eoi>", 3);
        assert_eq!(s, "a\n\n<boi><s><s><s><eoi>\n\nb");
    }
}
