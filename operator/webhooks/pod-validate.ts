// Refuses pods that would let an agent reach a guarded credential or escape the sidecar (pure): which rule, which container, how to fix.
import type { V1Container, V1EphemeralContainer, V1Pod, V1Volume } from '@kubernetes/client-node';
import { DEFAULT_API_TOKEN_PATH, LABEL_IDENTITY, SIDECAR_CONTAINER_NAME, VOLUME_CONFIG, VOLUME_LISTENER_CA } from './pod-mutate/layout.ts';
import { INTERCEPTION_CONTAINER_NAME } from './pod-mutate/interception.ts';
import { isApiTokenVolume } from './pod-mutate/build.ts';
import { identityMounts } from './pod-mutate/mounts.ts';
import type { AgentIdentity } from '../api/types.ts';

export type PodRule =
  | 'host-network'
  | 'host-pid'
  | 'host-ipc'
  | 'share-process-namespace'
  | 'missing-sidecar'
  | 'guarded-secret-volume'
  | 'guarded-secret-env'
  | 'sidecar-volume'
  | 'api-token';

export type PodVerdict =
  | { readonly allowed: true }
  | { readonly allowed: false; readonly rule: PodRule; readonly container?: string; readonly message: string };

type AnyContainer = V1Container | V1EphemeralContainer;

function deny(rule: PodRule, message: string, container?: string): PodVerdict {
  return container === undefined ? { allowed: false, rule, message } : { allowed: false, rule, container, message };
}

/** Secrets a volume exposes (secret volumes and projected secret sources). */
function volumeSecrets(v: V1Volume): string[] {
  const out: string[] = [];
  if (v.secret?.secretName) out.push(v.secret.secretName);
  for (const s of v.projected?.sources ?? []) if (s.secret?.name) out.push(s.secret.name);
  return out;
}

function isNativeSidecar(c: V1Container): boolean {
  return c.name === SIDECAR_CONTAINER_NAME && c.restartPolicy === 'Always';
}

function hasSidecar(pod: V1Pod): boolean {
  return (pod.spec?.initContainers ?? []).some(isNativeSidecar) || (pod.spec?.containers ?? []).some((c) => c.name === SIDECAR_CONTAINER_NAME);
}

/** Every container that runs agent code; in a labelled pod the sidecar is exempt, anywhere else a container by that name is not. */
function agentContainers(pod: V1Pod, labelled: boolean): { c: AnyContainer; kind: string }[] {
  const spec = pod.spec;
  const all = [
    ...(spec?.initContainers ?? []).map((c) => ({ c, kind: 'init container' })),
    ...(spec?.containers ?? []).map((c) => ({ c, kind: 'container' })),
    ...(spec?.ephemeralContainers ?? []).map((c) => ({ c, kind: 'ephemeral container' })),
  ];
  return all.filter(({ c, kind }) => !(labelled && kind !== 'ephemeral container' && c.name === SIDECAR_CONTAINER_NAME) && !(labelled && isInterceptionInitShape(c, kind)));
}

/** The webhook's iptables init container (the mutating webhook replaces any container of that name with its own): init-network, the config mount only. */
function isInterceptionInitShape(c: AnyContainer, kind: string): boolean {
  return kind === 'init container' && c.name === INTERCEPTION_CONTAINER_NAME && c.args?.[0] === 'init-network' && (c.volumeMounts ?? []).every((m) => m.name === VOLUME_CONFIG);
}

function podLevel(pod: V1Pod): PodVerdict | undefined {
  const s = pod.spec;
  const fix = `remove it: a pod labelled ${LABEL_IDENTITY} must keep the agent isolated from the sidecar`;
  if (s?.hostNetwork === true) return deny('host-network', `rule host-network: the pod sets hostNetwork, which exposes the sidecar's loopback ports to the node; ${fix}`);
  if (s?.hostPID === true) return deny('host-pid', `rule host-pid: the pod sets hostPID, which lets the agent read the sidecar's memory and files through /proc; ${fix}`);
  if (s?.hostIPC === true) return deny('host-ipc', `rule host-ipc: the pod sets hostIPC; ${fix}`);
  if (s?.shareProcessNamespace === true) {
    return deny('share-process-namespace', `rule share-process-namespace: the pod sets shareProcessNamespace, which lets the agent read the sidecar's credentials through /proc/<pid>/root; ${fix}`);
  }
  return undefined;
}

function envRefs(c: AnyContainer, guarded: Set<string>): string | undefined {
  for (const e of c.env ?? []) {
    const name = e.valueFrom?.secretKeyRef?.name;
    if (name && guarded.has(name)) return `Secret ${name} through env ${e.name} (secretKeyRef)`;
  }
  for (const f of c.envFrom ?? []) {
    const name = f.secretRef?.name;
    if (name && guarded.has(name)) return `Secret ${name} through envFrom.secretRef`;
  }
  return undefined;
}

interface Volumes {
  readonly byName: Map<string, V1Volume>;
  readonly sidecarOnly: Set<string>;
}

function volumesOf(pod: V1Pod, labelled: boolean): Volumes {
  const byName = new Map((pod.spec?.volumes ?? []).map((v) => [v.name, v] as const));
  const sidecar = labelled ? [...(pod.spec?.initContainers ?? []), ...(pod.spec?.containers ?? [])].find((c) => c.name === SIDECAR_CONTAINER_NAME) : undefined;
  return { byName, sidecarOnly: new Set((sidecar?.volumeMounts ?? []).map((m) => m.name)) };
}

/** The one volume agents share with the sidecar: an emptyDir of public listener CA certificates, which agents may only read. */
function sharedReadOnly(m: { name: string; readOnly?: boolean }, v: V1Volume | undefined): boolean {
  return m.name === VOLUME_LISTENER_CA && v?.emptyDir !== undefined && m.readOnly === true;
}

function containerRule(c: AnyContainer, kind: string, vols: Volumes, guarded: Set<string>, labelled: boolean): PodVerdict | undefined {
  const who = `${kind} ${c.name}`;
  const env = envRefs(c, guarded);
  if (env) return deny('guarded-secret-env', `rule guarded-secret-env: ${who} reads ${env}; that Secret is an AgentIdentity credential held only by the chaperone sidecar — remove the reference and use the env the sidecar injects (PGHOST/PGPORT, <NAME>_BASE_URL, CHAPERONE_TOKEN_FILE)`, c.name);
  for (const m of c.volumeMounts ?? []) {
    const v = vols.byName.get(m.name);
    const secret = v ? volumeSecrets(v).find((s) => guarded.has(s)) : undefined;
    if (secret) return deny('guarded-secret-volume', `rule guarded-secret-volume: ${who} mounts volume ${m.name} holding Secret ${secret}, an AgentIdentity credential held only by the chaperone sidecar; remove the mount and reach the upstream through the sidecar`, c.name);
    if (vols.sidecarOnly.has(m.name) && !sharedReadOnly(m, v)) return deny('sidecar-volume', `rule sidecar-volume: ${who} mounts volume ${m.name}, which belongs to the chaperone sidecar; remove that volumeMount from ${c.name}${m.name === VOLUME_LISTENER_CA ? ' (or mount it readOnly)' : ''}`, c.name);
    if (labelled && ((v && isApiTokenVolume(v)) || m.mountPath.replace(/\/+$/, '') === DEFAULT_API_TOKEN_PATH)) {
      return deny('api-token', `rule api-token: ${who} mounts the Kubernetes API token (volume ${m.name} at ${m.mountPath}); agents reach the API only through the sidecar — remove the mount and set automountServiceAccountToken: false`, c.name);
    }
  }
  return undefined;
}

/**
 * `guardedSecrets`: every Secret an AgentIdentity in the pod's namespace references. `labelled`: the
 * pod carries LABEL_IDENTITY. Returns the first violation in a fixed order: pod-level rules, the
 * sidecar's presence, then each container in spec order (init, regular, ephemeral).
 */
export function validatePod(pod: V1Pod, guardedSecrets: Set<string>, labelled: boolean): PodVerdict {
  if (labelled) {
    const p = podLevel(pod);
    if (p) return p;
    if (!hasSidecar(pod)) {
      return deny('missing-sidecar', `rule missing-sidecar: the pod is labelled ${LABEL_IDENTITY} but has no ${SIDECAR_CONTAINER_NAME} container; the injecting webhook did not run — check that the chaperone operator is up and its MutatingWebhookConfiguration selects this pod, then create it again`);
    }
  }
  const vols = volumesOf(pod, labelled);
  for (const { c, kind } of agentContainers(pod, labelled)) {
    const v = containerRule(c, kind, vols, guardedSecrets, labelled);
    if (v) return v;
  }
  return { allowed: true };
}

/**
 * Every Secret the identities reference (credentials, CAs, client certificates, signing keys), plus
 * `extra` (e.g. MaskingPolicy HMAC key Secrets, which only the compiler sees): what validatePod guards.
 */
export function guardedSecrets(identities: readonly AgentIdentity[], extra: Iterable<string> = []): Set<string> {
  const names = identities.flatMap((id) => identityMounts(id).filter((m) => m.source === 'secret').map((m) => m.name));
  return new Set([...names, ...extra]);
}
