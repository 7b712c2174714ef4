// Why a token or a connection was refused: a small closed set of reason codes, each mapped to the error table.
import type { ErrorCode } from '../core/errors.ts';

/** Why a token was refused, in the order the verifier checks (docs/identity.md lists each; a test checks it). */
export const REASON_CODES = [
  'missing',
  'malformed',
  'alg-not-allowed',
  'unknown-issuer',
  'jwks-unavailable',
  'unknown-kid',
  'bad-signature',
  'wrong-audience',
  'expired',
  'not-yet-valid',
  'lifetime-too-long',
  'claim-invalid',
  'wrong-pod',
  'missing-group',
  /** Not a check: an unexpected error while checking (fail closed). */
  'internal',
] as const;

export type ReasonCode = (typeof REASON_CODES)[number];

/** Why a verified principal may not open a connection. */
export const AUTHORIZE_REASONS = ['no-allow-list', 'not-allowed'] as const;
export type AuthorizeReason = (typeof AUTHORIZE_REASONS)[number];

export interface Refusal<R extends string = ReasonCode> {
  readonly ok: false;
  readonly reason: R;
  /** Which check failed, for the client; never contains the token. */
  readonly message: string;
}

export function refuse<R extends string>(reason: R, message: string): Refusal<R> {
  return { ok: false, reason, message };
}

/** The error-table entry a gateway sends for each refusal (PostgreSQL 28000/28P01, HTTP 401/403/503). */
export function errorCodeFor(reason: ReasonCode | AuthorizeReason): ErrorCode {
  switch (reason) {
    case 'missing':
      return 'CHAP_ERR_AUTH_TOKEN_MISSING';
    case 'jwks-unavailable':
      return 'CHAP_ERR_AUTH_KEYS_UNAVAILABLE';
    case 'internal':
      return 'CHAP_ERR_INTERNAL';
    case 'no-allow-list':
    case 'not-allowed':
      return 'CHAP_ERR_AUTH_CONNECTION_FORBIDDEN';
    default:
      return 'CHAP_ERR_AUTH_TOKEN_REFUSED';
  }
}

/** A claim value made safe to quote in a message: printable ASCII only, bounded (it came from an unverified token). */
export function quote(value: unknown, max = 80): string {
  const s = typeof value === 'string' ? value : text(value);
  const clean = s.replace(/[^\x20-\x7e]/g, '?');
  return JSON.stringify(clean.length > max ? `${clean.slice(0, max)}…` : clean);
}

/** JSON of a non-string claim; a value nested thousands deep (an unverified `iss`) overflows JSON.stringify, which must not throw. */
function text(value: unknown): string {
  try {
    return JSON.stringify(value) ?? String(value);
  } catch {
    return Array.isArray(value) ? '[a list nested too deeply to quote]' : '{a value nested too deeply to quote}';
  }
}
