//! Exposure: the NetworkPolicy's peers, the Gateway route, and an Ingress without
//! `trustedProxies`.

use std::net::IpAddr;

use k8s_openapi::api::networking::v1::{IPBlock, NetworkPolicyPeer};

use super::pod::dns_subdomain;
use super::{Inputs, Problem, ProblemKind, Validated, Warning};
use crate::crd::TaxiiService;

/// Problems with `spec.gateway` (what the API server would refuse, and a wildcard host
/// name that cannot be the external URL), so that a bad one is reported here instead
/// of failing the apply.
pub(super) fn validate_gateway(inputs: &Inputs, problems: &mut Vec<Problem>) {
    let Some(gateway) = inputs.service.spec.gateway.as_ref() else {
        return;
    };
    let mut report = |message: String| {
        problems.push(Problem {
            kind: ProblemKind::InvalidGateway,
            message: format!("{message}; the HTTPRoute is left as it is"),
        })
    };
    for (i, parent) in gateway.parent_refs.iter().enumerate() {
        let names = [
            ("name", Some(&parent.name)),
            ("namespace", parent.namespace.as_ref()),
            ("sectionName", parent.section_name.as_ref()),
        ];
        for (field, value) in names {
            if let Some(value) = value {
                if let Err(e) = dns_subdomain(value) {
                    report(format!(
                        "spec.gateway.parentRefs[{i}].{field} {value:?} {e}"
                    ));
                }
            }
        }
    }
    if gateway.parent_refs.is_empty() {
        report("spec.gateway.parentRefs is empty: name the Gateway to attach to".into());
    }
    for (i, host) in gateway.hostnames.iter().enumerate() {
        let name = host.strip_prefix("*.").unwrap_or(host);
        if name.contains('*') || dns_subdomain(name).is_err() {
            report(format!(
                "spec.gateway.hostnames[{i}] {host:?} is not a host name (lowercase, \
                 optionally `*.` and a domain)"
            ));
        } else if i == 0
            && host.starts_with("*.")
            && inputs.service.spec.external_url.is_none()
            && inputs.service.spec.ingress.is_none()
        {
            report(format!(
                "spec.gateway.hostnames[0] {host:?} is a wildcard and cannot be the \
                 external URL: list a concrete host name first, or set spec.externalUrl"
            ));
        }
    }
}

/// Record that `spec.monitoring` asks for prometheus-operator objects the cluster
/// does not serve (`kinds`, e.g. `PodMonitor`); nothing when `kinds` is empty.
pub fn monitoring_api_unavailable(kinds: &[&str], validated: &mut Validated) {
    if kinds.is_empty() {
        return;
    }
    validated.problems.push(Problem {
        kind: ProblemKind::MonitoringApiUnavailable,
        message: format!(
            "spec.monitoring asks for {} but the cluster serves no monitoring.coreos.com/v1 {}: \
             install prometheus-operator's CRDs; no PodMonitor or PrometheusRule is rendered",
            kinds.join(" and "),
            kinds.join(" or ")
        ),
    });
    validated.problems.sort_by_key(|p| p.kind);
}

/// Record that `service` asks for a Gateway route the cluster cannot serve (no
/// `gateway.networking.k8s.io/v1` `HTTPRoute`).
pub fn gateway_api_unavailable(service: &TaxiiService, validated: &mut Validated) {
    if service.spec.gateway.is_none() {
        return;
    }
    validated.problems.push(Problem {
        kind: ProblemKind::GatewayApiUnavailable,
        message: "spec.gateway is set but the cluster serves no gateway.networking.k8s.io/v1 \
                  HTTPRoute: install the Gateway API CRDs (standard channel, v1.0 or later); \
                  no HTTPRoute is rendered"
            .into(),
    });
    validated.problems.sort_by_key(|p| p.kind);
}

/// Warning reason: an Ingress, and no `trustedProxies`.
pub const INGRESS_WITHOUT_TRUSTED_PROXIES: &str = "IngressWithoutTrustedProxies";
/// Warning reason: a Gateway route, and no `trustedProxies`.
pub const GATEWAY_WITHOUT_TRUSTED_PROXIES: &str = "GatewayWithoutTrustedProxies";

/// Problems with `spec.networkPolicy`'s peers (what the API server would refuse), so
/// that a bad one is reported here instead of failing the apply.
pub(super) fn validate_network_policy(inputs: &Inputs, problems: &mut Vec<Problem>) {
    let Some(policy) = inputs.service.spec.network_policy.as_ref() else {
        return;
    };
    if !policy.enabled {
        return;
    }
    for (field, peers) in [
        ("from", &policy.from),
        ("metricsFrom", &policy.metrics_from),
    ] {
        for (i, peer) in peers.iter().enumerate() {
            if let Err(message) = check_peer(peer) {
                problems.push(Problem {
                    kind: ProblemKind::InvalidNetworkPolicy,
                    message: format!(
                        "spec.networkPolicy.{field}[{i}]: {message}; the NetworkPolicy is left as it is"
                    ),
                });
            }
        }
    }
}

fn check_peer(peer: &NetworkPolicyPeer) -> Result<(), String> {
    let selectors = peer.namespace_selector.is_some() || peer.pod_selector.is_some();
    match (&peer.ip_block, selectors) {
        (None, false) => Err("set namespaceSelector, podSelector or ipBlock".into()),
        (Some(_), true) => {
            Err("ipBlock cannot be combined with namespaceSelector or podSelector".into())
        }
        (Some(block), false) => check_ip_block(block),
        (None, true) => Ok(()),
    }
}

fn check_ip_block(block: &IPBlock) -> Result<(), String> {
    let (address, prefix) = cidr(&block.cidr)
        .ok_or_else(|| format!("ipBlock.cidr {:?} is not a CIDR range", block.cidr))?;
    for except in block.except.iter().flatten() {
        let (inner, inner_prefix) =
            cidr(except).ok_or_else(|| format!("ipBlock.except {except:?} is not a CIDR range"))?;
        if inner_prefix <= prefix || !same_prefix(address, inner, prefix) {
            return Err(format!(
                "ipBlock.except {except:?} is not strictly inside {}",
                block.cidr
            ));
        }
    }
    Ok(())
}

/// `address/prefix`, as the API server accepts it.
fn cidr(text: &str) -> Option<(IpAddr, u8)> {
    let (address, prefix) = text.split_once('/')?;
    let address: IpAddr = address.parse().ok()?;
    let prefix: u8 = prefix.parse().ok()?;
    let max = if address.is_ipv4() { 32 } else { 128 };
    (prefix <= max).then_some((address, prefix))
}

/// Whether `a` and `b` share their first `prefix` bits (and are of one family).
fn same_prefix(a: IpAddr, b: IpAddr, prefix: u8) -> bool {
    // Both as 128 bits, an IPv4 address in the top 32.
    let bits = |ip: IpAddr| match ip {
        IpAddr::V4(v4) => (u128::from(u32::from(v4)) << 96, 4),
        IpAddr::V6(v6) => (u128::from(v6), 6),
    };
    let ((a, family_a), (b, family_b)) = (bits(a), bits(b));
    let mask = u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0);
    family_a == family_b && a & mask == b & mask
}

/// Settings that work but are probably not what was meant.
pub(super) fn exposure_warnings(inputs: &Inputs) -> Vec<Warning> {
    let spec = &inputs.service.spec;
    let mut warnings = vec![];
    if spec.ingress.is_some() && spec.trusted_proxies.is_empty() {
        warnings.push(Warning {
            reason: INGRESS_WITHOUT_TRUSTED_PROXIES,
            message: "spec.ingress is set but spec.trustedProxies is empty: the server sees \
                      every client behind the Ingress as the Ingress controller's address, so \
                      the per-address lockout (auth.maxFailuresPerAddress) and \
                      limits.maxRequestsPerClient count them all together; name the \
                      controller's pod addresses in spec.trustedProxies"
                .into(),
        });
    }
    if spec.gateway.is_some() && spec.trusted_proxies.is_empty() {
        warnings.push(Warning {
            reason: GATEWAY_WITHOUT_TRUSTED_PROXIES,
            message: "spec.gateway is set but spec.trustedProxies is empty: the server sees \
                      every client behind the Gateway as the Gateway's proxy address, so the \
                      per-address lockout (auth.maxFailuresPerAddress) and \
                      limits.maxRequestsPerClient count them all together; name the \
                      Gateway's proxy pod addresses in spec.trustedProxies"
                .into(),
        });
    }
    warnings
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block(cidr: &str, except: &[&str]) -> NetworkPolicyPeer {
        NetworkPolicyPeer {
            ip_block: Some(IPBlock {
                cidr: cidr.into(),
                except: (!except.is_empty())
                    .then(|| except.iter().map(|e| e.to_string()).collect()),
            }),
            ..NetworkPolicyPeer::default()
        }
    }

    #[test]
    fn ip_blocks_are_checked_as_the_api_server_would() {
        assert_eq!(check_peer(&block("10.0.0.0/8", &["10.1.0.0/16"])), Ok(()));
        assert_eq!(
            check_peer(&block("2001:db8::/32", &["2001:db8:1::/48"])),
            Ok(())
        );
        assert_eq!(check_peer(&block("192.0.2.7/32", &[])), Ok(()));
        for (cidr, except) in [
            ("10.0.0.0", vec![]),
            ("10.0.0.0/33", vec![]),
            ("ten/8", vec![]),
            ("10.0.0.0/8", vec!["11.0.0.0/16"]),
            ("10.0.0.0/8", vec!["10.0.0.0/8"]),
            ("10.0.0.0/8", vec!["2001:db8::/48"]),
        ] {
            assert!(
                check_peer(&block(cidr, &except)).is_err(),
                "{cidr} {except:?}"
            );
        }
    }

    #[test]
    fn a_peer_names_something_and_ip_blocks_stand_alone() {
        assert!(check_peer(&NetworkPolicyPeer::default()).is_err());
        let mut mixed = block("10.0.0.0/8", &[]);
        mixed.pod_selector = Some(Default::default());
        assert!(check_peer(&mixed).is_err());
        let namespaces = NetworkPolicyPeer {
            namespace_selector: Some(Default::default()),
            ..NetworkPolicyPeer::default()
        };
        assert_eq!(check_peer(&namespaces), Ok(()));
    }
}
