//! Feed metrics: per feed, the last successful pull, objects fetched, stored and
//! rejected, errors by kind, and how long pulls take. Labels are bounded by the
//! configuration (feed names), never by upstreams.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct FeedLabels {
    feed: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct FeedResultLabels {
    feed: String,
    result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct FeedErrorLabels {
    feed: String,
    kind: &'static str,
}

/// The `taxiway_feed_*` metrics.
#[derive(Clone)]
pub struct FeedMetrics {
    last_success: Family<FeedLabels, Gauge>,
    objects: Family<FeedResultLabels, Counter>,
    errors: Family<FeedErrorLabels, Counter>,
    duration: Family<FeedLabels, Histogram>,
}

impl FeedMetrics {
    /// Register the feed metrics in `registry`.
    pub fn register(registry: &mut Registry) -> FeedMetrics {
        let metrics = FeedMetrics {
            last_success: Family::default(),
            objects: Family::default(),
            errors: Family::default(),
            duration: Family::new_with_constructor(|| {
                Histogram::new([0.1, 0.5, 1.0, 5.0, 15.0, 60.0, 300.0, 900.0, 3600.0])
            }),
        };
        registry.register(
            "feed_last_success_timestamp_seconds",
            "When each feed last pulled successfully (Unix time)",
            metrics.last_success.clone(),
        );
        registry.register(
            "feed_objects",
            "Objects (or list entries) per feed: fetched from upstream, stored, rejected",
            metrics.objects.clone(),
        );
        registry.register(
            "feed_errors",
            "Failed pulls per feed by kind (auth, connect, timeout, http, too_large, protocol, config, store)",
            metrics.errors.clone(),
        );
        registry.register(
            "feed_run_duration_seconds",
            "How long each pull of a feed took",
            metrics.duration.clone(),
        );
        metrics
    }

    /// One pull of `feed` ended after `seconds`: `fetched`, `stored` and `rejected`
    /// objects, and the error's kind if it failed.
    pub fn pulled(&self, feed: &str, seconds: f64, counts: [u64; 3], error: Option<&'static str>) {
        let labels = FeedLabels {
            feed: feed.to_string(),
        };
        self.duration.get_or_create(&labels).observe(seconds);
        for (result, n) in ["fetched", "stored", "rejected"].into_iter().zip(counts) {
            self.objects
                .get_or_create(&FeedResultLabels {
                    feed: feed.to_string(),
                    result,
                })
                .inc_by(n);
        }
        match error {
            Some(kind) => {
                self.errors
                    .get_or_create(&FeedErrorLabels {
                        feed: feed.to_string(),
                        kind,
                    })
                    .inc();
            }
            None => {
                let now = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_secs() as i64)
                    .unwrap_or(0);
                self.last_success.get_or_create(&labels).set(now);
            }
        }
    }

    /// A feed that could not even start a pull (its lease could not be read).
    pub fn failed(&self, feed: &str, kind: &'static str) {
        self.errors
            .get_or_create(&FeedErrorLabels {
                feed: feed.to_string(),
                kind,
            })
            .inc();
    }
}
