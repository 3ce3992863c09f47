//! `[server]` in `taxiway.toml`: connection and request limits of the TAXII listener.
//!
//! Read once at start: a change takes effect on the next restart (a reload that
//! changes only these logs so and keeps serving with the values it started with).

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// hyper refuses HTTP/1 read buffers smaller than this.
pub const MIN_HEADER_BYTES: usize = 8192;
/// Largest header block the listener can be told to accept.
pub const MAX_HEADER_BYTES: usize = 1024 * 1024;

/// Limits of the TAXII listener.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerSettings {
    /// Connections served at once; further ones wait `connection_wait_ms` for a free
    /// slot and are then closed.
    pub max_connections: usize,
    /// How long (milliseconds) a connection over `max_connections` waits for a slot.
    pub connection_wait_ms: u64,
    /// Connections one client address (an IPv6 address: its /64) may hold at once,
    /// served or waiting; further ones are closed at once, so one host cannot take
    /// every slot. Peers in `service.trusted_proxies` are not counted. 0 turns the
    /// limit off.
    pub max_connections_per_address: usize,
    /// Requests one client address may have in flight at once; more get 429.
    /// The address is the peer's, or the client's from `X-Forwarded-For` when the peer
    /// is one of `service.trusted_proxies`. 0 turns the limit off.
    pub max_requests_per_client: usize,
    /// How long (seconds) a request may take from its headers to its response headers:
    /// 408 when the client had not finished sending the body, 503 otherwise.
    pub request_timeout_secs: u64,
    /// How long (seconds) an HTTP/1 client has to send a request's headers (slow
    /// clients are cut off).
    pub header_read_timeout_secs: u64,
    /// How long (seconds) a client has to finish the TLS handshake.
    pub tls_handshake_timeout_secs: u64,
    /// Connections with no request in flight for this long (seconds) are closed.
    pub idle_timeout_secs: u64,
    /// HTTP/2 keep-alive: ping a connection this often (seconds); 0 = off.
    pub http2_keep_alive_interval_secs: u64,
    /// HTTP/2 keep-alive: close a connection whose ping is not answered in this many seconds.
    pub http2_keep_alive_timeout_secs: u64,
    /// Largest request header block (bytes): HTTP/1 request line and headers, HTTP/2
    /// header list. Larger gets a TAXII 431 error (HTTP/1: and the connection closed);
    /// past twice this, a bare 431 (HTTP/1) or a stream reset (HTTP/2) from the
    /// protocol layer, which holds no more than that.
    pub max_header_bytes: usize,
    /// Most headers in an HTTP/1 request; more gets 431.
    pub max_headers: usize,
    /// How long (seconds) in-flight requests get to finish after SIGTERM.
    pub drain_timeout_secs: u64,
    /// After SIGTERM, keep accepting and serving for this long (seconds) while
    /// reporting not-ready, before the listener closes: the time a load balancer or
    /// Kubernetes' endpoints need to stop sending new connections here, so a rolling
    /// update fails no request. 0 closes the listener at once (a single server).
    pub shutdown_delay_secs: u64,
    /// Log one line per TAXII request (target `taxiway::access`): time, client,
    /// user, method, endpoint, API root, collection, status, objects, bytes, duration.
    pub access_log: bool,
    /// Compress TAXII responses of 1 KiB and more in the coding the request's
    /// `Accept-Encoding` prefers (`zstd`, `gzip`; fast levels). `false` sends every
    /// response as it is and ignores `Accept-Encoding`.
    pub compression: bool,
}

impl Default for ServerSettings {
    fn default() -> Self {
        ServerSettings {
            max_connections: 1000,
            connection_wait_ms: 500,
            max_connections_per_address: 64,
            max_requests_per_client: 64,
            request_timeout_secs: 60,
            header_read_timeout_secs: 30,
            tls_handshake_timeout_secs: 10,
            idle_timeout_secs: 120,
            http2_keep_alive_interval_secs: 30,
            http2_keep_alive_timeout_secs: 20,
            max_header_bytes: 64 * 1024,
            max_headers: 100,
            drain_timeout_secs: 30,
            shutdown_delay_secs: 0,
            access_log: true,
            compression: true,
        }
    }
}

impl ServerSettings {
    /// What breaks the rules, as (field, message) pairs.
    pub fn problems(&self) -> Vec<(&'static str, String)> {
        let mut problems = Vec::new();
        let mut positive = |field: &'static str, value: u64| {
            if value == 0 {
                problems.push((field, "must be > 0".to_string()));
            }
        };
        positive("max_connections", self.max_connections as u64);
        positive("request_timeout_secs", self.request_timeout_secs);
        positive("header_read_timeout_secs", self.header_read_timeout_secs);
        positive(
            "tls_handshake_timeout_secs",
            self.tls_handshake_timeout_secs,
        );
        positive("idle_timeout_secs", self.idle_timeout_secs);
        positive(
            "http2_keep_alive_timeout_secs",
            self.http2_keep_alive_timeout_secs,
        );
        positive("drain_timeout_secs", self.drain_timeout_secs);
        positive("max_headers", self.max_headers as u64);
        if self.max_connections_per_address > 1_000_000 {
            problems.push((
                "max_connections_per_address",
                "must be at most 1000000".into(),
            ));
        }
        if self.max_connections > 1_000_000 {
            problems.push(("max_connections", "must be at most 1000000".into()));
        }
        if !(MIN_HEADER_BYTES..=MAX_HEADER_BYTES).contains(&self.max_header_bytes) {
            problems.push((
                "max_header_bytes",
                format!("must be between {MIN_HEADER_BYTES} and {MAX_HEADER_BYTES}"),
            ));
        }
        if self.max_headers > 10_000 {
            problems.push(("max_headers", "must be at most 10000".into()));
        }
        let hours = 24 * 3600;
        for (field, value) in [
            ("connection_wait_ms", self.connection_wait_ms / 1000),
            ("request_timeout_secs", self.request_timeout_secs),
            ("header_read_timeout_secs", self.header_read_timeout_secs),
            (
                "tls_handshake_timeout_secs",
                self.tls_handshake_timeout_secs,
            ),
            ("idle_timeout_secs", self.idle_timeout_secs),
            (
                "http2_keep_alive_interval_secs",
                self.http2_keep_alive_interval_secs,
            ),
            (
                "http2_keep_alive_timeout_secs",
                self.http2_keep_alive_timeout_secs,
            ),
            ("drain_timeout_secs", self.drain_timeout_secs),
            ("shutdown_delay_secs", self.shutdown_delay_secs),
        ] {
            if value > hours {
                problems.push((field, "must be at most a day".into()));
            }
        }
        problems
    }

    /// `connection_wait_ms`.
    pub fn connection_wait(&self) -> Duration {
        Duration::from_millis(self.connection_wait_ms)
    }

    /// The header block the protocol layer reads before refusing it outright (a bare
    /// 431 or a stream reset): twice `max_header_bytes`, so that blocks over the limit
    /// but within this reach the server and get a TAXII 431 error, while what one
    /// connection's headers may hold stays bounded.
    pub fn header_buffer_bytes(&self) -> usize {
        self.max_header_bytes
            .max(MIN_HEADER_BYTES)
            .saturating_mul(2)
    }

    /// `request_timeout_secs`.
    pub fn request_timeout(&self) -> Duration {
        Duration::from_secs(self.request_timeout_secs)
    }

    /// `header_read_timeout_secs`.
    pub fn header_read_timeout(&self) -> Duration {
        Duration::from_secs(self.header_read_timeout_secs)
    }

    /// `tls_handshake_timeout_secs`.
    pub fn tls_handshake_timeout(&self) -> Duration {
        Duration::from_secs(self.tls_handshake_timeout_secs)
    }

    /// `idle_timeout_secs`.
    pub fn idle_timeout(&self) -> Duration {
        Duration::from_secs(self.idle_timeout_secs)
    }

    /// `http2_keep_alive_interval_secs`, `None` when off.
    pub fn http2_keep_alive_interval(&self) -> Option<Duration> {
        (self.http2_keep_alive_interval_secs > 0)
            .then(|| Duration::from_secs(self.http2_keep_alive_interval_secs))
    }

    /// `http2_keep_alive_timeout_secs`.
    pub fn http2_keep_alive_timeout(&self) -> Duration {
        Duration::from_secs(self.http2_keep_alive_timeout_secs)
    }

    /// `drain_timeout_secs`.
    pub fn drain_timeout(&self) -> Duration {
        Duration::from_secs(self.drain_timeout_secs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid() {
        assert!(ServerSettings::default().problems().is_empty());
    }

    #[test]
    fn zero_and_out_of_range_values_are_named() {
        let settings = ServerSettings {
            max_connections: 0,
            request_timeout_secs: 0,
            max_header_bytes: 100,
            idle_timeout_secs: 7 * 24 * 3600,
            ..ServerSettings::default()
        };
        let fields: Vec<_> = settings.problems().into_iter().map(|(f, _)| f).collect();
        assert_eq!(
            fields,
            [
                "max_connections",
                "request_timeout_secs",
                "max_header_bytes",
                "idle_timeout_secs"
            ]
        );
    }

    #[test]
    fn zero_turns_the_per_client_limit_and_http2_pings_off() {
        let settings = ServerSettings {
            max_requests_per_client: 0,
            http2_keep_alive_interval_secs: 0,
            ..ServerSettings::default()
        };
        assert!(settings.problems().is_empty());
        assert_eq!(settings.http2_keep_alive_interval(), None);
    }
}

#[cfg(test)]
mod config_tests {
    use crate::config::{self, ConfigError};

    const BASE: &str = "[service]\ntitle = \"t\"\n";

    #[test]
    fn the_server_table_is_read_and_checked_with_the_rest() {
        let c = config::parse(&format!(
            "{BASE}[server]\nmax_connections = 10\nheader_read_timeout_secs = 1\n"
        ))
        .expect("valid");
        assert_eq!(c.config.server.max_connections, 10);
        assert_eq!(c.config.server.header_read_timeout_secs, 1);
        assert_eq!(
            c.config.server.request_timeout_secs, 60,
            "defaults fill the rest"
        );

        match config::parse(&format!("{BASE}[server]\nmax_header_bytes = 100\n")) {
            Err(ConfigError::Invalid(problems)) => {
                assert_eq!(problems[0].at, "server.max_header_bytes")
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            config::parse(&format!("{BASE}[server]\nmax_conections = 10\n")),
            Err(ConfigError::Syntax { .. })
        ));
    }

    #[test]
    fn compression_is_on_unless_turned_off() {
        assert!(
            config::parse(BASE)
                .expect("valid")
                .config
                .server
                .compression
        );
        let c = config::parse(&format!("{BASE}[server]\ncompression = false\n")).expect("valid");
        assert!(!c.config.server.compression);
    }
}
