// Approval notifications: Slack and JSON bodies, the HMAC-SHA256 signature over the exact body, bounded retries on a loopback receiver.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { notificationBody, sendNotification, signBody, summarize } from '../../operator/approvals/notify.ts';
import { request } from './approvals-fixtures.ts';

describe('notifications', () => {
  it('slack body has text and blocks naming the command and how to approve; json body is the summary', () => {
    const s = summarize(request(), 'created');
    const slack = JSON.parse(notificationBody(s, 'slack')) as { text: string; blocks: { text: { text: string } }[] };
    assert.match(slack.text, /Approval needed: coding-agent\/orders-db wants to run `DELETE FROM orders`/);
    assert.match(slack.blocks[1]?.text.text ?? '', /kubectl chaperone approve pg-1 -n agents/);
    assert.equal((JSON.parse(notificationBody(s, 'json')) as { name: string }).name, 'pg-1');
  });

  it('the signature is sha256=HMAC of the exact body', () => {
    const key = Buffer.from('synthetic-test-key');
    assert.equal(signBody('{"a":1}', key), `sha256=${createHmac('sha256', key).update('{"a":1}').digest('hex')}`);
  });

  it('retries a 503 with backoff and stops at the first 2xx; a 400 is not retried', async () => {
    const seen: { sig: string | undefined; body: string }[] = [];
    let answers = [503, 503, 200];
    const srv = createServer((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString()));
      req.on('end', () => {
        seen.push({ sig: req.headers['x-chaperone-signature'] as string | undefined, body });
        res.statusCode = answers.shift() ?? 500;
        res.end();
      });
    });
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
    const url = `http://127.0.0.1:${(srv.address() as AddressInfo).port}/hook`;
    try {
      const key = Buffer.from('synthetic-test-key');
      const ok = await sendNotification({ url, body: '{"x":1}', key, baseMs: 5 });
      assert.deepEqual([ok.ok, ok.attempts], [true, 3]);
      assert.equal(seen[2]?.sig, signBody('{"x":1}', key));
      answers = [400];
      const bad = await sendNotification({ url, body: '{}', baseMs: 5 });
      assert.deepEqual([bad.ok, bad.attempts], [false, 1]);
      assert.match(bad.message, /HTTP 400/);
    } finally {
      await new Promise((r) => srv.close(r));
    }
  });
});
