// Leader election on a real API server: of two operators exactly one leads and reconciles; stopping it releases the Lease and the other takes over.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { RunningOperator } from '../../operator/main.ts';
import type { Lease } from '../../operator/kube/leader.ts';
import { sharedControlPlane, type ControlPlane } from '../cluster/control-plane.ts';
import { eventually } from '../env/wait.ts';
import { apply, identityPath, installCrds, pgIdentity, secret, secretPath, startTestOperator, waitReady } from './operator-controllers.harness.ts';

const LEASE = 'chaperone-operator-test';
let cp: ControlPlane;
let ns: string;
let opNs: string;
const ops: RunningOperator[] = [];

before(async () => {
  cp = await sharedControlPlane();
  await installCrds(cp);
  ns = await cp.createNamespace('opleader');
  opNs = await cp.createNamespace('chaperone-system');
});

after(async () => {
  await Promise.all(ops.map((o) => o.stop()));
  if (cp.owned) await cp.stop();
});

async function start(name: string): Promise<RunningOperator> {
  const op = await startTestOperator(cp, opNs, {
    leaderElection: { leaseName: LEASE, identity: name, leaseDurationSeconds: 4, renewIntervalMs: 500, retryIntervalMs: 300 },
  });
  ops.push(op);
  return op;
}

async function lease(): Promise<Lease | undefined> {
  const r = await cp.request<Lease>('admin', 'GET', `/apis/coordination.k8s.io/v1/namespaces/${opNs}/leases/${LEASE}`);
  return r.status === 200 ? r.body : undefined;
}

async function createIdentity(name: string): Promise<void> {
  await apply(cp, secretPath(ns, `${name}-db`), secret(ns, `${name}-db`, { username: 'agent', password: 'synthetic-password-l' }));
  await apply(cp, identityPath(ns, name), pgIdentity(ns, name));
}

describe('leader election', () => {
  let a: RunningOperator;
  let b: RunningOperator;

  it('of two operators exactly one leads, and the Lease names it', async () => {
    a = await start('replica-a');
    b = await start('replica-b');
    const leader = await eventually(() => Promise.resolve(a.isLeader() !== b.isLeader() ? (a.isLeader() ? a : b) : undefined), { what: 'exactly one leader' });
    assert.equal((await lease())?.spec?.holderIdentity, leader.leaseIdentity);
    // Both serve reads (ready), only the leader reconciles.
    assert.ok(a.ready() && b.ready());
    assert.equal(a.identityController.running, a.isLeader());
    assert.equal(b.identityController.running, b.isLeader());
    await createIdentity('led-1');
    await waitReady(cp, ns, 'led-1');
  });

  it('stopping the leader releases the Lease; the standby takes over and reconciles', async () => {
    const leader = a.isLeader() ? a : b;
    const standby = leader === a ? b : a;
    const before = (await lease())?.spec?.leaseTransitions ?? 0;
    await leader.stop();
    assert.equal(leader.isLeader(), false);
    assert.equal(leader.identityController.running, false, 'the stopped leader drained its controllers');
    await eventually(() => Promise.resolve(standby.isLeader() ? true : undefined), { what: 'standby leads', timeoutMs: 15_000 });
    const l = await lease();
    assert.equal(l?.spec?.holderIdentity, standby.leaseIdentity);
    assert.ok((l?.spec?.leaseTransitions ?? 0) > before, 'leaseTransitions counts the handover');
    await createIdentity('led-2');
    await waitReady(cp, ns, 'led-2');
  });

  it('a standby does not take a Lease that is held and renewed', async () => {
    const c = await start('replica-c');
    await new Promise((r) => setTimeout(r, 2_500));
    assert.equal(c.isLeader(), false);
    assert.equal(c.identityController.running, false);
    assert.notEqual((await lease())?.spec?.holderIdentity, 'replica-c');
  });
});
