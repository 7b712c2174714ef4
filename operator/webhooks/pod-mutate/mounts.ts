// The Secret/ConfigMap/token directories an identity's sidecar needs, derived from the AgentIdentity (pure; the compiler's MountSet lists the same).
import type { AgentIdentity, AgentIdentityConnection } from '../../api/types.ts';
import {
  credentialMountPath,
  issuerCaMountPath,
  signingKeyMountPath,
  tlsCaMountPath,
  tlsClientMountPath,
  type MountSpec,
} from './layout.ts';

/** Merges files into one MountSpec per directory, sorted by directory, keys sorted. */
class Mounts {
  private readonly byDir = new Map<string, { source: MountSpec['source']; name: string; keys: Set<string> }>();

  add(file: string, source: MountSpec['source'], name: string): void {
    const slash = file.lastIndexOf('/');
    const dir = file.slice(0, slash);
    const m = this.byDir.get(dir) ?? { source, name, keys: new Set<string>() };
    m.keys.add(file.slice(slash + 1));
    this.byDir.set(dir, m);
  }

  list(): MountSpec[] {
    return [...this.byDir.entries()]
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .map(([dir, m]) => ({ dir, source: m.source, name: m.name, keys: [...m.keys].sort() }));
  }
}

function credentialKeys(c: AgentIdentityConnection): string[] {
  const cred = c.credential;
  if (!cred) return [];
  if (c.protocol === 'postgres' || cred.type === 'Basic') return [cred.usernameKey ?? 'username', cred.passwordKey ?? 'password'];
  return [cred.tokenKey ?? 'token'];
}

function addConnection(m: Mounts, c: AgentIdentityConnection): void {
  const secret = c.credential?.secretRef?.name;
  if (secret) for (const key of credentialKeys(c)) m.add(credentialMountPath(c.name, key), 'secret', secret);
  const sa = c.credential?.serviceAccountName;
  if (c.protocol === 'kubernetes' && sa) m.add(credentialMountPath(c.name, 'token'), 'serviceAccountToken', sa);
  addTls(m, c);
}

function addTls(m: Mounts, c: AgentIdentityConnection): void {
  const tls = c.tls;
  if (tls?.caSecretRef) m.add(tlsCaMountPath(c.name, tls.caSecretRef.key ?? 'ca.crt'), 'secret', tls.caSecretRef.name);
  if (tls?.caConfigMapRef) m.add(tlsCaMountPath(c.name, tls.caConfigMapRef.key ?? 'ca.crt'), 'configMap', tls.caConfigMapRef.name);
  const client = tls?.clientCertificateSecretRef?.name;
  if (client) {
    m.add(tlsClientMountPath(c.name, 'tls.crt'), 'secret', client);
    m.add(tlsClientMountPath(c.name, 'tls.key'), 'secret', client);
  }
}

/** Every file the identity's compiled config may name, grouped by directory. */
export function identityMounts(identity: AgentIdentity): MountSpec[] {
  const m = new Mounts();
  for (const c of identity.spec.connections) addConnection(m, c);
  for (const i of identity.spec.issuers ?? []) {
    if (i.caConfigMapRef) m.add(issuerCaMountPath(i.name, i.caConfigMapRef.key ?? 'ca.crt'), 'configMap', i.caConfigMapRef.name);
  }
  const signing = identity.spec.recording?.signing?.secretRef;
  if (signing) m.add(signingKeyMountPath(signing.key ?? 'ed25519.pem'), 'secret', signing.name);
  return m.list();
}
