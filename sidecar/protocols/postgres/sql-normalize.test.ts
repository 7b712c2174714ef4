// The normalizer: literals stripped, identifiers kept, statement boundaries found like the parser's.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { normalizeSql, patternText } from './sql-normalize.ts';

const key = (s: string): string => normalizeSql(s).key;

describe('normalizeSql', () => {
  const same: [string, string, string][] = [
    ['SELECT * FROM t WHERE id = 1', 'SELECT * FROM t WHERE id = 2', 'numbers'],
    ["SELECT * FROM t WHERE n = 'a'", "SELECT * FROM t WHERE n = 'it''s'", 'strings with doubled quotes'],
    ["SELECT E'a\\'b'", "SELECT E'x'", 'E strings'],
    ['SELECT $$a;b$$', 'SELECT $$other$$', 'dollar quotes'],
    ['SELECT $x$ $$ $x$', 'SELECT $x$y$x$', 'tagged dollar quotes'],
    ['select  *\tfrom   t', 'SELECT * FROM t', 'case and blanks'],
    ['SELECT /* c */ 1 -- d', 'SELECT 2', 'comments'],
    ['SELECT 1.5e10', 'SELECT 3', 'floats'],
    ['SELECT 1_000', 'SELECT 7', 'underscored numbers'],
  ];
  for (const [a, b, what] of same) it(`shares a key across ${what}`, () => assert.equal(key(a), key(b)));

  const different: [string, string, string][] = [
    ['SELECT * FROM t1', 'SELECT * FROM t2', 'table names'],
    ['SELECT f(1)', 'SELECT g(1)', 'function names'],
    ['SELECT * FROM "Users"', 'SELECT * FROM users', 'quoted vs unquoted identifiers'],
    ['SELECT * FROM "a b"', 'SELECT * FROM "a c"', 'quoted identifiers'],
    ['SELECT $1', 'SELECT $2', 'parameter numbers'],
    ['SELECT 1 -- x\r; DROP TABLE t', 'SELECT 1', 'a line comment ended by a carriage return'],
    ["SELECT x'1f''; DROP TABLE t; --'", "SELECT x'1f'", "x'…' strings (no '' escape: two literals)"],
    ['SELECT 1 FROM t', 'SELECT 1 FROM T2', 'identifiers after numbers'],
    ["SELECT 'a'", 'SELECT 1', 'string vs number'],
    ["SELECT 'a'\n'b'", "SELECT 'a' 'b'", 'string continuation (needs a newline)'],
    ['SELECT É FROM t', 'SELECT é FROM t', 'non-ASCII case (PostgreSQL folds ASCII only)'],
    ['SELECT 0xff', 'SELECT 0xfe', 'hex-looking literals (kept verbatim)'],
  ];
  for (const [a, b, what] of different) it(`keeps ${what} apart`, () => assert.notEqual(key(a), key(b)));

  it('splits statements at top-level semicolons only', () => {
    const n = normalizeSql("SELECT 1; SELECT ';'; CREATE RULE r AS ON INSERT TO t DO (SELECT 1; SELECT 2);  -- tail");
    assert.equal(n.statements.length, 3);
    assert.equal(n.statements[1]?.normalized, 'select \0s');
  });

  it('gives exact statement spans (comments inside, blanks and the ; outside)', () => {
    const text = '  /* lead */ SELECT 1 ;\n DELETE FROM t  ';
    const spans = normalizeSql(text).statements.map((s) => text.slice(s.start, s.end));
    assert.deepEqual(spans, ['/* lead */ SELECT 1', 'DELETE FROM t']);
  });

  it('drops empty and comment-only statements', () => {
    assert.equal(normalizeSql(';; -- nothing\n;').statements.length, 0);
  });

  it('ends a line comment at a carriage return, as scan.l does', () => {
    assert.equal(normalizeSql('SELECT 1 -- x\r; DROP TABLE t').statements.length, 2);
  });

  const unshared = [
    "SELECT U&\"d!0061\" UESCAPE '!'",
    'SELECT U&"d!0061" UESCAPE $$!$$',
    "SELECT U&'d!0061' UESCAPE E'!'",
    "SELECT E'a'\n'b'",
    "SELECT E'a' -- c\n'\\' || ' ; DROP TABLE t; -- '",
  ];
  for (const bad of ["SELECT 'open", 'SELECT "open', 'SELECT $$open', 'SELECT /* open', 'SELECT 1\0', ...unshared]) {
    it(`marks ${JSON.stringify(bad)} incomplete`, () => assert.equal(normalizeSql(bad).complete, false));
  }

  it('shows literals as ? to patterns', () => {
    assert.equal(patternText(key("SELECT pg_sleep(10), 'x'")), 'select pg_sleep(?), ?');
  });
});
