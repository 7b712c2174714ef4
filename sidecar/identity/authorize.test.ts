// mayUseConnection, table-driven: groups and subjects grant, an empty allow-list refuses unless anyAuthenticated.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mayUseConnection, type ConnectionAccess } from './authorize.ts';
import type { Principal } from './principal.ts';

const agent: Principal = { issuer: 'https://idp.example', subject: 'bot-1', username: 'idp:bot-1', groups: ['agents', 'db-readers'], expiresAt: 0 };
const sa: Principal = {
  issuer: 'https://kubernetes.default.svc',
  subject: 'system:serviceaccount:team-a:coder',
  username: 'system:serviceaccount:team-a:coder',
  groups: ['system:serviceaccounts', 'system:serviceaccounts:team-a', 'system:serviceaccount:team-a:coder'],
  expiresAt: 0,
};

const cases: [string, Principal, Omit<ConnectionAccess, 'name'>, true | 'no-allow-list' | 'not-allowed'][] = [
  ['a member of an allowed group may use it', agent, { allowedGroups: ['db-readers'] }, true],
  ['one matching group of several is enough', agent, { allowedGroups: ['db-admins', 'agents'] }, true],
  ['no matching group is refused', agent, { allowedGroups: ['db-admins'] }, 'not-allowed'],
  ['an allowed username may use it', agent, { allowedSubjects: ['idp:bot-1'] }, true],
  ['an allowed issuer#sub pair may use it', agent, { allowedSubjects: ['https://idp.example#bot-1'] }, true],
  ['the same sub from another issuer is refused', agent, { allowedSubjects: ['https://other.example#bot-1'] }, 'not-allowed'],
  ['the bare sub is not a username when prefixed', agent, { allowedSubjects: ['bot-1'] }, 'not-allowed'],
  ['SA namespace group grants', sa, { allowedGroups: ['system:serviceaccounts:team-a'] }, true],
  ['another namespace group is refused', sa, { allowedGroups: ['system:serviceaccounts:team-b'] }, 'not-allowed'],
  ['no allow-list at all is refused (fail closed)', agent, {}, 'no-allow-list'],
  ['empty allow-lists are refused (fail closed)', agent, { allowedGroups: [], allowedSubjects: [] }, 'no-allow-list'],
  ['anyAuthenticated opens it to any verified principal', sa, { anyAuthenticated: true }, true],
  ['anyAuthenticated false with no list is refused', sa, { anyAuthenticated: false }, 'no-allow-list'],
  ['group names match exactly (no prefix match)', agent, { allowedGroups: ['db-reader'] }, 'not-allowed'],
];

for (const [name, p, conn, want] of cases) {
  test(`given ${name}, returns ${want === true ? 'ok' : want}`, () => {
    const r = mayUseConnection(p, { name: 'orders-db', ...conn });
    if (want === true) assert.deepEqual(r, { ok: true });
    else {
      assert.equal(r.ok, false);
      if (!r.ok) {
        assert.equal(r.reason, want);
        assert.match(r.message, /orders-db/);
      }
    }
  });
}
