{{/*
The app name. Fixed: the EKS Fargate profile of the operator's namespace selects the pod
label app.kubernetes.io/name=snowflake-processor, and the operator labels its Jobs with it.
*/}}
{{- define "snowflake-processor.name" -}}
snowflake-processor
{{- end -}}

{{/*
Base name of the release's objects: "snowflake-processor" for a release of that name,
"<release>-snowflake-processor" otherwise (at most 63 characters).
*/}}
{{- define "snowflake-processor.fullname" -}}
{{- $name := include "snowflake-processor.name" . -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{/* Name of the operator's Deployment, ClusterRole/Role and bindings. */}}
{{- define "snowflake-processor.operatorName" -}}
{{- printf "%s-operator" (include "snowflake-processor.fullname" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Labels on every object of the chart. */}}
{{- define "snowflake-processor.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
app.kubernetes.io/name: {{ include "snowflake-processor.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: snowflake-processor
{{- end -}}

{{/* The operator pod's selector labels: the Deployment and the metrics Service use them. */}}
{{- define "snowflake-processor.operatorSelectorLabels" -}}
app.kubernetes.io/name: {{ include "snowflake-processor.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: operator
{{- end -}}

{{/* repository:tag (tag defaults to appVersion) or repository@digest. */}}
{{- define "snowflake-processor.image" -}}
{{- $image := index . 0 -}}
{{- $root := index . 1 -}}
{{- if $image.digest -}}
{{- printf "%s@%s" $image.repository $image.digest -}}
{{- else -}}
{{- printf "%s:%s" $image.repository (default $root.Chart.AppVersion $image.tag) -}}
{{- end -}}
{{- end -}}

{{- define "snowflake-processor.operatorImage" -}}
{{- include "snowflake-processor.image" (list .Values.operator.image .) -}}
{{- end -}}

{{- define "snowflake-processor.workerImage" -}}
{{- include "snowflake-processor.image" (list .Values.worker.image .) -}}
{{- end -}}

{{/* true when the operator runs as kopf peers rather than --standalone. */}}
{{- define "snowflake-processor.peering" -}}
{{- if gt (int .Values.replicaCount) 1 -}}true{{- end -}}
{{- end -}}

{{/* ServiceAccount annotations: the IRSA role (when set), then the extra ones. */}}
{{- define "snowflake-processor.serviceAccountAnnotations" -}}
{{- $annotations := dict -}}
{{- if .roleArn -}}
{{- $_ := set $annotations "eks.amazonaws.com/role-arn" .roleArn -}}
{{- end -}}
{{- $annotations = merge $annotations (.annotations | default dict) -}}
{{- if $annotations -}}
annotations:
  {{- toYaml $annotations | nindent 2 }}
{{- end -}}
{{- end -}}

{{/* The namespaces the operator watches with rbac.scope namespace, as a JSON list:
watchNamespaces, or jobs.namespace alone. */}}
{{- define "snowflake-processor.watchNamespaces" -}}
{{- if .Values.watchNamespaces -}}
{{- .Values.watchNamespaces | uniq | toJson -}}
{{- else -}}
{{- list .Values.jobs.namespace | toJson -}}
{{- end -}}
{{- end -}}
