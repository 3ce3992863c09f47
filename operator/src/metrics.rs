//! Prometheus metrics of the operator, served on the admin port.

use std::time::Duration;

use prometheus_client::encoding::text::encode;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ControllerLabels {
    controller: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ErrorLabels {
    controller: &'static str,
    error: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabels {
    kind: &'static str,
}

/// Every metric the operator exports (prefix `taxiway_operator_`).
pub struct Metrics {
    registry: Registry,
    reconciles: Family<ControllerLabels, Counter>,
    errors: Family<ErrorLabels, Counter>,
    durations: Family<ControllerLabels, Histogram>,
    writes: Family<KindLabels, Counter>,
    leader: Gauge,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// A fresh registry with every metric registered.
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("taxiway_operator");
        let reconciles = Family::<ControllerLabels, Counter>::default();
        registry.register(
            "reconciles",
            "Reconciles run, by controller",
            reconciles.clone(),
        );
        let errors = Family::<ErrorLabels, Counter>::default();
        registry.register(
            "reconcile_errors",
            "Reconciles that failed (and were retried), by controller and error",
            errors.clone(),
        );
        let durations = Family::<ControllerLabels, Histogram>::new_with_constructor(|| {
            Histogram::new([
                0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
            ])
        });
        registry.register(
            "reconcile_duration_seconds",
            "How long reconciles take, by controller",
            durations.clone(),
        );
        let writes = Family::<KindLabels, Counter>::default();
        registry.register(
            "writes",
            "Objects created or changed (server-side apply, status, delete), by kind; \
             a reconcile of unchanged inputs adds nothing here",
            writes.clone(),
        );
        let leader = Gauge::default();
        registry.register(
            "leader",
            "1 while this replica holds the leader Lease",
            leader.clone(),
        );
        Metrics {
            registry,
            reconciles,
            errors,
            durations,
            writes,
            leader,
        }
    }

    /// Count a finished reconcile and its duration.
    pub fn reconciled(&self, controller: &'static str, took: Duration) {
        self.reconciles
            .get_or_create(&ControllerLabels { controller })
            .inc();
        self.durations
            .get_or_create(&ControllerLabels { controller })
            .observe(took.as_secs_f64());
    }

    /// Count a failed reconcile.
    pub fn failed(&self, controller: &'static str, error: &'static str) {
        self.errors
            .get_or_create(&ErrorLabels { controller, error })
            .inc();
    }

    /// Count a write to the API.
    pub fn wrote(&self, kind: &'static str) {
        self.writes.get_or_create(&KindLabels { kind }).inc();
    }

    /// Record whether this replica leads.
    pub fn set_leader(&self, leading: bool) {
        self.leader.set(i64::from(leading));
    }

    /// The OpenMetrics text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        if encode(&mut out, &self.registry).is_err() {
            out.clear();
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_by_label() {
        let m = Metrics::new();
        m.reconciled("taxiiservice", Duration::from_millis(20));
        m.failed("taxiiservice", "kube");
        m.wrote("ConfigMap");
        m.set_leader(true);
        let text = m.render();
        assert!(text.contains("taxiway_operator_reconciles_total{controller=\"taxiiservice\"} 1"));
        assert!(text.contains(
            "taxiway_operator_reconcile_errors_total{controller=\"taxiiservice\",error=\"kube\"} 1"
        ));
        assert!(text.contains("taxiway_operator_writes_total{kind=\"ConfigMap\"} 1"));
        assert!(text.contains("taxiway_operator_leader 1"));
        assert!(text.contains("taxiway_operator_reconcile_duration_seconds_bucket"));
    }
}
