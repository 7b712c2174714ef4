// The loopback TLS pair: a leaf for 127.0.0.1/::1/localhost signed by a CA whose certificate alone is written; a TLS client trusting that file connects.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { createServer } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect } from 'node:tls';
import { generateLoopbackTls, loopbackTlsFor } from './loopback.ts';

async function handshake(port: number, ca: string, servername: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = connect({ host: '127.0.0.1', port, ca, servername }, () => {
      const ok = s.authorized ? 'authorized' : String(s.authorizationError);
      s.end();
      resolve(ok);
    });
    s.once('error', reject);
  });
}

describe('loopback TLS', () => {
  it('the leaf is for 127.0.0.1, ::1 and localhost, signed by the CA; the CA may sign leaves only', async () => {
    const t = await generateLoopbackTls('cluster');
    const ca = new X509Certificate(t.caPem);
    const leaf = new X509Certificate(t.cert);
    assert.ok(ca.ca, 'CA certificate');
    assert.ok(leaf.verify(ca.publicKey), 'leaf signed by the CA');
    assert.equal(leaf.checkIP('127.0.0.1'), '127.0.0.1');
    assert.equal(leaf.checkIP('::1'), '::1');
    assert.equal(leaf.checkHost('localhost'), 'localhost');
    assert.equal(leaf.checkHost('example.com'), undefined);
    assert.equal(leaf.ca, false);
    assert.match(t.key.toString(), /BEGIN PRIVATE KEY/);
  });

  it('writes only the CA certificate (0644); the same pair comes back for the same listener; a client trusting the file connects', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'chap-loopback-'));
    try {
      const caFile = join(dir, 'sub', 'cluster.crt');
      const a = await loopbackTlsFor('cluster', caFile);
      const b = await loopbackTlsFor('cluster', caFile);
      assert.equal(a, b, 'one pair per listener per process (a reload keeps the trusted CA)');
      const written = await readFile(caFile, 'utf8');
      assert.equal(written, a.caPem);
      assert.ok(!written.includes('PRIVATE KEY'));
      assert.equal((await stat(caFile)).mode & 0o777, 0o644);
      const server = createServer({ cert: a.cert, key: a.key }, (_q, r) => r.end('ok'));
      await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
      try {
        const port = (server.address() as { port: number }).port;
        assert.equal(await handshake(port, written, 'localhost'), 'authorized');
        const other = await generateLoopbackTls('other');
        await assert.rejects(handshake(port, other.caPem, 'localhost'), /self-signed|unable to verify|certificate/i, 'another CA is not trusted');
      } finally {
        server.closeAllConnections();
        await new Promise((r) => server.close(r));
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('an unwritable CA path says what to mount', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'chap-loopback-'));
    try {
      // A regular file where the directory should be: ENOTDIR, like a missing volume on a read-only root.
      await writeFile(join(dir, 'file'), '');
      await assert.rejects(loopbackTlsFor('ro', join(dir, 'file', 'ca.crt')), /cannot write the listener CA certificate to .*file\/ca\.crt: .*mount a writable volume/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
