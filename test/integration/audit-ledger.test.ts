// The applied-report ledger on a real API server: a report is counted once whichever operator replica gets it, across restarts and replays, and two replicas racing on one seq count it once.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { KubeClient } from '../../operator/kube/client.ts';
import { LEDGER_KEY, ledgerConfigMapName } from '../../operator/audit/names.ts';
import { startAuditServer, type AuditServer } from '../../operator/audit/server.ts';
import { ANNOTATION_INJECTED, LABEL_IDENTITY, SIDECAR_CONTAINER_NAME } from '../../operator/webhooks/pod-mutate/layout.ts';
import { REPORT_PATH, type ReportBody } from '../../sidecar/audit/reporter.ts';
import { sharedControlPlane, type ControlPlane } from '../cluster/control-plane.ts';
import { installCrds, kubeConfigFor, testLogger } from './operator-controllers.harness.ts';

const IDENTITY = 'ledger-agent';
let cp: ControlPlane;
let ns: string;
let opNs: string;
let pod: { name: string; uid: string };
let token: string;
const servers: AuditServer[] = [];

async function ok<T>(p: Promise<{ status: number; body: T; text: string }>, what: string): Promise<T> {
  const r = await p;
  assert.ok(r.status >= 200 && r.status < 300, `${what}: ${r.status} ${r.text.slice(0, 300)}`);
  return r.body;
}

/** One operator replica's report server (its own process memory: nothing shared but the API server). */
async function replica(): Promise<AuditServer> {
  const s = await startAuditServer({ client: KubeClient.fromKubeConfig(kubeConfigFor(cp)), log: testLogger('audit'), host: '127.0.0.1', port: 0, minWriteIntervalMs: 0, ledgerNamespace: opNs });
  servers.push(s);
  return s;
}

async function stop(s: AuditServer): Promise<void> {
  await s.close();
  servers.splice(servers.indexOf(s), 1);
}

const delta = (n: number): ReportBody['delta'] => ({ sessions: n, statements: 10 * n, denied: n, approvals: 0, masked: 2 * n });
const report = (stream: string, seq: number, n: number): ReportBody => ({
  apiVersion: 'chaperone.dev/v1alpha1', kind: 'SidecarReport', identity: IDENTITY, pod: { namespace: ns, name: pod.name, uid: pod.uid }, stream, seq, delta: delta(n),
});

async function send(s: AuditServer, r: ReportBody): Promise<{ status: number; applied?: boolean }> {
  const res = await fetch(`${s.url}${REPORT_PATH}`, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: JSON.stringify(r) });
  const body = (await res.json()) as { applied?: boolean };
  return { status: res.status, ...(body.applied !== undefined ? { applied: body.applied } : {}) };
}

async function counters(): Promise<Record<string, number> | undefined> {
  const r = await ok(cp.request<{ status?: { counters?: Record<string, number> } }>('admin', 'GET', `/apis/chaperone.dev/v1alpha1/namespaces/${ns}/agentidentities/${IDENTITY}`), 'identity');
  return r.status?.counters;
}

before(async () => {
  cp = await sharedControlPlane();
  await installCrds(cp);
  ns = await cp.createNamespace('audit-ledger');
  opNs = await cp.createNamespace('audit-ledger-op');
  await ok(cp.request('admin', 'POST', `/api/v1/namespaces/${ns}/serviceaccounts`, { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: 'agent' } }), 'sa');
  await ok(cp.request('admin', 'POST', `/apis/chaperone.dev/v1alpha1/namespaces/${ns}/agentidentities`, {
    apiVersion: 'chaperone.dev/v1alpha1', kind: 'AgentIdentity', metadata: { name: IDENTITY },
    spec: { connections: [{ name: 'appdb', protocol: 'postgres', upstream: { host: 'db', port: 5432 }, database: 'postgres', localPort: 5432, tls: { mode: 'disable' }, credential: { secretRef: { name: 'db' } } }] },
  }), 'identity');
  const p = await ok(cp.request<{ metadata: { uid: string } }>('admin', 'POST', `/api/v1/namespaces/${ns}/pods`, {
    apiVersion: 'v1', kind: 'Pod',
    metadata: { name: 'agent-0', labels: { [LABEL_IDENTITY]: IDENTITY }, annotations: { [ANNOTATION_INJECTED]: '{"version":1}' } },
    spec: { serviceAccountName: 'agent', initContainers: [{ name: SIDECAR_CONTAINER_NAME, image: 'registry.invalid/sidecar:test', restartPolicy: 'Always' }], containers: [{ name: 'agent', image: 'registry.invalid/agent:test' }] },
  }), 'pod');
  pod = { name: 'agent-0', uid: p.metadata.uid };
  token = (await ok(cp.request<{ status: { token: string } }>('admin', 'POST', `/api/v1/namespaces/${ns}/serviceaccounts/agent/token`, {
    apiVersion: 'authentication.k8s.io/v1', kind: 'TokenRequest', spec: { expirationSeconds: 3600, boundObjectRef: { apiVersion: 'v1', kind: 'Pod', name: pod.name, uid: pod.uid } },
  }), 'token')).status.token;
});

after(async () => {
  for (const s of [...servers]) await stop(s);
  if (cp?.owned) await cp.stop();
});

describe('report ledger across replicas and restarts', () => {
  test('restart between two reports, a replay to another replica: counted once each', async () => {
    const a = await replica();
    assert.deepEqual(await send(a, report('aa01', 1, 1)), { status: 200, applied: true });
    await stop(a); // the operator restarts: nothing of a's memory survives
    const b = await replica();
    assert.deepEqual(await send(b, report('aa01', 1, 1)), { status: 200, applied: false }, 'the retry of an applied seq (its answer was lost) is not counted again');
    assert.deepEqual(await send(b, report('aa01', 2, 2)), { status: 200, applied: true });
    const c = await replica();
    assert.deepEqual(await send(c, report('aa01', 2, 2)), { status: 200, applied: false }, 'replayed to a third replica');
    assert.deepEqual(await counters(), { sessions: 3, statements: 30, denied: 3, approvals: 0, masked: 6 });
    await stop(b);
    await stop(c);
  });

  test('two replicas racing on the same seq, and on different streams: exact totals', async () => {
    const [a, b] = [await replica(), await replica()];
    const before = (await counters())?.sessions ?? 0;
    const same = await Promise.all([send(a, report('bb02', 1, 5)), send(b, report('bb02', 1, 5))]);
    assert.deepEqual(same.map((r) => r.status), [200, 200]);
    assert.equal(same.filter((r) => r.applied).length, 1, `one of the two counted it: ${JSON.stringify(same)}`);
    // Ten sidecar streams, each report sent to both replicas at once (a retry that crossed the first answer).
    const streams = Array.from({ length: 10 }, (_, i) => `cc${i.toString(16).padStart(2, '0')}`);
    const answers = await Promise.all(streams.flatMap((s) => [send(a, report(s, 1, 1)), send(b, report(s, 1, 1))]));
    assert.ok(answers.every((r) => r.status === 200), JSON.stringify(answers));
    assert.equal(answers.filter((r) => r.applied).length, 10);
    assert.equal((await counters())?.sessions, before + 5 + 10);
    const ledger = await ok(cp.request<{ data?: Record<string, string> }>('admin', 'GET', `/api/v1/namespaces/${opNs}/configmaps/${ledgerConfigMapName(ns, IDENTITY)}`), 'ledger');
    const state = JSON.parse(ledger.data?.[LEDGER_KEY] ?? '{}') as { counters: Record<string, number>; streams: Record<string, [number, number]> };
    assert.deepEqual(await counters(), state.counters, 'status mirrors the ledger');
    assert.equal(state.streams[`${pod.uid}/aa01`]?.[0], 2);
  });

  test('status wiped by hand is restored from the ledger by the next report (the ledger is the truth)', async () => {
    const a = await replica();
    const want = await counters();
    await ok(cp.request('admin', 'PATCH', `/apis/chaperone.dev/v1alpha1/namespaces/${ns}/agentidentities/${IDENTITY}/status`, { status: { counters: { sessions: 0, statements: 0, denied: 0, approvals: 0, masked: 0 } } }, { contentType: 'application/merge-patch+json' }), 'wipe');
    assert.deepEqual(await send(a, report('aa01', 2, 2)), { status: 200, applied: false });
    assert.deepEqual(await counters(), want);
  });
});
