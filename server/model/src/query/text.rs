//! Case-insensitive text matching with `*` wildcards, compiled once per query.
//!
//! Literals are lower-cased when the query is parsed. At match time an ASCII
//! haystack (nearly every STIX value) is compared byte by byte with
//! `to_ascii_lowercase`, so nothing is allocated; only a non-ASCII haystack is
//! lower-cased into a temporary string first.

use std::cmp::Ordering;

/// A compiled text literal.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum TextPattern {
    /// Only wildcards: any string at all.
    Any,
    /// No wildcard: the whole string, ignoring case.
    Exact(Box<str>),
    /// Fixed pieces with a `*` between each two (at least two pieces).
    Glob(Box<[Box<str>]>),
}

/// Lower-cases the way haystacks are lower-cased, so both sides agree.
pub(crate) fn fold(s: &str) -> String {
    s.chars().flat_map(char::to_lowercase).collect()
}

impl TextPattern {
    /// Compiles the pieces of a value split at its wildcards (one piece = no wildcard).
    pub(crate) fn new(pieces: &[String]) -> Self {
        match pieces {
            [] => TextPattern::Exact("".into()),
            [one] => TextPattern::Exact(fold(one).into()),
            _ if pieces.iter().all(String::is_empty) => TextPattern::Any,
            _ => TextPattern::Glob(pieces.iter().map(|p| fold(p).into()).collect()),
        }
    }

    /// Whether `s` matches, ignoring case.
    pub(crate) fn matches(&self, s: &str) -> bool {
        match self {
            TextPattern::Any => true,
            TextPattern::Exact(p) => with_folded(s, |h| eq_ci(h, p.as_bytes())),
            TextPattern::Glob(parts) => with_folded(s, |h| glob(h, parts)),
        }
    }

    /// How `s` sorts against an exact literal, ignoring case; `None` for wildcards.
    pub(crate) fn compare(&self, s: &str) -> Option<Ordering> {
        match self {
            TextPattern::Exact(p) => Some(with_folded(s, |h| {
                h.iter()
                    .map(u8::to_ascii_lowercase)
                    .cmp(p.as_bytes().iter().copied())
            })),
            TextPattern::Any | TextPattern::Glob(_) => None,
        }
    }
}

/// Runs `f` on bytes of `s` that only still need ASCII lower-casing.
fn with_folded<R>(s: &str, f: impl FnOnce(&[u8]) -> R) -> R {
    if s.is_ascii() {
        f(s.as_bytes())
    } else {
        f(fold(s).as_bytes())
    }
}

fn eq_ci(h: &[u8], p: &[u8]) -> bool {
    h.len() == p.len() && h.iter().zip(p).all(|(a, b)| a.to_ascii_lowercase() == *b)
}

fn find_ci(h: &[u8], p: &[u8]) -> Option<usize> {
    if p.len() > h.len() {
        return None;
    }
    (0..=h.len() - p.len()).find(|&i| eq_ci(&h[i..i + p.len()], p))
}

/// `*`-only globbing: the first piece anchors the start, the last the end, and
/// the ones between are found left to right (greedy leftmost is exact here).
fn glob(h: &[u8], parts: &[Box<str>]) -> bool {
    let (Some(first), Some(last)) = (parts.first(), parts.last()) else {
        return false;
    };
    let (first, last) = (first.as_bytes(), last.as_bytes());
    if h.len() < first.len() + last.len() {
        return false;
    }
    let (head, rest) = h.split_at(first.len());
    let (mut middle, tail) = rest.split_at(rest.len() - last.len());
    if !eq_ci(head, first) || !eq_ci(tail, last) {
        return false;
    }
    for part in &parts[1..parts.len() - 1] {
        let part = part.as_bytes();
        match find_ci(middle, part) {
            Some(i) => middle = &middle[i + part.len()..],
            None => return false,
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pattern(text: &str) -> TextPattern {
        let pieces: Vec<String> = text.split('*').map(str::to_owned).collect();
        TextPattern::new(&pieces)
    }

    #[test]
    fn exact_ignores_case() {
        assert!(pattern("Emotet").matches("emotet"));
        assert!(pattern("emotet").matches("EMOTET"));
        assert!(!pattern("emotet").matches("emotet2"));
        assert!(pattern("").matches(""));
        assert!(!pattern("").matches("x"));
    }

    #[test]
    fn unicode_case_folds_both_ways() {
        assert!(pattern("ÄPFEL").matches("äpfel"));
        assert!(pattern("äpfel").matches("ÄPFEL"));
        assert!(pattern("straße*").matches("STRAßENBAHN"));
        assert!(!pattern("ä").matches("a"));
    }

    #[test]
    fn wildcards_anywhere() {
        assert!(pattern("*emotet*").matches("Win32/Emotet.A"));
        assert!(pattern("emotet*").matches("Emotet loader"));
        assert!(!pattern("emotet*").matches("the Emotet loader"));
        assert!(pattern("*.exe").matches("INVOICE.EXE"));
        assert!(!pattern("*.exe").matches("invoice.exe.txt"));
        assert!(pattern("a*b*c").matches("abc"));
        assert!(pattern("a*b*c").matches("a-b-b-c"));
        assert!(!pattern("a*b*c").matches("acb"));
        assert!(!pattern("ab*ba").matches("aba"), "pieces must not overlap");
        assert!(pattern("a**b").matches("ab"));
        assert!(pattern("*x*x*").matches("xx"));
        assert!(!pattern("*x*x*").matches("x"));
        assert!(pattern("*😈*").matches("evil 😈 emoji"));
    }

    #[test]
    fn only_stars_is_any() {
        assert_eq!(pattern("*"), TextPattern::Any);
        assert_eq!(pattern("***"), TextPattern::Any);
        assert!(pattern("*").matches(""));
    }

    #[test]
    fn compares_alphabetically_ignoring_case() {
        assert_eq!(pattern("m").compare("Apple"), Some(Ordering::Less));
        assert_eq!(pattern("m").compare("Zebra"), Some(Ordering::Greater));
        assert_eq!(pattern("Mango").compare("mango"), Some(Ordering::Equal));
        assert_eq!(pattern("m*").compare("m"), None);
    }
}
