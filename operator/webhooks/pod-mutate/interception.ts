// Transparent interception in the injected pod: the init container that installs the iptables rules, and the pod shapes that would defeat them (pure).
//
// The init container is the only part of the pod with NET_ADMIN/NET_RAW; it runs the sidecar image's
// `chaperone-sidecar init-network` once, before the native sidecar, and exits. Egress settings are
// passed as flags from the AgentIdentity (the compiled sidecar config does not carry them yet);
// the sidecar's UID is the loop breaker, so no agent container may run as it.
import type { V1Container, V1EphemeralContainer, V1Pod, V1SecurityContext } from '@kubernetes/client-node';
import type { AgentIdentity } from '../../api/types.ts';
import { CONFIG_DIR, CONFIG_FILE, DEFAULT_SIDECAR_IMAGE, SIDECAR_COMMAND, SIDECAR_CONTAINER_NAME, SIDECAR_UID, VOLUME_CONFIG } from './layout.ts';

export const INTERCEPTION_CONTAINER_NAME = 'chaperone-init-network';
/** A Node process that runs iptables-restore twice per family: small and short. */
export const DEFAULT_INTERCEPTION_RESOURCES = { requests: { cpu: '10m', memory: '48Mi' }, limits: { cpu: '500m', memory: '128Mi' } } as const;

export interface InterceptionOptions {
  /** The operator's sidecar image; AgentIdentity spec.sidecar.image overrides it (the same image runs both). */
  readonly image?: string;
}

export function isTransparent(identity: AgentIdentity): boolean {
  return identity.spec.interception?.mode === 'transparent';
}

/** Exact security context of the init container (tests compare it whole): root for iptables, two capabilities, nothing else. */
export function interceptionSecurityContext(): V1SecurityContext {
  return {
    runAsUser: 0,
    runAsGroup: 0,
    runAsNonRoot: false,
    privileged: false,
    allowPrivilegeEscalation: false,
    readOnlyRootFilesystem: true,
    capabilities: { add: ['NET_ADMIN', 'NET_RAW'], drop: ['ALL'] },
    seccompProfile: { type: 'RuntimeDefault' },
  };
}

/** `init-network` arguments: the config, the sidecar's UID, and the identity's egress settings as flags. */
export function interceptionArgs(identity: AgentIdentity): string[] {
  const args = ['init-network', '--config', CONFIG_FILE, '--uid', String(SIDECAR_UID)];
  const egress = identity.spec.interception?.egress;
  if (egress?.policy !== 'deny-by-default') return args;
  args.push('--egress', 'deny-by-default');
  if (egress.allowDNS === false) args.push('--no-dns');
  for (const a of egress.allow ?? []) {
    const ports = [...new Set(a.ports ?? [])].sort((x, y) => x - y);
    args.push('--allow', ports.length > 0 ? `${a.cidr}:${ports.join(',')}` : a.cidr);
  }
  return args;
}

/** The init container for a transparent identity; undefined for explicit mode (nothing to add). */
export function interceptionInitContainer(identity: AgentIdentity, options: InterceptionOptions = {}): V1Container | undefined {
  if (!isTransparent(identity)) return undefined;
  const s = identity.spec.sidecar;
  const c: V1Container = {
    name: INTERCEPTION_CONTAINER_NAME,
    image: s?.image ?? options.image ?? DEFAULT_SIDECAR_IMAGE,
    command: [...SIDECAR_COMMAND],
    args: interceptionArgs(identity),
    resources: { requests: { ...DEFAULT_INTERCEPTION_RESOURCES.requests }, limits: { ...DEFAULT_INTERCEPTION_RESOURCES.limits } },
    securityContext: interceptionSecurityContext(),
    volumeMounts: [{ name: VOLUME_CONFIG, mountPath: CONFIG_DIR, readOnly: true }],
    // The reason a failed init gives ("cannot resolve …", "ip6tables-restore failed …") shows in the pod status.
    terminationMessagePolicy: 'FallbackToLogsOnError',
  };
  if (s?.imagePullPolicy) c.imagePullPolicy = s.imagePullPolicy;
  return c;
}

/**
 * Puts the init container first (ahead of the native sidecar and the pod's own init containers),
 * replacing an earlier copy; removes it when the identity is explicit. Edits `initContainers` in place
 * (build.ts works on a clone); a fixpoint like the rest of desiredPod.
 */
export function placeInterception(spec: { initContainers?: V1Container[] }, init: V1Container | undefined): void {
  const rest = (spec.initContainers ?? []).filter((c) => c.name !== INTERCEPTION_CONTAINER_NAME);
  const list = init === undefined ? rest : [init, ...rest];
  if (list.length > 0) spec.initContainers = list;
  else delete spec.initContainers;
}

function effectiveUser(pod: V1Pod, c: V1Container | V1EphemeralContainer): number | undefined {
  return c.securityContext?.runAsUser ?? pod.spec?.securityContext?.runAsUser;
}

/**
 * Why a pod cannot be guarded transparently, or undefined. The rules exempt the sidecar's UID, so an
 * agent running as it (distroless images default to 65532) or able to become it (root, or a setuid
 * binary without no_new_privs) would bypass them; NET_ADMIN/NET_RAW would let it rewrite them or
 * send raw packets. The image's USER is invisible here, so runAsUser must be explicit.
 */
export function interceptionRefusal(pod: V1Pod): string | undefined {
  const spec = pod.spec;
  if (!spec) return undefined;
  const agents = [...(spec.initContainers ?? []), ...spec.containers].filter((c) => c.name !== SIDECAR_CONTAINER_NAME && c.name !== INTERCEPTION_CONTAINER_NAME);
  // Ephemeral (debug) containers run in the same network namespace under the same rules: never exempt by name.
  for (const c of [...agents, ...(spec.ephemeralContainers ?? [])]) {
    const why = containerInterceptionRefusal(pod, c);
    if (why !== undefined) return why;
  }
  return undefined;
}

/** interceptionRefusal for one agent container (init, regular or ephemeral), with the pod-level runAsUser as its fallback. */
export function containerInterceptionRefusal(pod: V1Pod, c: V1Container | V1EphemeralContainer): string | undefined {
  return containerRefusal(c, effectiveUser(pod, c));
}

const BYPASS_CAPABILITIES = /^(CAP_)?(NET_ADMIN|NET_RAW|SETUID|SETGID|SYS_ADMIN|ALL)$/i;

function containerRefusal(c: V1Container | V1EphemeralContainer, uid: number | undefined): string | undefined {
  const fix = `set securityContext.runAsUser to a non-zero UID other than ${SIDECAR_UID} and allowPrivilegeEscalation: false`;
  if (uid === undefined) return `container ${c.name} sets no runAsUser, so it might run as root or as the sidecar's UID ${SIDECAR_UID} (the image's USER) and bypass transparent interception; ${fix}`;
  if (uid === 0 || uid === SIDECAR_UID) return `container ${c.name} runs as UID ${uid}, which ${uid === 0 ? 'can switch to' : 'is'} the sidecar's UID ${SIDECAR_UID} that transparent interception exempts; ${fix}`;
  const sc = c.securityContext;
  if (sc?.privileged === true) return `container ${c.name} is privileged and could rewrite the interception rules; remove privileged`;
  if (sc?.allowPrivilegeEscalation !== false) return `container ${c.name} may gain privileges (a setuid binary could switch to the sidecar's UID ${SIDECAR_UID}); ${fix}`;
  const added = (sc.capabilities?.add ?? []).filter((x) => BYPASS_CAPABILITIES.test(x));
  if (added.length > 0) return `container ${c.name} adds ${added.join(', ')}, which would let it rewrite or go around the interception rules; remove them`;
  return undefined;
}

/**
 * For pod-validate: a container named like ours is exempt from the agent rules only when it runs what
 * interceptionInitContainer builds for the identity — same image, command, args, capabilities and
 * mounts (fields the API server defaults are ignored) — so a pod cannot smuggle NET_ADMIN in under the name.
 */
export function isInterceptionInit(c: V1Container, identity: AgentIdentity, options: InterceptionOptions = {}): boolean {
  const want = interceptionInitContainer(identity, options);
  return want !== undefined && JSON.stringify(shape(c)) === JSON.stringify(shape(want));
}

/** The fields that decide what the container can do, in a fixed order (defaults the API server adds are left out). */
function shape(c: V1Container): unknown[] {
  const sc = c.securityContext;
  return [
    c.name,
    c.image,
    c.command,
    c.args,
    [...(sc?.capabilities?.add ?? [])].sort(),
    sc?.capabilities?.drop,
    sc?.privileged,
    sc?.allowPrivilegeEscalation,
    sc?.runAsUser,
    (c.volumeMounts ?? []).map((m) => [m.name, m.mountPath, m.readOnly === true]),
    c.env ?? [],
    c.envFrom ?? [],
    c.restartPolicy ?? null,
  ];
}
