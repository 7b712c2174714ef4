// Request decisions before dialing: CONNECT authority, absolute-form URLs, the proxy token, smuggling-prone framing.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { framingProblem, parseAbsoluteTarget, parseConnectTarget, proxyToken } from './request.ts';

describe('parseConnectTarget', () => {
  for (const [raw, host, port] of [
    ['api.github.com:443', 'api.github.com', 443],
    ['API.GitHub.COM:443', 'api.github.com', 443],
    ['[::1]:8443', '::1', 8443],
    ['0x7f.1:443', '127.0.0.1', 443],
  ] as const) {
    it(`given ${raw}, returns ${host} port ${port}`, () => {
      const r = parseConnectTarget(raw);
      assert.ok(r.ok, JSON.stringify(r));
      assert.equal(r.target.host, host);
      assert.equal(r.target.port, port);
    });
  }
  for (const raw of ['api.github.com', 'api.github.com:0', 'api.github.com:70000', 'user@api.github.com:443', 'http://api.github.com:443', '::1:443', 'a b:443', '']) {
    it(`refuses ${JSON.stringify(raw)}`, () => assert.equal(parseConnectTarget(raw).ok, false));
  }
});

describe('parseAbsoluteTarget', () => {
  it('an http URL: host, default port, origin-form path with query, Host header', () => {
    const r = parseAbsoluteTarget('http://Example.COM/a/b?c=1');
    assert.ok(r.ok);
    assert.deepEqual(r.target, { host: 'example.com', port: 80, ipLiteral: false, path: '/a/b?c=1', hostHeader: 'example.com' });
  });
  it('keeps a non-default port in Host; brackets IPv6', () => {
    const r = parseAbsoluteTarget('http://[fd00::7]:8080/x');
    assert.ok(r.ok);
    assert.equal(r.target.hostHeader, '[fd00::7]:8080');
    assert.equal(r.target.ipLiteral, true);
  });
  for (const [raw, why] of [
    ['/relative', 'origin-form: not a proxy request'],
    ['https://example.com/', 'https goes through CONNECT'],
    ['ftp://example.com/', 'only http'],
    ['http://user:pw@example.com/', 'userinfo'],
    ['http://allowed.example@evil.example/', 'userinfo trick'],
    ['http://:80/', 'no host'],
  ] as const) {
    it(`refuses ${raw}: ${why}`, () => assert.equal(parseAbsoluteTarget(raw).ok, false));
  }
});

describe('proxyToken', () => {
  const b64 = (s: string): string => Buffer.from(s).toString('base64');
  for (const [header, want, why] of [
    ['Bearer abc.def.ghi', 'abc.def.ghi', 'bearer'],
    ['bearer   abc', 'abc', 'scheme case-insensitive'],
    [`Basic ${b64('agent:abc.def')}`, 'abc.def', 'basic: the password is the token'],
    [`Basic ${b64(':abc')}`, 'abc', 'basic without a user name'],
    [`Basic ${b64('agent:')}`, undefined, 'basic without a password'],
    ['Bearer a b', undefined, 'two words'],
    ['Negotiate xyz', undefined, 'other schemes'],
  ] as const) {
    it(`given ${header.slice(0, 24)}, returns ${String(want)}: ${why}`, () => assert.equal(proxyToken(header), want));
  }
  it('two headers are ambiguous: none', () => assert.equal(proxyToken(['Bearer a', 'Bearer b']), undefined));
});

describe('framingProblem', () => {
  const check = (pairs: [string, string][]): string | undefined => {
    const headers: Record<string, string> = {};
    for (const [k, v] of pairs) headers[k.toLowerCase()] = v;
    return framingProblem(headers, pairs.flat());
  };
  it('no body framing, a Content-Length, a chunked body: fine', () => {
    assert.equal(check([]), undefined);
    assert.equal(check([['Content-Length', '12']]), undefined);
    assert.equal(check([['Transfer-Encoding', 'chunked']]), undefined);
  });
  for (const [pairs, why] of [
    [[['Content-Length', '4'], ['Transfer-Encoding', 'chunked']], 'CL and TE'],
    [[['Content-Length', '4'], ['content-length', '40']], 'two CLs'],
    [[['Transfer-Encoding', 'gzip, chunked']], 'TE other than a single chunked'],
    [[['Transfer-Encoding', 'chunked'], ['Transfer-Encoding', 'chunked']], 'two TEs'],
    [[['Content-Length', '-1']], 'CL not a number'],
  ] as const) {
    it(`refuses ${why}`, () => assert.notEqual(check(pairs.map(([k, v]) => [k, v])), undefined));
  }
});
