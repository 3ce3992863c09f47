//! The HTTP client of one feed: rustls (system roots or `ca_file`, an optional client
//! certificate), timeouts, proxies from `HTTPS_PROXY`/`HTTP_PROXY`/`NO_PROXY`,
//! credentials read from their files, retries with jittered backoff honouring
//! `Retry-After`, and response bodies read up to `max_response_bytes`.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http::header::{HeaderMap, HeaderName, HeaderValue, ACCEPT, AUTHORIZATION, RETRY_AFTER};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::RootCertStore;

use crate::config::Feed;
use crate::feeds::error::{from_http, FeedError};

/// Attempts of one request when the upstream is unreachable, slow or overloaded.
const ATTEMPTS: u32 = 4;
/// First backoff; doubled on each retry, with ±50% jitter.
const BACKOFF: Duration = Duration::from_millis(500);
/// The longest `Retry-After` honoured (a longer one fails the pull; the next run retries).
const MAX_RETRY_AFTER: Duration = Duration::from_secs(120);

/// How requests authenticate.
enum Auth {
    None,
    Basic {
        username: String,
        password: String,
    },
    Header {
        name: HeaderName,
        value: HeaderValue,
    },
}

/// A response read whole (within the limit).
pub struct Fetched {
    /// HTTP status.
    pub status: u16,
    /// Response headers.
    pub headers: HeaderMap,
    /// The body.
    pub body: Bytes,
}

impl Fetched {
    /// A header as text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// The client of one feed, built for one pull (so rotated credentials are read).
pub struct Upstream {
    client: reqwest::Client,
    auth: Auth,
    max_bytes: usize,
}

fn read_file(what: &'static str, path: &Path) -> Result<Vec<u8>, FeedError> {
    std::fs::read(path).map_err(|e| FeedError::Credentials {
        what,
        path: path.to_path_buf(),
        message: e.to_string(),
    })
}

fn secret(what: &'static str, path: &Path) -> Result<String, FeedError> {
    let bytes = read_file(what, path)?;
    let text = String::from_utf8(bytes).map_err(|_| FeedError::Credentials {
        what,
        path: path.to_path_buf(),
        message: "not UTF-8".into(),
    })?;
    Ok(text.trim_end_matches(['\r', '\n']).to_string())
}

fn invalid(what: &'static str, path: &Path, message: impl Into<String>) -> FeedError {
    FeedError::Credentials {
        what,
        path: path.to_path_buf(),
        message: message.into(),
    }
}

/// The roots upstream certificates must chain to: `ca_file`, else the system's
/// (else the bundled Mozilla roots, for images without a system store).
fn roots(feed: &Feed) -> Result<RootCertStore, FeedError> {
    let mut roots = RootCertStore::empty();
    if let Some(path) = &feed.ca_file {
        let pem = read_file("ca_file", path)?;
        for cert in CertificateDer::pem_slice_iter(&pem) {
            let cert = cert.map_err(|e| invalid("ca_file", path, format!("not PEM: {e}")))?;
            roots
                .add(cert)
                .map_err(|e| invalid("ca_file", path, e.to_string()))?;
        }
        if roots.is_empty() {
            return Err(invalid("ca_file", path, "holds no certificate"));
        }
        return Ok(roots);
    }
    let native = rustls_native_certs::load_native_certs();
    roots.add_parsable_certificates(native.certs);
    if roots.is_empty() {
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    }
    Ok(roots)
}

fn tls_config(feed: &Feed) -> Result<rustls::ClientConfig, FeedError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| FeedError::Client(e.to_string()))?
        .with_root_certificates(roots(feed)?);
    let mut config = match (&feed.client_cert_file, &feed.client_key_file) {
        (Some(cert), Some(key)) => {
            let pem = read_file("client_cert_file", cert)?;
            let chain = CertificateDer::pem_slice_iter(&pem)
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| invalid("client_cert_file", cert, format!("not PEM: {e}")))?;
            let key_pem = read_file("client_key_file", key)?;
            let private = PrivateKeyDer::from_pem_slice(&key_pem)
                .map_err(|_| invalid("client_key_file", key, "holds no PEM private key"))?;
            builder
                .with_client_auth_cert(chain, private)
                .map_err(|e| invalid("client_key_file", key, e.to_string()))?
        }
        _ => builder.with_no_client_auth(),
    };
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(config)
}

fn auth(feed: &Feed) -> Result<Auth, FeedError> {
    if let (Some(username), Some(path)) = (&feed.username, &feed.password_file) {
        return Ok(Auth::Basic {
            username: username.clone(),
            password: secret("password_file", path)?,
        });
    }
    if let Some(path) = &feed.api_key_file {
        let key = secret("api_key_file", path)?;
        let (name, value) = match &feed.api_key_header {
            Some(h) => (
                HeaderName::try_from(h.as_str())
                    .map_err(|e| FeedError::Client(format!("api_key_header: {e}")))?,
                key,
            ),
            None => (AUTHORIZATION, format!("Bearer {key}")),
        };
        let mut value = HeaderValue::try_from(value)
            .map_err(|_| invalid("api_key_file", path, "not a valid header value"))?;
        value.set_sensitive(true);
        return Ok(Auth::Header { name, value });
    }
    Ok(Auth::None)
}

impl Upstream {
    /// The client `feed` says: its TLS roots and client certificate, its timeout, its
    /// credentials (read now).
    pub fn new(feed: &Feed) -> Result<Upstream, FeedError> {
        let timeout = Duration::from_secs(feed.timeout_secs);
        let client = reqwest::Client::builder()
            .use_preconfigured_tls(tls_config(feed)?)
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(30)))
            .user_agent(concat!("taxiway/", env!("CARGO_PKG_VERSION")))
            .redirect(reqwest::redirect::Policy::limited(5))
            .build()
            .map_err(|e| FeedError::Client(e.without_url().to_string()))?;
        Ok(Upstream {
            client,
            auth: auth(feed)?,
            max_bytes: feed.max_response_bytes,
        })
    }

    /// GET `url` accepting `accept` (with `extra` headers), retrying what may pass
    /// on a second try. Any status is returned; the caller decides what it means.
    pub async fn get(
        &self,
        url: &str,
        accept: &str,
        extra: &[(HeaderName, String)],
    ) -> Result<Fetched, FeedError> {
        let mut attempt = 1;
        loop {
            let wait = match self.get_once(url, accept, extra).await {
                Ok(f) if (f.status == 429 || f.status >= 500) && attempt < ATTEMPTS => {
                    match retry_after(&f.headers) {
                        Some(after) if after > MAX_RETRY_AFTER => return Ok(f),
                        Some(after) => after,
                        None => backoff(attempt),
                    }
                }
                Ok(f) => return Ok(f),
                Err(e) if e.retryable() && attempt < ATTEMPTS => backoff(attempt),
                Err(e) => return Err(e),
            };
            tracing::debug!(target: "taxiway::feeds", attempt, wait_ms = wait.as_millis() as u64, "retrying");
            tokio::time::sleep(wait).await;
            attempt += 1;
        }
    }

    async fn get_once(
        &self,
        url: &str,
        accept: &str,
        extra: &[(HeaderName, String)],
    ) -> Result<Fetched, FeedError> {
        let mut request = self.client.get(url).header(ACCEPT, accept);
        for (name, value) in extra {
            request = request.header(name, value);
        }
        request = match &self.auth {
            Auth::None => request,
            Auth::Basic { username, password } => request.basic_auth(username, Some(password)),
            Auth::Header { name, value } => request.header(name, value.clone()),
        };
        let mut response = request.send().await.map_err(from_http)?;
        if response
            .content_length()
            .is_some_and(|n| n > self.max_bytes as u64)
        {
            return Err(FeedError::TooLarge(self.max_bytes));
        }
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let mut body = BytesMut::new();
        while let Some(chunk) = response.chunk().await.map_err(from_http)? {
            if body.len() + chunk.len() > self.max_bytes {
                return Err(FeedError::TooLarge(self.max_bytes));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(Fetched {
            status,
            headers,
            body: body.freeze(),
        })
    }
}

/// `Retry-After` as seconds or an HTTP date.
fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = chrono::DateTime::parse_from_rfc2822(value).ok()?;
    let wait = at.signed_duration_since(chrono::Utc::now());
    Some(wait.to_std().unwrap_or(Duration::ZERO))
}

/// The wait before attempt `attempt + 1`: doubling from [`BACKOFF`], ±50% jitter.
fn backoff(attempt: u32) -> Duration {
    let base = BACKOFF.saturating_mul(1 << (attempt - 1).min(10));
    base.mul_f64(0.5 + jitter())
}

/// A number in [0, 1) from the system's random source.
pub(crate) fn jitter() -> f64 {
    let bytes = *uuid::Uuid::new_v4().as_bytes();
    let n = u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
    f64::from(n) / (f64::from(u32::MAX) + 1.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_in_seconds_and_as_a_date() {
        let mut h = HeaderMap::new();
        h.insert(RETRY_AFTER, HeaderValue::from_static("7"));
        assert_eq!(retry_after(&h), Some(Duration::from_secs(7)));
        h.insert(
            RETRY_AFTER,
            HeaderValue::from_static("Wed, 21 Oct 2015 07:28:00 GMT"),
        );
        assert_eq!(retry_after(&h), Some(Duration::ZERO));
        h.insert(RETRY_AFTER, HeaderValue::from_static("soon"));
        assert_eq!(retry_after(&h), None);
    }

    #[test]
    fn backoff_doubles_with_jitter() {
        for attempt in 1..4 {
            let b = backoff(attempt);
            let base = BACKOFF * (1 << (attempt - 1));
            assert!(b >= base / 2 && b < base * 3 / 2, "{attempt}: {b:?}");
        }
    }
}
