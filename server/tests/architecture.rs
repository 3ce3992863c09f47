//! The direction of dependencies between the top-level modules of the server and of
//! the model crate (docs/architecture.md): each module may use only modules of a
//! lower layer, so there are no cycles and the store never reaches HTTP, the
//! listener or authentication. Checked from the sources, so a new `use crate::…`
//! against the grain fails here with the file that has it.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

/// The server's top-level modules, lowest layer first. A module may use modules of
/// lower layers only (never its own layer's other modules, never higher ones).
const SERVER_LAYERS: &[&[&str]] = &[
    // The model crate's modules (re-exported under their old paths) and the clock.
    &["access", "config", "query", "stix", "clock"],
    &["store"],
    &["metrics"],
    &["reload"],
    &["tls"],
    &["listener"],
    &["auth"],
    &["state"],
    &["taxii"],
    &["limits", "admin"],
    &["serve"],
    &["import"],
];

/// The model crate's top-level modules, lowest layer first.
const MODEL_LAYERS: &[&[&str]] = &[&["stix"], &["query"], &["config"], &["access"], &["auth"]];

/// Every `.rs` file under `dir`.
fn sources(dir: &Path, found: &mut Vec<PathBuf>) {
    let entries = fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            sources(&path, found);
        } else if path.extension().is_some_and(|e| e == "rs") {
            found.push(path);
        }
    }
}

/// The code of a file without comments and without its `#[cfg(test)]` test module
/// (tests may reach anywhere).
fn production_code(text: &str) -> String {
    let mut code = String::new();
    let mut lines = text.lines().peekable();
    while let Some(line) = lines.next() {
        let trimmed = line.trim_start();
        if trimmed == "#[cfg(test)]"
            && lines
                .peek()
                .is_some_and(|next| next.trim_start().starts_with("mod "))
        {
            break;
        }
        if trimmed.starts_with("//") {
            continue;
        }
        code.push_str(line);
        code.push('\n');
    }
    code
}

/// The top-level modules a piece of code names as `crate::<module>`.
fn crate_modules(code: &str) -> Vec<String> {
    let mut named = Vec::new();
    let mut rest = code;
    while let Some(at) = rest.find("crate::") {
        let before = rest[..at].chars().last();
        rest = &rest[at + "crate::".len()..];
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == '$') {
            continue; // e.g. `$crate::` or `other_crate::`
        }
        let name: String = rest
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect();
        if !name.is_empty() {
            named.push(name);
        }
    }
    named
}

/// For each top-level module of the crate at `src`, the modules it uses and where.
fn uses(src: &Path) -> BTreeMap<String, BTreeMap<String, PathBuf>> {
    let mut files = Vec::new();
    sources(src, &mut files);
    let mut graph: BTreeMap<String, BTreeMap<String, PathBuf>> = BTreeMap::new();
    for file in files {
        let relative = file.strip_prefix(src).expect("under src");
        let first = relative
            .components()
            .next()
            .and_then(|c| c.as_os_str().to_str())
            .unwrap_or_default();
        let module = first.trim_end_matches(".rs").to_string();
        if module == "lib" || module == "main" {
            continue;
        }
        let text = fs::read_to_string(&file).expect("readable source");
        for used in crate_modules(&production_code(&text)) {
            if used != module {
                graph
                    .entry(module.clone())
                    .or_default()
                    .entry(used)
                    .or_insert_with(|| file.clone());
            }
        }
    }
    graph
}

fn layer_of(layers: &[&[&str]], module: &str) -> Option<usize> {
    layers.iter().position(|layer| layer.contains(&module))
}

/// Every use against the layering, as readable lines.
fn violations(src: &Path, layers: &[&[&str]]) -> Vec<String> {
    let mut found = Vec::new();
    for (module, used) in uses(src) {
        let Some(from) = layer_of(layers, &module) else {
            found.push(format!(
                "{module}: a top-level module with no layer (add it to the test's layers and to docs/architecture.md)"
            ));
            continue;
        };
        for (target, file) in used {
            match layer_of(layers, &target) {
                Some(to) if to < from => {}
                _ => found.push(format!(
                    "{module} -> {target} ({}): only lower layers may be used",
                    file.display()
                )),
            }
        }
    }
    found
}

fn crate_src(crate_dir: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join(crate_dir)
        .join("src")
}

#[test]
fn server_modules_depend_only_downwards() {
    let found = violations(&crate_src("."), SERVER_LAYERS);
    assert!(found.is_empty(), "{}", found.join("\n"));
}

#[test]
fn model_modules_depend_only_downwards() {
    let found = violations(&crate_src("model"), MODEL_LAYERS);
    assert!(found.is_empty(), "{}", found.join("\n"));
}

#[test]
fn the_operator_links_the_model_not_the_server() {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR")).join("../operator/Cargo.toml");
    let text = fs::read_to_string(&manifest).expect("operator manifest");
    assert!(
        text.contains("taxiway-model"),
        "the operator uses the model"
    );
    assert!(
        !text.contains("taxiway-server"),
        "the operator must not link the server (store, listener, database drivers)"
    );
}

#[test]
fn the_checker_sees_uses() {
    let code = production_code(
        "use crate::store::Store;\n// crate::taxii in a comment\nfn f() { crate::metrics::x(); }\n\
         #[cfg(test)]\nmod tests {\n use crate::serve;\n}\n",
    );
    assert_eq!(crate_modules(&code), vec!["store", "metrics"]);
    assert!(crate_modules("$crate::x other_crate::y").is_empty());
}
