// The verifier with jose loaded lazily: a failed load refuses the token as unverifiable (28000), a later token retries the load.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { errorCodeFor } from './reasons.ts';
import { ERRORS } from '../core/errors.ts';
import { createTokenVerifier } from './verify-token.ts';
import { loadJose, type JoseLib } from './jose-lib.ts';

const ISSUERS = [{ issuer: 'https://idp.example.test', audiences: ['chaperone'] }];
const TOKEN = 'eyJhbGciOiJSUzI1NiJ9.eyJpc3MiOiJodHRwczovL2lkcC5leGFtcGxlLnRlc3QifQ.c2ln';

describe('verifier: jose loads on the first token', () => {
  test('a failed load refuses the token with a 28000 error naming the library, and is retried next time', async () => {
    let calls = 0;
    const failing = (): Promise<JoseLib> => {
      calls++;
      return Promise.reject(new Error('the JWT library (jose) could not be loaded: synthetic failure'));
    };
    const v = createTokenVerifier({ issuers: ISSUERS, verifiedCacheSize: 0 }, { fetcher: () => Promise.reject(new Error('no network in this test')), loadJose: failing });
    for (let i = 0; i < 2; i++) {
      const r = await v.verify(TOKEN);
      assert.equal(r.ok, false);
      if (r.ok) return;
      assert.equal(r.reason, 'jwks-unavailable');
      assert.match(r.message, /JWT library \(jose\) could not be loaded: synthetic failure; the token cannot be checked, so it is refused/);
      assert.ok(!r.message.includes(TOKEN), 'the token is never quoted');
      assert.equal(ERRORS[errorCodeFor(r.reason)].sqlState, '28000');
    }
    assert.equal(calls, 2);
  });

  test('the real loader gives the functions the verifier uses, once', async () => {
    const a = await loadJose();
    const b = await loadJose();
    assert.equal(a, b);
    for (const f of [a.decodeJwt, a.decodeProtectedHeader, a.jwtVerify, a.createLocalJWKSet]) assert.equal(typeof f, 'function');
    assert.equal(typeof a.errors.JWTExpired, 'function');
  });
});
