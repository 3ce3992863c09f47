//! The direction of dependencies between the top-level modules of the server and of
//! the model crate (docs/architecture.md): each module may use only modules of a
//! lower layer, so there are no cycles and the store never reaches HTTP, the
//! listener or authentication; and no cycles between files either (a `mod.rs`
//! declares and re-exports, its children import each other by their own paths).
//! Checked from the sources, so a new `use crate::…` against the grain fails here
//! with the file that has it.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

/// The server's top-level modules, lowest layer first. A module may use modules of
/// lower layers only (never its own layer's other modules, never higher ones).
const SERVER_LAYERS: &[&[&str]] = &[
    // The model crate's modules (re-exported under their old paths) and the clock.
    &["access", "config", "query", "stix", "clock"],
    &["store"],
    &["metrics"],
    // Content codings (gzip, zstd) and the cache of page bodies coded with them.
    &["coding"],
    &["page_cache"],
    &["reload"],
    &["tls"],
    &["listener"],
    &["auth"],
    &["state"],
    &["taxii"],
    &["limits", "admin"],
    // Pulls upstreams into the store through the configuration serving now (state).
    &["feeds"],
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

/// A file's module path inside its crate: `store/postgres/mod.rs` is
/// `["store", "postgres"]`, `lib.rs` is `[]`.
fn module_path(src: &Path, file: &Path) -> Vec<String> {
    let relative = file.strip_prefix(src).expect("under src");
    let mut path: Vec<String> = relative
        .components()
        .filter_map(|c| c.as_os_str().to_str())
        .map(|c| c.trim_end_matches(".rs").to_string())
        .collect();
    if path
        .last()
        .is_some_and(|l| l == "mod" || l == "lib" || l == "main")
    {
        path.pop();
    }
    path
}

/// The paths a piece of code names from `crate::`, `super::` or `self::`, as module
/// paths inside the crate (use-groups `{a, b::c}` expanded), for code in `module`
/// (`is_dir`: the file is a `mod.rs`).
fn named_paths(code: &str, module: &[String]) -> Vec<Vec<String>> {
    let bytes = code.as_bytes();
    let mut found = Vec::new();
    let mut at = 0;
    while at < bytes.len() {
        let rest = &code[at..];
        let start = ["crate::", "super::", "self::"]
            .iter()
            .filter_map(|p| rest.find(p).map(|i| (i, *p)))
            .min();
        let Some((offset, prefix)) = start else { break };
        let begin = at + offset;
        at = begin + prefix.len();
        let before = code[..begin].chars().last();
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == '$' || c == ':') {
            continue;
        }
        let base: Vec<String> = match prefix {
            "crate::" => Vec::new(),
            "super::" => module[..module.len().saturating_sub(1)].to_vec(),
            _ => module.to_vec(),
        };
        let (tails, used) = path_tails(&code[at..]);
        at += used;
        for tail in tails {
            let mut full = base.clone();
            for segment in tail {
                if segment == "super" {
                    full.pop();
                } else if segment != "self" {
                    full.push(segment);
                }
            }
            found.push(full);
        }
    }
    found
}

/// The segment lists of a path after its prefix (`a::b::{c, d::e}` gives `[a, b, c]`
/// and `[a, b, d, e]`), and how many bytes it took.
fn path_tails(text: &str) -> (Vec<Vec<String>>, usize) {
    let mut segments = Vec::new();
    let mut at = 0;
    loop {
        let rest = &text[at..];
        if rest.starts_with('{') {
            let mut depth = 0;
            let mut end = rest.len();
            for (i, c) in rest.char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' => {
                        depth -= 1;
                        if depth == 0 {
                            end = i;
                            break;
                        }
                    }
                    _ => {}
                }
            }
            let inner = &rest[1..end.min(rest.len())];
            let mut tails = Vec::new();
            for item in split_top_level(inner) {
                let item = item.trim();
                let item = item.split(" as ").next().unwrap_or(item).trim();
                if item.is_empty() {
                    continue;
                }
                let (inner_tails, _) = path_tails(item);
                for t in inner_tails {
                    let mut full = segments.clone();
                    full.extend(t);
                    tails.push(full);
                }
            }
            return (tails, at + end + 1);
        }
        let ident: String = rest
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect();
        if ident.is_empty() {
            return (vec![segments], at);
        }
        at += ident.len();
        segments.push(ident);
        if text[at..].starts_with("::") {
            at += 2;
        } else {
            return (vec![segments], at);
        }
    }
}

/// `text` split at the commas that are not inside braces.
fn split_top_level(text: &str) -> Vec<&str> {
    let mut items = Vec::new();
    let (mut depth, mut from) = (0, 0);
    for (i, c) in text.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            ',' if depth == 0 => {
                items.push(&text[from..i]);
                from = i + 1;
            }
            _ => {}
        }
    }
    items.push(&text[from..]);
    items
}

/// File-level dependency cycles of the crate at `src`: each a list of module paths.
fn file_cycles(src: &Path) -> Vec<Vec<String>> {
    let mut files = Vec::new();
    sources(src, &mut files);
    let modules: BTreeMap<Vec<String>, String> = files
        .iter()
        .map(|f| {
            let code = production_code(&fs::read_to_string(f).expect("readable source"));
            (module_path(src, f), code)
        })
        .collect();
    let mut edges: BTreeMap<&Vec<String>, BTreeSet<&Vec<String>>> = BTreeMap::new();
    for (module, code) in &modules {
        let targets = edges.entry(module).or_default();
        for path in named_paths(code, module) {
            // The longest prefix of the path that is a file.
            let target = (0..=path.len())
                .rev()
                .find_map(|n| modules.get_key_value(&path[..n]).map(|(k, _)| k));
            if let Some(target) = target.filter(|t| *t != module) {
                targets.insert(target);
            }
        }
    }
    strongly_connected(&edges)
        .into_iter()
        .filter(|component| component.len() > 1)
        .map(|component| {
            component
                .iter()
                .map(|m| {
                    if m.is_empty() {
                        "crate".to_string()
                    } else {
                        m.join("::")
                    }
                })
                .collect()
        })
        .collect()
}

/// Tarjan's strongly connected components.
fn strongly_connected<'a>(
    edges: &BTreeMap<&'a Vec<String>, BTreeSet<&'a Vec<String>>>,
) -> Vec<Vec<&'a Vec<String>>> {
    struct Walk<'a, 'e> {
        edges: &'e BTreeMap<&'a Vec<String>, BTreeSet<&'a Vec<String>>>,
        index: BTreeMap<&'a Vec<String>, usize>,
        low: BTreeMap<&'a Vec<String>, usize>,
        stack: Vec<&'a Vec<String>>,
        components: Vec<Vec<&'a Vec<String>>>,
    }
    impl<'a> Walk<'a, '_> {
        fn visit(&mut self, v: &'a Vec<String>) {
            let n = self.index.len();
            self.index.insert(v, n);
            self.low.insert(v, n);
            self.stack.push(v);
            for &w in self.edges.get(v).into_iter().flatten() {
                if !self.index.contains_key(w) {
                    self.visit(w);
                    let low = self.low[v].min(self.low[w]);
                    self.low.insert(v, low);
                } else if self.stack.contains(&w) {
                    let low = self.low[v].min(self.index[w]);
                    self.low.insert(v, low);
                }
            }
            if self.low[v] == self.index[v] {
                let mut component = Vec::new();
                while let Some(w) = self.stack.pop() {
                    component.push(w);
                    if w == v {
                        break;
                    }
                }
                self.components.push(component);
            }
        }
    }
    let mut walk = Walk {
        edges,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        components: Vec::new(),
    };
    for &v in edges.keys() {
        if !walk.index.contains_key(v) {
            walk.visit(v);
        }
    }
    walk.components
}

#[test]
fn no_cycles_between_files() {
    for krate in [".", "model"] {
        let cycles = file_cycles(&crate_src(krate));
        assert!(
            cycles.is_empty(),
            "files of {krate} that depend on each other: {cycles:?}"
        );
    }
}

#[test]
fn the_file_checker_sees_paths_and_cycles() {
    let module = vec!["store".to_string(), "sqlite".to_string()];
    let paths = named_paths(
        "use super::{error::StoreError, plan::{self, ViewPlan}};\nuse crate::config::X as Y;\n",
        &module,
    );
    let joined: Vec<String> = paths.iter().map(|p| p.join("::")).collect();
    assert_eq!(
        joined,
        vec![
            "store::error::StoreError",
            "store::plan",
            "store::plan::ViewPlan",
            "config::X"
        ]
    );
    let (a, b) = (vec!["a".to_string()], vec!["b".to_string()]);
    let mut edges = BTreeMap::new();
    edges.insert(&a, BTreeSet::from([&b]));
    edges.insert(&b, BTreeSet::from([&a]));
    let components = strongly_connected(&edges);
    assert_eq!(components.len(), 1);
    assert_eq!(components[0].len(), 2);
}
