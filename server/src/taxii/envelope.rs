//! Envelopes: parsing what producers POST, and writing object pages without
//! re-serialising stored objects.
//!
//! A posted body is read once: the envelope's `objects` are borrowed from it as raw
//! JSON slices, and each object is parsed from its own slice (so the body is never
//! held as one big `Value`) and kept as one owned copy of its bytes. A page is
//! written as a list of chunks that are the stored objects' own buffers: nothing is
//! copied into one response buffer.

use std::borrow::Cow;

use axum::http::StatusCode;
use bytes::Bytes;
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::Value;

use super::error::TaxiiError;
use super::strict;
use crate::page_cache::envelope_head;
use crate::stix::timestamp::{format_taxii, parse_timestamp};
use crate::store::validate::is_stix_id;
use crate::store::{validate_object, AddObjects, Entry, NewObject, ObjectsPage, StatusDetail};

#[derive(Deserialize)]
struct IncomingEnvelope<'a> {
    #[serde(borrow, default)]
    objects: Option<Vec<&'a RawValue>>,
}

/// The `objects` of a posted envelope or bundle (`what` names it in the error), each
/// as its JSON text borrowed from `body`. Only a body that is not a JSON object with
/// an `objects` array (or none) is an error.
pub(crate) fn posted_objects<'a>(body: &'a [u8], what: &str) -> Result<Vec<&'a RawValue>, String> {
    let text = std::str::from_utf8(body).map_err(|e| format!("the body is not UTF-8: {e}"))?;
    let envelope: IncomingEnvelope<'_> = serde_json::from_str(text).map_err(|e| {
        format!("the body is not {what} (a JSON object with an `objects` array): {e}")
    })?;
    Ok(envelope.objects.unwrap_or_default())
}

/// A status failure for an object.
pub(crate) fn failure(id: String, version: String, message: String) -> StatusDetail {
    StatusDetail {
        id,
        version,
        message: Some(message),
    }
}

/// What can be told of a rejected object's identity without trusting it: a
/// well-formed STIX id, a valid timestamp (empty otherwise).
fn identity(id: Option<&str>, version: Option<&str>) -> (String, String) {
    let id = id.filter(|i| is_stix_id(i)).unwrap_or_default().to_string();
    let version = version
        .and_then(|v| parse_timestamp(v).ok())
        .map(format_taxii)
        .unwrap_or_default();
    (id, version)
}

/// The identity of an object too large to parse into a tree: its `id` and version
/// read by a scan that keeps nothing else.
fn identity_of_large(raw: &str) -> (String, String) {
    #[derive(Deserialize)]
    struct Head<'a> {
        #[serde(borrow, default)]
        id: Option<Cow<'a, str>>,
        #[serde(borrow, default)]
        modified: Option<Cow<'a, str>>,
        #[serde(borrow, default)]
        created: Option<Cow<'a, str>>,
    }
    match serde_json::from_str::<Head<'_>>(raw) {
        Ok(h) => identity(h.id.as_deref(), h.modified.or(h.created).as_deref()),
        Err(_) => (String::new(), String::new()),
    }
}

/// The failure of an object of `len` bytes over `max` (`how` qualifies the size).
pub(crate) fn too_large(raw: &str, len: usize, max: usize, how: &str) -> StatusDetail {
    let (id, version) = identity_of_large(raw);
    failure(
        id,
        version,
        format!("the object is {len} bytes{how}, more than the {max} bytes this server accepts per object"),
    )
}

/// Read one posted object: within `max_object_bytes`, valid JSON, no key repeated in
/// any of its JSON objects. Whatever is wrong is the object's status failure.
pub(crate) fn read_object(raw: &str, max_object_bytes: usize) -> Result<Value, StatusDetail> {
    if raw.len() > max_object_bytes {
        return Err(too_large(raw, raw.len(), max_object_bytes, ""));
    }
    let parsed = strict::parse(raw).map_err(|e| {
        failure(
            String::new(),
            String::new(),
            format!("unreadable object: {e}"),
        )
    })?;
    let Some(key) = parsed.duplicate else {
        return Ok(parsed.value);
    };
    let unambiguous = |field: &str| -> Option<&str> {
        if parsed.ambiguous.iter().any(|k| k == field) {
            return None;
        }
        parsed.value.get(field)?.as_str()
    };
    let (id, version) = identity(
        unambiguous("id"),
        unambiguous("modified").or_else(|| unambiguous("created")),
    );
    let shown: String = key.chars().take(80).collect();
    Err(failure(
        id,
        version,
        format!(
            "duplicate key {}: a key may appear only once in a JSON object (parsers disagree on which one counts)",
            serde_json::to_string(&shown).unwrap_or_default()
        ),
    ))
}

/// Parse a posted body with `parse` on a blocking thread: reading and validating a
/// 1,000-object envelope is milliseconds of CPU, which on an async worker would stall
/// every other connection it serves. The body is dropped there too, once parsed (each
/// object holds its own bytes). A parse error is the request's 400.
pub(crate) async fn parse_off_runtime<F>(body: Bytes, parse: F) -> Result<AddObjects, TaxiiError>
where
    F: FnOnce(&[u8]) -> Result<AddObjects, String> + Send + 'static,
{
    tokio::task::spawn_blocking(move || parse(&body))
        .await
        .map_err(|e| {
            tracing::error!(error = %e, "parsing a posted body failed");
            TaxiiError::new(StatusCode::INTERNAL_SERVER_ERROR, "Internal server error")
        })?
        .map_err(TaxiiError::bad_request)
}

/// Split a posted envelope (or STIX bundle: both carry `objects`) into validated
/// objects and per-object failures, with no limit on an object's size (`import`).
pub fn parse_envelope(
    body: &[u8],
    assumed_spec_version: Option<&str>,
) -> Result<AddObjects, String> {
    parse_envelope_within(body, assumed_spec_version, usize::MAX)
}

/// Split a posted envelope into validated objects and per-object failures: an object
/// over `max_object_bytes`, with a repeated key or invalid is a failure, the others
/// are stored. Only a body that is not a JSON object with an `objects` array (or none)
/// is an error for the whole request.
pub fn parse_envelope_within(
    body: &[u8],
    assumed_spec_version: Option<&str>,
    max_object_bytes: usize,
) -> Result<AddObjects, String> {
    let raws = posted_objects(body, "a TAXII envelope")?;
    let mut out = AddObjects::default();
    for raw in raws {
        match posted_object(raw.get(), assumed_spec_version, max_object_bytes) {
            Ok(object) => out.objects.push(object),
            Err(detail) => out.failures.push(detail),
        }
    }
    Ok(out)
}

/// One posted object (its JSON text `raw`, kept as the stored copy) read and
/// validated: the object to store, or its status failure when it is over
/// `max_object_bytes`, repeats a key or is not a valid STIX object.
pub(crate) fn posted_object<S: AsRef<str> + Into<String>>(
    raw: S,
    assumed_spec_version: Option<&str>,
    max_object_bytes: usize,
) -> Result<NewObject, StatusDetail> {
    let value = read_object(raw.as_ref(), max_object_bytes)?;
    match validate_object(value, assumed_spec_version) {
        Ok(object) => Ok(NewObject {
            object,
            raw: raw.into(),
        }),
        Err(e) => Err(failure(e.id, e.version, e.message)),
    }
}

/// A TAXII 2.1 envelope around a page of objects read as bytes: its head, then the
/// page's own buffer (moved, not copied) closed with `]}`.
pub fn objects_envelope(page: ObjectsPage, next: Option<&str>) -> Vec<Bytes> {
    if page.count == 0 {
        return vec![Bytes::from_static(br#"{"more":false}"#)];
    }
    let head = envelope_head(page.more, next);
    let mut objects = page.objects;
    objects.extend_from_slice(b"]}");
    vec![Bytes::from(head), Bytes::from(objects)]
}

/// Write a TAXII 2.1 envelope around stored objects' raw JSON into one buffer.
pub fn write_envelope(entries: &[Entry], more: bool, next: Option<&str>) -> Vec<u8> {
    let mut page = ObjectsPage::default();
    for e in entries {
        if page.count > 0 {
            page.objects.push(b',');
        }
        page.objects.extend_from_slice(e.raw.as_bytes());
        page.count += 1;
    }
    page.more = more;
    objects_envelope(page, next).concat()
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"{"type":"indicator","spec_version":"2.1","id":"indicator--8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f","created":"2024-01-01T00:00:00.000Z","modified":"2024-01-01T00:00:00.000Z","pattern":"[ipv4-addr:value = '198.51.100.1']","pattern_type":"stix","valid_from":"2024-01-01T00:00:00Z"}"#;

    #[test]
    fn raw_bytes_are_kept_exactly() {
        let body = format!(r#"{{ "objects": [ {GOOD} ,  {{"type": "indicator"}} ] }}"#);
        let parsed = parse_envelope(body.as_bytes(), None).expect("envelope");
        assert_eq!(parsed.objects.len(), 1);
        assert_eq!(parsed.objects[0].raw, GOOD);
        assert_eq!(parsed.failures.len(), 1);
        assert_eq!(parsed.failures[0].message.as_deref(), Some("missing `id`"));
    }

    #[test]
    fn repeated_keys_and_large_objects_fail_alone() {
        let id = "indicator--8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f";
        let twice = GOOD.replacen(
            r#""type":"indicator","#,
            r#""type":"indicator","id":"indicator--00000000-0000-4000-8000-000000000000","#,
            1,
        );
        let deep = GOOD.replacen(
            r#""pattern_type":"stix""#,
            r#""pattern_type":"stix","external_references":[{"source_name":"a","source_name":"b"}]"#,
            1,
        );
        let large = GOOD.replacen(
            r#""pattern_type":"stix""#,
            &format!(
                r#""pattern_type":"stix","description":"{}""#,
                "x".repeat(2000)
            ),
            1,
        );
        let body = format!(r#"{{"objects":[{twice},{deep},{large},{GOOD}]}}"#);
        let parsed = parse_envelope_within(body.as_bytes(), None, 1024).expect("envelope");
        assert_eq!(parsed.objects.len(), 1);
        assert_eq!(parsed.objects[0].raw, GOOD);
        let f = &parsed.failures;
        assert_eq!(f.len(), 3);
        let message = |i: usize| f[i].message.clone().unwrap_or_default();
        assert!(
            message(0).starts_with(r#"duplicate key "id""#),
            "{}",
            message(0)
        );
        assert_eq!(f[0].id, "", "which id is meant cannot be told");
        assert!(message(1).starts_with(r#"duplicate key "source_name""#));
        assert_eq!(f[1].id, id);
        assert_eq!(f[1].version, "2024-01-01T00:00:00.000000Z");
        assert!(
            message(2).contains("more than the 1024 bytes"),
            "{}",
            message(2)
        );
        assert_eq!(f[2].id, id, "named though never parsed into a tree");
        let unlimited = parse_envelope(body.as_bytes(), None).expect("envelope");
        assert_eq!(unlimited.objects.len(), 2, "import has no size limit");
    }

    #[test]
    fn envelope_level_errors() {
        for body in [
            &b"not json"[..],
            b"[1,2]",
            b"{\"objects\": 5}",
            b"\xff\xfe",
            b"{\"objects\": [1,",
        ] {
            assert!(parse_envelope(body, None).is_err(), "{body:?}");
        }
        assert!(parse_envelope(b"{}", None)
            .expect("empty")
            .objects
            .is_empty());
    }

    #[test]
    fn pages_are_valid_json_and_empty_pages_have_no_list() {
        let e = Entry {
            date_added: 1,
            id: "x".into(),
            version: 1,
            spec_version: "2.1".into(),
            raw: GOOD.into(),
        };
        let body = write_envelope(&[e.clone(), e], true, Some("abc\"d"));
        let v: serde_json::Value = serde_json::from_slice(&body).expect("json");
        assert_eq!(v["objects"].as_array().map(Vec::len), Some(2));
        assert_eq!(v["next"], "abc\"d");
        assert_eq!(v["more"], true);
        assert_eq!(
            write_envelope(&[], false, None),
            br#"{"more":false}"#.to_vec()
        );
    }
}
