// Names, paths and files of an injected pod: the contract between the pod webhook, the compiled sidecar config and the agent.
//
// The Secret/ConfigMap layout mirrors operator/compile/paths.ts (not imported while that module is in
// flight): one directory per mounted volume under MOUNT_ROOT, so one volume is one mount.
//   <root>/<connection>/<key>              the connection's credential Secret
//   <root>/<connection>.tls-ca/<key>       the connection's CA bundle (Secret or ConfigMap)
//   <root>/<connection>.tls-client/<key>   the connection's client certificate Secret
//   <root>/_issuer.<issuer>/<key>          an OIDC issuer's CA bundle (ConfigMap)
//   <root>/_recording/<key>                the recording signing key Secret
import { createHash } from 'node:crypto';

export const LABEL_IDENTITY = 'chaperone.dev/identity';
export const ANNOTATION_INJECTED = 'chaperone.dev/injected';
/** Bumped when the shape of the injected pod changes (the annotation records it). */
export const INJECTION_VERSION = 1;

export const SIDECAR_CONTAINER_NAME = 'chaperone-sidecar';
/** Fixed non-root identity of the sidecar process (the distroless `nonroot` user). */
export const SIDECAR_UID = 65532;
export const SIDECAR_GID = 65532;
/** Same as sidecar/core/config-types.ts DEFAULT_ADMIN_PORT and the CRD default (a test checks both). */
export const DEFAULT_ADMIN_PORT = 9901;
export const DEFAULT_SIDECAR_IMAGE = 'ghcr.io/chaperone-dev/chaperone-sidecar:latest';
export const DEFAULT_SIDECAR_REQUESTS = { cpu: '50m', memory: '64Mi' } as const;
export const DEFAULT_SIDECAR_LIMITS = { cpu: '1', memory: '256Mi' } as const;

export const CONFIG_DIR = '/etc/chaperone/config';
export const CONFIG_KEY = 'sidecar.yaml';
export const CONFIG_FILE = `${CONFIG_DIR}/${CONFIG_KEY}`;
export const SIDECAR_COMMAND: readonly string[] = ['chaperone-sidecar'];
export const SIDECAR_ARGS: readonly string[] = ['--config', CONFIG_FILE];

export const MOUNT_ROOT = '/var/run/chaperone/secrets';
/** Secret files are readable by their owner only; the kubelet adds group read for fsGroup (the sidecar's GID). */
export const SECRET_FILE_MODE = 0o400;

/** The sidecar's own API token (default audience = the API server) + cluster CA, at the path client libraries look in. */
export const SIDECAR_API_TOKEN_DIR = '/var/run/secrets/kubernetes.io/serviceaccount';
export const SIDECAR_API_TOKEN_SECONDS = 3607;

/** The agent's identity token: audience `chaperone`, 10 minutes (the API server's minimum), re-read on rotation. */
export const AGENT_TOKEN_DIR = '/var/run/secrets/chaperone';
export const AGENT_TOKEN_FILE = `${AGENT_TOKEN_DIR}/token`;
export const AGENT_TOKEN_AUDIENCE = 'chaperone';
export const AGENT_TOKEN_SECONDS = 600;

/** The compiled ConfigMap's `kubeconfig` key (server = the sidecar's loopback port, tokenFile = AGENT_TOKEN_FILE). */
export const KUBECONFIG_KEY = 'kubeconfig';
export const KUBECONFIG_DIR = '/etc/chaperone/kubeconfig';
export const KUBECONFIG_FILE = `${KUBECONFIG_DIR}/${KUBECONFIG_KEY}`;

/**
 * Kubernetes connections: the sidecar makes its listener's TLS pair in memory at start and writes only
 * the CA certificate (public) here, one file per connection, in an emptyDir the sidecar writes and the
 * agents mount read-only; the kubeconfig's `certificate-authority` names that file.
 */
export const LISTENER_CA_DIR = '/var/run/chaperone/listener-ca';
export function listenerCaFile(connection: string): string {
  return `${LISTENER_CA_DIR}/${connection}.crt`;
}

/** Volumes the webhook owns; every name starts with VOLUME_PREFIX. */
export const VOLUME_PREFIX = 'chaperone-';
export const VOLUME_CONFIG = 'chaperone-config';
export const VOLUME_API_TOKEN = 'chaperone-api-token';
export const VOLUME_AGENT_TOKEN = 'chaperone-token';
export const VOLUME_KUBECONFIG = 'chaperone-kubeconfig';
export const VOLUME_LISTENER_CA = 'chaperone-listener-ca';

/** Where the default ServiceAccount admission plugin mounts the API token into every container. */
export const DEFAULT_API_TOKEN_PATH = '/var/run/secrets/kubernetes.io/serviceaccount';

function under(dir: string, key: string): string {
  return `${MOUNT_ROOT}/${dir}/${key}`;
}

/** The file holding `key` of a connection's credential Secret. */
export function credentialMountPath(connection: string, key: string): string {
  return under(connection, key);
}
export function tlsCaMountPath(connection: string, key: string): string {
  return under(`${connection}.tls-ca`, key);
}
export function tlsClientMountPath(connection: string, key: 'tls.crt' | 'tls.key'): string {
  return under(`${connection}.tls-client`, key);
}
export function issuerCaMountPath(issuer: string, key: string): string {
  return under(`_issuer.${issuer}`, key);
}
export function signingKeyMountPath(key: string): string {
  return under('_recording', key);
}

/**
 * One directory mounted read-only into the sidecar only, holding exactly `keys` of the named source
 * (same shape as operator/compile/paths.ts MountSpec). `serviceAccountToken`: a token of that
 * ServiceAccount in file `token` — only projectable when it is the pod's own ServiceAccount.
 */
export interface MountSpec {
  readonly dir: string;
  readonly source: 'secret' | 'configMap' | 'serviceAccountToken';
  readonly name: string;
  readonly keys: readonly string[];
}

/** Volume names are DNS labels (≤ 63): a short stable digest of the source stands in for long Secret names. */
export function sourceVolumeName(source: MountSpec['source'], name: string): string {
  const key = `${source}/${name}`;
  const hit = volumeNames.get(key);
  if (hit !== undefined) return hit;
  if (volumeNames.size >= VOLUME_NAME_CACHE) volumeNames.clear();
  const v = computeVolumeName(source, name);
  volumeNames.set(key, v);
  return v;
}

/** Every admission names the same few volumes: a SHA-256 per name per pod showed up in the webhook's profile. */
const VOLUME_NAME_CACHE = 4096;
const volumeNames = new Map<string, string>();

function computeVolumeName(source: MountSpec['source'], name: string): string {
  const kind = source === 'secret' ? 's' : source === 'configMap' ? 'cm' : 'sa';
  const digest = createHash('sha256').update(`${source}/${name}`).digest('hex').slice(0, 12);
  return `${VOLUME_PREFIX}${kind}-${digest}`;
}

/** `orders-db` → `ORDERS_DB` (env var names of a connection). */
export function envName(connection: string): string {
  return connection.toUpperCase().replace(/[^A-Z0-9]/g, '_');
}
