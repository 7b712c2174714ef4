// µs per token verification with a warm JWKS cache (RS256 vs ES256, and the refusal paths), against a real oidc-provider; bounded in count and time.
import { performance } from 'node:perf_hooks';
import { loadavg } from 'node:os';
import { SignJWT, generateKeyPair } from 'jose';
import { createTokenVerifier, type TokenVerifier } from '../sidecar/identity/verify-token.ts';
import { AUDIENCE, RESOURCES, startOidcProvider } from '../test/helpers/oidc-provider.ts';
import { round3, writeResult } from './lib/results.ts';

const ITERATIONS = 2000;
const ROUNDS = 3;
/** Stop a case early if a round takes longer than this (a slow machine still finishes). */
const ROUND_BUDGET_MS = 3000;

async function timeRound(v: TokenVerifier, token: string, expectOk: boolean): Promise<number> {
  await v.verify(token); // warm: keys imported, cache filled
  const started = performance.now();
  let n = 0;
  for (; n < ITERATIONS; n++) {
    const r = await v.verify(token);
    if (r.ok !== expectOk) throw new Error(`bench: unexpected verify result ${JSON.stringify(r)}`);
    if ((n & 63) === 0 && performance.now() - started > ROUND_BUDGET_MS) break;
  }
  return ((performance.now() - started) * 1000) / Math.max(n, 1);
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

const loadBefore = loadavg()[0] ?? 0;
const idp = await startOidcProvider();
try {
  // Uncached: every call checks the signature (what a PostgreSQL session start pays). Cached: the HTTP per-request path.
  const v = createTokenVerifier({ issuers: [{ issuer: idp.issuer, audiences: [AUDIENCE] }], verifiedCacheSize: 0 });
  const cached = createTokenVerifier({ issuers: [{ issuer: idp.issuer, audiences: [AUDIENCE] }] });
  const rs = await idp.token('agent-reader', RESOURCES.rs256);
  const es = await idp.token('agent-reader', RESOURCES.es256);
  const { privateKey } = await generateKeyPair('ES256');
  const now = Math.floor(Date.now() / 1000);
  const unknownKid = await new SignJWT({ iss: idp.issuer, sub: 'x', aud: AUDIENCE, iat: now, exp: now + 300 }).setProtectedHeader({ alg: 'ES256', kid: 'nope' }).sign(privateKey);
  const algNone = `${Buffer.from('{"alg":"none"}').toString('base64url')}.${rs.split('.')[1]!}.`;

  const coldStart = performance.now();
  const first = await v.verify(rs);
  const coldMs = performance.now() - coldStart;
  if (!first.ok) throw new Error(`bench: the IdP token did not verify: ${first.message}`);

  const cases: [string, TokenVerifier, string, boolean][] = [
    ['RS256', v, rs, true],
    ['ES256', v, es, true],
    ['RS256-cached', cached, rs, true],
    ['refused-unknown-kid', v, unknownKid, false],
    ['refused-alg-none', v, algNone, false],
  ];
  const samples = new Map<string, number[]>(cases.map(([n]) => [n, []]));
  for (let round = 0; round < ROUNDS; round++) {
    for (const [name, verifier, token, ok] of cases) samples.get(name)!.push(await timeRound(verifier, token, ok)); // interleaved
  }
  const us = (name: string): number => round3(median(samples.get(name)!));
  const jwksFetches = idp.requests.get('/jwks') ?? 0; // one per verifier: the flood of unknown kids fetched nothing more
  const results = [
    ...cases.map(([name]) => ({ config: name, metric: 'verify', value: us(name), unit: 'µs/op' })),
    { config: 'RS256', metric: 'first-verify-with-discovery', value: round3(coldMs * 1000), unit: 'µs' },
    { config: 'all', metric: 'jwks-fetches', value: jwksFetches, unit: 'requests' },
    { config: 'RS256-cached', metric: 'cache-hits', value: cached.cacheStats().hits, unit: 'hits' },
  ];
  const path = writeResult({
    name: 'identity',
    command: 'node --import tsx bench/identity-verify.ts',
    params: { iterations: ITERATIONS, rounds: ROUNDS, roundBudgetMs: ROUND_BUDGET_MS, statistic: 'median of rounds', keySizes: 'RSA 2048, P-256', jwksCache: 'warm', loadAvg1mBefore: round3(loadBefore), loadAvg1mAfter: round3(loadavg()[0] ?? 0) },
    results,
    ratios: { 'RS256/ES256': round3(us('RS256') / us('ES256')), 'RS256-cached/RS256': round3(us('RS256-cached') / us('RS256')) },
  });
  for (const r of results) console.log(`${r.config.padEnd(22)} ${r.metric.padEnd(28)} ${r.value} ${r.unit}`);
  console.log(`wrote ${path}`);
} finally {
  await idp.close();
}
