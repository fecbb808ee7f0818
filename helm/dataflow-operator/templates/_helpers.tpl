{{/* Chart name, overridable with nameOverride. */}}
{{- define "dataflow-operator.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Full name of the release's objects. A release whose name already contains the chart name is not
prefixed twice (`dataflow-operator`, not `dataflow-operator-dataflow-operator`).
*/}}
{{- define "dataflow-operator.fullname" -}}
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

{{- define "dataflow-operator.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "dataflow-operator.labels" -}}
helm.sh/chart: {{ include "dataflow-operator.chart" . }}
{{ include "dataflow-operator.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/* Selector labels: stable across upgrades (a Deployment's selector is immutable). */}}
{{- define "dataflow-operator.selectorLabels" -}}
app.kubernetes.io/name: {{ include "dataflow-operator.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "dataflow-operator.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "dataflow-operator.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "dataflow-operator.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

{{/*
Seconds in a one-unit Prometheus duration (the schema allows only ms, s, m and h), used to check
that the aggregation deadline fits inside the scrape timeout.
*/}}
{{- define "dataflow-operator.durationSeconds" -}}
{{- $d := . | toString }}
{{- if hasSuffix "ms" $d }}
{{- divf (trimSuffix "ms" $d | float64) 1000 }}
{{- else if hasSuffix "s" $d }}
{{- trimSuffix "s" $d | float64 }}
{{- else if hasSuffix "m" $d }}
{{- mulf (trimSuffix "m" $d | float64) 60 }}
{{- else }}
{{- mulf (trimSuffix "h" $d | float64) 3600 }}
{{- end }}
{{- end }}

{{/* The webhook's Service, its TLS Secret and its DNS names (the serving certificate's SANs). */}}
{{- define "dataflow-operator.webhookService" -}}
{{- printf "%s-webhook" (include "dataflow-operator.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "dataflow-operator.webhookSecret" -}}
{{- printf "%s-webhook-tls" (include "dataflow-operator.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}
