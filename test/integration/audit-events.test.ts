// Sidecar audit Events on the real API server: a flood of denials is a bounded number of Events whose counts add up.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sharedControlPlane, type ControlPlane } from '../cluster/control-plane.ts';
import { KubeHttp } from '../../sidecar/approvals/kube-http.ts';
import { KubernetesEventEmitter } from '../../sidecar/audit/emitter.ts';
import type { RecordEvent } from '../../sidecar/recording/event.ts';

interface EventList {
  items: { reason: string; note: string; regarding: { kind: string; name: string }; series?: { count: number }; reportingController: string }[];
}

let cp: ControlPlane;
let ns: string;
let dir: string;
let api: KubeHttp;

before(async () => {
  cp = await sharedControlPlane();
  ns = await cp.createNamespace('audit-events');
  dir = mkdtempSync(join(tmpdir(), 'chap-audit-'));
  writeFileSync(join(dir, 'token'), cp.token('admin'), { mode: 0o600 });
  api = new KubeHttp({ apiServerUrl: cp.url, caFile: cp.caFile, tokenFile: join(dir, 'token') });
});

after(() => {
  api.close();
  rmSync(dir, { recursive: true, force: true });
});

const pod = (): { apiVersion: string; kind: string; namespace: string; name: string } => ({ apiVersion: 'v1', kind: 'Pod', namespace: ns, name: 'agent-0' });
const identity = (): { apiVersion: string; kind: string; namespace: string; name: string } => ({ apiVersion: 'chaperone.dev/v1alpha1', kind: 'AgentIdentity', namespace: ns, name: 'coding-agent' });

function deny(i: number): RecordEvent {
  return { type: 'statement', session: 's1', cmd: i, text: `DROP TABLE t${i % 7}`, classification: { kinds: ['ddl'], tables: [`t${i % 7}`], functions: [] }, decision: 'deny', rule: 'deny-ddl', statementHash: 'a'.repeat(64) };
}

async function events(): Promise<EventList['items']> {
  const r = (await cp.request('admin', 'GET', `/apis/events.k8s.io/v1/namespaces/${ns}/events`)) as { body: EventList };
  return r.body.items;
}

describe('sidecar audit Events', () => {
  test('10,000 denied statements become a bounded number of Events that count all of them', async () => {
    let t = Date.now();
    const em = new KubernetesEventEmitter({ api, targets: { pod: pod(), identity: identity() }, reportingInstance: 'agent-0', now: () => t, flushMs: 3_600_000 });
    em.observe({ type: 'session.start', session: 's1', identity: 'coding-agent', subject: 'system:serviceaccount:x:agent', groups: [], pod: `${ns}/agent-0`, client: '127.0.0.1:1', connection: 'db', protocol: 'postgres' });
    for (let i = 0; i < 10_000; i++) {
      t += 3; // 30 s of denials: one window
      em.observe(deny(i));
    }
    await em.close();
    const stats = em.health();
    assert.equal(stats.failed, 0, 'every Event write was accepted by the API server');
    const items = await events();
    assert.ok(items.length <= 6, `expected a handful of Events, got ${items.length}`);
    const denied = items.filter((e) => e.reason === 'StatementDenied');
    assert.deepEqual(denied.map((e) => e.regarding.kind).sort(), ['AgentIdentity', 'Pod']);
    for (const e of denied) {
      assert.equal(e.series?.count, 10_000);
      assert.match(e.note, /refused by deny-ddl: DROP TABLE t0/);
      assert.equal(e.reportingController, 'chaperone.dev/sidecar');
    }
    assert.equal(items.filter((e) => e.reason === 'SessionStarted').length, 2);
  });

  test('an API server that refuses writes loses no command and says why once', async () => {
    const warned: string[] = [];
    writeFileSync(join(dir, 'bad-token'), 'not-a-valid-token');
    const bad = new KubeHttp({ apiServerUrl: cp.url, caFile: cp.caFile, tokenFile: join(dir, 'bad-token') });
    const em = new KubernetesEventEmitter({ api: bad, targets: { pod: pod(), identity: null }, reportingInstance: 'agent-0', log: { warn: (_o, m) => warned.push(m) } });
    for (let i = 0; i < 50; i++) em.observe(deny(i));
    await em.close();
    bad.close();
    assert.ok(em.health().failed >= 1);
    assert.equal(warned.length, 1);
    assert.match(warned[0] ?? '', /could not write a Kubernetes Event/);
  });
});
