// Per-issuer requiredGroups: a verified principal without every required group is refused with `missing-group`, naming the issuer and the groups.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { IdentityOptionsError, resolveIssuer } from './options.ts';
import type { Principal } from './principal.ts';
import { missingGroups } from './verify-token.ts';

const principal = (groups: readonly string[]): Principal => ({ issuer: 'https://idp.test', subject: 's', username: 's', groups, expiresAt: 0 });
const issuer = (requiredGroups: readonly string[]): { issuer: string; requiredGroups: readonly string[] } => ({ issuer: 'https://idp.test', requiredGroups });

describe('missingGroups', () => {
  const cases: { name: string; required: string[]; groups: string[]; refused: string[] }[] = [
    { name: 'no requirement accepts a principal without groups', required: [], groups: [], refused: [] },
    { name: 'one required group present is accepted', required: ['ai-agents'], groups: ['x', 'ai-agents'], refused: [] },
    { name: 'every required group must be present (all, not any)', required: ['ai-agents', 'db'], groups: ['ai-agents'], refused: ['db'] },
    { name: 'group names match exactly (no prefix or case folding)', required: ['ai-agents'], groups: ['AI-agents', 'ai-agents-x'], refused: ['ai-agents'] },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const r = missingGroups(principal(c.groups), issuer(c.required));
      if (c.refused.length === 0) return assert.equal(r, undefined);
      assert.ok(r !== undefined);
      assert.equal(r.reason, 'missing-group');
      assert.ok(r.message.includes('https://idp.test'), r.message);
      for (const g of c.refused) assert.ok(r.message.includes(JSON.stringify(g)), r.message);
    });
  }
});

describe('requiredGroups option', () => {
  const base = { issuer: 'https://idp.test', audiences: ['chaperone'] };
  it('defaults to none and deduplicates', () => {
    assert.deepEqual(resolveIssuer(base, 0).requiredGroups, []);
    assert.deepEqual(resolveIssuer({ ...base, requiredGroups: ['a', 'a', 'b'] }, 0).requiredGroups, ['a', 'b']);
  });
  it('refuses an empty group name, naming the field', () => {
    assert.throws(() => resolveIssuer({ ...base, requiredGroups: [''] }, 2), (e: unknown) => e instanceof IdentityOptionsError && e.message.includes('issuers[2].requiredGroups'));
  });
});
