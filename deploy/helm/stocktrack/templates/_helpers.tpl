{{/* Names, labels and the pod/container pieces every stocktrack workload shares. */}}

{{- define "stocktrack.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/*
Every object is named <fullname>-<suffix>; the longest suffix ("-janitor-prune-models", 21) on a
CronJob must fit Kubernetes' 52-character limit (its Jobs add 11 characters to 63), so fullname
is at most 31 characters. A longer one keeps 25 and adds 5 of its own hash, so two long release
names that share a prefix still get different objects.
*/}}
{{- define "stocktrack.fullname" -}}
{{- $full := "" -}}
{{- if .Values.fullnameOverride -}}
{{- $full = .Values.fullnameOverride -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- $full = ternary .Release.Name (printf "%s-%s" .Release.Name $name) (contains $name .Release.Name) -}}
{{- end -}}
{{- if gt (len $full) 31 -}}
{{- printf "%s-%s" ($full | trunc 25 | trimSuffix "-") (sha256sum $full | trunc 5) -}}
{{- else -}}
{{- $full | trimSuffix "-" -}}
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

{{/*
Where libpq finds the CA bundle that verifies the database server (sslmode=verify-full): the RDS
bundle inside the image, or a bundle mounted from the ConfigMap or Secret named in
database.caBundle. Set as PGSSLROOTCERT wherever DATABASE_URL is.
*/}}
{{- define "stocktrack.databaseCaPath" -}}
{{- $ca := .Values.database.caBundle -}}
{{- if eq $ca.source "image" -}}{{ $ca.imagePath }}{{- else -}}/etc/stocktrack/database-ca/{{ $ca.key }}{{- end -}}
{{- end -}}

{{- define "stocktrack.databaseCaVolumeMount" -}}
{{- if ne .Values.database.caBundle.source "image" }}
- name: database-ca
  mountPath: /etc/stocktrack/database-ca
  readOnly: true
{{- end }}
{{- end -}}

{{- define "stocktrack.databaseCaVolume" -}}
{{- $ca := .Values.database.caBundle -}}
{{- if eq $ca.source "configMap" }}
- name: database-ca
  configMap:
    name: {{ required "database.caBundle.name is required when source is configMap" $ca.name }}
    items: [{key: {{ $ca.key }}, path: {{ $ca.key }}}]
{{- else if eq $ca.source "secret" }}
- name: database-ca
  secret:
    secretName: {{ required "database.caBundle.name is required when source is secret" $ca.name }}
    items: [{key: {{ $ca.key }}, path: {{ $ca.key }}}]
{{- end }}
{{- end -}}

{{/*
Environment of a stocktrack container: ConfigMap, secrets, pod identity; call with
(dict "root" $ "component" "writer" "env" map "secretEnv" list). secretEnv entries map an env
name to a key of a Secret (the release's unless "secret" names another one).
*/}}
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
  - name: PGSSLROOTCERT
    value: {{ include "stocktrack.databaseCaPath" $root | quote }}
  # Stable per-pod consumer names, so a restarted pod reclaims its own pending entries.
  - name: CONSUMER_NAME
    valueFrom:
      fieldRef: {fieldPath: metadata.name}
{{- if and (eq .component "api") $root.Values.secrets.databaseReadUrlKey }}
  - name: DATABASE_READ_URL
    valueFrom:
      secretKeyRef: {name: {{ $secret }}, key: {{ $root.Values.secrets.databaseReadUrlKey }}}
{{- end }}
{{- if eq .component "fetcher" }}
{{- range $root.Values.secrets.providerApiKeys }}
  - name: {{ .env }}
    valueFrom:
      secretKeyRef: {name: {{ $secret }}, key: {{ .key }}, optional: true}
{{- end }}
{{- end }}
{{- range .secretEnv }}
  - name: {{ .env }}
    valueFrom:
      secretKeyRef: {name: {{ default $secret .secret }}, key: {{ .key }}{{ if .optional }}, optional: true{{ end }}}
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
