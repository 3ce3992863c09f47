{{/* Chart name, truncated to the 63 characters of a label value. */}}
{{- define "taxiway.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Prefix of object names: `<release>-taxiway`, or the release name if it already says taxiway. */}}
{{- define "taxiway.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "taxiway.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Labels of every object. */}}
{{- define "taxiway.labels" -}}
helm.sh/chart: {{ include "taxiway.chart" . }}
app.kubernetes.io/name: {{ include "taxiway.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: taxiway
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* Labels of the operator's objects. */}}
{{- define "taxiway.operatorLabels" -}}
{{ include "taxiway.labels" . }}
app.kubernetes.io/component: operator
{{- end }}

{{/* Selector of the operator pods; never changes across upgrades (selectors are immutable). */}}
{{- define "taxiway.selectorLabels" -}}
app.kubernetes.io/name: {{ include "taxiway.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: operator
{{- end }}

{{- define "taxiway.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "taxiway.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* `repository:tag` or `repository@digest`; the tag defaults to appVersion. */}}
{{- define "taxiway.imageRef" -}}
{{- $image := index . 0 }}
{{- $root := index . 1 }}
{{- if $image.digest }}
{{- printf "%s@%s" $image.repository $image.digest }}
{{- else }}
{{- printf "%s:%s" $image.repository (default $root.Chart.AppVersion $image.tag) }}
{{- end }}
{{- end }}

{{- define "taxiway.operatorImage" -}}
{{- include "taxiway.imageRef" (list .Values.image .) }}
{{- end }}

{{- define "taxiway.serverImage" -}}
{{- include "taxiway.imageRef" (list .Values.serverImage .) }}
{{- end }}

{{/* Whether the cluster already serves the Taxiway API (the CRDs exist). */}}
{{- define "taxiway.apiServed" -}}
{{- if and (.Capabilities.APIVersions.Has "taxiway.dev/v1alpha1/TaxiiService") (.Capabilities.APIVersions.Has "taxiway.dev/v1alpha1/TaxiiCollection") }}true{{ end }}
{{- end }}

{{/* The leader-election Lease, one per release. */}}
{{- define "taxiway.leaseName" -}}
{{- include "taxiway.fullname" . }}-leader
{{- end }}

{{/*
What the operator does in the namespaces it watches, as RBAC rules: exactly the calls
operator/src makes (watches, gets, server-side apply, status patches, the Ingress
and NetworkPolicy deletes, Events), nothing more. Shared by the ClusterRole (all namespaces) and the Role
(watchNamespace). tests/run.d/40-helm.sh checks each rule as the ServiceAccount, and
runs the operator with it.
*/}}
{{- define "taxiway.operatorRules" -}}
# Its own resources: watched and read; status written with a merge patch.
- apiGroups: ["taxiway.dev"]
  resources: ["taxiiservices", "taxiicollections", "taxiifeeds"]
  verbs: ["get", "list", "watch"]
- apiGroups: ["taxiway.dev"]
  resources: ["taxiiservices/status", "taxiicollections/status", "taxiifeeds/status"]
  verbs: ["get", "patch"]
# Rendered objects' owner references block the owner's deletion until they are gone;
# setting that needs this where OwnerReferencesPermissionEnforcement is on (OpenShift).
- apiGroups: ["taxiway.dev"]
  resources: ["taxiiservices/finalizers"]
  verbs: ["update"]
# Users' basic-auth and TLS Secrets and client-CA ConfigMaps are read and watched (and
# the Secrets a TaxiiService's userSelector selects listed by label); the
# rendered ConfigMap, the credentials Secret, the Service, the store's PVC and the
# Deployment are written with server-side apply (patch; create when new).
- apiGroups: [""]
  resources: ["secrets", "configmaps", "services", "persistentvolumeclaims"]
  verbs: ["get", "list", "watch", "create", "patch"]
- apiGroups: ["apps"]
  resources: ["deployments"]
  verbs: ["get", "list", "watch", "create", "patch"]
# The Ingress also goes away when spec.ingress does.
- apiGroups: ["networking.k8s.io"]
  resources: ["ingresses"]
  verbs: ["get", "list", "watch", "create", "patch", "delete"]
# spec.gateway: a Gateway API HTTPRoute (when the cluster serves it), watched (a route
# deleted or edited by hand is restored), deleted again when spec.gateway is removed.
- apiGroups: ["gateway.networking.k8s.io"]
  resources: ["httproutes"]
  verbs: ["get", "list", "watch", "create", "patch", "delete"]
# spec.monitoring: prometheus-operator's PodMonitor and PrometheusRule (when the
# cluster serves them), watched, deleted again when switched off.
- apiGroups: ["monitoring.coreos.com"]
  resources: ["podmonitors", "prometheusrules"]
  verbs: ["get", "list", "watch", "create", "patch", "delete"]
# spec.networkPolicy: the server pods' NetworkPolicy, watched for drift and deleted
# again when switched off.
- apiGroups: ["networking.k8s.io"]
  resources: ["networkpolicies"]
  verbs: ["get", "list", "watch", "create", "patch", "delete"]
# With several replicas on PostgreSQL: a PodDisruptionBudget, watched (a budget deleted
# or edited by hand is restored), deleted again at one replica.
- apiGroups: ["policy"]
  resources: ["poddisruptionbudgets"]
  verbs: ["get", "list", "watch", "create", "patch", "delete"]
# TaxiiFeeds' status: how their pulls go is asked of a ready server pod's admin port,
# found in the Endpoints of the service's own Service (by name).
- apiGroups: [""]
  resources: ["endpoints"]
  verbs: ["get"]
# Events about the resources it reconciles (events.k8s.io/v1, as kube's Recorder).
- apiGroups: ["events.k8s.io"]
  resources: ["events"]
  verbs: ["create", "patch"]
{{- end }}
