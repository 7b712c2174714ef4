// LeaderElector stop paths against an in-memory Lease: leader work still starting is aborted, a hung renew is cut, the Lease is released.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as delay } from 'node:timers/promises';
import type { KubeClient, RequestOptionsLite } from './client.ts';
import { LeaderElector, type Lease } from './leader.ts';

/** Hang detector only: before the fixes these stops never resolved (or waited the client's 30 s timeout). */
const SAFETY_MS = 10_000;

/** GET/POST/PUT of one Lease; `hangNextGet` makes the next GET wait until its signal aborts. */
class FakeLeases {
  lease: Lease | undefined;
  gets = 0;
  hangNextGet = false;
  abortedRequests = 0;

  client(): KubeClient {
    return {
      get: (_path: string, o: RequestOptionsLite = {}) => this.get(o),
      request: (method: string, _path: string, o: RequestOptionsLite = {}) => this.write(method, o),
    } as unknown as KubeClient;
  }

  private async get(o: RequestOptionsLite): Promise<Lease | undefined> {
    this.gets += 1;
    if (this.hangNextGet && o.signal && !o.signal.aborted) {
      this.hangNextGet = false;
      await new Promise<void>((resolve) => o.signal?.addEventListener('abort', () => resolve(), { once: true }));
      this.abortedRequests += 1;
      throw new Error('aborted');
    }
    return this.lease && structuredClone(this.lease);
  }

  private write(method: string, o: RequestOptionsLite): Promise<unknown> {
    if (method !== 'POST' && method !== 'PUT') throw new Error(`unexpected ${method}`);
    const body = structuredClone(o.body as Lease);
    this.lease = { ...body, metadata: { ...body.metadata, resourceVersion: String(Number(this.lease?.metadata.resourceVersion ?? '0') + 1) } };
    return Promise.resolve(this.lease);
  }
}

async function stopWithin(e: LeaderElector): Promise<void> {
  const r = await Promise.race([e.stop().then(() => 'stopped' as const), delay(SAFETY_MS, 'hung' as const, { ref: false })]);
  assert.equal(r, 'stopped', `stop() did not resolve within ${SAFETY_MS} ms`);
}

function elector(fake: FakeLeases): LeaderElector {
  return new LeaderElector({ client: fake.client(), namespace: 'ops', name: 'lease', identity: 'me', renewIntervalMs: 20, retryIntervalMs: 20 });
}

async function leading(e: LeaderElector): Promise<void> {
  for (let i = 0; i < 200 && !e.isLeader(); i++) await delay(10);
  assert.ok(e.isLeader(), 'became leader');
}

describe('LeaderElector stop', () => {
  it('leader work that waits for its signal is aborted first, then stepped down, then the Lease released', async () => {
    const fake = new FakeLeases();
    const e = elector(fake);
    const order: string[] = [];
    e.run({
      onStartedLeading: (signal) => new Promise<void>((resolve) => signal.addEventListener('abort', () => {
        order.push('start aborted');
        resolve();
      }, { once: true })),
      onStoppedLeading: () => {
        order.push('stopped leading');
      },
    });
    await leading(e);
    await stopWithin(e);
    assert.deepEqual(order, ['start aborted', 'stopped leading']);
    assert.equal(fake.lease?.spec?.holderIdentity, '', 'released');
    assert.equal(e.isLeader(), false);
  });

  it('a renew request in flight is cut by stop, and the Lease is still released', async () => {
    const fake = new FakeLeases();
    const e = elector(fake);
    e.run({ onStartedLeading: () => undefined, onStoppedLeading: () => undefined });
    await leading(e);
    const seen = fake.gets;
    fake.hangNextGet = true;
    // Let a renew start and hang.
    for (let i = 0; i < 200 && fake.gets === seen; i++) await delay(10);
    await stopWithin(e);
    assert.equal(fake.abortedRequests, 1, 'the hung renew saw the stop signal');
    assert.equal(fake.lease?.spec?.holderIdentity, '', 'released (the release does not use the stop signal)');
  });
});
