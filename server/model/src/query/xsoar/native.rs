//! The Taxiway query a translation produces, and how it is written out.
//!
//! Terms are written with values bare when the native lexer reads them back as they
//! are, quoted (with `\"`, `\\` and `\*` escapes) otherwise; `and` inside `or` and
//! anything compound under `not` get parentheses, so the text reads as it parses.

use crate::query::ast::Cmp;

/// A native query expression.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Native {
    And(Vec<Native>),
    Or(Vec<Native>),
    Not(Box<Native>),
    /// `field` `cmp` value, the value given as pieces between `*` wildcards.
    Term {
        field: &'static str,
        cmp: Cmp,
        pieces: Vec<String>,
    },
}

impl Native {
    /// `field:value` without wildcards.
    pub(crate) fn eq(field: &'static str, value: impl Into<String>) -> Native {
        Native::compare(field, Cmp::Eq, value)
    }

    /// `field` `cmp` a fixed value.
    pub(crate) fn compare(field: &'static str, cmp: Cmp, value: impl Into<String>) -> Native {
        Native::Term {
            field,
            cmp,
            pieces: vec![value.into()],
        }
    }

    /// `field:value` where `pieces` are the text between `*` wildcards.
    pub(crate) fn pattern(field: &'static str, pieces: &[String]) -> Native {
        Native::Term {
            field,
            cmp: Cmp::Eq,
            pieces: pieces.to_vec(),
        }
    }

    /// `field:*`: the field is present.
    pub(crate) fn present(field: &'static str) -> Native {
        Native::pattern(field, &[String::new(), String::new()])
    }

    /// `not` this.
    pub(crate) fn not(self) -> Native {
        Native::Not(Box::new(self))
    }

    /// The query text.
    pub(crate) fn render(&self) -> String {
        let mut out = String::new();
        self.write(&mut out, Context::Top);
        out
    }

    fn write(&self, out: &mut String, context: Context) {
        match self {
            Native::And(items) | Native::Or(items) => {
                let (op, parens) = match self {
                    Native::And(_) => (" and ", matches!(context, Context::Or | Context::Not)),
                    _ => (" or ", matches!(context, Context::And | Context::Not)),
                };
                let inner = if matches!(self, Native::And(_)) {
                    Context::And
                } else {
                    Context::Or
                };
                if parens {
                    out.push('(');
                }
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push_str(op);
                    }
                    item.write(out, inner);
                }
                if parens {
                    out.push(')');
                }
            }
            Native::Not(inner) => {
                out.push_str("not ");
                inner.write(out, Context::Not);
            }
            Native::Term { field, cmp, pieces } => {
                out.push_str(field);
                out.push_str(cmp.as_str());
                write_value(out, pieces);
            }
        }
    }
}

/// Where an expression is written, to decide on parentheses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Context {
    Top,
    And,
    Or,
    Not,
}

/// A value: bare if the native lexer reads it back unchanged, else quoted.
fn write_value(out: &mut String, pieces: &[String]) {
    let first = pieces.first().and_then(|p| p.chars().next());
    let bare = !pieces.join("*").is_empty()
        && !matches!(first, Some('>' | '<' | '='))
        && pieces.iter().all(|p| {
            p.chars()
                .all(|c| !c.is_whitespace() && !matches!(c, '(' | ')' | '"' | '\\' | '*'))
        });
    if bare {
        out.push_str(&pieces.join("*"));
        return;
    }
    out.push('"');
    for (i, piece) in pieces.iter().enumerate() {
        if i > 0 {
            out.push('*');
        }
        for c in piece.chars() {
            if matches!(c, '"' | '\\' | '*') {
                out.push('\\');
            }
            out.push(c);
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::query::Query;

    fn term(value: &str) -> Native {
        Native::eq("name", value)
    }

    #[test]
    fn values_are_bare_when_they_can_be() {
        assert_eq!(term("apt").render(), "name:apt");
        assert_eq!(
            Native::pattern("name", &["".into(), "emotet".into(), "".into()]).render(),
            "name:*emotet*"
        );
        assert_eq!(Native::present("labels").render(), "labels:*");
        assert_eq!(term("crime ware").render(), r#"name:"crime ware""#);
        assert_eq!(term(r#"a"b\c*d"#).render(), r#"name:"a\"b\\c\*d""#);
        assert_eq!(term(">x").render(), r#"name:">x""#);
        assert_eq!(term("").render(), r#"name:"""#);
        assert_eq!(term("a(b)").render(), r#"name:"a(b)""#);
    }

    #[test]
    fn every_rendered_value_reads_back() {
        for value in [
            "apt",
            "crime ware",
            r#"a"b\c*d"#,
            ">x",
            "=y",
            "",
            "a(b)",
            "日本",
            "C:\\x",
        ] {
            let text = term(value).render();
            Query::parse(&text).unwrap_or_else(|e| panic!("{text}: {e}"));
        }
    }

    #[test]
    fn parentheses_only_where_needed() {
        let (a, b, c) = (term("a"), term("b"), term("c"));
        let and = Native::And(vec![a.clone(), Native::Or(vec![b.clone(), c.clone()])]);
        assert_eq!(and.render(), "name:a and (name:b or name:c)");
        let or = Native::Or(vec![Native::And(vec![a.clone(), b.clone()]), c.clone()]);
        assert_eq!(or.render(), "(name:a and name:b) or name:c");
        let not = Native::And(vec![a.clone(), b.clone()]).not();
        assert_eq!(not.render(), "not (name:a and name:b)");
        assert_eq!(a.clone().not().not().render(), "not not name:a");
        let nested = Native::And(vec![a, Native::And(vec![b, c])]);
        assert_eq!(nested.render(), "name:a and name:b and name:c");
    }
}
