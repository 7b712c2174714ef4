// The webhook server on loopback: routing, fail closed on a throwing or hung handler, uid echo, certificate hot reload, cert directory reload.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'node:https';
import { connect } from 'node:tls';
import { X509Certificate } from 'node:crypto';
import { mkdtemp, rm, writeFile, rename } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { startWebhookServer, type WebhookLog, type WebhookServer } from './webhook-server.ts';
import { allow } from './admission.ts';
import { createCa, issueServing, type KeyPairPem } from '../certs/pki.ts';
import { watchCertDir } from '../certs/files.ts';

const errors: string[] = [];
const log: WebhookLog = { info: () => undefined, warn: () => undefined, error: (_o, m) => errors.push(m) };
let ca: KeyPairPem;
let server: WebhookServer;

function review(uid: string): string {
  return JSON.stringify({ apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', request: { uid, kind: { group: '', version: 'v1', kind: 'Pod' }, resource: { group: '', version: 'v1', resource: 'pods' }, operation: 'CREATE', userInfo: {}, namespace: 'ns', name: 'p' } });
}

function post(path: string, body: string): Promise<{ status: number; json: { response?: { uid: string; allowed: boolean; status?: { code: number; message: string } } } }> {
  return new Promise((resolve, reject) => {
    const req = request(`${server.url}${path}`, { method: 'POST', ca: ca.certPem, headers: { 'content-type': 'application/json' } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, json: JSON.parse(Buffer.concat(chunks).toString()) as never }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

function fingerprint(): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = connect({ host: '127.0.0.1', port: server.port, ca: ca.certPem }, () => {
      resolve(new X509Certificate(s.getPeerX509Certificate()!.raw).fingerprint256);
      s.end();
    });
    s.on('error', reject);
  });
}

const leaf = (): Promise<KeyPairPem> => issueServing(ca, { commonName: '127.0.0.1', dnsNames: [], ips: ['127.0.0.1'], validityMs: 3_600_000 });

before(async () => {
  ca = await createCa({ commonName: 'test-ca', validityMs: 3_600_000 });
  const l = await leaf();
  server = await startWebhookServer({
    host: '127.0.0.1',
    port: 0,
    tls: { cert: l.certPem, key: l.keyPem },
    log,
    handlerTimeoutMs: 200,
    routes: [
      { path: '/ok', name: 'ok', handle: (r) => ({ outcome: 'ok', response: allow(r.uid) }) },
      { path: '/wrong-uid', name: 'wrong-uid', handle: () => ({ outcome: 'ok', response: allow('someone-else') }) },
      { path: '/throws', name: 'throws', handle: () => { throw new Error('informer not synced'); } },
      { path: '/hangs', name: 'hangs', handle: () => new Promise(() => undefined) },
    ],
  });
});

after(() => server.close());

describe('startWebhookServer', () => {
  it('answers with the AdmissionReview envelope and the request uid', async () => {
    const r = await post('/ok', review('u1'));
    assert.equal(r.status, 200);
    assert.deepEqual(r.json, { apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', response: { uid: 'u1', allowed: true } });
    assert.equal((await post('/wrong-uid', review('u2'))).json.response?.uid, 'u2');
  });

  it('a throwing handler is a refusal with status 500 and a log line, and the server keeps serving', async () => {
    const r = await post('/throws', review('u3'));
    assert.equal(r.status, 200);
    assert.equal(r.json.response?.allowed, false);
    assert.equal(r.json.response?.status?.code, 500);
    assert.match(r.json.response?.status?.message ?? '', /webhook throws failed while admitting Pod ns\/p: informer not synced; the request was refused \(fail closed\)/);
    assert.ok(errors.some((e) => /refusing/.test(e)));
    assert.equal((await post('/ok', review('u4'))).json.response?.allowed, true);
  });

  it('a hung handler is refused at the deadline', async () => {
    const r = await post('/hangs', review('u5'));
    assert.equal(r.json.response?.allowed, false);
    assert.match(r.json.response?.status?.message ?? '', /did not answer within 200 ms/);
  });

  it('setTls swaps the certificate for new connections; a mismatched pair is refused and the old one stays', async () => {
    const before = await fingerprint();
    const next = await leaf();
    server.setTls({ cert: next.certPem, key: next.keyPem });
    const after = await fingerprint();
    assert.notEqual(after, before);
    assert.equal(after, new X509Certificate(next.certPem).fingerprint256);
    const other = await leaf();
    assert.throws(() => server.setTls({ cert: next.certPem, key: other.keyPem }));
    assert.equal(await fingerprint(), after);
    assert.equal(server.tlsReloads, 1);
  });

  it('refuses duplicate paths and a missing certificate up front', async () => {
    await assert.rejects(startWebhookServer({ host: '127.0.0.1', port: 0, tls: { cert: '', key: '' }, log, routes: [] }), /needs a TLS certificate/);
    const r = { path: '/a', name: 'a', handle: () => ({ outcome: 'x', response: allow('u') }) };
    await assert.rejects(startWebhookServer({ host: '127.0.0.1', port: 0, tls: { cert: 'x', key: 'y' }, log, routes: [r, r] }), /registered twice/);
  });
});

describe('watchCertDir (cert-manager mode)', () => {
  it('loads tls.crt/tls.key/ca.crt and reloads the server when the Secret volume swaps them', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'chaperone-certdir-'));
    try {
      const write = async (p: KeyPairPem): Promise<void> => {
        // Like the kubelet: new files land, then appear at once (rename).
        await writeFile(join(dir, 'tls.crt.tmp'), p.certPem);
        await writeFile(join(dir, 'tls.key.tmp'), p.keyPem);
        await rename(join(dir, 'tls.key.tmp'), join(dir, 'tls.key'));
        await rename(join(dir, 'tls.crt.tmp'), join(dir, 'tls.crt'));
      };
      await write(await leaf());
      await writeFile(join(dir, 'ca.crt'), ca.certPem);
      const seen: string[] = [];
      const d = await watchCertDir({ dir, log, onChange: (t) => { seen.push(t.cert); server.setTls(t); } });
      try {
        assert.equal(d.current().ca, ca.certPem);
        const next = await leaf();
        await write(next);
        for (let i = 0; i < 50 && seen.length === 0; i++) await delay(50);
        if (seen.length === 0) await d.reload();
        assert.equal(d.current().cert, next.certPem);
        assert.equal(await fingerprint(), new X509Certificate(next.certPem).fingerprint256);
        await writeFile(join(dir, 'tls.key'), 'garbage');
        assert.equal(await d.reload(), false, 'a half-written pair keeps the old one');
        assert.equal(d.current().cert, next.certPem);
      } finally {
        d.close();
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
