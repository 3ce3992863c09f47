//! Per-request limits around the TAXII router: how many requests one client may
//! have in flight (429 beyond), and how long a request may take (408 when the client
//! was still sending its body, 503 otherwise). Both answer with TAXII error objects.
//!
//! Settings come from `[server]` ([`ServerSettings`]) and are read at start.

pub(crate) mod body;

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Router;

use self::body::Watched;
use crate::listener::clients::{Clients, TooMany};

use crate::config::{ServerSettings, TaxiiVersion};
use crate::listener::body::{drain_in_background, hold_until_sent, DRAIN_MIN_BYTES};
use crate::listener::HeadBytes;
use crate::state::AppState;
use crate::taxii::access_log;
use crate::taxii::context::Facts;
use crate::taxii::error::TaxiiError;
use crate::taxii::media;

/// Wrap `router` (the TAXII router) in the per-request limits of `settings`.
pub fn apply(router: Router, settings: &ServerSettings, state: AppState) -> Router {
    let limits = Arc::new(RequestLimits {
        clients: Arc::new(Clients::new(settings.max_requests_per_client)),
        timeout: settings.request_timeout(),
        max_header_bytes: settings.max_header_bytes,
        access_log: settings.access_log,
        state,
    });
    router.layer(axum::middleware::from_fn_with_state(limits, limit))
}

struct RequestLimits {
    clients: Arc<Clients>,
    timeout: Duration,
    /// `[server] max_header_bytes`.
    max_header_bytes: usize,
    /// `[server] access_log`: log the requests answered here.
    access_log: bool,
    state: AppState,
}

impl RequestLimits {
    /// The access log line of a request these limits answered (the request context
    /// logs the others); no caller was worked out, so it is anonymous.
    fn log(&self, client: Option<IpAddr>, method: &Method, response: &Response, started: Instant) {
        if !self.access_log {
            return;
        }
        access_log::Line {
            client,
            user: access_log::ANONYMOUS,
            method: method.as_str(),
            endpoint: "limited",
            api_root: None,
            collection: None,
            status: response.status().as_u16(),
            objects: None,
            bytes: access_log::response_bytes(response),
            duration: started.elapsed(),
        }
        .write();
    }
}

async fn limit(
    State(limits): State<Arc<RequestLimits>>,
    mut request: Request,
    next: Next,
) -> Response {
    let started = Instant::now();
    let method = request.method().clone();
    if let Some(refused) = too_large_head(&request, limits.max_header_bytes) {
        limits.state.metrics.limited("header_bytes");
        let peer = request
            .extensions()
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0.ip());
        limits.log(peer, &method, &refused, started);
        // Read a body the client may be sending, so it can read the answer.
        drain_in_background(request.into_body(), DRAIN_MIN_BYTES);
        return refused;
    }
    // Worked out once here, and handed on to the TAXII router with the request.
    let facts = Facts::of(&limits.state, &mut request);
    let version = facts.version.unwrap_or(TaxiiVersion::V21);
    let client = facts.client;
    request.extensions_mut().insert(facts);
    let permit = match client.map(|ip| limits.clients.enter(ip)) {
        Some(Err(TooMany)) => {
            limits.state.metrics.limited("per_client");
            let refused = too_many(limits.clients.max)
                .in_version(version)
                .into_response();
            limits.log(client, &method, &refused, started);
            return refused;
        }
        Some(Ok(permit)) => permit,
        None => None,
    };

    let (parts, body) = request.into_parts();
    let (body, received) = Watched::wrap(body);
    let response = match tokio::time::timeout(
        limits.timeout,
        next.run(Request::from_parts(parts, body)),
    )
    .await
    {
        Ok(response) => response,
        Err(_) => {
            let timeout = limits.timeout.as_secs();
            let error = if received.load(Ordering::Acquire) {
                limits.state.metrics.limited("timeout");
                TaxiiError::new(StatusCode::SERVICE_UNAVAILABLE, "Service unavailable")
                    .describe(format!(
                        "the request was not answered within {timeout} s; retry later"
                    ))
                    .with_header(header::RETRY_AFTER, HeaderValue::from_static("5"))
            } else {
                limits.state.metrics.limited("body_timeout");
                TaxiiError::new(StatusCode::REQUEST_TIMEOUT, "Request timeout")
                    .describe(format!(
                        "the request body did not arrive within {timeout} s"
                    ))
                    .with_header(header::CONNECTION, HeaderValue::from_static("close"))
            };
            let response = error.in_version(version).into_response();
            limits.log(client, &method, &response, started);
            response
        }
    };
    match permit {
        // The client's request is in flight until its response body is sent.
        Some(permit) => hold_until_sent(response, permit),
        None => response,
    }
}

fn too_many(max: usize) -> TaxiiError {
    TaxiiError::new(StatusCode::TOO_MANY_REQUESTS, "Too many requests")
        .describe(format!(
            "at most {max} requests from one client may be in flight at once; retry shortly"
        ))
        .with_header(header::RETRY_AFTER, HeaderValue::from_static("1"))
}

/// A TAXII 431 error when the request's head (as the listener measured it,
/// [`HeadBytes`]) is over `max` bytes: heads up to twice that reach here, larger ones
/// the HTTP layer refuses with a bare 431. In the version the request's `Accept` asks
/// for; HTTP/1 connections are closed after it, as for a bare 431.
fn too_large_head(request: &Request, max: usize) -> Option<Response> {
    let HeadBytes(bytes) = *request.extensions().get::<HeadBytes>()?;
    if bytes <= max {
        return None;
    }
    let accept = request
        .headers()
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok());
    let version = media::negotiate(accept, &[TaxiiVersion::V21, TaxiiVersion::V20])
        .unwrap_or(TaxiiVersion::V21);
    let mut error = TaxiiError::new(
        StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
        "Request header fields too large",
    )
    .describe(format!(
        "the request line and headers may take at most {max} bytes"
    ))
    .in_version(version);
    if request.version() < axum::http::Version::HTTP_2 {
        error = error.with_header(header::CONNECTION, HeaderValue::from_static("close"));
    }
    Some(error.into_response())
}
