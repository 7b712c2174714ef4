// Header handling and credential files: what reaches the upstream, what comes back, rotation without a restart.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createMasker } from '../../masking/index.ts';
import { agentHeaders, decodableAcceptEncoding, upstreamHeaders } from './headers.ts';
import { CredentialSource } from './inject.ts';

describe('upstreamHeaders', () => {
  it('drops hop-by-hop headers, those named in Connection, the agent\'s Authorization and Expect; rewrites Host; sets the credential', () => {
    const h = upstreamHeaders(
      { host: '127.0.0.1:8080', connection: 'keep-alive, x-secret-hop', 'keep-alive': 'timeout=5', 'x-secret-hop': '1', te: 'trailers', 'transfer-encoding': 'chunked', upgrade: 'h2c', authorization: 'Bearer agent-token', expect: '100-continue', 'proxy-authorization': 'x', 'x-keep': 'yes', 'x-api-key': 'agent-key' },
      { host: 'api.example.com', credential: { name: 'x-api-key', value: 'real' }, drop: new Set(['x-api-key']) },
    );
    assert.deepEqual(h, { 'x-keep': 'yes', host: 'api.example.com', 'x-api-key': 'real' });
  });
  it('keeps only the encodings the gateway can decode', () => {
    assert.equal(decodableAcceptEncoding('gzip, deflate, br, zstd'), 'gzip, deflate, br');
    assert.equal(decodableAcceptEncoding('zstd'), 'identity');
    assert.equal(decodableAcceptEncoding(undefined), undefined);
  });
});

describe('agentHeaders', () => {
  const masker = createMasker({ keywordLists: [{ id: 'upstream-credential', words: ['real-credential-123'] }], fieldRules: [{ id: 'sid', names: ['sid'] }] });
  it('masks credential echoes and detector hits, drops hop-by-hop, keeps structured headers', () => {
    const { headers, findings } = agentHeaders(
      { 'content-type': 'application/json', connection: 'close', 'x-echo': 'Bearer real-credential-123', 'set-cookie': ['sid=abc123456; Path=/', 'theme=dark'], etag: '"real-credential-123"' },
      masker,
      ['real-credential-123'],
    );
    assert.equal(headers['content-type'], 'application/json');
    assert.equal(headers['connection'], undefined);
    assert.equal(headers['x-echo'], 'Bearer [MASKED:upstream-credential]');
    assert.deepEqual(headers['set-cookie'], ['sid=[MASKED:sid]; Path=/', 'theme=dark']);
    assert.equal(headers['etag'], '"[MASKED:upstream-credential]"');
    assert.ok((findings['upstream-credential'] ?? 0) >= 2);
  });
  // ETag, Cache-Control, Vary, Content-Type and Date were skipped as "structured": a detector hit in them reached the agent.
  it('scans every header but a numeric Content-Length and an HTTP-date; drops a header named by the credential', () => {
    const aws = ['AKIA', 'QX7Z', 'M2PL', 'K3RT', 'V4NB'].join('');
    const date = 'Fri, 04 Dec 2026 22:40:32 GMT';
    const { headers } = agentHeaders(
      { etag: `"${aws}"`, 'cache-control': `private, ${aws}`, vary: aws, 'content-type': `text/plain; x=${aws}`, date: aws, 'last-modified': date, 'content-length': '12', 'x-real-credential-123': '1' },
      masker,
      ['real-credential-123'],
    );
    for (const k of ['etag', 'cache-control', 'vary', 'content-type', 'date']) assert.ok(!String(headers[k]).includes(aws) && String(headers[k]).includes('[MASKED:aws-access-key-id]'), `${k}: ${String(headers[k])}`);
    assert.equal(headers['last-modified'], date);
    assert.equal(headers['content-length'], '12');
    assert.equal(headers['x-real-credential-123'], undefined);
  });
});

describe('CredentialSource', () => {
  it('reads the file, trims it, and re-reads it after it changes', () => {
    const dir = mkdtempSync(join(tmpdir(), 'chap-cred-'));
    try {
      const f = join(dir, 'token');
      writeFileSync(f, 'first-token\n');
      const src = new CredentialSource({ type: 'bearer', tokenFile: f });
      const a = src.get(0);
      assert.deepEqual(a.header, { name: 'authorization', value: 'Bearer first-token' });
      writeFileSync(f, 'second-token-longer\n');
      assert.equal(src.get(10).header?.value, 'Bearer first-token', 'within the recheck interval the cached value is used');
      const b = src.get(5000);
      assert.equal(b.header?.value, 'Bearer second-token-longer');
      assert.notEqual(a.version, b.version);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
  it('basic: scrubs the password and the base64 pair; query: the raw and URL-encoded token', () => {
    const dir = mkdtempSync(join(tmpdir(), 'chap-cred-'));
    try {
      writeFileSync(join(dir, 'u'), 'user');
      writeFileSync(join(dir, 'p'), 'p@ss word');
      const basic = new CredentialSource({ type: 'basic', usernameFile: join(dir, 'u'), passwordFile: join(dir, 'p') }).get();
      assert.deepEqual(basic.secrets, ['p@ss word', Buffer.from('user:p@ss word').toString('base64')]);
      const query = new CredentialSource({ type: 'query', queryParam: 'key', tokenFile: join(dir, 'p') }).get();
      assert.deepEqual(query.secrets, ['p@ss word', 'p%40ss%20word']);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
  it('an unreadable file fails naming the path, never a value', () => {
    const src = new CredentialSource({ type: 'bearer', tokenFile: '/nonexistent/chap/token' });
    assert.throws(() => src.get(), /credential file is unreadable \(ENOENT: \/nonexistent\/chap\/token\)/);
  });
});
