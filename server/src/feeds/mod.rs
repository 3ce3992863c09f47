//! Feeds (`[[feeds]]`): upstream TAXII 2.1/2.0 collections, STIX bundle URLs and IOC
//! lists pulled on a schedule into a writable collection, stored as a TAXII POST by
//! the user `feed:<name>` would be (see `docs/feeds.md`).
//!
//! - [`schedule`]: one task per configured feed, following configuration reloads,
//!   each pulling under a lease in the store;
//! - [`run`]: one pull: client, checkpoint, the format's puller; [`pull`]: what a
//!   pull in progress works with (checkpoint saving, lease renewal);
//! - [`client`]: HTTP over rustls with timeouts, retries, `Retry-After`, proxies and
//!   bounded bodies;
//! - [`taxii`], [`bundle`], [`list`]: the pullers; [`lists`] and [`indicators`]: list
//!   entries into indicators and the removal rule;
//! - [`checkpoint`]: where the next pull starts, kept in the store; [`status`]: the
//!   record of each feed's runs beside it, which the admin listener reports;
//! - [`sink`]: objects into the store's ingest path.

pub mod bundle;
pub mod checkpoint;
pub mod client;
pub mod error;
pub mod indicators;
pub mod list;
pub mod lists;
pub mod pull;
pub mod run;
pub mod schedule;
pub mod sink;
pub mod status;
pub mod taxii;

pub use self::error::FeedError;
pub use self::pull::Lease;
pub use self::run::pull_once;
pub use self::schedule::{holder_name, next_pull_in, Feeds};
pub use self::sink::PullReport;
