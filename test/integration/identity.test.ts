// The token verifier against a real IdP (oidc-provider on loopback): good tokens pass, every hostile token is refused with its reason.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SignJWT, decodeJwt, decodeProtectedHeader, exportSPKI, generateKeyPair, importJWK, type JWTPayload } from 'jose';
import { createTokenVerifier, type TokenVerifier, type VerifyResult } from '../../sidecar/identity/verify-token.ts';
import { IdentityOptionsError, type IssuerOptions } from '../../sidecar/identity/options.ts';
import { mayUseConnection } from '../../sidecar/identity/authorize.ts';
import { AUDIENCE, RESOURCES, startOidcProvider, type SigningKey, type TestIdp } from '../helpers/oidc-provider.ts';
import { createCa } from '../env/pki.ts';

/** A fake clock shared by a verifier: tests move time instead of sleeping. */
function clock(start = Date.now()): { now: () => number; advance: (s: number) => void; set: (ms: number) => void } {
  let t = start;
  return { now: () => t, advance: (s) => void (t += s * 1000), set: (ms) => void (t = ms) };
}

function verifierFor(idp: TestIdp, extra: Partial<IssuerOptions> = {}, now: () => number = Date.now): TokenVerifier {
  return createTokenVerifier({ issuers: [{ issuer: idp.issuer, audiences: [AUDIENCE], actingForClaim: 'act_for', ...extra }], now });
}

function b64(obj: unknown): string {
  return Buffer.from(JSON.stringify(obj)).toString('base64url');
}

/** A refusal with the expected reason whose message never contains the token or its signature. */
function assertRefused(r: VerifyResult, reason: string, token?: string): void {
  assert.equal(r.ok, false, `expected a refusal (${reason}), got a principal`);
  if (r.ok) return;
  assert.equal(r.reason, reason, `reason: ${r.message}`);
  assert.ok(r.message.length > 10, 'the message says which check failed');
  if (token !== undefined && token.length > 20) {
    assert.ok(!r.message.includes(token), 'the message echoes the token');
    const sig = token.split('.')[2] ?? '';
    if (sig.length > 10) assert.ok(!r.message.includes(sig), 'the message echoes the signature');
    const payload = token.split('.')[1] ?? '';
    if (payload.length > 10) assert.ok(!r.message.includes(payload), 'the message echoes the payload');
  }
}

/** Sign claims with one of the IdP's real private keys (or any JWK), as the IdP would. */
async function forge(key: SigningKey, claims: JWTPayload, header: Record<string, unknown> = {}): Promise<string> {
  return new SignJWT(claims).setProtectedHeader({ alg: key.alg, kid: key.kid, ...header }).sign(await importJWK(key.privateJwk, key.alg));
}

function baseClaims(idp: TestIdp, over: JWTPayload = {}): JWTPayload {
  const now = Math.floor(Date.now() / 1000);
  return { iss: idp.issuer, sub: 'agent-reader', aud: AUDIENCE, iat: now, exp: now + 300, groups: ['agents'], ...over };
}

describe('identity: token verification against a real OIDC provider', () => {
  let idp: TestIdp;
  let verifier: TokenVerifier;
  let rsKey: SigningKey;

  before(async () => {
    idp = await startOidcProvider();
    rsKey = idp.keys.find((k) => k.alg === 'RS256')!;
    verifier = verifierFor(idp);
  });
  after(async () => {
    await idp.close();
  });

  test('requiredGroups: a real token without the issuer\'s required group is refused (missing-group), with it accepted', async () => {
    const v = verifierFor(idp, { requiredGroups: ['db-readers'] });
    const writer = await idp.token('agent-writer');
    const refused = await v.verify(writer);
    assertRefused(refused, 'missing-group', writer);
    if (!refused.ok) {
      assert.ok(refused.message.includes(idp.issuer), refused.message);
      assert.ok(refused.message.includes('"db-readers"'), refused.message);
    }
    const reader = await v.verify(await idp.token('agent-reader'));
    assert.ok(reader.ok, reader.ok ? '' : reader.message);
    assertRefused(await v.verify(await idp.token('agent-nogroups')), 'missing-group');
  });

  test('a client-credentials RS256 token from the IdP yields its principal with groups and actingFor', async () => {
    const token = await idp.token('agent-reader');
    const r = await verifier.verify(token);
    assert.ok(r.ok, r.ok ? '' : r.message);
    assert.equal(r.principal.issuer, idp.issuer);
    assert.equal(r.principal.subject, 'agent-reader');
    assert.equal(r.principal.username, 'agent-reader');
    assert.deepEqual(r.principal.groups, ['agents', 'db-readers']);
    assert.equal(r.principal.actingFor, 'alice@example.com');
    assert.equal(r.principal.expiresAt, (decodeJwt(token).exp ?? 0) * 1000);
    assert.equal(r.principal.serviceAccount, undefined);
    assert.ok(mayUseConnection(r.principal, { name: 'orders-db', allowedGroups: ['db-readers'] }).ok);
    assert.equal(mayUseConnection(r.principal, { name: 'admin-db', allowedGroups: ['db-admins'] }).ok, false);
  });

  test('an ES256 token from the IdP verifies too (discovery advertised both keys)', async () => {
    const token = await idp.token('agent-writer', RESOURCES.es256);
    assert.equal(decodeProtectedHeader(token).alg, 'ES256');
    const r = await verifier.verify(token);
    assert.ok(r.ok, r.ok ? '' : r.message);
    assert.deepEqual(r.principal.groups, ['agents', 'db-writers']);
  });

  test('no token is refused as missing', async () => {
    for (const t of [undefined, null, '', '   ']) assertRefused(await verifier.verify(t), 'missing');
  });

  test('garbage is refused as malformed', async () => {
    for (const t of ['not-a-jwt', 'a.b.c', `${b64({ alg: 'RS256' })}.bm90IGpzb24.c2ln`, 'Bearer abc.def.ghi', 'a.b.c.d.e', 'x'.repeat(20_000)]) {
      assertRefused(await verifier.verify(t), 'malformed', t);
    }
  });

  test('a critical header extension the verifier does not understand is refused as malformed', async () => {
    const t = await new SignJWT(baseClaims(idp))
      .setProtectedHeader({ alg: 'RS256', kid: rsKey.kid, crit: ['exp-ext'], 'exp-ext': true })
      .sign(await importJWK(rsKey.privateJwk, 'RS256'), { crit: { 'exp-ext': true } });
    assertRefused(await verifier.verify(t), 'malformed', t);
  });

  test('an expired IdP token is refused as expired', async () => {
    const token = await idp.token('agent-reader');
    const c = clock((decodeJwt(token).exp! + 31) * 1000); // just past the 30 s skew
    assertRefused(await verifierFor(idp, {}, c.now).verify(token), 'expired', token);
    const inSkew = clock((decodeJwt(token).exp! + 20) * 1000);
    assert.ok((await verifierFor(idp, {}, inSkew.now).verify(token)).ok, 'within the clock skew it is still accepted');
  });

  test('a token not valid yet is refused as not-yet-valid (future nbf, and future iat)', async () => {
    const now = Math.floor(Date.now() / 1000);
    const nbf = await forge(rsKey, baseClaims(idp, { nbf: now + 120 }));
    assertRefused(await verifier.verify(nbf), 'not-yet-valid', nbf);
    const token = await idp.token('agent-reader');
    const early = clock((decodeJwt(token).iat! - 120) * 1000);
    assertRefused(await verifierFor(idp, {}, early.now).verify(token), 'not-yet-valid', token);
  });

  test('a token for another audience is refused as wrong-audience', async () => {
    const token = await idp.token('agent-reader', RESOURCES.other);
    assert.equal(decodeJwt(token).aud, 'other-service');
    assertRefused(await verifier.verify(token), 'wrong-audience', token);
  });

  test('a token from another issuer is refused as unknown-issuer (forged iss, and a real second IdP)', async () => {
    const forged = await forge(rsKey, baseClaims(idp, { iss: 'https://evil.example' }));
    assertRefused(await verifier.verify(forged), 'unknown-issuer', forged);
    const other = await startOidcProvider();
    try {
      const t = await other.token('agent-reader');
      assertRefused(await verifier.verify(t), 'unknown-issuer', t);
    } finally {
      await other.close();
    }
  });

  test('alg none is refused as alg-not-allowed', async () => {
    const token = await idp.token('agent-reader');
    const payload = token.split('.')[1]!;
    for (const alg of ['none', 'None', 'NONE']) {
      const t = `${b64({ alg, typ: 'JWT', kid: rsKey.kid })}.${payload}.`;
      assertRefused(await verifier.verify(t), 'alg-not-allowed', t);
    }
  });

  test('HS256 signed with the RSA public key as the HMAC secret is refused (key-confusion attack)', async () => {
    const pub = await importJWK(rsKey.publicJwk, 'RS256');
    const pem = await exportSPKI(pub as Parameters<typeof exportSPKI>[0]);
    for (const secret of [Buffer.from(pem), Buffer.from(JSON.stringify(rsKey.publicJwk)), Buffer.from(rsKey.publicJwk.n!, 'base64url')]) {
      const t = await new SignJWT(baseClaims(idp)).setProtectedHeader({ alg: 'HS256', kid: rsKey.kid }).sign(secret);
      assertRefused(await verifier.verify(t), 'alg-not-allowed', t);
    }
    assert.throws(() => createTokenVerifier({ issuers: [{ issuer: idp.issuer, audiences: [AUDIENCE], algorithms: ['RS256', 'HS256'] }] }), IdentityOptionsError);
    assert.throws(() => createTokenVerifier({ issuers: [{ issuer: idp.issuer, audiences: [AUDIENCE], algorithms: ['none'] }] }), IdentityOptionsError);
  });

  test('a token signed by another key under an existing kid is refused as bad-signature', async () => {
    const { privateKey } = await generateKeyPair('RS256');
    const t = await new SignJWT(baseClaims(idp)).setProtectedHeader({ alg: 'RS256', kid: rsKey.kid }).sign(privateKey);
    assertRefused(await verifier.verify(t), 'bad-signature', t);
  });

  test('a tampered payload (groups widened) is refused as bad-signature', async () => {
    const token = await idp.token('agent-reader');
    const [h, p, s] = token.split('.') as [string, string, string];
    const claims = JSON.parse(Buffer.from(p, 'base64url').toString()) as JWTPayload;
    const t = `${h}.${b64({ ...claims, groups: ['db-admins'] })}.${s}`;
    assertRefused(await verifier.verify(t), 'bad-signature', t);
  });

  test('a lifetime longer than the maximum is refused as lifetime-too-long', async () => {
    const token = await idp.token('agent-reader', RESOURCES.long);
    assertRefused(await verifier.verify(token), 'lifetime-too-long', token);
    assert.ok((await verifierFor(idp, { maxLifetimeSeconds: 3 * 3600 }).verify(token)).ok, 'a configured longer maximum accepts it');
  });

  test('a token from a different IdP with the same iss string but its own key is refused', async () => {
    const impostor = await startOidcProvider({ issuer: idp.issuer });
    try {
      const t = await impostor.token('agent-reader');
      assert.equal(decodeJwt(t).iss, idp.issuer);
      assertRefused(await verifier.verify(t), 'unknown-kid', t);
      // Same kid as the real IdP, the impostor's key: the signature decides.
      const k = impostor.keys.find((x) => x.alg === 'RS256')!;
      const sameKid = await forge({ ...k, kid: rsKey.kid }, baseClaims(idp));
      assertRefused(await verifier.verify(sameKid), 'bad-signature', sameKid);
    } finally {
      await impostor.close();
    }
  });

  test('unknown kids: refused, and a flood of 200 causes a bounded number of JWKS fetches', async () => {
    const c = clock();
    const v = verifierFor(idp, { jwksMinRefetchSeconds: 10 }, c.now);
    assert.ok((await v.verify(await idp.token('agent-reader'))).ok);
    const { privateKey } = await generateKeyPair('RS256');
    const forgeKid = (kid: string): Promise<string> => new SignJWT(baseClaims(idp)).setProtectedHeader({ alg: 'RS256', kid }).sign(privateKey);
    const before = idp.requests.get('/jwks') ?? 0;
    const tokens = await Promise.all(Array.from({ length: 200 }, (_, i) => forgeKid(`random-${i}-${Math.random()}`)));
    // Half at once (concurrent callers share one fetch), half one by one.
    const first = await Promise.all(tokens.slice(0, 100).map((t) => v.verify(t)));
    for (const r of first) assertRefused(r, 'unknown-kid');
    for (const t of tokens.slice(100)) assertRefused(await v.verify(t), 'unknown-kid', t);
    const during = (idp.requests.get('/jwks') ?? 0) - before;
    assert.ok(during <= 1, `200 unknown kids in one window caused ${during} JWKS fetches (max 1)`);
    c.advance(11);
    for (const t of tokens.slice(0, 50)) assertRefused(await v.verify(t), 'unknown-kid', t);
    const total = (idp.requests.get('/jwks') ?? 0) - before;
    assert.ok(total <= 2, `after one more window: ${total} JWKS fetches (max 2)`);
    const stats = v.stats()[idp.issuer]!;
    assert.ok(stats.suppressed > 0 && stats.misses >= 250, JSON.stringify(stats));
  });

  test('a remembered verification never outlives the token: the same verifier refuses it once expired', async () => {
    const token = await idp.token('agent-reader');
    const c = clock();
    const v = verifierFor(idp, {}, c.now);
    assert.ok((await v.verify(token)).ok);
    assert.ok((await v.verify(token)).ok);
    assert.equal(v.cacheStats().hits, 1);
    c.set((decodeJwt(token).exp! + 31) * 1000);
    assertRefused(await v.verify(token), 'expired', token);
  });

  test('unsigned-header tricks: jku/x5u/jwk in the header are ignored (keys come from the issuer only)', async () => {
    const { privateKey, publicKey } = await generateKeyPair('RS256', { extractable: true });
    const { exportJWK } = await import('jose');
    const jwk = await exportJWK(publicKey);
    const t = await new SignJWT(baseClaims(idp)).setProtectedHeader({ alg: 'RS256', kid: 'attacker', jwk, jku: 'http://127.0.0.1:1/jwks' }).sign(privateKey);
    assertRefused(await verifier.verify(t), 'unknown-kid', t);
  });
});

describe('identity: key rotation and IdP outages', () => {
  test('an IdP restart with rotated keys: the new kid is picked up after the refetch window', async () => {
    let idp = await startOidcProvider();
    try {
      const c = clock();
      const v = verifierFor(idp, { jwksMinRefetchSeconds: 10 }, c.now);
      assert.ok((await v.verify(await idp.token('agent-reader'))).ok);
      const oldKid = idp.keys[0]!.kid;
      idp = await idp.restart({ rotate: true });
      assert.notEqual(idp.keys[0]!.kid, oldKid);
      const fresh = await idp.token('agent-reader');
      // Within the rate-limit window of the first fetch, the new kid is not fetched yet: fail closed.
      assertRefused(await v.verify(fresh), 'unknown-kid', fresh);
      c.advance(11);
      const r = await v.verify(fresh);
      assert.ok(r.ok, r.ok ? '' : r.message);
      assert.equal(idp.requests.get('/jwks'), 1, 'the restarted IdP served exactly one JWKS fetch');
    } finally {
      await idp.close();
    }
  });

  test('IdP unreachable: cached keys keep working until the TTL, then every token is refused (jwks-unavailable)', async () => {
    const idp = await startOidcProvider();
    const c = clock();
    const v = verifierFor(idp, { jwksCacheTtlSeconds: 120, jwksMinRefetchSeconds: 5, fetchTimeoutMs: 2000 }, c.now);
    const token = await idp.token('agent-reader');
    await v.warmUp();
    await idp.close();
    assert.ok((await v.verify(token)).ok, 'fresh cache, IdP down: still verifies');
    c.advance(90); // past half the TTL: a background refresh fails, the cached keys stay
    assert.ok((await v.verify(token)).ok, 'stale-but-within-TTL keys still verify');
    await new Promise((r) => setTimeout(r, 50)); // let the failed background refresh settle
    c.advance(40); // past the TTL
    assertRefused(await v.verify(token), 'jwks-unavailable', token);
    const stats = v.stats()[idp.issuer]!;
    assert.ok(stats.fetchFailures >= 1, JSON.stringify(stats));
  });

  test('an issuer that drips its discovery document byte by byte fails closed within fetchTimeoutMs', async () => {
    const { createServer } = await import('node:http');
    const timers = new Set<NodeJS.Timeout>();
    const srv = createServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      const t = setInterval(() => res.write(' '), 50);
      timers.add(t);
      res.on('close', () => clearInterval(t));
    });
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
    const port = (srv.address() as { port: number }).port;
    try {
      const iss = `http://127.0.0.1:${port}`;
      const v = createTokenVerifier({ issuers: [{ issuer: iss, audiences: [AUDIENCE], fetchTimeoutMs: 400 }] });
      const { privateKey } = await generateKeyPair('ES256');
      const now = Math.floor(Date.now() / 1000);
      const t = await new SignJWT({ iss, sub: 'x', aud: AUDIENCE, iat: now, exp: now + 60 }).setProtectedHeader({ alg: 'ES256', kid: 'k' }).sign(privateKey);
      const r = await v.verify(t);
      assertRefused(r, 'jwks-unavailable', t);
      assert.match((r as { message: string }).message, /no complete answer within 400 ms/);
    } finally {
      for (const t of timers) clearInterval(t);
      srv.closeAllConnections();
      await new Promise<void>((r) => srv.close(() => r()));
    }
  });

  test('an issuer that was never reachable fails closed', async () => {
    const v = createTokenVerifier({ issuers: [{ issuer: 'http://127.0.0.1:1', audiences: [AUDIENCE], fetchTimeoutMs: 1000 }] });
    const { privateKey } = await generateKeyPair('ES256');
    const now = Math.floor(Date.now() / 1000);
    const t = await new SignJWT({ iss: 'http://127.0.0.1:1', sub: 'x', aud: AUDIENCE, iat: now, exp: now + 60 }).setProtectedHeader({ alg: 'ES256', kid: 'k' }).sign(privateKey);
    const r = await v.verify(t);
    assertRefused(r, 'jwks-unavailable', t);
    assert.match((r as { message: string }).message, /127\.0\.0\.1:1/);
  });
});

describe('identity: TLS to the issuer with a CA file', () => {
  let dir: string;
  let idp: TestIdp;
  let caFile: string;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'chap-idp-tls-'));
    const ca = await createCa(dir);
    const leaf = await ca.issue({ name: 'idp', commonName: '127.0.0.1', ips: ['127.0.0.1'], dnsNames: ['localhost'], usage: 'server' });
    caFile = ca.certFile;
    idp = await startOidcProvider({ tls: { cert: leaf.certPem, key: leaf.keyPem, ca: ca.certPem } });
  });
  after(async () => {
    await idp.close();
    await rm(dir, { recursive: true, force: true });
  });

  test('discovery and JWKS over https verify with the CA file', async () => {
    assert.match(idp.issuer, /^https:/);
    const token = await idp.token('agent-reader');
    const r = await verifierFor(idp, { caFile }).verify(token);
    assert.ok(r.ok, r.ok ? '' : r.message);
  });

  test('without the CA the issuer is not trusted: jwks-unavailable', async () => {
    const token = await idp.token('agent-reader');
    const r = await verifierFor(idp, { fetchTimeoutMs: 2000 }).verify(token);
    assertRefused(r, 'jwks-unavailable', token);
  });
});
