// Whether the pod webhook injects the sidecar into a pod: a typed outcome with a reason, never a bare boolean (pure).
import type { V1Pod } from '@kubernetes/client-node';
import type { AgentIdentity } from '../../api/types.ts';
import { interceptionRefusal } from './interception.ts';
import { LABEL_IDENTITY } from './layout.ts';

/** System namespaces never injected (the webhook's namespaceSelector excludes them too; this is the second lock). */
export const DEFAULT_EXCLUDED_NAMESPACES: readonly string[] = ['kube-system', 'kube-public', 'kube-node-lease'];

export interface DecideContext {
  /** The AdmissionRequest's namespace (a pod being created may not carry metadata.namespace yet). */
  readonly namespace: string;
  readonly operatorNamespace: string;
  /** The AgentIdentity named by the label, looked up in `namespace`; undefined = not found. */
  readonly identity?: AgentIdentity | undefined;
  readonly excludedNamespaces?: readonly string[];
}

export type SkipReason = 'no-label' | 'excluded-namespace';
export type RefuseReason =
  | 'invalid-label'
  | 'identity-not-found'
  | 'identity-not-ready'
  | 'host-network'
  | 'service-account-not-allowed'
  | 'interception-bypass'
  | 'kubernetes-token-unavailable';

export type Decision =
  | { readonly inject: true; readonly identityName: string; readonly configMapName: string; readonly configHash: string }
  | { readonly inject: false; readonly reason: SkipReason }
  | { readonly refuse: true; readonly reason: RefuseReason; readonly message: string };

function refuse(reason: RefuseReason, message: string): Decision {
  return { refuse: true, reason, message };
}

/**
 * Labelled pods are injected or refused, never admitted unguarded. Re-running on an injected pod is
 * fine: desiredPod is a fixpoint, so the patch is empty (the annotation alone never skips a pod,
 * since a pod could be created with a forged one).
 */
export function shouldInject(pod: V1Pod, ctx: DecideContext): Decision {
  const label = pod.metadata?.labels?.[LABEL_IDENTITY];
  if (label === undefined) return { inject: false, reason: 'no-label' };
  const excluded = ctx.excludedNamespaces ?? DEFAULT_EXCLUDED_NAMESPACES;
  if (excluded.includes(ctx.namespace) || ctx.namespace === ctx.operatorNamespace) return { inject: false, reason: 'excluded-namespace' };
  if (label.trim() === '') {
    return refuse('invalid-label', `pod label ${LABEL_IDENTITY} is empty; set it to the name of an AgentIdentity in namespace ${ctx.namespace}, or remove the label`);
  }
  const identity = ctx.identity;
  if (!identity) {
    return refuse('identity-not-found', `AgentIdentity ${ctx.namespace}/${label} (named by the pod label ${LABEL_IDENTITY}) does not exist; create it (kubectl get agentidentities -n ${ctx.namespace}) or fix the label`);
  }
  return readiness(identity, ctx.namespace) ?? podFit(pod, identity, ctx.namespace) ?? ready(identity);
}

function ready(identity: AgentIdentity): Decision {
  return { inject: true, identityName: identity.metadata.name ?? '', configMapName: identity.status?.configMapName ?? '', configHash: identity.status?.configHash ?? '' };
}

/** Ready = condition Ready True for the current generation, with a ConfigMap and a hash to mount and record. */
function readiness(identity: AgentIdentity, namespace: string): Decision | undefined {
  const id = `AgentIdentity ${namespace}/${identity.metadata.name ?? ''}`;
  const cond = identity.status?.conditions?.find((c) => c.type === 'Ready');
  if (!cond || cond.status !== 'True') {
    const why = cond ? `Ready is ${cond.status} (${cond.reason}: ${cond.message})` : 'the operator has not compiled it yet (no Ready condition)';
    return refuse('identity-not-ready', `${id} is not Ready: ${why}; fix the identity (kubectl describe agentidentity -n ${namespace} ${identity.metadata.name ?? ''}) and create the pod again`);
  }
  return compiled(identity, cond.observedGeneration, id);
}

function compiled(identity: AgentIdentity, condGeneration: number | undefined, id: string): Decision | undefined {
  const gen = identity.metadata.generation;
  const seen = condGeneration ?? identity.status?.observedGeneration;
  if (gen !== undefined && seen !== undefined && seen < gen) {
    return refuse('identity-not-ready', `${id} changed (generation ${gen}) and the operator has compiled only generation ${seen}; retry in a few seconds`);
  }
  if (!identity.status?.configMapName || !identity.status.configHash) {
    return refuse('identity-not-ready', `${id} is Ready but its status names no compiled ConfigMap or config hash; this is an operator bug or a status edited by hand — retry, then check the operator's logs`);
  }
  return undefined;
}

/** What the pod itself must satisfy for this identity. */
function podFit(pod: V1Pod, identity: AgentIdentity, namespace: string): Decision | undefined {
  const name = identity.metadata.name ?? '';
  if (pod.spec?.hostNetwork === true) {
    return refuse('host-network', `pod uses hostNetwork, so the sidecar's loopback ports would be open to the whole node; remove hostNetwork from a pod labelled ${LABEL_IDENTITY}=${name}`);
  }
  const allowed = identity.spec.allowedServiceAccounts ?? [];
  const sa = pod.spec?.serviceAccountName ?? pod.spec?.serviceAccount ?? 'default';
  if (allowed.length > 0 && !allowed.includes(sa)) {
    return refuse('service-account-not-allowed', `ServiceAccount ${namespace}/${sa} may not use AgentIdentity ${name} (allowedServiceAccounts: ${allowed.join(', ')}); run the pod as one of them or add it to the identity`);
  }
  return supported(identity, sa) ?? transparentFit(pod, identity, namespace);
}

/** Transparent interception exempts the sidecar's UID: no agent container may run as it or become it. */
function transparentFit(pod: V1Pod, identity: AgentIdentity, namespace: string): Decision | undefined {
  if (identity.spec.interception?.mode !== 'transparent') return undefined;
  const why = interceptionRefusal(pod);
  if (why === undefined) return undefined;
  return refuse('interception-bypass', `AgentIdentity ${namespace}/${identity.metadata.name ?? ''} uses transparent interception, whose rules exempt the sidecar's UID: ${why}`);
}

/** What this operator version can inject for the identity. */
function supported(identity: AgentIdentity, sa: string): Decision | undefined {
  const foreign = identity.spec.connections.find((c) => c.protocol === 'kubernetes' && c.credential?.serviceAccountName !== sa);
  if (foreign) {
    return refuse('kubernetes-token-unavailable', `connection ${foreign.name} presents a token of ServiceAccount ${foreign.credential?.serviceAccountName ?? '(none)'}, but a pod can project tokens of its own ServiceAccount (${sa}) only and this operator version does not mint others yet; run the pod as ${foreign.credential?.serviceAccountName ?? 'that ServiceAccount'} or remove the connection`);
  }
  return undefined;
}
