//! Draft templates: plain TOML files, shipped in `assets/templates/` (built
//! into the binary) and copied into the data folder's `templates/` on first
//! run, so a department can edit them. The data folder's copies are what the
//! app uses; a broken file is reported by name and skipped.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// The folder, inside the data folder, that holds the templates.
pub const TEMPLATES_DIR: &str = "templates";
/// The template a draft uses unless another is picked.
pub const DEFAULT_TEMPLATE: &str = "chest-xray-report";

/// The templates the app ships: (id, TOML text).
const BUILT_IN: &[(&str, &str)] = &[
    ("chest-xray-report", include_str!("../../../assets/templates/chest-xray-report.toml")),
    ("describe-image", include_str!("../../../assets/templates/describe-image.toml")),
    ("free-question", include_str!("../../../assets/templates/free-question.toml")),
];

/// One template: how to ask the model for a draft.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Template {
    /// The file name without `.toml` (not written in the file).
    #[serde(skip_deserializing)]
    pub id: String,
    pub name: String,
    #[serde(default)]
    pub description: String,
    /// The model's role (a system message).
    #[serde(default)]
    pub system: String,
    /// What to write; the case notes follow it.
    #[serde(default)]
    pub instruction: String,
    /// Headings the report must have, in order.
    #[serde(default)]
    pub sections: Vec<String>,
    #[serde(default = "default_max_tokens")]
    pub max_tokens: usize,
    #[serde(default)]
    pub temperature: f64,
    /// The clinician must type a question (the instruction alone is not enough).
    #[serde(default)]
    pub needs_question: bool,
}

fn default_max_tokens() -> usize {
    512
}

#[derive(Debug, thiserror::Error)]
pub enum TemplateError {
    #[error("the template {path} cannot be read: {reason}")]
    Broken { path: PathBuf, reason: String },
    #[error("there is no template \"{0}\" (see the templates folder in the data folder)")]
    Unknown(String),
    #[error("cannot set up the templates folder {path}: {reason}")]
    Folder { path: PathBuf, reason: String },
}

/// Parses one template; `id` is its file name without `.toml`.
pub fn parse(id: &str, text: &str) -> Result<Template, String> {
    let mut t: Template = toml::from_str(text).map_err(|e| e.to_string())?;
    t.id = id.to_string();
    if t.name.trim().is_empty() {
        return Err("it has no name".into());
    }
    if t.max_tokens == 0 || !(t.temperature >= 0.0 && t.temperature.is_finite()) {
        return Err("max_tokens must be at least 1 and temperature 0 or more".into());
    }
    if t.instruction.trim().is_empty() && !t.needs_question {
        return Err("it has no instruction (or set needs_question = true)".into());
    }
    Ok(t)
}

/// The built-in templates, as shipped.
pub fn built_in() -> Vec<Template> {
    BUILT_IN.iter().filter_map(|(id, text)| parse(id, text).ok()).collect()
}

/// Copies the built-in templates into `data_dir/templates/` when that folder
/// does not exist yet (first run). An existing folder is never touched: it
/// holds the department's own edits.
pub fn install(data_dir: &Path) -> Result<PathBuf, TemplateError> {
    let dir = data_dir.join(TEMPLATES_DIR);
    if dir.exists() {
        return Ok(dir);
    }
    let folder = |e: std::io::Error| TemplateError::Folder { path: dir.clone(), reason: e.to_string() };
    let tmp = data_dir.join(format!(".{TEMPLATES_DIR}.partial"));
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(&tmp).map_err(folder)?;
    for (id, text) in BUILT_IN {
        std::fs::write(tmp.join(format!("{id}.toml")), text).map_err(folder)?;
    }
    std::fs::rename(&tmp, &dir).map_err(folder)?;
    Ok(dir)
}

/// The templates in `data_dir/templates/` (installed first if missing), by
/// name, and the problems with files that could not be read.
pub fn load(data_dir: &Path) -> (Vec<Template>, Vec<TemplateError>) {
    let dir = match install(data_dir) {
        Ok(dir) => dir,
        Err(e) => return (built_in(), vec![e]),
    };
    let mut found = Vec::new();
    let mut problems = Vec::new();
    let entries = match std::fs::read_dir(&dir) {
        Ok(e) => e,
        Err(e) => return (built_in(), vec![TemplateError::Folder { path: dir, reason: e.to_string() }]),
    };
    for path in entries.flatten().map(|e| e.path()) {
        if path.extension().and_then(|e| e.to_str()) != Some("toml") {
            continue;
        }
        let id = path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
        let parsed = std::fs::read_to_string(&path).map_err(|e| e.to_string()).and_then(|text| parse(&id, &text));
        match parsed {
            Ok(t) => found.push(t),
            Err(reason) => problems.push(TemplateError::Broken { path, reason }),
        }
    }
    if found.is_empty() {
        // Every file was removed or broken: the built-in ones keep the app usable.
        found = built_in();
    }
    found.sort_by(|a, b| (a.id != DEFAULT_TEMPLATE, &a.name).cmp(&(b.id != DEFAULT_TEMPLATE, &b.name)));
    (found, problems)
}

/// The template called `id`.
pub fn find(data_dir: &Path, id: &str) -> Result<Template, TemplateError> {
    let (all, _) = load(data_dir);
    all.into_iter().find(|t| t.id == id).ok_or_else(|| TemplateError::Unknown(id.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_built_in_templates_parse() {
        let all = built_in();
        assert_eq!(all.len(), BUILT_IN.len());
        let cxr = all.iter().find(|t| t.id == DEFAULT_TEMPLATE).unwrap();
        assert_eq!(cxr.sections, ["FINDINGS", "IMPRESSION"]);
        assert!(all.iter().any(|t| t.needs_question));
    }

    #[test]
    fn first_run_copies_them_and_edits_are_kept() {
        let tmp = tempfile::tempdir().unwrap();
        let (all, problems) = load(tmp.path());
        assert!(problems.is_empty());
        assert_eq!(all[0].id, DEFAULT_TEMPLATE, "the chest X-ray report comes first");
        let file = tmp.path().join(TEMPLATES_DIR).join("describe-image.toml");
        std::fs::write(&file, "name = \"Describe (ours)\"\ninstruction = \"Describe it.\"\n").unwrap();
        std::fs::write(tmp.path().join(TEMPLATES_DIR).join("broken.toml"), "name = ").unwrap();
        let (all, problems) = load(tmp.path());
        assert!(all.iter().any(|t| t.name == "Describe (ours)"), "the department's edit is used");
        assert_eq!(problems.len(), 1);
        assert!(problems[0].to_string().contains("broken.toml"), "{}", problems[0]);
        assert!(matches!(find(tmp.path(), "nope"), Err(TemplateError::Unknown(_))));
    }

    #[test]
    fn a_template_without_an_instruction_or_question_is_refused() {
        assert!(parse("x", "name = \"x\"").is_err());
        assert!(parse("x", "name = \"x\"\nneeds_question = true").is_ok());
        assert!(parse("x", "name = \"x\"\ninstruction = \"y\"\nfoo = 1").is_err(), "unknown keys are typos");
    }
}
