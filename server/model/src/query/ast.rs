//! The compiled form of a query: boolean structure over terms.

use std::cmp::Ordering;
use std::fmt;

use super::literal::{Literal, Time};
use super::text::TextPattern;
use crate::stix::tlp::Tlp;

/// A boolean expression over terms.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Expr {
    And(Vec<Expr>),
    Or(Vec<Expr>),
    Not(Box<Expr>),
    Term(Term),
}

/// The comparison of a term: `:`, `:>`, `:>=`, `:<` or `:<=`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Cmp {
    Eq,
    Gt,
    Ge,
    Lt,
    Le,
}

impl Cmp {
    /// Whether `property.cmp(value) == ordering` satisfies this comparison.
    pub(crate) fn holds(self, ordering: Ordering) -> bool {
        match self {
            Cmp::Eq => ordering == Ordering::Equal,
            Cmp::Gt => ordering == Ordering::Greater,
            Cmp::Ge => ordering != Ordering::Less,
            Cmp::Lt => ordering == Ordering::Less,
            Cmp::Le => ordering != Ordering::Greater,
        }
    }

    /// The comparison a term's text after its `:` starts with (`>=`, `<=`, `>`, `<`,
    /// or none for equals), and how many bytes its operator takes.
    pub(crate) fn after_colon(text: &str) -> (Cmp, usize) {
        [
            (">=", Cmp::Ge),
            ("<=", Cmp::Le),
            (">", Cmp::Gt),
            ("<", Cmp::Lt),
        ]
        .into_iter()
        .find(|(op, _)| text.starts_with(op))
        .map_or((Cmp::Eq, 0), |(op, cmp)| (cmp, op.len()))
    }

    /// As written after the field name.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Cmp::Eq => ":",
            Cmp::Gt => ":>",
            Cmp::Ge => ":>=",
            Cmp::Lt => ":<",
            Cmp::Le => ":<=",
        }
    }
}

/// One `field:value` test, with the text it was written as.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Term {
    pub source: Box<str>,
    pub test: Test,
}

/// What a term tests, by field.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Test {
    /// A STIX property path; lists along the path match if any element does.
    Property { path: Box<[Box<str>]>, check: Check },
    /// `ioc_type`: the type of any IOC in the indicator's pattern.
    IocType(TextPattern),
    /// `ioc_value`: the value of any IOC in the indicator's pattern.
    IocValue(TextPattern),
    /// `source`: any name of a stored collection the version was posted to.
    Source(TextPattern),
    /// `tlp`: the most restrictive TLP marking; `None` tests for any TLP marking.
    Tlp(Option<(Cmp, Tlp)>),
    /// `added`: when the version entered the store; `None` is always true.
    Added(Option<(Cmp, Time)>),
}

/// A test on the values found at a property path.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Check {
    /// `field:*`: some non-null value is there.
    Exists,
    /// Some value there compares as asked.
    Compare(Cmp, Literal),
}

impl Expr {
    /// Whether any term compares against `now`.
    pub(crate) fn uses_relative_time(&self) -> bool {
        match self {
            Expr::And(items) | Expr::Or(items) => items.iter().any(Expr::uses_relative_time),
            Expr::Not(inner) => inner.uses_relative_time(),
            Expr::Term(term) => match &term.test {
                Test::Property {
                    check: Check::Compare(_, literal),
                    ..
                } => matches!(literal.time, Some(Time::Now(_))),
                Test::Added(Some((_, time))) => matches!(time, Time::Now(_)),
                _ => false,
            },
        }
    }

    /// The first name of every property path a term reads, in query order.
    pub(crate) fn property_heads<'a>(&'a self, out: &mut Vec<&'a str>) {
        match self {
            Expr::And(items) | Expr::Or(items) => {
                items.iter().for_each(|item| item.property_heads(out))
            }
            Expr::Not(inner) => inner.property_heads(out),
            Expr::Term(Term {
                test: Test::Property { path, .. },
                ..
            }) => out.extend(path.first().map(|head| &**head)),
            Expr::Term(_) => {}
        }
    }

    /// Whether evaluating this may parse an indicator pattern.
    fn needs_iocs(&self) -> bool {
        match self {
            Expr::And(items) | Expr::Or(items) => items.iter().any(Expr::needs_iocs),
            Expr::Not(inner) => inner.needs_iocs(),
            Expr::Term(term) => matches!(term.test, Test::IocType(_) | Test::IocValue(_)),
        }
    }

    /// Reorders `and`/`or` operands so that pattern parsing happens last, and
    /// often not at all thanks to short-circuiting. Terms have no side effects,
    /// so the order does not change the result.
    pub(crate) fn cheap_first(&mut self) {
        match self {
            Expr::And(items) | Expr::Or(items) => {
                items.iter_mut().for_each(Expr::cheap_first);
                items.sort_by_key(Expr::needs_iocs);
            }
            Expr::Not(inner) => inner.cheap_first(),
            Expr::Term(_) => {}
        }
    }
}

/// Fully parenthesised, to show how a query was understood.
impl fmt::Display for Expr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let list = |f: &mut fmt::Formatter<'_>, items: &[Expr], op: &str| {
            f.write_str("(")?;
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    write!(f, " {op} ")?;
                }
                write!(f, "{item}")?;
            }
            f.write_str(")")
        };
        match self {
            Expr::And(items) => list(f, items, "and"),
            Expr::Or(items) => list(f, items, "or"),
            Expr::Not(inner) => write!(f, "not {inner}"),
            Expr::Term(term) => f.write_str(&term.source),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn comparisons_hold_as_named() {
        use Ordering::*;
        let table = [
            (Cmp::Eq, [false, true, false]),
            (Cmp::Gt, [false, false, true]),
            (Cmp::Ge, [false, true, true]),
            (Cmp::Lt, [true, false, false]),
            (Cmp::Le, [true, true, false]),
        ];
        for (cmp, expected) in table {
            let got = [Less, Equal, Greater].map(|o| cmp.holds(o));
            assert_eq!(got, expected, "{}", cmp.as_str());
        }
    }
}
