{{- define "uso.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "uso.labels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "uso.selectorLabels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: operator
{{- end -}}

{{- define "uso.serviceAccountName" -}}
{{- default (include "uso.fullname" .) .Values.serviceAccount.name -}}
{{- end -}}

{{- /* A digest pins the image whatever the tag says; the tag stays for readers. */ -}}
{{- define "uso.image" -}}
{{- $ref := printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- if .Values.image.digest -}}{{- $ref = printf "%s@%s" $ref .Values.image.digest -}}{{- end -}}
{{- $ref -}}
{{- end -}}

{{- /* The Secrets holding Redis credentials that the operator and the session API may
read: the password's, and the ACL username's and TLS material's when configured. */ -}}
{{- define "uso.redisSecretNames" -}}
{{- $r := .Values.redis -}}
{{- $names := list $r.secretName -}}
{{- with $r.usernameSecretName }}{{ $names = append $names . }}{{ end -}}
{{- if $r.tls.enabled -}}
{{- with $r.tls.caSecretName }}{{ $names = append $names . }}{{ end -}}
{{- with $r.tls.clientSecretName }}{{ $names = append $names . }}{{ end -}}
{{- end -}}
{{- $names = concat $names $r.sessionSecretNames -}}
{{- $names | uniq | toJson -}}
{{- end -}}

{{- /* The ConfigMaps (CA bundles) they may read; "[]" when none. */ -}}
{{- define "uso.redisConfigMapNames" -}}
{{- $r := .Values.redis -}}
{{- $names := list -}}
{{- if $r.tls.enabled -}}
{{- with $r.tls.caConfigMapName }}{{ $names = append $names . }}{{ end -}}
{{- end -}}
{{- $names = concat $names $r.sessionConfigMapNames -}}
{{- $names | uniq | toJson -}}
{{- end -}}

{{- /* The ACL user and TLS defaults, as env entries under a prefix (USERSESSION_ or SESSIONAPI_). */ -}}
{{- define "uso.redisAuthEnv" -}}
{{- $p := .prefix -}}
{{- $r := .redis -}}
{{- if and $r.tls.caSecretName $r.tls.caConfigMapName -}}
{{- fail "redis.tls: set caSecretName or caConfigMapName, not both" -}}
{{- end -}}
{{- with $r.usernameSecretName }}
- {name: {{ $p }}REDIS_USERNAME_SECRET_NAME, value: {{ . | quote }}}
- {name: {{ $p }}REDIS_USERNAME_SECRET_KEY, value: {{ $r.usernameSecretKey | quote }}}
{{- end }}
{{- if $r.tls.enabled }}
- {name: {{ $p }}REDIS_TLS, value: "true"}
{{- with $r.tls.caSecretName }}
- {name: {{ $p }}REDIS_TLS_CA_SECRET_NAME, value: {{ . | quote }}}
{{- end }}
{{- with $r.tls.caConfigMapName }}
- {name: {{ $p }}REDIS_TLS_CA_CONFIGMAP_NAME, value: {{ . | quote }}}
{{- end }}
- {name: {{ $p }}REDIS_TLS_CA_KEY, value: {{ $r.tls.caKey | quote }}}
{{- with $r.tls.clientSecretName }}
- {name: {{ $p }}REDIS_TLS_CLIENT_SECRET_NAME, value: {{ . | quote }}}
{{- end }}
{{- with $r.tls.serverName }}
- {name: {{ $p }}REDIS_TLS_SERVER_NAME, value: {{ . | quote }}}
{{- end }}
{{- end }}
{{- end -}}

{{- /* The leader election's Lease, in the release namespace. */ -}}
{{- define "uso.leaseName" -}}
{{- .Values.leaderElection.leaseName | default (include "uso.fullname" .) -}}
{{- end -}}

{{- /* The fast-wake Service KEDA dials, and the EndpointSlice the leader writes for it. */ -}}
{{- define "uso.pushServiceName" -}}
{{- printf "%s-push" (include "uso.fullname" .) -}}
{{- end -}}
