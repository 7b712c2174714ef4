// The Helm chart: lints, renders what the code builds (RBAC, webhooks, CRDs), refuses bad values, and installs into the real control plane,
// where the operator then runs under the chart's own ServiceAccount and RBAC.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { request as httpsRequest } from 'node:https';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { KubeConfig } from '@kubernetes/client-node';
import { parseAllDocuments } from 'yaml';
import { auditCompileEnv, auditPlugin } from '../../operator/audit/plugin.ts';
import { ledgerConfigMapName } from '../../operator/audit/names.ts';
import { TlsRelay } from '../../operator/audit/tls-relay.ts';
import { mutatingWebhookConfiguration, validatingWebhookConfiguration } from '../../operator/manifests/webhooks.ts';
import { ANNOTATION_INJECTED, LABEL_IDENTITY, SIDECAR_CONTAINER_NAME } from '../../operator/webhooks/pod-mutate/layout.ts';
import { REPORT_PATH } from '../../sidecar/audit/reporter.ts';
import { startOperator, type RunningOperator } from '../../operator/main.ts';
import { OperatorMetrics } from '../../operator/metrics.ts';
import { sharedControlPlane, type ControlPlane } from '../cluster/control-plane.ts';
import { toolPath } from '../cluster/tools.ts';
import { freePorts } from '../env/ports.ts';
import { eventually } from '../env/wait.ts';
import { staticWebhookTls } from '../cluster/webhooks.ts';
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

  test('the audit report port: Service, container, args and NetworkPolicy; off with operator.audit.enabled=false', () => {
    type Port = { name: string; port?: number; containerPort?: number; targetPort?: string };
    const objs = render(['networkPolicy.enabled=true']);
    const svc = find(objs, 'Service', 'chaperone-webhook') as Obj & { spec: { ports: Port[] } };
    assert.deepEqual(svc.spec.ports.find((p) => p.name === 'audit'), { name: 'audit', port: 8444, targetPort: 'audit', protocol: 'TCP' });
    const c = (find(objs, 'Deployment', 'chaperone-operator') as Obj & { spec: { template: { spec: { containers: { args: string[]; ports: Port[] }[] } } } }).spec.template.spec.containers[0];
    assert.ok(c?.ports.some((p) => p.name === 'audit' && p.containerPort === 8444));
    assert.ok(c?.args.includes('--audit-port=8444') && c.args.includes(`--audit-url=https://chaperone-webhook.${RELEASE_NS}.svc:8444`), JSON.stringify(c?.args));
    const np = find(objs, 'NetworkPolicy', 'chaperone-operator') as Obj & { spec: { ingress: { ports: { port: string }[]; from?: unknown[] }[] } };
    assert.ok(np.spec.ingress.some((r) => r.ports.some((p) => p.port === 'audit') && JSON.stringify(r.from).includes('chaperone.dev/identity')), 'sidecars may reach the audit port');
    const off = render(['operator.audit.enabled=false']);
    const offC = (find(off, 'Deployment', 'chaperone-operator') as Obj & { spec: { template: { spec: { containers: { args: string[] }[] } } } }).spec.template.spec.containers[0];
    assert.ok(offC?.args.includes('--no-audit'));
    assert.ok(!(find(off, 'Service', 'chaperone-webhook') as Obj & { spec: { ports: Port[] } }).spec.ports.some((p) => p.name === 'audit'));
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
    // With the audit plugin as cli.ts wires it (the webhook's pair relayed by hand: no webhook server here).
    const relay = new TlsRelay();
    const { tls } = await staticWebhookTls();
    if (tls.kind === 'static') relay.set(tls.material);
    const [auditPort] = (await freePorts(1)) as [number];
    operator = await startOperator({
      kubeConfig: kc, operatorNamespace: RELEASE_NS, webhook: false, leaderElection: {}, admin: { host: '127.0.0.1', port: 0 },
      watchTimeoutSeconds: 30, log: testLogger(), metrics: new OperatorMetrics({ defaultMetrics: false }),
      compileEnv: { auditReport: auditCompileEnv(`https://127.0.0.1:${auditPort}`) },
      plugins: [auditPlugin({ tls: relay, host: '127.0.0.1', port: auditPort, minWriteIntervalMs: 0 }, {})],
    });
    await apply(cp, identityPath(ns, 'coding-agent'), pgIdentity(ns, 'coding-agent'));
    await eventually(async () => {
      const r = await cp.request<{ status?: { conditions?: { type: string; status: string }[] } }>('admin', 'GET', identityPath(ns, 'coding-agent'));
      return r.body.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ? true : undefined;
    }, { what: 'AgentIdentity Ready, reconciled by the operator under the chart RBAC', timeoutMs: 60_000 });
    const lease = await cp.request<{ spec?: { holderIdentity?: string } }>('admin', 'GET', `/apis/coordination.k8s.io/v1/namespaces/${RELEASE_NS}/leases/chaperone-operator`);
    assert.equal(lease.status, 200, 'the operator took its Lease under the chart Role');

    // Ready needed the CA ConfigMap (written by the audit plugin under the chart RBAC); now one report: TokenReview, pod list, ledger, status.
    await apply(cp, `/api/v1/namespaces/${ns}/serviceaccounts/agent`, { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: 'agent', namespace: ns } });
    const pod = await cp.request<{ metadata: { uid: string } }>('admin', 'POST', `/api/v1/namespaces/${ns}/pods`, {
      apiVersion: 'v1', kind: 'Pod', metadata: { name: 'agent-0', labels: { [LABEL_IDENTITY]: 'coding-agent' }, annotations: { [ANNOTATION_INJECTED]: '{"version":1}' } },
      spec: { serviceAccountName: 'agent', initContainers: [{ name: SIDECAR_CONTAINER_NAME, image: 'registry.invalid/sidecar:test', restartPolicy: 'Always' }], containers: [{ name: 'agent', image: 'registry.invalid/agent:test' }] },
    });
    assert.equal(pod.status, 201, pod.text);
    const token = await cp.request<{ status: { token: string } }>('admin', 'POST', `/api/v1/namespaces/${ns}/serviceaccounts/agent/token`, {
      apiVersion: 'authentication.k8s.io/v1', kind: 'TokenRequest', spec: { expirationSeconds: 600, boundObjectRef: { apiVersion: 'v1', kind: 'Pod', name: 'agent-0', uid: pod.body.metadata.uid } },
    });
    const body = { apiVersion: 'chaperone.dev/v1alpha1', kind: 'SidecarReport', identity: 'coding-agent', pod: { namespace: ns, name: 'agent-0', uid: pod.body.metadata.uid }, stream: 'c4a27', seq: 1, delta: { sessions: 1, statements: 4, denied: 1, approvals: 0, masked: 2 } };
    const ca = relay.current()?.ca ?? '';
    const answer = await new Promise<{ status: number; text: string }>((resolveAnswer, reject) => {
      const req = httpsRequest(`https://127.0.0.1:${auditPort}${REPORT_PATH}`, { method: 'POST', ca, headers: { authorization: `Bearer ${token.body.status.token}`, 'content-type': 'application/json' } }, (res) => {
        let text = '';
        res.on('data', (c: Buffer) => (text += c.toString('utf8')));
        res.on('end', () => resolveAnswer({ status: res.statusCode ?? 0, text }));
      });
      req.on('error', reject);
      req.end(JSON.stringify(body));
    });
    assert.equal(answer.status, 200, answer.text);
    const id = await cp.request<{ status?: { counters?: Record<string, number> } }>('admin', 'GET', identityPath(ns, 'coding-agent'));
    assert.deepEqual(id.body.status?.counters, body.delta, 'status counters written under the chart RBAC');
    assert.equal((await cp.request('admin', 'GET', `/api/v1/namespaces/${RELEASE_NS}/configmaps/${ledgerConfigMapName(ns, 'coding-agent')}`)).status, 200, 'the ledger in the release namespace');
  });
});
