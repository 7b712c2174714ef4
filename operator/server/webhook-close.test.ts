// The webhook server's close is bounded: an admission in flight on a keep-alive connection ends it (Connection: close), a connection with no request ends at once, a stalled handshake is cut after the grace period.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Agent, request } from 'node:https';
import { connect } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { setTimeout as delay } from 'node:timers/promises';
import { startWebhookServer, type WebhookLog, type WebhookServer } from './webhook-server.ts';
import { allow, type AdmissionOutcome } from './admission.ts';
import { createCa, issueServing, type KeyPairPem } from '../certs/pki.ts';

/** Hang detector, not a timing assert: fastify's keepAliveTimeout (72 s) is what an unbounded close waits for. */
const SAFETY_MS = 10_000;

function review(uid: string): string {
  return JSON.stringify({ apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', request: { uid, kind: { group: '', version: 'v1', kind: 'Pod' }, resource: { group: '', version: 'v1', resource: 'pods' }, operation: 'CREATE', userInfo: {}, namespace: 'ns', name: 'p' } });
}

async function withinSafety<T>(p: Promise<T>, what: string): Promise<T | 'hung'> {
  const t = delay(SAFETY_MS, 'hung' as const, { ref: false });
  const r = await Promise.race([p, t]);
  assert.notEqual(r, 'hung', `${what} did not resolve within ${SAFETY_MS} ms`);
  return r;
}

interface Started {
  readonly server: WebhookServer;
  readonly ca: KeyPairPem;
  readonly warnings: string[];
  release(): void;
}

/** A server whose /slow route answers only when release() is called. */
async function start(closeGraceMs: number): Promise<Started> {
  const ca = await createCa({ commonName: 'close-test-ca', validityMs: 3_600_000 });
  const l = await issueServing(ca, { commonName: '127.0.0.1', dnsNames: [], ips: ['127.0.0.1'], validityMs: 3_600_000 });
  const warnings: string[] = [];
  const log: WebhookLog = { info: () => undefined, warn: (_o, m) => warnings.push(m), error: () => undefined };
  let release: () => void = () => undefined;
  const gate = new Promise<void>((resolve) => {
    release = resolve;
  });
  const server = await startWebhookServer({
    host: '127.0.0.1', port: 0, tls: { cert: l.certPem, key: l.keyPem }, log, closeGraceMs, handlerTimeoutMs: 5_000,
    routes: [{ path: '/slow', name: 'slow', handle: async (r): Promise<AdmissionOutcome> => {
      await gate;
      return { outcome: 'ok', response: allow(r.uid) };
    } }],
  });
  return { server, ca, warnings, release };
}

describe('webhook server close', () => {
  it('an admission in flight on a keep-alive connection is answered with Connection: close, and close does not wait for keepAliveTimeout', async () => {
    const s = await start(8_000);
    const agent = new Agent({ keepAlive: true, ca: s.ca.certPem });
    try {
      let received: (() => void) | undefined;
      const arrived = new Promise<void>((resolve) => {
        received = resolve;
      });
      const answer = new Promise<{ status: number; connection: string | undefined }>((resolve, reject) => {
        const req = request(`${s.server.url}/slow`, { method: 'POST', agent, headers: { 'content-type': 'application/json' } }, (res) => {
          res.resume();
          res.on('end', () => resolve({ status: res.statusCode ?? 0, connection: res.headers.connection }));
        });
        req.on('error', reject);
        req.on('socket', () => received?.());
        req.end(review('u-1'));
      });
      await arrived;
      // Let the request reach the handler before closing.
      await delay(200);
      const closed = s.server.close();
      s.release();
      const r = await withinSafety(answer, 'the in-flight admission');
      assert.deepEqual(r, { status: 200, connection: 'close' });
      await withinSafety(closed, 'close()');
      assert.deepEqual(s.warnings, [], 'nothing was cut: the connection ended after its answer');
    } finally {
      s.release();
      agent.destroy();
    }
  });

  it('a connection past its TLS handshake that never sent a request (a client\'s spare pooled connection) is closed at once, not at the grace period', async () => {
    const s = await start(8_000);
    const spare = tlsConnect({ host: '127.0.0.1', port: s.server.port, ca: s.ca.certPem });
    spare.on('error', () => undefined);
    await new Promise<void>((resolve) => spare.once('secureConnect', () => resolve()));
    const ended = new Promise<void>((resolve) => spare.once('close', () => resolve()));
    try {
      await withinSafety(s.server.close(), 'close() with a spare connection');
      await withinSafety(ended, 'the spare connection closing');
      assert.deepEqual(s.warnings, [], 'closed as quiet, not cut at the grace period');
    } finally {
      spare.destroy();
      s.release();
    }
  });

  it('a socket that never finishes its TLS handshake is cut after the grace period', async () => {
    const s = await start(300);
    const raw = connect({ host: '127.0.0.1', port: s.server.port });
    raw.on('error', () => undefined);
    await new Promise<void>((resolve) => raw.once('connect', () => resolve()));
    try {
      await withinSafety(s.server.close(), 'close() with a stalled socket');
      assert.equal(s.warnings.length, 1);
      assert.match(s.warnings[0] ?? '', /still open after the close grace period/);
    } finally {
      raw.destroy();
      s.release();
    }
  });
});
