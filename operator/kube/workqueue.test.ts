// Work queue rules: dedup by key, one run per key at a time, re-run when added while running, bounded concurrency, per-key retry, drain on shutdown.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as delay } from 'node:timers/promises';
import { WorkQueue } from './workqueue.ts';
import { backoffCap, backoffDelay } from './backoff.ts';

function gate(): { wait: Promise<void>; open: () => void } {
  let open = (): void => undefined;
  const wait = new Promise<void>((r) => (open = r));
  return { wait, open };
}

describe('WorkQueue', () => {
  it('a key added many times before it runs is processed once', async () => {
    const seen: string[] = [];
    const q = new WorkQueue({ name: 't', process: (k) => { seen.push(k); return Promise.resolve(); } });
    for (let i = 0; i < 5; i++) q.add('a');
    q.add('b');
    q.start();
    await q.idle();
    assert.deepEqual(seen, ['a', 'b']);
  });

  it('a key is never processed twice at once; added while running, it runs once more afterwards', async () => {
    const g = gate();
    let running = 0;
    let maxRunning = 0;
    let runs = 0;
    const q = new WorkQueue({ name: 't', concurrency: 4, process: async () => {
      running++; maxRunning = Math.max(maxRunning, running); runs++;
      if (runs === 1) await g.wait;
      running--;
    } });
    q.start();
    q.add('a');
    await delay(5);
    q.add('a');
    q.add('a');
    g.open();
    await q.idle();
    assert.equal(maxRunning, 1);
    assert.equal(runs, 2);
  });

  it('runs at most `concurrency` keys at once', async () => {
    let running = 0;
    let maxRunning = 0;
    const q = new WorkQueue({ name: 't', concurrency: 3, process: async () => { running++; maxRunning = Math.max(maxRunning, running); await delay(5); running--; } });
    q.start();
    for (let i = 0; i < 20; i++) q.add(`k${i}`);
    await q.idle();
    assert.equal(maxRunning, 3);
  });

  it('a failing key is retried with backoff until it succeeds, and the depth gauge follows', async () => {
    let calls = 0;
    const depths: number[] = [];
    const metrics = { informerRelist: () => undefined, queueDepth: (_q: string, d: number) => { depths.push(d); }, queueRetry: () => undefined, reconcile: () => undefined };
    const q = new WorkQueue({ name: 't', backoff: { baseMs: 5, maxMs: 20 }, metrics, process: () => (++calls < 3 ? Promise.reject(new Error('boom')) : Promise.resolve()) });
    q.start();
    q.add('a');
    for (let i = 0; i < 100 && calls < 3; i++) await delay(5);
    await q.idle();
    assert.equal(calls, 3);
    assert.equal(q.pendingRetries(), 0);
    assert.equal(depths.at(-1), 0);
  });

  it('shutdown waits for in-flight work and drops the rest', async () => {
    const g = gate();
    let finished = false;
    const q = new WorkQueue({ name: 't', concurrency: 1, process: async (k) => { if (k === 'a') { await g.wait; finished = true; } } });
    q.start();
    q.add('a');
    q.add('b');
    await delay(5);
    const done = q.shutdown();
    g.open();
    await done;
    assert.ok(finished);
    q.add('c');
    assert.equal(q.depth(), 0, 'no work accepted after shutdown');
  });
});

describe('backoff', () => {
  it('given attempt n, the cap doubles from base up to max and the delay stays within [cap/2, cap]', () => {
    const o = { baseMs: 100, maxMs: 1000 };
    assert.deepEqual([0, 1, 2, 3, 4, 10].map((n) => backoffCap(n, o)), [100, 200, 400, 800, 1000, 1000]);
    assert.equal(backoffDelay(2, o, () => 0), 200);
    assert.equal(backoffDelay(2, o, () => 1), 400);
  });
});
