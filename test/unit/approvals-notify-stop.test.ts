// Approval notifications on shutdown: stopping the leader aborts a POST in flight to a receiver that never answers.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { setTimeout as delay } from 'node:timers/promises';
import { sendNotification } from '../../operator/approvals/notify.ts';

/** Hang detector only: without the stop signal on the request the POST waits its whole timeout (60 s here). */
const SAFETY_MS = 10_000;

describe('notification stop', () => {
  it('a POST in flight ends when the stop signal aborts; no retry follows', async () => {
    const held: ServerResponse[] = [];
    let posts = 0;
    const srv = createServer((_req, res) => {
      posts += 1;
      held.push(res);
    });
    await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', () => resolve()));
    const url = `http://127.0.0.1:${(srv.address() as AddressInfo).port}/hook`;
    const stop = new AbortController();
    try {
      const sent = sendNotification({ url, body: '{}', attempts: 3, baseMs: 10, timeoutMs: 60_000, signal: stop.signal });
      for (let i = 0; i < 200 && posts === 0; i++) await delay(10);
      stop.abort();
      const r = await Promise.race([sent, delay(SAFETY_MS, 'hung' as const, { ref: false })]);
      assert.notEqual(r, 'hung', `sendNotification did not end within ${SAFETY_MS} ms of stop`);
      assert.deepEqual(r, { ok: false, attempts: 1, message: 'stopped' });
      assert.equal(posts, 1);
    } finally {
      for (const res of held) res.destroy();
      srv.closeAllConnections();
      await new Promise<void>((resolve) => srv.close(() => resolve()));
    }
  });
});
