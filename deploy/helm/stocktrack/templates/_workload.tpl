{{/*
One long-running stocktrack service: a Deployment, or a StatefulSet for the recommender and alerts whose
replicas own fixed shards by ordinal. Call with (dict "root" $ "component" "writer").
*/}}
{{- define "stocktrack.workload" -}}
{{- $root := .root -}}
{{- $component := .component -}}
{{- $values := index $root.Values $component -}}
{{- $http := include "stocktrack.isHttp" $component -}}
{{- $port := ternary $root.Values.config.httpPort $root.Values.config.metricsPort (eq $http "true") -}}
{{- $portName := ternary "http" "metrics" (eq $http "true") -}}
{{- $stateful := has $component (list "recommender" "alerts") -}}
{{- $ctx := dict "root" $root "component" $component -}}
apiVersion: apps/v1
kind: {{ ternary "StatefulSet" "Deployment" $stateful }}
metadata:
  name: {{ include "stocktrack.fullname" $root }}-{{ $component }}
  labels:
    {{- include "stocktrack.labels" $ctx | nindent 4 }}
spec:
  {{- if not (and (hasKey $values "autoscaling") $values.autoscaling.enabled) }}
  replicas: {{ $values.replicas }}
  {{- end }}
  revisionHistoryLimit: 5
  selector:
    matchLabels:
      {{- include "stocktrack.selectorLabels" $ctx | nindent 6 }}
  {{- if $stateful }}
  serviceName: {{ include "stocktrack.fullname" $root }}-{{ $component }}
  # Replicas own disjoint shard sets, so they may start together.
  podManagementPolicy: Parallel
  updateStrategy:
    type: RollingUpdate
  {{- else if eq $component "fetcher" }}
  # Never two fetchers at once: both would publish every tick.
  strategy:
    type: Recreate
  {{- else }}
  strategy:
    type: RollingUpdate
    rollingUpdate: {maxUnavailable: 0, maxSurge: 1}
  {{- end }}
  template:
    metadata:
      labels:
        {{- include "stocktrack.selectorLabels" $ctx | nindent 8 }}
        app.kubernetes.io/part-of: stocktrack
        stocktrack.io/data-client: "true"
        {{- with $root.Values.podLabels }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
      annotations:
        {{- include "stocktrack.podAnnotations" (dict "root" $root "port" $port) | nindent 8 }}
    spec:
      {{- include "stocktrack.podCommon" (dict "root" $root "values" $values) | nindent 6 }}
      terminationGracePeriodSeconds: {{ $values.terminationGracePeriodSeconds }}
      {{- if and $root.Values.topologySpreadConstraints (gt (int $values.replicas) 1) }}
      topologySpreadConstraints:
        - maxSkew: 1
          topologyKey: topology.kubernetes.io/zone
          whenUnsatisfiable: ScheduleAnyway
          labelSelector:
            matchLabels:
              {{- include "stocktrack.selectorLabels" $ctx | nindent 14 }}
        - maxSkew: 1
          topologyKey: kubernetes.io/hostname
          whenUnsatisfiable: ScheduleAnyway
          labelSelector:
            matchLabels:
              {{- include "stocktrack.selectorLabels" $ctx | nindent 14 }}
      {{- end }}
      containers:
        - name: {{ $component }}
          image: {{ include "stocktrack.image" $ctx }}
          imagePullPolicy: {{ $root.Values.image.pullPolicy }}
          {{- $env := $values.env }}
          {{- if $stateful }}
          {{- $env = merge (dict "REPLICA_COUNT" $values.replicas) $values.env }}
          {{- end }}
          {{- include "stocktrack.env" (dict "root" $root "component" $component "env" $env "secretEnv" $values.secretEnv) | nindent 10 }}
          {{- if $stateful }}
            # The StatefulSet ordinal decides which shards this replica owns.
            - name: REPLICA_INDEX
              valueFrom:
                fieldRef: {fieldPath: "metadata.labels['apps.kubernetes.io/pod-index']"}
          {{- end }}
          {{- if and (eq $http "true") $values.preStopSleepSeconds }}
          # The load balancer keeps sending new requests for a few seconds after the pod is
          # marked terminating; serving through this pause (before SIGTERM) avoids 502s.
          lifecycle:
            preStop:
              exec:
                command: ["sleep", "{{ $values.preStopSleepSeconds }}"]
          {{- end }}
          ports:
            - name: {{ $portName }}
              containerPort: {{ $port }}
              protocol: TCP
          startupProbe:
            httpGet: {path: /healthz, port: {{ $portName }}}
            periodSeconds: 5
            failureThreshold: 24
          livenessProbe:
            httpGet: {path: /healthz, port: {{ $portName }}}
            periodSeconds: 15
            timeoutSeconds: 3
            failureThreshold: 4
          readinessProbe:
            httpGet: {path: /readyz, port: {{ $portName }}}
            periodSeconds: 10
            timeoutSeconds: 3
            failureThreshold: 3
          resources:
            {{- toYaml $values.resources | nindent 12 }}
          securityContext:
            {{- include "stocktrack.containerSecurityContext" $root | nindent 12 }}
          volumeMounts:
            {{- include "stocktrack.tmpVolumeMount" $root | nindent 12 }}
            {{- include "stocktrack.databaseCaVolumeMount" $root | nindent 12 }}
      volumes:
        {{- include "stocktrack.tmpVolume" $root | nindent 8 }}
        {{- include "stocktrack.databaseCaVolume" $root | nindent 8 }}
{{- end -}}
