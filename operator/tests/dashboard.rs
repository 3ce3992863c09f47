//! Every operator metric (`taxiway_operator_*`) the chart's Grafana dashboard queries
//! is one the operator exports. (The server's are checked by server/tests/dashboard.rs.)

#[path = "../../server/tests/common/promql.rs"]
mod promql;

use std::time::Duration;

use taxiway_operator::metrics::Metrics;

#[test]
fn every_operator_metric_the_dashboard_queries_is_exported() {
    let dashboard = promql::dashboard(env!("CARGO_MANIFEST_DIR"));
    let metrics = Metrics::new();
    // prometheus-client leaves a labelled family out until it has a sample.
    metrics.reconciled("taxiiservice", Duration::from_millis(20));
    metrics.failed("taxiiservice", "kube");
    metrics.wrote("Deployment");
    metrics.set_leader(true);
    let text = metrics.render();
    let exposed = promql::exposed(&text);
    let mut checked = 0;
    for (title, expr) in promql::queries(&dashboard) {
        for name in promql::metrics_in(&expr) {
            if name.starts_with("taxiway_operator_") {
                assert!(
                    exposed.contains(&name),
                    "{title}: the operator does not export {name}:\n{text}"
                );
                checked += 1;
            }
        }
    }
    assert!(checked >= 4, "{checked}");
}
