// Shared setup for the operator's integration and e2e tests: CRDs installed, an operator started against the test control plane, small object builders.
import assert from 'node:assert/strict';
import { KubeConfig } from '@kubernetes/client-node';
import pino, { type Logger } from 'pino';
import { loadCrds } from '../../operator/api/schema.ts';
import type { AgentIdentity, MaskingPolicy } from '../../operator/api/types.ts';
import { startOperator, type OperatorOptions, type RunningOperator } from '../../operator/main.ts';
import { OperatorMetrics } from '../../operator/metrics.ts';
import type { ControlPlane } from '../cluster/control-plane.ts';
import { eventually } from '../env/wait.ts';

export const TEST_FIELD_MANAGER = 'chaperone-operator-test';
const CHAPERONE = '/apis/chaperone.dev/v1alpha1';

/** Logs of the operator under test: warnings only unless CHAPERONE_TEST_LOG=info|debug. */
export function testLogger(name = 'operator'): Logger {
  return pino({ name, level: process.env.CHAPERONE_TEST_LOG ?? 'warn' }, pino.destination(2));
}

export async function installCrds(cp: ControlPlane): Promise<void> {
  for (const { crd } of loadCrds()) {
    const r = await cp.request('admin', 'PATCH', `/apis/apiextensions.k8s.io/v1/customresourcedefinitions/${crd.metadata.name}?fieldManager=${TEST_FIELD_MANAGER}&force=true`, crd, { contentType: 'application/apply-patch+yaml' });
    assert.ok(r.status === 200 || r.status === 201, `installing ${crd.metadata.name}: ${r.status} ${r.text.slice(0, 300)}`);
  }
  for (const { crd } of loadCrds()) {
    await eventually(async () => {
      const r = await cp.request<{ status?: { conditions?: { type: string; status: string }[] } }>('admin', 'GET', `/apis/apiextensions.k8s.io/v1/customresourcedefinitions/${crd.metadata.name}`);
      return r.body.status?.conditions?.some((c) => c.type === 'Established' && c.status === 'True') ? true : undefined;
    }, { what: `${crd.metadata.name} Established` });
  }
}

export function kubeConfigFor(cp: ControlPlane, user = 'admin'): KubeConfig {
  const kc = new KubeConfig();
  kc.loadFromFile(cp.kubeconfig(user));
  return kc;
}

export type TestOperatorOptions = Partial<Omit<OperatorOptions, 'kubeConfig'>> & { readonly user?: string };

/** An operator on loopback: admin on a free port, no webhook unless asked, no leader election unless asked, short watches. */
export async function startTestOperator(cp: ControlPlane, operatorNamespace: string, o: TestOperatorOptions = {}): Promise<RunningOperator> {
  return startOperator({
    operatorNamespace, webhook: false, leaderElection: false, admin: { host: '127.0.0.1', port: 0 },
    watchTimeoutSeconds: 30, log: testLogger(), metrics: new OperatorMetrics({ defaultMetrics: false }), ...o,
    kubeConfig: kubeConfigFor(cp, o.user ?? 'admin'),
  });
}

export async function apply(cp: ControlPlane, path: string, obj: unknown): Promise<Record<string, unknown>> {
  const r = await cp.request<Record<string, unknown>>('admin', 'PATCH', `${path}?fieldManager=${TEST_FIELD_MANAGER}&force=true`, obj, { contentType: 'application/apply-patch+yaml' });
  assert.ok(r.status === 200 || r.status === 201, `apply ${path}: ${r.status} ${r.text.slice(0, 400)}`);
  return r.body;
}

export function identityPath(ns: string, name = ''): string {
  return `${CHAPERONE}/namespaces/${ns}/agentidentities${name ? `/${name}` : ''}`;
}
export function policyPath(ns: string, name = ''): string {
  return `${CHAPERONE}/namespaces/${ns}/maskingpolicies${name ? `/${name}` : ''}`;
}
export function configMapPath(ns: string, name = ''): string {
  return `/api/v1/namespaces/${ns}/configmaps${name ? `/${name}` : ''}`;
}
export function secretPath(ns: string, name = ''): string {
  return `/api/v1/namespaces/${ns}/secrets${name ? `/${name}` : ''}`;
}

/** A postgres-only identity whose credential Secret is `<name>-db` (keys username/password). */
export function pgIdentity(ns: string, name: string, o: { labels?: Record<string, string>; host?: string; port?: number; localPort?: number; passwordKey?: string; database?: string } = {}): AgentIdentity {
  return {
    apiVersion: 'chaperone.dev/v1alpha1', kind: 'AgentIdentity',
    metadata: { name, namespace: ns, ...(o.labels ? { labels: o.labels } : {}) },
    spec: {
      connections: [{
        name: 'db', protocol: 'postgres', upstream: { host: o.host ?? 'db.example.internal', port: o.port ?? 5432 }, database: o.database ?? 'app', localPort: o.localPort ?? 5432,
        tls: { mode: 'disable' }, credential: { secretRef: { name: `${name}-db` }, usernameKey: 'username', passwordKey: o.passwordKey ?? 'password' },
      }],
    },
  };
}

export function secret(ns: string, name: string, data: Record<string, string>): Record<string, unknown> {
  return { apiVersion: 'v1', kind: 'Secret', metadata: { name, namespace: ns }, type: 'Opaque', stringData: data };
}

export function maskingPolicy(ns: string, name: string, selector: MaskingPolicy['spec']['selector'], patterns: { name: string; regex: string }[] = []): MaskingPolicy {
  return {
    apiVersion: 'chaperone.dev/v1alpha1', kind: 'MaskingPolicy', metadata: { name, namespace: ns },
    spec: { selector, ...(patterns.length > 0 ? { patterns: patterns.map((p) => ({ ...p, category: 'secret' })) } : {}) },
  };
}

export async function getIdentity(cp: ControlPlane, ns: string, name: string): Promise<AgentIdentity | undefined> {
  const r = await cp.request<AgentIdentity>('admin', 'GET', identityPath(ns, name));
  return r.status === 200 ? r.body : undefined;
}

export function condition(id: AgentIdentity | undefined, type: string): { status: string; reason: string; message: string; lastTransitionTime: string } | undefined {
  return id?.status?.conditions?.find((c) => c.type === type);
}

/** Waits until the identity's Ready condition has `status` for its current generation. */
export async function waitReady(cp: ControlPlane, ns: string, name: string, status: 'True' | 'False' = 'True', timeoutMs = 30_000): Promise<AgentIdentity> {
  let last: AgentIdentity | undefined;
  return eventually(async () => {
    last = await getIdentity(cp, ns, name);
    const c = condition(last, 'Ready');
    return c?.status === status && last?.status?.observedGeneration === last?.metadata.generation ? last : undefined;
  }, { what: () => `AgentIdentity ${ns}/${name} Ready=${status}; last status ${JSON.stringify(last?.status ?? null)}`, timeoutMs });
}

export async function getConfigMap(cp: ControlPlane, ns: string, name: string): Promise<{ metadata: { resourceVersion: string; labels?: Record<string, string>; annotations?: Record<string, string>; ownerReferences?: { uid: string; controller?: boolean; kind: string; name: string }[] }; data?: Record<string, string> } | undefined> {
  const r = await cp.request<{ metadata: { resourceVersion: string }; data?: Record<string, string> }>('admin', 'GET', configMapPath(ns, name));
  return r.status === 200 ? r.body : undefined;
}
