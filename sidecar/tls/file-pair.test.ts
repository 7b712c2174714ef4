// TlsFilePair and the HTTP listener's certificate reload: a changed pair reaches new connections; a broken swap keeps the last good one.
import { afterEach, describe, it } from 'node:test';
import { X509Certificate } from 'node:crypto';
import assert from 'node:assert/strict';
import { mkdtemp, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect } from 'node:tls';
import { generateLoopbackTls } from './loopback.ts';
import { TLS_FILES_RECHECK_MS, TlsFilePair } from './file-pair.ts';
import { startHttpGateway } from '../protocols/http/listener.ts';
import { failClosedApprovals } from '../protocols/postgres/approval-hold.ts';
import type { TokenVerifier } from '../identity/verify-token.ts';

const dirs: string[] = [];
afterEach(async () => {
  for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true });
});

async function files(): Promise<{ dir: string; certFile: string; keyFile: string; put: (p: { cert: Buffer; key: Buffer }) => Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), 'chap-tls-reload-'));
  dirs.push(dir);
  const certFile = join(dir, 'tls.crt');
  const keyFile = join(dir, 'tls.key');
  // Written aside and renamed: each file flips atomically, as a Secret volume's symlink swap does.
  const put = async (p: { cert: Buffer; key: Buffer }): Promise<void> => {
    await writeFile(`${certFile}.new`, p.cert);
    await writeFile(`${keyFile}.new`, p.key);
    await rename(`${certFile}.new`, certFile);
    await rename(`${keyFile}.new`, keyFile);
  };
  return { dir, certFile, keyFile, put };
}

/** The serving certificate's fingerprint a TLS client sees at 127.0.0.1:port. */
function servedFingerprint(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = connect({ host: '127.0.0.1', port, rejectUnauthorized: false }, () => {
      const fp = s.getPeerCertificate().fingerprint256;
      s.end();
      resolve(fp);
    });
    s.once('error', reject);
  });
}

function fingerprintOf(pem: Buffer): string {
  return new X509Certificate(pem).fingerprint256;
}

describe('TlsFilePair', () => {
  it('returns a changed pair once, after the recheck interval, and nothing while unchanged', async () => {
    const a = await generateLoopbackTls('a');
    const b = await generateLoopbackTls('b');
    const f = await files();
    await f.put(a);
    let now = 1000;
    const pair = new TlsFilePair(f.certFile, f.keyFile, undefined, () => now);
    assert.ok(pair.current.cert.equals(a.cert));
    assert.equal(pair.poll(), undefined);
    await f.put(b);
    assert.equal(pair.poll(), undefined, 'not due before the recheck interval');
    now += TLS_FILES_RECHECK_MS;
    assert.ok(pair.poll()?.cert.equals(b.cert));
    now += TLS_FILES_RECHECK_MS;
    assert.equal(pair.poll(), undefined, 'unchanged since');
    assert.equal(pair.reloads, 1);
  });

  it('keeps the last good pair when the new files do not form a pair, and takes a good one later', async () => {
    const a = await generateLoopbackTls('a');
    const b = await generateLoopbackTls('b');
    const f = await files();
    await f.put(a);
    let now = 0;
    const pair = new TlsFilePair(f.certFile, f.keyFile, undefined, () => now);
    await f.put({ cert: b.cert, key: a.key });
    now += TLS_FILES_RECHECK_MS;
    assert.equal(pair.poll(), undefined);
    assert.equal(pair.failures, 1);
    assert.ok(pair.current.cert.equals(a.cert));
    await f.put(b);
    now += TLS_FILES_RECHECK_MS;
    assert.ok(pair.poll()?.cert.equals(b.cert));
  });

  it('refuses to start on unreadable or mismatched files, naming the files and not their contents', async () => {
    const a = await generateLoopbackTls('a');
    const b = await generateLoopbackTls('b');
    const f = await files();
    assert.throws(() => new TlsFilePair(f.certFile, f.keyFile), /cannot read .*tls\.crt/);
    await f.put({ cert: a.cert, key: b.key });
    assert.throws(() => new TlsFilePair(f.certFile, f.keyFile), (e: Error) => /not a PEM certificate and its matching key/.test(e.message) && !e.message.includes('PRIVATE KEY'));
  });
});

describe('HTTP listener TLS reload', () => {
  it('serves the new certificate to connections made after the files change, without a restart', async () => {
    const a = await generateLoopbackTls('a');
    const b = await generateLoopbackTls('b');
    const f = await files();
    await f.put(a);
    await writeFile(join(f.dir, 'cred'), 'unit-test-credential\n');
    const verifier: TokenVerifier = { verify: () => Promise.resolve({ ok: false, reason: 'missing', message: 'no token' }) } as unknown as TokenVerifier;
    const silent = { debug: () => undefined, info: () => undefined, warn: () => undefined, error: () => undefined };
    const g = await startHttpGateway(
      {
        name: 'api', protocol: 'http', listen: { host: '127.0.0.1', port: 0, tls: { certFile: f.certFile, keyFile: f.keyFile, required: false } }, access: { allowedGroups: [], allowedSubjects: [], anyAuthenticated: true }, readOnly: false,
        limits: { maxMessageBytes: 1 << 20, idleTimeoutSeconds: 0, statementTimeoutSeconds: undefined, connectTimeoutSeconds: 2, maxSessions: 10 },
        masking: {}, upstream: { url: 'http://127.0.0.1:9', tls: { caFile: undefined, serverName: undefined, certFile: undefined, keyFile: undefined } },
        credentials: { type: 'bearer', tokenFile: join(f.dir, 'cred') }, policy: { http: { default: 'allow' } },
      },
      { verifier, recorder: null, approvals: failClosedApprovals, approvalTimeoutMs: 1000, logger: silent, metrics: {}, identity: 'test' },
    );
    try {
      assert.equal(await servedFingerprint(g.address.port), fingerprintOf(a.cert));
      await f.put(b);
      // The files are looked at most once a second: wait past that, then a new connection sees the new pair.
      await new Promise((r) => setTimeout(r, TLS_FILES_RECHECK_MS + 100));
      assert.equal(await servedFingerprint(g.address.port), fingerprintOf(b.cert));
    } finally {
      await g.close(Date.now() + 1000);
    }
  });
});
