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

{{/* Name of a cluster-scoped object of one component: "<release>:<component>". */}}
{{- define "purelb.clusterName" -}}
{{- printf "%s:%s" .root.Release.Name .component -}}
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

{{/* Container securityContext shared by both apps: nothing beyond what is added. */}}
{{- define "purelb.containerSecurity" -}}
allowPrivilegeEscalation: false
privileged: false
readOnlyRootFilesystem: true
seccompProfile:
  type: RuntimeDefault
{{- end -}}
