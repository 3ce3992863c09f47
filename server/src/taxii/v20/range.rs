//! `Range: items a-b` requests and `Content-Range: items a-b/N` answers: TAXII 2.0
//! paging. Both `items a-b` (as the TAXII 2.0 text writes it) and `items=a-b`
//! (RFC 9110, which taxii2-client sends first) are accepted.

use axum::http::{header, HeaderMap, HeaderValue, StatusCode};

use crate::taxii::error::TaxiiError;

/// A requested range of items: zero-based and inclusive; `last` is `None` for `items a-`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ItemRange {
    /// The first item asked for.
    pub first: u64,
    /// The last item asked for, if bounded.
    pub last: Option<u64>,
}

impl ItemRange {
    /// How many items to serve: what was asked for, at most `max`.
    pub fn len(&self, max: usize) -> usize {
        let asked = self.last.map_or(u64::MAX, |last| {
            last.saturating_sub(self.first).saturating_add(1)
        });
        usize::try_from(asked).unwrap_or(usize::MAX).min(max)
    }
}

/// The request's item range. `Ok(None)` when there is no `Range` header or it uses
/// another unit (ignored, as RFC 9110 §14.2 asks); a malformed `items` range is a 400.
pub fn parse(headers: &HeaderMap) -> Result<Option<ItemRange>, TaxiiError> {
    let Some(value) = headers.get(header::RANGE) else {
        return Ok(None);
    };
    let bad = || {
        TaxiiError::bad_request("Range must be `items <first>-<last>`, e.g. `Range: items 0-99`")
    };
    let value = value.to_str().map_err(|_| bad())?.trim();
    let split = value
        .find(|c: char| c == '=' || c.is_ascii_whitespace())
        .unwrap_or(value.len());
    let (unit, spec) = value.split_at(split);
    if !unit.eq_ignore_ascii_case("items") {
        return Ok(None);
    }
    let spec = spec.trim_start_matches(|c: char| c == '=' || c.is_ascii_whitespace());
    let (first, last) = spec.split_once('-').ok_or_else(bad)?;
    let number = |s: &str| {
        let s = s.trim();
        if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        s.parse::<u64>().ok()
    };
    let first = number(first).ok_or_else(bad)?;
    let last = match last.trim() {
        "" => None,
        l => Some(number(l).ok_or_else(bad)?),
    };
    if last.is_some_and(|l| l < first) {
        return Err(bad());
    }
    Ok(Some(ItemRange { first, last }))
}

/// `Content-Range` of a page of `n` items starting at `first` out of `total`. An empty
/// page still gets a numeric range (`items a-a/N`): clients loop without one.
pub fn content_range(first: u64, n: u64, total: u64) -> HeaderValue {
    let last = first.saturating_add(n.saturating_sub(1));
    HeaderValue::from_str(&format!("items {first}-{last}/{total}"))
        .unwrap_or_else(|_| HeaderValue::from_static("items */*"))
}

/// 416: the range starts at or after the last item.
pub fn not_satisfiable(total: u64) -> TaxiiError {
    let unsatisfied = HeaderValue::from_str(&format!("items */{total}"))
        .unwrap_or_else(|_| HeaderValue::from_static("items */*"));
    TaxiiError::new(StatusCode::RANGE_NOT_SATISFIABLE, "Range not satisfiable")
        .describe(format!(
            "the range starts after the last item; this request selects {total} items (0-{})",
            total.saturating_sub(1)
        ))
        .with_header(header::CONTENT_RANGE, unsatisfied)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn range(value: &str) -> Result<Option<ItemRange>, TaxiiError> {
        let mut h = HeaderMap::new();
        h.insert(header::RANGE, HeaderValue::from_str(value).expect("header"));
        parse(&h)
    }

    #[test]
    fn both_spellings_and_open_ranges() {
        let r = |first, last| Ok(Some(ItemRange { first, last }));
        assert_eq!(range("items 0-99"), r(0, Some(99)));
        assert_eq!(range("items=0-99"), r(0, Some(99)));
        assert_eq!(range("Items  10-10"), r(10, Some(10)));
        assert_eq!(range("items=5-"), r(5, None));
        assert_eq!(parse(&HeaderMap::new()), Ok(None));
        assert_eq!(range("bytes=0-99"), Ok(None), "other units are ignored");
    }

    #[test]
    fn malformed_item_ranges_are_400() {
        for v in [
            "items",
            "items=",
            "items 5-2",
            "items -5",
            "items a-b",
            "items 0-9,20-29",
            "items 0-99999999999999999999",
            "items +1-2",
        ] {
            let e = range(v).expect_err(v);
            assert_eq!(e.status, StatusCode::BAD_REQUEST, "{v}");
        }
    }

    #[test]
    fn lengths_are_capped_and_headers_numeric() {
        let r = ItemRange {
            first: 10,
            last: Some(19),
        };
        assert_eq!(r.len(1000), 10);
        assert_eq!(r.len(4), 4);
        let huge = ItemRange {
            first: 0,
            last: Some(u64::MAX),
        };
        assert_eq!(huge.len(1000), 1000);
        assert_eq!(
            ItemRange {
                first: 0,
                last: None
            }
            .len(1000),
            1000
        );
        assert_eq!(content_range(10, 5, 42), "items 10-14/42");
        assert_eq!(content_range(0, 0, 0), "items 0-0/0");
        let e = not_satisfiable(42);
        assert_eq!(e.status, StatusCode::RANGE_NOT_SATISFIABLE);
        assert!(e
            .headers
            .iter()
            .any(|(n, v)| *n == header::CONTENT_RANGE && v == "items */42"));
    }
}
