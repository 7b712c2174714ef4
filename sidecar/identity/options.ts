// Verifier options: one entry per accepted issuer, checked up front, with the named defaults.
import { readFileSync } from 'node:fs';

export const DEFAULT_ALGORITHMS = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA', 'Ed25519'] as const;
/** Asymmetric signature algorithms we can verify; `none` and HS* are never accepted, not even by configuration. */
const KNOWN_ALGORITHMS: ReadonlySet<string> = new Set(DEFAULT_ALGORITHMS);
export const DEFAULT_CLOCK_SKEW_SECONDS = 30;
/** Agent tokens are meant to be short-lived; Kubernetes projected tokens default to 1 h. */
export const DEFAULT_MAX_LIFETIME_SECONDS = 3600;
export const DEFAULT_GROUPS_CLAIM = 'groups';
export const DEFAULT_USERNAME_CLAIM = 'sub';
export const DEFAULT_JWKS_CACHE_TTL_SECONDS = 600;
/** At most one JWKS fetch per this many seconds per issuer, whatever the traffic (a flood of random kids must not flood the IdP). */
export const DEFAULT_JWKS_MIN_REFETCH_SECONDS = 10;
export const DEFAULT_FETCH_TIMEOUT_MS = 5000;
/** Real JWTs are a few KiB; anything larger is refused before any decoding. */
export const DEFAULT_MAX_TOKEN_BYTES = 16 * 1024;

export type IssuerKind = 'oidc' | 'kubernetes';

export interface IssuerOptions {
  /** Exact `iss` value, e.g. `https://kubernetes.default.svc` or `https://idp.example.com/realms/x`. */
  readonly issuer: string;
  /** Accepted `aud` values; the token must name at least one. */
  readonly audiences: readonly string[];
  /** `kubernetes`: a ServiceAccount issuer (kubernetes.io claims, SA groups, pod binding). Default `oidc`. */
  readonly kind?: IssuerKind;
  /** JWKS URL; without it `<issuer>/.well-known/openid-configuration` is read for `jwks_uri`. */
  readonly jwksUri?: string;
  /** PEM CA bundle file for TLS to the issuer (e.g. the cluster CA). */
  readonly caFile?: string;
  /** PEM CA bundle inline (tests, or a config that carries it). */
  readonly caPem?: string;
  /** A bearer token file sent when fetching discovery/JWKS (the API server serves them to authenticated callers only). Read on every fetch: projected tokens rotate. */
  readonly bearerTokenFile?: string;
  readonly algorithms?: readonly string[];
  readonly clockSkewSeconds?: number;
  readonly maxLifetimeSeconds?: number;
  /** Claim holding the groups; a dotted path (`realm_access.roles`) is allowed. */
  readonly groupsClaim?: string;
  readonly usernameClaim?: string;
  /** Prefixes keep issuers apart (`oidc:`), as the API server's OIDC authenticator does. */
  readonly usernamePrefix?: string;
  readonly groupsPrefix?: string;
  /** Claim naming the human the agent acts for (dotted path, e.g. `act.sub`). */
  readonly actingForClaim?: string;
  readonly jwksCacheTtlSeconds?: number;
  readonly jwksMinRefetchSeconds?: number;
  readonly fetchTimeoutMs?: number;
  /** Kubernetes issuers: refuse tokens not bound to a pod. Default true. */
  readonly requirePodBinding?: boolean;
  /** Every one of these groups (after `groupsPrefix`) must be in the token, or it is refused (`missing-group`). Default none. */
  readonly requiredGroups?: readonly string[];
}

/** The sidecar's own pod, from the downward API (POD_NAME, POD_UID, POD_NAMESPACE). */
export interface SelfPod {
  readonly name?: string;
  readonly uid?: string;
  readonly namespace?: string;
}

/** Verified tokens remembered (HTTP sends the same token on every request; a signature check costs ~0.1-0.3 ms). */
export const DEFAULT_VERIFIED_CACHE_SIZE = 1024;
/** A remembered verification is re-done after this long even if the token lives longer (a withdrawn key stops working within it). */
export const DEFAULT_VERIFIED_CACHE_SECONDS = 60;

export interface VerifierOptions {
  readonly issuers: readonly IssuerOptions[];
  /** 0 turns the verified-token cache off. */
  readonly verifiedCacheSize?: number;
  readonly verifiedCacheSeconds?: number;
  readonly self?: SelfPod;
  /** Clock in ms since the epoch; tests inject one. */
  readonly now?: () => number;
  readonly maxTokenBytes?: number;
}

export interface ResolvedIssuer {
  readonly issuer: string;
  readonly audiences: readonly string[];
  readonly kind: IssuerKind;
  readonly jwksUri: string | undefined;
  readonly ca: string | undefined;
  readonly bearerTokenFile: string | undefined;
  readonly algorithms: readonly string[];
  readonly clockSkewSeconds: number;
  readonly maxLifetimeSeconds: number;
  readonly groupsClaim: string;
  readonly usernameClaim: string;
  readonly usernamePrefix: string;
  readonly groupsPrefix: string;
  readonly actingForClaim: string | undefined;
  readonly jwksCacheTtlMs: number;
  readonly jwksMinRefetchMs: number;
  readonly fetchTimeoutMs: number;
  readonly requirePodBinding: boolean;
  readonly requiredGroups: readonly string[];
}

/** Thrown for options that cannot work; names the field and what to do. */
export class IdentityOptionsError extends Error {
  override readonly name = 'IdentityOptionsError';
}

function fail(path: string, detail: string): never {
  throw new IdentityOptionsError(`identity options ${path}: ${detail}`);
}

function checkUrl(path: string, value: string): void {
  let u: URL;
  try {
    u = new URL(value);
  } catch {
    fail(path, `${JSON.stringify(value)} is not an absolute URL`);
  }
  if (u.protocol !== 'https:' && u.protocol !== 'http:') fail(path, 'must be an https:// (or, for tests on loopback, http://) URL');
}

function positive(path: string, value: number | undefined, dflt: number): number {
  if (value === undefined) return dflt;
  if (!Number.isFinite(value) || value < 0) fail(path, 'must be a non-negative number');
  return value;
}

function checkAlgorithms(path: string, algs: readonly string[]): readonly string[] {
  if (algs.length === 0) fail(path, 'must list at least one algorithm');
  for (const a of algs) {
    if (a === 'none' || a.startsWith('HS')) fail(path, `${a} is never accepted: only asymmetric signatures prove the issuer signed the token`);
    if (!KNOWN_ALGORITHMS.has(a)) fail(path, `${a} is not a supported algorithm (${DEFAULT_ALGORITHMS.join(', ')})`);
  }
  return [...algs];
}

function readCa(path: string, o: IssuerOptions): string | undefined {
  if (o.caPem !== undefined) return o.caPem;
  if (o.caFile === undefined) return undefined;
  try {
    return readFileSync(o.caFile, 'utf8');
  } catch (e) {
    fail(`${path}.caFile`, `cannot read ${o.caFile}: ${(e as Error).message}`);
  }
}

function checkAudiences(path: string, audiences: unknown): readonly string[] {
  const list: unknown[] = Array.isArray(audiences) ? (audiences as unknown[]) : [];
  if (list.length === 0 || list.some((a) => typeof a !== 'string' || a === '')) {
    fail(path, 'must list at least one non-empty audience (a token for any audience could be replayed from elsewhere)');
  }
  return list as string[];
}

function checkGroups(path: string, groups: unknown): readonly string[] {
  if (groups === undefined) return [];
  if (!Array.isArray(groups) || groups.some((g) => typeof g !== 'string' || g === '')) fail(path, 'must be a list of non-empty group names');
  return [...new Set(groups as string[])];
}

/** A prefix starting with `system:` would turn an IdP's names into cluster names (`system:serviceaccounts`, `system:masters`). */
function checkPrefix(path: string, value: string | undefined): string {
  if (value === undefined) return '';
  if (typeof value !== 'string') fail(path, 'must be a string');
  if (value.startsWith('system:')) fail(path, 'must not start with system: (those names belong to the cluster; an external IdP cannot grant them)');
  return value;
}

function checkBasics(p: string, o: IssuerOptions): IssuerKind {
  if (typeof o.issuer !== 'string' || o.issuer === '') fail(`${p}.issuer`, 'is required');
  if (o.jwksUri !== undefined) checkUrl(`${p}.jwksUri`, o.jwksUri);
  else checkUrl(`${p}.issuer`, o.issuer);
  const kind = o.kind ?? 'oidc';
  if (kind !== 'oidc' && kind !== 'kubernetes') fail(`${p}.kind`, 'must be "oidc" or "kubernetes"');
  return kind;
}

export function resolveIssuer(o: IssuerOptions, index: number): ResolvedIssuer {
  const p = `issuers[${index}]`;
  const kind = checkBasics(p, o);
  return {
    issuer: o.issuer,
    audiences: checkAudiences(`${p}.audiences`, o.audiences),
    kind,
    jwksUri: o.jwksUri,
    ca: readCa(p, o),
    bearerTokenFile: o.bearerTokenFile,
    algorithms: checkAlgorithms(`${p}.algorithms`, o.algorithms ?? DEFAULT_ALGORITHMS),
    clockSkewSeconds: positive(`${p}.clockSkewSeconds`, o.clockSkewSeconds, DEFAULT_CLOCK_SKEW_SECONDS),
    maxLifetimeSeconds: positive(`${p}.maxLifetimeSeconds`, o.maxLifetimeSeconds, DEFAULT_MAX_LIFETIME_SECONDS),
    groupsClaim: o.groupsClaim ?? DEFAULT_GROUPS_CLAIM,
    usernameClaim: o.usernameClaim ?? DEFAULT_USERNAME_CLAIM,
    usernamePrefix: checkPrefix(`${p}.usernamePrefix`, o.usernamePrefix),
    groupsPrefix: checkPrefix(`${p}.groupsPrefix`, o.groupsPrefix),
    actingForClaim: o.actingForClaim,
    jwksCacheTtlMs: positive(`${p}.jwksCacheTtlSeconds`, o.jwksCacheTtlSeconds, DEFAULT_JWKS_CACHE_TTL_SECONDS) * 1000,
    jwksMinRefetchMs: positive(`${p}.jwksMinRefetchSeconds`, o.jwksMinRefetchSeconds, DEFAULT_JWKS_MIN_REFETCH_SECONDS) * 1000,
    fetchTimeoutMs: positive(`${p}.fetchTimeoutMs`, o.fetchTimeoutMs, DEFAULT_FETCH_TIMEOUT_MS),
    requirePodBinding: o.requirePodBinding ?? true,
    requiredGroups: checkGroups(`${p}.requiredGroups`, o.requiredGroups),
  };
}

/** The verifier-wide numbers: NaN would switch a bound off (`size > NaN` is never true), so it is refused like a negative. */
export function checkVerifierNumbers(o: VerifierOptions): void {
  positive('verifiedCacheSize', o.verifiedCacheSize, DEFAULT_VERIFIED_CACHE_SIZE);
  positive('verifiedCacheSeconds', o.verifiedCacheSeconds, DEFAULT_VERIFIED_CACHE_SECONDS);
  if (o.maxTokenBytes !== undefined && !(Number.isFinite(o.maxTokenBytes) && o.maxTokenBytes > 0)) fail('maxTokenBytes', 'must be a positive number');
}

export function resolveIssuers(o: VerifierOptions): Map<string, ResolvedIssuer> {
  const issuers: readonly IssuerOptions[] = Array.isArray(o.issuers) ? o.issuers : [];
  if (issuers.length === 0) fail('issuers', 'must list at least one accepted issuer');
  const map = new Map<string, ResolvedIssuer>();
  issuers.forEach((io, i) => {
    const r = resolveIssuer(io, i);
    if (map.has(r.issuer)) fail(`issuers[${i}].issuer`, `${r.issuer} is listed twice`);
    map.set(r.issuer, r);
  });
  return map;
}
