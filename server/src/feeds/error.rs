//! Why a pull failed, and the kind it is counted under.

use std::path::PathBuf;

use crate::store::StoreError;

/// Why a pull failed. Messages never hold a credential nor a URL's query string.
#[derive(Debug, thiserror::Error)]
pub enum FeedError {
    /// A credentials, CA or client-certificate file could not be read or used.
    #[error("cannot use {what} {path}: {message}")]
    Credentials {
        /// What the file holds (`password_file`, `ca_file`, …).
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// Why.
        message: String,
    },
    /// The HTTP client could not be built (TLS settings).
    #[error("cannot set up the HTTP client: {0}")]
    Client(String),
    /// The upstream could not be reached (DNS, connection, TLS handshake, proxy).
    #[error("cannot reach the upstream: {0}")]
    Connect(String),
    /// The upstream did not answer in time.
    #[error("the upstream did not answer within the timeout")]
    Timeout,
    /// The upstream refused the credentials (401 or 403).
    #[error("the upstream refused the credentials (HTTP {0})")]
    Unauthorized(u16),
    /// The upstream answered an HTTP error.
    #[error("the upstream answered HTTP {0}")]
    Status(u16),
    /// A response body exceeded `max_response_bytes`.
    #[error("a response is larger than max_response_bytes ({0} bytes)")]
    TooLarge(usize),
    /// The upstream's answer is not what the protocol or format says.
    #[error("unexpected upstream response: {0}")]
    Protocol(String),
    /// The upstream has no readable collection with this id or title.
    #[error("the upstream has no readable collection {0:?}")]
    NoCollection(String),
    /// `into` names no writable collection in the configuration serving now.
    #[error("{0:?} is not a writable collection")]
    Target(String),
    /// The store failed.
    #[error("store: {0}")]
    Store(#[from] StoreError),
}

impl FeedError {
    /// The `kind` label of `taxiway_feed_errors_total`.
    pub fn kind(&self) -> &'static str {
        match self {
            FeedError::Credentials { .. } | FeedError::Client(_) => "config",
            FeedError::Connect(_) => "connect",
            FeedError::Timeout => "timeout",
            FeedError::Unauthorized(_) => "auth",
            FeedError::Status(_) => "http",
            FeedError::TooLarge(_) => "too_large",
            FeedError::Protocol(_) | FeedError::NoCollection(_) => "protocol",
            FeedError::Target(_) => "config",
            FeedError::Store(_) => "store",
        }
    }

    /// Whether trying the same request again soon may succeed.
    pub fn retryable(&self) -> bool {
        match self {
            FeedError::Connect(_) | FeedError::Timeout => true,
            FeedError::Status(code) => *code == 429 || *code >= 500,
            _ => false,
        }
    }
}

/// A reqwest error as a [`FeedError`], without the URL (it may carry a key).
pub(crate) fn from_http(e: reqwest::Error) -> FeedError {
    if e.is_timeout() {
        return FeedError::Timeout;
    }
    let e = e.without_url();
    let mut message = e.to_string();
    let mut source = std::error::Error::source(&e);
    while let Some(s) = source {
        message.push_str(": ");
        message.push_str(&s.to_string());
        source = s.source();
    }
    FeedError::Connect(message)
}
