#!/usr/bin/env bash
# The Helm chart (charts/taxiway), with real helm 3.17 / kubectl 1.31 and a real
# kube-apiserver 1.20 (tests/k8s/):
#   1. the chart's CRDs equal crds/;
#   2. `helm lint --strict` and `helm template` with default and full values, with
#      checks on what they render (tests/helm/check_rendered.py);
#   3. every values file in tests/helm/bad-values/ is rejected by values.schema.json,
#      for the field it names;
#   4. against the apiserver: every rendered object is accepted (`--dry-run=server`),
#      `helm install`, the operator's ServiceAccount can do what the operator needs
#      (`kubectl auth can-i --as`) and nothing cluster-wide in namespaced mode, the
#      example resources, the operator itself reconciling a TaxiiService with that
#      ServiceAccount's token (when the operator crate is present), `helm upgrade`
#      upgrading a CRD, `helm uninstall` keeping the CRDs and users' resources, and a
#      reinstall adopting the kept CRDs.
# Bounded: about a minute warm. The apiserver (and the operator) are always stopped.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$repo"
chart=charts/taxiway
full_values=$chart/ci/full-values.yaml
helm_tests=tests/helm

step() { printf -- '--- %s\n' "$*"; }
fail() { printf 'FAIL: %s\n' "$*" >&2; exit 1; }

eval "$(bash tests/k8s/provision.sh)"
# A Python with PyYAML for the checks (Debian's python3-yaml if need be).
python=
for candidate in python3 /usr/bin/python3; do
  if "$candidate" -c 'import yaml' 2>/dev/null; then python=$candidate; break; fi
done
if [[ -z $python ]]; then
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends python3-yaml >/dev/null
  python=/usr/bin/python3
fi
export TAXIWAY_PYTHON=$python

work=$(mktemp -d "${TMPDIR:-/tmp}/taxiway-helm.XXXXXX")
kube_dir=$work/kube
cleanup() {
  local rc=$?
  bash tests/k8s/apiserver.sh stop "$kube_dir" || true
  if ((rc == 0)); then rm -rf "$work"; else echo "logs and rendered manifests kept in $work" >&2; fi
}
trap cleanup EXIT

helm() { "$HELM" "$@"; }
k() { "$KUBECTL" --kubeconfig "$kube_dir/kubeconfig" "$@"; }
api_versions=(--api-versions taxiway.dev/v1alpha1/TaxiiService --api-versions taxiway.dev/v1alpha1/TaxiiCollection)

# ---------------------------------------------------------------- offline checks
if [[ -f operator/Cargo.toml ]]; then
  step "the chart's CRDs equal crds/"
  bash "$helm_tests/crds.sh" check
else
  step "SKIP the CRD drift check: no operator crate (the source of crds/) in this tree yet"
fi

step "helm lint --strict (default and full values)"
helm lint --strict "$chart" >"$work/lint-default.log" || { cat "$work/lint-default.log"; fail "helm lint (default values)"; }
helm lint --strict "$chart" -f "$full_values" >"$work/lint-full.log" || { cat "$work/lint-full.log"; fail "helm lint (full values)"; }

step "helm template: what the chart renders"
helm template taxiway "$chart" -n taxiway-system >"$work/default.yaml"
"$python" "$helm_tests/check_rendered.py" default "$work/default.yaml" "$chart/files/crds"
helm template taxiway "$chart" -n taxiway-system -f "$full_values" "${api_versions[@]}" >"$work/full.yaml"
"$python" "$helm_tests/check_rendered.py" full "$work/full.yaml" "$chart/files/crds"
helm template taxiway "$chart" -n taxiway-system --set crds.install=false >"$work/no-crds.yaml"
"$python" "$helm_tests/check_rendered.py" no-crds "$work/no-crds.yaml"
helm template taxiway "$chart" -n taxiway-system -f "$full_values" >"$work/full-no-api.yaml"
"$python" "$helm_tests/check_rendered.py" no-examples "$work/full-no-api.yaml"

step "values.schema.json rejects bad values"
rejected=0
for bad in "$helm_tests"/bad-values/*.yaml; do
  field=$(sed -n 's/^# field: //p' "$bad")
  [[ -n $field ]] || fail "$bad: no '# field:' line naming the field it breaks"
  if out=$(helm template taxiway "$chart" -f "$bad" 2>&1); then
    fail "$bad was accepted (it breaks $field)"
  fi
  grep -q "values don't meet the specifications of the schema" <<<"$out" \
    || { echo "$out"; fail "$bad: rejected, but not by the schema"; }
  grep '^- ' <<<"$out" | grep -qF -- "$field" || { echo "$out"; fail "$bad: the error does not name $field"; }
  rejected=$((rejected + 1))
done
((rejected >= 10)) || fail "only $rejected bad values files"
echo "ok: $rejected bad values files rejected, each for the field it breaks"

# ---------------------------------------------------------------- against a real apiserver
step "start kube-apiserver"
bash tests/k8s/apiserver.sh start "$kube_dir" >/dev/null

release=taxiway
ns=taxiway-system
sa_user=system:serviceaccount:$ns:taxiway

step "every object of the default render is accepted by the server (dry run)"
k create namespace "$ns" >/dev/null
k apply --dry-run=server -f "$work/default.yaml" >"$work/dry-run-default.log" 2>&1 \
  || { cat "$work/dry-run-default.log"; fail "server dry run (default values)"; }

step "helm install"
helm install "$release" "$chart" -n "$ns" --kubeconfig "$kube_dir/kubeconfig" >"$work/install.log" \
  || { cat "$work/install.log"; fail "helm install"; }
grep -q 'NOT YET CREATED' "$work/install.log" && fail "NOTES talk about examples that were not asked for"
k wait --for=condition=Established --timeout=30s crd/taxiiservices.taxiway.dev crd/taxiicollections.taxiway.dev crd/taxiifeeds.taxiway.dev >/dev/null
for obj in deployment/taxiway serviceaccount/taxiway service/taxiway-metrics role/taxiway-leader-election rolebinding/taxiway-leader-election configmap/taxiway-dashboard; do
  k -n "$ns" get "$obj" >/dev/null || fail "helm install did not create $obj"
done
k get clusterrole/taxiway clusterrolebinding/taxiway clusterrole/taxiway-edit clusterrole/taxiway-view >/dev/null

# RBAC expectations, one `yes|no NAMESPACE VERB RESOURCE` line each (`-` = every
# namespace), checked in one kubectl call by tests/helm/rbac.py as SubjectAccessReviews
# for the operator's ServiceAccount — what `kubectl auth can-i --as=SA` asks.
expect() { printf '%s\n' "$*" >>"$work/rbac-expect"; }
check_rbac() {
  "$python" "$helm_tests/rbac.py" request "$sa_user" <"$work/rbac-expect" >"$work/rbac-request.json"
  k create -f "$work/rbac-request.json" -o json >"$work/rbac-answers.json"
  "$python" "$helm_tests/rbac.py" verify "$work/rbac-expect" <"$work/rbac-answers.json"
  rm -f "$work/rbac-expect"
}
# What the operator does in a namespace it watches (see operator/src: watches, gets,
# server-side apply, status patches, the Ingress delete, Events).
operator_needs() {
  local where=$1 r v
  for r in taxiiservices.taxiway.dev taxiicollections.taxiway.dev taxiifeeds.taxiway.dev; do
    for v in get list watch; do expect yes "$where" "$v" "$r"; done
  done
  for r in taxiiservices.taxiway.dev/status taxiicollections.taxiway.dev/status taxiifeeds.taxiway.dev/status; do
    for v in get patch; do expect yes "$where" "$v" "$r"; done
  done
  expect yes "$where" get endpoints
  expect yes "$where" update taxiiservices.taxiway.dev/finalizers
  for r in secrets configmaps services persistentvolumeclaims deployments.apps ingresses.networking.k8s.io; do
    for v in get list watch create patch; do expect yes "$where" "$v" "$r"; done
  done
  expect yes "$where" delete ingresses.networking.k8s.io
  # spec.networkPolicy: rendered, repaired, deleted when switched off.
  for v in get list watch create patch delete; do expect yes "$where" "$v" networkpolicies.networking.k8s.io; done
  expect no "$where" update networkpolicies.networking.k8s.io
  # spec.gateway: an HTTPRoute, watched (restored when deleted by hand), deleted when
  # removed.
  for v in get list watch create patch delete; do expect yes "$where" "$v" httproutes.gateway.networking.k8s.io; done
  expect no "$where" update httproutes.gateway.networking.k8s.io
  # spec.monitoring: a PodMonitor and a PrometheusRule, watched, deleted when switched off.
  for r in podmonitors.monitoring.coreos.com prometheusrules.monitoring.coreos.com; do
    for v in get list watch create patch delete; do expect yes "$where" "$v" "$r"; done
  done
  # PodDisruptionBudgets: watched, so one deleted or edited by hand is restored at once.
  for v in get list watch create patch delete; do expect yes "$where" "$v" poddisruptionbudgets.policy; done
  for v in create patch; do expect yes "$where" "$v" events.events.k8s.io; done
}
# Leader election: create a Lease in the release namespace, then only its own.
operator_lease() {
  local lease=$1
  expect yes "$ns" create leases.coordination.k8s.io
  expect yes "$ns" get leases.coordination.k8s.io "$lease"
  expect yes "$ns" update leases.coordination.k8s.io "$lease"
  expect no "$ns" update leases.coordination.k8s.io kube-scheduler
  expect no "$ns" delete leases.coordination.k8s.io "$lease"
  expect no threat-intel create leases.coordination.k8s.io
}
# Never, in any mode.
operator_never() {
  local where=$1
  expect no - create customresourcedefinitions.apiextensions.k8s.io
  expect no - create clusterroles.rbac.authorization.k8s.io
  expect no - bind clusterroles.rbac.authorization.k8s.io
  expect no - impersonate users
  expect no - get nodes
  expect no - list namespaces
  expect no "$where" create pods
  expect no "$where" create pods/exec
  expect no "$where" create serviceaccounts
  expect no "$where" create rolebindings.rbac.authorization.k8s.io
  expect no "$where" update taxiiservices.taxiway.dev
  expect no "$where" delete taxiiservices.taxiway.dev
  expect no "$where" delete secrets
  expect no "$where" update secrets
  expect no "$where" delete persistentvolumeclaims
  expect no "$where" delete deployments.apps
}

step "RBAC (cluster mode): the ServiceAccount can do what the operator needs, and no more"
operator_needs threat-intel
operator_needs -
operator_lease taxiway-leader
operator_never threat-intel
check_rbac
# The same question through impersonation, as an admin would ask it.
[[ $(k auth can-i --as="$sa_user" -n soc watch secrets) == yes ]] || fail "kubectl auth can-i disagrees (watch secrets)"
[[ $(k auth can-i --as="$sa_user" -n soc create pods || true) == no ]] || fail "kubectl auth can-i disagrees (create pods)"

step "examples: created by helm upgrade once the CRDs are served"
helm upgrade "$release" "$chart" -n "$ns" --kubeconfig "$kube_dir/kubeconfig" --reuse-values \
  --set examples.enabled=true >"$work/upgrade-examples.log" || { cat "$work/upgrade-examples.log"; fail "helm upgrade (examples)"; }
k -n "$ns" get taxiiservice/taxiway-example taxiicollection/taxiway-example-inbox \
  taxiicollection/taxiway-example-indicators secret/taxiway-example-analyst >/dev/null
password=$(k -n "$ns" get secret taxiway-example-analyst -o jsonpath='{.data.password}')
helm upgrade "$release" "$chart" -n "$ns" --kubeconfig "$kube_dir/kubeconfig" --reuse-values >/dev/null
[[ $(k -n "$ns" get secret taxiway-example-analyst -o jsonpath='{.data.password}') == "$password" ]] \
  || fail "the example user's generated password changed on upgrade"

if [[ -f operator/Cargo.toml ]]; then
  step "the operator reconciles the example with the chart's ServiceAccount token"
  bash "$helm_tests/run-operator.sh" "$kube_dir" "$work" "$ns" "$release" taxiway "$ns" taxiway-example
else
  step "SKIP the operator run: no operator crate in this tree yet"
fi

step "helm upgrade upgrades the CRDs"
cp -r "$chart" "$work/chart-next"
"$python" - "$work"/chart-next/files/crds/*.yaml <<'EOF'
import sys, yaml
path = next(p for p in sys.argv[1:] if yaml.safe_load(open(p))["metadata"]["name"] == "taxiiservices.taxiway.dev")
crd = yaml.safe_load(open(path))
for version in crd["spec"]["versions"]:
    version.setdefault("additionalPrinterColumns", []).append(
        {"name": "UpgradeProbe", "type": "string", "jsonPath": ".spec.title"})
open(path, "w").write(yaml.safe_dump(crd))
EOF
helm upgrade "$release" "$work/chart-next" -n "$ns" --kubeconfig "$kube_dir/kubeconfig" --reuse-values >/dev/null
columns() { k get crd taxiiservices.taxiway.dev -o jsonpath='{.spec.versions[*].additionalPrinterColumns[*].name}'; }
[[ $(columns) == *UpgradeProbe* ]] || fail "helm upgrade did not upgrade the TaxiiService CRD"
helm upgrade "$release" "$chart" -n "$ns" --kubeconfig "$kube_dir/kubeconfig" --reuse-values >/dev/null
[[ $(columns) != *UpgradeProbe* ]] || fail "helm upgrade did not return the CRD to the chart's version"
k -n "$ns" get taxiiservice/taxiway-example >/dev/null || fail "a CRD upgrade lost a TaxiiService"
echo "ok: CRD changed and changed back with the chart"

step "full values: every object accepted by the server (dry run), then helm upgrade to them"
k create namespace threat-intel >/dev/null
k create namespace soc >/dev/null  # not watched: the operator must have no rights there
k apply -f "$helm_tests/servicemonitor-crd.yaml" >/dev/null
k wait --for=condition=Established --timeout=30s crd/servicemonitors.monitoring.coreos.com >/dev/null
# Rendered with the cluster's capabilities (--validate), as an upgrade would render it:
# e.g. policy/v1beta1 PodDisruptionBudgets on this 1.20 server.
helm template "$release" "$chart" -n "$ns" -f "$full_values" --kubeconfig "$kube_dir/kubeconfig" \
  --validate --is-upgrade >"$work/full-live.yaml"
grep -q '^apiVersion: policy/v1beta1' "$work/full-live.yaml" || fail "no policy/v1beta1 PodDisruptionBudget for a 1.20 server"
k apply --dry-run=server -f "$work/full-live.yaml" >"$work/dry-run-full.log" 2>&1 \
  || { cat "$work/dry-run-full.log"; fail "server dry run (full values)"; }
helm upgrade "$release" "$chart" -n "$ns" --kubeconfig "$kube_dir/kubeconfig" -f "$full_values" \
  >"$work/upgrade-full.log" || { cat "$work/upgrade-full.log"; fail "helm upgrade (full values)"; }
k -n "$ns" get servicemonitor/taxiway-full poddisruptionbudget/taxiway-full deployment/taxiway-full >/dev/null
k get clusterrole/taxiway >/dev/null 2>&1 && fail "the cluster-mode ClusterRole survived the switch to watchNamespace"

step "RBAC (watchNamespace): the operator's rights stop at threat-intel"
sa_user=system:serviceaccount:$ns:taxiway-operator
operator_needs threat-intel
operator_lease taxiway-full-leader
operator_never threat-intel
for v in get list watch; do
  for where in - default soc; do
    expect no "$where" "$v" secrets
    expect no "$where" "$v" taxiiservices.taxiway.dev
  done
done
expect no soc create deployments.apps
expect no - create configmaps
check_rbac

k apply -f "$helm_tests/feed.yaml" >/dev/null
if [[ -f operator/Cargo.toml ]]; then
  step "the operator, watching only threat-intel, reconciles a feed there with the Role alone"
  bash "$helm_tests/run-operator.sh" "$kube_dir" "$work" "$ns" "$release" taxiway-operator threat-intel intel
fi

step "helm uninstall keeps the CRDs and the users' resources"
k -n threat-intel apply -f - >/dev/null <<'EOF'
apiVersion: taxiway.dev/v1alpha1
kind: TaxiiCollection
metadata:
  name: users-own
spec:
  service: intel
  query: "type:indicator"
EOF
helm uninstall "$release" -n "$ns" --kubeconfig "$kube_dir/kubeconfig" >"$work/uninstall.log"
grep -q 'kept due to the resource policy' "$work/uninstall.log" \
  || { cat "$work/uninstall.log"; fail "helm uninstall did not report the kept CRDs"; }
k get crd taxiiservices.taxiway.dev taxiicollections.taxiway.dev taxiifeeds.taxiway.dev >/dev/null || fail "uninstall deleted the CRDs"
k -n threat-intel get taxiicollection/users-own taxiiservice/intel >/dev/null || fail "uninstall deleted a user's TaxiiService or TaxiiCollection"
for obj in deployment/taxiway-full serviceaccount/taxiway-operator service/taxiway-full-metrics \
    role/taxiway-full-leader-election taxiiservice/demo-feed secret/demo-feed-soc-reader; do
  k -n "$ns" get "$obj" >/dev/null 2>&1 && fail "helm uninstall left $obj"
done
k -n threat-intel get role/taxiway-full >/dev/null 2>&1 && fail "helm uninstall left the Role in threat-intel"
k get clusterrole/taxiway-full-edit >/dev/null 2>&1 && fail "helm uninstall left clusterrole/taxiway-full-edit"
[[ -z $(helm list -n "$ns" --kubeconfig "$kube_dir/kubeconfig" -q) ]] || fail "release still listed"

step "a reinstall under the same name adopts the kept CRDs"
helm install "$release" "$chart" -n "$ns" --kubeconfig "$kube_dir/kubeconfig" >"$work/reinstall.log" \
  || { cat "$work/reinstall.log"; fail "helm install after uninstall"; }
[[ $(k get crd taxiiservices.taxiway.dev -o jsonpath='{.metadata.annotations.meta\.helm\.sh/release-name}') == "$release" ]] \
  || fail "the reinstalled release does not own the CRDs"
k -n threat-intel get taxiicollection/users-own >/dev/null || fail "the reinstall lost a user's TaxiiCollection"
echo "ok: install, upgrade and uninstall behave as docs/kubernetes.md says"
