// Agent authentication for a PostgreSQL session: the password is the agent's JWT; verify it, then check the connection's allow-list (fail closed).
import type { AccessConfig } from '../../core/config-types.ts';
import { authenticateAgent, type AuthOutcome } from '../../identity/authenticate.ts';
import { refuse } from '../../identity/reasons.ts';
import type { TokenVerifier } from '../../identity/verify-token.ts';

/** Used when no verifier is configured: every token is refused, naming the missing configuration. */
export const refusingVerifier: TokenVerifier = {
  verify: () => Promise.resolve(refuse('unknown-issuer', 'no token issuers are configured for this sidecar, so no agent token can be accepted; configure identity.issuers')),
  warmUp: () => Promise.resolve(),
  stats: () => ({}),
  cacheStats: () => ({ hits: 0, misses: 0, evictions: 0 }),
};

/** The PostgreSQL session's authentication: the token is the password. */
export function authenticate(verifier: TokenVerifier, token: string, connection: string, access: AccessConfig): Promise<AuthOutcome> {
  return authenticateAgent(verifier, token, connection, access, 'send the agent\'s projected token as the PostgreSQL password');
}
