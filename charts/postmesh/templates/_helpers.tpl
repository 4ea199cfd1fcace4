{{/*
Names, labels and shared pieces. A "component" is one of the five services of DESIGN.md §1; its
values live under the camelCase key and its objects are named <fullname>-<kebab-name>.
*/}}

{{- define "postmesh.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "postmesh.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 40 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 40 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 40 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/*
values key -> workload name, in one place. With imap.mode "owner" (ADR 0010) the storage workload
runs storage-imap and the `imap` values configure the IMAP front door, imap-proxy.
*/}}
{{- define "postmesh.components" -}}
smtpInbound: smtp-inbound
storage: storage
{{- if eq .Values.imap.mode "owner" }}
imap: imap-proxy
{{- else }}
imap: imap
{{- end }}
mtaDelivery: mta-delivery
admin: admin
{{- end }}

{{/* The internal identities (certificate + NATS user), one per service of DESIGN.md §1, whatever the shape. */}}
{{- define "postmesh.identities" -}}
{{- list "admin" "imap" "mta-delivery" "smtp-inbound" "storage" | toJson }}
{{- end }}

{{/* The identities a workload runs with: imap-proxy is `imap`; storage-imap is storage and imap. */}}
{{- define "postmesh.workloadIdentities" -}}
{{- if eq .component "imap-proxy" }}
{{- list "imap" | toJson }}
{{- else if and (eq .component "storage") (eq .root.Values.imap.mode "owner") }}
{{- list "storage" "imap" | toJson }}
{{- else }}
{{- list .component | toJson }}
{{- end }}
{{- end }}

{{/* What the container runs (the image's entry script argument). */}}
{{- define "postmesh.entry" -}}
{{- if and (eq .component "storage") (eq .root.Values.imap.mode "owner") }}
{{- "storage-imap" }}
{{- else }}
{{- .component }}
{{- end }}
{{- end }}

{{- define "postmesh.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/name: {{ include "postmesh.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: postmesh
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* dict "root" $ "component" "storage" */}}
{{- define "postmesh.selectorLabels" -}}
app.kubernetes.io/name: {{ include "postmesh.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{- define "postmesh.componentLabels" -}}
{{ include "postmesh.labels" .root }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{- define "postmesh.serviceAccountName" -}}
{{- $v := index .root.Values .key }}
{{- if $v.serviceAccount.create }}
{{- default (printf "%s-%s" (include "postmesh.fullname" .root) .component) $v.serviceAccount.name }}
{{- else }}
{{- default "default" $v.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "postmesh.image" -}}
{{- $tag := default .Chart.AppVersion .Values.image.tag }}
{{- if eq $tag "latest" }}
{{- fail "image.tag \"latest\" is not allowed: pin a version so every replica runs the same code" }}
{{- end }}
{{- $repository := .Values.image.repository }}
{{- with .Values.global.imageRegistry }}
{{- /* A registry replaces the repository's own host (its first path segment when that names a host). */}}
{{- $parts := splitList "/" $repository }}
{{- if and (gt (len $parts) 1) (or (contains "." (first $parts)) (contains ":" (first $parts)) (eq (first $parts) "localhost")) }}
{{- $repository = join "/" (rest $parts) }}
{{- end }}
{{- $repository = printf "%s/%s" (trimSuffix "/" .) $repository }}
{{- end }}
{{- if .Values.image.digest }}
{{- printf "%s:%s@%s" $repository $tag .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" $repository $tag }}
{{- end }}
{{- end }}

{{/* Grace period: preStop sleep + drain budget + margin, or the operator's value if it is longer. */}}
{{- define "postmesh.terminationGracePeriodSeconds" -}}
{{- $v := index .root.Values .key }}
{{- $drain := div (add $v.shutdownTimeoutMs 999) 1000 }}
{{- $needed := add $v.preStopSleepSeconds $drain }}
{{- if kindIs "invalid" $v.terminationGracePeriodSeconds }}
{{- add $needed 10 }}
{{- else }}
{{- if le (int $v.terminationGracePeriodSeconds) (int $needed) }}
{{- fail (printf "%s.terminationGracePeriodSeconds (%d) must exceed preStopSleepSeconds + shutdownTimeoutMs/1000 (%d), or the kubelet kills sessions mid-drain" .key (int $v.terminationGracePeriodSeconds) (int $needed)) }}
{{- end }}
{{- $v.terminationGracePeriodSeconds }}
{{- end }}
{{- end }}

{{- define "postmesh.storageGrpcAddress" -}}
{{- printf "%s-storage:%d" (include "postmesh.fullname" .) (int .Values.storage.grpcPort) }}
{{- end }}

{{- define "postmesh.kekSecretName" -}}
{{- default (printf "%s-kek" (include "postmesh.fullname" .)) .Values.keyEncryption.existingSecret }}
{{- end }}

{{- define "postmesh.ownerSecretName" -}}
{{- default (printf "%s-owner" (include "postmesh.fullname" .)) .Values.owner.existingSecret }}
{{- end }}

{{- define "postmesh.mongodbSecretName" -}}
{{- default (printf "%s-mongodb" (include "postmesh.fullname" .)) .Values.mongodb.existingSecret }}
{{- end }}

{{- define "postmesh.relaySecretName" -}}
{{- default (printf "%s-relay" (include "postmesh.fullname" .)) .Values.mtaDelivery.relay.existingSecret }}
{{- end }}

{{- define "postmesh.tlsSecretName" -}}
{{- if eq .Values.tls.mode "secret" }}
{{- required "tls.existingSecret is required when tls.mode is \"secret\"" .Values.tls.existingSecret }}
{{- else }}
{{- printf "%s-tls" (include "postmesh.fullname" .) }}
{{- end }}
{{- end }}

{{- define "postmesh.kedaNatsEndpoint" -}}
{{- if .Values.keda.natsMonitoringEndpoint }}
{{- .Values.keda.natsMonitoringEndpoint }}
{{- else }}
{{- (urlParse .Values.nats.monitorUrl).host }}
{{- end }}
{{- end }}

{{/* The hardened container securityContext every container gets (checked by tools/chart-check). */}}
{{- define "postmesh.containerSecurityContext" -}}
runAsNonRoot: true
{{- with .Values.securityContext.runAsUser }}
runAsUser: {{ . }}
{{- end }}
{{- with .Values.securityContext.runAsGroup }}
runAsGroup: {{ . }}
{{- end }}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
privileged: false
capabilities:
  drop: ["ALL"]
seccompProfile:
  type: RuntimeDefault
{{- end }}

{{- define "postmesh.podSecurityContext" -}}
runAsNonRoot: true
{{- with .Values.securityContext.runAsUser }}
runAsUser: {{ . }}
{{- end }}
{{- with .Values.securityContext.runAsGroup }}
runAsGroup: {{ . }}
{{- end }}
{{- with .Values.securityContext.fsGroup }}
fsGroup: {{ . }}
{{- end }}
seccompProfile:
  type: RuntimeDefault
{{- end }}

{{/* DESIGN.md §2: three copies of every stream unless the operator accepts weaker durability. */}}
{{- define "postmesh.streamReplicas" -}}
{{- $replicas := int .Values.nats.streamReplicas }}
{{- if and (lt $replicas 3) (not .Values.allowWeakDurability) }}
{{- fail (printf "nats.streamReplicas is %d: fewer than 3 copies lose acknowledged mail with one NATS volume; set allowWeakDurability: true to accept that (a single-node NATS)" $replicas) }}
{{- end }}
{{- $replicas }}
{{- end }}

{{/* The CA bundle volume source, or nothing when no bundle is configured. */}}
{{- define "postmesh.caBundleSource" -}}
{{- if .Values.caBundle.configMap }}
configMap:
  name: {{ .Values.caBundle.configMap }}
{{- else if .Values.caBundle.secret }}
secret:
  secretName: {{ .Values.caBundle.secret }}
{{- end }}
{{- end }}
