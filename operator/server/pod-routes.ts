// /mutate/pods and /validate/pods: decode the pod from the AdmissionRequest, look its identity up, call the pure cores, encode the answer.
import type { V1Pod } from '@kubernetes/client-node';
import type { AgentIdentity } from '../api/types.ts';
import { mutatePod } from '../webhooks/pod-mutate/admit.ts';
import type { BuildOptions } from '../webhooks/pod-mutate/build.ts';
import { DEFAULT_EXCLUDED_NAMESPACES } from '../webhooks/pod-mutate/decide.ts';
import { LABEL_IDENTITY } from '../webhooks/pod-mutate/layout.ts';
import { guardedSecrets, podViolations, updateViolations, type PodVerdict } from '../webhooks/pod-validate.ts';
import { WEBHOOK_PATHS } from '../manifests/webhooks.ts';
import { allow, deny, type AdmissionOutcome, type AdmissionRequest, type WebhookRoute } from './admission.ts';

export const PATH_MUTATE_PODS = WEBHOOK_PATHS.mutatePods;
export const PATH_VALIDATE_PODS = WEBHOOK_PATHS.validatePods;

/** Read access to the AgentIdentities the operator's informer holds (no API call per admission). */
export interface IdentityLookup {
  identity(namespace: string, name: string): AgentIdentity | undefined;
  identities(namespace: string): readonly AgentIdentity[];
  /** Secrets guarded besides those the identities name (MaskingPolicy HMAC keys, which only the compiler sees). */
  extraGuardedSecrets?(namespace: string): Iterable<string>;
}

export interface PodRoutesOptions {
  readonly lookup: IdentityLookup;
  readonly operatorNamespace: string;
  /** Sidecar image, native sidecars, compiled mounts: fixed, or per identity (e.g. the compiler's CompileResult.mounts). */
  readonly build?: BuildOptions | ((identity: AgentIdentity) => BuildOptions);
  /** Namespaces never injected or guarded besides the operator's own (default kube-system, kube-public, kube-node-lease). */
  readonly excludedNamespaces?: readonly string[];
}

function isPod(v: unknown): v is V1Pod {
  return typeof v === 'object' && v !== null && typeof (v as { spec?: unknown }).spec === 'object' && (v as { spec?: unknown }).spec !== null;
}

function isPodRequest(req: AdmissionRequest): boolean {
  return req.kind.group === '' && req.kind.kind === 'Pod' && req.resource.resource === 'pods';
}

function noPod(req: AdmissionRequest): AdmissionOutcome {
  return { outcome: 'no-pod', response: deny(req.uid, 400, `chaperone: the AdmissionReview for ${req.resource.resource} ${req.namespace ?? ''}/${req.name ?? ''} carries no Pod object with a spec; refused`) };
}

function namespaceOf(req: AdmissionRequest, pod: V1Pod): string {
  return req.namespace ?? pod.metadata?.namespace ?? '';
}

function mutateHandler(o: PodRoutesOptions, excluded: readonly string[]): (req: AdmissionRequest) => AdmissionOutcome {
  return (req) => {
    // Only CREATE mutates: a pod's spec is immutable afterwards, and the validating webhook guards updates.
    if (!isPodRequest(req) || req.operation !== 'CREATE' || (req.subResource ?? '') !== '') return { outcome: 'ignored', response: allow(req.uid) };
    const pod = req.object;
    if (!isPod(pod)) return noPod(req);
    const namespace = namespaceOf(req, pod);
    const label = pod.metadata?.labels?.[LABEL_IDENTITY];
    const identity = label ? o.lookup.identity(namespace, label) : undefined;
    const build = typeof o.build === 'function' ? (identity ? o.build(identity) : undefined) : o.build;
    const r = mutatePod({ uid: req.uid, namespace, pod, operatorNamespace: o.operatorNamespace, identity, excludedNamespaces: excluded, ...(build ? { build } : {}) });
    return { outcome: r.outcome, response: r.response };
  };
}

type Violation = Extract<PodVerdict, { allowed: false }>;

function violationsOf(pod: V1Pod, namespace: string, o: PodRoutesOptions): Violation[] {
  const guarded = guardedSecrets(o.lookup.identities(namespace), o.lookup.extraGuardedSecrets?.(namespace) ?? []);
  const label = pod.metadata?.labels?.[LABEL_IDENTITY];
  const identity = label ? o.lookup.identity(namespace, label) : undefined;
  return podViolations(pod, guarded, label !== undefined, { identity }).filter((v): v is Violation => !v.allowed);
}

function key(v: Violation): string {
  return `${v.rule}\u0000${v.container ?? ''}\u0000${v.message}`;
}

function validateHandler(o: PodRoutesOptions, excluded: readonly string[]): (req: AdmissionRequest) => AdmissionOutcome {
  return (req) => {
    const sub = req.subResource ?? '';
    if (!isPodRequest(req) || (req.operation !== 'CREATE' && req.operation !== 'UPDATE') || (sub !== '' && sub !== 'ephemeralcontainers')) {
      return { outcome: 'ignored', response: allow(req.uid) };
    }
    const pod = req.object;
    if (!isPod(pod)) return noPod(req);
    const namespace = namespaceOf(req, pod);
    if (namespace === o.operatorNamespace || excluded.includes(namespace)) return { outcome: 'excluded-namespace', response: allow(req.uid) };
    const found = violationsOf(pod, namespace, o);
    if (req.operation === 'UPDATE') return validateUpdate(req, pod, namespace, found, o);
    const first = found[0];
    return first ? { outcome: first.rule, response: deny(req.uid, 403, `chaperone: ${first.message}`) } : { outcome: 'allowed', response: allow(req.uid) };
  };
}

/**
 * An UPDATE (or a debug container) must not relabel the pod or touch the webhook's containers, whatever the pod was. Otherwise
 * an update that keeps violations the pod already had (a pod from before the operator, a Secret guarded later) does not make
 * it worse; refusing would only block metadata edits and deletion finalizers. Any violation the old pod did not have — every
 * one is compared, not just the first, so an old violation cannot cover a new debug container — is refused.
 */
function validateUpdate(req: AdmissionRequest, pod: V1Pod, namespace: string, found: readonly Violation[], o: PodRoutesOptions): AdmissionOutcome {
  const old = req.oldObject;
  if (!isPod(old)) return { outcome: 'no-pod', response: deny(req.uid, 400, `chaperone: the AdmissionReview for an UPDATE of pod ${namespace}/${req.name ?? ''} carries no old Pod; refused`) };
  const changed = updateViolations(old, pod)[0];
  if (changed && !changed.allowed) return { outcome: changed.rule, response: deny(req.uid, 403, `chaperone: ${changed.message}`) };
  const before = new Set(violationsOf(old, namespace, o).map(key));
  const added = found.find((v) => !before.has(key(v)));
  if (added) return { outcome: added.rule, response: deny(req.uid, 403, `chaperone: ${added.message}`) };
  const kept = found[0];
  if (kept) return { outcome: `preexisting-${kept.rule}`, response: allow(req.uid, [`chaperone: this pod already breaks ${kept.message}`]) };
  return { outcome: 'allowed', response: allow(req.uid) };
}

/** The two pod routes, for startWebhookServer (paths as in operator/manifests/webhooks.ts). */
export function podRoutes(o: PodRoutesOptions): WebhookRoute[] {
  const excluded = o.excludedNamespaces ?? DEFAULT_EXCLUDED_NAMESPACES;
  return [
    { path: PATH_MUTATE_PODS, name: 'mutate-pods', handle: mutateHandler(o, excluded) },
    { path: PATH_VALIDATE_PODS, name: 'validate-pods', handle: validateHandler(o, excluded) },
  ];
}
