#!/usr/bin/env python3
"""Checks on `helm template` output that a user or a cluster admin would notice.

    check_rendered.py default RENDERED.yaml CRDS_DIR
    check_rendered.py full RENDERED.yaml CRDS_DIR
    check_rendered.py no-crds RENDERED.yaml
    check_rendered.py no-examples RENDERED.yaml

Exits non-zero with one line per failed check.
"""

import glob
import os
import sys

import yaml

LABELS = (
    "helm.sh/chart",
    "app.kubernetes.io/name",
    "app.kubernetes.io/instance",
    "app.kubernetes.io/version",
    "app.kubernetes.io/managed-by",
    "app.kubernetes.io/part-of",
)

failures = []


def check(cond, message):
    if not cond:
        failures.append(message)


def load(path):
    with open(path) as f:
        return [d for d in yaml.safe_load_all(f) if d]


def ident(obj):
    meta = obj.get("metadata", {})
    ns = meta.get("namespace")
    return f"{obj.get('kind')}/{(ns + '/') if ns else ''}{meta.get('name')}"


def of_kind(objs, kind):
    return [o for o in objs if o.get("kind") == kind]


def one(objs, kind):
    found = of_kind(objs, kind)
    check(len(found) == 1, f"expected exactly one {kind}, found {len(found)}")
    return found[0] if found else {}


def rules_grant(rules, group, resource, verb):
    for rule in rules:
        if (
            group in rule.get("apiGroups", [])
            and resource in rule.get("resources", [])
            and (verb in rule.get("verbs", []) or "*" in rule.get("verbs", []))
        ):
            return True
    return False


def check_common(objs):
    names = set()
    for obj in objs:
        labels = obj.get("metadata", {}).get("labels") or {}
        for label in LABELS:
            check(label in labels, f"{ident(obj)}: no label {label}")
        check(ident(obj) not in names, f"{ident(obj)} rendered twice")
        names.add(ident(obj))
        check(
            len(obj["metadata"]["name"]) <= 63 or obj["kind"] == "CustomResourceDefinition",
            f"{ident(obj)}: name longer than 63 characters",
        )


def check_deployment(objs, admin_port):
    dep = one(objs, "Deployment")
    if not dep:
        return
    pod = dep["spec"]["template"]["spec"]
    selector = dep["spec"]["selector"]["matchLabels"]
    pod_labels = dep["spec"]["template"]["metadata"]["labels"]
    check(
        all(pod_labels.get(k) == v for k, v in selector.items()),
        "Deployment selector does not match its pod labels",
    )
    check(
        set(selector) == {"app.kubernetes.io/name", "app.kubernetes.io/instance", "app.kubernetes.io/component"},
        f"Deployment selector is not the stable name/instance/component triple: {selector}",
    )
    psc = pod.get("securityContext", {})
    check(psc.get("runAsNonRoot") is True, "pod does not set runAsNonRoot: true")
    check(psc.get("seccompProfile", {}).get("type") == "RuntimeDefault", "pod seccompProfile is not RuntimeDefault")
    sa = one(objs, "ServiceAccount")
    check(pod.get("serviceAccountName") == sa.get("metadata", {}).get("name"), "pod does not use the chart's ServiceAccount")
    containers = pod["containers"]
    check(len(containers) == 1, "operator pod should have one container")
    c = containers[0]
    sc = c.get("securityContext", {})
    check(sc.get("readOnlyRootFilesystem") is True, "container root filesystem is not read-only")
    check(sc.get("allowPrivilegeEscalation") is False, "container allows privilege escalation")
    check(sc.get("capabilities", {}).get("drop") == ["ALL"], "container does not drop ALL capabilities")
    check(not sc.get("capabilities", {}).get("add"), "container adds capabilities")
    args = c.get("args", [])
    check(args[:1] == ["run"], f"operator args do not start with `run`: {args}")
    check(f"--admin-listen=0.0.0.0:{admin_port}" in args, f"no --admin-listen on port {admin_port}: {args}")
    check(any(a.startswith("--server-image=") for a in args), "no --server-image argument")
    check(any(a.startswith("--lease-name=") for a in args), "no --lease-name argument")
    ports = {p["name"]: p["containerPort"] for p in c.get("ports", [])}
    check(ports.get("admin") == admin_port, f"admin port is not {admin_port}: {ports}")
    for probe, path in (("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")):
        get = c.get(probe, {}).get("httpGet", {})
        check(get.get("path") == path and get.get("port") == "admin", f"{probe} is not GET {path} on the admin port")
    res = c.get("resources", {})
    check("memory" in res.get("limits", {}), "no memory limit")
    check({"cpu", "memory"} <= set(res.get("requests", {})), "no cpu and memory requests")
    env = {e["name"] for e in c.get("env", [])}
    check("POD_NAMESPACE" in env, "no POD_NAMESPACE env (leader-election namespace)")
    mounts = {m["mountPath"] for m in c.get("volumeMounts", [])}
    check("/tmp" in mounts, "no writable /tmp for a read-only root filesystem")
    return dep


def check_crds(objs, crds_dir, keep=True):
    rendered = {o["metadata"]["name"]: o for o in of_kind(objs, "CustomResourceDefinition")}
    sources = {}
    for path in sorted(glob.glob(os.path.join(crds_dir, "*.yaml"))):
        for doc in load(path):
            sources[doc["metadata"]["name"]] = doc
    check(sources, f"no CRDs in {crds_dir}")
    check(set(rendered) == set(sources), f"rendered CRDs {sorted(rendered)} != {crds_dir} {sorted(sources)}")
    for name, src in sources.items():
        out = rendered.get(name)
        if not out:
            continue
        # The chart may only add metadata; the schema must reach the cluster unchanged.
        check(out["spec"] == src["spec"], f"CRD {name}: spec differs from {crds_dir}")
        check(out["apiVersion"] == src["apiVersion"], f"CRD {name}: apiVersion differs")
        annotations = out["metadata"].get("annotations") or {}
        if keep:
            check(annotations.get("helm.sh/resource-policy") == "keep", f"CRD {name} is not kept on uninstall")
        for k, v in (src["metadata"].get("labels") or {}).items():
            check(out["metadata"]["labels"].get(k) == v, f"CRD {name}: lost label {k}")


def args_of(objs):
    deps = of_kind(objs, "Deployment")
    return deps[0]["spec"]["template"]["spec"]["containers"][0].get("args", []) if deps else []


def cluster_rules(objs):
    return [r for cr in of_kind(objs, "ClusterRole") for r in cr.get("rules", [])]


def main():
    mode, path = sys.argv[1], sys.argv[2]
    objs = load(path)
    check(objs, f"{path}: nothing rendered")
    check_common(objs)
    kinds = {o["kind"] for o in objs}

    if mode == "default":
        check_crds(objs, sys.argv[3])
        check_deployment(objs, 8080)
        check("TaxiiService" not in kinds, "examples rendered by default")
        check("ServiceMonitor" not in kinds, "ServiceMonitor rendered by default")
        check("PodDisruptionBudget" not in kinds, "PodDisruptionBudget rendered by default")
        svc = one(objs, "Service")
        check(svc.get("spec", {}).get("ports", [{}])[0].get("targetPort") == "admin", "metrics Service does not target the admin port")
        # Cluster mode: one ClusterRole for the operator, with what it must do everywhere.
        operator_roles = [cr for cr in of_kind(objs, "ClusterRole") if cr["metadata"]["labels"].get("app.kubernetes.io/component") == "operator"]
        check(len(operator_roles) == 1, "expected one operator ClusterRole in cluster mode")
        rules = cluster_rules(operator_roles)
        for group, resource, verb in (
            ("taxiway.dev", "taxiiservices", "watch"),
            ("taxiway.dev", "taxiicollections/status", "patch"),
            ("taxiway.dev", "taxiifeeds", "watch"),
            ("taxiway.dev", "taxiifeeds/status", "patch"),
            ("", "endpoints", "get"),
            ("", "secrets", "watch"),
            ("apps", "deployments", "create"),
            ("apps", "deployments", "patch"),
            ("networking.k8s.io", "ingresses", "delete"),
            ("events.k8s.io", "events", "create"),
        ):
            check(rules_grant(rules, group, resource, verb), f"ClusterRole lacks {verb} {group}/{resource}")
        # Never more than it needs.
        for rule in rules:
            check("*" not in rule.get("verbs", []) and "*" not in rule.get("resources", []), f"wildcard in ClusterRole rule {rule}")
            check(not {"escalate", "bind", "impersonate"} & set(rule.get("verbs", [])), f"privileged verb in {rule}")
        check(not rules_grant(rules, "", "secrets", "delete"), "the operator may delete Secrets")
        check(not rules_grant(rules, "coordination.k8s.io", "leases", "create"), "leases granted cluster-wide (the Lease is in the release namespace)")
        check(not rules_grant(rules, "apiextensions.k8s.io", "customresourcedefinitions", "create"), "the operator may create CRDs")
        lease_roles = [r for r in of_kind(objs, "Role") if rules_grant(r["rules"], "coordination.k8s.io", "leases", "update")]
        check(len(lease_roles) == 1, "no Role for the leader-election Lease")
        lease_name = next((a.split("=", 1)[1] for a in args_of(objs) if a.startswith("--lease-name=")), None)
        for role in lease_roles:
            for rule in role["rules"]:
                if "update" in rule.get("verbs", []) or "get" in rule.get("verbs", []):
                    check(rule.get("resourceNames") == [lease_name], f"Lease rule not limited to the operator's Lease {lease_name}: {rule}")

    elif mode == "full":
        check_crds(objs, sys.argv[3])
        dep = check_deployment(objs, 9000)
        args = args_of(objs)
        check("--namespace=threat-intel" in args, f"watchNamespace not passed: {args}")
        check(dep and dep["spec"]["replicas"] == 2, "replicaCount not applied")
        for kind in ("ServiceMonitor", "PodDisruptionBudget", "TaxiiService", "TaxiiCollection", "Secret"):
            check(kind in kinds, f"{kind} not rendered with full values")
        # One namespace: the operator gets no cluster-wide rules at all.
        operator_cluster = [cr for cr in of_kind(objs, "ClusterRole") if cr["metadata"]["labels"].get("app.kubernetes.io/component") == "operator"]
        check(not operator_cluster, "operator ClusterRole rendered although watchNamespace is set")
        check(not of_kind(objs, "ClusterRoleBinding"), "ClusterRoleBinding rendered although watchNamespace is set")
        role_ns = {r["metadata"]["namespace"] for r in of_kind(objs, "Role") if rules_grant(r["rules"], "", "secrets", "watch")}
        check(role_ns == {"threat-intel"}, f"Secrets readable in {sorted(role_ns)}, expected threat-intel only")
        svc = one(objs, "TaxiiService")
        check(svc.get("spec", {}).get("ingress", {}).get("host") == "taxii.example.com", "example Ingress host not applied")
        secret = one(objs, "Secret")
        check(secret.get("type") == "kubernetes.io/basic-auth", "example user Secret is not kubernetes.io/basic-auth")
        pdb = one(objs, "PodDisruptionBudget")
        check(pdb.get("apiVersion") == "policy/v1", "PodDisruptionBudget is not policy/v1 when the API serves it")

    elif mode == "no-crds":
        check("CustomResourceDefinition" not in kinds, "CRDs rendered with crds.install=false")
        check("Deployment" in kinds, "operator not rendered with crds.install=false")

    elif mode == "no-examples":
        check("TaxiiService" not in kinds and "TaxiiCollection" not in kinds, "examples rendered although the API is not served")

    else:
        sys.exit(f"unknown mode {mode}")

    if failures:
        for f in failures:
            print(f"FAIL [{mode}] {f}")
        sys.exit(1)
    print(f"ok [{mode}] {len(objs)} objects: {', '.join(sorted(kinds))}")


if __name__ == "__main__":
    main()
