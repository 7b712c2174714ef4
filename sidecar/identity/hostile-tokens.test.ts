// Hostile tokens against the whole verifier (fake JWKS fetcher, fixed clock, raw node:crypto signing so any header or
// claim can be forged): every one is refused with the reason of the check it fails, never `internal`, never a throw,
// and no message carries the token or a part of it.
import { describe, test, before } from 'node:test';
import assert from 'node:assert/strict';
import { constants, createHmac, KeyObject, sign as nodeSign, generateKeyPairSync } from 'node:crypto';
import { exportJWK, exportSPKI, generateKeyPair, type CryptoKey, type JWK } from 'jose';
import { createTokenVerifier, type TokenVerifier, type VerifyResult } from './verify-token.ts';
import { loadJose, type JoseLib } from './jose-lib.ts';
import { IdentityOptionsError, type IssuerOptions, type VerifierOptions } from './options.ts';
import { VerifiedCache } from './verified-cache.ts';

const A = 'https://a.example';
const B = 'https://b.example';
const K = 'https://k8s.example';
const NOW_MS = 1_800_000_000_000;
const NOW = NOW_MS / 1000;
const SELF = { name: 'agent-pod', uid: 'pod-uid-1', namespace: 'team' };

const b64 = (v: unknown): string => Buffer.from(typeof v === 'string' ? v : JSON.stringify(v)).toString('base64url');

/** Signs any header and payload as given (jose's signer refuses odd headers; the point here is to send them). */
function raw(header: Record<string, unknown>, payload: unknown, key: KeyObject, alg = typeof header['alg'] === 'string' ? header['alg'] : 'RS256'): string {
  const input = `${b64(header)}.${b64(payload)}`;
  const data = Buffer.from(input);
  let sig: Buffer;
  if (alg.startsWith('ES')) sig = nodeSign(`sha${alg.slice(2)}`, data, { key, dsaEncoding: 'ieee-p1363' });
  else if (alg.startsWith('PS')) sig = nodeSign(`sha${alg.slice(2)}`, data, { key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: Number(alg.slice(2)) / 8 });
  else sig = nodeSign(`sha${alg.slice(2) || '256'}`, data, key);
  return `${input}.${sig.toString('base64url')}`;
}

interface Keys {
  rsa: KeyObject;
  ec: KeyObject;
  rsaB: KeyObject;
  other: KeyObject;
  rsaPem: string;
  jwksA: { keys: JWK[] };
  jwksB: { keys: JWK[] };
}

let keys: Keys;

async function pair(alg: 'RS256' | 'ES256'): Promise<{ priv: KeyObject; pub: CryptoKey }> {
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true });
  return { priv: KeyObject.from(privateKey), pub: publicKey };
}

before(async () => {
  const [rsa, ec, rsaB, other] = await Promise.all([pair('RS256'), pair('ES256'), pair('RS256'), pair('RS256')]);
  keys = {
    rsa: rsa.priv,
    ec: ec.priv,
    rsaB: rsaB.priv,
    other: other.priv,
    rsaPem: await exportSPKI(rsa.pub),
    jwksA: { keys: [{ ...(await exportJWK(rsa.pub)), kid: 'rsa1' }, { ...(await exportJWK(ec.pub)), kid: 'ec1' }] },
    jwksB: { keys: [{ ...(await exportJWK(rsaB.pub)), kid: 'rsaB' }] },
  };
});

interface Setup {
  v: TokenVerifier;
  fetched: string[];
}

function setup(o: { docs?: Record<string, unknown>; issuers?: Partial<IssuerOptions>[]; extra?: Partial<VerifierOptions>; loadJose?: () => Promise<JoseLib> } = {}): Setup {
  const fetched: string[] = [];
  const docs: Record<string, unknown> = {
    [`${A}/.well-known/openid-configuration`]: { issuer: A, jwks_uri: `${A}/jwks` },
    [`${A}/jwks`]: keys.jwksA,
    [`${B}/.well-known/openid-configuration`]: { issuer: B, jwks_uri: `${B}/jwks` },
    [`${B}/jwks`]: keys.jwksB,
    [`${K}/.well-known/openid-configuration`]: { issuer: K, jwks_uri: `${K}/jwks` },
    [`${K}/jwks`]: keys.jwksA,
    ...o.docs,
  };
  const fetcher = (url: string): Promise<unknown> => {
    fetched.push(url);
    return url in docs ? Promise.resolve(structuredClone(docs[url])) : Promise.reject(new Error(`${url}: HTTP 404`));
  };
  const issuers: IssuerOptions[] = o.issuers?.map((i) => ({ issuer: A, audiences: ['chaperone'], ...i })) ?? [
    { issuer: A, audiences: ['chaperone'] },
    { issuer: B, audiences: ['chaperone'] },
    { issuer: K, audiences: ['chaperone'], kind: 'kubernetes' },
  ];
  const v = createTokenVerifier({ issuers, self: SELF, now: () => NOW_MS, verifiedCacheSize: 0, ...o.extra }, { fetcher, ...(o.loadJose ? { loadJose: o.loadJose } : {}) });
  return { v, fetched };
}

const oidcClaims = (o: Record<string, unknown> = {}): Record<string, unknown> => ({ iss: A, aud: 'chaperone', sub: 'alice', groups: ['agents'], iat: NOW - 10, exp: NOW + 600, ...o });
const saClaims = (o: Record<string, unknown> = {}, kio?: unknown): Record<string, unknown> => ({
  iss: K,
  aud: ['chaperone'],
  sub: 'system:serviceaccount:team:coder',
  iat: NOW - 10,
  exp: NOW + 600,
  'kubernetes.io': kio ?? { namespace: 'team', serviceaccount: { name: 'coder', uid: 'sa-uid' }, pod: { name: SELF.name, uid: SELF.uid } },
  ...o,
});
const rs = (claims: unknown, header: Record<string, unknown> = { alg: 'RS256', kid: 'rsa1' }): string => raw(header, claims, keys.rsa);

function assertRefused(r: VerifyResult, reason: string, token: string, message?: RegExp): void {
  assert.equal(r.ok, false, `expected ${reason}, got ${JSON.stringify(r)}`);
  if (r.ok) return;
  assert.equal(r.reason, reason, r.message);
  if (message) assert.match(r.message, message);
  for (const part of [token, ...token.split('.')]) if (part.length >= 8) assert.ok(!r.message.includes(part), `the message quotes the token: ${r.message}`);
}

describe('hostile tokens: header tricks', () => {
  test('a well-formed token of each accepted kind verifies (the baseline the others differ from)', async () => {
    const { v } = setup();
    for (const t of [rs(oidcClaims()), raw({ alg: 'ES256', kid: 'ec1' }, oidcClaims(), keys.ec), raw({ alg: 'PS256', kid: 'rsa1' }, oidcClaims(), keys.rsa), rs(oidcClaims(), { alg: 'RS256' }), rs(saClaims())]) {
      const r = await v.verify(t);
      assert.ok(r.ok, JSON.stringify(r));
    }
  });

  test('alg none in any case, with or without a signature part, is never accepted', async () => {
    const { v, fetched } = setup();
    for (const alg of ['none', 'None', 'NONE', 'nOnE']) {
      for (const sig of ['', 'c2ln']) {
        const t = `${b64({ alg })}.${b64(oidcClaims())}.${sig}`;
        assertRefused(await v.verify(t), 'alg-not-allowed', t, /never accepted/);
      }
    }
    assert.deepEqual(fetched, [], 'refused before any key is fetched');
  });

  test('HS256/384/512 keyed with the issuer\'s RSA public key (PEM or JWK) is never accepted, in any case', async () => {
    const { v } = setup();
    for (const alg of ['HS256', 'HS384', 'HS512', 'hs256', 'Hs512']) {
      for (const secret of [keys.rsaPem, JSON.stringify(keys.jwksA.keys[0])]) {
        const input = `${b64({ alg, kid: 'rsa1' })}.${b64(oidcClaims())}`;
        const t = `${input}.${createHmac(`sha${alg.slice(2)}`, secret).update(input).digest('base64url')}`;
        assertRefused(await v.verify(t), 'alg-not-allowed', t, /never accepted/);
      }
    }
  });

  test('a missing or non-string alg is refused as alg-not-allowed, naming the missing header', async () => {
    const { v } = setup();
    for (const header of [{}, { alg: 1 }, { alg: ['RS256'] }]) {
      const t = `${b64(header)}.${b64(oidcClaims())}.c2ln`;
      assertRefused(await v.verify(t), 'alg-not-allowed', t, /no alg header/);
    }
  });

  test('alg/key confusion: an RS256 header on an EC kid and an ES256 header on an RSA kid find no key', async () => {
    const { v } = setup();
    const ecSigned = raw({ alg: 'ES256', kid: 'ec1' }, oidcClaims(), keys.ec).split('.');
    const t1 = `${b64({ alg: 'RS256', kid: 'ec1' })}.${ecSigned[1]}.${ecSigned[2]}`;
    assertRefused(await v.verify(t1), 'unknown-kid', t1);
    const t2 = raw({ alg: 'ES256', kid: 'rsa1' }, oidcClaims(), keys.ec);
    assertRefused(await v.verify(t2), 'unknown-kid', t2);
  });

  test('an ES256 signature in DER form instead of raw r||s is refused as bad-signature', async () => {
    const { v } = setup();
    const input = `${b64({ alg: 'ES256', kid: 'ec1' })}.${b64(oidcClaims())}`;
    const t = `${input}.${nodeSign('sha256', Buffer.from(input), keys.ec).toString('base64url')}`;
    assertRefused(await v.verify(t), 'bad-signature', t);
  });

  test('a PS256 header over an RS256 signature is refused as bad-signature', async () => {
    const { v } = setup();
    const [, p, s] = rs(oidcClaims()).split('.');
    const t = `${b64({ alg: 'PS256', kid: 'rsa1' })}.${p}.${s}`;
    assertRefused(await v.verify(t), 'bad-signature', t);
  });

  test('jwk, jku, x5u and x5c headers are never used: a self-signed token is refused and nothing is fetched from them', async () => {
    const { v, fetched } = setup();
    const atk = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const jwk = atk.publicKey.export({ format: 'jwk' });
    for (const header of [
      { alg: 'RS256', jwk },
      { alg: 'RS256', kid: 'rsa1', jwk },
      { alg: 'RS256', kid: 'rsa1', jku: 'http://127.0.0.1:1/jwks' },
      { alg: 'RS256', x5u: 'http://127.0.0.1:1/cert' },
      { alg: 'RS256', kid: 'rsa1', x5c: ['MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA'] },
    ]) {
      const t = raw(header, oidcClaims(), atk.privateKey);
      assertRefused(await v.verify(t), 'bad-signature', t);
    }
    assert.ok(fetched.every((u) => u.startsWith(`${A}/`)), `only the issuer's own documents are fetched: ${fetched.join(', ')}`);
  });

  test('a kid that is not a string (object, list, number, null, boolean) is refused as malformed, even over a valid signature', async () => {
    const { v } = setup();
    for (const kid of [{ a: 1 }, ['rsa1'], 1, null, true]) {
      const t = rs(oidcClaims(), { alg: 'RS256', kid });
      assertRefused(await v.verify(t), 'malformed', t, /kid header is (an object|a list|a number|null|a boolean), not a string/);
    }
  });

  test('hostile kid strings (path traversal, SQL, 5000 characters) are unknown kids, quoted bounded and printable', async () => {
    const { v } = setup();
    for (const kid of ['../../etc/passwd', '\' OR 1=1 --', 'k'.repeat(5000), 'a\u0000b\nc']) {
      const t = rs(oidcClaims(), { alg: 'RS256', kid });
      const r = await v.verify(t);
      assertRefused(r, 'unknown-kid', t);
      if (!r.ok) assert.ok(r.message.length < 400 && /^[\x20-\x7e]*$/.test(r.message), r.message);
    }
  });

  test('crit with an unknown extension, b64:false and a malformed crit are refused as malformed', async () => {
    const { v } = setup();
    for (const header of [
      { alg: 'RS256', kid: 'rsa1', crit: ['exp2'], exp2: 1 },
      { alg: 'RS256', kid: 'rsa1', crit: ['b64'], b64: false },
      { alg: 'RS256', kid: 'rsa1', crit: [] },
      { alg: 'RS256', kid: 'rsa1', crit: 'b64' },
    ]) {
      const t = rs(oidcClaims(), header);
      assertRefused(await v.verify(t), 'malformed', t);
    }
  });

  test('a nested JWT (cty: JWT) is not unwrapped: its payload is not a claims set', async () => {
    const { v } = setup();
    const inner = rs(oidcClaims());
    const input = `${b64({ alg: 'RS256', kid: 'rsa1', cty: 'JWT' })}.${Buffer.from(inner).toString('base64url')}`;
    const t = `${input}.${nodeSign('sha256', Buffer.from(input), keys.rsa).toString('base64url')}`;
    assertRefused(await v.verify(t), 'malformed', t);
  });
});

describe('hostile tokens: framing', () => {
  test('JWE, extra segments, padding, inner whitespace, non-base64url characters, Bearer prefix, JSON that is not an object: malformed', async () => {
    const { v } = setup();
    const good = rs(oidcClaims());
    const cases = [
      'a.b.c.d.e',
      `${good}.x`,
      good.split('.').slice(0, 2).join('.'),
      good.split('.').map((s) => `${s}=`).join('.'),
      good.replace('.', ' .'),
      `${good.slice(0, -1)}+`,
      `Bearer ${good}`,
      `${b64([1])}.${b64(oidcClaims())}.c2ln`,
      `${b64({ alg: 'RS256', kid: 'rsa1' })}.${b64([1])}.c2ln`,
      `${b64('{')}.${b64(oidcClaims())}.c2ln`,
    ];
    for (const t of cases) assertRefused(await v.verify(t), 'malformed', t);
  });

  test('header and claim values nested thousands deep (within the size limit) are refused by their check, not an internal error', async () => {
    const { v } = setup();
    const deep = (n: number): string => `${'['.repeat(n)}${']'.repeat(n)}`;
    const enc = (json: string): string => Buffer.from(json).toString('base64url');
    const cases: [string, string][] = [
      [`${b64({ alg: 'RS256', kid: 'rsa1' })}.${enc(`{"iss":${deep(5000)}}`)}.c2ln`, 'unknown-issuer'],
      [`${enc(`{"alg":${deep(5000)}}`)}.${b64(oidcClaims())}.c2ln`, 'alg-not-allowed'],
      [`${enc(`{"alg":"RS256","kid":${deep(5000)}}`)}.${b64(oidcClaims())}.c2ln`, 'malformed'],
    ];
    for (const [t, reason] of cases) assertRefused(await v.verify(t), reason, t);
  });

  test('a 1 MB token is refused by size before any decoding, with its size in the message', async () => {
    const { v } = setup();
    const t = 'a'.repeat(1 << 20);
    assertRefused(await v.verify(t), 'malformed', t, /1048576 bytes, more than the 16384 allowed/);
  });

  test('surrounding whitespace (a token file\'s newline) is trimmed; an empty or blank token is missing', async () => {
    const { v } = setup();
    assert.ok((await v.verify(`  ${rs(oidcClaims())}\n`)).ok);
    for (const t of ['', '   ', undefined, null]) {
      const r = await v.verify(t);
      assert.equal(r.ok ? 'ok' : r.reason, 'missing');
    }
  });
});

describe('hostile tokens: claims', () => {
  const cases: [string, Record<string, unknown>, string][] = [
    ['exp as a string', { exp: String(NOW + 600) }, 'claim-invalid'],
    ['exp null', { exp: null }, 'claim-invalid'],
    ['exp absent', { exp: undefined }, 'claim-invalid'],
    ['exp negative', { exp: -1 }, 'expired'],
    ['exp 1e308', { exp: 1e308 }, 'lifetime-too-long'],
    ['exp = now - skew - 1', { exp: NOW - 31, iat: NOW - 100 }, 'expired'],
    ['exp = now - skew', { exp: NOW - 30, iat: NOW - 100 }, 'expired'],
    ['iat absent', { iat: undefined }, 'claim-invalid'],
    ['iat as a string', { iat: String(NOW) }, 'claim-invalid'],
    ['iat negative', { iat: -1 }, 'lifetime-too-long'],
    ['iat beyond the skew in the future', { iat: NOW + 31, exp: NOW + 600 }, 'not-yet-valid'],
    ['nbf beyond the skew in the future', { nbf: NOW + 31 }, 'not-yet-valid'],
    ['nbf as a string', { nbf: 'soon' }, 'claim-invalid'],
    ['a lifetime over the maximum', { iat: NOW, exp: NOW + 3601 }, 'lifetime-too-long'],
    ['an old iat with a near exp', { iat: NOW - 5000, exp: NOW + 100 }, 'lifetime-too-long'],
    ['aud absent', { aud: undefined }, 'claim-invalid'],
    ['aud of the Kubernetes API', { aud: 'https://kubernetes.default.svc' }, 'wrong-audience'],
    ['aud in another case', { aud: 'Chaperone' }, 'wrong-audience'],
    ['aud an empty list', { aud: [] }, 'wrong-audience'],
    ['aud an object', { aud: { chaperone: true } }, 'wrong-audience'],
    ['aud a list with a non-string', { aud: ['chaperone', 1] }, 'claim-invalid'],
    ['iss with a trailing slash', { iss: `${A}/` }, 'unknown-issuer'],
    ['iss in another case', { iss: A.toUpperCase() }, 'unknown-issuer'],
    ['iss over http', { iss: A.replace('https:', 'http:') }, 'unknown-issuer'],
    ['iss absent', { iss: undefined }, 'unknown-issuer'],
    ['iss a list', { iss: [A] }, 'unknown-issuer'],
    ['sub absent', { sub: undefined }, 'claim-invalid'],
    ['sub empty', { sub: '' }, 'claim-invalid'],
    ['sub a number', { sub: 5 }, 'claim-invalid'],
    ['groups nested', { groups: [['agents']] }, 'claim-invalid'],
    ['groups with a non-string', { groups: ['agents', 1] }, 'claim-invalid'],
    ['groups an object', { groups: { agents: true } }, 'claim-invalid'],
    ['an OIDC sub naming a ServiceAccount', { sub: 'system:serviceaccount:team:coder' }, 'claim-invalid'],
    ['an OIDC sub naming a system user', { sub: 'system:kube-controller-manager' }, 'claim-invalid'],
  ];
  for (const [name, over, reason] of cases) {
    test(`given ${name}, refuses with ${reason}`, async () => {
      const { v } = setup();
      const claims = oidcClaims(over);
      for (const k of Object.keys(claims)) if (claims[k] === undefined) delete claims[k];
      const t = rs(claims);
      assertRefused(await v.verify(t), reason, t);
    });
  }

  test('accepted edges: exp inside the skew, aud listing chaperone among others, a float exp, a lifetime of exactly the maximum', async () => {
    const { v } = setup();
    for (const over of [{ exp: NOW - 29, iat: NOW - 100 }, { aud: ['other', 'chaperone'] }, { exp: NOW + 600.5 }, { iat: NOW, exp: NOW + 3600 }]) {
      const r = await v.verify(rs(oidcClaims(over)));
      assert.ok(r.ok, `${JSON.stringify(over)}: ${JSON.stringify(r)}`);
    }
  });

  test('an OIDC username under a usernamePrefix is not a system: name, so it is accepted', async () => {
    const { v } = setup({ issuers: [{ issuer: A, usernamePrefix: 'idp:' }] });
    const r = await v.verify(rs(oidcClaims({ sub: 'system:serviceaccount:team:coder' })));
    assert.ok(r.ok && r.principal.username === 'idp:system:serviceaccount:team:coder', JSON.stringify(r));
  });

  test('required groups match exactly: another case or a trailing space is missing-group', async () => {
    const { v } = setup({ issuers: [{ issuer: A, requiredGroups: ['agents'] }] });
    for (const groups of [['Agents'], ['agents '], [], 'AGENTS']) {
      const t = rs(oidcClaims({ groups }));
      assertRefused(await v.verify(t), 'missing-group', t);
    }
    assert.ok((await v.verify(rs(oidcClaims({ groups: 'agents' })))).ok);
  });
});

describe('hostile tokens: several issuers', () => {
  test('a token claiming issuer B under A\'s kid, or B\'s kid signed by A\'s key, is refused', async () => {
    const { v } = setup();
    const t1 = rs(oidcClaims({ iss: B }));
    assertRefused(await v.verify(t1), 'unknown-kid', t1);
    const t2 = rs(oidcClaims({ iss: B }), { alg: 'RS256', kid: 'rsaB' });
    assertRefused(await v.verify(t2), 'bad-signature', t2);
    assert.ok((await v.verify(raw({ alg: 'RS256', kid: 'rsaB' }, oidcClaims({ iss: B }), keys.rsaB))).ok);
  });
});

describe('hostile tokens: ServiceAccount tokens', () => {
  const sa = { namespace: 'team', serviceaccount: { name: 'coder', uid: 'sa-uid' } };
  const cases: [string, Record<string, unknown>, unknown, string][] = [
    ['bound to another pod', {}, { ...sa, pod: { name: 'other', uid: 'other-uid' } }, 'wrong-pod'],
    ['bound to this pod\'s name with another uid', {}, { ...sa, pod: { name: SELF.name, uid: 'old-uid' } }, 'wrong-pod'],
    ['bound to a secret, not a pod', {}, { ...sa, secret: { name: 's', uid: 'u' } }, 'wrong-pod'],
    ['not bound at all', {}, sa, 'wrong-pod'],
    ['of another namespace', { sub: 'system:serviceaccount:other:coder' }, { ...sa, namespace: 'other', pod: { name: SELF.name, uid: SELF.uid } }, 'wrong-pod'],
    ['with a null pod claim', {}, { ...sa, pod: null }, 'claim-invalid'],
    ['with a string pod claim', {}, { ...sa, pod: 'agent-pod' }, 'claim-invalid'],
    ['with a list pod claim', {}, { ...sa, pod: [SELF.name, SELF.uid] }, 'claim-invalid'],
    ['with a null serviceaccount claim', {}, { namespace: 'team', serviceaccount: null, pod: { name: SELF.name, uid: SELF.uid } }, 'claim-invalid'],
    ['with a kubernetes.io list', {}, [sa], 'claim-invalid'],
    ['whose sub disagrees with its kubernetes.io claim', { sub: 'system:serviceaccount:team:admin' }, undefined, 'claim-invalid'],
    ['for the Kubernetes API audience', { aud: ['https://kubernetes.default.svc'] }, undefined, 'wrong-audience'],
    ['without exp (a legacy Secret-based token)', { exp: undefined }, undefined, 'claim-invalid'],
    ['valid for a year (an extended kube-api-access token)', { exp: NOW + 365 * 86400 }, undefined, 'lifetime-too-long'],
  ];
  for (const [name, over, kio, reason] of cases) {
    test(`given a token ${name}, refuses with ${reason}`, async () => {
      const { v } = setup();
      const claims = saClaims(over, kio);
      for (const k of Object.keys(claims)) if (claims[k] === undefined) delete claims[k];
      const t = rs(claims);
      assertRefused(await v.verify(t), reason, t);
    });
  }

  test('a legacy token (iss kubernetes/serviceaccount, no exp) is from no accepted issuer', async () => {
    const { v } = setup();
    const t = rs({ iss: 'kubernetes/serviceaccount', sub: 'system:serviceaccount:team:coder', 'kubernetes.io/serviceaccount/namespace': 'team' });
    assertRefused(await v.verify(t), 'unknown-issuer', t);
  });
});

describe('hostile key sets', () => {
  const weak = (): { priv: KeyObject; jwk: JWK } => {
    const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 1024 });
    return { priv: privateKey, jwk: { ...(publicKey.export({ format: 'jwk' }) as JWK), kid: 'rsa1' } };
  };

  test('a JWKS member that is not an object does not make the other keys unusable', async () => {
    const { v } = setup({ docs: { [`${A}/jwks`]: { keys: [[1], 'x', null, keys.jwksA.keys[0]] } }, issuers: [{ issuer: A }] });
    const r = await v.verify(rs(oidcClaims()));
    assert.ok(r.ok, JSON.stringify(r));
  });

  test('a published RSA key under 2048 bits is refused as unusable keys (jwks-unavailable), not an internal error', async () => {
    const w = weak();
    const { v } = setup({ docs: { [`${A}/jwks`]: { keys: [w.jwk] } }, issuers: [{ issuer: A }] });
    const t = raw({ alg: 'RS256', kid: 'rsa1' }, oidcClaims(), w.priv);
    assertRefused(await v.verify(t), 'jwks-unavailable', t, /cannot be used/);
  });

  test('symmetric, private, encryption-only and other-alg members are not used', async () => {
    const pub = keys.jwksA.keys[0]!;
    const cases: [unknown, string][] = [
      [{ keys: [{ kty: 'oct', k: b64(keys.rsaPem), kid: 'rsa1' }] }, 'jwks-unavailable'],
      [{ keys: [{ ...pub, d: 'AQAB' }] }, 'jwks-unavailable'],
      [{ keys: [{ ...pub, use: 'enc' }] }, 'unknown-kid'],
      [{ keys: [{ ...pub, alg: 'RS512' }] }, 'unknown-kid'],
      [{ keys: [{ ...pub, key_ops: ['sign'] }] }, 'unknown-kid'],
    ];
    for (const [jwks, reason] of cases) {
      const { v } = setup({ docs: { [`${A}/jwks`]: jwks }, issuers: [{ issuer: A }] });
      const t = rs(oidcClaims());
      assertRefused(await v.verify(t), reason, t);
    }
  });

  test('a discovery document naming another issuer, or an http jwks_uri for an https issuer, is refused', async () => {
    for (const doc of [{ issuer: 'https://evil.example', jwks_uri: `${A}/jwks` }, { issuer: `${A}/`, jwks_uri: `${A}/jwks` }, { issuer: A, jwks_uri: 'http://a.example/jwks' }, { issuer: A, jwks_uri: 'file:///etc/passwd' }]) {
      const { v } = setup({ docs: { [`${A}/.well-known/openid-configuration`]: doc, 'http://a.example/jwks': keys.jwksA }, issuers: [{ issuer: A }] });
      const t = rs(oidcClaims());
      assertRefused(await v.verify(t), 'jwks-unavailable', t);
    }
  });
});

describe('no crash, no token in a message', () => {
  test('a loader or library that throws a non-Error value refuses the token instead of throwing', async () => {
    const real = await loadJose();
    // eslint-disable-next-line @typescript-eslint/only-throw-error -- the point: something throws a non-Error
    const throwsUndefined = (): never => { throw undefined; };
    // eslint-disable-next-line @typescript-eslint/prefer-promise-reject-errors -- the point: a rejection that is not an Error
    const rejectsUndefined = (): Promise<JoseLib> => Promise.reject(undefined);
    for (const loader of [rejectsUndefined, () => Promise.resolve({ ...real, jwtVerify: throwsUndefined } as unknown as JoseLib)]) {
      const { v } = setup({ loadJose: loader, issuers: [{ issuer: A }] });
      const r = await v.verify(rs(oidcClaims()));
      assert.equal(r.ok, false);
      if (!r.ok) assert.ok(r.reason === 'jwks-unavailable' || r.reason === 'internal', r.reason);
    }
  });

  test('a library message that echoes the token, or a kid that is a part of it, is scrubbed from the refusal', async () => {
    const real = await loadJose();
    const t = rs(oidcClaims());
    const echo = { ...real, decodeProtectedHeader: (tok: string): never => { throw new Error(`cannot read ${tok}`); } } as unknown as JoseLib;
    const { v } = setup({ loadJose: () => Promise.resolve(echo), issuers: [{ issuer: A }] });
    assertRefused(await v.verify(t), 'malformed', t, /cannot read <token>/);

    // A short payload whose base64url is used as the kid: the unknown-kid message would otherwise quote it.
    const payload = { iss: A, sub: 'x' };
    const kid = b64(payload);
    const t2 = raw({ alg: 'RS256', kid }, payload, keys.rsa);
    const { v: v2 } = setup({ issuers: [{ issuer: A }] });
    assertRefused(await v2.verify(t2), 'unknown-kid', t2, /<token>/);
  });
});

describe('options that would switch a bound off', () => {
  test('usernamePrefix or groupsPrefix starting with system: is refused at configuration', () => {
    for (const o of [{ usernamePrefix: 'system:' }, { groupsPrefix: 'system:serviceaccounts:' }]) {
      assert.throws(() => createTokenVerifier({ issuers: [{ issuer: A, audiences: ['chaperone'], ...o }] }), IdentityOptionsError);
    }
  });

  test('NaN or negative verifiedCacheSize/verifiedCacheSeconds/maxTokenBytes are refused at configuration', () => {
    for (const o of [{ verifiedCacheSize: Number.NaN }, { verifiedCacheSeconds: Number.NaN }, { verifiedCacheSeconds: -1 }, { maxTokenBytes: Number.NaN }, { maxTokenBytes: 0 }]) {
      assert.throws(() => createTokenVerifier({ issuers: [{ issuer: A, audiences: ['chaperone'] }], ...o }), IdentityOptionsError, JSON.stringify(o));
    }
  });

  test('a verified-cache entry with a NaN window is a miss, never a hit forever', () => {
    const c = new VerifiedCache<string>(10, Number.NaN);
    c.set('t', 'p', 1e15, 0);
    assert.equal(c.get('t', 1), undefined);
  });
});
