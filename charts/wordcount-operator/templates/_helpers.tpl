{{/* Names and labels shared by the templates. */}}

{{- define "wordcount-operator.name" -}}
{{- .Chart.Name | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "wordcount-operator.fullname" -}}
{{- if contains .Chart.Name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}

{{- define "wordcount-operator.selectorLabels" -}}
app.kubernetes.io/name: {{ include "wordcount-operator.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "wordcount-operator.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "wordcount-operator.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "wordcount-operator.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "wordcount-operator.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/*
The permissions the operator needs where it runs jobs, and no more:
read its jobs and write their status, and delete a job whose
ttlSecondsAfterFinished has passed; apply (create/patch) the children it
owns (a patch also stops a finished job's pods); read the Secret holding a
job's Redis password; list and delete pods (status, chaos); list core Events
(a failed input mount) and create Events. Children are never deleted by the
operator: garbage collection does that.
*/}}
{{- define "wordcount-operator.rules" -}}
- apiGroups: ["wordcount.dev"]
  resources: ["wordcountjobs"]
  verbs: ["get", "list", "watch", "delete"]
- apiGroups: ["wordcount.dev"]
  resources: ["wordcountjobs/status"]
  verbs: ["get", "patch", "update"]
# Setting blockOwnerDeletion on children needs this where the
# OwnerReferencesPermissionEnforcement admission plugin is on.
- apiGroups: ["wordcount.dev"]
  resources: ["wordcountjobs/finalizers"]
  verbs: ["update"]
- apiGroups: ["batch"]
  resources: ["jobs"]
  verbs: ["get", "list", "watch", "create", "patch"]
- apiGroups: ["apps"]
  resources: ["deployments"]
  verbs: ["get", "list", "watch", "create", "patch"]
# RedisRaft's replicas (redis.mode RedisRaft).
- apiGroups: ["apps"]
  resources: ["statefulsets"]
  verbs: ["get", "list", "watch", "create", "patch"]
- apiGroups: [""]
  resources: ["services", "persistentvolumeclaims"]
  verbs: ["get", "create", "patch"]
- apiGroups: [""]
  resources: ["secrets"]
  verbs: ["get", "create", "patch"]
- apiGroups: [""]
  resources: ["pods"]
  verbs: ["get", "list", "delete"]
- apiGroups: [""]
  resources: ["events"]
  verbs: ["list"]
- apiGroups: ["events.k8s.io"]
  resources: ["events"]
  verbs: ["create", "patch"]
# The standing policy in front of each job's Redis (narrowed by a partition).
- apiGroups: ["networking.k8s.io"]
  resources: ["networkpolicies"]
  verbs: ["get", "create", "patch"]
{{- end }}
