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
mod descriptors;
mod extensions;
mod run;
pub use taxiway_model::config::server as settings;

pub use self::descriptors::{descriptors_needed, open_files_limit};
pub use self::extensions::{HeadBytes, Scheme};
pub use self::run::{run, run_exempting, Exempt};
pub use self::settings::ServerSettings;
