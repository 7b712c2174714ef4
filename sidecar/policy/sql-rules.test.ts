// SQL policy compile + evaluate: validation with field paths, globs, quantifiers, deny-overrides, fail closed.
import { before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { SqlClassifier, loadSqlParser } from '../protocols/postgres/sql-cache.ts';
import type { ClassifyResult } from '../protocols/postgres/sql-facts.ts';
import { compileSqlPolicy, evaluateSql, evaluateSqlDetailed, type SqlDecision } from './evaluate-sql.ts';
import type { CompiledSqlPolicy } from './sql-rules.ts';

let classifier: SqlClassifier;
before(async () => {
  classifier = new SqlClassifier(await loadSqlParser());
});

function compile(json: unknown): CompiledSqlPolicy {
  const r = compileSqlPolicy(json);
  assert.ok(r.ok, JSON.stringify(!r.ok && r.errors));
  return r.policy;
}
function decide(json: unknown, sql: string): SqlDecision {
  return evaluateSql(compile(json), classifier.classify(sql));
}
function errorsOf(json: unknown): { path: string; message: string }[] {
  const r = compileSqlPolicy(json);
  assert.equal(r.ok, false);
  return r.ok ? [] : [...r.errors];
}

describe('compileSqlPolicy validation', () => {
  const bad: [string, unknown, string, RegExp][] = [
    ['not an object', 42, '', /must be an object/],
    ['unknown top field', { defualt: 'allow' }, 'defualt', /unknown field/],
    ['bad default', { default: 'maybe' }, 'default', /allow.*deny/],
    ['unknown pack', { packs: ['read-onyl'] }, 'packs[0]', /unknown pack.*read-only/],
    ['missing id', { rules: [{ action: 'deny' }] }, 'rules[0].id', /must be a string/],
    ['bad action', { rules: [{ id: 'a', action: 'block' }] }, 'rules[0].action', /allow, deny, require-approval/],
    ['bad kind', { rules: [{ id: 'a', action: 'deny', match: { kinds: ['writes'] } }] }, 'rules[0].match.kinds[0]', /unknown value "writes"/],
    ['bad flag', { rules: [{ id: 'a', action: 'deny', match: { flags: ['copy'] } }] }, 'rules[0].match.flags[0]', /unknown value/],
    ['empty list', { rules: [{ id: 'a', action: 'deny', match: { tables: [] } }] }, 'rules[0].match.tables', /non-empty/],
    ['bad table glob', { rules: [{ id: 'a', action: 'deny', match: { tables: ['db.s.t'] } }] }, 'rules[0].match.tables[0]', /schema\.name/],
    ['unterminated quote', { rules: [{ id: 'a', action: 'deny', match: { tables: ['"abc'] } }] }, 'rules[0].match.tables[0]', /unterminated/],
    ['access without tables', { rules: [{ id: 'a', action: 'deny', match: { access: ['write'] } }] }, 'rules[0].match.access', /needs `tables`/],
    ['RE2 backreference', { rules: [{ id: 'a', action: 'deny', match: { pattern: '(a)\\1' } }] }, 'rules[0].match.pattern', /RE2 refused/],
    ['RE2 lookahead', { rules: [{ id: 'a', action: 'deny', match: { pattern: 'delete(?!.*where)' } }] }, 'rules[0].match.pattern', /RE2 refused/],
    ['unknown match field', { rules: [{ id: 'a', action: 'deny', match: { table: ['x'] } }] }, 'rules[0].match.table', /unknown field/],
    ['nested path', { rules: [{ id: 'a', action: 'deny', match: { anyOf: [{}, { not: { kinds: ['x'] } }] } }] }, 'rules[0].match.anyOf[1].not.kinds[0]', /unknown value/],
    ['bad reason', { rules: [{ id: 'a', action: 'deny', reason: 'No Way' }] }, 'rules[0].reason', /kebab-case/],
    ['approval on deny', { rules: [{ id: 'a', action: 'deny', approval: { groups: [] } }] }, 'rules[0].approval', /require-approval/],
    ['duplicate id', { rules: [{ id: 'a', action: 'deny' }, { id: 'a', action: 'allow' }] }, 'rules', /duplicate rule id/],
    ['id clashing with a pack', { packs: ['no-ddl'], rules: [{ id: 'no-ddl.kind', action: 'allow' }] }, 'rules', /duplicate/],
  ];
  for (const [what, json, path, msg] of bad) {
    it(`refuses ${what} at ${path || '(root)'}`, () => {
      const errs = errorsOf(json);
      const e = errs.find((x) => x.path === path);
      assert.ok(e, JSON.stringify(errs));
      assert.match(e.message, msg);
    });
  }
  it('defaults to deny', () => {
    assert.equal(compile({}).defaultAction, 'deny');
    assert.equal(decide({}, 'SELECT 1').action, 'deny');
    const d = decide({}, 'SELECT 1');
    assert.ok(d.action === 'deny' && d.reason === 'default-deny' && d.rule === 'chaperone.default');
  });
});

describe('evaluateSql', () => {
  it('deny overrides require-approval overrides allow, whatever the order', () => {
    const rules = [
      { id: 'allow-all', action: 'allow' },
      { id: 'approve-deletes', action: 'require-approval', match: { commands: ['DELETE'] }, approval: { groups: ['dba'], count: 2 } },
      { id: 'deny-users', action: 'deny', reason: 'protected', match: { tables: ['users'] } },
    ];
    assert.equal(decide({ rules }, 'SELECT 1').action, 'allow');
    const held = decide({ rules }, 'DELETE FROM orders WHERE id = 1');
    assert.ok(held.action === 'require-approval');
    assert.deepEqual(held.approval, { groups: ['dba'], count: 2 });
    assert.equal(held.rule, 'approve-deletes');
    const denied = decide({ rules: [...rules].reverse() }, 'DELETE FROM users WHERE id = 1');
    assert.ok(denied.action === 'deny' && denied.rule === 'deny-users' && denied.reason === 'protected');
  });

  it('refuses a multi-statement message whole, naming the statement', () => {
    const ev = evaluateSqlDetailed(compile({ default: 'allow', packs: ['no-ddl'] }), classifier.classify('SELECT 1; CREATE TABLE x (a int); SELECT 2'));
    assert.ok(ev.decision.action === 'deny' && ev.decision.statementIndex === 1 && ev.decision.rule === 'no-ddl.kind');
    assert.deepEqual(ev.statements.map((s) => s.action), ['allow', 'deny', 'allow']);
  });

  it('holds the whole message when one statement needs approval', () => {
    const d = decide({ default: 'allow', rules: [{ id: 'ap', action: 'require-approval', match: { commands: ['DELETE'] } }] }, 'SELECT 1; DELETE FROM t WHERE id = 1');
    assert.ok(d.action === 'require-approval' && d.statementIndex === 1);
  });

  it('refuses unparseable SQL with the parser message and position', () => {
    const d = decide({ default: 'allow' }, 'SELECT * FRM t');
    assert.ok(d.action === 'deny' && d.reason === 'parse-error' && d.statementIndex === null);
    assert.match(d.message, /syntax error at or near "FRM"/);
    assert.equal(d.cursorPosition, 9);
  });

  it('turns an exception inside a rule into a deny', () => {
    const p = compile({ default: 'allow' });
    const broken: CompiledSqlPolicy = { ...p, rules: [{ ...p.rules[0]!, matches: () => { throw new Error('bug'); } }] };
    const d = evaluateSql(broken, classifier.classify('SELECT 1'));
    assert.ok(d.action === 'deny' && d.reason === 'policy-error');
  });

  it('allows an empty query', () => {
    assert.equal(decide({}, '').action, 'allow');
  });

  it('keeps the invariants under default allow', () => {
    assert.equal(decide({ default: 'allow' }, 'SET standard_conforming_strings = off').action, 'deny');
    const real = classifier.classify('SELECT 1');
    assert.ok(real.ok);
    const fake: ClassifyResult = { ok: true, cache: 'miss', statements: [{ ...real.statements[0]!, flags: ['unrecognized'] }] };
    assert.equal(evaluateSql(compile({ default: 'allow', rules: [{ id: 'all', action: 'allow' }] }), fake).action, 'deny');
  });
});

describe('table and function matching', () => {
  const deny = (tables: string[]) => ({ default: 'allow', rules: [{ id: 'd', action: 'deny', match: { tables } }] });
  const allow = (tables: string[], extra: object = {}) => ({ default: 'deny', ...extra, rules: [{ id: 'a', action: 'allow', match: { tables } }] });
  const cases: [string, unknown, string, string][] = [
    ['deny glob matches qualified', deny(['billing.*']), 'SELECT * FROM billing.cards', 'deny'],
    ['deny glob ignores other schema', deny(['billing.*']), 'SELECT * FROM public.cards', 'allow'],
    ['deny matches an unqualified name in any schema', deny(['billing.cards']), 'SELECT * FROM cards', 'deny'],
    ['deny with pinned schema resolves unqualified', { ...deny(['billing.cards']), unqualifiedSchema: 'public' }, 'SELECT * FROM cards', 'allow'],
    ['pinned schema refuses search_path changes', { ...deny(['billing.cards']), unqualifiedSchema: 'public' }, 'SET search_path = billing', 'deny'],
    ['name-only glob matches any schema', deny(['cards']), 'SELECT * FROM x.cards', 'deny'],
    ['unquoted glob folds case', deny(['Billing.Cards']), 'SELECT * FROM billing.cards', 'deny'],
    ['quoted glob is exact', deny(['"Cards"']), 'SELECT * FROM cards', 'allow'],
    ['quoted glob matches quoted name', deny(['"Cards"']), 'SELECT * FROM "Cards"', 'deny'],
    ['access narrows', { default: 'allow', rules: [{ id: 'd', action: 'deny', match: { tables: ['t'], access: ['write'] } }] }, 'SELECT * FROM t', 'allow'],
    ['allow needs every table', allow(['public.*']), 'SELECT * FROM public.a JOIN billing.b ON true', 'deny'],
    ['allow covers all-public', allow(['public.*']), 'SELECT * FROM public.a JOIN public.b ON true', 'allow'],
    ['allow needs at least one table', allow(['public.*']), 'SELECT 1', 'deny'],
    ['allow does not take unqualified as public', allow(['public.*']), 'SELECT * FROM a', 'deny'],
    ['allow takes unqualified as the pinned schema', allow(['public.*'], { unqualifiedSchema: 'public' }), 'SELECT * FROM a', 'allow'],
    ['function glob', { default: 'allow', rules: [{ id: 'd', action: 'deny', match: { functions: ['pg_sleep*'] } }] }, 'SELECT pg_catalog.pg_sleep_for($$1s$$)', 'deny'],
    ['allow functions needs all', { default: 'deny', rules: [{ id: 'a', action: 'allow', match: { functions: ['lower'] } }] }, 'SELECT lower(x), upper(x) FROM t', 'deny'],
    ['allow pg_catalog function unqualified', { default: 'deny', rules: [{ id: 'a', action: 'allow', match: { functions: ['pg_catalog.lower'] } }] }, 'SELECT lower(x) FROM t', 'allow'],
    ['not flips the quantifier', { default: 'allow', rules: [{ id: 'd', action: 'deny', match: { not: { tables: ['public.*'] } } }] }, 'SELECT * FROM public.a, billing.b', 'deny'],
    ['unless exempts only when it fully holds', { default: 'allow', rules: [{ id: 'd', action: 'deny', match: { kinds: ['write'] }, unless: { tables: ['scratch.*'] } }] }, 'INSERT INTO scratch.a SELECT * FROM public.b', 'deny'],
    ['unless exempts', { default: 'allow', rules: [{ id: 'd', action: 'deny', match: { kinds: ['write'] }, unless: { tables: ['scratch.*'] } }] }, 'INSERT INTO scratch.a VALUES (1)', 'allow'],
    ['command glob', { default: 'allow', rules: [{ id: 'd', action: 'deny', match: { commands: ['drop_*'] } }] }, 'DROP VIEW v', 'deny'],
    ['pattern on normalized text', { default: 'allow', rules: [{ id: 'd', action: 'deny', match: { pattern: 'pg_sleep\\(\\?\\)' } }] }, 'SELECT /* x */ PG_SLEEP(100)', 'deny'],
    ['pattern does not see literals', { default: 'allow', rules: [{ id: 'd', action: 'deny', match: { pattern: 'secret' } }] }, "SELECT 'secret'", 'allow'],
    ['settings glob', { default: 'allow', rules: [{ id: 'd', action: 'deny', match: { settings: ['statement_*'] } }] }, 'SET statement_timeout = 0', 'deny'],
    ['anyOf', { default: 'deny', rules: [{ id: 'a', action: 'allow', match: { anyOf: [{ kinds: ['transaction'] }, { commands: ['SHOW'] }] } }] }, 'SHOW work_mem', 'allow'],
  ];
  for (const [what, json, sql, want] of cases) {
    it(`${what}: ${sql} → ${want}`, () => assert.equal(decide(json, sql).action, want));
  }
});

describe('decision memo per cache entry', () => {
  const json = { default: 'allow', packs: ['no-update-without-where'], rules: [{ id: 'no-secrets', action: 'deny', match: { tables: ['secrets'] } }] };

  it('gives a normalized hit the decision the uncached evaluation gives, whatever the literals', async () => {
    const p = compile(json);
    const fresh = new SqlClassifier(await loadSqlParser());
    for (const sql of ['UPDATE t SET a = 1', 'UPDATE t SET a = 2', "UPDATE t SET a = 'x' WHERE id = 3", "UPDATE t SET a = 'y' WHERE id = 4", 'SELECT * FROM secrets WHERE id = 5', 'SELECT * FROM secrets WHERE id = 6']) {
      const cached = fresh.classify(sql);
      assert.ok(cached.ok);
      const { keys: _k, ...uncached } = cached;
      assert.deepEqual(evaluateSql(p, cached), evaluateSql(p, uncached), sql);
    }
  });

  it('keeps statementIndex the message\'s own and ignores a key passed with other facts', () => {
    const p = compile(json);
    classifier.classify('SELECT * FROM secrets WHERE id = 1');
    const hit = classifier.classify('SELECT 1; SELECT * FROM secrets WHERE id = 2');
    assert.ok(hit.ok);
    const d = evaluateSql(p, hit);
    assert.ok(d.action === 'deny' && d.statementIndex === 1);
    const one = classifier.classify('SELECT * FROM secrets WHERE id = 3');
    assert.ok(one.ok && one.keys !== undefined);
    const d0 = evaluateSql(p, one);
    assert.ok(d0.action === 'deny' && d0.statementIndex === 0);
    // Other facts under the entry's key (as a caller that resolved EXECUTE and kept the keys would pass): evaluated afresh.
    const other: ClassifyResult = { ...one, statements: [{ ...one.statements[0]!, tables: [] }] };
    assert.equal(evaluateSql(p, other).action, 'allow');
  });
});
