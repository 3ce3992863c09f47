//! IOC lists: one indicator value per line (`lines`) or in one column of CSV (`csv`),
//! each turned into a STIX pattern.

use std::collections::BTreeSet;
use std::net::IpAddr;

/// The patterns of a list, and how many entries were not indicators.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct ParsedList {
    /// Distinct STIX patterns, with the value each was made from (sorted by pattern).
    pub entries: BTreeSet<(String, String)>,
    /// Non-empty, non-comment entries that are no IP, CIDR, domain, URL or hash.
    pub rejected: u64,
}

/// A `lines` list: the first whitespace-separated token of each line; empty lines
/// and lines starting with `#` or `;` are skipped.
pub fn parse_lines(text: &str) -> ParsedList {
    let mut out = ParsedList::default();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        let token = line.split_whitespace().next().unwrap_or("");
        match pattern(token) {
            Some(p) => {
                out.entries.insert((p, token.to_string()));
            }
            None => out.rejected += 1,
        }
    }
    out
}

/// A `csv` list: the value in `column` (1-based) of each row; rows starting with `#`
/// are skipped, and a first row whose value is no indicator is taken as a header.
pub fn parse_csv(text: &str, column: usize) -> ParsedList {
    let mut out = ParsedList::default();
    let mut first = true;
    for line in text.lines() {
        if line.trim().is_empty() || line.trim_start().starts_with('#') {
            continue;
        }
        let value = csv_field(line, column.saturating_sub(1)).unwrap_or_default();
        let value = value.trim();
        match pattern(value) {
            Some(p) => {
                out.entries.insert((p, value.to_string()));
            }
            None if first => {}
            None => out.rejected += 1,
        }
        first = false;
    }
    out
}

/// Field `index` (0-based) of one CSV line (RFC 4180 quoting, `,` separated).
fn csv_field(line: &str, index: usize) -> Option<String> {
    let mut fields = 0;
    let mut current = String::new();
    let mut quoted = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' if quoted && chars.peek() == Some(&'"') => {
                current.push('"');
                chars.next();
            }
            '"' => quoted = !quoted,
            ',' if !quoted => {
                if fields == index {
                    return Some(current);
                }
                fields += 1;
                current.clear();
            }
            c => current.push(c),
        }
    }
    (fields == index).then_some(current)
}

/// A value in a STIX pattern string literal.
fn quoted(value: &str) -> String {
    value.replace('\\', "\\\\").replace('\'', "\\'")
}

/// The STIX pattern of one list value: an IPv4/IPv6 address or CIDR, a URL, an MD5,
/// SHA-1, SHA-256 or SHA-512 hash, or a domain name; `None` for anything else.
pub fn pattern(value: &str) -> Option<String> {
    let value = value.trim();
    if value.is_empty() || value.len() > 2048 {
        return None;
    }
    if let Some(p) = ip_pattern(value) {
        return Some(p);
    }
    if let Some((scheme, rest)) = value.split_once("://") {
        let ok = !scheme.is_empty()
            && scheme
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
            && !rest.is_empty()
            && !value.chars().any(|c| c.is_whitespace() || c.is_control());
        return ok.then(|| format!("[url:value = '{}']", quoted(value)));
    }
    if let Some(algorithm) = hash_algorithm(value) {
        return Some(format!(
            "[file:hashes.'{algorithm}' = '{}']",
            value.to_ascii_lowercase()
        ));
    }
    is_domain(value).then(|| {
        format!(
            "[domain-name:value = '{}']",
            value.trim_end_matches('.').to_ascii_lowercase()
        )
    })
}

fn ip_pattern(value: &str) -> Option<String> {
    let (addr, prefix) = match value.split_once('/') {
        Some((a, p)) => (a, Some(p.parse::<u8>().ok()?)),
        None => (value, None),
    };
    let ip: IpAddr = addr.parse().ok()?;
    let (kind, max) = match ip {
        IpAddr::V4(_) => ("ipv4-addr", 32),
        IpAddr::V6(_) => ("ipv6-addr", 128),
    };
    match prefix {
        Some(p) if p > max => None,
        Some(p) => Some(format!("[{kind}:value = '{ip}/{p}']")),
        None => Some(format!("[{kind}:value = '{ip}']")),
    }
}

fn hash_algorithm(value: &str) -> Option<&'static str> {
    if !value.chars().all(|c| c.is_ascii_hexdigit()) {
        return None;
    }
    match value.len() {
        32 => Some("MD5"),
        40 => Some("SHA-1"),
        64 => Some("SHA-256"),
        128 => Some("SHA-512"),
        _ => None,
    }
}

fn is_domain(value: &str) -> bool {
    let name = value.trim_end_matches('.');
    let labels: Vec<&str> = name.split('.').collect();
    name.len() <= 253
        && labels.len() >= 2
        && labels.iter().all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        })
        && labels.last().is_some_and(|tld| {
            tld.chars().all(|c| c.is_ascii_alphabetic() || c == '-') && tld.len() >= 2
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_kind_of_value_becomes_its_pattern() {
        for (value, expected) in [
            ("198.51.100.7", "[ipv4-addr:value = '198.51.100.7']"),
            ("198.51.100.0/24", "[ipv4-addr:value = '198.51.100.0/24']"),
            ("2001:db8::1", "[ipv6-addr:value = '2001:db8::1']"),
            ("2001:db8::/32", "[ipv6-addr:value = '2001:db8::/32']"),
            (
                "Evil.Example.COM.",
                "[domain-name:value = 'evil.example.com']",
            ),
            (
                "http://evil.example/a'b\\c",
                "[url:value = 'http://evil.example/a\\'b\\\\c']",
            ),
            (
                "D41D8CD98F00B204E9800998ECF8427E",
                "[file:hashes.'MD5' = 'd41d8cd98f00b204e9800998ecf8427e']",
            ),
            (
                "da39a3ee5e6b4b0d3255bfef95601890afd80709",
                "[file:hashes.'SHA-1' = 'da39a3ee5e6b4b0d3255bfef95601890afd80709']",
            ),
        ] {
            assert_eq!(pattern(value).as_deref(), Some(expected), "{value}");
        }
        for junk in [
            "",
            "hello",
            "1.2.3.4/33",
            "not a url://x",
            "abc",
            "-a.com",
            "a.1",
        ] {
            assert_eq!(pattern(junk), None, "{junk}");
        }
    }

    #[test]
    fn lines_skip_comments_and_count_junk() {
        let list = parse_lines(
            "# a list\n198.51.100.7\n\n198.51.100.7 # again\n; also a comment\nevil.example\tdescription\n???\n",
        );
        assert_eq!(list.entries.len(), 2);
        assert_eq!(list.rejected, 1);
    }

    #[test]
    fn csv_takes_one_column_and_a_header() {
        let list = parse_csv(
            "id,url,status\n# comment\n1,\"http://a.example/x,y\",online\n2,http://b.example/,offline\n3,junk,x\n",
            2,
        );
        let values: Vec<&str> = list.entries.iter().map(|(_, v)| v.as_str()).collect();
        assert_eq!(values, ["http://a.example/x,y", "http://b.example/"]);
        assert_eq!(list.rejected, 1);
        assert_eq!(csv_field("a,\"b\"\"c\",d", 1).as_deref(), Some("b\"c"));
        assert_eq!(csv_field("a,b", 5), None);
    }
}
