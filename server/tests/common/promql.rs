//! The metric names a Grafana dashboard queries, read from its panels' PromQL, and the
//! sample names a Prometheus text exposition offers. Shared by the dashboard tests of
//! the server (server/tests/dashboard.rs) and the operator (operator/tests/dashboard.rs).
#![allow(dead_code)]

use std::collections::BTreeSet;

use serde_json::Value;

/// The chart's dashboard, relative to a crate's `CARGO_MANIFEST_DIR`.
pub const DASHBOARD: &str = "../charts/taxiway/files/dashboards/taxiway.json";

/// PromQL words that are neither metrics nor functions.
const KEYWORDS: &[&str] = &[
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
    "bool",
    "and",
    "or",
    "unless",
    "offset",
    "inf",
    "nan",
];

/// Clauses whose parenthesised list holds label names, not expressions.
const LABEL_LISTS: &[&str] = &[
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
];

/// Reads and parses the dashboard at `manifest_dir`/[`DASHBOARD`].
pub fn dashboard(manifest_dir: &str) -> Value {
    let path = std::path::Path::new(manifest_dir).join(DASHBOARD);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()))
}

/// Every PromQL query of the dashboard: panel targets (rows' nested panels too) and
/// the queries of template variables, with the panel's or variable's title.
pub fn queries(dashboard: &Value) -> Vec<(String, String)> {
    fn walk(panels: &Value, out: &mut Vec<(String, String)>) {
        for panel in panels.as_array().into_iter().flatten() {
            let title = panel["title"].as_str().unwrap_or("?").to_string();
            for target in panel["targets"].as_array().into_iter().flatten() {
                if let Some(expr) = target["expr"].as_str() {
                    out.push((title.clone(), expr.to_string()));
                }
            }
            walk(&panel["panels"], out);
        }
    }
    let mut out = Vec::new();
    walk(&dashboard["panels"], &mut out);
    for var in dashboard["templating"]["list"]
        .as_array()
        .into_iter()
        .flatten()
    {
        if var["type"] == "query" {
            let query = var["query"]["query"]
                .as_str()
                .or_else(|| var["query"].as_str())
                .or_else(|| var["definition"].as_str());
            if let Some(query) = query {
                out.push((format!("variable {}", var["name"]), variable_expr(query)));
            }
        }
    }
    out
}

/// `label_values(<expr>, <label>)` → `<expr>`; other variable queries as they are.
fn variable_expr(query: &str) -> String {
    let query = query.trim();
    match query
        .strip_prefix("label_values(")
        .and_then(|q| q.strip_suffix(')'))
    {
        Some(args) => match args.rfind(',') {
            Some(comma) => args[..comma].to_string(),
            None => String::new(),
        },
        None => query.to_string(),
    }
}

/// Removes what never names a metric: string literals, label matchers `{…}`, ranges
/// and subqueries `[…]`, Grafana variables `$name`, and the clauses `by (…)`,
/// `without (…)`, `on (…)`, `ignoring (…)`, `group_left (…)`, `group_right (…)`.
fn strip(expr: &str) -> String {
    let mut out = String::new();
    let mut chars = expr.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' | '\'' | '`' => {
                let mut escaped = false;
                for d in chars.by_ref() {
                    if escaped {
                        escaped = false;
                    } else if d == '\\' && c != '`' {
                        escaped = true;
                    } else if d == c {
                        break;
                    }
                }
                out.push(' ');
            }
            '{' | '[' => {
                let close = if c == '{' { '}' } else { ']' };
                let mut quote = None;
                for d in chars.by_ref() {
                    match quote {
                        Some(q) if d == q => quote = None,
                        Some(_) => {}
                        None if d == '"' || d == '\'' || d == '`' => quote = Some(d),
                        None if d == close => break,
                        None => {}
                    }
                }
                out.push(' ');
            }
            '$' => {
                while chars
                    .peek()
                    .is_some_and(|d| d.is_ascii_alphanumeric() || *d == '_')
                {
                    chars.next();
                }
                out.push(' ');
            }
            _ => out.push(c),
        }
    }
    // Label lists: a clause word followed by `( … )`.
    let mut result = String::new();
    let mut rest = out.as_str();
    while !rest.is_empty() {
        let Some((word, before, after)) = next_word(rest) else {
            result.push_str(rest);
            break;
        };
        result.push_str(before);
        rest = after;
        if LABEL_LISTS.contains(&word) {
            // The clause goes whole, so `sum by (x) (…)` reads as the call `sum (…)`.
            result.push(' ');
            let trimmed = rest.trim_start();
            if let Some(inside) = trimmed.strip_prefix('(') {
                if let Some(close) = inside.find(')') {
                    rest = &inside[close + 1..];
                }
            }
        } else {
            result.push_str(word);
        }
    }
    result
}

/// The next identifier-like word of `text`: (word, text before it, text after it).
fn next_word(text: &str) -> Option<(&str, &str, &str)> {
    let start = text.find(|c: char| c.is_ascii_alphanumeric() || c == '_' || c == ':')?;
    let len = text[start..]
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':' || c == '.'))
        .unwrap_or(text.len() - start);
    Some((
        &text[start..start + len],
        &text[..start],
        &text[start + len..],
    ))
}

/// The metric names `expr` selects: identifiers that are not functions or
/// aggregations (followed by `(`), keywords, numbers or durations.
pub fn metrics_in(expr: &str) -> BTreeSet<String> {
    let stripped = strip(expr);
    let mut names = BTreeSet::new();
    let mut rest = stripped.as_str();
    while let Some((word, _, after)) = next_word(rest) {
        rest = after;
        let first = word.chars().next().unwrap_or('0');
        if first.is_ascii_digit() || first == '.' {
            continue; // a number or a duration
        }
        if after.trim_start().starts_with('(') {
            continue; // a function or an aggregation
        }
        if KEYWORDS.contains(&word.to_ascii_lowercase().as_str()) {
            continue;
        }
        names.insert(word.to_string());
    }
    names
}

/// The sample names an OpenMetrics/Prometheus text exposition offers, from its
/// `# TYPE` lines: a counter `x` as `x_total`, a histogram `x` as `x_bucket`, `x_sum`
/// and `x_count`, a summary as `x`, `x_sum` and `x_count`, anything else as `x`.
pub fn exposed(text: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for line in text.lines() {
        let mut words = line.split_whitespace();
        if words.next() != Some("#") || words.next() != Some("TYPE") {
            continue;
        }
        let (Some(name), Some(kind)) = (words.next(), words.next()) else {
            continue;
        };
        match kind {
            "counter" => {
                names.insert(format!("{}_total", name.trim_end_matches("_total")));
            }
            "histogram" | "gaugehistogram" => {
                for suffix in ["_bucket", "_sum", "_count"] {
                    names.insert(format!("{name}{suffix}"));
                }
            }
            "summary" => {
                for suffix in ["", "_sum", "_count"] {
                    names.insert(format!("{name}{suffix}"));
                }
            }
            _ => {
                names.insert(name.to_string());
            }
        }
    }
    names
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_in_skips_functions_labels_and_variables() {
        let expr = r#"histogram_quantile(0.95, sum by (endpoint, le) (rate(a_bucket{job=~"$job", x="b{c}"}[$__rate_interval]))) / on (pod) group_left() max by (pod) (up{pod=~"$pod"}) and b_total offset 5m"#;
        let names: Vec<String> = metrics_in(expr).into_iter().collect();
        assert_eq!(names, ["a_bucket", "b_total", "up"]);
    }
}
