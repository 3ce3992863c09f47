//! Hot reload: one component for everything the server re-reads while it runs — the
//! collection configuration ([`config`]: `taxiway.toml` and `collections.json`), the users (`auth::CredentialsDir`) and the
//! TLS files (`tls::Tls`).
//!
//! A source of reloadable state implements [`Reloadable`]: it names its directory,
//! re-reads and applies it, and says what to log. [`watch`] watches the directory
//! ([`DirWatcher`]: a burst of changes settles into one reload, and the directory is
//! re-read every 30 s even without events) and reloads the source after each change;
//! [`once`] runs one reload. Either way a reload is handled the same:
//!
//! - nothing changed: nothing is counted or logged;
//! - a change went live: counted as `ok` in the source's `taxiway_*_reloads_total`
//!   counter, then logged by the source;
//! - a change was refused: counted as `error`, then logged by the source; what was
//!   loaded before keeps serving. There is no retry beyond the next change or the
//!   periodic re-read.

pub mod config;
mod source;
mod watch;

pub use self::config::ConfigDir;
pub use self::source::{once, watch, Counter, Reloadable};
pub use self::watch::DirWatcher;
