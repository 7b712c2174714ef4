{{/* Names and labels shared by every template. */}}
{{- define "chaperone.name" -}}chaperone{{- end -}}

{{- define "chaperone.serviceAccountName" -}}
{{- default "chaperone-operator" .Values.serviceAccount.name -}}
{{- end -}}

{{- define "chaperone.labels" -}}
app.kubernetes.io/name: chaperone
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end -}}

{{- define "chaperone.selectorLabels" -}}
app.kubernetes.io/name: chaperone
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: operator
{{- end -}}

{{- define "chaperone.image" -}}
{{- $tag := default .Chart.AppVersion .Values.image.tag -}}
{{- if .Values.image.digest -}}
{{ .Values.image.repository }}@{{ .Values.image.digest }}
{{- else -}}
{{ .Values.image.repository }}:{{ $tag }}
{{- end -}}
{{- end -}}

{{/* The namespaceSelector of the pod webhooks: never system namespaces, never the operator's own. */}}
{{- define "chaperone.namespaceSelector" -}}
namespaceSelector:
  matchExpressions:
    - key: kubernetes.io/metadata.name
      operator: NotIn
      values:
        {{- range .Values.webhook.excludedNamespaces }}
        - {{ . | quote }}
        {{- end }}
        - {{ .Release.Namespace | quote }}
{{- end -}}

{{/* Pods: the namespaceSelector and the label objectSelector (opt-in: unlabelled pods never reach the webhooks). */}}
{{- define "chaperone.podNamespaceSelector" -}}
{{ include "chaperone.namespaceSelector" . }}
objectSelector:
  matchExpressions:
    - key: chaperone.dev/identity
      operator: Exists
{{- end -}}

{{- define "chaperone.clientConfig" -}}
clientConfig:
  service:
    namespace: {{ .root.Release.Namespace }}
    name: {{ .root.Values.webhook.serviceName }}
    port: 443
    path: {{ .path }}
{{- end -}}

{{- define "chaperone.webhookAnnotations" -}}
{{- if eq .Values.webhook.tls.mode "cert-manager" }}
annotations:
  cert-manager.io/inject-ca-from: {{ .Release.Namespace }}/{{ .Values.webhook.tls.secretName }}
{{- end }}
{{- end -}}
