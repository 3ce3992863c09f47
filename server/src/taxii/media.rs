//! Content negotiation: which TAXII version a request speaks.

use crate::config::TaxiiVersion;

/// TAXII 2.1 media type.
pub const TAXII_21: &str = "application/taxii+json;version=2.1";
/// TAXII 2.0 media type.
pub const TAXII_20: &str = "application/vnd.oasis.taxii+json; version=2.0";
/// STIX 2.0 media type (2.0 objects endpoints).
pub const STIX_20: &str = "application/vnd.oasis.stix+json; version=2.0";
/// STIX 2.1 media type (manifest entries).
pub const STIX_21: &str = "application/stix+json;version=2.1";

/// One media range of an `Accept` or `Content-Type` header.
#[derive(Debug, Clone, PartialEq)]
struct MediaRange {
    essence: String,
    version: Option<String>,
    q: f32,
}

fn parse_ranges(header: &str) -> Vec<MediaRange> {
    header
        .split(',')
        .filter_map(|part| {
            let mut pieces = part.split(';');
            let essence = pieces.next()?.trim().to_ascii_lowercase();
            if essence.is_empty() {
                return None;
            }
            let mut version = None;
            let mut q = 1.0;
            for param in pieces {
                let Some((k, v)) = param.split_once('=') else {
                    continue;
                };
                let v = v.trim().trim_matches('"');
                match k.trim().to_ascii_lowercase().as_str() {
                    "version" => version = Some(v.to_string()),
                    // NaN would break the sort by q below: treat it (and inf) as unparsable.
                    "q" => {
                        q = v
                            .parse()
                            .ok()
                            .filter(|q: &f32| q.is_finite())
                            .unwrap_or(0.0)
                    }
                    _ => {}
                }
            }
            Some(MediaRange {
                essence,
                version,
                q,
            })
        })
        .collect()
}

/// What one media range asks for: a specific version, "the default", or nothing we serve.
fn wants(range: &MediaRange) -> Option<Option<TaxiiVersion>> {
    let version = range.version.as_deref();
    match range.essence.as_str() {
        "application/taxii+json" | "application/stix+json" => match version {
            None | Some("2.1") => Some(Some(TaxiiVersion::V21)),
            Some(_) => None,
        },
        "application/vnd.oasis.taxii+json" | "application/vnd.oasis.stix+json" => match version {
            None | Some("2.0") => Some(Some(TaxiiVersion::V20)),
            Some(_) => None,
        },
        "*/*" | "application/*" | "application/json" => Some(None),
        _ => None,
    }
}

/// The `Accept` header names no version we serve (a 406).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NotAcceptable;

/// The version a response should speak, given `Accept` and the versions served.
/// No `Accept`, `*/*`, `application/json` and the like mean the default (2.1 when served).
/// `Err(NotAcceptable)` means 406.
pub fn negotiate(
    accept: Option<&str>,
    served: &[TaxiiVersion],
) -> Result<TaxiiVersion, NotAcceptable> {
    let default = if served.contains(&TaxiiVersion::V21) {
        TaxiiVersion::V21
    } else {
        TaxiiVersion::V20
    };
    let Some(accept) = accept.filter(|a| !a.trim().is_empty()) else {
        return Ok(default);
    };
    let mut ranges = parse_ranges(accept);
    // Stable sort: equal q keeps the client's order.
    ranges.sort_by(|a, b| b.q.partial_cmp(&a.q).unwrap_or(std::cmp::Ordering::Equal));
    ranges
        .iter()
        .filter(|r| r.q > 0.0)
        .filter_map(wants)
        .map(|w| w.unwrap_or(default))
        .find(|v| served.contains(v))
        .ok_or(NotAcceptable)
}

/// The version an add-objects body is in, from its `Content-Type`; `None` means 415.
pub fn posted_version(content_type: Option<&str>) -> Option<TaxiiVersion> {
    let range = parse_ranges(content_type?).into_iter().next()?;
    match (range.essence.as_str(), range.version.as_deref()) {
        ("application/taxii+json", None | Some("2.1")) => Some(TaxiiVersion::V21),
        ("application/vnd.oasis.stix+json", None | Some("2.0"))
        | ("application/vnd.oasis.taxii+json", None | Some("2.0")) => Some(TaxiiVersion::V20),
        _ => None,
    }
}

/// The TAXII media type of responses in `version`.
pub fn taxii_media_type(version: TaxiiVersion) -> &'static str {
    match version {
        TaxiiVersion::V21 => TAXII_21,
        TaxiiVersion::V20 => TAXII_20,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use TaxiiVersion::{V20, V21};

    const BOTH: &[TaxiiVersion] = &[V21, V20];

    #[test]
    fn what_real_consumers_send() {
        let cases: &[(Option<&str>, Result<TaxiiVersion, NotAcceptable>)] = &[
            (None, Ok(V21)),
            (Some(""), Ok(V21)),
            (Some("application/taxii+json;version=2.1"), Ok(V21)),
            (Some("application/taxii+json; version=2.1"), Ok(V21)),
            (Some("application/taxii+json"), Ok(V21)),
            (Some("*/*"), Ok(V21)),
            (Some("application/json"), Ok(V21)),
            (Some("application/json, text/plain, */*"), Ok(V21)),
            (Some("application/vnd.oasis.taxii+json"), Ok(V20)),
            (
                Some("application/vnd.oasis.taxii+json; version=2.0"),
                Ok(V20),
            ),
            (
                Some("application/vnd.oasis.stix+json; version=2.0"),
                Ok(V20),
            ),
            (
                Some("application/taxii+json;version=3.0"),
                Err(NotAcceptable),
            ),
            (Some("text/html"), Err(NotAcceptable)),
            (
                Some("application/taxii+json;version=2.1;q=0"),
                Err(NotAcceptable),
            ),
            (
                Some("text/html, application/taxii+json;version=2.1;q=0.5"),
                Ok(V21),
            ),
        ];
        for (accept, expected) in cases {
            assert_eq!(negotiate(*accept, BOTH), *expected, "{accept:?}");
        }
    }

    #[test]
    fn unserved_versions_are_not_acceptable() {
        assert_eq!(
            negotiate(
                Some("application/vnd.oasis.taxii+json; version=2.0"),
                &[V21]
            ),
            Err(NotAcceptable)
        );
        assert_eq!(negotiate(Some("*/*"), &[V20]), Ok(V20));
        assert_eq!(
            negotiate(Some("application/taxii+json;version=2.1, */*"), &[V20]),
            Ok(V20)
        );
    }

    /// Fuzzing regression (fuzz_media, corpus `regress-accept-q-nan`): with more than 20
    /// ranges and one `q=nan`, sorting by q panicked ("user-provided comparison function
    /// does not correctly implement a total order").
    #[test]
    fn nan_and_infinite_weights_are_not_acceptable_and_do_not_panic() {
        for bad in ["nan", "NaN", "inf", "-inf", "infinity"] {
            let mut ranges: Vec<String> = (0..30)
                .map(|i| format!("text/x{i};q=0.{}", i % 9 + 1))
                .collect();
            ranges[7] = format!("application/taxii+json;q={bad}");
            ranges.push("application/vnd.oasis.taxii+json;q=0.05".into());
            assert_eq!(negotiate(Some(&ranges.join(",")), BOTH), Ok(V20), "{bad}");
        }
        assert_eq!(
            negotiate(Some("application/taxii+json;q=NaN"), BOTH),
            Err(NotAcceptable)
        );
    }

    #[test]
    fn posted_content_types() {
        assert_eq!(
            posted_version(Some("application/taxii+json;version=2.1")),
            Some(V21)
        );
        assert_eq!(posted_version(Some("application/taxii+json")), Some(V21));
        assert_eq!(
            posted_version(Some("application/vnd.oasis.stix+json; version=2.0")),
            Some(V20)
        );
        assert_eq!(posted_version(Some("application/json")), None);
        assert_eq!(
            posted_version(Some("application/taxii+json;version=2.2")),
            None
        );
        assert_eq!(posted_version(None), None);
    }
}
