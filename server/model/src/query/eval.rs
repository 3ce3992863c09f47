//! Evaluates a compiled query against one object version.
//!
//! Never fails: a value of the wrong type simply does not match. IOCs and the
//! TLP level are worked out at most once per object, and only if a term asks.

use std::cell::OnceCell;

use serde_json::Value;

use super::ast::{Check, Cmp, Expr, Test};
use super::facts::ObjectFacts;
use super::literal::{self, Literal};
use crate::stix::pattern::{self, Ioc};
use crate::stix::timestamp::parse_timestamp;
use crate::stix::tlp::{tlp_of, Tlp};

/// Whether `expr` holds for the object version described by `facts` at time `now_us`.
pub(crate) fn matches(expr: &Expr, facts: &ObjectFacts<'_>, now_us: i64) -> bool {
    let object = Object {
        facts,
        now_us,
        iocs: OnceCell::new(),
        tlp: OnceCell::new(),
    };
    object.eval(expr)
}

/// One object under evaluation, with lazily derived facts.
struct Object<'f, 'a> {
    facts: &'f ObjectFacts<'a>,
    now_us: i64,
    iocs: OnceCell<Vec<Ioc>>,
    tlp: OnceCell<Option<Tlp>>,
}

impl Object<'_, '_> {
    fn eval(&self, expr: &Expr) -> bool {
        match expr {
            Expr::And(items) => items.iter().all(|e| self.eval(e)),
            Expr::Or(items) => items.iter().any(|e| self.eval(e)),
            Expr::Not(inner) => !self.eval(inner),
            Expr::Term(term) => self.test(&term.test),
        }
    }

    fn test(&self, test: &Test) -> bool {
        match test {
            Test::Property { path, check } => {
                any_leaf(self.facts.object, path, &mut |leaf| match check {
                    Check::Exists => !leaf.is_null(),
                    Check::Compare(cmp, literal) => compare(leaf, *cmp, literal, self.now_us),
                })
            }
            Test::IocType(pattern) => self.iocs().iter().any(|i| pattern.matches(&i.ioc_type)),
            Test::IocValue(pattern) => self.iocs().iter().any(|i| pattern.matches(&i.value)),
            Test::Source(pattern) => self.facts.sources.iter().any(|s| pattern.matches(s)),
            Test::Tlp(None) => self.tlp().is_some(),
            Test::Tlp(Some((cmp, level))) => self.tlp().is_some_and(|t| cmp.holds(t.cmp(level))),
            Test::Added(None) => true,
            Test::Added(Some((cmp, time))) => {
                cmp.holds(self.facts.added_us.cmp(&time.resolve(self.now_us)))
            }
        }
    }

    fn iocs(&self) -> &[Ioc] {
        self.iocs.get_or_init(|| indicator_iocs(self.facts.object))
    }

    fn tlp(&self) -> Option<Tlp> {
        *self.tlp.get_or_init(|| tlp_of(self.facts.object))
    }
}

/// The IOCs of a STIX-patterned indicator; none for anything else or an unparsable pattern.
fn indicator_iocs(object: &Value) -> Vec<Ioc> {
    let field = |name| object.get(name).and_then(Value::as_str);
    if field("type") != Some("indicator") {
        return Vec::new();
    }
    // STIX 2.0 indicators have no pattern_type; 2.1 ones may carry Sigma, YARA, Snort….
    if field("pattern_type").is_some_and(|t| !t.eq_ignore_ascii_case("stix")) {
        return Vec::new();
    }
    field("pattern")
        .and_then(|p| pattern::iocs(p).ok())
        .unwrap_or_default()
}

/// Calls `test` on each value at `path`, stepping into every list on the way; true if any passes.
fn any_leaf(value: &Value, path: &[Box<str>], test: &mut impl FnMut(&Value) -> bool) -> bool {
    if let Value::Array(items) = value {
        return items.iter().any(|item| any_leaf(item, path, test));
    }
    match path.split_first() {
        None => test(value),
        Some((name, rest)) => value
            .get(&**name)
            .is_some_and(|child| any_leaf(child, rest, test)),
    }
}

/// Compares one property value with a query value; mismatched types are simply false.
fn compare(value: &Value, cmp: Cmp, literal: &Literal, now_us: i64) -> bool {
    match value {
        Value::String(s) => compare_text(s, cmp, literal, now_us),
        Value::Number(n) => match (n.as_f64(), literal.number) {
            (Some(n), Some(want)) => n.partial_cmp(&want).is_some_and(|o| cmp.holds(o)),
            _ => false,
        },
        Value::Bool(b) => cmp == Cmp::Eq && literal.boolean == Some(*b),
        Value::Null | Value::Array(_) | Value::Object(_) => false,
    }
}

/// A string property: as a time if both sides are times, as a number for an
/// ordered comparison with a number, otherwise as text (ignoring case).
fn compare_text(s: &str, cmp: Cmp, literal: &Literal, now_us: i64) -> bool {
    if let Some(time) = literal.time {
        if let Ok(us) = parse_timestamp(s) {
            return cmp.holds(us.cmp(&time.resolve(now_us)));
        }
    }
    if cmp == Cmp::Eq {
        return literal.text.matches(s);
    }
    if literal.time.is_some() {
        return false;
    }
    if let Some(want) = literal.number {
        return literal::number(s)
            .and_then(|n| n.partial_cmp(&want))
            .is_some_and(|o| cmp.holds(o));
    }
    literal.text.compare(s).is_some_and(|o| cmp.holds(o))
}
