//! The TAXII listener: a hand-written accept loop over hyper-util's HTTP/1+HTTP/2
//! server, so TLS and plain connections take one path: accept, (handshake,) note the
//! peer and its client certificate, serve the router.
//!
//! Resources are bounded by `[server]` ([`ServerSettings`]): at most
//! `max_connections` connections are served at once (more wait `connection_wait_ms`
//! for a slot, then are closed and counted), one client address holds at most
//! `max_connections_per_address` of them (more are closed at once), header size, header count and header
//! read time are capped, idle connections are closed, HTTP/2 connections are pinged.
//! On shutdown the loop stops accepting, asks every connection to finish what it is
//! doing, and waits for them at most `drain_timeout_secs`.

pub mod body;
pub(crate) mod clients;
mod connection;
pub use taxiway_model::config::server as settings;

use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch, OwnedSemaphorePermit, Semaphore};

use self::clients::{client_network, ClientPermit, Clients};
pub use self::settings::ServerSettings;
use crate::metrics::Metrics;
use crate::tls::Tls;

/// The scheme the client used (TLS or plain): the listener puts it in every request's
/// extensions, next to the peer address (`ConnectInfo`) and the names in a verified
/// client certificate (`Arc<CertificateNames>`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Scheme(pub &'static str);

/// The size of the request's head (request line and headers) as counted against
/// `[server] max_header_bytes`, measured as it arrived: the listener puts it in every
/// request's extensions. Heads up to twice the limit reach the application, which
/// answers those over it in its own protocol ([`crate::limits`]: a TAXII 431).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeadBytes(pub usize);

/// Peers the per-address connection cap does not count (proxies in front of the
/// server, through which many clients arrive).
pub type Exempt = Arc<dyn Fn(&IpAddr) -> bool + Send + Sync>;

/// Accept connections on `listener` and serve `app` on each (over TLS when `tls` is
/// given) within `settings`, until `shutdown` resolves; then stop accepting, let
/// in-flight requests finish and close idle connections, waiting at most
/// `settings.drain_timeout_secs`. Every peer counts against
/// `max_connections_per_address` (see [`run_exempting`]).
pub async fn run(
    listener: TcpListener,
    app: Router,
    tls: Option<Arc<Tls>>,
    settings: &ServerSettings,
    metrics: Arc<Metrics>,
    shutdown: impl Future<Output = ()>,
) {
    let nobody: Exempt = Arc::new(|_: &IpAddr| false);
    run_exempting(listener, app, tls, settings, metrics, nobody, shutdown).await;
}

/// [`run`], with the peers for which `exempt` holds not counted against
/// `max_connections_per_address`.
pub async fn run_exempting(
    listener: TcpListener,
    app: Router,
    tls: Option<Arc<Tls>>,
    settings: &ServerSettings,
    metrics: Arc<Metrics>,
    exempt: Exempt,
    shutdown: impl Future<Output = ()>,
) {
    let (stop, stopping) = watch::channel(false);
    let shared = Arc::new(connection::Shared {
        app,
        tls,
        builder: connection::http_builder(settings),
        metrics: metrics.clone(),
        handshake_timeout: settings.tls_handshake_timeout(),
        idle_timeout: settings.idle_timeout(),
        stopping,
    });
    let max = settings.max_connections.max(1);
    let slots = Arc::new(Semaphore::new(max));
    // Connections allowed to wait for a slot; beyond these, excess ones are closed at once.
    let queue = Arc::new(Semaphore::new(max));
    // Connections (served or waiting) per client address.
    let per_address = Arc::new(Clients::new(settings.max_connections_per_address));
    // Every connection task holds a sender; when all are dropped, every connection is done.
    let (open, mut all_closed) = mpsc::channel::<()>(1);
    tokio::pin!(shutdown);
    loop {
        let (stream, remote) = tokio::select! {
            accepted = accept(&listener) => accepted,
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let address = match exempt(&remote.ip()) {
            true => None,
            false => match per_address.enter(client_network(remote.ip())) {
                Ok(permit) => permit,
                Err(_) => {
                    metrics.connection_refused();
                    tracing::debug!(%remote, "too many connections from one address; closing one unserved");
                    drop(stream);
                    continue;
                }
            },
        };
        let task = Accepted {
            stream,
            remote,
            shared: shared.clone(),
            open: open.clone(),
            _address: address,
        };
        if let Ok(slot) = slots.clone().try_acquire_owned() {
            tokio::spawn(task.serve(slot));
        } else if let Ok(queued) = queue.clone().try_acquire_owned() {
            tokio::spawn(task.wait_for_slot(slots.clone(), queued, settings.connection_wait()));
        } else {
            task.refuse();
        }
    }
    drop(listener);
    let _ = stop.send(true);
    drop(open);
    let drain = settings.drain_timeout();
    tokio::select! {
        _ = all_closed.recv() => {}
        () = tokio::time::sleep(drain) => {
            tracing::warn!("connections still open after {}s; closing them", drain.as_secs());
        }
    }
}

/// The next connection; errors (out of file descriptors and the like) are logged and
/// retried after a pause instead of spinning.
async fn accept(listener: &TcpListener) -> (TcpStream, SocketAddr) {
    loop {
        match listener.accept().await {
            Ok(accepted) => return accepted,
            Err(e) => {
                tracing::warn!(error = %e, "cannot accept a connection");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

/// File descriptors the limits can use: served and waiting connections, plus room for
/// the store, the watchers and the admin listener.
pub fn descriptors_needed(settings: &ServerSettings) -> u64 {
    2 * settings.max_connections as u64 + 200
}

/// The process's soft limit on open files (Linux `/proc/self/limits`), if known.
pub fn open_files_limit() -> Option<u64> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    parse_open_files_limit(&limits)
}

fn parse_open_files_limit(limits: &str) -> Option<u64> {
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    let soft = line
        .trim_start_matches("Max open files")
        .split_whitespace()
        .next()?;
    match soft {
        "unlimited" => Some(u64::MAX),
        n => n.parse().ok(),
    }
}

/// A connection accepted but not yet given a slot.
struct Accepted {
    stream: TcpStream,
    remote: SocketAddr,
    shared: Arc<connection::Shared>,
    open: mpsc::Sender<()>,
    /// The connection's place in its address's count, held until it closes.
    _address: Option<ClientPermit>,
}

impl Accepted {
    async fn serve(self, slot: OwnedSemaphorePermit) {
        let Accepted {
            stream,
            remote,
            shared,
            open,
            _address: address,
        } = self;
        let slot = connection::Slot::new(slot, open, shared.metrics.clone());
        connection::serve(stream, remote, slot, shared).await;
        drop(address);
    }

    /// All slots are taken: wait briefly for one, else close the connection.
    async fn wait_for_slot(
        self,
        slots: Arc<Semaphore>,
        queued: OwnedSemaphorePermit,
        wait: Duration,
    ) {
        let mut stopping = self.shared.stopping.clone();
        let slot = tokio::select! {
            slot = tokio::time::timeout(wait, slots.acquire_owned()) => slot.ok().and_then(Result::ok),
            _ = stopping.changed() => None,
        };
        drop(queued);
        match slot {
            Some(slot) => self.serve(slot).await,
            None => self.refuse(),
        }
    }

    fn refuse(self) {
        self.shared.metrics.connection_refused();
        tracing::debug!(remote = %self.remote, "too many connections; closing one unserved");
        drop(self.stream);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_soft_open_files_limit_is_read() {
        let limits = "Limit                     Soft Limit           Hard Limit           Units\n\
                      Max cpu time              unlimited            unlimited            seconds\n\
                      Max open files            1024                 1048576              files\n";
        assert_eq!(parse_open_files_limit(limits), Some(1024));
        assert_eq!(
            parse_open_files_limit(
                "Max open files            unlimited            unlimited            files"
            ),
            Some(u64::MAX)
        );
        assert_eq!(parse_open_files_limit("nothing"), None);
        assert_eq!(descriptors_needed(&ServerSettings::default()), 2200);
    }
}
