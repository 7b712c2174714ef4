// Claims → Principal, table-driven: usernames, groups (OIDC and ServiceAccount), pod binding, claim types.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { JWTPayload } from 'jose';
import { resolveIssuer, type IssuerOptions, type SelfPod } from './options.ts';
import { claimAt, toPrincipal, type Principal } from './principal.ts';

const EXP = 2_000_000_000;
const oidc = (o: Partial<IssuerOptions> = {}) => resolveIssuer({ issuer: 'https://idp.example', audiences: ['chaperone'], ...o }, 0);
const kube = (o: Partial<IssuerOptions> = {}) => resolveIssuer({ issuer: 'https://kubernetes.default.svc', audiences: ['chaperone'], kind: 'kubernetes', ...o }, 0);
const SELF: SelfPod = { name: 'agent-7f9', uid: 'pod-uid-1', namespace: 'team-a' };

function saClaims(over: Record<string, unknown> = {}, pod: unknown = { name: 'agent-7f9', uid: 'pod-uid-1' }): JWTPayload {
  return {
    iss: 'https://kubernetes.default.svc',
    sub: 'system:serviceaccount:team-a:coder',
    exp: EXP,
    'kubernetes.io': { namespace: 'team-a', serviceaccount: { name: 'coder', uid: 'sa-uid-1' }, ...(pod !== null ? { pod } : {}) },
    ...over,
  };
}

describe('claimAt', () => {
  const claims = { groups: ['a'], 'https://x.example/groups': ['b'], realm_access: { roles: ['r1'] }, a: { b: { c: 'deep' } } };
  const cases: [string, unknown][] = [
    ['groups', ['a']],
    ['https://x.example/groups', ['b']],
    ['realm_access.roles', ['r1']],
    ['a.b.c', 'deep'],
    ['a.b.missing', undefined],
    ['groups.0', undefined],
    ['__proto__.polluted', undefined],
  ];
  for (const [path, want] of cases) test(`given path ${path}, returns ${JSON.stringify(want)}`, () => assert.deepEqual(claimAt(claims, path), want));
});

describe('toPrincipal: OIDC issuers', () => {
  const cases: { name: string; claims: JWTPayload; cfg?: Partial<IssuerOptions>; want: Partial<Principal> | string }[] = [
    { name: 'sub becomes the username; groups from the groups claim', claims: { sub: 'bot', exp: EXP, groups: ['agents'] }, want: { username: 'bot', subject: 'bot', groups: ['agents'], expiresAt: EXP * 1000 } },
    { name: 'a single-string groups claim is one group', claims: { sub: 'bot', exp: EXP, groups: 'agents' }, want: { groups: ['agents'] } },
    { name: 'no groups claim means no groups', claims: { sub: 'bot', exp: EXP }, want: { groups: [] } },
    { name: 'a dotted groups claim path is read', claims: { sub: 'bot', exp: EXP, realm_access: { roles: ['r'] } }, cfg: { groupsClaim: 'realm_access.roles' }, want: { groups: ['r'] } },
    { name: 'prefixes keep issuers apart', claims: { sub: 'bot', exp: EXP, groups: ['agents'] }, cfg: { usernamePrefix: 'idp:', groupsPrefix: 'idp:' }, want: { username: 'idp:bot', groups: ['idp:agents'] } },
    { name: 'an IdP cannot grant system: groups', claims: { sub: 'bot', exp: EXP, groups: ['system:masters', 'system:serviceaccounts:prod', 'ok'] }, want: { groups: ['ok'] } },
    { name: 'duplicate groups collapse', claims: { sub: 'bot', exp: EXP, groups: ['a', 'a', ''] }, want: { groups: ['a'] } },
    { name: 'another username claim', claims: { sub: 'id-1', exp: EXP, email: 'bot@example.com' }, cfg: { usernameClaim: 'email' }, want: { username: 'bot@example.com', subject: 'id-1' } },
    { name: 'actingFor from the configured claim', claims: { sub: 'bot', exp: EXP, act: { sub: 'alice' } }, cfg: { actingForClaim: 'act.sub' }, want: { actingFor: 'alice' } },
    { name: 'a groups claim of numbers is refused', claims: { sub: 'bot', exp: EXP, groups: [1, 2] }, want: 'claim-invalid' },
    { name: 'a groups claim object is refused', claims: { sub: 'bot', exp: EXP, groups: { a: 1 } }, want: 'claim-invalid' },
    { name: 'a missing username claim is refused', claims: { sub: 'bot', exp: EXP }, cfg: { usernameClaim: 'email' }, want: 'claim-invalid' },
    { name: 'a non-string actingFor claim is refused', claims: { sub: 'bot', exp: EXP, act: { sub: 5 } }, cfg: { actingForClaim: 'act.sub' }, want: 'claim-invalid' },
    { name: 'no sub is refused', claims: { exp: EXP }, want: 'claim-invalid' },
    { name: 'no exp is refused', claims: { sub: 'bot' }, want: 'claim-invalid' },
    { name: 'kubernetes.io claims from an OIDC issuer are ignored', claims: { sub: 'bot', exp: EXP, 'kubernetes.io': { namespace: 'x' } }, want: { serviceAccount: undefined, pod: undefined } },
  ];
  for (const c of cases) {
    test(`given ${c.name}`, () => {
      const r = toPrincipal(c.claims, oidc(c.cfg));
      if (typeof c.want === 'string') {
        assert.equal(r.ok, false);
        if (!r.ok) assert.equal(r.reason, c.want);
        return;
      }
      assert.ok(r.ok, r.ok ? '' : r.message);
      for (const [k, v] of Object.entries(c.want)) assert.deepEqual((r.principal as unknown as Record<string, unknown>)[k], v, k);
    });
  }
});

describe('toPrincipal: Kubernetes ServiceAccount issuers', () => {
  const cases: { name: string; claims: JWTPayload; self?: SelfPod; cfg?: Partial<IssuerOptions>; want: Partial<Principal> | string }[] = [
    {
      name: 'a token bound to this pod yields the SA username, the API server groups, the SA and the pod',
      claims: saClaims(),
      self: SELF,
      want: {
        username: 'system:serviceaccount:team-a:coder',
        groups: ['system:serviceaccounts', 'system:serviceaccounts:team-a', 'system:serviceaccount:team-a:coder'],
        serviceAccount: { namespace: 'team-a', name: 'coder', uid: 'sa-uid-1' },
        pod: { name: 'agent-7f9', uid: 'pod-uid-1' },
      },
    },
    { name: 'a groups claim in an SA token is not trusted', claims: saClaims({ groups: ['db-admins'] }), self: SELF, want: { groups: ['system:serviceaccounts', 'system:serviceaccounts:team-a', 'system:serviceaccount:team-a:coder'] } },
    { name: 'another pod name is refused', claims: saClaims({}, { name: 'other', uid: 'pod-uid-1' }), self: SELF, want: 'wrong-pod' },
    { name: 'the same pod name with another uid (re-created pod) is refused', claims: saClaims({}, { name: 'agent-7f9', uid: 'pod-uid-2' }), self: SELF, want: 'wrong-pod' },
    { name: 'a bound token when the sidecar does not know its pod is refused', claims: saClaims(), self: {}, want: 'wrong-pod' },
    { name: 'an unbound token is refused by default', claims: saClaims({}, null), self: SELF, want: 'wrong-pod' },
    { name: 'an unbound token is accepted when requirePodBinding is off', claims: saClaims({}, null), self: SELF, cfg: { requirePodBinding: false }, want: { pod: undefined } },
    { name: 'another namespace than this pod is refused', claims: saClaims(), self: { ...SELF, namespace: 'team-b' }, want: 'wrong-pod' },
    { name: 'no kubernetes.io claim is refused', claims: { sub: 'system:serviceaccount:team-a:coder', exp: EXP }, self: SELF, want: 'claim-invalid' },
    { name: 'a sub that disagrees with kubernetes.io is refused', claims: saClaims({ sub: 'system:serviceaccount:kube-system:admin' }), self: SELF, want: 'claim-invalid' },
    { name: 'a pod claim without uid is refused', claims: saClaims({}, { name: 'agent-7f9' }), self: SELF, want: 'claim-invalid' },
  ];
  for (const c of cases) {
    test(`given ${c.name}`, () => {
      const r = toPrincipal(c.claims, kube(c.cfg), c.self);
      if (typeof c.want === 'string') {
        assert.equal(r.ok, false);
        if (!r.ok) assert.equal(r.reason, c.want, r.message);
        return;
      }
      assert.ok(r.ok, r.ok ? '' : r.message);
      for (const [k, v] of Object.entries(c.want)) assert.deepEqual((r.principal as unknown as Record<string, unknown>)[k], v, k);
    });
  }
});

test('a Principal is frozen all the way down (cache hits share it)', () => {
  const r = toPrincipal(saClaims(), kube(), SELF);
  assert.ok(r.ok);
  assert.ok(Object.isFrozen(r.principal) && Object.isFrozen(r.principal.groups) && Object.isFrozen(r.principal.pod));
  assert.throws(() => (r.principal.groups as string[]).push('db-admins'), TypeError);
});
