//! The accept loop: connections are accepted, counted against the connection and
//! per-address caps, served on a slot (or wait briefly for one), and drained on
//! shutdown.

use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use taxiway_model::config::server::ServerSettings;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch, OwnedSemaphorePermit, Semaphore};

use crate::listener::clients::{client_network, ClientPermit, Clients};
use crate::listener::connection;
use crate::metrics::Metrics;
use crate::tls::Tls;

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
