//! Stateless paging cursors (`next`).
//!
//! A cursor carries everything needed to continue: the position (the last
//! `date_added` served — unique per collection), the filters it was issued for, and
//! the scope (endpoint, collection, object, caller). It lives in no server's memory,
//! so it survives restarts and works on any replica. Nothing in it is trusted:
//! authorization is re-checked on every page and a cursor presented in another
//! scope is refused.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::{Deserialize, Serialize};

use super::params::{Filters, Params};
use crate::store::Micros;

const VERSION: u8 = 1;

/// A decoded `next` value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cursor {
    #[serde(rename = "v")]
    version: u8,
    /// Endpoint, collection, object and caller the cursor was issued for.
    #[serde(rename = "s")]
    pub scope: String,
    /// The last `date_added` served.
    #[serde(rename = "p")]
    pub position: Micros,
    /// The filters of the request that started the paging.
    #[serde(rename = "f")]
    pub filters: Filters,
}

impl Cursor {
    /// A cursor continuing after `position`.
    pub fn new(scope: String, position: Micros, filters: Filters) -> Cursor {
        Cursor {
            version: VERSION,
            scope,
            position,
            filters,
        }
    }

    /// The opaque `next` string.
    pub fn encode(&self) -> String {
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(self).unwrap_or_default())
    }

    /// Decode a `next` string.
    pub fn decode(next: &str) -> Result<Cursor, String> {
        let bytes = URL_SAFE_NO_PAD
            .decode(next.trim_end_matches('='))
            .map_err(|_| "next is not a cursor this server issued".to_string())?;
        let cursor: Cursor = serde_json::from_slice(&bytes)
            .map_err(|_| "next is not a cursor this server issued".to_string())?;
        if cursor.version != VERSION {
            return Err("next was issued by an incompatible server version; start over".into());
        }
        Ok(cursor)
    }
}

/// Where a listing starts and which filters apply, given the request's `next` (if any).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resume {
    /// The effective filters.
    pub filters: Filters,
    /// Entries strictly after this `date_added`.
    pub after: Option<Micros>,
}

/// Resolve a request's parameters against its cursor. A `next` alone continues with
/// the cursor's filters; the same filters repeated are fine; different ones are a 400.
pub fn resume(params: &Params, scope: &str) -> Result<Resume, String> {
    let Some(next) = &params.next else {
        return Ok(Resume {
            after: params.filters.added_after,
            filters: params.filters.clone(),
        });
    };
    let cursor = Cursor::decode(next)?;
    if cursor.scope != scope {
        return Err("next belongs to another collection, endpoint or user".into());
    }
    if !params.filters.is_empty() && params.filters != cursor.filters {
        return Err(
            "next was issued for different filters; repeat the original filters or none".into(),
        );
    }
    let after = cursor
        .position
        .max(cursor.filters.added_after.unwrap_or(i64::MIN));
    Ok(Resume {
        filters: cursor.filters,
        after: Some(after),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filters() -> Filters {
        Filters {
            types: vec!["indicator".into()],
            ..Default::default()
        }
    }

    #[test]
    fn round_trip_is_opaque_and_url_safe() {
        let c = Cursor::new("objects|c1|".into(), 1_700_000_000_000_001, filters());
        let s = c.encode();
        assert!(s
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
        assert_eq!(Cursor::decode(&s), Ok(c));
    }

    #[test]
    fn next_alone_continues_with_the_cursor_filters() {
        let next = Cursor::new("s".into(), 42, filters()).encode();
        let p = Params {
            next: Some(next.clone()),
            ..Default::default()
        };
        assert_eq!(
            resume(&p, "s"),
            Ok(Resume {
                filters: filters(),
                after: Some(42)
            })
        );
        let repeated = Params {
            next: Some(next.clone()),
            filters: filters(),
            limit: Some(5),
            ignored: vec!["x_vendor_field".into()],
        };
        assert!(
            resume(&repeated, "s").is_ok(),
            "same filters and a new limit are fine"
        );
        let other = Params {
            next: Some(next.clone()),
            filters: Filters {
                types: vec!["malware".into()],
                ..Default::default()
            },
            limit: None,
            ignored: Vec::new(),
        };
        assert!(resume(&other, "s").is_err());
        assert!(resume(&p, "another-scope").is_err());
    }

    #[test]
    fn garbage_is_refused() {
        for s in [
            "",
            "abc",
            "!!!",
            "eyJ2IjoyfQ",
            &URL_SAFE_NO_PAD.encode(b"{\"v\":2,\"s\":\"\",\"p\":1,\"f\":{}}"),
        ] {
            assert!(Cursor::decode(s).is_err(), "{s}");
        }
    }
}
