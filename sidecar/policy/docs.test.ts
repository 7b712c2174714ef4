// docs/sql-policy.md lists every built-in pack and every flag, so the doc stays true as packs are added.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { SQL_PACKS } from './packs/index.ts';
import { SQL_FLAGS } from './sql-rules.ts';

const doc = readFileSync(new URL('../../docs/sql-policy.md', import.meta.url), 'utf8');

test('docs/sql-policy.md lists every built-in pack', () => {
  for (const p of SQL_PACKS) assert.ok(doc.includes(`| \`${p.name}\` |`), `pack ${p.name} missing from docs/sql-policy.md`);
});

test('docs/sql-policy.md lists every statement flag', () => {
  for (const f of SQL_FLAGS) assert.ok(doc.includes(`\`${f}\``), `flag ${f} missing from docs/sql-policy.md`);
});
