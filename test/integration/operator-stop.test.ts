// Operator shutdown on a real API server: with watches in flight, a reconcile backing off, one hung, and an admission in flight on a keep-alive connection, stop() resolves with every phase done and the Lease released.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Agent, request } from 'node:https';
import { Writable } from 'node:stream';
import { setTimeout as delay } from 'node:timers/promises';
import pino from 'pino';
import type { RunningOperator, StopReport } from '../../operator/main.ts';
import type { Lease } from '../../operator/kube/leader.ts';
import type { Controller } from '../../operator/kube/controller.ts';
import type { OperatorPluginFactory } from '../../operator/plugin.ts';
import { allow, type AdmissionOutcome } from '../../operator/server/admission.ts';
import { createCa, issueServing, type KeyPairPem } from '../../operator/certs/pki.ts';
import { sharedControlPlane, type ControlPlane } from '../cluster/control-plane.ts';
import { eventually } from '../env/wait.ts';
import { installCrds, startTestOperator } from './operator-controllers.harness.ts';

const LEASE = 'chaperone-operator-stop-test';
/** Hang detector only (no timing assert): an unbounded stop waited ~70 s for fastify's keepAliveTimeout. */
const SAFETY_MS = 20_000;

let cp: ControlPlane;
let opNs: string;
let ca: KeyPairPem;
let op: RunningOperator | undefined;
const logs: { level: number; msg: string; stuck?: string[]; phase?: string }[] = [];

/** Held by the test: the admission and the hung reconcile wait on these. */
let releaseAdmission: () => void = () => undefined;
let releaseReconcile: () => void = () => undefined;
let admissionArrived: () => void = () => undefined;
const arrived = new Promise<void>((resolve) => {
  admissionArrived = resolve;
});

/** Two controllers (one failing into backoff, one hung) and a route that answers when the test says so. */
const plugin: OperatorPluginFactory = (ctx) => {
  const admissionGate = new Promise<void>((resolve) => {
    releaseAdmission = resolve;
  });
  const reconcileGate = new Promise<void>((resolve) => {
    releaseReconcile = resolve;
  });
  return {
    name: 'stop-test',
    routes: [{ path: '/slow', name: 'slow', handle: async (r): Promise<AdmissionOutcome> => {
      admissionArrived();
      await admissionGate;
      return { outcome: 'ok', response: allow(r.uid) };
    } }],
    startLeading: (): void => {
      const failing: Controller = ctx.controller({ name: 'always-failing', reconcile: () => Promise.reject(new Error('synthetic failure')), backoff: { baseMs: 60_000, maxMs: 60_000 } });
      const hung: Controller = ctx.controller({ name: 'hung', reconcile: () => reconcileGate });
      failing.start();
      hung.start();
      failing.enqueue('ns/a');
      hung.enqueue('ns/b');
      controllers.push(failing, hung);
    },
  };
};
const controllers: Controller[] = [];
let second: RunningOperator | undefined;
let releasePluginStop: () => void = () => undefined;

function capture(): pino.Logger {
  const stream = new Writable({
    write(chunk: Buffer, _enc, done): void {
      for (const line of chunk.toString('utf8').split('\n')) if (line.trim() !== '') logs.push(JSON.parse(line) as never);
      done();
    },
  });
  return pino({ name: 'operator', level: 'debug' }, stream);
}

async function lease(): Promise<Lease | undefined> {
  const r = await cp.request<Lease>('admin', 'GET', `/apis/coordination.k8s.io/v1/namespaces/${opNs}/leases/${LEASE}`);
  return r.status === 200 ? r.body : undefined;
}

before(async () => {
  cp = await sharedControlPlane();
  await installCrds(cp);
  opNs = await cp.createNamespace('chaperone-stop');
  ca = await createCa({ commonName: 'stop-test-ca', validityMs: 3_600_000 });
});

after(async () => {
  releaseAdmission();
  releaseReconcile();
  releasePluginStop();
  await op?.stop();
  await second?.stop();
  if (cp.owned) await cp.stop();
});

describe('operator stop', () => {
  it('resolves with every phase done: watches aborted, backoff dropped, hung reconcile left at the drain deadline, in-flight admission answered, Lease released', async () => {
    const leaf = await issueServing(ca, { commonName: '127.0.0.1', dnsNames: [], ips: ['127.0.0.1'], validityMs: 3_600_000 });
    const running = (op = await startTestOperator(cp, opNs, {
      log: capture(), plugins: [plugin],
      leaderElection: { leaseName: LEASE, identity: 'stop-replica', leaseDurationSeconds: 15, renewIntervalMs: 500, retryIntervalMs: 300 },
      webhook: { host: '127.0.0.1', port: 0, tls: { kind: 'static', material: { cert: leaf.certPem, key: leaf.keyPem, ca: ca.certPem } } },
      // Leading: 1 s to drain (the hung reconcile never finishes), then the Lease release.
      stopDeadlines: { leading: 5_000 },
    }));
    await eventually(() => Promise.resolve(running.isLeader() && controllers.length === 2 && (controllers[0]?.queue.pendingRetries() ?? 0) > 0 ? true : undefined), { what: 'leading, a reconcile backing off' });
    assert.equal((await lease())?.spec?.holderIdentity, 'stop-replica');

    // An admission in flight on a keep-alive connection, as the API server holds them.
    const agent = new Agent({ keepAlive: true, ca: ca.certPem });
    const answer = new Promise<{ status: number; connection: string | undefined }>((resolve, reject) => {
      const req = request(`${running.webhookUrl ?? ''}/slow`, { method: 'POST', agent, headers: { 'content-type': 'application/json' } }, (res) => {
        res.resume();
        res.on('end', () => resolve({ status: res.statusCode ?? 0, connection: res.headers.connection }));
      });
      req.on('error', reject);
      req.end(JSON.stringify({ apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', request: { uid: 'u-stop', kind: { group: '', version: 'v1', kind: 'Pod' }, resource: { group: '', version: 'v1', resource: 'pods' }, operation: 'CREATE', userInfo: {}, namespace: 'ns', name: 'p' } }));
    });
    await arrived;

    try {
      const stopping = running.stop();
      // The admission answers while the webhook phase closes: it must end its connection, not idle it for 72 s.
      await eventually(() => Promise.resolve(logs.some((l) => l.msg === 'stop phase' && l.phase === 'plugins') ? true : undefined), { what: 'the webhook phase begins', timeoutMs: SAFETY_MS });
      await delay(100);
      releaseAdmission();
      const report = await Promise.race([stopping, delay(SAFETY_MS, 'hung' as const, { ref: false })]);
      assert.notEqual(report, 'hung', `stop() did not resolve within ${SAFETY_MS} ms`);
      const r = report as StopReport;
      assert.deepEqual(r.phases.map((p) => [p.name, p.outcome]), [['leading', 'done'], ['plugins', 'done'], ['webhook', 'done'], ['informers', 'done'], ['admin', 'done']]);
      assert.equal(r.clean, true);
      assert.deepEqual(await answer, { status: 200, connection: 'close' });
      // The hung reconcile was left at the drain deadline; the backing-off one was dropped.
      assert.deepEqual(logs.find((l) => l.stuck !== undefined)?.stuck, ['hung']);
      assert.equal(controllers[0]?.queue.pendingRetries(), 0);
      assert.equal((await lease())?.spec?.holderIdentity, '', 'the Lease was released despite the hung reconcile');
      assert.equal(logs.filter((l) => l.msg === 'stop phase').length, 5, 'each phase logged its timing');
    } finally {
      agent.destroy();
    }
  });

  it('a phase that overruns its deadline is named in the report and the log; the phases after it still run', async () => {
    const hangsOnStop: OperatorPluginFactory = () => ({
      name: 'hangs-on-stop',
      stop: () => new Promise<void>((resolve) => {
        releasePluginStop = resolve;
      }),
    });
    const running = (second = await startTestOperator(cp, opNs, { log: capture(), plugins: [hangsOnStop], stopDeadlines: { plugins: 300 } }));
    const before = logs.length;
    const report = await Promise.race([running.stop(), delay(SAFETY_MS, 'hung' as const, { ref: false })]);
    assert.notEqual(report, 'hung', `stop() did not resolve within ${SAFETY_MS} ms`);
    const r = report as StopReport;
    assert.deepEqual(r.phases.map((p) => [p.name, p.outcome]), [['leading', 'done'], ['plugins', 'overran'], ['webhook', 'done'], ['informers', 'done'], ['admin', 'done']]);
    assert.equal(r.clean, false);
    assert.ok(logs.slice(before).some((l) => l.level === 40 && l.phase === 'plugins' && /overran its deadline/.test(l.msg)), 'a warning names the phase');
    releasePluginStop();
  });
});
