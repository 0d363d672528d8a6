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

{{/* repository:tag (tag defaults to appVersion) or repository@digest. No image is
published for the chart, so an empty repository stops the install with what to set
(a bare name would be pulled from Docker Hub and fail as ImagePullBackOff). */}}
{{- define "snowflake-processor.image" -}}
{{- $image := index . 0 -}}
{{- $root := index . 1 -}}
{{- $name := index . 2 -}}
{{- $repository := required (printf "%s.image.repository is not set: give the registry path you pushed the %s image to, e.g. 123456789012.dkr.ecr.us-east-1.amazonaws.com/snowflake-processor-%s (terraform output -raw helm_values sets it; docs/images.md)" $name $name $name) $image.repository -}}
{{- if $image.digest -}}
{{- printf "%s@%s" $repository $image.digest -}}
{{- else -}}
{{- printf "%s:%s" $repository (default $root.Chart.AppVersion $image.tag) -}}
{{- end -}}
{{- end -}}

{{- define "snowflake-processor.operatorImage" -}}
{{- include "snowflake-processor.image" (list .Values.operator.image . "operator") -}}
{{- end -}}

{{- define "snowflake-processor.workerImage" -}}
{{- include "snowflake-processor.image" (list .Values.worker.image . "worker") -}}
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

{{/* The operator's settings (SFP_OPERATOR_*, operator/snowflake_operator/spec/operator_settings.py) and
operator.extraEnv: the same for the operator Deployment and, in CronJob mode, every run. */}}
{{- define "snowflake-processor.settingsEnv" -}}
- name: SFP_OPERATOR_WORKER_IMAGE
  value: {{ include "snowflake-processor.workerImage" . | quote }}
- name: SFP_OPERATOR_MAX_BACKOFF_SECONDS
  value: {{ .Values.operator.config.maxBackoffSeconds | quote }}
- name: SFP_OPERATOR_EVENT_REPEAT_SECONDS
  value: {{ .Values.operator.config.eventRepeatSeconds | quote }}
- name: SFP_OPERATOR_CERTIFICATES_RECHECK_SECONDS
  value: {{ .Values.operator.config.certificatesRecheckSeconds | quote }}
- name: SFP_OPERATOR_STATUS_HEARTBEAT_SECONDS
  value: {{ .Values.operator.config.statusHeartbeatSeconds | quote }}
- name: SFP_OPERATOR_LIVENESS_SECONDS
  value: {{ .Values.operator.config.livenessSeconds | quote }}
# What a processor may reference (docs/security.md); JSON lists.
- name: SFP_OPERATOR_ALLOWED_IMAGES
  value: {{ .Values.allowed.images | toJson | quote }}
- name: SFP_OPERATOR_ALLOWED_SERVICE_ACCOUNTS
  value: {{ prepend .Values.allowed.serviceAccounts (regexQuoteMeta .Values.worker.serviceAccount.name) | uniq | toJson | quote }}
- name: SFP_OPERATOR_ALLOWED_SECRETS
  value: {{ .Values.allowed.secrets | toJson | quote }}
- name: SFP_OPERATOR_ALLOWED_ENV
  value: {{ .Values.allowed.env | toJson | quote }}
- name: SFP_OPERATOR_ALLOWED_VOLUME_TYPES
  value: {{ .Values.allowed.volumeTypes | toJson | quote }}
{{- with .Values.operator.config.s3EndpointUrl }}
# Tests and S3 emulators only (values.yaml).
- name: SFP_OPERATOR_S3_ENDPOINT_URL
  value: {{ . | quote }}
{{- end }}
{{- with .Values.operator.extraEnv }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* The pod's name (the Jobs it launches record it) and HOME on the writable /tmp. */}}
{{- define "snowflake-processor.podEnv" -}}
- name: POD_ID
  valueFrom:
    fieldRef:
      fieldPath: metadata.name
# The root file system is read-only; /tmp is an emptyDir.
- name: HOME
  value: /tmp
{{- end -}}

{{/* Pod and container security of the operator and of the CronJob runs: the numeric
non-root user of the image, read-only root, no capabilities (Pod Security "restricted"). */}}
{{- define "snowflake-processor.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: 10001
runAsGroup: 10001
fsGroup: 10001
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{- define "snowflake-processor.containerSecurityContext" -}}
allowPrivilegeEscalation: false
privileged: false
readOnlyRootFilesystem: true
runAsNonRoot: true
runAsUser: 10001
runAsGroup: 10001
capabilities:
  drop:
    - ALL
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{/* CronJob mode: each processor once, and each table once (the operator refuses a second
resource on a table; here the install fails instead). Unquoted Snowflake identifiers are
compared upper-cased, as Snowflake resolves them. */}}
{{- define "snowflake-processor.checkProcessors" -}}
{{- $names := dict -}}
{{- $tables := dict -}}
{{- range $processor := .Values.cronjob.processors -}}
{{- if hasKey $names $processor.name -}}
{{- fail (printf "cronjob.processors: %s is listed twice" $processor.name) -}}
{{- end -}}
{{- $_ := set $names $processor.name true -}}
{{- $parts := list (lower (toString (dig "snowflake" "account" "" $processor.spec))) -}}
{{- range $field := list "database" "schema" "table" -}}
{{- $part := toString (dig "snowflake" $field "" $processor.spec) -}}
{{- $parts = append $parts (ternary $part (upper $part) (hasPrefix "\"" $part)) -}}
{{- end -}}
{{- $table := join "." $parts -}}
{{- if hasKey $tables $table -}}
{{- fail (printf "cronjob.processors: %s and %s name the same table %s: one processor per table" (get $tables $table) $processor.name $table) -}}
{{- end -}}
{{- $_ := set $tables $table $processor.name -}}
{{- end -}}
{{- end -}}
