//! The page cache's metrics: hits, misses, evictions and the bytes held.

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;

/// The page cache's counters, registered in `/metrics`.
#[derive(Clone, Debug, Default)]
pub struct PageCacheCounters {
    /// Pages served from the cache.
    pub hits: Counter,
    /// Pages read from the store that could have been cached.
    pub misses: Counter,
    /// Pages dropped to make room (or too large to keep).
    pub evictions: Counter,
    /// Bytes held, as counted against the budget.
    pub bytes: Gauge,
}
