// The JWKS cache's rules with a fake fetcher and clock: TTL, rate-limited refetch, coalescing, discovery checks, dropped key kinds.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { exportJWK, generateKeyPair, type JWK } from 'jose';
import { JwksCache, type Fetcher } from './jwks-cache.ts';
import { resolveIssuer, type IssuerOptions } from './options.ts';

const ISS = 'https://idp.example';

async function jwk(kid: string): Promise<JWK> {
  const { publicKey } = await generateKeyPair('ES256', { extractable: true });
  return { ...(await exportJWK(publicKey)), kid, alg: 'ES256', use: 'sig' };
}

function setup(docs: () => unknown, o: Partial<IssuerOptions> = {}): { cache: JwksCache; calls: string[]; t: { now: number } } {
  const calls: string[] = [];
  const t = { now: 1_000_000 };
  const fetcher: Fetcher = (url) => {
    calls.push(url);
    if (url.endsWith('/.well-known/openid-configuration')) return Promise.resolve({ issuer: ISS, jwks_uri: `${ISS}/keys` });
    const d = docs();
    return d instanceof Error ? Promise.reject(d) : Promise.resolve(d);
  };
  const cfg = resolveIssuer({ issuer: ISS, audiences: ['chaperone'], jwksMinRefetchSeconds: 10, jwksCacheTtlSeconds: 100, ...o }, 0);
  return { cache: new JwksCache(cfg, () => t.now, fetcher), calls, t };
}

describe('JwksCache', () => {
  test('discovers jwks_uri once, then serves lookups from the cache', async () => {
    const k = await jwk('a');
    const { cache, calls } = setup(() => ({ keys: [k] }));
    for (let i = 0; i < 5; i++) assert.ok((await cache.lookup({ alg: 'ES256', kid: 'a' })).ok);
    assert.deepEqual(calls, [`${ISS}/.well-known/openid-configuration`, `${ISS}/keys`]);
    assert.equal(cache.stats.hits, 5);
  });

  test('an unknown kid refetches at most once per window, concurrent callers share one fetch', async () => {
    const k = await jwk('a');
    const { cache, calls, t } = setup(() => ({ keys: [k] }));
    await cache.warmUp();
    t.now += 11_000;
    const rs = await Promise.all(Array.from({ length: 50 }, (_, i) => cache.lookup({ alg: 'ES256', kid: `x${i}` })));
    assert.ok(rs.every((r) => !r.ok && r.reason === 'unknown-kid'));
    assert.equal(calls.filter((c) => c.endsWith('/keys')).length, 2, 'warm-up + one refetch');
  });

  test('a rotated key is found by the refetch', async () => {
    let keys = [await jwk('a')];
    const { cache, t } = setup(() => ({ keys }));
    await cache.warmUp();
    keys = [await jwk('b')];
    t.now += 11_000;
    assert.ok((await cache.lookup({ alg: 'ES256', kid: 'b' })).ok);
    assert.equal((await cache.lookup({ alg: 'ES256', kid: 'a' })).ok, false, 'the removed key is gone');
  });

  test('fetch failures keep the cached keys until the TTL, then fail closed', async () => {
    const k = await jwk('a');
    let down = false;
    const { cache, t } = setup(() => (down ? new Error('connect ECONNREFUSED') : { keys: [k] }));
    await cache.warmUp();
    down = true;
    t.now += 60_000;
    assert.ok((await cache.lookup({ alg: 'ES256', kid: 'a' })).ok);
    t.now += 41_000;
    const r = await cache.lookup({ alg: 'ES256', kid: 'a' });
    assert.equal(r.ok, false);
    if (!r.ok) {
      assert.equal(r.reason, 'jwks-unavailable');
      assert.match(r.message, /ECONNREFUSED/);
    }
  });

  test('symmetric and private members of a key set are dropped', async () => {
    const k = await jwk('a');
    const { cache } = setup(() => ({ keys: [{ kty: 'oct', k: 'c2VjcmV0', kid: 'h', alg: 'HS256' }, { ...k, kid: 'p', d: 'x' }, k] }));
    assert.ok((await cache.lookup({ alg: 'ES256', kid: 'a' })).ok);
    assert.equal((await cache.lookup({ alg: 'ES256', kid: 'p' })).ok, false);
  });

  test('a key set with no usable key, or a discovery naming another issuer, is unavailable', async () => {
    const { cache } = setup(() => ({ keys: [{ kty: 'oct', k: 'c2VjcmV0' }] }));
    const r = await cache.lookup({ alg: 'ES256', kid: 'a' });
    assert.equal(!r.ok && r.reason, 'jwks-unavailable');
    const calls: string[] = [];
    const cfg = resolveIssuer({ issuer: ISS, audiences: ['c'] }, 0);
    const evil = new JwksCache(cfg, Date.now, (url) => (calls.push(url), Promise.resolve({ issuer: 'https://evil.example', jwks_uri: 'https://evil.example/k' })));
    const r2 = await evil.lookup({ alg: 'ES256', kid: 'a' });
    assert.equal(!r2.ok && r2.reason, 'jwks-unavailable');
    assert.ok(!r2.ok && /discovery names issuer/.test(r2.message));
    assert.equal(calls.length, 1, 'the foreign jwks_uri is never fetched');
  });
});

test('a JWKS member with broken key material is jwks-unavailable for its kid, not a crash', async () => {
  const k = await jwk('a');
  const { cache } = setup(() => ({ keys: [{ ...k, kid: 'broken', x: 'AAAA' }, k] }));
  const r = await cache.lookup({ alg: 'ES256', kid: 'broken' });
  assert.equal(!r.ok && r.reason, 'jwks-unavailable');
  assert.ok((await cache.lookup({ alg: 'ES256', kid: 'a' })).ok, 'the good key still works');
});

describe('options', () => {
  const bad: [string, Partial<IssuerOptions>][] = [
    ['no audiences', { audiences: [] }],
    ['an empty audience', { audiences: [''] }],
    ['alg none', { algorithms: ['none'] }],
    ['an HMAC alg', { algorithms: ['HS512'] }],
    ['an unknown alg', { algorithms: ['RS1'] }],
    ['a non-URL issuer without jwksUri', { issuer: 'not a url' }],
    ['a negative skew', { clockSkewSeconds: -1 }],
    ['an unreadable CA file', { caFile: '/nonexistent/ca.crt' }],
  ];
  for (const [name, o] of bad) {
    test(`given ${name}, refuses the options naming the field`, () => {
      assert.throws(() => resolveIssuer({ issuer: ISS, audiences: ['chaperone'], ...o }, 3), /identity options issuers\[3\]\./);
    });
  }
});
