{{/* Labels every object carries, but the instance (selector labels add it). */}}
{{- define "purelb.baseLabels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
app.kubernetes.io/part-of: purelb
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* Labels of objects that belong to no one component. */}}
{{- define "purelb.labels" -}}
{{ include "purelb.baseLabels" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{/* Selector labels of one component ("allocator" or "lbnodeagent"); never change on upgrade. */}}
{{- define "purelb.selectorLabels" -}}
app.kubernetes.io/name: {{ .component }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
{{- end -}}

{{/* All labels of one component's objects. */}}
{{- define "purelb.componentLabels" -}}
{{ include "purelb.baseLabels" .root }}
{{ include "purelb.selectorLabels" . }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{/* image reference of one component; an empty tag means the chart's appVersion. */}}
{{- define "purelb.image" -}}
{{- $img := index .root.Values .component "image" -}}
{{- printf "%s:%s" $img.repository (default .root.Chart.AppVersion $img.tag) -}}
{{- end -}}

{{/* The chart's name: nameOverride, else "purelb". */}}
{{- define "purelb.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/*
The release's full name, which every object name derives from: fullnameOverride, else the
release name if it already holds the chart's name, else "<release>-<name>". Release
"purelb": "purelb".
*/}}
{{- define "purelb.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := include "purelb.name" . -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/*
Name of one component's namespaced objects (Deployment or DaemonSet, ServiceAccount,
Role, RoleBinding; "-metrics" is added for its Service): "<fullname>-<component>", or
just "<component>" when the full name is "purelb" (the default release name), the names
chart 0.1.0 used, so such a release keeps its objects on upgrade.
*/}}
{{- define "purelb.componentName" -}}
{{- $full := include "purelb.fullname" .root -}}
{{- if eq $full "purelb" -}}
{{- .component -}}
{{- else -}}
{{- printf "%s-%s" $full .component | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{/*
Name of a cluster-scoped object (ClusterRole, ClusterRoleBinding) of one component:
"<fullname>:<component>" when the namespace is named like the full name (release
"purelb" in namespace "purelb": "purelb:allocator"), else
"<namespace>:<fullname>:<component>", so releases of one name in two namespaces differ.
Neither names nor namespaces hold ":", so the two forms never meet.
*/}}
{{- define "purelb.clusterName" -}}
{{- $full := include "purelb.fullname" .root -}}
{{- if eq $full .root.Release.Namespace -}}
{{- printf "%s:%s" $full .component -}}
{{- else -}}
{{- printf "%s:%s:%s" .root.Release.Namespace $full .component -}}
{{- end -}}
{{- end -}}

{{/* The ServiceAccount one component runs as: serviceAccount.name, else the component's name when the chart creates it, else "default". */}}
{{- define "purelb.serviceAccountName" -}}
{{- $sa := index .root.Values .component "serviceAccount" -}}
{{- if $sa.create -}}
{{- default (include "purelb.componentName" .) $sa.name -}}
{{- else -}}
{{- default "default" $sa.name -}}
{{- end -}}
{{- end -}}

{{/* The allocator's leader Lease: allocator.leaderElection.leaseName, else "<fullname>-allocator". */}}
{{- define "purelb.leaseName" -}}
{{- default (printf "%s-allocator" (include "purelb.fullname" .)) .Values.allocator.leaderElection.leaseName -}}
{{- end -}}

{{/* The gossip key Secret: lbnodeagent.memberlistSecretName, else "<fullname>-memberlist". */}}
{{- define "purelb.memberlistSecretName" -}}
{{- default (printf "%s-memberlist" (include "purelb.fullname" .)) .Values.lbnodeagent.memberlistSecretName -}}
{{- end -}}

{{/* The default LBNodeAgent object. */}}
{{- define "purelb.lbnodeagent" -}}
apiVersion: purelb.io/v1
kind: LBNodeAgent
metadata:
  name: default
  namespace: {{ .Release.Namespace }}
  labels:
    {{- include "purelb.labels" . | nindent 4 }}
spec:
  local:
    extlbint: {{ .Values.lbnodeagent.extlbint | quote }}
    localint: {{ .Values.lbnodeagent.localint | quote }}
    sendgarp: {{ .Values.lbnodeagent.sendgarp }}
    {{- /* Only when asked for: an upgrade leaves the LBNodeAgent (and the pods) as they were. */}}
    {{- if .Values.lbnodeagent.setARPSysctls }}
    setARPSysctls: true
    {{- end }}
{{- end -}}

{{/* The sample ServiceGroup object. */}}
{{- define "purelb.servicegroup" -}}
apiVersion: purelb.io/v1
kind: ServiceGroup
metadata:
  name: {{ .Values.serviceGroup.name }}
  namespace: {{ .Release.Namespace }}
  labels:
    {{- include "purelb.labels" . | nindent 4 }}
spec:
  {{- toYaml .Values.serviceGroup.spec | nindent 2 }}
{{- end -}}

{{/*
The probes of one component from its values (startupProbe, livenessProbe, readinessProbe):
the handler is fixed (GET /healthz, /readyz for readiness, on the plain-HTTP port "health"), every
other field comes from values; enabled: false leaves a probe out.
*/}}
{{- define "purelb.probes" -}}
{{- $v := index .root.Values .component -}}
{{- range $probe, $path := dict "startupProbe" "/healthz" "livenessProbe" "/healthz" "readinessProbe" "/readyz" }}
{{- $p := index $v $probe }}
{{- if $p.enabled }}
{{ $probe }}:
  httpGet:
    path: {{ $path }}
    port: health
  {{- with omit $p "enabled" }}
  {{- toYaml . | nindent 2 }}
  {{- end }}
{{- end }}
{{- end }}
{{- end -}}

{{/*
The chart's CRDs and who manages each in the cluster, as a YAML list of
{name, file, state, owner}: state "absent" (no such CRD, or no cluster: helm template),
"this release", "another release" (owner: "<namespace>/<release>"), or "unmanaged"
(created from crds/ by helm install, or by kubectl: no Helm ownership).
*/}}
{{- define "purelb.crdStates" -}}
{{- range $file, $name := dict "crds/lbnodeagent.yaml" "lbnodeagents.purelb.io" "crds/servicegroup.yaml" "servicegroups.purelb.io" }}
{{- $live := lookup "apiextensions.k8s.io/v1" "CustomResourceDefinition" "" $name }}
{{- $release := dig "metadata" "annotations" "meta.helm.sh/release-name" "" $live }}
{{- $namespace := dig "metadata" "annotations" "meta.helm.sh/release-namespace" "" $live }}
{{- $helm := eq (dig "metadata" "labels" "app.kubernetes.io/managed-by" "" $live) "Helm" }}
{{- $state := "unmanaged" }}
{{- if not $live }}
{{- $state = "absent" }}
{{- else if and $helm (eq $release $.Release.Name) (eq $namespace $.Release.Namespace) }}
{{- $state = "this release" }}
{{- else if and $helm $release }}
{{- $state = "another release" }}
{{- end }}
- name: {{ $name }}
  file: {{ $file }}
  state: {{ $state }}
  owner: {{ printf "%s/%s" $namespace $release | quote }}
{{- end }}
{{- end -}}

{{/*
What the ServiceMonitor's and the PodMonitor's endpoint share, from their values:
interval, scrapeTimeout, relabelings (after the chart's own: the pod's node as label
"node", which the alerts name) and metricRelabelings.
*/}}
{{- define "purelb.scrapeSettings" -}}
interval: {{ .interval }}
scrapeTimeout: {{ .scrapeTimeout }}
relabelings:
  - sourceLabels: [__meta_kubernetes_pod_node_name]
    targetLabel: node
    action: replace
  {{- with .relabelings }}
  {{- toYaml . | nindent 2 }}
  {{- end }}
{{- with .metricRelabelings }}
metricRelabelings:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end -}}

{{/*
The metrics and probe settings of one component, as container env entries: /metrics on
metricsPort (HTTPS with token checks when metrics.secure), probes on healthPort (plain).
*/}}
{{- define "purelb.metricsEnv" -}}
{{- $v := index .root.Values .component -}}
- name: PURELB_METRICS_HOST
  value: "0.0.0.0"
- name: PURELB_METRICS_PORT
  value: {{ $v.metricsPort | quote }}
- name: PURELB_HEALTH_PORT
  value: {{ $v.healthPort | quote }}
- name: PURELB_METRICS_SECURE
  value: {{ .root.Values.metrics.secure | quote }}
{{- if and .root.Values.metrics.secure .root.Values.metrics.certSecret }}
- name: PURELB_METRICS_CERT_FILE
  value: /etc/purelb/metrics-tls/tls.crt
- name: PURELB_METRICS_KEY_FILE
  value: /etc/purelb/metrics-tls/tls.key
{{- end }}
{{- end -}}

{{/*
How a monitor scrapes a secure endpoint: HTTPS, a bearer token (Prometheus' own service
account token file, or a Secret's key), and TLS settings (default: skip verification of
the self-signed certificate). Takes the monitor's values and "pod" (PodMonitors read no files).
*/}}
{{- define "purelb.scrapeAuth" -}}
{{- $m := .root.Values.metrics -}}
{{- if $m.secure }}
scheme: https
{{- if $m.tokenSecret.name }}
authorization:
  type: Bearer
  credentials:
    name: {{ $m.tokenSecret.name }}
    key: {{ $m.tokenSecret.key }}
{{- else }}
bearerTokenFile: /var/run/secrets/kubernetes.io/serviceaccount/token
{{- end }}
tlsConfig:
  {{- if $m.tlsConfig }}
  {{- toYaml $m.tlsConfig | nindent 2 }}
  {{- else }}
  insecureSkipVerify: true
  {{- end }}
{{- end }}
{{- end -}}
