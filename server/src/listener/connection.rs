//! One connection: the TLS handshake if any, then HTTP until the client, the idle
//! timeout or shutdown ends it.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{header, HeaderValue};
use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, watch, OwnedSemaphorePermit};
use tokio::time::Instant;
use tower::ServiceExt;

use super::body::hold_until_sent;
use super::settings::ServerSettings;
use super::{HeadBytes, Scheme};
use crate::metrics::Metrics;
use crate::tls::{CertificateNames, Tls};

/// What every connection of one listener shares.
pub(super) struct Shared {
    pub app: Router,
    pub tls: Option<Arc<Tls>>,
    pub builder: auto::Builder<TokioExecutor>,
    pub metrics: Arc<Metrics>,
    pub handshake_timeout: Duration,
    pub idle_timeout: Duration,
    /// Changes (or closes) when the listener shuts down.
    pub stopping: watch::Receiver<bool>,
}

/// The HTTP/1 + HTTP/2 server with the header, timeout and keep-alive limits.
pub(super) fn http_builder(settings: &ServerSettings) -> auto::Builder<TokioExecutor> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(settings.header_read_timeout())
        // The read buffer bounds the request line and headers: a head that does not
        // fit is answered a bare 431 and the connection closed. It holds twice
        // `max_header_bytes`, so that heads in between reach the application with
        // their size ([`HeadBytes`]), which answers them a TAXII 431 error.
        .max_buf_size(settings.header_buffer_bytes())
        .max_headers(settings.max_headers);
    builder
        .http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(settings.http2_keep_alive_interval())
        .keep_alive_timeout(settings.http2_keep_alive_timeout())
        .max_header_list_size(u32::try_from(settings.header_buffer_bytes()).unwrap_or(u32::MAX));
    builder
}

/// A connection's slot: counted as open while it lives.
pub(super) struct Slot {
    _permit: OwnedSemaphorePermit,
    _open: mpsc::Sender<()>,
    metrics: Arc<Metrics>,
}

impl Slot {
    pub fn new(
        permit: OwnedSemaphorePermit,
        open: mpsc::Sender<()>,
        metrics: Arc<Metrics>,
    ) -> Slot {
        metrics.connection_opened();
        Slot {
            _permit: permit,
            _open: open,
            metrics,
        }
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.metrics.connection_closed();
    }
}

/// Serve one accepted connection until it ends.
pub(super) async fn serve(stream: TcpStream, remote: SocketAddr, slot: Slot, shared: Arc<Shared>) {
    let _slot = slot;
    let Some(tls) = shared.tls.clone() else {
        return serve_http(stream, remote, None, Scheme("http"), &shared).await;
    };
    let mut stopping = shared.stopping.clone();
    let handshake = tokio::time::timeout(shared.handshake_timeout, tls.acceptor().accept(stream));
    let stream = tokio::select! {
        done = handshake => match done {
            Ok(Ok(stream)) => stream,
            Ok(Err(e)) => {
                tracing::debug!(%remote, error = %e, "TLS handshake failed");
                return;
            }
            Err(_) => {
                tracing::debug!(%remote, "TLS handshake timed out");
                return;
            }
        },
        _ = stopping.changed() => return,
    };
    let certificate = stream
        .get_ref()
        .1
        .peer_certificates()
        .and_then(|chain| chain.first())
        .map(|der| Arc::new(CertificateNames::from_der(der.as_ref())));
    serve_http(stream, remote, certificate, Scheme("https"), &shared).await;
}

/// Requests in flight on a connection and when the last one ended.
struct Activity {
    in_flight: AtomicUsize,
    last: Mutex<Instant>,
}

impl Activity {
    fn new() -> Arc<Activity> {
        Arc::new(Activity {
            in_flight: AtomicUsize::new(0),
            last: Mutex::new(Instant::now()),
        })
    }

    /// When the connection becomes idle for `timeout`, if nothing happens meanwhile.
    fn idle_deadline(&self, timeout: Duration) -> Instant {
        let last = self
            .last
            .lock()
            .map(|l| *l)
            .unwrap_or_else(|_| Instant::now());
        if self.in_flight.load(Ordering::Acquire) > 0 {
            Instant::now() + timeout
        } else {
            last + timeout
        }
    }

    fn is_idle_for(&self, timeout: Duration) -> bool {
        self.in_flight.load(Ordering::Acquire) == 0 && Instant::now() >= self.idle_deadline(timeout)
    }
}

/// One request in flight, until its response body is sent (or dropped).
struct Busy(Arc<Activity>);

impl Busy {
    fn start(activity: &Arc<Activity>) -> Busy {
        activity.in_flight.fetch_add(1, Ordering::AcqRel);
        Busy(activity.clone())
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        if let Ok(mut last) = self.0.last.lock() {
            *last = Instant::now();
        }
        self.0.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

/// The size of a request's head as counted against `max_header_bytes`: the request
/// line and each header with its separators (HTTP/2: the same for its header list).
fn head_bytes<B>(request: &hyper::Request<B>) -> usize {
    let target = request
        .uri()
        .path_and_query()
        .map_or(1, |p| p.as_str().len());
    let line = request.method().as_str().len() + target + 12;
    let headers: usize = request
        .headers()
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len() + 4)
        .sum();
    line + headers + 2
}

/// Serve HTTP on a connection; every request carries the peer address
/// (`ConnectInfo`), the client certificate's names and the scheme as extensions.
async fn serve_http<S>(
    stream: S,
    remote: SocketAddr,
    certificate: Option<Arc<CertificateNames>>,
    scheme: Scheme,
    shared: &Shared,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let activity = Activity::new();
    let app = shared.app.clone();
    let requests = activity.clone();
    let service = hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
        let busy = Busy::start(&requests);
        let head = HeadBytes(head_bytes(&request));
        // HTTP/2 carries the host in `:authority`, not in a Host header; URLs the
        // server emits are built from Host, so give HTTP/2 requests one.
        if !request.headers().contains_key(header::HOST) {
            let authority = request.uri().authority().map(|a| a.as_str().to_string());
            if let Some(host) = authority.and_then(|a| HeaderValue::from_str(&a).ok()) {
                request.headers_mut().insert(header::HOST, host);
            }
        }
        let extensions = request.extensions_mut();
        extensions.insert(head);
        extensions.insert(ConnectInfo(remote));
        extensions.insert(scheme);
        if let Some(names) = &certificate {
            extensions.insert(names.clone());
        }
        let app = app.clone();
        async move {
            let response = app.oneshot(request.map(Body::new)).await?;
            // Busy until the body is sent: a connection streaming a response is not idle.
            Ok::<_, std::convert::Infallible>(hold_until_sent(response, busy))
        }
    });
    let conn = shared
        .builder
        .serve_connection_with_upgrades(TokioIo::new(stream), service);
    tokio::pin!(conn);
    let mut stopping = shared.stopping.clone();
    let mut closing = false;
    loop {
        let idle_at = activity.idle_deadline(shared.idle_timeout);
        tokio::select! {
            ended = conn.as_mut() => {
                if let Err(e) = ended {
                    tracing::debug!(%remote, error = %e, "connection ended with an error");
                }
                return;
            }
            _ = stopping.changed(), if !closing => {
                // Finish the requests in flight, then close (HTTP/2: GOAWAY).
                conn.as_mut().graceful_shutdown();
                closing = true;
            }
            () = tokio::time::sleep_until(idle_at), if !closing => {
                if activity.is_idle_for(shared.idle_timeout) {
                    tracing::debug!(%remote, "closing an idle connection");
                    conn.as_mut().graceful_shutdown();
                    closing = true;
                }
            }
        }
    }
}
