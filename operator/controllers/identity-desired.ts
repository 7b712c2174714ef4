// What the AgentIdentity controller wants to exist (pure): the compiled ConfigMap, the references to check, and the identity's status.
import { createHash } from 'node:crypto';
import type { AgentIdentity, AgentIdentityStatus, ApprovalRule, MaskingPolicy } from '../api/types.ts';
import type { CompileResult, MountSpec } from '../compile/index.ts';
import { ownerReference, setCondition, type Condition } from '../kube/status.ts';
import { agentKubeconfig } from '../webhooks/pod-mutate/kubeconfig.ts';
import { ANNOTATION_INJECTED, CONFIG_KEY, KUBECONFIG_KEY, LABEL_IDENTITY } from '../webhooks/pod-mutate/layout.ts';

export const LABEL_MANAGED_BY = 'app.kubernetes.io/managed-by';
export const MANAGED_BY = 'chaperone-operator';
/** Selects every ConfigMap this operator made (for the orphan sweep). */
export const MANAGED_CONFIGMAP_SELECTOR = `${LABEL_MANAGED_BY}=${MANAGED_BY}`;
export const ANNOTATION_CONFIG_HASH = 'chaperone.dev/config-hash';
export const CONFIGMAP_PREFIX = 'chaperone-';
const MAX_NAME = 253;
/** Status messages stay readable in `kubectl describe`: at most this many problems are listed. */
export const MAX_LISTED_PROBLEMS = 5;

/** `chaperone-<identity>`; a name too long for that gets a digest suffix instead of its tail. */
export function configMapNameFor(identityName: string): string {
  const name = `${CONFIGMAP_PREFIX}${identityName}`;
  if (name.length <= MAX_NAME) return name;
  const digest = createHash('sha256').update(identityName).digest('hex').slice(0, 10);
  return `${name.slice(0, MAX_NAME - 11).replace(/[-.]+$/, '')}-${digest}`;
}

export interface DesiredConfigMap {
  apiVersion: 'v1';
  kind: 'ConfigMap';
  metadata: {
    name: string;
    namespace: string;
    labels: Record<string, string>;
    annotations: Record<string, string>;
    ownerReferences: ReturnType<typeof ownerReference>[];
  };
  data: Record<string, string>;
}

/** The compiled config as a ConfigMap owned by the identity: `sidecar.yaml` holds the canonical JSON (valid YAML), byte for byte. */
export function desiredConfigMap(identity: AgentIdentity, compiled: Extract<CompileResult, { ok: true }>): DesiredConfigMap {
  const name = identity.metadata.name ?? '';
  const data: Record<string, string> = { [CONFIG_KEY]: compiled.text };
  const kubeconfig = agentKubeconfig(identity);
  if (kubeconfig !== undefined) data[KUBECONFIG_KEY] = kubeconfig;
  return {
    apiVersion: 'v1', kind: 'ConfigMap',
    metadata: {
      name: configMapNameFor(name), namespace: identity.metadata.namespace ?? '',
      labels: { [LABEL_MANAGED_BY]: MANAGED_BY, [LABEL_IDENTITY]: name },
      annotations: { [ANNOTATION_CONFIG_HASH]: compiled.hash },
      ownerReferences: [ownerReference({ apiVersion: identity.apiVersion, kind: identity.kind, metadata: identity.metadata }, { controller: true })],
    },
    data,
  };
}

/** What the cache shows of the current ConfigMap (metadata only): is applying again a no-op? */
export function configMapCurrent(
  current: { metadata?: { annotations?: Record<string, string>; labels?: Record<string, string>; ownerReferences?: { uid: string }[] } } | undefined,
  desired: DesiredConfigMap,
): boolean {
  const m = current?.metadata;
  if (!m) return false;
  return m.annotations?.[ANNOTATION_CONFIG_HASH] === desired.metadata.annotations[ANNOTATION_CONFIG_HASH]
    && m.labels?.[LABEL_IDENTITY] === desired.metadata.labels[LABEL_IDENTITY]
    && m.labels?.[LABEL_MANAGED_BY] === MANAGED_BY
    && (m.ownerReferences ?? []).some((o) => o.uid === desired.metadata.ownerReferences[0]?.uid);
}

// ---------------------------------------------------------------------------------------------
// References

/** What a mounted directory is for, from the layout in operator/compile/paths.ts (for messages). */
export function mountPurpose(dir: string): string {
  const base = dir.slice(dir.lastIndexOf('/') + 1);
  if (base.startsWith('_masking.')) return 'a MaskingPolicy HMAC key';
  if (base.startsWith('_issuer.')) return `the CA of issuer ${base.slice('_issuer.'.length)}`;
  if (base === '_recording') return 'the recording signing key';
  if (base.endsWith('.tls-ca')) return `the TLS CA of connection ${base.slice(0, -'.tls-ca'.length)}`;
  if (base.endsWith('.tls-client')) return `the TLS client certificate of connection ${base.slice(0, -'.tls-client'.length)}`;
  return `the credentials of connection ${base}`;
}

/** Keys present in a Secret or ConfigMap (`data`, `binaryData`, `stringData`), or undefined = it does not exist. */
export type KeyLookup = (source: 'secret' | 'configMap', name: string) => Promise<ReadonlySet<string> | undefined>;

export interface ReferenceProblem {
  readonly source: 'secret' | 'configMap';
  readonly name: string;
  readonly key?: string;
  readonly message: string;
}

/** Every Secret and ConfigMap key the compiled config names must exist (the sidecar would fail to start otherwise). */
export async function checkReferences(namespace: string, mounts: readonly MountSpec[], lookup: KeyLookup): Promise<ReferenceProblem[]> {
  const problems: ReferenceProblem[] = [];
  for (const m of mounts) {
    if (m.source === 'serviceAccountToken') continue;
    const kind = m.source === 'secret' ? 'Secret' : 'ConfigMap';
    const keys = await lookup(m.source, m.name);
    if (m.name === '') {
      problems.push({ source: m.source, name: m.name, message: `${mountPurpose(m.dir)} names no ${kind}; set its secretRef.name` });
    } else if (!keys) {
      problems.push({ source: m.source, name: m.name, message: `${kind} ${namespace}/${m.name} (${mountPurpose(m.dir)}) does not exist; create it in namespace ${namespace}` });
    } else {
      for (const k of m.keys.filter((key) => !keys.has(key))) {
        problems.push({ source: m.source, name: m.name, key: k, message: `${kind} ${namespace}/${m.name} has no key ${JSON.stringify(k)} (${mountPurpose(m.dir)}); it has ${[...keys].sort().map((x) => JSON.stringify(x)).join(', ') || 'no keys'}` });
      }
    }
  }
  return problems;
}

/** Secrets an identity's compiled config names: the fan-out index (a change to one requeues these identities). */
export function referencedSecrets(mounts: readonly MountSpec[]): string[] {
  return [...new Set(mounts.filter((m) => m.source === 'secret' && m.name !== '').map((m) => m.name))].sort();
}

// ---------------------------------------------------------------------------------------------
// Status

export type IdentityOutcome =
  | { readonly kind: 'ready'; readonly configMapName: string; readonly hash: string; readonly maskingPolicies: readonly string[]; readonly approvalRules: readonly string[]; readonly warnings: readonly string[] }
  | { readonly kind: 'invalid'; readonly reason: 'CompileError' | 'MissingReference'; readonly problems: readonly string[] };

function listProblems(problems: readonly string[]): string {
  const shown = problems.slice(0, MAX_LISTED_PROBLEMS).join('; ');
  return problems.length > MAX_LISTED_PROBLEMS ? `${shown}; and ${problems.length - MAX_LISTED_PROBLEMS} more` : shown;
}

function readyMessage(o: Extract<IdentityOutcome, { kind: 'ready' }>): string {
  const parts = [`compiled into ConfigMap ${o.configMapName} (config hash ${o.hash.slice(0, 12)})`];
  parts.push(o.maskingPolicies.length > 0 ? `MaskingPolicies: ${o.maskingPolicies.join(', ')}` : 'no MaskingPolicy selects it');
  parts.push(o.approvalRules.length > 0 ? `ApprovalRules: ${o.approvalRules.join(', ')}` : 'no ApprovalRule selects it');
  if (o.warnings.length > 0) parts.push(`warnings: ${listProblems(o.warnings)}`);
  return parts.join('; ');
}

/**
 * The status fields the controller owns. `Ready` and `Invalid` are always set as a pair; an invalid
 * identity keeps its last good configMapName/configHash (running pods keep that config; new pods are
 * refused because Ready is False).
 */
export function desiredStatus(identity: AgentIdentity, outcome: IdentityOutcome, podsGuarded: number, now: Date = new Date()): AgentIdentityStatus {
  const gen = identity.metadata.generation;
  const old = identity.status ?? {};
  const base = { observedGeneration: gen };
  let conditions: Condition[] = (old.conditions ?? []);
  if (outcome.kind === 'ready') {
    conditions = setCondition(conditions, { type: 'Ready', status: 'True', reason: 'Compiled', message: readyMessage(outcome), ...base }, now);
    conditions = setCondition(conditions, { type: 'Invalid', status: 'False', reason: 'Valid', message: 'every reference resolves and the policy compiles', ...base }, now);
    return { ...base, conditions, configHash: outcome.hash, configMapName: outcome.configMapName, podsGuarded };
  }
  const message = listProblems(outcome.problems);
  conditions = setCondition(conditions, { type: 'Ready', status: 'False', reason: outcome.reason, message, ...base }, now);
  conditions = setCondition(conditions, { type: 'Invalid', status: 'True', reason: outcome.reason, message, ...base }, now);
  return { ...base, conditions, configHash: old.configHash, configMapName: old.configMapName, podsGuarded };
}

/** True when `next` changes nothing the controller owns (skip the status write; replayed events then cost no write). */
export function statusUnchanged(current: AgentIdentityStatus | undefined, next: AgentIdentityStatus): boolean {
  const c = current ?? {};
  const pick = (s: AgentIdentityStatus): unknown => [s.observedGeneration, s.configHash, s.configMapName, s.podsGuarded ?? 0,
    (s.conditions ?? []).map((x) => [x.type, x.status, x.reason, x.message, x.observedGeneration, x.lastTransitionTime]).sort()];
  return JSON.stringify(pick(c)) === JSON.stringify(pick(next));
}

// ---------------------------------------------------------------------------------------------
// Fan-out and pods

/** Identities in the policy's namespace that it selects (old and new selectors both: an un-selected identity must recompile too). */
export function identitiesSelectedBy(
  objs: readonly (MaskingPolicy | ApprovalRule | undefined)[],
  identities: readonly AgentIdentity[],
  selects: (sel: MaskingPolicy['spec']['selector'], ns: string | undefined, id: AgentIdentity) => boolean,
): string[] {
  const keys = new Set<string>();
  for (const o of objs) {
    if (!o) continue;
    for (const id of identities) {
      if (selects(o.spec.selector, o.metadata.namespace, id)) keys.add(`${id.metadata.namespace ?? ''}/${id.metadata.name ?? ''}`);
    }
  }
  return [...keys];
}

export interface PodMeta {
  metadata?: { namespace?: string; labels?: Record<string, string>; annotations?: Record<string, string>; deletionTimestamp?: string | Date } | undefined;
}

/** Pods labelled for the identity that carry the injected annotation and are not being deleted. */
export function countGuardedPods(pods: readonly PodMeta[], namespace: string, identityName: string): number {
  let n = 0;
  for (const p of pods) {
    const m = p.metadata;
    if (m?.namespace === namespace && m.labels?.[LABEL_IDENTITY] === identityName && m.annotations?.[ANNOTATION_INJECTED] !== undefined && m.deletionTimestamp === undefined) n += 1;
  }
  return n;
}
