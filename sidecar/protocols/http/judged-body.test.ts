// Request bodies as the rules judge them: JSON whatever the Content-Type, BOM, UTF-16, compressed; unknown when an upstream could read JSON we cannot be sure of.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { brotliCompressSync, gzipSync } from 'node:zlib';
import { hasAmbiguousKeys, judgeBody } from './judged-body.ts';
import { matchPath } from './gateway.ts';

const J = '{"force":true}';
const judge = (b: Buffer | string, ct?: string, ce?: string): ReturnType<typeof judgeBody> =>
  judgeBody(typeof b === 'string' ? Buffer.from(b) : b, { ...(ct !== undefined ? { 'content-type': ct } : {}), ...(ce !== undefined ? { 'content-encoding': ce } : {}) }, 1 << 20);

describe('judgeBody', () => {
  const parsed: [string, Buffer | string, string | undefined, string | undefined][] = [
    ['application/json', J, 'application/json', undefined],
    ['text/plain carrying JSON (GitHub reads JSON whatever the type)', J, 'text/plain', undefined],
    ['no Content-Type', J, undefined, undefined],
    ['a UTF-8 BOM', Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(J)]), 'application/json', undefined],
    ['UTF-16LE with a BOM', Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from(J, 'utf16le')]), 'application/json', undefined],
    ['UTF-16LE without a BOM (RFC 4627 sniffing)', Buffer.from(J, 'utf16le'), 'application/json', undefined],
    ['UTF-16BE by charset', Buffer.from(J, 'utf16le').swap16(), 'application/json; charset=utf-16be', undefined],
    ['gzip', gzipSync(J), 'application/json', 'gzip'],
    ['br', brotliCompressSync(J), 'application/json', 'br'],
    ['merge-patch+json', J, 'application/merge-patch+json', undefined],
    ['leading whitespace', `\r\n ${J}\n`, 'application/json', undefined],
  ];
  for (const [what, body, ct, ce] of parsed) {
    it(`given ${what}, parses the document`, () => assert.deepEqual(judge(body, ct, ce), { parsed: { force: true }, unknown: false }));
  }
  const unknown: [string, Buffer | string, string | undefined, string | undefined][] = [
    ['duplicate keys (first or last wins, depending on the parser)', '{"force":true,"force":false}', 'application/json', undefined],
    ['keys equal but for case (Go reads both)', '{"force":false,"FORCE":true}', 'application/json', undefined],
    ['nested duplicate keys', '{"a":[{"b":1,"b":2}]}', 'application/json', undefined],
    ['NaN (Python reads it)', '{"force":true,"x":NaN}', 'application/json', undefined],
    ['JSON-looking text/plain that does not parse', '{"force":true,}', 'text/plain', undefined],
    ['an encoding it cannot undo', J, 'application/json', 'zstd'],
    ['gzip that is not gzip', J, 'application/json', 'gzip'],
    ['UTF-32', Buffer.from([0, 0, 0, 0x7b, 0, 0, 0, 0x7d]), 'application/json', undefined],
    ['invalid UTF-8', Buffer.from([0x7b, 0xff, 0x7d]), 'application/json', undefined],
    ['an unknown charset', J, 'application/json; charset=x-nonsense', undefined],
  ];
  for (const [what, body, ct, ce] of unknown) {
    it(`given ${what}, is unknown`, () => assert.deepEqual(judge(body, ct, ce), { parsed: undefined, unknown: true }));
  }
  it('given no body, a form or other text, is neither', () => {
    assert.deepEqual(judge(''), { parsed: undefined, unknown: false });
    assert.deepEqual(judge('force=true', 'application/x-www-form-urlencoded'), { parsed: undefined, unknown: false });
    assert.deepEqual(judge('hello', 'text/plain'), { parsed: undefined, unknown: false });
  });
  it('given a gzip bomb, is unknown (bounded inflation)', () => {
    assert.equal(judgeBody(gzipSync(Buffer.alloc(4 << 20, 0x20)), { 'content-encoding': 'gzip' }, 1 << 20).unknown, true);
  });
});

describe('hasAmbiguousKeys', () => {
  it('tells keys from values, strings with escapes included', () => {
    assert.equal(hasAmbiguousKeys('{"a":"a","b":["a","a"],"c":{"a":1}}'), false);
    assert.equal(hasAmbiguousKeys('{"a\\"":1,"b":"\\\\","c":2}'), false);
    assert.equal(hasAmbiguousKeys('{"\\u0061":1,"a":2}'), true);
    assert.equal(hasAmbiguousKeys('[{"x":1},{"x":2}]'), false);
  });
});

describe('matchPath: the path the rules see', () => {
  const ok: [string, string][] = [
    ['/admin/users', '/admin/users'],
    ['/%61dmin', '/admin'],
    ['/repos/a%2Fb', '/repos/a/b'],
    ['/admin%5Cusers', '/admin/users'],
    ['/admin;jsessionid=1/users', '/admin/users'],
    ['/a/%2F%2Fadmin', '/a/admin'],
    ['/a/', '/a/'],
  ];
  for (const [p, want] of ok) it(`given ${p}, judges ${want}`, () => assert.deepEqual(matchPath(p), { path: want }));
  for (const p of ['/x/..%2Fadmin', '/x/%2E%2E%2Fadmin', '/x/..;/admin', '/x/.;/admin', '/x%2F.%2Fy', '/admin%00/x', '/a%0d%0aHost:%20x', '/a/%c0%ae%c0%ae/b', '/%zz']) {
    it(`given ${p}, refuses it`, () => assert.ok('bad' in matchPath(p), JSON.stringify(matchPath(p))));
  }
});
