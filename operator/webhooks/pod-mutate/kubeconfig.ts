// The agent's kubeconfig (the compiled ConfigMap's `kubeconfig` key): each kubernetes connection's loopback TLS listener, its CA file, the agent's own token file.
//
// client-go sends a bearer token over TLS only, so the server is https://127.0.0.1:<port> and the
// CA is the one the sidecar made at start and wrote to listenerCaFile(<connection>). The token is a
// `tokenFile`, so kubectl re-reads the projected token when the kubelet rotates it.
import { stringify } from 'yaml';
import type { AgentIdentity } from '../../api/types.ts';
import { AGENT_TOKEN_FILE, listenerCaFile } from './layout.ts';

export const KUBECONFIG_USER = 'chaperone';

/** undefined when the identity has no kubernetes connection (no kubeconfig key, no KUBECONFIG env). */
export function agentKubeconfig(identity: AgentIdentity): string | undefined {
  const kube = identity.spec.connections.filter((c) => c.protocol === 'kubernetes');
  const first = kube[0];
  if (!first) return undefined;
  return stringify({
    apiVersion: 'v1', kind: 'Config', 'current-context': first.name,
    clusters: kube.map((c) => ({ name: c.name, cluster: { server: `https://127.0.0.1:${c.localPort}`, 'certificate-authority': listenerCaFile(c.name) } })),
    users: [{ name: KUBECONFIG_USER, user: { tokenFile: AGENT_TOKEN_FILE } }],
    contexts: kube.map((c) => ({ name: c.name, context: { cluster: c.name, user: KUBECONFIG_USER, namespace: identity.metadata.namespace ?? 'default' } })),
  });
}
