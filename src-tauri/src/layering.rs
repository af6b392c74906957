//! The layering rule of docs/architecture.md, checked on the source: which
//! module may import which, in this crate and the model runtime, and no loops.
//!
//! It reads the `crate::…`, `super::…` and `medgemma_models` paths of every
//! file (comments left out) rather than asking rustc: a path is how one module
//! reaches another in this code base, and a plain reading keeps the check fast.
//! Written by hand because no maintained crate checks module layering inside a
//! crate (cargo-modules draws the graph but does not enforce rules).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// A module by its path inside its crate (`["drafting", "engine"]`); `[]` is the root.
type ModPath = Vec<String>;

/// One source file of a crate: its module and what it refers to.
struct SourceFile {
    file: PathBuf,
    module: ModPath,
    /// Paths it names, resolved to crate-absolute segments.
    references: Vec<ModPath>,
    /// Whether it names the runtime crate.
    uses_runtime: bool,
    /// Whether it names Tauri.
    uses_tauri: bool,
}

fn crate_root(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)
}

/// Every `.rs` file under `dir`, with its module path.
fn rust_files(dir: &Path, base: &Path, out: &mut Vec<(PathBuf, ModPath)>) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    let mut paths: Vec<PathBuf> = entries.flatten().map(|e| e.path()).collect();
    paths.sort();
    for p in paths {
        if p.is_dir() {
            rust_files(&p, base, out);
        } else if p.extension().is_some_and(|e| e == "rs") {
            let rel = p.strip_prefix(base).unwrap_or(&p);
            let mut module: ModPath = rel.iter().map(|s| s.to_string_lossy().trim_end_matches(".rs").to_string()).collect();
            if matches!(module.last().map(String::as_str), Some("mod" | "lib" | "main")) {
                module.pop();
            }
            out.push((p, module));
        }
    }
}

/// The source without comments (line comments and doc comments; block comments are not used here).
fn code_of(source: &str) -> String {
    source
        .lines()
        .map(|l| match l.find("//") {
            // `//` inside a string (a URL) is rare in these files and only hides a path there.
            Some(i) => &l[..i],
            None => l,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The code before an inline `#[cfg(test)] mod tests { … }`: tests may reach
/// anywhere, and their `super::` means the file's own module.
fn without_inline_tests(code: &str) -> String {
    let mut kept = Vec::new();
    let mut lines = code.lines().peekable();
    while let Some(line) = lines.next() {
        if line.trim() == "#[cfg(test)]" && lines.peek().is_some_and(|next| next.trim_start().starts_with("mod ") && next.contains('{')) {
            break;
        }
        kept.push(line);
    }
    kept.join("\n")
}

/// The paths after `prefix::`, one per item of a `{a, b::{c, d}}` group
/// (only the first segment of each item inside the group counts).
fn paths_after(code: &str, prefix: &str) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    let mut rest = code;
    while let Some(i) = rest.find(prefix) {
        let before = rest[..i].chars().next_back();
        rest = &rest[i + prefix.len()..];
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':') {
            continue; // `foo_crate::` or `a::crate::`
        }
        match rest.strip_prefix('{') {
            Some(group) => out.extend(top_level_items(group).into_iter().map(segments).filter(|s| !s.is_empty())),
            None => out.push(segments(rest)),
        }
    }
    out
}

/// The comma-separated items of a brace group up to its closing brace.
fn top_level_items(group: &str) -> Vec<&str> {
    let (mut depth, mut start, mut items) = (0usize, 0usize, Vec::new());
    for (i, c) in group.char_indices() {
        match c {
            '{' => depth += 1,
            '}' if depth == 0 => {
                items.push(group[start..i].trim());
                return items;
            }
            '}' => depth -= 1,
            ',' if depth == 0 => {
                items.push(group[start..i].trim());
                start = i + 1;
            }
            _ => {}
        }
    }
    items.push(group[start..].trim());
    items
}

/// Leading `a::b::c` identifiers of `s`.
fn segments(s: &str) -> Vec<String> {
    let mut segs = Vec::new();
    let mut rest = s;
    loop {
        let ident: String = rest.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
        if ident.is_empty() {
            break;
        }
        rest = &rest[ident.len()..];
        segs.push(ident);
        match rest.strip_prefix("::") {
            Some(r) if !r.starts_with('{') && !r.starts_with('*') => rest = r,
            _ => break,
        }
    }
    segs
}

/// Reads a crate's files and resolves what each refers to.
fn read_crate(src: &Path) -> Vec<SourceFile> {
    let mut files = Vec::new();
    rust_files(src, src, &mut files);
    assert!(!files.is_empty(), "no sources under {}", src.display());
    files
        .into_iter()
        .map(|(file, module)| {
            let code = without_inline_tests(&code_of(&std::fs::read_to_string(&file).unwrap_or_default()));
            let mut references: Vec<ModPath> = paths_after(&code, "crate::");
            for p in paths_after(&code, "super::") {
                // `super::super::x`: one level up for each `super`.
                let ups = 1 + p.iter().take_while(|s| *s == "super").count();
                let mut full: ModPath = module.iter().take(module.len().saturating_sub(ups)).cloned().collect();
                full.extend(p.into_iter().skip(ups - 1));
                references.push(full);
            }
            SourceFile {
                uses_runtime: code.contains("medgemma_models"),
                uses_tauri: code.contains("tauri::") || code.contains("tauri_plugin"),
                file,
                module,
                references,
            }
        })
        .collect()
}

/// The longest known module that a path starts with.
fn module_of(path: &[String], modules: &BTreeSet<ModPath>) -> ModPath {
    (0..=path.len()).rev().map(|n| path[..n].to_vec()).find(|p| modules.contains(p)).unwrap_or_default()
}

fn is_test(module: &ModPath) -> bool {
    module.iter().any(|s| s == "tests" || s.starts_with("tests_"))
}

/// Module-to-module edges between siblings: an edge from `a::x` to `a::y`
/// (whatever lies below them) counts as `x → y` among `a`'s children. A child
/// naming its parent's items, and a parent declaring its children, are not edges.
fn sibling_edges(files: &[SourceFile]) -> BTreeMap<ModPath, BTreeSet<(String, String)>> {
    let modules: BTreeSet<ModPath> = files.iter().map(|f| f.module.clone()).collect();
    let mut edges: BTreeMap<ModPath, BTreeSet<(String, String)>> = BTreeMap::new();
    for f in files.iter().filter(|f| !is_test(&f.module)) {
        for r in &f.references {
            let target = module_of(r, &modules);
            if is_test(&target) {
                continue;
            }
            let common = f.module.iter().zip(&target).take_while(|(a, b)| a == b).count();
            if common == f.module.len() || common == target.len() {
                continue; // parent ↔ child
            }
            edges.entry(f.module[..common].to_vec()).or_default().insert((f.module[common].clone(), target[common].clone()));
        }
    }
    edges
}

/// A loop among one module's children, if any (as `a → b → a`).
fn find_loop(edges: &BTreeSet<(String, String)>) -> Option<Vec<String>> {
    fn visit<'a>(n: &'a str, edges: &'a BTreeSet<(String, String)>, stack: &mut Vec<&'a str>, done: &mut BTreeSet<&'a str>) -> Option<Vec<String>> {
        if let Some(i) = stack.iter().position(|s| *s == n) {
            let mut cycle: Vec<String> = stack[i..].iter().map(|s| s.to_string()).collect();
            cycle.push(n.to_string());
            return Some(cycle);
        }
        if !done.insert(n) {
            return None;
        }
        stack.push(n);
        for (_, to) in edges.iter().filter(|(from, _)| from == n) {
            if let Some(c) = visit(to, edges, stack, done) {
                return Some(c);
            }
        }
        stack.pop();
        None
    }
    let mut done = BTreeSet::new();
    edges.iter().find_map(|(from, _)| visit(from, edges, &mut Vec::new(), &mut done))
}

fn loops(files: &[SourceFile]) -> Vec<String> {
    sibling_edges(files)
        .iter()
        .filter_map(|(parent, edges)| find_loop(edges).map(|c| format!("in {}: {}", if parent.is_empty() { "the crate root".into() } else { parent.join("::") }, c.join(" → "))))
        .collect()
}

fn top(f: &SourceFile) -> &str {
    f.module.first().map(String::as_str).unwrap_or("")
}

/// What each of the app's top-level modules may import from the crate
/// (besides itself): the layers UI → commands → services → store / imaging /
/// runtime facade, with the leaves anyone may use.
const APP_LAYERS: &[(&str, &[&str])] = &[
    ("version", &[]),
    ("attribution", &[]),
    ("digest", &[]),
    ("model_input_png", &["digest"]),
    ("data_dir", &[]),
    ("settings", &[]),
    ("imaging", &[]),
    ("store", &["digest", "version", "attribution", "model_input_png"]),
    ("store_key", &["store"]),
    ("session", &["imaging", "store", "store_key", "model_input_png"]),
    ("reading", &["imaging"]),
    ("export", &["store", "version", "imaging", "attribution"]),
    ("drafting", &["digest", "model_input_png", "version", "settings", "data_dir", "imaging", "store", "session", "reading", "attribution"]),
    ("state", &["data_dir", "drafting", "reading", "session"]),
    ("commands", &["state", "data_dir", "digest", "model_input_png", "version", "settings", "imaging", "store", "store_key", "session", "reading", "drafting", "export"]),
    ("window", &["commands", "state", "version", "reading", "session", "data_dir", "cli"]),
    ("hostile_input", &["imaging", "store", "drafting"]),
    ("cli", &["data_dir", "digest", "model_input_png", "version", "settings", "imaging", "store", "store_key", "session", "reading", "drafting", "export", "state"]),
];

/// The crate root's own items that a module may name: the command line opens
/// the window through `run_gui`.
const ROOT_ENTRIES: &[(&str, &str)] = &[("cli", "run_gui")];

/// Modules that may name the runtime crate: the services that run models, the
/// command line's model subcommands (generate, bench), and the fuzz entry
/// points (the runtime's file parsers).
const RUNTIME_USERS: &[&str] = &["drafting", "cli", "hostile_input"];

/// Modules that may name Tauri: the window, its commands and state, the crate root.
const TAURI_USERS: &[&str] = &["commands", "window", "state", ""];

#[test]
fn app_modules_import_only_their_layers_below() {
    let files = read_crate(&crate_root("src"));
    let modules: BTreeSet<ModPath> = files.iter().map(|f| f.module.clone()).collect();
    let mut wrong = Vec::new();
    for f in files.iter().filter(|f| !f.module.is_empty() && !is_test(&f.module)) {
        let me = top(f);
        let Some((_, allowed)) = APP_LAYERS.iter().find(|(m, _)| *m == me) else {
            if me != "layering" {
                wrong.push(format!("{}: module `{me}` has no place in the layering (add it to APP_LAYERS and docs/architecture.md)", f.file.display()));
            }
            continue;
        };
        for r in &f.references {
            let target = module_of(r, &modules);
            let Some(t) = target.first() else {
                if ROOT_ENTRIES.iter().any(|(m, item)| *m == me && r.first().is_some_and(|s| s == item)) {
                    continue;
                }
                wrong.push(format!("{}: names `crate::{}` from the crate root; use the leaf module that defines it", f.file.display(), r.join("::")));
                continue;
            };
            if t != me && !allowed.contains(&t.as_str()) {
                wrong.push(format!("{}: `{me}` may not import `{t}` (crate::{})", f.file.display(), r.join("::")));
            }
        }
        if f.uses_runtime && !RUNTIME_USERS.contains(&me) {
            wrong.push(format!("{}: `{me}` may not use the model runtime (medgemma_models); go through drafting", f.file.display()));
        }
        if f.uses_tauri && !TAURI_USERS.contains(&me) {
            wrong.push(format!("{}: `{me}` may not use Tauri; services know nothing of the window", f.file.display()));
        }
    }
    assert!(wrong.is_empty(), "layering broken:\n{}", wrong.join("\n"));
}

#[test]
fn app_modules_have_no_import_loops() {
    let found = loops(&read_crate(&crate_root("src")));
    assert!(found.is_empty(), "import loops:\n{}", found.join("\n"));
}

#[test]
fn runtime_modules_have_no_import_loops_and_know_nothing_of_the_app() {
    let files = read_crate(&crate_root("../models/src"));
    let found = loops(&files);
    assert!(found.is_empty(), "import loops in the runtime:\n{}", found.join("\n"));
    for f in &files {
        let code = code_of(&std::fs::read_to_string(&f.file).unwrap_or_default());
        for banned in ["medgemma_desk", "tauri", "rusqlite", "dicom"] {
            assert!(!code.contains(banned), "{} names {banned}: the runtime knows nothing of the app", f.file.display());
        }
    }
}

#[test]
fn the_checker_sees_a_loop_and_a_forbidden_arrow() {
    // A check that cannot fail proves nothing: feed it a made-up crate.
    let file = |module: &[&str], refs: &[&[&str]]| SourceFile {
        file: PathBuf::from(module.join("/")),
        module: module.iter().map(|s| s.to_string()).collect(),
        references: refs.iter().map(|r| r.iter().map(|s| s.to_string()).collect()).collect(),
        uses_runtime: false,
        uses_tauri: false,
    };
    let looped = [file(&["a"], &[]), file(&["a", "x"], &[&["a", "y", "Item"]]), file(&["a", "y"], &[&["a", "x", "f"]]), file(&["b"], &[&["a", "Thing"]])];
    assert_eq!(loops(&looped), vec!["in a: x → y → x".to_string()]);
    let fine = [file(&["a"], &[&["a", "x", "f"]]), file(&["a", "x"], &[&["a", "Item"]]), file(&["b"], &[&["a", "x"]])];
    assert!(loops(&fine).is_empty());
    assert_eq!(paths_after("use crate::{drafting, store::{Notes, X}}; crate::a::b(); my_crate::z", "crate::"), vec![vec!["drafting".to_string()], vec!["store".to_string()], vec!["a".to_string(), "b".to_string()]]);
}
