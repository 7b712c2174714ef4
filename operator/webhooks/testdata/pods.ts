// Synthetic AgentIdentities and Pods for the pod webhook tests (no real secrets: Secrets are named, never valued).
import type { V1Pod } from '@kubernetes/client-node';
import type { AgentIdentity, AgentIdentitySpec } from '../../api/types.ts';
import { LABEL_IDENTITY } from '../pod-mutate/layout.ts';

export const NS = 'agents';

/** A Ready identity with a postgres, an http and (optionally) a kubernetes connection. */
export function readyIdentity(spec: Partial<AgentIdentitySpec> = {}, name = 'coding-agent'): AgentIdentity {
  return {
    apiVersion: 'chaperone.dev/v1alpha1',
    kind: 'AgentIdentity',
    metadata: { name, namespace: NS, generation: 3 },
    spec: {
      connections: [
        {
          name: 'orders-db',
          protocol: 'postgres',
          upstream: { host: 'orders-db.databases.svc', port: 5432 },
          database: 'orders',
          localPort: 5432,
          tls: { mode: 'verify-full', caSecretRef: { name: 'orders-db-ca' } },
          credential: { secretRef: { name: 'orders-db-agent' }, usernameKey: 'username', passwordKey: 'password' },
        },
        { name: 'github', protocol: 'http', upstream: { url: 'https://api.github.com' }, localPort: 8080, credential: { secretRef: { name: 'github-token' }, type: 'Bearer' } },
      ],
      ...spec,
    },
    status: {
      observedGeneration: 3,
      configMapName: `chaperone-${name}`,
      configHash: 'a'.repeat(64),
      conditions: [{ type: 'Ready', status: 'True', observedGeneration: 3, lastTransitionTime: '2026-01-01T00:00:00Z', reason: 'Compiled', message: 'ok' }],
    },
  };
}

/** The identity's Secret names (what the validating webhook guards). */
export const GUARDED = new Set(['orders-db-agent', 'orders-db-ca', 'github-token']);

/** A pod as the API server hands it to a mutating webhook: the ServiceAccount plugin has already added kube-api-access. */
export function agentPod(extra: Partial<V1Pod['spec']> = {}, labels: Record<string, string> = { [LABEL_IDENTITY]: 'coding-agent' }): V1Pod {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { generateName: 'agent-', namespace: NS, labels, annotations: { 'example.com/owner': 'team-a' } },
    spec: {
      serviceAccountName: 'coding-agent',
      containers: [
        {
          name: 'agent',
          image: 'example.com/agent:1',
          env: [{ name: 'LOG_LEVEL', value: 'debug' }, { name: 'PGHOST', value: 'orders-db.databases.svc' }],
          volumeMounts: [
            { name: 'work', mountPath: '/work' },
            { name: 'kube-api-access-x7k2p', mountPath: '/var/run/secrets/kubernetes.io/serviceaccount', readOnly: true },
          ],
        },
      ],
      volumes: [
        { name: 'work', emptyDir: {} },
        {
          name: 'kube-api-access-x7k2p',
          projected: {
            defaultMode: 420,
            sources: [
              { serviceAccountToken: { expirationSeconds: 3607, path: 'token' } },
              { configMap: { name: 'kube-root-ca.crt', items: [{ key: 'ca.crt', path: 'ca.crt' }] } },
            ],
          },
        },
      ],
      ...extra,
    },
  };
}

/** The smallest pod: one container, no volumes, no env, no annotations. */
export function barePod(): V1Pod {
  return { metadata: { name: 'bare', labels: { [LABEL_IDENTITY]: 'coding-agent' } }, spec: { containers: [{ name: 'agent', image: 'example.com/agent:1' }] } };
}
