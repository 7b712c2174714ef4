// Sidecar counter reports (pure): shape checks and who may report for which pod and identity (ledger.ts applies each report once).
//
// Why a report cannot be forged by the agent: it must carry a pod-bound ServiceAccount token whose
// audience is the API server's (TokenReview without audiences). The webhook mounts that token into
// the sidecar only; the agent holds a `chaperone`-audience token, which that TokenReview refuses.
// The token's bound pod must be the reporting pod, carry the identity's label and the injection
// annotation; so one identity's pods cannot report for another identity.
import { ANNOTATION_INJECTED, LABEL_IDENTITY, SIDECAR_CONTAINER_NAME } from '../webhooks/pod-mutate/layout.ts';
import { REPORT_KIND, type ReportBody } from '../../sidecar/audit/reporter.ts';

export type { ReportBody } from '../../sidecar/audit/reporter.ts';

/** Bigger deltas than this in one report are refused (30 s of a very busy agent is far below). */
export const MAX_DELTA = 10_000_000;
const COUNTER_KEYS = ['sessions', 'statements', 'denied', 'approvals', 'masked'] as const;

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);
const isStr = (v: unknown, max: number): v is string => typeof v === 'string' && v.length > 0 && v.length <= max;
const isCount = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0 && v <= MAX_DELTA;

function checkLastSession(v: unknown): string | null {
  if (v === undefined) return null;
  if (!isObj(v)) return 'lastSession must be an object';
  for (const k of ['id', 'startedAt', 'endedAt'] as const) if (!isStr(v[k], 128)) return `lastSession.${k} must be a non-empty string`;
  for (const k of ['statements', 'denied', 'masked'] as const) if (!isCount(v[k])) return `lastSession.${k} must be a count`;
  for (const [k, max] of [['pod', 253], ['connection', 63], ['subject', 256], ['summary', 1024]] as const) {
    if (typeof v[k] !== 'string' || (v[k]).length > max) return `lastSession.${k} must be a string of at most ${max} characters`;
  }
  if (Number.isNaN(Date.parse(v.startedAt as string)) || Number.isNaN(Date.parse(v.endedAt as string))) return 'lastSession.startedAt/endedAt must be RFC 3339 times';
  return null;
}

function checkHead(v: Obj): string | null {
  if (!isStr(v.identity, 253)) return 'identity must be the AgentIdentity name';
  const pod = v.pod;
  if (!isObj(pod) || !isStr(pod.namespace, 63) || !isStr(pod.name, 253) || !isStr(pod.uid, 64)) return 'pod must have namespace, name and uid';
  if (!isStr(v.stream, 64) || !/^[0-9a-f]+$/.test(v.stream)) return 'stream must be hex';
  return null;
}

/** The body as a ReportBody, or why not (HTTP 400). */
export function parseReport(v: unknown): ReportBody | { readonly error: string } {
  if (!isObj(v) || v.kind !== REPORT_KIND || v.apiVersion !== 'chaperone.dev/v1alpha1') return { error: `the body must be a chaperone.dev/v1alpha1 ${REPORT_KIND}` };
  const head = checkHead(v);
  if (head) return { error: head };
  if (!isCount(v.seq) || v.seq < 1) return { error: 'seq must be a positive integer' };
  const d = v.delta;
  if (!isObj(d) || !COUNTER_KEYS.every((k) => isCount(d[k]))) return { error: `delta must have the counts ${COUNTER_KEYS.join(', ')} (each 0..${MAX_DELTA})` };
  const ls = checkLastSession(v.lastSession);
  if (ls) return { error: ls };
  return v as unknown as ReportBody;
}

/** What a TokenReview said about the caller (status.user of an authenticated review). */
export interface ReviewedCaller {
  readonly username: string;
  readonly extra?: Readonly<Record<string, readonly string[]>>;
}

/** The reporting pod as the API server has it. */
export interface PodFacts {
  readonly uid: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly annotations: Readonly<Record<string, string>>;
  readonly serviceAccountName: string;
  /** spec.initContainers by name and restartPolicy: the native sidecar must be among them. */
  readonly initContainers: readonly { readonly name: string; readonly restartPolicy?: string }[];
}

export type Refusal = { readonly ok: false; readonly status: 401 | 403; readonly reason: string; readonly message: string };
export type Allowed = { readonly ok: true };

const POD_NAME = 'authentication.kubernetes.io/pod-name';
const POD_UID = 'authentication.kubernetes.io/pod-uid';

/** The token's claims must name the pod of the report (a pod-bound ServiceAccount token). */
export function checkCaller(c: ReviewedCaller, r: ReportBody): Allowed | Refusal {
  const m = /^system:serviceaccount:([^:]+):([^:]+)$/.exec(c.username);
  if (!m) return { ok: false, status: 403, reason: 'not-a-serviceaccount', message: `${c.username} is not a ServiceAccount; reports come from the sidecar's pod-bound ServiceAccount token` };
  const podName = c.extra?.[POD_NAME]?.[0];
  const podUid = c.extra?.[POD_UID]?.[0];
  if (!podName || !podUid) return { ok: false, status: 403, reason: 'not-pod-bound', message: 'the token is not bound to a pod; reports need the pod\'s projected ServiceAccount token' };
  if (m[1] !== r.pod.namespace || podName !== r.pod.name || podUid !== r.pod.uid) {
    return { ok: false, status: 403, reason: 'other-pod', message: `the token belongs to pod ${m[1] ?? ''}/${podName}, not to the reported pod ${r.pod.namespace}/${r.pod.name}` };
  }
  return { ok: true };
}

/**
 * The pod must still exist with that uid, be labelled with the reported identity, and run the sidecar. The
 * `chaperone.dev/injected` annotation alone proves nothing (whoever creates a pod can write it): the label (which
 * sends the pod through the webhooks) and the native sidecar (an init container chaperone-sidecar with restartPolicy
 * Always) are required too.
 */
export function checkPod(p: PodFacts | undefined, c: ReviewedCaller, r: ReportBody): Allowed | Refusal {
  if (!p || p.uid !== r.pod.uid) return { ok: false, status: 403, reason: 'pod-gone', message: `pod ${r.pod.namespace}/${r.pod.name} with uid ${r.pod.uid} does not exist` };
  if (p.labels[LABEL_IDENTITY] !== r.identity) {
    return { ok: false, status: 403, reason: 'other-identity', message: `pod ${r.pod.namespace}/${r.pod.name} is labelled ${LABEL_IDENTITY}=${p.labels[LABEL_IDENTITY] ?? '(none)'}, not ${r.identity}` };
  }
  if (p.annotations[ANNOTATION_INJECTED] === undefined) return { ok: false, status: 403, reason: 'not-injected', message: `pod ${r.pod.namespace}/${r.pod.name} has no ${ANNOTATION_INJECTED} annotation: it does not run the Chaperone sidecar` };
  if (!p.initContainers.some((c) => c.name === SIDECAR_CONTAINER_NAME && c.restartPolicy === 'Always')) {
    return { ok: false, status: 403, reason: 'no-sidecar', message: `pod ${r.pod.namespace}/${r.pod.name} has no init container ${SIDECAR_CONTAINER_NAME} with restartPolicy Always: it does not run the Chaperone sidecar` };
  }
  if (c.username !== `system:serviceaccount:${r.pod.namespace}:${p.serviceAccountName}`) return { ok: false, status: 403, reason: 'other-serviceaccount', message: `the token's ServiceAccount is not the pod's (${p.serviceAccountName})` };
  return { ok: true };
}

export function identityKey(namespace: string, name: string): string {
  return `${namespace}/${name}`;
}
