//! Query parameters of listing requests: the TAXII filters, `limit` and `next`.

use serde::{Deserialize, Serialize};

use crate::stix::timestamp::parse_timestamp;
use crate::store::validate::{is_stix_id, is_stix_type};
use crate::store::{Micros, VersionMatch};

/// The filters of a listing request. A `next` cursor carries them, so they are
/// compared with the filters a continuation request repeats.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Filters {
    /// `match[id]`, sorted.
    #[serde(default, skip_serializing_if = "Vec::is_empty", rename = "i")]
    pub ids: Vec<String>,
    /// `match[type]`, sorted.
    #[serde(default, skip_serializing_if = "Vec::is_empty", rename = "t")]
    pub types: Vec<String>,
    /// `match[version]` as given (default `last` is applied later).
    #[serde(default, skip_serializing_if = "Option::is_none", rename = "v")]
    pub versions: Option<VersionMatch>,
    /// `match[spec_version]`, sorted.
    #[serde(default, skip_serializing_if = "Vec::is_empty", rename = "s")]
    pub spec_versions: Vec<String>,
    /// `added_after`.
    #[serde(default, skip_serializing_if = "Option::is_none", rename = "a")]
    pub added_after: Option<Micros>,
}

impl Filters {
    /// Whether the request gave no filter at all.
    pub fn is_empty(&self) -> bool {
        *self == Filters::default()
    }
}

/// Everything a listing request's query string says.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Params {
    /// The filters.
    pub filters: Filters,
    /// `limit`, as given.
    pub limit: Option<usize>,
    /// `next`, as given.
    pub next: Option<String>,
    /// `match[<field>]` parameters this server does not support on the objects and
    /// manifest endpoints: ignored (TAXII leaves other match fields to servers), their
    /// field names kept for logging and metrics.
    pub ignored: Vec<String>,
}

/// Which filters an endpoint accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Allowed {
    /// Objects and manifest: every filter.
    All,
    /// Object by id: `match[version]`, `match[spec_version]`.
    VersionAndSpec,
    /// Versions: `match[spec_version]` only.
    SpecOnly,
}

/// Parse a query string; any malformed parameter is an error message for a 400.
pub fn parse(query: Option<&str>, allowed: Allowed) -> Result<Params, String> {
    let mut params = Params::default();
    let mut versions: Option<VersionMatch> = None;
    for (key, value) in form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
        take(&mut params, &mut versions, &key, value.trim(), allowed)?;
    }
    Ok(finish(params, versions))
}

/// Take one query parameter into `params` (`match[version]` into `versions`).
fn take(
    params: &mut Params,
    versions: &mut Option<VersionMatch>,
    key: &str,
    value: &str,
    allowed: Allowed,
) -> Result<(), String> {
    let filters = &mut params.filters;
    match key {
        "limit" => once(&mut params.limit, parse_limit(value)?, "limit"),
        "added_after" => {
            let t = parse_timestamp(value).map_err(|_| {
                format!(
                    "added_after must be a timestamp like 2024-01-31T12:00:00.000Z, got {:?}",
                    clip(value)
                )
            })?;
            once(&mut filters.added_after, t, "added_after")
        }
        "next" => {
            if value.is_empty() {
                return Err("next must not be empty".into());
            }
            once(&mut params.next, value.to_string(), "next")
        }
        "match[id]" if allowed == Allowed::All => push_valid(
            &mut filters.ids,
            value,
            is_stix_id,
            "match[id] must list STIX ids like indicator--<uuid>",
        ),
        "match[type]" if allowed == Allowed::All => push_valid(
            &mut filters.types,
            value,
            is_stix_type,
            "match[type] must list STIX types",
        ),
        "match[version]" if allowed != Allowed::SpecOnly => {
            push_versions(versions.get_or_insert_with(VersionMatch::default), value)
        }
        "match[spec_version]" => push_valid(
            &mut filters.spec_versions,
            value,
            is_spec_version,
            "match[spec_version] takes values like 2.1",
        ),
        k if k.starts_with("match[") => note_unsupported(params, k, allowed),
        // Unknown parameters (cache busters and the like) are ignored.
        _ => Ok(()),
    }
}

fn parse_limit(value: &str) -> Result<usize, String> {
    value
        .parse::<usize>()
        .ok()
        .filter(|l| *l > 0)
        .ok_or_else(|| format!("limit must be a positive integer, got {:?}", clip(value)))
}

/// Push each item of the comma-separated `value` that `valid` accepts; the first it
/// does not is an error starting with `refusal`.
fn push_valid(
    into: &mut Vec<String>,
    value: &str,
    valid: fn(&str) -> bool,
    refusal: &str,
) -> Result<(), String> {
    for item in list(value) {
        if !valid(item) {
            return Err(format!("{refusal}, got {:?}", clip(item)));
        }
        into.push(item.to_string());
    }
    Ok(())
}

fn push_versions(v: &mut VersionMatch, value: &str) -> Result<(), String> {
    for item in list(value) {
        match item {
            "all" => v.all = true,
            "first" => v.first = true,
            "last" => v.last = true,
            ts => v.at.push(parse_timestamp(ts).map_err(|_| {
                format!(
                    "match[version] takes all, first, last or timestamps, got {:?}",
                    clip(ts)
                )
            })?),
        }
    }
    Ok(())
}

/// A `match[<field>]` this endpoint does not filter on: an error where the field is
/// known (or the endpoint takes only some filters), else noted as ignored.
fn note_unsupported(params: &mut Params, key: &str, allowed: Allowed) -> Result<(), String> {
    let known = matches!(
        key,
        "match[id]" | "match[type]" | "match[version]" | "match[spec_version]"
    );
    if known || allowed != Allowed::All {
        return Err(format!(
            "unsupported filter {:?} on this endpoint",
            clip(key)
        ));
    }
    let field = key.strip_prefix("match[").unwrap_or(key);
    let field = field.strip_suffix(']').unwrap_or(field);
    if params.ignored.len() < MAX_IGNORED && !params.ignored.iter().any(|f| f == field) {
        params.ignored.push(clip(field));
    }
    Ok(())
}

/// Sort and deduplicate the lists, so equal filters compare (and page) equal.
fn finish(mut params: Params, versions: Option<VersionMatch>) -> Params {
    if let Some(mut v) = versions {
        v.at.sort_unstable();
        v.at.dedup();
        params.filters.versions = Some(v);
    }
    for l in [
        &mut params.filters.ids,
        &mut params.filters.types,
        &mut params.filters.spec_versions,
    ] {
        l.sort();
        l.dedup();
    }
    params
}

/// At most this many ignored field names are kept per request (for the log).
const MAX_IGNORED: usize = 8;

/// The metrics label of an ignored `match[<field>]`: the field name for a few
/// well-known ones, else `other`, so the label set stays small.
pub fn ignored_label(field: &str) -> &'static str {
    match field {
        "added_after" => "added_after",
        "limit" => "limit",
        "next" => "next",
        "relationship_type" => "relationship_type",
        "source_ref" => "source_ref",
        "target_ref" => "target_ref",
        _ => "other",
    }
}

fn once<T: PartialEq>(slot: &mut Option<T>, value: T, name: &str) -> Result<(), String> {
    match slot {
        Some(existing) if *existing != value => {
            Err(format!("{name} given twice with different values"))
        }
        _ => {
            *slot = Some(value);
            Ok(())
        }
    }
}

fn list(value: &str) -> impl Iterator<Item = &str> {
    value.split(',').map(str::trim).filter(|s| !s.is_empty())
}

fn is_spec_version(s: &str) -> bool {
    matches!(s.split_once('.'), Some((a, b)) if !a.is_empty() && !b.is_empty() && a.len() <= 3 && b.len() <= 3
        && a.bytes().all(|c| c.is_ascii_digit()) && b.bytes().all(|c| c.is_ascii_digit()))
}

fn clip(s: &str) -> String {
    s.chars().take(80).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(q: &str) -> Params {
        parse(Some(q), Allowed::All).expect(q)
    }

    #[test]
    fn every_filter_parses() {
        let p = ok("limit=10&added_after=2024-01-01T00:00:00Z&match[type]=malware,indicator&match[type]=tool\
                    &match[id]=indicator--8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f&match[version]=first,last,2024-01-01T00:00:00.123Z\
                    &match[spec_version]=2.1&_=123");
        assert_eq!(p.limit, Some(10));
        assert_eq!(p.filters.types, vec!["indicator", "malware", "tool"]);
        assert_eq!(p.filters.ids.len(), 1);
        let v = p.filters.versions.expect("versions");
        assert!(v.first && v.last && !v.all);
        assert_eq!(v.at, vec![1_704_067_200_123_000]);
        assert_eq!(p.filters.spec_versions, vec!["2.1"]);
        assert_eq!(p.filters.added_after, Some(1_704_067_200_000_000));
    }

    #[test]
    fn url_encoded_brackets_and_commas() {
        let p = ok("match%5Btype%5D=indicator%2Cmalware");
        assert_eq!(p.filters.types, vec!["indicator", "malware"]);
    }

    #[test]
    fn malformed_values_are_errors() {
        for q in [
            "limit=0",
            "limit=-1",
            "limit=abc",
            "limit=1.5",
            "added_after=yesterday",
            "added_after=2024-13-01T00:00:00Z",
            "match[version]=newest",
            "match[id]=../../etc/passwd",
            "match[id]=indicator",
            "match[type]=Indicator",
            "match[spec_version]=two",
            "limit=5&limit=6",
            "next=",
        ] {
            assert!(parse(Some(q), Allowed::All).is_err(), "{q}");
        }
    }

    #[test]
    fn unknown_match_fields_are_ignored_on_listings() {
        let p = ok("match[x_vendor_field]=a&match[added_after]=2024-01-01T00:00:00Z&match[x_vendor_field]=b&match[type]=tool");
        assert_eq!(p.ignored, vec!["x_vendor_field", "added_after"]);
        assert_eq!(p.filters.types, vec!["tool"]);
        assert_eq!(p.filters.added_after, None);
        assert!(parse(Some("match[color]=red"), Allowed::VersionAndSpec).is_err());
        assert!(parse(Some("match[color]=red"), Allowed::SpecOnly).is_err());
        assert!(parse(Some("match[color]=red&match[type]=Bad"), Allowed::All).is_err());
        assert_eq!(ignored_label("added_after"), "added_after");
        assert_eq!(ignored_label("x_vendor_field"), "other");
    }

    #[test]
    fn endpoint_specific_filters() {
        assert!(parse(Some("match[type]=indicator"), Allowed::VersionAndSpec).is_err());
        assert!(parse(Some("match[version]=all"), Allowed::VersionAndSpec).is_ok());
        assert!(parse(Some("match[version]=all"), Allowed::SpecOnly).is_err());
        assert!(parse(Some("match[spec_version]=2.0"), Allowed::SpecOnly).is_ok());
    }

    #[test]
    fn added_after_accepts_0_to_9_fraction_digits() {
        for q in [
            "2024-01-01T00:00:00Z",
            "2024-01-01T00:00:00.1Z",
            "2024-01-01T00:00:00.123Z",
            "2024-01-01T00:00:00.123456789Z",
        ] {
            assert!(
                parse(Some(&format!("added_after={q}")), Allowed::All).is_ok(),
                "{q}"
            );
        }
    }
}
