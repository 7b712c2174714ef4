// The pod as it should be after injection: a deep clone of the request's pod, edited (pure; patch.ts diffs it against the original).
//
// desiredPod is a fixpoint: desiredPod(desiredPod(p)) deep-equals desiredPod(p), because every edit
// is "upsert by name" or "remove what matches", never a blind append. So reinvocation and replayed
// admissions produce an empty patch.
import type { V1Container, V1EnvVar, V1Pod, V1PodSpec, V1Volume, V1VolumeMount } from '@kubernetes/client-node';
import type { AgentIdentity, AgentIdentityConnection } from '../../api/types.ts';
import {
  AGENT_TOKEN_AUDIENCE,
  AGENT_TOKEN_DIR,
  AGENT_TOKEN_FILE,
  AGENT_TOKEN_SECONDS,
  ANNOTATION_INJECTED,
  DEFAULT_API_TOKEN_PATH,
  DEFAULT_SIDECAR_IMAGE,
  INJECTION_VERSION,
  KUBECONFIG_DIR,
  KUBECONFIG_FILE,
  KUBECONFIG_KEY,
  LISTENER_CA_DIR,
  SIDECAR_CONTAINER_NAME,
  SIDECAR_GID,
  VOLUME_AGENT_TOKEN,
  VOLUME_KUBECONFIG,
  VOLUME_LISTENER_CA,
  envName,
  type MountSpec,
} from './layout.ts';
import { INTERCEPTION_CONTAINER_NAME, interceptionInitContainer, placeInterception } from './interception.ts';
import { identityMounts } from './mounts.ts';
import { DEFAULT_VOLUME_MODE, sidecarContainer, sidecarVolumes } from './sidecar.ts';

export interface BuildOptions {
  /** false: a plain container (clusters before 1.29); default true: an init container with restartPolicy Always. */
  readonly nativeSidecars?: boolean;
  /** The operator's sidecar image; AgentIdentity spec.sidecar.image overrides it. */
  readonly image?: string;
  /** The compiled config hash the pod records (AgentIdentity status.configHash). */
  readonly configHash?: string;
  /** The directories the compiled config names (operator/compile MountSet.list()); default derived from the identity. */
  readonly mounts?: readonly MountSpec[];
}

/** What the status annotation records (JSON, keys in this order). */
export interface InjectedStatus {
  readonly version: number;
  readonly identity: string;
  readonly configMap: string;
  readonly configHash: string;
  readonly sidecar: { readonly name: string; readonly native: boolean; readonly image: string };
  readonly volumes: readonly string[];
  readonly containers: readonly string[];
  readonly env: readonly string[];
}

/** The agent-facing env: loopback addresses of each connection and where the agent's token is. */
export function connectionEnv(identity: AgentIdentity): V1EnvVar[] {
  const env: V1EnvVar[] = [{ name: 'CHAPERONE_TOKEN_FILE', value: AGENT_TOKEN_FILE }];
  const pg = identity.spec.connections.filter((c) => c.protocol === 'postgres');
  const first = pg[0];
  if (first) env.push(...libpqEnv(first, identity.metadata.name ?? 'agent'));
  for (const c of pg) env.push({ name: `${envName(c.name)}_DATABASE_URL`, value: databaseUrl(c, identity.metadata.name ?? 'agent') });
  for (const c of identity.spec.connections.filter((x) => x.protocol === 'http')) {
    env.push({ name: `${envName(c.name)}_BASE_URL`, value: `http://127.0.0.1:${c.localPort}` });
  }
  if (identity.spec.connections.some((c) => c.protocol === 'kubernetes')) env.push({ name: 'KUBECONFIG', value: KUBECONFIG_FILE });
  env.push(...proxyEnv(identity));
  return env;
}

/** Loopback (the sidecar's own listeners) never goes through the proxy. */
export const NO_PROXY = '127.0.0.1,localhost,::1';

/**
 * The forward proxy's env, upper and lower case (curl reads only `http_proxy` in lower case; Go,
 * Python and npm read either). No token in the URL: it rotates, so the agent adds it per call
 * (Proxy-Authorization, or `http://agent:$(cat $CHAPERONE_TOKEN_FILE)@…`); without it the proxy answers 407.
 */
export function proxyEnv(identity: AgentIdentity): V1EnvVar[] {
  const proxy = identity.spec.interception?.forwardProxy;
  if (!proxy) return [];
  const url = `http://127.0.0.1:${proxy.localPort}`;
  const vars: [string, string][] = [['HTTP_PROXY', url], ['HTTPS_PROXY', url], ['NO_PROXY', NO_PROXY], ['CHAPERONE_PROXY_URL', url]];
  return [...vars, ...vars.filter(([n]) => n !== 'CHAPERONE_PROXY_URL').map(([n, v]): [string, string] => [n.toLowerCase(), v])].map(([name, value]) => ({ name, value }));
}

/** libpq env for the first postgres connection. The user name is informational: the sidecar logs in upstream with its own credential. */
function libpqEnv(c: AgentIdentityConnection, user: string): V1EnvVar[] {
  return [
    { name: 'PGHOST', value: '127.0.0.1' },
    { name: 'PGPORT', value: String(c.localPort) },
    { name: 'PGUSER', value: user },
    { name: 'PGDATABASE', value: c.database ?? '' },
    // Loopback to the sidecar is plain TCP; TLS runs from the sidecar to the upstream.
    { name: 'PGSSLMODE', value: 'disable' },
    { name: 'DATABASE_URL', value: databaseUrl(c, user) },
  ];
}

/** No password: the agent sends its token as the password (PGPASSWORD="$(cat $CHAPERONE_TOKEN_FILE)"). */
function databaseUrl(c: AgentIdentityConnection, user: string): string {
  return `postgresql://${encodeURIComponent(user)}@127.0.0.1:${c.localPort}/${encodeURIComponent(c.database ?? '')}?sslmode=disable`;
}

function upsert<T extends { name: string }>(list: T[] | undefined, item: T): T[] {
  const out = list ?? [];
  const i = out.findIndex((x) => x.name === item.name);
  if (i >= 0) out[i] = item;
  else out.push(item);
  return out;
}

function upsertMount(list: V1VolumeMount[] | undefined, m: V1VolumeMount): V1VolumeMount[] {
  const out = (list ?? []).filter((x) => x.name === m.name || x.mountPath !== m.mountPath);
  return upsert(out, m);
}

/** A projected volume carrying an API-audience ServiceAccount token (what the ServiceAccount admission plugin adds). */
export function isApiTokenVolume(v: V1Volume): boolean {
  if (v.name.startsWith('kube-api-access-')) return true;
  return (v.projected?.sources ?? []).some((s) => s.serviceAccountToken !== undefined && !s.serviceAccountToken.audience);
}

function underApiTokenPath(path: string): boolean {
  const p = path.replace(/\/+$/, '');
  return p === DEFAULT_API_TOKEN_PATH || p.startsWith(`${DEFAULT_API_TOKEN_PATH}/`);
}

/** Agent containers: every container and init container except the sidecar and the interception init container. */
function agentContainers(spec: V1PodSpec): V1Container[] {
  return [...(spec.initContainers ?? []), ...spec.containers].filter((c) => c.name !== SIDECAR_CONTAINER_NAME && c.name !== INTERCEPTION_CONTAINER_NAME);
}

/** Drops the default API token from agents: mounts of API-token volumes or at the well-known path, then the volumes nobody mounts. */
function removeAgentApiToken(spec: V1PodSpec, agents: V1Container[], own: ReadonlySet<string>): void {
  const apiVolumes = new Set((spec.volumes ?? []).filter((v) => !own.has(v.name) && isApiTokenVolume(v)).map((v) => v.name));
  for (const c of agents) {
    if (!c.volumeMounts) continue;
    c.volumeMounts = c.volumeMounts.filter((m) => !apiVolumes.has(m.name) && !underApiTokenPath(m.mountPath));
    if (c.volumeMounts.length === 0) delete c.volumeMounts;
  }
  if (!spec.volumes) return;
  const mounted = new Set(agents.flatMap((c) => (c.volumeMounts ?? []).map((m) => m.name)));
  spec.volumes = spec.volumes.filter((v) => !apiVolumes.has(v.name) || mounted.has(v.name));
}

function agentVolumes(configMapName: string, kube: boolean): V1Volume[] {
  const token: V1Volume = {
    name: VOLUME_AGENT_TOKEN,
    projected: { defaultMode: DEFAULT_VOLUME_MODE, sources: [{ serviceAccountToken: { audience: AGENT_TOKEN_AUDIENCE, expirationSeconds: AGENT_TOKEN_SECONDS, path: 'token' } }] },
  };
  if (!kube) return [token];
  return [
    token,
    { name: VOLUME_KUBECONFIG, configMap: { name: configMapName, defaultMode: DEFAULT_VOLUME_MODE, items: [{ key: KUBECONFIG_KEY, path: KUBECONFIG_KEY }] } },
    // The sidecar writes its listener CA certificates here (public); the private keys never leave its memory.
    { name: VOLUME_LISTENER_CA, emptyDir: {} },
  ];
}

/** Agents get the env and their token; a mount of a sidecar-only volume (a name the user picked too) is dropped, never shared. */
function editAgent(c: V1Container, env: readonly V1EnvVar[], kube: boolean, sidecarOnly: ReadonlySet<string>): void {
  if (c.volumeMounts?.some((m) => sidecarOnly.has(m.name))) c.volumeMounts = c.volumeMounts.filter((m) => !sidecarOnly.has(m.name));
  for (const e of env) c.env = upsert(c.env, { ...e });
  c.volumeMounts = upsertMount(c.volumeMounts, { name: VOLUME_AGENT_TOKEN, mountPath: AGENT_TOKEN_DIR, readOnly: true });
  if (!kube) return;
  c.volumeMounts = upsertMount(c.volumeMounts, { name: VOLUME_KUBECONFIG, mountPath: KUBECONFIG_DIR, readOnly: true });
  c.volumeMounts = upsertMount(c.volumeMounts, { name: VOLUME_LISTENER_CA, mountPath: LISTENER_CA_DIR, readOnly: true });
}

/** Puts the sidecar first among init containers (native) or last among containers (plain), removing it from the other list. */
function placeSidecar(spec: V1PodSpec, sidecar: V1Container, native: boolean): void {
  const inits = (spec.initContainers ?? []).filter((c) => c.name !== SIDECAR_CONTAINER_NAME);
  const mains = spec.containers.filter((c) => c.name !== SIDECAR_CONTAINER_NAME);
  if (native) {
    spec.initContainers = [sidecar, ...inits];
    spec.containers = mains;
    return;
  }
  spec.containers = [...mains, sidecar];
  if (inits.length > 0) spec.initContainers = inits;
  else delete spec.initContainers;
}

/** Secret files are root-owned 0400; the kubelet adds group read for fsGroup, so the sidecar runs with the pod's fsGroup as its GID. */
function ensureFsGroup(spec: V1PodSpec): number {
  const gid = spec.securityContext?.fsGroup ?? SIDECAR_GID;
  spec.securityContext = { ...spec.securityContext, fsGroup: gid };
  return gid;
}

/**
 * The injected pod. `identity` must be Ready (decide.ts); `compiledConfigMapName` is its
 * status.configMapName. Secrets and the API token are mounted only into the sidecar; agents get the
 * chaperone token, the connection env and (for kubernetes connections) a kubeconfig.
 */
export function desiredPod(pod: V1Pod, identity: AgentIdentity, compiledConfigMapName: string, options: BuildOptions = {}): V1Pod {
  const out = structuredClone(pod);
  const spec: V1PodSpec = out.spec ?? { containers: [] };
  out.spec = spec;
  const native = options.nativeSidecars ?? true;
  const mounts = options.mounts ?? identityMounts(identity);
  const kube = identity.spec.connections.some((c) => c.protocol === 'kubernetes');

  spec.automountServiceAccountToken = false;
  const gid = ensureFsGroup(spec);

  const sidecar = sidecarContainer({ identity, image: options.image ?? DEFAULT_SIDECAR_IMAGE, native, gid, mounts, listenerCa: kube });
  placeSidecar(spec, sidecar, native);
  // Transparent mode: the iptables init container runs first, ahead of the native sidecar (removed again for explicit).
  placeInterception(spec, interceptionInitContainer(identity, { image: options.image ?? DEFAULT_SIDECAR_IMAGE }));
  const own = sidecarVolumes(compiledConfigMapName, mounts);
  const added = [...own, ...agentVolumes(compiledConfigMapName, kube)];
  const agents = agentContainers(spec);
  removeAgentApiToken(spec, agents, new Set(added.map((v) => v.name)));
  const env = connectionEnv(identity);
  const sidecarOnly = new Set(own.map((v) => v.name));
  for (const c of agents) editAgent(c, env, kube, sidecarOnly);

  for (const v of added) spec.volumes = upsert(spec.volumes, v);

  const status: InjectedStatus = {
    version: INJECTION_VERSION,
    identity: identity.metadata.name ?? '',
    configMap: compiledConfigMapName,
    configHash: options.configHash ?? identity.status?.configHash ?? '',
    sidecar: { name: SIDECAR_CONTAINER_NAME, native, image: sidecar.image ?? '' },
    volumes: added.map((v) => v.name),
    containers: agents.map((c) => c.name),
    env: env.map((e) => e.name),
  };
  annotate(out, status);
  return out;
}

function annotate(out: V1Pod, status: InjectedStatus): void {
  out.metadata = { ...out.metadata, annotations: { ...out.metadata?.annotations, [ANNOTATION_INJECTED]: JSON.stringify(status) } };
}

/** Reads the status annotation back (undefined when absent or not ours). */
export function injectedStatus(pod: V1Pod): InjectedStatus | undefined {
  const raw = pod.metadata?.annotations?.[ANNOTATION_INJECTED];
  if (raw === undefined) return undefined;
  try {
    const v = JSON.parse(raw) as unknown;
    return typeof v === 'object' && v !== null && 'version' in v ? (v as InjectedStatus) : undefined;
  } catch {
    return undefined;
  }
}
