// Runs the SQL evasion corpus (test/corpus/sql/evasions.ts): facts and decisions for every trick.
import { before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { ALLOWLIST, CUSTOM, EVASIONS, type EvasionCase, type Outcome } from '../../../test/corpus/sql/evasions.ts';
import { compileSqlPolicy, evaluateSql } from '../../policy/evaluate-sql.ts';
import type { CompiledSqlPolicy } from '../../policy/sql-rules.ts';
import { SqlClassifier, loadSqlParser } from './sql-cache.ts';
import type { ClassifyResult, StatementFacts } from './sql-facts.ts';
import { PreparedRegistry } from './sql-prepared.ts';

let classifier: SqlClassifier;
before(async () => {
  classifier = new SqlClassifier(await loadSqlParser());
});

function policy(json: unknown): CompiledSqlPolicy {
  const r = compileSqlPolicy(json);
  assert.ok(r.ok, JSON.stringify(!r.ok && r.errors));
  return r.policy;
}

function classifyCase(c: EvasionCase): ClassifyResult {
  const r = classifier.classify(c.sql);
  if (!c.prepared || !r.ok) return r;
  const reg = new PreparedRegistry();
  const p = classifier.classify(c.prepared);
  assert.ok(p.ok);
  for (const f of p.statements) reg.observe(f);
  return { ...r, statements: r.statements.map((f) => reg.resolve(f)) };
}

function tableKeys(f: StatementFacts): string[] {
  return f.tables.map((t) => `${t.schema === null ? '' : `${t.schema}.`}${t.name}:${t.access}`);
}

function checkFacts(c: EvasionCase, f: StatementFacts): void {
  const e = c.facts ?? {};
  if (e.kind !== undefined) assert.equal(f.kind, e.kind, 'kind');
  if (e.command !== undefined) assert.equal(f.command, e.command, 'command');
  for (const x of e.commands ?? []) assert.ok(f.commands.includes(x), `commands ${JSON.stringify(f.commands)} lack ${x}`);
  for (const x of e.tables ?? []) assert.ok(tableKeys(f).includes(x), `tables ${JSON.stringify(tableKeys(f))} lack ${x}`);
  for (const x of e.noTables ?? []) assert.ok(!f.tables.some((t) => t.name === x), `tables ${JSON.stringify(tableKeys(f))} must not hold ${x}`);
  for (const x of e.functions ?? []) assert.ok(f.functions.includes(x), `functions ${JSON.stringify(f.functions)} lack ${x}`);
  for (const x of e.flags ?? []) assert.ok(f.flags.includes(x), `flags ${JSON.stringify(f.flags)} lack ${x}`);
  for (const x of e.noFlags ?? []) assert.ok(!f.flags.includes(x), `flags ${JSON.stringify(f.flags)} must not hold ${x}`);
  if (e.hasWhere !== undefined) assert.equal(f.hasWhere, e.hasWhere, 'hasWhere');
}

function decide(json: unknown, r: ClassifyResult): Outcome {
  return evaluateSql(policy(json), r).action;
}

describe('SQL evasion corpus', () => {
  it('has unique case names and asserts something in every case', () => {
    const names = new Set(EVASIONS.map((c) => c.name));
    assert.equal(names.size, EVASIONS.length);
    for (const c of EVASIONS) assert.ok(c.parseError || c.facts || c.statements !== undefined || c.readOnly === 'deny', c.name);
  });

  for (const c of EVASIONS) {
    it(`${c.name}: ${c.why}`, () => {
      const r = classifyCase(c);
      if (c.parseError) {
        assert.equal(r.ok, false, 'must not parse');
      } else if (c.facts || c.statements !== undefined) {
        assert.ok(r.ok, JSON.stringify(!r.ok && r.error));
        if (c.statements !== undefined) assert.equal(r.statements.length, c.statements, 'statement count');
        const f = r.statements[c.at ?? 0];
        if (c.facts) {
          assert.ok(f, `no statement ${c.at ?? 0}`);
          checkFacts(c, f);
        }
      }
      assert.equal(decide({ default: 'allow', packs: ['read-only'] }, r), c.readOnly, 'read-only');
      for (const [pack, want] of Object.entries(c.packs ?? {})) assert.equal(decide({ default: 'allow', packs: [pack] }, r), want, `pack ${pack}`);
      if (c.custom) assert.equal(decide(CUSTOM, r), c.custom, 'custom policy');
      if (c.allowlist) assert.equal(decide(ALLOWLIST, r), c.allowlist, 'allow-list policy');
    });
  }

  it('a denied statement in a multi-statement message names its index', () => {
    const d = evaluateSql(policy({ default: 'allow', packs: ['read-only'] }), classifier.classify('SELECT 1; SELECT 2; DROP TABLE x'));
    assert.equal(d.action, 'deny');
    assert.equal(d.action === 'deny' && d.statementIndex, 2);
  });
});
