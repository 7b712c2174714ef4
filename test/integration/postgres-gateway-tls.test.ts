// PostgreSQL gateway listener TLS: psql sslmode=require / verify-full and node pg with ssl upgrade after 'S', GSSENCRequest gets 'N', a TLS-required listener refuses plaintext, a swapped certificate is picked up.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { copyFile, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { createCa, type Ca } from '../env/pki.ts';
import { startPostgres, type Postgres } from '../env/postgres.ts';
import { startOidcProvider, type TestIdp } from '../helpers/oidc-provider.ts';
import { fields, messages, rawClient, startGateway, startupPacket, type Gateway } from './postgres-gateway.harness.ts';

const run = promisify(execFile);

async function psql(env: NodeJS.ProcessEnv, sql: string): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const r = await run('psql', ['-X', '-A', '-t', '-c', sql], { env, timeout: 30_000 });
    return { code: 0, stdout: r.stdout, stderr: r.stderr };
  } catch (e) {
    const x = e as { stdout?: string; stderr?: string; code?: number };
    return { code: typeof x.code === 'number' ? x.code : 1, stdout: x.stdout ?? '', stderr: x.stderr ?? '' };
  }
}

function request(code: number): Buffer {
  const b = Buffer.alloc(8);
  b.writeUInt32BE(8);
  b.writeUInt32BE(code, 4);
  return b;
}

describe('postgres gateway: listener TLS', () => {
  let pgp: Postgres;
  let idp: TestIdp;
  let dir: string;
  let ca: Ca;
  let ca2: Ca;
  let gw: Gateway;
  let strict: Gateway;
  const certFile = (): string => join(dir, 'listener.crt');
  const keyFile = (): string => join(dir, 'listener.key');

  before(async () => {
    [pgp, idp] = await Promise.all([startPostgres({ auth: 'scram-sha-256' }), startOidcProvider()]);
    dir = await mkdtemp(join(tmpdir(), 'chap-pgtls-'));
    ca = await createCa(dir, 'chaperone-listener-ca', 'ca1');
    ca2 = await createCa(dir, 'chaperone-listener-ca-2', 'ca2');
    const leaf = await ca.issue({ name: 'leaf1', commonName: 'localhost', ips: ['127.0.0.1'], dnsNames: ['localhost'], usage: 'server' });
    await copyFile(leaf.certFile, certFile());
    await copyFile(leaf.keyFile, keyFile());
    gw = await startGateway({ pg: pgp, idp, listenTls: { certFile: certFile(), keyFile: keyFile(), required: false } });
    strict = await startGateway({ pg: pgp, idp, listenTls: { certFile: certFile(), keyFile: keyFile(), required: true } });
  });
  after(async () => {
    await strict?.close();
    await gw?.close();
    await idp?.close();
    await pgp?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('psql sslmode=require upgrades and runs a query; verify-full checks the listener certificate', async () => {
    const env = { ...gw.env(await gw.token()), PGSSLMODE: 'require' };
    const r = await psql(env, 'SELECT 40 + 2');
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout.trim(), '42');
    const info = await run('psql', ['-X', '-c', '\\conninfo'], { env, timeout: 30_000 });
    assert.match(info.stdout, /SSL connection \(protocol: TLSv1\.[23]/);
    const full = await psql({ ...env, PGSSLMODE: 'verify-full', PGSSLROOTCERT: ca.certFile }, 'SELECT 1');
    assert.equal(full.code, 0, full.stderr);
    const wrongCa = await psql({ ...env, PGSSLMODE: 'verify-full', PGSSLROOTCERT: ca2.certFile }, 'SELECT 1');
    assert.notEqual(wrongCa.code, 0, 'a certificate from another CA must not verify');
    assert.match(wrongCa.stderr, /certificate verify failed/);
  });

  it('node pg with ssl (CA-verified) runs the extended protocol over TLS', async () => {
    const c = await gw.client('agent-writer', { ssl: { ca: ca.certPem } });
    try {
      const r = await c.query('SELECT $1::int * 2 AS v', [21]);
      assert.equal((r.rows[0] as { v: number }).v, 42);
    } finally {
      await c.end();
    }
  });

  it('GSSENCRequest is answered N, then SSLRequest S on the same connection', async () => {
    const c = await rawClient(gw.port);
    c.send(request(80877104));
    const n = await c.until((b) => b.length >= 1);
    assert.equal(n.toString('latin1', 0, 1), 'N');
    c.send(request(80877103));
    const s = await c.until((b) => b.length >= 2);
    assert.equal(s.toString('latin1', 1, 2), 'S');
    c.socket.destroy();
  });

  it('plaintext after SSLRequest, before the answer, is refused (no plaintext inside TLS)', async () => {
    const c = await rawClient(gw.port);
    c.send(Buffer.concat([request(80877103), startupPacket({ user: 'agent' })]));
    await c.closed;
    const got = c.bytes();
    assert.notEqual(got[0], 0x53, 'TLS must not be offered after stuffed bytes');
    const err = messages(got).find((m) => m.type === 'E');
    assert.ok(err, 'a FATAL error');
    assert.match(fields(err.body)['M'] ?? '', /CVE-2021-23214|before receiving the answer/);
  });

  it('a TLS-required listener refuses plaintext with CHAP_ERR_PG_TLS_REQUIRED and serves sslmode=prefer over TLS', async () => {
    const token = await strict.token();
    const plain = await psql({ ...strict.env(token), PGSSLMODE: 'disable' }, 'SELECT 1');
    assert.notEqual(plain.code, 0);
    assert.match(plain.stderr, /requires TLS/);
    assert.ok(!plain.stderr.includes(token), 'the token is never echoed');
    const prefer = await psql({ ...strict.env(token), PGSSLMODE: 'prefer' }, 'SELECT 7');
    assert.equal(prefer.code, 0, prefer.stderr);
    assert.equal(prefer.stdout.trim(), '7');
  });

  it('a swapped certificate is served to new sessions within a second or two (no restart)', async () => {
    const leaf2 = await ca2.issue({ name: 'leaf2', commonName: 'localhost', ips: ['127.0.0.1'], usage: 'server' });
    // Key first, then cert: a half-swapped pair fails to load and the last good one keeps serving.
    await copyFile(leaf2.keyFile, keyFile());
    await copyFile(leaf2.certFile, certFile());
    const env = { ...gw.env(await gw.token()), PGSSLMODE: 'verify-full', PGSSLROOTCERT: ca2.certFile };
    let last = '';
    for (let i = 0; i < 20; i++) {
      const r = await psql(env, 'SELECT 1');
      if (r.code === 0) return;
      last = r.stderr;
      await new Promise((res) => setTimeout(res, 250));
    }
    assert.fail(`the new certificate was not served: ${last} (${(await readFile(certFile(), 'utf8')).length} bytes on disk)`);
  });
});
