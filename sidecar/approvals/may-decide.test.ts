// mayDecide: approver groups gate decisions, and a requester never decides its own command.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Principal } from '../identity/principal.ts';
import { mayDecide, type HeldCommand } from './may-decide.ts';

function principal(username: string, groups: string[]): Principal {
  return { issuer: 'https://idp.test', subject: `sub-${username}`, username, groups, expiresAt: Date.now() / 1000 + 60 };
}

const held: HeldCommand = { subject: 'sub-agent', username: 'agent', approverGroups: [] };

const cases: Array<[string, Principal, HeldCommand, string[], string]> = [
  ['an approver-group member may decide', principal('alice', ['db-approvers']), held, ['db-approvers'], 'ok'],
  ['a non-member is refused', principal('mallory', ['developers']), held, ['db-approvers'], 'not-an-approver'],
  ['the requester cannot approve itself even as an approver', principal('agent', ['db-approvers']), held, ['db-approvers'], 'self-approval'],
  ['same subject under another username is still the requester', { ...principal('alias', ['db-approvers']), subject: 'sub-agent' }, held, ['db-approvers'], 'self-approval'],
  ['rule groups narrow the sidecar groups', principal('bob', ['db-approvers']), { ...held, approverGroups: ['dba-leads'] }, ['db-approvers', 'dba-leads'], 'not-a-rule-approver'],
  ['a member of both passes', principal('carol', ['db-approvers', 'dba-leads']), { ...held, approverGroups: ['dba-leads'] }, ['db-approvers', 'dba-leads'], 'ok'],
  ['no approver groups configured: nobody decides', principal('alice', ['db-approvers']), held, [], 'no-approver-groups'],
];

for (const [name, p, h, groups, want] of cases) {
  test(name, () => {
    const r = mayDecide(p, h, groups);
    assert.equal(r.ok ? 'ok' : r.reason, want);
  });
}
