// The sidecar container and the volumes only it mounts (pure builders for build.ts).
import type { V1Container, V1ResourceRequirements, V1SecurityContext, V1Volume, V1VolumeMount } from '@kubernetes/client-node';
import type { AgentIdentity } from '../../api/types.ts';
import {
  CONFIG_DIR,
  CONFIG_KEY,
  DEFAULT_ADMIN_PORT,
  DEFAULT_SIDECAR_LIMITS,
  DEFAULT_SIDECAR_REQUESTS,
  SECRET_FILE_MODE,
  SIDECAR_API_TOKEN_DIR,
  SIDECAR_API_TOKEN_SECONDS,
  SIDECAR_ARGS,
  SIDECAR_COMMAND,
  SIDECAR_CONTAINER_NAME,
  SIDECAR_UID,
  VOLUME_API_TOKEN,
  VOLUME_CONFIG,
  VOLUME_LISTENER_CA,
  LISTENER_CA_DIR,
  sourceVolumeName,
  type MountSpec,
} from './layout.ts';

export interface SidecarSpecInput {
  readonly identity: AgentIdentity;
  readonly image: string;
  readonly native: boolean;
  /** The sidecar's primary GID: the pod's fsGroup, so the kubelet's group-read bit on Secret files applies to it. */
  readonly gid: number;
  readonly mounts: readonly MountSpec[];
  /** kubernetes connections: the sidecar writes its listener CA certificates into the shared emptyDir. */
  readonly listenerCa?: boolean;
}

/** Exact security context of the sidecar (tests compare it whole). */
export function sidecarSecurityContext(gid: number): V1SecurityContext {
  return {
    runAsNonRoot: true,
    runAsUser: SIDECAR_UID,
    runAsGroup: gid,
    readOnlyRootFilesystem: true,
    allowPrivilegeEscalation: false,
    privileged: false,
    capabilities: { drop: ['ALL'] },
    seccompProfile: { type: 'RuntimeDefault' },
  };
}

function quantity(v: number | string | undefined, fallback: string): string {
  return v === undefined ? fallback : String(v);
}

export function sidecarResources(identity: AgentIdentity): V1ResourceRequirements {
  const r = identity.spec.sidecar?.resources;
  return {
    requests: { cpu: quantity(r?.requests?.cpu, DEFAULT_SIDECAR_REQUESTS.cpu), memory: quantity(r?.requests?.memory, DEFAULT_SIDECAR_REQUESTS.memory) },
    limits: { cpu: quantity(r?.limits?.cpu, DEFAULT_SIDECAR_LIMITS.cpu), memory: quantity(r?.limits?.memory, DEFAULT_SIDECAR_LIMITS.memory) },
  };
}

// The API server defaults these fields when it stores a pod; writing them ourselves keeps desiredPod a fixpoint of the
// stored pod too (re-admitting it, or a reinvocation after defaulting, yields an empty patch).
/** corev1 default for a fieldRef (ObjectFieldSelector.apiVersion). */
const FIELD_REF_API_VERSION = 'v1';
/** corev1 defaults of a ConfigMap/projected volume's defaultMode (0644) and a container's terminationMessagePath. */
export const DEFAULT_VOLUME_MODE = 0o644;
const TERMINATION_MESSAGE_PATH = '/dev/termination-log';

function fieldEnv(name: string, fieldPath: string): { name: string; valueFrom: { fieldRef: { apiVersion: string; fieldPath: string } } } {
  return { name, valueFrom: { fieldRef: { apiVersion: FIELD_REF_API_VERSION, fieldPath } } };
}

/** The API server's rule: Always for the `latest` tag or no tag and no digest, else IfNotPresent. */
export function defaultPullPolicy(image: string): 'Always' | 'IfNotPresent' {
  if (image.includes('@')) return 'IfNotPresent';
  const last = image.slice(image.lastIndexOf('/') + 1);
  const colon = last.lastIndexOf(':');
  return colon < 0 || last.slice(colon + 1) === 'latest' ? 'Always' : 'IfNotPresent';
}

function probe(path: string, port: number, periodSeconds: number, failureThreshold = 3): NonNullable<V1Container['readinessProbe']> {
  return { httpGet: { path, port, scheme: 'HTTP' }, periodSeconds, failureThreshold, timeoutSeconds: 1, successThreshold: 1 };
}

/**
 * A native sidecar's startup probe holds the agent containers back until it passes: the agents start
 * only once every listener is up (and its CA file written), so the agent's first kubectl or psql works.
 */
export const STARTUP_PERIOD_SECONDS = 1;
export const STARTUP_FAILURE_THRESHOLD = 120;

function sidecarMounts(mounts: readonly MountSpec[], listenerCa: boolean): V1VolumeMount[] {
  return [
    { name: VOLUME_CONFIG, mountPath: CONFIG_DIR, readOnly: true },
    { name: VOLUME_API_TOKEN, mountPath: SIDECAR_API_TOKEN_DIR, readOnly: true },
    ...mounts.map((m) => ({ name: sourceVolumeName(m.source, m.name), mountPath: m.dir, readOnly: true })),
    // Writable in the sidecar only (its root filesystem is read-only); public CA certificates only.
    ...(listenerCa ? [{ name: VOLUME_LISTENER_CA, mountPath: LISTENER_CA_DIR }] : []),
  ];
}

export function sidecarContainer(input: SidecarSpecInput): V1Container {
  const s = input.identity.spec.sidecar;
  const port = s?.adminPort ?? DEFAULT_ADMIN_PORT;
  const c: V1Container = {
    name: SIDECAR_CONTAINER_NAME,
    image: s?.image ?? input.image,
    command: [...SIDECAR_COMMAND],
    args: [...SIDECAR_ARGS],
    env: [fieldEnv('POD_NAME', 'metadata.name'), fieldEnv('POD_UID', 'metadata.uid'), fieldEnv('POD_NAMESPACE', 'metadata.namespace')],
    ports: [{ name: 'chaperone-admin', containerPort: port, protocol: 'TCP' }],
    readinessProbe: probe('/readyz', port, 5),
    livenessProbe: probe('/healthz', port, 10),
    startupProbe: probe('/readyz', port, STARTUP_PERIOD_SECONDS, STARTUP_FAILURE_THRESHOLD),
    resources: sidecarResources(input.identity),
    securityContext: sidecarSecurityContext(input.gid),
    volumeMounts: sidecarMounts(input.mounts, input.listenerCa ?? false),
    terminationMessagePath: TERMINATION_MESSAGE_PATH,
    terminationMessagePolicy: 'FallbackToLogsOnError',
  };
  c.imagePullPolicy = s?.imagePullPolicy ?? defaultPullPolicy(c.image ?? '');
  if (input.native) c.restartPolicy = 'Always';
  return c;
}

/** The volumes only the sidecar mounts: compiled config, its API token + CA, one per Secret/ConfigMap source. */
export function sidecarVolumes(configMapName: string, mounts: readonly MountSpec[]): V1Volume[] {
  const volumes: V1Volume[] = [
    { name: VOLUME_CONFIG, configMap: { name: configMapName, defaultMode: DEFAULT_VOLUME_MODE, items: [{ key: CONFIG_KEY, path: CONFIG_KEY }] } },
    {
      name: VOLUME_API_TOKEN,
      projected: {
        defaultMode: SECRET_FILE_MODE,
        sources: [
          // No audience: the API server's own, so the token authenticates the sidecar to kube-apiserver.
          { serviceAccountToken: { path: 'token', expirationSeconds: SIDECAR_API_TOKEN_SECONDS } },
          { configMap: { name: 'kube-root-ca.crt', items: [{ key: 'ca.crt', path: 'ca.crt' }] } },
          { downwardAPI: { items: [{ path: 'namespace', fieldRef: { apiVersion: FIELD_REF_API_VERSION, fieldPath: 'metadata.namespace' } }] } },
        ],
      },
    },
  ];
  return volumes.concat(sourceVolumes(mounts));
}

/** One volume per source (a Secret used in two directories is one volume mounted twice), items = every key any directory needs. */
function sourceVolumes(mounts: readonly MountSpec[]): V1Volume[] {
  const bySource = new Map<string, { m: MountSpec; keys: Set<string> }>();
  for (const m of mounts) {
    const name = sourceVolumeName(m.source, m.name);
    const entry = bySource.get(name) ?? { m, keys: new Set<string>() };
    for (const k of m.keys) entry.keys.add(k);
    bySource.set(name, entry);
  }
  return [...bySource.entries()].map(([name, { m, keys }]) => sourceVolume(name, m, [...keys].sort()));
}

function sourceVolume(name: string, m: MountSpec, keys: string[]): V1Volume {
  const items = keys.map((key) => ({ key, path: key, mode: SECRET_FILE_MODE }));
  if (m.source === 'secret') return { name, secret: { secretName: m.name, defaultMode: SECRET_FILE_MODE, items } };
  if (m.source === 'configMap') return { name, configMap: { name: m.name, defaultMode: SECRET_FILE_MODE, items } };
  // The pod's own ServiceAccount (decide.ts refuses others), API audience, for a kubernetes connection.
  return { name, projected: { defaultMode: SECRET_FILE_MODE, sources: [{ serviceAccountToken: { path: 'token', expirationSeconds: SIDECAR_API_TOKEN_SECONDS } }] } };
}
