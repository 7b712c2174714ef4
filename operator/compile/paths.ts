// Where the webhook mounts each Secret/ConfigMap key into the sidecar: one function per purpose, shared by the compiler and the pod webhook.
//
// Layout under the mount root (one directory per mounted volume, so the webhook adds one volume each):
//   <root>/<connection>/<key>              the connection's credential Secret (or the kubernetes token)
//   <root>/<connection>.tls-ca/<key>       the connection's CA bundle (Secret or ConfigMap)
//   <root>/<connection>.tls-client/<key>   the connection's client certificate Secret (tls.crt, tls.key)
//   <root>/_issuer.<issuer>/<key>          an OIDC issuer's CA bundle (ConfigMap)
//   <root>/_masking.<secret>/<key>         a MaskingPolicy HMAC key Secret
//   <root>/_recording/<key>                the recording signing key Secret
// Connection and issuer names cannot contain `.` or start with `_`, so no two purposes share a directory.

export const DEFAULT_MOUNT_ROOT = '/var/run/chaperone/secrets';

function under(root: string, dir: string, key: string): string {
  return `${root.replace(/\/+$/, '')}/${dir}/${key}`;
}

/** The file holding `key` of a connection's credential Secret. */
export function credentialMountPath(connection: string, key: string, root: string = DEFAULT_MOUNT_ROOT): string {
  return under(root, connection, key);
}

export function tlsCaMountPath(connection: string, key: string, root: string = DEFAULT_MOUNT_ROOT): string {
  return under(root, `${connection}.tls-ca`, key);
}

export function tlsClientMountPath(connection: string, key: 'tls.crt' | 'tls.key', root: string = DEFAULT_MOUNT_ROOT): string {
  return under(root, `${connection}.tls-client`, key);
}

export function issuerCaMountPath(issuer: string, key: string, root: string = DEFAULT_MOUNT_ROOT): string {
  return under(root, `_issuer.${issuer}`, key);
}

export function hmacKeyMountPath(secret: string, key: string, root: string = DEFAULT_MOUNT_ROOT): string {
  return under(root, `_masking.${secret}`, key);
}

export function signingKeyMountPath(key: string, root: string = DEFAULT_MOUNT_ROOT): string {
  return under(root, '_recording', key);
}

/**
 * One volume the webhook must mount read-only into the sidecar container only: `dir` holds exactly
 * `keys` (as `items`, key → same file name). `serviceAccountToken`: a token of that ServiceAccount,
 * file `token` (the operator must provide it; a pod can project tokens of its own ServiceAccount only).
 */
export interface MountSpec {
  readonly dir: string;
  readonly source: 'secret' | 'configMap' | 'serviceAccountToken';
  readonly name: string;
  readonly keys: readonly string[];
}

/** Collects mounts, merging keys of the same directory; `list()` is sorted (deterministic). */
export class MountSet {
  private readonly byDir = new Map<string, { source: MountSpec['source']; name: string; keys: Set<string> }>();

  /** Registers `file` (= `<dir>/<key>`) from the named source and returns it. */
  add(file: string, source: MountSpec['source'], name: string): string {
    const slash = file.lastIndexOf('/');
    const dir = file.slice(0, slash);
    const key = file.slice(slash + 1);
    const m = this.byDir.get(dir) ?? { source, name, keys: new Set<string>() };
    m.keys.add(key);
    this.byDir.set(dir, m);
    return file;
  }

  list(): MountSpec[] {
    return [...this.byDir.entries()]
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .map(([dir, m]) => ({ dir, source: m.source, name: m.name, keys: [...m.keys].sort() }));
  }
}
