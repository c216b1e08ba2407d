{{/*
Pod template of a batch job running a stocktrack image. Call with (dict "root" $
"component" "janitor" "task" "vacuum" "name" "janitor-vacuum" "image" "janitor" "values" .Values.janitor
"args" (list "vacuum")): component is the label, name the resource suffix, image the image's component.
*/}}
{{- define "stocktrack.jobPodTemplate" -}}
{{- $root := .root -}}
{{- $ctx := dict "root" $root "component" .component -}}
metadata:
  labels:
    {{- include "stocktrack.selectorLabels" $ctx | nindent 4 }}
    stocktrack.io/task: {{ .task }}
    app.kubernetes.io/part-of: stocktrack
    stocktrack.io/data-client: "true"
    stocktrack.io/job: "true"
    {{- with $root.Values.podLabels }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
  annotations:
    {{- include "stocktrack.podAnnotations" (dict "root" $root "port" 0) | nindent 4 }}
spec:
  {{- include "stocktrack.podCommon" (dict "root" $root "values" .values) | nindent 2 }}
  restartPolicy: Never
  containers:
    - name: {{ .name }}
      image: {{ include "stocktrack.image" (dict "root" $root "component" .image) }}
      imagePullPolicy: {{ $root.Values.image.pullPolicy }}
      {{- with .command }}
      command:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with .args }}
      args:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- include "stocktrack.env" (dict "root" $root "component" .component "env" (default (dict) .values.env) "secretEnv" .values.secretEnv) | nindent 6 }}
      resources:
        {{- toYaml .values.resources | nindent 8 }}
      securityContext:
        {{- include "stocktrack.containerSecurityContext" $root | nindent 8 }}
      volumeMounts:
        {{- include "stocktrack.tmpVolumeMount" $root | nindent 8 }}
        {{- include "stocktrack.databaseCaVolumeMount" $root | nindent 8 }}
  volumes:
    {{- include "stocktrack.tmpVolume" $root | nindent 4 }}
    {{- include "stocktrack.databaseCaVolume" $root | nindent 4 }}
{{- end -}}

{{/* A CronJob that never overlaps itself; call like stocktrack.jobPodTemplate plus "schedule". */}}
{{- define "stocktrack.cronJob" -}}
apiVersion: batch/v1
kind: CronJob
metadata:
  name: {{ include "stocktrack.fullname" .root }}-{{ .name }}
  labels:
    {{- include "stocktrack.labels" (dict "root" .root "component" .component) | nindent 4 }}
    stocktrack.io/task: {{ .task }}
spec:
  schedule: {{ .schedule | quote }}
  {{- with .values.timeZone }}
  timeZone: {{ . }}
  {{- end }}
  # A run still going when the next is due is left alone rather than doubled.
  concurrencyPolicy: Forbid
  startingDeadlineSeconds: {{ .values.startingDeadlineSeconds }}
  successfulJobsHistoryLimit: {{ .values.successfulJobsHistoryLimit }}
  failedJobsHistoryLimit: {{ .values.failedJobsHistoryLimit }}
  jobTemplate:
    metadata:
      labels:
        {{- include "stocktrack.selectorLabels" (dict "root" .root "component" .component) | nindent 8 }}
        stocktrack.io/task: {{ .task }}
    spec:
      backoffLimit: {{ .values.backoffLimit }}
      activeDeadlineSeconds: {{ .values.activeDeadlineSeconds }}
      ttlSecondsAfterFinished: {{ .values.ttlSecondsAfterFinished }}
      template:
        {{- include "stocktrack.jobPodTemplate" . | nindent 8 }}
{{- end -}}
