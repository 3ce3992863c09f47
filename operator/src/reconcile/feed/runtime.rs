//! Asking a service's server how its feeds run: `GET /feeds` on the admin port of a
//! ready server pod (from the Service's Endpoints). The server reads the record from
//! the store, so any replica answers for every feed.
//!
//! With `spec.networkPolicy` on, the rendered policy opens the admin port to the
//! operator's own namespace too (`$POD_NAMESPACE`, matched by the
//! `kubernetes.io/metadata.name` label every namespace carries from Kubernetes 1.21).

use std::time::Duration;

use k8s_openapi::api::core::v1::Endpoints;
use kube::api::Api;
use taxiway_model::feed_status::{FeedsReport, FEEDS_PATH};

use crate::names;
use crate::reconcile::service::build::ADMIN_PORT;
use crate::reconcile::Context;

/// How long one server pod may take to answer.
pub const TIMEOUT: Duration = Duration::from_secs(3);

/// Server pods asked before giving up.
const TRIES: usize = 3;

/// The HTTP client asking server pods: plain HTTP to pod addresses, never through a
/// proxy from the environment.
pub fn http_client() -> Result<reqwest::Client, reqwest::Error> {
    reqwest::Client::builder()
        .timeout(TIMEOUT)
        .connect_timeout(TIMEOUT)
        .no_proxy()
        .build()
}

/// The feeds report of `service`'s server, or why none could be had.
pub async fn ask_server(
    ctx: &Context,
    namespace: &str,
    service: &str,
) -> Result<FeedsReport, String> {
    let endpoints = Api::<Endpoints>::namespaced(ctx.client.clone(), namespace)
        .get_opt(&names::workload(service))
        .await
        .map_err(|e| format!("cannot read the Endpoints of {service}: {e}"))?;
    let addresses = ready_addresses(endpoints.as_ref());
    if addresses.is_empty() {
        return Err("no server pod is ready".into());
    }
    let http = ctx
        .http
        .as_ref()
        .map_err(|e| format!("no HTTP client: {e}"))?;
    let mut last = String::new();
    for address in addresses.iter().take(TRIES) {
        let url = format!("http://{}{FEEDS_PATH}", host_port(address));
        match ask(http, &url).await {
            Ok(report) => return Ok(report),
            Err(e) => last = format!("pod {address}: {e}"),
        }
    }
    Err(last)
}

async fn ask(http: &reqwest::Client, url: &str) -> Result<FeedsReport, String> {
    let response = http.get(url).send().await.map_err(|e| e.to_string())?;
    let status = response.status();
    if !status.is_success() {
        return Err(format!("answered HTTP {}", status.as_u16()));
    }
    let body = response.bytes().await.map_err(|e| e.to_string())?;
    serde_json::from_slice(&body).map_err(|e| format!("unreadable report: {e}"))
}

/// `ip:port` of the admin port (IPv6 addresses in brackets).
fn host_port(ip: &str) -> String {
    if ip.contains(':') {
        format!("[{ip}]:{ADMIN_PORT}")
    } else {
        format!("{ip}:{ADMIN_PORT}")
    }
}

/// The addresses of ready pods behind the Service.
fn ready_addresses(endpoints: Option<&Endpoints>) -> Vec<String> {
    endpoints
        .and_then(|e| e.subsets.as_ref())
        .into_iter()
        .flatten()
        .flat_map(|subset| subset.addresses.iter().flatten())
        .map(|address| address.ip.clone())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_ready_addresses_are_asked_and_ipv6_is_bracketed() {
        let endpoints: Endpoints = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "hub"},
            "subsets": [{
                "addresses": [{"ip": "10.0.0.7"}, {"ip": "fd00::7"}],
                "notReadyAddresses": [{"ip": "10.0.0.8"}],
                "ports": [{"port": 9443}]
            }]
        }))
        .expect("endpoints");
        let addresses = ready_addresses(Some(&endpoints));
        assert_eq!(addresses, ["10.0.0.7", "fd00::7"]);
        assert_eq!(host_port(&addresses[0]), format!("10.0.0.7:{ADMIN_PORT}"));
        assert_eq!(host_port(&addresses[1]), format!("[fd00::7]:{ADMIN_PORT}"));
        assert!(ready_addresses(None).is_empty());
    }
}
