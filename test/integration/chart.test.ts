// The Helm chart: lints, renders what the code builds (RBAC, webhooks, CRDs), refuses bad values, and installs into the real control plane,
// where the operator then runs under the chart's own ServiceAccount and RBAC.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { KubeConfig } from '@kubernetes/client-node';
import { parseAllDocuments } from 'yaml';
import { mutatingWebhookConfiguration, validatingWebhookConfiguration } from '../../operator/manifests/webhooks.ts';
import { startOperator, type RunningOperator } from '../../operator/main.ts';
import { OperatorMetrics } from '../../operator/metrics.ts';
import { sharedControlPlane, type ControlPlane } from '../cluster/control-plane.ts';
import { toolPath } from '../cluster/tools.ts';
import { eventually } from '../env/wait.ts';
import { apply, identityPath, pgIdentity, secretPath, testLogger } from './operator-controllers.harness.ts';

const root = resolve(import.meta.dirname, '../..');
const chart = join(root, 'charts/chaperone');
const RELEASE_NS = 'chaperone-system';

type Obj = { apiVersion: string; kind: string; metadata: { name: string; namespace?: string; labels?: Record<string, string>; annotations?: Record<string, string> }; [k: string]: unknown };

function helm(args: readonly string[]): { status: number; stdout: string; stderr: string } {
  const r = spawnSync(toolPath('helm'), args, { encoding: 'utf8', timeout: 120_000, env: { ...process.env, HELM_CACHE_HOME: join(dir, 'helm-cache'), HELM_CONFIG_HOME: join(dir, 'helm-config'), HELM_DATA_HOME: join(dir, 'helm-data') } });
  return { status: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

function render(set: readonly string[] = []): Obj[] {
  const r = helm(['template', 'chaperone', chart, '--namespace', RELEASE_NS, ...set.flatMap((s) => ['--set', s])]);
  assert.equal(r.status, 0, r.stderr);
  return parseAllDocuments(r.stdout).map((d) => d.toJS() as Obj).filter((o) => o !== null);
}

function find(objs: readonly Obj[], kind: string, name: string): Obj {
  const o = objs.find((x) => x.kind === kind && x.metadata.name === name);
  assert.ok(o, `the chart renders no ${kind} ${name}`);
  return o;
}

function yamlDocs(path: string): Obj[] {
  return parseAllDocuments(readFileSync(path, 'utf8')).map((d) => d.toJS() as Obj).filter((o) => o !== null);
}

let dir = '';
let cp: ControlPlane;
let operator: RunningOperator | undefined;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'chap-chart-'));
  cp = await sharedControlPlane();
});

after(async () => {
  await operator?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('helm chart', () => {
  test('lints clean (strict)', () => {
    const r = helm(['lint', '--strict', chart]);
    assert.equal(r.status, 0, `${r.stdout}\n${r.stderr}`);
  });

  test('its CRDs are the ones in crds/, byte for byte', () => {
    const ours = readdirSync(join(root, 'crds')).filter((f) => f.endsWith('.yaml')).sort();
    assert.deepEqual(readdirSync(join(chart, 'crds')).sort(), ours);
    for (const f of ours) assert.equal(readFileSync(join(chart, 'crds', f), 'utf8'), readFileSync(join(root, 'crds', f), 'utf8'), `charts/chaperone/crds/${f} differs from crds/${f}: copy it again`);
  });

  test('its RBAC rules are exactly those of operator/rbac/', () => {
    const objs = render(['rbac.approverGroups[0]=db-approvers']);
    const files = ['operator.yaml', 'approver.yaml', 'agent.yaml'].flatMap((f) => yamlDocs(join(root, 'operator/rbac', f)));
    for (const want of files.filter((o) => o.kind === 'ClusterRole' || o.kind === 'Role')) {
      const got = find(objs, want.kind, want.metadata.name);
      assert.deepEqual(got['rules'], want['rules'], `${want.kind} ${want.metadata.name}: the chart and operator/rbac disagree`);
    }
    const approvers = find(objs, 'ClusterRoleBinding', 'chaperone-approvers');
    assert.deepEqual(approvers['subjects'], [{ apiGroup: 'rbac.authorization.k8s.io', kind: 'Group', name: 'db-approvers' }]);
  });

  test('its webhook configurations are what operator/manifests builds (caBundle left to the operator)', () => {
    const objs = render();
    const opts = { client: { service: { namespace: RELEASE_NS, name: 'chaperone-webhook' } }, operatorNamespace: RELEASE_NS };
    for (const want of [mutatingWebhookConfiguration(opts), validatingWebhookConfiguration(opts)]) {
      const got = find(objs, want.kind ?? '', want.metadata?.name ?? '');
      assert.deepEqual(got['webhooks'], JSON.parse(JSON.stringify(want.webhooks)), `${want.kind}: the chart and operator/manifests/webhooks.ts disagree`);
    }
  });

  test('the operator Deployment is hardened and highly available', () => {
    const objs = render();
    const d = find(objs, 'Deployment', 'chaperone-operator') as Obj & { spec: { replicas: number; template: { spec: Record<string, unknown> & { containers: Record<string, unknown>[] } } } };
    assert.equal(d.spec.replicas, 2);
    const pod = d.spec.template.spec;
    assert.equal((pod['securityContext'] as Record<string, unknown>)['runAsNonRoot'], true);
    const c = pod.containers[0] ?? {};
    assert.deepEqual(c['securityContext'], { allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: { drop: ['ALL'] } });
    assert.ok(c['readinessProbe'] && c['livenessProbe'], 'probes');
    assert.ok((c['args'] as string[]).includes('--leader-elect'));
    assert.ok(pod['affinity'], 'anti-affinity by default');
    find(objs, 'PodDisruptionBudget', 'chaperone-operator');
  });

  test('optional parts render when enabled and are absent otherwise', () => {
    const kinds = (objs: Obj[]): string[] => objs.map((o) => o.kind);
    const plain = kinds(render());
    for (const k of ['ServiceMonitor', 'PodMonitor', 'PrometheusRule', 'NetworkPolicy', 'Certificate']) assert.ok(!plain.includes(k), `${k} rendered by default`);
    const all = render(['serviceMonitor.enabled=true', 'sidecarPodMonitor.enabled=true', 'prometheusRules.enabled=true', 'grafanaDashboard.enabled=true', 'networkPolicy.enabled=true', 'webhook.tls.mode=cert-manager']);
    for (const k of ['ServiceMonitor', 'PodMonitor', 'PrometheusRule', 'NetworkPolicy', 'Certificate', 'Issuer']) assert.ok(kinds(all).includes(k), `${k} not rendered when enabled`);
    const rule = find(all, 'PrometheusRule', 'chaperone') as Obj & { spec: { groups: { rules: unknown[] }[] } };
    assert.ok((rule.spec.groups[0]?.rules.length ?? 0) >= 3);
    const mutating = find(all, 'MutatingWebhookConfiguration', 'chaperone-mutating');
    assert.equal(mutating.metadata.annotations?.['cert-manager.io/inject-ca-from'], `${RELEASE_NS}/chaperone-webhook-tls`);
  });

  test('values.schema.json refuses bad values with the field named', () => {
    for (const [set, field] of [['replicaCount=two', '/replicaCount'], ['webhook.tls.mode=vault', '/webhook/tls/mode'], ['operator.webhookPort=70000', '/operator/webhookPort'], ['typo=1', 'typo']] as const) {
      const r = helm(['template', 'chaperone', chart, '--set', set]);
      assert.notEqual(r.status, 0, `--set ${set} was accepted`);
      assert.match(r.stderr, new RegExp(field.replace(/\//g, '\\/')), `--set ${set}: ${r.stderr}`);
    }
  });

  test('installs into the real API server (dry-run, then for real) and the operator runs under its RBAC', async () => {
    const kubeconfig = cp.kubeconfig('admin');
    const kubectl = (args: readonly string[], input?: string): string => execFileSync(toolPath('kubectl'), ['--kubeconfig', kubeconfig, ...args], { encoding: 'utf8', input, timeout: 120_000, stdio: ['pipe', 'pipe', 'pipe'] });
    kubectl(['create', 'namespace', RELEASE_NS]);
    kubectl(['apply', '--server-side', '-f', join(chart, 'crds')]);
    kubectl(['wait', '--for=condition=Established', '--timeout=60s', '-f', join(chart, 'crds')]);
    const manifest = helm(['template', 'chaperone', chart, '--namespace', RELEASE_NS, '--set', 'rbac.approverGroups[0]=db-approvers', '--set', 'grafanaDashboard.enabled=true', '--set', 'networkPolicy.enabled=true']);
    assert.equal(manifest.status, 0, manifest.stderr);
    writeFileSync(join(dir, 'manifest.yaml'), manifest.stdout);
    kubectl(['apply', '--server-side', '--dry-run=server', '-f', join(dir, 'manifest.yaml')]);
    kubectl(['apply', '--server-side', '-f', join(dir, 'manifest.yaml')]);
    // The chart's webhooks point at a Service no kubelet backs here: remove them, so this file's other requests are admitted.
    kubectl(['delete', 'mutatingwebhookconfiguration', 'chaperone-mutating']);
    kubectl(['delete', 'validatingwebhookconfiguration', 'chaperone-validating']);

    // The operator as the chart's ServiceAccount: a TokenRequest token in a kubeconfig, nothing more.
    const tr = await cp.request<{ status: { token: string } }>('admin', 'POST', `/api/v1/namespaces/${RELEASE_NS}/serviceaccounts/chaperone-operator/token`, { apiVersion: 'authentication.k8s.io/v1', kind: 'TokenRequest', spec: { expirationSeconds: 3600 } });
    assert.equal(tr.status, 201, 'TokenRequest for the chart ServiceAccount');
    const kc = new KubeConfig();
    kc.loadFromOptions({
      clusters: [{ name: 'test', server: cp.url, caFile: cp.caFile }],
      users: [{ name: 'chaperone-operator', token: tr.body.status.token }],
      contexts: [{ name: 'sa', cluster: 'test', user: 'chaperone-operator' }],
      currentContext: 'sa',
    });
    const ns = await cp.createNamespace('chart-agents');
    await apply(cp, secretPath(ns, 'coding-agent-db'), { apiVersion: 'v1', kind: 'Secret', metadata: { name: 'coding-agent-db', namespace: ns }, stringData: { username: 'app', password: 'synthetic-password' } });
    operator = await startOperator({
      kubeConfig: kc, operatorNamespace: RELEASE_NS, webhook: false, leaderElection: {}, admin: { host: '127.0.0.1', port: 0 },
      watchTimeoutSeconds: 30, log: testLogger(), metrics: new OperatorMetrics({ defaultMetrics: false }),
    });
    await apply(cp, identityPath(ns, 'coding-agent'), pgIdentity(ns, 'coding-agent'));
    await eventually(async () => {
      const r = await cp.request<{ status?: { conditions?: { type: string; status: string }[] } }>('admin', 'GET', identityPath(ns, 'coding-agent'));
      return r.body.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ? true : undefined;
    }, { what: 'AgentIdentity Ready, reconciled by the operator under the chart RBAC', timeoutMs: 60_000 });
    const lease = await cp.request<{ spec?: { holderIdentity?: string } }>('admin', 'GET', `/apis/coordination.k8s.io/v1/namespaces/${RELEASE_NS}/leases/chaperone-operator`);
    assert.equal(lease.status, 200, 'the operator took its Lease under the chart Role');
  });
});
