//! The readiness probe's own connection to PostgreSQL, outside the pool.
//!
//! Readiness must not depend on the pool: when every pooled connection is busy (slow
//! queries, a burst of requests) and the database vanishes without closing them (host
//! down, packets dropped), a pool-based check cannot tell "busy" from "gone" until the
//! busy connections break, about half a minute later. The probe keeps one connection of
//! its own — made with the same URL and TLS settings as the pool's, re-read from the
//! Secret or environment on every reconnect — and answers from a `SELECT 1` on it,
//! bounded by [`ANSWER_TIMEOUT`]. A connection that fails or does not answer in time is
//! dropped and made again at the next probe, so `/readyz` turns 503 within a few
//! seconds of the database vanishing and back to 200 as soon as it answers again.
//!
//! Each replica therefore holds one connection more than its pool size.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Mutex;
use tokio::task::JoinHandle;
use tokio_postgres::tls::{MakeTlsConnect, TlsConnect};
use tokio_postgres::Socket;

use super::connect;
use crate::config::{PostgresSettings, PostgresTls};
use crate::store::StoreError;

/// How long the probe waits for the database to answer `SELECT 1` (and for a probe to
/// finish at all): below the 2 s the kubelet waits for `/readyz` in the pods the
/// operator builds, so a vanished database gives a clear 503, not a probe timeout.
pub const ANSWER_TIMEOUT: Duration = Duration::from_millis(1500);

/// The `application_name` of the probe's connection.
pub const APPLICATION_NAME: &str = "taxiway-server-readiness";

/// The probe's connection and the task driving it (aborted with it, so a connection to
/// a vanished peer does not linger until the kernel gives up on it).
struct Connection {
    client: tokio_postgres::Client,
    task: JoinHandle<()>,
}

impl Drop for Connection {
    fn drop(&mut self) {
        self.task.abort();
    }
}

type Connecting = Pin<Box<dyn Future<Output = Result<Connection, tokio_postgres::Error>> + Send>>;

/// Makes a new probe connection.
type Connect = Arc<dyn Fn() -> Connecting + Send + Sync>;

#[derive(Default)]
struct State {
    connection: Option<Connection>,
    closed: bool,
}

/// A dedicated connection answering whether the database is reachable right now.
pub(super) struct Probe {
    connect: Connect,
    /// Bounds making a connection (TCP, TLS, startup and the session settings).
    connect_timeout: Duration,
    state: Arc<Mutex<State>>,
}

impl Probe {
    /// A probe connecting as the pool does: `at_start` is the configuration read at start
    /// (used again when the Secret or environment cannot be read on reconnect).
    pub(super) fn new(
        at_start: tokio_postgres::Config,
        settings: &PostgresSettings,
    ) -> Result<Probe, StoreError> {
        let connect = match settings.tls {
            PostgresTls::Disable => connector(at_start, settings, tokio_postgres::NoTls),
            PostgresTls::Require | PostgresTls::VerifyFull => connector(
                at_start,
                settings,
                tokio_postgres_rustls::MakeRustlsConnect::new(connect::tls_config(settings)?),
            ),
        };
        Ok(Probe {
            connect,
            connect_timeout: Duration::from_secs(settings.connect_timeout_secs.max(1)),
            state: Arc::new(Mutex::new(State::default())),
        })
    }

    /// Whether the database answers `SELECT 1` on the probe's connection within
    /// [`ANSWER_TIMEOUT`] (connecting first when there is no live connection).
    ///
    /// The work runs on a task of its own: a caller giving up (the kubelet closing the
    /// request) does not cancel a reconnect half-way, so the next probe finds it made.
    pub(super) async fn reachable(&self) -> bool {
        let state = self.state.clone();
        let connect = self.connect.clone();
        let connect_timeout = self.connect_timeout;
        let check = tokio::spawn(async move {
            let mut state = state.lock().await;
            if state.closed {
                return false;
            }
            if state
                .connection
                .as_ref()
                .is_none_or(|c| c.client.is_closed())
            {
                state.connection = None;
                match tokio::time::timeout(connect_timeout, connect()).await {
                    Ok(Ok(made)) => state.connection = Some(made),
                    Ok(Err(e)) => {
                        tracing::debug!(error = %e, "readiness probe: cannot connect to the database");
                        return false;
                    }
                    Err(_) => {
                        tracing::debug!("readiness probe: connecting to the database timed out");
                        return false;
                    }
                }
            }
            let Some(connection) = state.connection.as_ref() else {
                return false;
            };
            let answered =
                tokio::time::timeout(ANSWER_TIMEOUT, connection.client.simple_query("SELECT 1"))
                    .await;
            match answered {
                Ok(Ok(_)) => true,
                Ok(Err(e)) => {
                    tracing::debug!(error = %e, "readiness probe: SELECT 1 failed");
                    state.connection = None;
                    false
                }
                Err(_) => {
                    tracing::debug!("readiness probe: the database did not answer in time");
                    state.connection = None;
                    false
                }
            }
        });
        matches!(
            tokio::time::timeout(ANSWER_TIMEOUT, check).await,
            Ok(Ok(true))
        )
    }

    /// Drop the connection and answer "unreachable" from now on (the store is closing).
    pub(super) async fn close(&self) {
        let mut state = self.state.lock().await;
        state.closed = true;
        state.connection = None;
    }
}

/// A [`Connect`] over `tls`: with the settings as they are now in the Secret or
/// environment (as the pool's connections are made), else those read at start.
fn connector<T>(at_start: tokio_postgres::Config, settings: &PostgresSettings, tls: T) -> Connect
where
    T: MakeTlsConnect<Socket> + Clone + Sync + Send + 'static,
    T::Stream: Sync + Send,
    T::TlsConnect: Sync + Send,
    <T::TlsConnect as TlsConnect<Socket>>::Future: Send,
{
    let settings = settings.clone();
    let reread = settings.secret_dir.is_some() || settings.url_env.is_some();
    Arc::new(move || {
        let mut config = if reread {
            connect::pg_config(&settings).unwrap_or_else(|e| {
                tracing::warn!(error = %e, "cannot read the database settings again; using those read at start");
                at_start.clone()
            })
        } else {
            at_start.clone()
        };
        // Told apart from the pool's connections in `pg_stat_activity`.
        config.application_name(APPLICATION_NAME);
        let tls = tls.clone();
        Box::pin(async move {
            let (client, connection) = config.connect(tls).await?;
            let task = tokio::spawn(async move {
                if let Err(e) = connection.await {
                    tracing::debug!(error = %e, "readiness probe connection closed with an error");
                }
            });
            let made = Connection { client, task };
            made.client.batch_execute(connect::SESSION_SETTINGS).await?;
            Ok(made)
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> PostgresSettings {
        PostgresSettings {
            secret_dir: None,
            url_env: None,
            pool_size: 1,
            tls: PostgresTls::Disable,
            ca_file: None,
            connect_timeout_secs: 1,
        }
    }

    /// Nothing listens: unreachable, answered within the probe's bound.
    #[tokio::test]
    async fn a_database_that_refuses_connections_is_unreachable_at_once() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        drop(listener);
        let config: tokio_postgres::Config = format!("postgres://u@127.0.0.1:{port}/db")
            .parse()
            .expect("URL");
        let probe = Probe::new(config, &settings()).expect("probe");
        let started = std::time::Instant::now();
        assert!(!probe.reachable().await);
        assert!(started.elapsed() <= ANSWER_TIMEOUT + Duration::from_millis(500));
    }

    /// A peer that accepts and never answers: unreachable within the probe's bound.
    #[tokio::test]
    async fn a_silent_peer_is_unreachable_within_the_bound() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let held = tokio::spawn(async move {
            let mut sockets = Vec::new();
            while let Ok((socket, _)) = listener.accept().await {
                sockets.push(socket);
            }
        });
        let config: tokio_postgres::Config = format!("postgres://u@127.0.0.1:{port}/db")
            .parse()
            .expect("URL");
        let probe = Probe::new(config, &settings()).expect("probe");
        let started = std::time::Instant::now();
        assert!(!probe.reachable().await);
        assert!(started.elapsed() <= ANSWER_TIMEOUT + Duration::from_millis(500));
        probe.close().await;
        assert!(!probe.reachable().await);
        held.abort();
    }
}
