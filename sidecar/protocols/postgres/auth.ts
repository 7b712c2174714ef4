// Agent authentication for a PostgreSQL session: the password is the agent's JWT; verify it, then check the connection's allow-list (fail closed).
import type { ErrorCode } from '../../core/errors.ts';
import type { AccessConfig } from '../../core/config-types.ts';
import { mayUseConnection } from '../../identity/authorize.ts';
import { errorCodeFor, refuse } from '../../identity/reasons.ts';
import type { Principal, TokenVerifier, VerifyResult } from '../../identity/verify-token.ts';

export type AuthOutcome =
  | { readonly ok: true; readonly principal: Principal }
  | { readonly ok: false; readonly code: ErrorCode; readonly params: Readonly<Record<string, string>>; readonly reason: string };

/** Used when no verifier is configured: every token is refused, naming the missing configuration. */
export const refusingVerifier: TokenVerifier = {
  verify: () => Promise.resolve(refuse('unknown-issuer', 'no token issuers are configured for this sidecar, so no agent token can be accepted; configure identity.issuers')),
  warmUp: () => Promise.resolve(),
  stats: () => ({}),
  cacheStats: () => ({ hits: 0, misses: 0, evictions: 0 }),
};

/** Verifies and authorizes; never throws, never puts the token in a message. */
export async function authenticate(verifier: TokenVerifier, token: string, connection: string, access: AccessConfig): Promise<AuthOutcome> {
  let v: VerifyResult;
  try {
    v = await verifier.verify(token === '' ? undefined : token);
  } catch (e) {
    v = refuse('internal', `the token check failed unexpectedly (${(e as Error)?.name ?? 'error'}); refused`);
  }
  if (!v.ok) {
    const detail = v.reason === 'missing' ? 'send the agent\'s projected token as the PostgreSQL password' : v.message;
    return { ok: false, code: errorCodeFor(v.reason), params: { reason: v.reason, detail, connection }, reason: v.reason };
  }
  const a = mayUseConnection(v.principal, { name: connection, ...access });
  if (!a.ok) return { ok: false, code: errorCodeFor(a.reason), params: { reason: a.reason, detail: a.message, connection }, reason: a.reason };
  return { ok: true, principal: v.principal };
}
