// The MutatingWebhookConfiguration and ValidatingWebhookConfiguration Chaperone needs, as data (pure; the Helm chart renders the same).
import type {
  AdmissionregistrationV1WebhookClientConfig,
  V1LabelSelector,
  V1LabelSelectorRequirement,
  V1MutatingWebhook,
  V1MutatingWebhookConfiguration,
  V1RuleWithOperations,
  V1ValidatingWebhook,
  V1ValidatingWebhookConfiguration,
} from '@kubernetes/client-node';
import { DEFAULT_EXCLUDED_NAMESPACES } from '../webhooks/pod-mutate/decide.ts';
import { INTERCEPTION_CONTAINER_NAME } from '../webhooks/pod-mutate/interception.ts';
import { LABEL_IDENTITY, SIDECAR_CONTAINER_NAME } from '../webhooks/pod-mutate/layout.ts';

export const DEFAULT_MUTATING_CONFIGURATION = 'chaperone-mutating';
export const DEFAULT_VALIDATING_CONFIGURATION = 'chaperone-validating';
/** Pods: the API server's default; a labelled pod waits at most this long for a sidecar decision. */
export const DEFAULT_POD_TIMEOUT_SECONDS = 10;
export const DEFAULT_APPROVAL_TIMEOUT_SECONDS = 5;
export const DEFAULT_SERVICE_PORT = 443;

/** Paths the webhook server answers; the approval routes use the last two. */
export const WEBHOOK_PATHS = {
  mutatePods: '/mutate/pods',
  validatePods: '/validate/pods',
  validatePodConnect: '/validate/pods/connect',
  mutateApprovalRequests: '/mutate/approvalrequests',
  validateApprovalRequests: '/validate/approvalrequests',
} as const;

/** Webhook names inside the configurations (fully qualified, as the API requires). */
export const WEBHOOK_NAMES = {
  mutatePods: 'pods.mutate.chaperone.dev',
  validatePods: 'pods.validate.chaperone.dev',
  validatePodConnect: 'pods-connect.validate.chaperone.dev',
  mutateApprovalRequests: 'approvalrequests.mutate.chaperone.dev',
  validateApprovalRequests: 'approvalrequests.validate.chaperone.dev',
} as const;

/** Where the API server sends admissions: the operator's Service (in cluster) or a URL (tests, out-of-cluster). */
export type WebhookClient =
  | { readonly service: { readonly namespace: string; readonly name: string; readonly port?: number } }
  | { readonly url: string };

export interface WebhookManifestOptions {
  readonly client: WebhookClient;
  /** The operator's namespace: its pods are never injected (the operator must start without itself). */
  readonly operatorNamespace: string;
  /** base64 of the CA PEM bundle; omit with cert-manager (its cainjector fills it from the annotation). */
  readonly caBundle?: string;
  readonly mutatingName?: string;
  readonly validatingName?: string;
  /** Namespaces never sent pod admissions, besides the operator's (default kube-system, kube-public, kube-node-lease). */
  readonly excludedNamespaces?: readonly string[];
  /** Extra namespace selector terms ANDed onto every webhook (tests scope a shared control plane to their namespaces). */
  readonly scope?: V1LabelSelector;
  /** Include the ApprovalRequest webhooks (default true). */
  readonly approvals?: boolean;
  readonly podTimeoutSeconds?: number;
  readonly approvalTimeoutSeconds?: number;
  readonly labels?: Readonly<Record<string, string>>;
  readonly annotations?: Readonly<Record<string, string>>;
}

/** The cainjector annotation that makes cert-manager keep caBundle equal to the Certificate's CA. */
export function certManagerAnnotations(namespace: string, certificate: string): Record<string, string> {
  return { 'cert-manager.io/inject-ca-from': `${namespace}/${certificate}` };
}

function clientConfig(o: WebhookManifestOptions, path: string): AdmissionregistrationV1WebhookClientConfig {
  const ca = o.caBundle ? { caBundle: o.caBundle } : {};
  if ('url' in o.client) return { url: `${o.client.url.replace(/\/+$/, '')}${path}`, ...ca };
  const s = o.client.service;
  return { service: { namespace: s.namespace, name: s.name, port: s.port ?? DEFAULT_SERVICE_PORT, path }, ...ca };
}

function selector(o: WebhookManifestOptions, exclude: boolean): V1LabelSelector | undefined {
  const excluded = [...new Set([...(o.excludedNamespaces ?? DEFAULT_EXCLUDED_NAMESPACES), o.operatorNamespace])];
  const own: V1LabelSelectorRequirement[] = exclude ? [{ key: 'kubernetes.io/metadata.name', operator: 'NotIn', values: excluded }] : [];
  const matchExpressions = [...own, ...(o.scope?.matchExpressions ?? [])];
  if (matchExpressions.length === 0 && !o.scope?.matchLabels) return undefined;
  return { ...(o.scope?.matchLabels ? { matchLabels: { ...o.scope.matchLabels } } : {}), ...(matchExpressions.length > 0 ? { matchExpressions } : {}) };
}

function metadata(o: WebhookManifestOptions, name: string): V1MutatingWebhookConfiguration['metadata'] {
  return {
    name,
    labels: { 'app.kubernetes.io/name': 'chaperone', 'app.kubernetes.io/component': 'webhook', ...o.labels },
    ...(o.annotations ? { annotations: { ...o.annotations } } : {}),
  };
}

const POD_OBJECT_SELECTOR: V1LabelSelector = { matchExpressions: [{ key: LABEL_IDENTITY, operator: 'Exists' }] };

function rule(operations: string[], resources: string[], group: string, version: string): V1RuleWithOperations {
  return { operations, apiGroups: [group], apiVersions: [version], resources, scope: 'Namespaced' };
}

interface Common {
  readonly name: string;
  readonly clientConfig: AdmissionregistrationV1WebhookClientConfig;
  readonly rules: V1RuleWithOperations[];
  readonly failurePolicy: 'Fail';
  readonly matchPolicy: 'Equivalent';
  readonly sideEffects: 'None';
  readonly admissionReviewVersions: string[];
  readonly timeoutSeconds: number;
  readonly namespaceSelector?: V1LabelSelector;
  readonly objectSelector?: V1LabelSelector;
}

/**
 * kubectl exec/attach: CONNECT pods/exec and pods/attach. The API server matches an objectSelector against the
 * request's object, which for CONNECT is the PodExecOptions/PodAttachOptions (no labels): a label selector would never
 * send it. Instead a matchCondition sends only requests that name one of Chaperone's containers, so failing closed
 * (operator down: refused) never touches exec into any other container in the cluster; an unnamed container is never
 * an init container (the API server picks the only regular one), and kubectl sends the default-container
 * annotation's choice by name. The route then reads the pod and refuses only in Chaperone's pods.
 */
export const CONNECT_MATCH_EXPRESSION = `has(object.container) && object.container in ['${SIDECAR_CONTAINER_NAME}', '${INTERCEPTION_CONTAINER_NAME}']`;

function connectWebhook(o: WebhookManifestOptions): V1ValidatingWebhook {
  const { objectSelector: _none, ...c } = common(o, WEBHOOK_NAMES.validatePodConnect, WEBHOOK_PATHS.validatePodConnect, [rule(['CONNECT'], ['pods/exec', 'pods/attach'], '', 'v1')], true);
  return { ...c, matchConditions: [{ name: 'names-a-chaperone-container', expression: CONNECT_MATCH_EXPRESSION }] };
}

function common(o: WebhookManifestOptions, name: string, path: string, rules: V1RuleWithOperations[], pods: boolean): Common {
  const ns = selector(o, pods);
  return {
    name,
    clientConfig: clientConfig(o, path),
    rules,
    // A labelled pod is never admitted unguarded, an approval never recorded without its approver: fail closed.
    failurePolicy: 'Fail',
    matchPolicy: 'Equivalent',
    sideEffects: 'None',
    admissionReviewVersions: ['v1'],
    timeoutSeconds: pods ? (o.podTimeoutSeconds ?? DEFAULT_POD_TIMEOUT_SECONDS) : (o.approvalTimeoutSeconds ?? DEFAULT_APPROVAL_TIMEOUT_SECONDS),
    ...(ns ? { namespaceSelector: ns } : {}),
    ...(pods ? { objectSelector: structuredClone(POD_OBJECT_SELECTOR) } : {}),
  };
}

const APPROVAL_RULES = (): V1RuleWithOperations[] => [rule(['CREATE', 'UPDATE'], ['approvalrequests'], 'chaperone.dev', 'v1alpha1')];

/** Pods on CREATE (inject) and, when enabled, ApprovalRequests on CREATE+UPDATE (stamp the approver). */
export function mutatingWebhookConfiguration(o: WebhookManifestOptions): V1MutatingWebhookConfiguration {
  // IfNeeded: if a later webhook edits the pod, ours runs again and re-asserts isolation (an empty patch when nothing changed).
  const webhooks: V1MutatingWebhook[] = [{ ...common(o, WEBHOOK_NAMES.mutatePods, WEBHOOK_PATHS.mutatePods, [rule(['CREATE'], ['pods'], '', 'v1')], true), reinvocationPolicy: 'IfNeeded' }];
  if (o.approvals ?? true) webhooks.push({ ...common(o, WEBHOOK_NAMES.mutateApprovalRequests, WEBHOOK_PATHS.mutateApprovalRequests, APPROVAL_RULES(), false), reinvocationPolicy: 'Never' });
  return { apiVersion: 'admissionregistration.k8s.io/v1', kind: 'MutatingWebhookConfiguration', metadata: metadata(o, o.mutatingName ?? DEFAULT_MUTATING_CONFIGURATION), webhooks };
}

/**
 * Pods on CREATE, UPDATE and ephemeral-container updates (an ephemeral container could mount the sidecar's volumes);
 * exec/attach into the sidecar (CONNECT); ApprovalRequests on CREATE+UPDATE.
 */
export function validatingWebhookConfiguration(o: WebhookManifestOptions): V1ValidatingWebhookConfiguration {
  const webhooks: V1ValidatingWebhook[] = [
    common(o, WEBHOOK_NAMES.validatePods, WEBHOOK_PATHS.validatePods, [rule(['CREATE', 'UPDATE'], ['pods', 'pods/ephemeralcontainers'], '', 'v1')], true),
    connectWebhook(o),
  ];
  if (o.approvals ?? true) webhooks.push(common(o, WEBHOOK_NAMES.validateApprovalRequests, WEBHOOK_PATHS.validateApprovalRequests, APPROVAL_RULES(), false));
  return { apiVersion: 'admissionregistration.k8s.io/v1', kind: 'ValidatingWebhookConfiguration', metadata: metadata(o, o.validatingName ?? DEFAULT_VALIDATING_CONFIGURATION), webhooks };
}
