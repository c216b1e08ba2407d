{{/* Names, labels and the pod/container pieces every stocktrack workload shares. */}}

{{- define "stocktrack.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "stocktrack.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 40 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 40 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 40 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "stocktrack.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Selector labels; call with (dict "root" $ "component" "api"). */}}
{{- define "stocktrack.selectorLabels" -}}
app.kubernetes.io/name: {{ include "stocktrack.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "stocktrack.labels" -}}
{{ include "stocktrack.selectorLabels" . }}
app.kubernetes.io/version: {{ .root.Chart.AppVersion | quote }}
app.kubernetes.io/part-of: stocktrack
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
helm.sh/chart: {{ include "stocktrack.chart" .root }}
{{- end -}}

{{- define "stocktrack.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "stocktrack.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "stocktrack.image" -}}
{{- $img := .root.Values.image -}}
{{- $repo := printf "%s%s" $img.repositoryPrefix .component -}}
{{- if $img.registry -}}{{- $repo = printf "%s/%s" (trimSuffix "/" $img.registry) $repo -}}{{- end -}}
{{- printf "%s:%s" $repo (default .root.Chart.AppVersion $img.tag) -}}
{{- end -}}

{{/* Secret holding REDIS_URL/DATABASE_URL: the user's, or the generated one for in-cluster databases. */}}
{{- define "stocktrack.secretName" -}}
{{- if .Values.secrets.existingSecret -}}
{{- .Values.secrets.existingSecret -}}
{{- else if and .Values.redis.inCluster.enabled .Values.postgresql.inCluster.enabled -}}
{{- printf "%s-generated" (include "stocktrack.fullname" .) -}}
{{- else -}}
{{- fail "secrets.existingSecret is required unless both redis.inCluster and postgresql.inCluster are enabled" -}}
{{- end -}}
{{- end -}}

{{- define "stocktrack.redisHost" -}}{{ include "stocktrack.fullname" . }}-redis{{- end -}}
{{- define "stocktrack.postgresHost" -}}{{ include "stocktrack.fullname" . }}-postgresql{{- end -}}

{{- define "stocktrack.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: {{ .Values.securityContext.runAsUser }}
runAsGroup: {{ .Values.securityContext.runAsGroup }}
fsGroup: {{ .Values.securityContext.fsGroup }}
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{- define "stocktrack.containerSecurityContext" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
runAsNonRoot: true
privileged: false
capabilities:
  drop: [ALL]
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{/* Environment of a stocktrack container: ConfigMap, secrets, pod identity; call with (dict "root" $ "component" "writer" "env" map). */}}
{{- define "stocktrack.env" -}}
{{- $root := .root -}}
{{- $secret := include "stocktrack.secretName" $root -}}
envFrom:
  - configMapRef:
      name: {{ include "stocktrack.fullname" $root }}-config
env:
  - name: REDIS_URL
    valueFrom:
      secretKeyRef: {name: {{ $secret }}, key: {{ $root.Values.secrets.redisUrlKey }}}
  - name: DATABASE_URL
    valueFrom:
      secretKeyRef: {name: {{ $secret }}, key: {{ $root.Values.secrets.databaseUrlKey }}}
  # Stable per-pod consumer names, so a restarted pod reclaims its own pending entries.
  - name: CONSUMER_NAME
    valueFrom:
      fieldRef: {fieldPath: metadata.name}
{{- if eq .component "fetcher" }}
{{- range $root.Values.secrets.providerApiKeys }}
  - name: {{ .env }}
    valueFrom:
      secretKeyRef: {name: {{ $secret }}, key: {{ .key }}, optional: true}
{{- end }}
{{- end }}
{{- range $name, $value := .env }}
  - name: {{ $name }}
    value: {{ $value | toString | quote }}
{{- end }}
{{- end -}}

{{/* Annotations on every stocktrack pod; call with (dict "root" $ "port" 9100). */}}
{{- define "stocktrack.podAnnotations" -}}
checksum/config: {{ include (print .root.Template.BasePath "/configmap.yaml") .root | sha256sum }}
{{- if .root.Values.metrics.podAnnotations }}
{{- if .port }}
prometheus.io/scrape: "true"
prometheus.io/port: {{ .port | quote }}
prometheus.io/path: /metrics
{{- end }}
{{- end }}
{{- with .root.Values.podAnnotations }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* Pod-spec fields shared by services and jobs; call with (dict "root" $ "values" .Values.writer). */}}
{{- define "stocktrack.podCommon" -}}
serviceAccountName: {{ include "stocktrack.serviceAccountName" .root }}
automountServiceAccountToken: false
enableServiceLinks: false
securityContext:
  {{- include "stocktrack.podSecurityContext" .root | nindent 2 }}
{{- with .root.Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with (default .root.Values.nodeSelector .values.nodeSelector) }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with (default .root.Values.tolerations .values.tolerations) }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with (default .root.Values.affinity .values.affinity) }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end -}}

{{- define "stocktrack.tmpVolumeMount" -}}
- name: tmp
  mountPath: /tmp
{{- end -}}

{{- define "stocktrack.tmpVolume" -}}
- name: tmp
  emptyDir:
    sizeLimit: 256Mi
{{- end -}}

{{/* The long-running services, each a workload of its own. */}}
{{- define "stocktrack.serviceComponents" -}}
fetcher writer recommender alerts api streamer
{{- end -}}

{{/* Which components serve HTTP themselves (probes and metrics on the HTTP port). */}}
{{- define "stocktrack.isHttp" -}}
{{- if has . (list "api" "streamer") -}}true{{- end -}}
{{- end -}}
