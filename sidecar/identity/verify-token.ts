// Verifies an agent's short-lived JWT against the accepted issuers and returns its Principal; every failure is a refusal with a reason.
// jose loads on the first token to check (jose-lib.ts), not at start.
import type { CryptoKey, JWTPayload, JWSHeaderParameters } from 'jose';
import { loadJose, type JoseLib } from './jose-lib.ts';
import { JwksCache, type Fetcher, type JwksStats } from './jwks-cache.ts';
import { VerifiedCache, type VerifiedCacheStats } from './verified-cache.ts';
import { checkVerifierNumbers, DEFAULT_MAX_TOKEN_BYTES, DEFAULT_VERIFIED_CACHE_SECONDS, DEFAULT_VERIFIED_CACHE_SIZE, resolveIssuers, type ResolvedIssuer, type SelfPod, type VerifierOptions } from './options.ts';
import { toPrincipal, type Principal } from './principal.ts';
import { quote, refuse, type ReasonCode, type Refusal } from './reasons.ts';

export type VerifyResult = { readonly ok: true; readonly principal: Principal } | Refusal;

export interface TokenVerifier {
  verify(token: string | undefined | null): Promise<VerifyResult>;
  /** Fetch every issuer's keys now (at start-up) so the first agent does not wait; failures surface on verify. */
  warmUp(): Promise<void>;
  /** Per-issuer JWKS cache counters (for /metrics). */
  stats(): Readonly<Record<string, JwksStats>>;
  /** Verified-token cache counters. */
  cacheStats(): Readonly<VerifiedCacheStats>;
}

interface Decoded {
  readonly header: JWSHeaderParameters;
  readonly claims: JWTPayload;
}

const JWS_COMPACT = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/;

function decode(jose: JoseLib, token: string, maxBytes: number): ({ readonly ok: true } & Decoded) | Refusal {
  if (token.length > maxBytes) return refuse('malformed', `the token is ${token.length} bytes, more than the ${maxBytes} allowed`);
  if (!JWS_COMPACT.test(token)) {
    return refuse('malformed', 'the token is not a compact JWS (three base64url parts separated by dots); send the raw JWT, without "Bearer "');
  }
  let header: JWSHeaderParameters;
  let claims: JWTPayload;
  try {
    header = jose.decodeProtectedHeader(token);
    claims = jose.decodeJwt(token);
  } catch (e) {
    return refuse('malformed', `the token cannot be decoded: ${(e as Error).message}`);
  }
  // RFC 7515 §4.1.4: kid is a string. Any other type would make the key lookup try every key of the issuer.
  if (header.kid !== undefined && typeof header.kid !== 'string') {
    const kind = header.kid === null ? 'null' : Array.isArray(header.kid) ? 'a list' : typeof header.kid === 'object' ? 'an object' : `a ${typeof header.kid}`;
    return refuse('malformed', `the token's kid header is ${kind}, not a string`);
  }
  return { ok: true, header, claims };
}

/** A refusal message never carries the token: any part of it (e.g. echoed through a claim or a library message) is cut out. */
function scrub(r: Refusal, token: string): Refusal {
  let message = r.message;
  for (const part of [token, ...token.split('.')]) {
    if (part.length >= 8 && message.includes(part)) message = message.split(part).join('<token>');
  }
  return message === r.message ? r : refuse(r.reason, message);
}

/** jose's claim and signature errors → our reason codes. */
function mapJoseError(e: unknown, cfg: ResolvedIssuer, errors: JoseLib['errors']): Refusal {
  if (e instanceof errors.JWSSignatureVerificationFailed) return refuse('bad-signature', `the token's signature does not verify with issuer ${cfg.issuer}'s key`);
  if (e instanceof errors.JWTExpired) return refuse('expired', `the token expired (exp is more than ${cfg.clockSkewSeconds} s in the past); fetch a fresh token`);
  if (e instanceof errors.JWTClaimValidationFailed) {
    if (e.reason === 'missing') return refuse('claim-invalid', `the token has no ${quote(e.claim)} claim`);
    // A claim of the wrong type ("nbf": "soon") is malformed, not "not yet valid".
    if (e.reason === 'invalid') return refuse('claim-invalid', `the ${quote(e.claim)} claim is invalid: ${e.message}`);
    if (e.claim === 'aud') return refuse('wrong-audience', `the token's audience is not one of ${cfg.audiences.join(', ')}; request a token for audience ${cfg.audiences[0] ?? ''}`);
    if (e.claim === 'nbf') return refuse('not-yet-valid', `the token is not valid yet (nbf is more than ${cfg.clockSkewSeconds} s in the future); check the clocks`);
    if (e.claim === 'iss') return refuse('unknown-issuer', 'the token is not from an accepted issuer');
    return refuse('claim-invalid', `the ${quote(e.claim)} claim is invalid: ${e.message}`);
  }
  if (e instanceof errors.JOSEAlgNotAllowed) return refuse('alg-not-allowed', `the token's algorithm is not allowed for issuer ${cfg.issuer}`);
  if (e instanceof errors.JOSEError) return refuse('malformed', `the token is not a valid JWS: ${e.message}`);
  // jose throws TypeError for a key it will not use (an RSA modulus under 2048 bits, a key of the wrong type): the
  // issuer published a key nothing can verify with. The same refusal as an unusable JWKS member, not an internal error.
  if (e instanceof TypeError) return refuse('jwks-unavailable', `issuer ${cfg.issuer} publishes a key for this token that cannot be used (${e.message})`);
  throw e;
}

/** A thrown value described for a message, whatever was thrown (a throw of undefined must not throw again). */
function describeError(e: unknown): string {
  if (e instanceof Error) return `${e.name}: ${e.message}`;
  return typeof e === 'string' ? e : 'a non-Error value';
}

/** Symmetric and unsigned tokens are refused before anything else: no issuer configuration can accept them. */
function neverAccepted(alg: unknown): Refusal | undefined {
  if (typeof alg !== 'string') return refuse('alg-not-allowed', 'the token has no alg header (or it is not a string): only asymmetric signatures (RS*, PS*, ES*, EdDSA) are accepted');
  if (alg.toLowerCase() === 'none' || alg.toUpperCase().startsWith('HS')) {
    return refuse('alg-not-allowed', `the token's algorithm ${quote(alg)} is never accepted: only asymmetric signatures (RS*, PS*, ES*, EdDSA) prove the issuer signed it`);
  }
  return undefined;
}

/** Checks jose leaves to us: aud's shape, iat not in the future, exp - iat and exp - now within the maximum lifetime. */
function lifetime(claims: JWTPayload, cfg: ResolvedIssuer, nowSec: number): Refusal | undefined {
  const { iat, exp, aud } = claims;
  // RFC 7519 §4.1.3: aud is a string or a list of strings; a list hiding other types is not read leniently.
  if (Array.isArray(aud) && aud.some((a) => typeof a !== 'string')) return refuse('claim-invalid', 'the token\'s aud claim lists a value that is not a string');
  if (typeof iat !== 'number') return refuse('claim-invalid', 'the token has no iat claim, so its lifetime cannot be checked');
  if (typeof exp !== 'number') return refuse('claim-invalid', 'the token has no exp claim');
  if (iat > nowSec + cfg.clockSkewSeconds) return refuse('not-yet-valid', `the token was issued in the future (iat more than ${cfg.clockSkewSeconds} s ahead); check the clocks`);
  const life = Math.max(exp - iat, exp - nowSec);
  if (life > cfg.maxLifetimeSeconds) {
    return refuse('lifetime-too-long', `the token lives ${Math.round(life)} s, more than the ${cfg.maxLifetimeSeconds} s allowed for agent tokens; request a shorter-lived token`);
  }
  return undefined;
}

async function verifyWithKeys(jose: JoseLib, token: string, keys: readonly CryptoKey[], cfg: ResolvedIssuer, now: number): Promise<{ readonly ok: true; readonly claims: JWTPayload } | Refusal> {
  let last: Refusal = refuse('bad-signature', `the token's signature does not verify with issuer ${cfg.issuer}'s keys`);
  for (const key of keys) {
    try {
      const { payload } = await jose.jwtVerify(token, key, {
        algorithms: [...cfg.algorithms],
        issuer: cfg.issuer,
        audience: [...cfg.audiences],
        clockTolerance: cfg.clockSkewSeconds,
        currentDate: new Date(now),
        requiredClaims: ['exp'],
      });
      return { ok: true, claims: payload };
    } catch (e) {
      last = mapJoseError(e, cfg, jose.errors);
      if (last.reason !== 'bad-signature') return last; // the signature verified; a claim failed
    }
  }
  return last;
}

/** The issuer's requiredGroups the principal lacks, as a refusal (names come from the config, never from the token). */
export function missingGroups(p: Principal, cfg: Pick<ResolvedIssuer, 'issuer' | 'requiredGroups'>): Refusal | undefined {
  if (cfg.requiredGroups.length === 0) return undefined;
  const missing = cfg.requiredGroups.filter((g) => !p.groups.includes(g));
  if (missing.length === 0) return undefined;
  const list = missing.map((g) => JSON.stringify(g)).join(', ');
  return refuse('missing-group', `issuer ${cfg.issuer} requires the group(s) ${list}, which the token does not carry; add the agent to ${missing.length === 1 ? 'that group' : 'those groups'} at the IdP, or use a token of another accepted issuer`);
}

interface VerifierParts {
  readonly issuers: Map<string, ResolvedIssuer>;
  readonly self: SelfPod | undefined;
  readonly now: () => number;
  readonly maxBytes: number;
  readonly verified: VerifiedCache<Principal>;
  readonly fetcher: Fetcher | undefined;
  readonly loadJose: () => Promise<JoseLib>;
}

class Verifier implements TokenVerifier {
  private readonly caches = new Map<string, JwksCache>();
  private readonly issuers: Map<string, ResolvedIssuer>;
  private readonly self: SelfPod | undefined;
  private readonly now: () => number;
  private readonly maxBytes: number;
  private readonly verified: VerifiedCache<Principal>;
  private readonly loadJose: () => Promise<JoseLib>;

  constructor(p: VerifierParts) {
    ({ issuers: this.issuers, self: this.self, now: this.now, maxBytes: this.maxBytes, verified: this.verified, loadJose: this.loadJose } = p);
    for (const [iss, cfg] of p.issuers) this.caches.set(iss, new JwksCache(cfg, p.now, p.fetcher));
  }

  async verify(token: string | undefined | null): Promise<VerifyResult> {
    if (typeof token !== 'string' || token.trim() === '') return refuse('missing', 'no token was sent; send the agent\'s OIDC token (the password for PostgreSQL, a Bearer token for HTTP)');
    if (token.length > this.maxBytes) return refuse('malformed', `the token is ${token.length} bytes, more than the ${this.maxBytes} allowed`);
    const t = token.trim();
    const now = this.now();
    const hit = this.verified.get(t, now);
    if (hit !== undefined) return { ok: true, principal: hit };
    let keysFreshUntil = now;
    let r: VerifyResult;
    try {
      r = await this.verifyUncached(t, now, (until) => (keysFreshUntil = until));
    } catch (e) {
      // A bug or an unexpected library error must refuse, never let a token through or crash the session.
      return scrub(refuse('internal', `the token could not be checked (${describeError(e)}); it is refused`), t);
    }
    if (r.ok) this.verified.set(t, r.principal, Math.min(r.principal.expiresAt, keysFreshUntil), now);
    return r.ok ? r : scrub(r, t);
  }

  private async verifyUncached(token: string, now: number, keysFresh: (until: number) => void): Promise<VerifyResult> {
    let jose: JoseLib;
    try {
      jose = await this.loadJose();
    } catch (e) {
      // Fail closed with a 28000 refusal: nothing can check the token without its library.
      return refuse('jwks-unavailable', `${e instanceof Error ? e.message : describeError(e)}; the token cannot be checked, so it is refused`);
    }
    const d = decode(jose, token, this.maxBytes);
    if (!d.ok) return d;
    const never = neverAccepted(d.header.alg);
    if (never !== undefined) return never;
    const cfg = typeof d.claims.iss === 'string' ? this.issuers.get(d.claims.iss) : undefined;
    if (cfg === undefined) return refuse('unknown-issuer', `the token's issuer ${quote(d.claims.iss)} is not accepted; accepted: ${[...this.issuers.keys()].join(', ')}`);
    if (!cfg.algorithms.includes(d.header.alg as string)) {
      return refuse('alg-not-allowed', `the token's algorithm ${quote(d.header.alg)} is not allowed (allowed: ${cfg.algorithms.join(', ')}); none and HS* are never accepted`);
    }
    const keys = await this.caches.get(cfg.issuer)!.lookup(d.header);
    if (!keys.ok) return keys;
    keysFresh(keys.freshUntil);
    const verified = await verifyWithKeys(jose, token, keys.keys, cfg, now);
    if (!verified.ok) return verified;
    const tooLong = lifetime(verified.claims, cfg, now / 1000);
    if (tooLong !== undefined) return tooLong;
    const p = toPrincipal(verified.claims, cfg, this.self);
    return p.ok ? (missingGroups(p.principal, cfg) ?? p) : p;
  }

  async warmUp(): Promise<void> {
    await Promise.all([...this.caches.values()].map((c) => c.warmUp()));
  }

  cacheStats(): Readonly<VerifiedCacheStats> {
    return { ...this.verified.stats };
  }

  stats(): Readonly<Record<string, JwksStats>> {
    return Object.fromEntries([...this.caches].map(([iss, c]) => [iss, { ...c.stats }]));
  }
}

export interface CreateVerifierExtras {
  /** Replaces the http(s) JSON fetch (unit tests). */
  readonly fetcher?: Fetcher;
  /** Replaces the jose loader (unit tests of a failed load). */
  readonly loadJose?: () => Promise<JoseLib>;
}

/** Validates the options up front (throws IdentityOptionsError naming the field) and returns the verifier. */
export function createTokenVerifier(options: VerifierOptions, extras: CreateVerifierExtras = {}): TokenVerifier {
  checkVerifierNumbers(options);
  const cache = new VerifiedCache<Principal>(options.verifiedCacheSize ?? DEFAULT_VERIFIED_CACHE_SIZE, (options.verifiedCacheSeconds ?? DEFAULT_VERIFIED_CACHE_SECONDS) * 1000);
  return new Verifier({
    issuers: resolveIssuers(options),
    self: options.self,
    now: options.now ?? Date.now,
    maxBytes: options.maxTokenBytes ?? DEFAULT_MAX_TOKEN_BYTES,
    verified: cache,
    fetcher: extras.fetcher,
    loadJose: extras.loadJose ?? loadJose,
  });
}

export type { ReasonCode, Principal };
