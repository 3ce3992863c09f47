//! Proxy trust: what a request's headers may say about the client when the
//! connection comes from one of `service.trusted_proxies`, and only then.
//!
//! - [`client_address`]: the address lockouts and per-client limits count — the peer,
//!   or behind trusted proxies the nearest `X-Forwarded-For` entry that is not one.
//! - [`origin`]: where the client reached us — the absolute base URL every emitted
//!   URL starts with, and the path prefix a reverse proxy may put in front of ours.
//!   Precedence: the configured `external_url`; else, only from a trusted proxy,
//!   `X-Forwarded-Proto/Host/Prefix`; else the `Host` header and the listener's
//!   scheme.
//!
//! Forwarded headers from anyone else are ignored.

use std::net::IpAddr;

use axum::http::{header, HeaderMap, HeaderName};

use crate::config::ServiceConfig;

const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");

/// The client address lockouts and per-client limits count: the peer, or, when the
/// peer is one of `service.trusted_proxies`, the nearest `X-Forwarded-For` entry that
/// is not.
pub fn client_address(
    config: &ServiceConfig,
    headers: &HeaderMap,
    peer: Option<IpAddr>,
) -> Option<IpAddr> {
    let trusted = |ip: &IpAddr| config.is_trusted_proxy(ip);
    let peer = peer?;
    if !trusted(&peer) {
        return Some(peer);
    }
    // Right to left: entries were appended by each proxy in turn, so the ones on the
    // right are the trustworthy ones; stop at the first that is not ours (the client)
    // or not an address (everything left of it is whatever the client sent).
    let entries: Vec<&str> = headers
        .get_all(X_FORWARDED_FOR)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .collect();
    let mut nearest = None;
    for entry in entries.iter().rev() {
        let Ok(ip) = entry.trim().parse::<IpAddr>() else {
            break;
        };
        nearest = Some(ip);
        if !trusted(&ip) {
            break;
        }
    }
    Some(nearest.unwrap_or(peer))
}

/// The externally visible origin of a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    /// `scheme://host[:port][/prefix]`, no trailing `/`.
    pub base: String,
    /// The path prefix (`/taxii-feeds`), or empty.
    pub prefix: String,
}

impl Origin {
    /// The request path with the proxy's prefix removed (when present).
    pub fn local_path<'p>(&self, path: &'p str) -> &'p str {
        if self.prefix.is_empty() {
            return path;
        }
        match path.strip_prefix(self.prefix.as_str()) {
            Some("") => "/",
            Some(rest) if rest.starts_with('/') => rest,
            _ => path,
        }
    }
}

/// Work out the origin of a request.
pub fn origin(
    config: &ServiceConfig,
    headers: &HeaderMap,
    scheme: &str,
    peer: Option<IpAddr>,
) -> Origin {
    let service = &config.config.service;
    if let Some(url) = &service.external_url {
        let base = url.trim_end_matches('/').to_string();
        let after_scheme = base.split_once("://").map(|(_, rest)| rest).unwrap_or("");
        let prefix = after_scheme
            .find('/')
            .map(|i| after_scheme[i..].to_string())
            .unwrap_or_default();
        return Origin { base, prefix };
    }
    let trusted = peer.is_some_and(|ip| config.is_trusted_proxy(&ip));
    let first = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(',').next())
            .map(str::trim)
            .filter(|v| !v.is_empty())
    };
    let (mut scheme, mut host, mut prefix) = (
        scheme.to_string(),
        first(header::HOST.as_str()),
        String::new(),
    );
    if trusted {
        if let Some(p) = first("x-forwarded-proto").filter(|p| *p == "http" || *p == "https") {
            scheme = p.to_string();
        }
        if let Some(h) = first("x-forwarded-host") {
            host = Some(h);
        }
        if let Some(p) = first("x-forwarded-prefix").filter(|p| is_plausible_prefix(p)) {
            prefix = p.trim_end_matches('/').to_string();
        }
    }
    let host = host.filter(|h| is_plausible_host(h)).unwrap_or("localhost");
    Origin {
        base: format!("{scheme}://{host}{prefix}"),
        prefix,
    }
}

fn is_plausible_host(h: &str) -> bool {
    !h.is_empty()
        && h.len() <= 255
        && h.bytes().all(|b| {
            b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':' | b'[' | b']' | b'_')
        })
}

fn is_plausible_prefix(p: &str) -> bool {
    p.starts_with('/')
        && p.len() <= 200
        && !p.contains("..")
        && p.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'/' | b'-' | b'_' | b'.'))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn config(extra: &str) -> ServiceConfig {
        crate::config::parse(&format!(
            "[service]\ntitle = \"t\"\n{extra}\n[[api_roots]]\npath = \"feeds\"\ntitle = \"f\"\n"
        ))
        .expect("config")
    }

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_static(v));
        }
        h
    }

    const FORWARDED: &[(&str, &str)] = &[
        ("host", "10.0.0.7:8443"),
        ("x-forwarded-proto", "https"),
        ("x-forwarded-host", "taxii.example.com"),
        ("x-forwarded-prefix", "/intel/"),
    ];

    #[test]
    fn host_header_and_listener_scheme_by_default() {
        let o = origin(
            &config(""),
            &headers(&[("host", "127.0.0.1:30443")]),
            "https",
            None,
        );
        assert_eq!(o.base, "https://127.0.0.1:30443");
        assert_eq!(o.local_path("/taxii2/"), "/taxii2/");
    }

    #[test]
    fn forwarded_headers_only_from_trusted_proxies() {
        let peer = "10.1.2.3".parse().ok();
        let untrusted = origin(&config(""), &headers(FORWARDED), "http", peer);
        assert_eq!(untrusted.base, "http://10.0.0.7:8443");
        let trusted = origin(
            &config("trusted_proxies = [\"10.0.0.0/8\"]"),
            &headers(FORWARDED),
            "http",
            peer,
        );
        assert_eq!(trusted.base, "https://taxii.example.com/intel");
        assert_eq!(trusted.local_path("/intel/taxii2/"), "/taxii2/");
        assert_eq!(
            trusted.local_path("/taxii2/"),
            "/taxii2/",
            "a proxy that strips the prefix works too"
        );
        let other = origin(
            &config("trusted_proxies = [\"192.168.0.1\"]"),
            &headers(FORWARDED),
            "http",
            peer,
        );
        assert_eq!(other.base, "http://10.0.0.7:8443");
    }

    #[test]
    fn external_url_wins() {
        let o = origin(
            &config("external_url = \"https://feeds.example.org/taxii/\""),
            &headers(FORWARDED),
            "http",
            None,
        );
        assert_eq!(o.base, "https://feeds.example.org/taxii");
        assert_eq!(o.prefix, "/taxii");
        assert_eq!(o.local_path("/taxii/taxii2"), "/taxii2");
    }

    #[test]
    fn hostile_forwarded_values_are_ignored() {
        let h = headers(&[
            ("host", "a.example"),
            ("x-forwarded-host", "evil.example/<script>"),
            ("x-forwarded-prefix", "/../../x"),
        ]);
        let o = origin(
            &config("trusted_proxies = [\"127.0.0.1\"]"),
            &h,
            "http",
            "127.0.0.1".parse().ok(),
        );
        assert_eq!(o.base, "http://localhost");
    }
}
