//! The access log: one line per TAXII request under the target [`TARGET`], so that
//! `TAXIWAY_LOG` can keep or drop it (`taxiway::access=off`). Its fields are the
//! request's facts after proxy trust, the caller's name (never a credential), the
//! resource, the answer and what it cost; JSON with `--log-json`.
//!
//! Handlers that know how many objects they answered with or accepted say so with
//! [`Objects::tag`]; the request context writes the line ([`Line::write`]) and counts
//! the request and its objects per configured collection.

use std::net::IpAddr;
use std::time::Duration;

use axum::body::HttpBody;
use axum::http::header;
use axum::response::Response;

/// The tracing target of access log lines.
pub const TARGET: &str = "taxiway::access";

/// The caller's name in the log when no credentials were verified.
pub const ANONYMOUS: &str = "anonymous";

/// How many objects a response carries or a request stored, in the response's
/// extensions for the access log and the per-collection metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Objects {
    /// Objects in a page (or bundle) answered.
    Served(u64),
    /// Objects of a POST stored (the status' `success_count`).
    Accepted(u64),
}

impl Objects {
    /// `response`, with this count in its extensions.
    pub fn tag(self, mut response: Response) -> Response {
        response.extensions_mut().insert(self);
        response
    }

    /// The metrics' `direction` label.
    pub fn direction(self) -> &'static str {
        match self {
            Objects::Served(_) => "served",
            Objects::Accepted(_) => "accepted",
        }
    }

    /// How many objects.
    pub fn count(self) -> u64 {
        match self {
            Objects::Served(n) | Objects::Accepted(n) => n,
        }
    }
}

/// The API root and collection id a request path names, as routed: `/{root}/…` and
/// `/{root}/collections/{id}/…`. Only for endpoints under an API root.
pub fn scope_of<'p>(endpoint: &str, path: &'p str) -> (Option<&'p str>, Option<&'p str>) {
    if matches!(endpoint, "discovery" | "unknown") {
        return (None, None);
    }
    let mut segments = path.trim_start_matches('/').split('/');
    let root = segments.next().filter(|s| !s.is_empty());
    let collection = match (segments.next(), segments.next()) {
        (Some("collections"), Some(id)) if !id.is_empty() => Some(id),
        _ => None,
    };
    (root, collection)
}

/// The bytes of a response's body, where known before it is sent.
pub fn response_bytes(response: &Response) -> Option<u64> {
    response
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .or_else(|| response.body().size_hint().exact())
}

/// One access log line.
#[derive(Debug, Clone)]
pub struct Line<'a> {
    /// The client after proxy trust.
    pub client: Option<IpAddr>,
    /// The verified caller's name, or [`ANONYMOUS`].
    pub user: &'a str,
    /// The HTTP method.
    pub method: &'a str,
    /// The resource's name, as counted in `taxiway_http_requests_total`.
    pub endpoint: &'a str,
    /// The API root named by the path.
    pub api_root: Option<&'a str>,
    /// The collection id named by the path.
    pub collection: Option<&'a str>,
    /// The status answered.
    pub status: u16,
    /// The objects served or accepted, where the handler counted them.
    pub objects: Option<Objects>,
    /// The response body's bytes, where known.
    pub bytes: Option<u64>,
    /// From the request's arrival to its response's headers.
    pub duration: Duration,
}

impl Line<'_> {
    /// Write the line at INFO under [`TARGET`].
    pub fn write(&self) {
        let served = match self.objects {
            Some(Objects::Served(n)) => Some(n),
            _ => None,
        };
        let accepted = match self.objects {
            Some(Objects::Accepted(n)) => Some(n),
            _ => None,
        };
        tracing::info!(
            target: TARGET,
            client = self.client.map(tracing::field::display),
            user = self.user,
            method = self.method,
            endpoint = self.endpoint,
            api_root = self.api_root,
            collection = self.collection,
            status = self.status,
            objects_served = served,
            objects_accepted = accepted,
            bytes = self.bytes,
            duration_ms = self.duration.as_secs_f64() * 1000.0,
            "request"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_scope_is_read_from_the_routed_path() {
        assert_eq!(
            scope_of("objects", "/feeds/collections/abc/objects/"),
            (Some("feeds"), Some("abc"))
        );
        assert_eq!(
            scope_of("collections", "/feeds/collections/"),
            (Some("feeds"), None)
        );
        assert_eq!(
            scope_of("status", "/feeds/status/x/"),
            (Some("feeds"), None)
        );
        assert_eq!(scope_of("discovery", "/taxii2/"), (None, None));
        assert_eq!(scope_of("unknown", "/a/collections/b/"), (None, None));
    }
}
