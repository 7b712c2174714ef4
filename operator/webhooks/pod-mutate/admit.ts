// Decide → build → patch for one pod admission, as the fields of an AdmissionReview response (pure; route.ts only decodes and encodes).
import type { V1Pod } from '@kubernetes/client-node';
import type { AgentIdentity } from '../../api/types.ts';
import { desiredPod, type BuildOptions } from './build.ts';
import { shouldInject, type DecideContext, type RefuseReason, type SkipReason } from './decide.ts';
import { jsonPatch, type Operation } from './patch.ts';

export interface MutateInput {
  /** AdmissionRequest.uid, echoed in the response. */
  readonly uid: string;
  /** AdmissionRequest.namespace. */
  readonly namespace: string;
  readonly pod: V1Pod;
  readonly operatorNamespace: string;
  /** The AgentIdentity the label names, from the informer cache; undefined = not found. */
  readonly identity: AgentIdentity | undefined;
  readonly build?: BuildOptions;
  /** Namespaces never injected besides the operator's own (default DEFAULT_EXCLUDED_NAMESPACES). */
  readonly excludedNamespaces?: readonly string[];
}

/** For logs and the webhook latency metric's `outcome` label. */
export type MutateOutcome = 'injected' | 'unchanged' | SkipReason | RefuseReason;

/** The `response` of an admission.k8s.io/v1 AdmissionReview (patch already base64, as the API wants). */
export interface MutateResponse {
  readonly uid: string;
  readonly allowed: boolean;
  readonly patchType?: 'JSONPatch';
  readonly patch?: string;
  readonly status?: { readonly code: number; readonly reason: string; readonly message: string };
}

export interface MutateResult {
  readonly outcome: MutateOutcome;
  readonly response: MutateResponse;
  /** The operations before encoding (for logs and tests). */
  readonly ops: readonly Operation[];
}

function refused(uid: string, reason: RefuseReason, message: string): MutateResult {
  return { outcome: reason, ops: [], response: { uid, allowed: false, status: { code: 403, reason: 'Forbidden', message: `chaperone: ${message}` } } };
}

/** Refusals are 403 Forbidden with the decision's message; skips and unchanged pods are allowed with no patch. */
export function mutatePod(input: MutateInput): MutateResult {
  const ctx: DecideContext = { namespace: input.namespace, operatorNamespace: input.operatorNamespace, identity: input.identity, ...(input.excludedNamespaces ? { excludedNamespaces: input.excludedNamespaces } : {}) };
  const d = shouldInject(input.pod, ctx);
  if ('refuse' in d) return refused(input.uid, d.reason, d.message);
  if (!d.inject) return { outcome: d.reason, ops: [], response: { uid: input.uid, allowed: true } };
  // shouldInject never injects without an identity; refuse rather than admit if that ever changes.
  if (!input.identity) return refused(input.uid, 'identity-not-found', 'no AgentIdentity to inject');
  const desired = desiredPod(input.pod, input.identity, d.configMapName, { configHash: d.configHash, ...input.build });
  const ops = jsonPatch(input.pod, desired);
  if (ops.length === 0) return { outcome: 'unchanged', ops, response: { uid: input.uid, allowed: true } };
  const patch = Buffer.from(JSON.stringify(ops)).toString('base64');
  return { outcome: 'injected', ops, response: { uid: input.uid, allowed: true, patchType: 'JSONPatch', patch } };
}
