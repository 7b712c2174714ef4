// Agent authentication for every gateway: verify the token, then check the connection's allow-list (fail closed).
import type { ErrorCode } from '../core/errors.ts';
import type { AccessConfig } from '../core/config-types.ts';
import { mayUseConnection } from './authorize.ts';
import { errorCodeFor, refuse } from './reasons.ts';
import type { Principal, TokenVerifier, VerifyResult } from './verify-token.ts';

export type AuthOutcome =
  | { readonly ok: true; readonly principal: Principal }
  | { readonly ok: false; readonly code: ErrorCode; readonly params: Readonly<Record<string, string>>; readonly reason: string };

/**
 * Verifies and authorizes; never throws, never puts the token in a message. `missingHint` is the
 * refusal's detail when no token came: how this protocol carries it.
 */
export async function authenticateAgent(verifier: TokenVerifier, token: string | undefined, connection: string, access: AccessConfig, missingHint: string): Promise<AuthOutcome> {
  let v: VerifyResult;
  try {
    v = await verifier.verify(token === '' ? undefined : token);
  } catch (e) {
    v = refuse('internal', `the token check failed unexpectedly (${(e as Error)?.name ?? 'error'}); refused`);
  }
  if (!v.ok) {
    const detail = v.reason === 'missing' ? missingHint : v.message;
    return { ok: false, code: errorCodeFor(v.reason), params: { reason: v.reason, detail, connection }, reason: v.reason };
  }
  const a = mayUseConnection(v.principal, { name: connection, ...access });
  if (!a.ok) return { ok: false, code: errorCodeFor(a.reason), params: { reason: a.reason, detail: a.message, connection }, reason: a.reason };
  return { ok: true, principal: v.principal };
}
