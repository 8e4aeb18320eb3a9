{{/* Names and labels shared by every template. */}}

{{- define "kubetrove.name" -}}
{{- .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* The release's full name: "<release>" when it already contains the chart name, else "<release>-kubetrove". */}}
{{- define "kubetrove.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "kubetrove.selectorLabels" -}}
app.kubernetes.io/name: {{ include "kubetrove.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: operator
{{- end -}}

{{- define "kubetrove.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{ include "kubetrove.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: kubetrove
{{- end -}}

{{- define "kubetrove.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "kubetrove.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "kubetrove.image" -}}
{{- $repo := .Values.image.repository | default (printf "%s/operator" (trimSuffix "/" .Values.imageRegistry)) -}}
{{- printf "%s:%s" $repo (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}

{{/* agentImage: the agent image every engine without an override uses */}}
{{- define "kubetrove.agentImage" -}}
{{- $repo := .Values.agent.repository | default (printf "%s/agent" (trimSuffix "/" .Values.imageRegistry)) -}}
{{- printf "%s:%s" $repo (default .Chart.AppVersion .Values.agent.tag) -}}
{{- end -}}
