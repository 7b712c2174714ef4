// One issuer's signing keys: discovery, a TTL cache, rate-limited refetch on an unknown kid, fail closed when stale.
// Fetching is plain fetch; jose (jose-lib.ts) loads on the first key lookup, so the start-up prefetch does not load it.
import type { JSONWebKeySet, JWK, JWSHeaderParameters, CryptoKey } from 'jose';
import { loadJose, type JoseLib } from './jose-lib.ts';
import { getJson } from './http-json.ts';
import type { ResolvedIssuer } from './options.ts';
import { refuse, type Refusal } from './reasons.ts';

export interface JwksStats {
  /** Fetch attempts (discovery + JWKS count as one). */
  fetches: number;
  fetchFailures: number;
  /** Key lookups answered from the cache. */
  hits: number;
  /** Lookups that found no key for the kid. */
  misses: number;
  /** Refetches not started because one ran less than jwksMinRefetchSeconds ago. */
  suppressed: number;
}

type LocalSet = ReturnType<JoseLib['createLocalJWKSet']>;
/** A fetched key set; `local` (jose's matcher) is built on the first lookup. */
interface HeldSet {
  readonly jwks: JSONWebKeySet;
  local: LocalSet | undefined;
  readonly kids: ReadonlySet<string>;
  readonly fetchedAt: number;
}
/** `freshUntil`: when these keys stop being trusted without a refetch (ms); results verified with them must not outlive it. */
export type KeyLookup = { readonly ok: true; readonly keys: readonly CryptoKey[]; readonly freshUntil: number } | Refusal<'jwks-unavailable' | 'unknown-kid'>;
export type Fetcher = (url: string, cfg: ResolvedIssuer) => Promise<unknown>;

const defaultFetcher: Fetcher = (url, cfg) => getJson(url, { ca: cfg.ca, bearerTokenFile: cfg.bearerTokenFile, timeoutMs: cfg.fetchTimeoutMs });

/** A JWKS must never carry symmetric or private material; such members are dropped, not trusted. */
function publicSigningKeys(doc: unknown, url: string): JSONWebKeySet {
  const keys = (doc as { keys?: unknown } | null)?.keys;
  if (!Array.isArray(keys)) throw new Error(`${url}: not a JSON Web Key Set (no "keys" array)`);
  // A member that is not a JSON object (an array, a string) is dropped too: jose refuses a whole set holding one, which
  // would make one broken member refuse every token of the issuer.
  const usable = (keys as JWK[]).filter((k) => typeof k === 'object' && k !== null && !Array.isArray(k) && typeof k.kty === 'string' && k.kty !== 'oct' && k.d === undefined);
  if (usable.length === 0) throw new Error(`${url}: the key set holds no public signing key`);
  return { keys: usable };
}

function pathJoin(issuer: string, suffix: string): string {
  return issuer.replace(/\/+$/, '') + suffix;
}

export class JwksCache {
  readonly stats: JwksStats = { fetches: 0, fetchFailures: 0, hits: 0, misses: 0, suppressed: 0 };
  private set: HeldSet | undefined;
  private jwksUri: string | undefined;
  private lastAttemptAt = Number.NEGATIVE_INFINITY;
  private lastError = 'no fetch attempted yet';
  private inflight: Promise<void> | undefined;

  constructor(
    private readonly cfg: ResolvedIssuer,
    private readonly now: () => number,
    private readonly fetcher: Fetcher = defaultFetcher,
  ) {
    this.jwksUri = cfg.jwksUri;
  }

  /** Keys that may have signed a token with this header; refetches once (rate-limited) on an unknown kid. */
  async lookup(header: JWSHeaderParameters): Promise<KeyLookup> {
    if (!this.fresh()) {
      await this.refresh();
      if (!this.fresh()) {
        return refuse('jwks-unavailable', `the signing keys of issuer ${this.cfg.issuer} are not available (${this.lastError}); the token cannot be checked, so it is refused`);
      }
    } else if (this.now() - this.set!.fetchedAt >= this.cfg.jwksCacheTtlMs / 2) {
      this.refresh().catch(() => undefined); // refresh ahead of expiry; failures keep the cached keys until the TTL
    }
    const first = await this.find(header);
    if (first !== undefined) return first;
    await this.refresh();
    const second = await this.find(header);
    if (second !== undefined) return second;
    const kid = typeof header.kid === 'string' ? `kid ${JSON.stringify(header.kid.slice(0, 64).replace(/[^\x20-\x7e]/g, '?'))}` : 'no kid';
    return refuse('unknown-kid', `no signing key of issuer ${this.cfg.issuer} matches the token (${kid}, alg ${String(header.alg)}); if the issuer rotated its keys, retry in ${Math.ceil(this.cfg.jwksMinRefetchMs / 1000)} s`);
  }

  /** Fetch now (start-up warm-up); resolves even on failure, which later lookups report. */
  async warmUp(): Promise<void> {
    await this.refresh();
  }

  private fresh(): boolean {
    return this.set !== undefined && this.now() - this.set.fetchedAt < this.cfg.jwksCacheTtlMs;
  }

  private async find(header: JWSHeaderParameters): Promise<KeyLookup | undefined> {
    if (this.set === undefined) return undefined;
    // A kid we do not hold is a miss without asking jose, whose miss costs an Error with a stack (~90 µs): floods stay cheap.
    if (typeof header.kid === 'string' && !this.set.kids.has(header.kid)) {
      this.stats.misses++;
      return undefined;
    }
    const set = this.set;
    const jose = await loadJose();
    try {
      set.local ??= jose.createLocalJWKSet(set.jwks);
      const key = await set.local(header);
      this.stats.hits++;
      return { ok: true, keys: [key], freshUntil: set.fetchedAt + this.cfg.jwksCacheTtlMs };
    } catch (e) {
      if (e instanceof jose.errors.JWKSMultipleMatchingKeys) {
        // No kid and several candidates: collect them (bounded by the set's size) and let the signature decide.
        const keys: CryptoKey[] = [];
        for await (const k of e) keys.push(k);
        this.stats.hits++;
        return { ok: true, keys, freshUntil: set.fetchedAt + this.cfg.jwksCacheTtlMs };
      }
      if (e instanceof jose.errors.JWKSNoMatchingKey) {
        this.stats.misses++;
        return undefined;
      }
      // The matching JWKS member cannot be imported (bad key material): nothing can verify with it.
      return refuse('jwks-unavailable', `the issuer ${this.cfg.issuer} publishes a key for this token that cannot be used (${(e as Error).message})`);
    }
  }

  /** Coalesces concurrent callers and starts at most one fetch per jwksMinRefetchMs. */
  private refresh(): Promise<void> {
    if (this.inflight !== undefined) return this.inflight;
    const now = this.now();
    if (now - this.lastAttemptAt < this.cfg.jwksMinRefetchMs) {
      this.stats.suppressed++;
      return Promise.resolve();
    }
    this.lastAttemptAt = now;
    this.stats.fetches++;
    this.inflight = this.fetchSet()
      .then(({ jwks, kids }) => {
        this.set = { jwks, local: undefined, kids, fetchedAt: this.now() };
      })
      .catch((e: unknown) => {
        this.stats.fetchFailures++;
        this.jwksUri = this.cfg.jwksUri; // rediscover next time: the jwks_uri may have moved
        this.lastError = (e as Error).message;
      })
      .finally(() => {
        this.inflight = undefined;
      });
    return this.inflight;
  }

  private async fetchSet(): Promise<{ jwks: JSONWebKeySet; kids: ReadonlySet<string> }> {
    this.jwksUri ??= await this.discover();
    const jwks = publicSigningKeys(await this.fetcher(this.jwksUri, this.cfg), this.jwksUri);
    return { jwks, kids: new Set(jwks.keys.flatMap((k) => (typeof k.kid === 'string' ? [k.kid] : []))) };
  }

  private async discover(): Promise<string> {
    const url = pathJoin(this.cfg.issuer, '/.well-known/openid-configuration');
    const doc = (await this.fetcher(url, this.cfg)) as { issuer?: unknown; jwks_uri?: unknown } | null;
    // OIDC Discovery §4.3: the document's issuer must equal the issuer we asked for.
    if (doc?.issuer !== this.cfg.issuer) throw new Error(`${url}: discovery names issuer ${JSON.stringify(doc?.issuer)}, not ${this.cfg.issuer}`);
    if (typeof doc.jwks_uri !== 'string') throw new Error(`${url}: discovery has no jwks_uri`);
    const jwks = new URL(doc.jwks_uri);
    if (jwks.protocol !== 'https:' && !(jwks.protocol === 'http:' && new URL(this.cfg.issuer).protocol === 'http:')) {
      throw new Error(`${url}: jwks_uri ${doc.jwks_uri} is not https`);
    }
    return doc.jwks_uri;
  }
}
