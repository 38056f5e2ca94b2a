{{/*
The operator container's own variables. deployment.yaml leaves out any that
extraEnv names again: a name twice in one env list is refused by server-side
apply (Argo CD, helm 4) and collapsed by strategic-merge upgrades.
*/}}
{{- define "uso.operatorEnv" -}}
# The pod's name is its identity in the Lease; the Lease lives in its namespace.
- name: POD_NAME
  valueFrom: {fieldRef: {fieldPath: metadata.name}}
- name: POD_NAMESPACE
  valueFrom: {fieldRef: {fieldPath: metadata.namespace}}
{{- if .Values.fastWake.enabled }}
# The leader writes this address as the push Service's only endpoint.
- name: POD_IP
  valueFrom: {fieldRef: {fieldPath: status.podIP}}
{{- end }}
- name: USERSESSION_LEADER_ELECTION
  value: {{ ternary "on" "off" .Values.leaderElection.enabled | quote }}
{{- if .Values.leaderElection.enabled }}
- name: USERSESSION_LEADER_ELECTION_LEASE
  value: {{ include "uso.leaseName" . | quote }}
{{- with .Values.leaderElection }}
{{- if not (and (lt (float64 .renewPeriodSeconds) (float64 .renewDeadlineSeconds)) (lt (float64 .renewDeadlineSeconds) (float64 .leaseDurationSeconds))) }}
{{- fail "leaderElection: renewPeriodSeconds < renewDeadlineSeconds < leaseDurationSeconds, or two operators could act at once" }}
{{- end }}
- {name: USERSESSION_LEADER_ELECTION_LEASE_SECONDS, value: {{ .leaseDurationSeconds | quote }}}
- {name: USERSESSION_LEADER_ELECTION_RENEW_EVERY_SECONDS, value: {{ .renewPeriodSeconds | quote }}}
- {name: USERSESSION_LEADER_ELECTION_RENEW_DEADLINE_SECONDS, value: {{ .renewDeadlineSeconds | quote }}}
{{- end }}
{{- end }}
- name: USERSESSION_NAMESPACES
  value: {{ join "," .Values.watchNamespaces | quote }}
- name: USERSESSION_REDIS_ADDRESS
  value: {{ .Values.redis.address | quote }}
- name: USERSESSION_REDIS_DATABASE
  value: {{ .Values.redis.database | quote }}
- name: USERSESSION_REDIS_SECRET_NAME
  value: {{ .Values.redis.secretName | quote }}
- name: USERSESSION_REDIS_SECRET_KEY
  value: {{ .Values.redis.secretKey | quote }}
{{- include "uso.redisAuthEnv" (dict "prefix" "USERSESSION_" "redis" .Values.redis) }}
# What the operator may use: its memory limit in bytes (it exports it
# beside its RSS) and the session count that limit was sized for.
- name: USERSESSION_MEMORY_LIMIT
  valueFrom: {resourceFieldRef: {containerName: operator, resource: limits.memory}}
- name: USERSESSION_CAPACITY
  value: {{ .Values.capacity | quote }}
- name: USERSESSION_POLL_INTERVAL
  value: {{ .Values.pollIntervalSeconds | quote }}
- name: USERSESSION_CLEANUP_TIMEOUT
  value: {{ .Values.cleanupTimeoutSeconds | quote }}
- name: USERSESSION_LOG_LEVEL
  value: {{ .Values.logLevel | quote }}
- name: USERSESSION_LOG_FORMAT
  value: {{ .Values.logFormat | quote }}
- name: USERSESSION_LISTEN_HOST
  value: "0.0.0.0"
- name: USERSESSION_LIVENESS_PORT
  value: {{ .Values.livenessPort | quote }}
- name: USERSESSION_METRICS_PORT
  value: {{ .Values.metrics.port | quote }}
{{- if .Values.fastWake.enabled }}
- name: USERSESSION_PUSH_PORT
  value: {{ .Values.fastWake.port | quote }}
- name: USERSESSION_PUSH_ADDRESS
  value: "{{ include "uso.pushServiceName" . }}.{{ .Release.Namespace }}.svc:{{ .Values.fastWake.port }}"
- name: USERSESSION_PUSH_ENDPOINTS_SERVICE
  value: {{ include "uso.pushServiceName" . | quote }}
{{- if .Values.fastWake.tls.secretName }}
- name: USERSESSION_PUSH_TLS_DIR
  value: /etc/usersession-operator/push-tls
{{- end }}
{{- end }}
{{- with .Values.sessionWorkloadDefaults }}
# spec.workload fields every session gets unless it sets its own.
- name: USERSESSION_WORKLOAD_DEFAULTS
  value: {{ toJson . | quote }}
{{- end }}
{{- end }}
