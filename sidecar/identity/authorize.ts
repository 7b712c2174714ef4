// Which connections a verified principal may open: pure, fail closed (no allow-list means nobody, unless anyAuthenticated).
import type { Principal } from './principal.ts';
import { refuse, type AuthorizeReason, type Refusal } from './reasons.ts';

export interface ConnectionAccess {
  readonly name: string;
  /** Any of these groups grants the connection. */
  readonly allowedGroups?: readonly string[];
  /** Usernames (`system:serviceaccount:ns:sa`, or the prefixed OIDC username) or `<issuer>#<sub>` pairs. */
  readonly allowedSubjects?: readonly string[];
  /** Opt-in: every verified principal of an accepted issuer may use this connection. */
  readonly anyAuthenticated?: boolean;
}

export type AuthorizeResult = { readonly ok: true } | Refusal<AuthorizeReason>;

const OK: AuthorizeResult = { ok: true };

export function mayUseConnection(principal: Principal, connection: ConnectionAccess): AuthorizeResult {
  if (connection.anyAuthenticated === true) return OK;
  const groups = connection.allowedGroups ?? [];
  const subjects = connection.allowedSubjects ?? [];
  if (groups.length === 0 && subjects.length === 0) {
    return refuse('no-allow-list', `connection ${connection.name} lists no allowedGroups or allowedSubjects, so nobody may use it; add one, or set anyAuthenticated: true`);
  }
  const pair = `${principal.issuer}#${principal.subject}`;
  if (subjects.some((s) => s === principal.username || s === pair)) return OK;
  if (groups.some((g) => principal.groups.includes(g))) return OK;
  return refuse('not-allowed', `${principal.username} (groups: ${principal.groups.join(', ') || 'none'}) is not in connection ${connection.name}'s allowedGroups (${groups.join(', ') || 'none'}) or allowedSubjects`);
}
