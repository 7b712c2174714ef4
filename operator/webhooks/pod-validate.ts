// Refuses pods that would let an agent reach a guarded credential or escape the sidecar (pure): which rule, which container, how to fix.
import type { V1Container, V1EphemeralContainer, V1Pod, V1Volume, V1VolumeMount } from '@kubernetes/client-node';
import { AGENT_TOKEN_AUDIENCE, DEFAULT_API_TOKEN_PATH, LABEL_IDENTITY, SIDECAR_COMMAND, SIDECAR_CONTAINER_NAME, VOLUME_CONFIG, VOLUME_LISTENER_CA } from './pod-mutate/layout.ts';
import { INTERCEPTION_CONTAINER_NAME, containerInterceptionRefusal, interceptionSecurityContext, isTransparent } from './pod-mutate/interception.ts';
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
  | 'api-token'
  | 'host-path'
  | 'secrets-store-volume'
  | 'privileged'
  | 'capability'
  | 'ephemeral-target'
  | 'interception-bypass'
  | 'missing-interception'
  | 'identity-label-changed'
  | 'sidecar-changed';

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
  const sidecarImage = labelled ? sidecarOf(pod)?.image : undefined;
  const all = [
    ...(spec?.initContainers ?? []).map((c) => ({ c, kind: 'init container' })),
    ...(spec?.containers ?? []).map((c) => ({ c, kind: 'container' })),
    ...(spec?.ephemeralContainers ?? []).map((c) => ({ c, kind: 'ephemeral container' })),
  ];
  return all.filter(({ c, kind }) => !(labelled && kind !== 'ephemeral container' && c.name === SIDECAR_CONTAINER_NAME) && !(labelled && isInterceptionInitShape(c, kind, sidecarImage)));
}

function sidecarOf(pod: V1Pod): V1Container | undefined {
  return [...(pod.spec?.initContainers ?? []), ...(pod.spec?.containers ?? [])].find((c) => c.name === SIDECAR_CONTAINER_NAME);
}

/**
 * The webhook's iptables init container (the mutating webhook replaces any container of that name with its own), exempt from
 * the agent rules only as built: the sidecar's own image running `chaperone-sidecar init-network`, the config mount only, no
 * env, and exactly the security context interceptionInitContainer gives it (root with NET_ADMIN/NET_RAW, nothing more). The
 * egress flags are not compared, so an identity edited after the pod started does not turn its init container into a violation.
 */
function isInterceptionInitShape(c: AnyContainer, kind: string, sidecarImage: string | undefined): boolean {
  if (kind !== 'init container' || c.name !== INTERCEPTION_CONTAINER_NAME || c.args?.[0] !== 'init-network') return false;
  if (sidecarImage === undefined || c.image !== sidecarImage || JSON.stringify(c.command) !== JSON.stringify(SIDECAR_COMMAND)) return false;
  if ((c.env ?? []).length > 0 || (c.envFrom ?? []).length > 0 || ('restartPolicy' in c && c.restartPolicy !== undefined)) return false;
  return onlyConfigMount(c) && initSecurityContext(c);
}

function onlyConfigMount(c: AnyContainer): boolean {
  return (c.volumeMounts ?? []).every((m) => m.name === VOLUME_CONFIG && m.readOnly === true && !m.subPath && !m.subPathExpr);
}

/** Root with NET_ADMIN/NET_RAW and every other capability dropped, as interceptionSecurityContext, nothing more. */
function initSecurityContext(c: AnyContainer): boolean {
  const want = interceptionSecurityContext();
  const sc = c.securityContext ?? {};
  const same = (a: unknown, b: unknown): boolean => JSON.stringify(a) === JSON.stringify(b);
  const caps = [...(sc.capabilities?.add ?? [])].sort();
  if (!same(caps, [...(want.capabilities?.add ?? [])].sort()) || !same(sc.capabilities?.drop, want.capabilities?.drop)) return false;
  return sc.privileged !== true && sc.allowPrivilegeEscalation === false && sc.runAsUser === want.runAsUser && sc.procMount !== 'Unmasked';
}

function podLevel(pod: V1Pod): PodVerdict[] {
  const s = pod.spec;
  const out: PodVerdict[] = [];
  const fix = `remove it: a pod labelled ${LABEL_IDENTITY} must keep the agent isolated from the sidecar`;
  if (s?.hostNetwork === true) out.push(deny('host-network', `rule host-network: the pod sets hostNetwork, which exposes the sidecar's loopback ports to the node; ${fix}`));
  if (s?.hostPID === true) out.push(deny('host-pid', `rule host-pid: the pod sets hostPID, which lets the agent read the sidecar's memory and files through /proc; ${fix}`));
  if (s?.hostIPC === true) out.push(deny('host-ipc', `rule host-ipc: the pod sets hostIPC; ${fix}`));
  if (s?.shareProcessNamespace === true) {
    out.push(deny('share-process-namespace', `rule share-process-namespace: the pod sets shareProcessNamespace, which lets the agent read the sidecar's credentials through /proc/<pid>/root; ${fix}`));
  }
  for (const v of s?.volumes ?? []) {
    if (v.hostPath !== undefined) {
      out.push(deny('host-path', `rule host-path: volume ${v.name} is a hostPath (${v.hostPath.path}); any path on the node can reach the kubelet's copy of the sidecar's Secrets and API token (/var/lib/kubelet/pods/<uid>/volumes) or other pods' /proc, so a pod labelled ${LABEL_IDENTITY} may have none — use an emptyDir, a PersistentVolumeClaim or a ConfigMap instead`));
    }
    if (v.gitRepo !== undefined) {
      out.push(deny('host-path', `rule host-path: volume ${v.name} is a gitRepo volume, which the kubelet clones on the node as root (CVE-2024-10220: a crafted repository ran commands on the node); clone in an init container into an emptyDir instead`));
    }
  }
  return out;
}

function envRefs(c: AnyContainer, guarded: Set<string>): string[] {
  const out: string[] = [];
  for (const e of c.env ?? []) {
    const name = e.valueFrom?.secretKeyRef?.name;
    if (name && guarded.has(name)) out.push(`Secret ${name} through env ${e.name} (secretKeyRef)`);
  }
  for (const f of c.envFrom ?? []) {
    const name = f.secretRef?.name;
    if (name && guarded.has(name)) out.push(`Secret ${name} through envFrom.secretRef`);
  }
  return out;
}

interface Volumes {
  readonly byName: Map<string, V1Volume>;
  readonly sidecarOnly: Set<string>;
}

function volumesOf(pod: V1Pod, labelled: boolean): Volumes {
  const byName = new Map((pod.spec?.volumes ?? []).map((v) => [v.name, v] as const));
  const sidecar = labelled ? sidecarOf(pod) : undefined;
  return { byName, sidecarOnly: new Set((sidecar?.volumeMounts ?? []).map((m) => m.name)) };
}

/** The one volume agents share with the sidecar: an emptyDir of public listener CA certificates, which agents may only read. */
function sharedReadOnly(m: { name: string; readOnly?: boolean }, v: V1Volume | undefined): boolean {
  return m.name === VOLUME_LISTENER_CA && v?.emptyDir !== undefined && m.readOnly === true;
}

/** The audiences of the ServiceAccount tokens a volume projects other than the agent's own `chaperone` token. */
function foreignTokenAudiences(v: V1Volume): string[] {
  return (v.projected?.sources ?? []).flatMap((s) => (s.serviceAccountToken && s.serviceAccountToken.audience && s.serviceAccountToken.audience !== AGENT_TOKEN_AUDIENCE ? [s.serviceAccountToken.audience] : []));
}

/** Capabilities an agent may not add: each reaches the sidecar's memory, its files on the node, or its network traffic. */
const FORBIDDEN_CAPABILITIES = /^(CAP_)?(ALL|SYS_ADMIN|SYS_PTRACE|SYS_MODULE|SYS_RAWIO|SYS_BOOT|DAC_READ_SEARCH|NET_ADMIN|BPF|PERFMON|MAC_ADMIN|MAC_OVERRIDE)$/i;

const SECRETS_STORE_DRIVER = 'secrets-store.csi.k8s.io';

function mountViolations(c: AnyContainer, who: string, vols: Volumes, guarded: Set<string>, labelled: boolean): PodVerdict[] {
  return (c.volumeMounts ?? []).flatMap((m) => oneMount({ c, who, vols, guarded, labelled }, m));
}

interface MountCheck {
  readonly c: AnyContainer;
  readonly who: string;
  readonly vols: Volumes;
  readonly guarded: Set<string>;
  readonly labelled: boolean;
}

function oneMount({ c, who, vols, guarded, labelled }: MountCheck, m: V1VolumeMount): PodVerdict[] {
  const out: PodVerdict[] = [];
  const v = vols.byName.get(m.name);
  const secret = v ? volumeSecrets(v).find((s) => guarded.has(s)) : undefined;
  if (secret) out.push(deny('guarded-secret-volume', `rule guarded-secret-volume: ${who} mounts volume ${m.name} holding Secret ${secret}, an AgentIdentity credential held only by the chaperone sidecar; remove the mount and reach the upstream through the sidecar`, c.name));
  if (vols.sidecarOnly.has(m.name) && !sharedReadOnly(m, v)) out.push(deny('sidecar-volume', `rule sidecar-volume: ${who} mounts volume ${m.name}, which belongs to the chaperone sidecar; remove that volumeMount from ${c.name}${m.name === VOLUME_LISTENER_CA ? ' (or mount it readOnly)' : ''}`, c.name));
  if (!labelled) return out;
  const token = tokenMount(c, m, v, who, vols);
  if (token) out.push(token);
  if (v?.csi?.driver === SECRETS_STORE_DRIVER) {
    out.push(deny('secrets-store-volume', `rule secrets-store-volume: ${who} mounts volume ${m.name} from the Secrets Store CSI driver, which hands external credentials straight to the agent; give the credential to the AgentIdentity (a Secret the sidecar mounts) and remove the volume`, c.name));
  }
  return out;
}

/** The API token, or a ServiceAccount token for another audience (the API server may accept it: its audiences are not known here). */
function tokenMount(c: AnyContainer, m: V1VolumeMount, v: V1Volume | undefined, who: string, vols: Volumes): PodVerdict | undefined {
  if ((v && isApiTokenVolume(v)) || m.mountPath.replace(/\/+$/, '') === DEFAULT_API_TOKEN_PATH) {
    return deny('api-token', `rule api-token: ${who} mounts the Kubernetes API token (volume ${m.name} at ${m.mountPath}); agents reach the API only through the sidecar — remove the mount and set automountServiceAccountToken: false`, c.name);
  }
  const audiences = v && !vols.sidecarOnly.has(m.name) ? foreignTokenAudiences(v) : [];
  if (audiences.length === 0) return undefined;
  return deny('api-token', `rule api-token: ${who} mounts volume ${m.name}, a ServiceAccount token for audience ${audiences.join(', ')}; the API server (and any service trusting the cluster's issuer) accepts tokens for its own audiences, which the webhook cannot tell apart, so agents hold only the ${AGENT_TOKEN_AUDIENCE}-audience token the webhook mounts — remove the projection and reach those services through a sidecar connection`, c.name);
}

/** Privilege that reaches around the pod's isolation: host devices, other processes, the node's files, the pod's network. */
function privilegeViolations(c: AnyContainer, who: string): PodVerdict[] {
  const sc = c.securityContext;
  const out: PodVerdict[] = [];
  if (sc?.privileged === true) out.push(deny('privileged', `rule privileged: ${who} is privileged, which gives it the node's devices and every capability (it could read the sidecar's Secrets from the node's disk or rewrite the pod's network); remove securityContext.privileged`, c.name));
  const caps = (sc?.capabilities?.add ?? []).filter((x) => FORBIDDEN_CAPABILITIES.test(x));
  if (caps.length > 0) out.push(deny('capability', `rule capability: ${who} adds ${caps.join(', ')}, which would let it trace or read the sidecar, reach the node's files or rewrite the pod's network; remove them from securityContext.capabilities.add`, c.name));
  return out;
}

function containerViolations(c: AnyContainer, kind: string, vols: Volumes, guarded: Set<string>, ctx: Ctx): PodVerdict[] {
  const who = `${kind} ${c.name}`;
  const out: PodVerdict[] = envRefs(c, guarded).map((env) => deny('guarded-secret-env', `rule guarded-secret-env: ${who} reads ${env}; that Secret is an AgentIdentity credential held only by the chaperone sidecar — remove the reference and use the env the sidecar injects (PGHOST/PGPORT, <NAME>_BASE_URL, CHAPERONE_TOKEN_FILE)`, c.name));
  out.push(...mountViolations(c, who, vols, guarded, ctx.labelled));
  if (!ctx.labelled) return out;
  out.push(...privilegeViolations(c, who));
  const target = (c as V1EphemeralContainer).targetContainerName;
  if (kind === 'ephemeral container' && (target === SIDECAR_CONTAINER_NAME || target === INTERCEPTION_CONTAINER_NAME)) {
    out.push(deny('ephemeral-target', `rule ephemeral-target: ${who} targets ${target}, so it would share that container's process namespace and could read the sidecar's credentials through /proc/<pid>/root and /proc/<pid>/mem; debug the agent container instead (kubectl debug --target=<agent container>)`, c.name));
  }
  if (ctx.transparent) {
    const why = containerInterceptionRefusal(ctx.pod, c);
    if (why !== undefined) out.push(deny('interception-bypass', `rule interception-bypass: AgentIdentity ${ctx.identityName} uses transparent interception, whose rules exempt the sidecar's UID: ${why}`, c.name));
  }
  return out;
}

interface Ctx {
  readonly pod: V1Pod;
  readonly labelled: boolean;
  readonly transparent: boolean;
  readonly identityName: string;
}

/** What validatePod knows besides the pod: the AgentIdentity its label names (from the informer cache), when found. */
export interface ValidateContext {
  readonly identity?: AgentIdentity | undefined;
}

/** A transparent identity's pod must start with the iptables init container, ahead of the sidecar and every agent init container. */
function interceptionPresent(pod: V1Pod): boolean {
  const first = pod.spec?.initContainers?.[0];
  return first !== undefined && isInterceptionInitShape(first, 'init container', sidecarOf(pod)?.image);
}

/**
 * Every violation, in a fixed order: pod-level rules, the sidecar's presence, then each container in
 * spec order (init, regular, ephemeral). `guardedSecrets`: every Secret an AgentIdentity in the pod's
 * namespace references. `labelled`: the pod carries LABEL_IDENTITY. With `context.identity` in
 * transparent mode, every agent container (ephemeral ones too) must fit the interception rules.
 */
export function podViolations(pod: V1Pod, guardedSecrets: Set<string>, labelled: boolean, context: ValidateContext = {}): PodVerdict[] {
  const out: PodVerdict[] = [];
  const transparent = labelled && context.identity !== undefined && isTransparent(context.identity);
  if (labelled) {
    out.push(...podLevel(pod));
    if (!hasSidecar(pod)) {
      out.push(deny('missing-sidecar', `rule missing-sidecar: the pod is labelled ${LABEL_IDENTITY} but has no ${SIDECAR_CONTAINER_NAME} container; the injecting webhook did not run — check that the chaperone operator is up and its MutatingWebhookConfiguration selects this pod, then create it again`));
    } else if (transparent && !interceptionPresent(pod)) {
      out.push(deny('missing-interception', `rule missing-interception: AgentIdentity ${context.identity?.metadata.name ?? ''} uses transparent interception but the pod does not start with the webhook's ${INTERCEPTION_CONTAINER_NAME} init container (the sidecar's image running init-network), so the agent's traffic would not be redirected; create the pod again so the webhook injects it (a pod created before the identity switched to transparent must be recreated)`));
    }
  }
  const vols = volumesOf(pod, labelled);
  const ctx: Ctx = { pod, labelled, transparent, identityName: context.identity?.metadata.name ?? '' };
  for (const { c, kind } of agentContainers(pod, labelled)) out.push(...containerViolations(c, kind, vols, guardedSecrets, ctx));
  return out;
}

/** The first violation of podViolations, or allowed. */
export function validatePod(pod: V1Pod, guardedSecrets: Set<string>, labelled: boolean, context: ValidateContext = {}): PodVerdict {
  return podViolations(pod, guardedSecrets, labelled, context)[0] ?? { allowed: true };
}

/** The webhook's own containers, which no update may touch (their image is the one mutable field of a container). */
function ownContainers(pod: V1Pod): Map<string, V1Container> {
  const out = new Map<string, V1Container>();
  for (const c of [...(pod.spec?.initContainers ?? []), ...(pod.spec?.containers ?? [])]) {
    if (c.name === SIDECAR_CONTAINER_NAME || c.name === INTERCEPTION_CONTAINER_NAME) out.set(c.name, c);
  }
  return out;
}

/**
 * What an UPDATE of a labelled pod may not do, whatever the pod looks like: change or drop the identity label (the
 * webhooks select pods by it, so an unlabelled pod's later updates and debug containers would never reach them, and the
 * sidecar keeps the old identity's config), or change the sidecar or the interception init container (e.g. its image:
 * `kubectl set image` would run another program with the sidecar's credentials and token).
 */
export function updateViolations(old: V1Pod, pod: V1Pod): PodVerdict[] {
  const before = old.metadata?.labels?.[LABEL_IDENTITY];
  if (before === undefined) return [];
  const after = pod.metadata?.labels?.[LABEL_IDENTITY];
  const out: PodVerdict[] = [];
  if (after !== before) {
    out.push(deny('identity-label-changed', `rule identity-label-changed: the pod's label ${LABEL_IDENTITY}=${before} ${after === undefined ? 'is removed' : `is changed to ${after}`}; the sidecar was injected for ${before} and the webhooks guard the pod by that label — delete the pod and create a new one with the label you want`));
  }
  const was = ownContainers(old);
  const now = ownContainers(pod);
  for (const name of new Set([...was.keys(), ...now.keys()])) {
    const changed = ownContainerChange(name, was.get(name), now.get(name));
    if (changed) out.push(changed);
  }
  return out;
}

function ownContainerChange(name: string, a: V1Container | undefined, b: V1Container | undefined): PodVerdict | undefined {
  if (JSON.stringify(a) === JSON.stringify(b)) return undefined;
  const what = a && b && a.image !== b.image ? `the image of ${name} from ${a.image ?? '(none)'} to ${b.image ?? '(none)'}` : `${name} (${a ? (b ? 'changed' : 'removed') : 'added'})`;
  return deny('sidecar-changed', `rule sidecar-changed: the update changes ${what}, a container the chaperone webhook injected and which holds (or guards) the identity's credentials; it cannot change after creation — to move to a new sidecar image, update the AgentIdentity or the operator and recreate the pod`, name);
}

/**
 * Every Secret the identities reference (credentials, CAs, client certificates, signing keys), plus
 * `extra` (e.g. MaskingPolicy HMAC key Secrets, which only the compiler sees): what validatePod guards.
 */
export function guardedSecrets(identities: readonly AgentIdentity[], extra: Iterable<string> = []): Set<string> {
  const names = identities.flatMap((id) => identityMounts(id).filter((m) => m.source === 'secret').map((m) => m.name));
  return new Set([...names, ...extra]);
}
