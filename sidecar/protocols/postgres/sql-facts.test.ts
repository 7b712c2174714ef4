// Classification facts, table-driven: given SQL X, the statement has kind K, command C, tables T, flags F.
import { before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { loadSqlParser } from './sql-cache.ts';
import { BASE_KIND, classifyUncached, splitQualifiedName, type ParseFn, type StatementFacts } from './sql-facts.ts';
import { PreparedRegistry } from './sql-prepared.ts';

let parse: ParseFn;
before(async () => {
  parse = await loadSqlParser();
});

function one(sql: string): StatementFacts {
  const r = classifyUncached(parse, sql);
  assert.ok(r.ok, JSON.stringify(!r.ok && r.error));
  const f = r.statements[0];
  assert.ok(f);
  return f;
}

describe('classify: kind and command', () => {
  const cases: [string, string, string][] = [
    ['SELECT 1', 'read', 'SELECT'],
    ['VALUES (1)', 'read', 'VALUES'],
    ['SHOW search_path', 'utility', 'SHOW'],
    ['BEGIN', 'transaction', 'BEGIN'],
    ['COMMIT', 'transaction', 'COMMIT'],
    ['SAVEPOINT a', 'transaction', 'SAVEPOINT'],
    ['INSERT INTO t VALUES (1)', 'write', 'INSERT'],
    ['MERGE INTO t USING s ON t.id = s.id WHEN NOT MATCHED THEN INSERT VALUES (s.id)', 'write', 'MERGE'],
    ['REFRESH MATERIALIZED VIEW mv', 'write', 'REFRESH_MATERIALIZED_VIEW'],
    ['CREATE TABLE t (id int)', 'ddl', 'CREATE_TABLE'],
    ['CREATE INDEX ON t (id)', 'ddl', 'CREATE_INDEX'],
    ['ALTER TABLE t ADD COLUMN x int', 'ddl', 'ALTER_TABLE'],
    ['DROP VIEW v', 'ddl', 'DROP_VIEW'],
    ['DROP EXTENSION dblink', 'admin', 'DROP_EXTENSION'],
    ['DROP POLICY p ON t', 'dcl', 'DROP_POLICY'],
    ['CREATE MATERIALIZED VIEW mv AS SELECT 1', 'ddl', 'CREATE_MATERIALIZED_VIEW'],
    ['COMMENT ON TABLE t IS $$x$$', 'ddl', 'COMMENT'],
    ['GRANT SELECT ON t TO bob', 'dcl', 'GRANT'],
    ['REVOKE SELECT ON t FROM bob', 'dcl', 'REVOKE'],
    ['CREATE USER bob', 'dcl', 'CREATE_USER'],
    ['DROP ROLE bob', 'dcl', 'DROP_ROLE'],
    ['ALTER DEFAULT PRIVILEGES GRANT SELECT ON TABLES TO bob', 'dcl', 'ALTER_DEFAULT_PRIVILEGES'],
    ['CREATE POLICY p ON t USING (true)', 'dcl', 'CREATE_POLICY'],
    ['ANALYZE t', 'admin', 'ANALYZE'],
    ['REINDEX TABLE t', 'admin', 'REINDEX'],
    ['CREATE DATABASE d', 'admin', 'CREATE_DATABASE'],
    ["CREATE SERVER s FOREIGN DATA WRAPPER postgres_fdw OPTIONS (host 'x')", 'admin', 'CREATE_SERVER'],
    ['FETCH 10 FROM c', 'utility', 'FETCH'],
    ['DEALLOCATE ALL', 'utility', 'DEALLOCATE'],
    ['NOTIFY ch', 'write', 'NOTIFY'],
    ['LISTEN ch', 'utility', 'LISTEN'],
    ["PREPARE TRANSACTION 'x'", 'write', 'PREPARE'],
    ["COMMIT PREPARED 'x'", 'write', 'COMMIT_PREPARED'],
    ["ROLLBACK PREPARED 'x'", 'write', 'ROLLBACK_PREPARED'],
    ['COMMIT', 'transaction', 'COMMIT'],
    ['SET statement_timeout = 1000', 'utility', 'SET'],
    ['RESET statement_timeout', 'utility', 'RESET'],
    ['PREPARE p AS SELECT 1', 'read', 'SELECT'],
    ['DECLARE c CURSOR FOR SELECT 1', 'read', 'SELECT'],
  ];
  for (const [sql, kind, command] of cases) {
    it(`given ${sql}, kind ${kind} and command ${command}`, () => {
      const f = one(sql);
      assert.equal(f.kind, kind);
      assert.equal(f.command, command);
    });
  }
});

describe('classify: tables, functions, settings', () => {
  it('lists each table once with its strongest access', () => {
    const f = one('UPDATE a SET x = b.x FROM b WHERE a.id = b.id AND a.id IN (SELECT id FROM a)');
    assert.deepEqual(f.tables, [
      { schema: null, name: 'a', access: 'write' },
      { schema: null, name: 'b', access: 'read' },
    ]);
  });
  it('separates DELETE USING reads and MERGE sources', () => {
    assert.deepEqual(one('DELETE FROM s.a USING s.b WHERE a.id = b.id').tables.map((t) => t.access), ['write', 'read']);
    assert.deepEqual(one('MERGE INTO a USING b ON a.id = b.id WHEN MATCHED THEN DELETE').tables.map((t) => `${t.name}:${t.access}`), ['a:write', 'b:read']);
  });
  it('lists DROP TABLE targets', () => {
    assert.deepEqual(one('DROP TABLE s.a, b').tables.map((t) => `${t.schema}.${t.name}:${t.access}`), ['s.a:write', 'null.b:write']);
  });
  it('lowercases and qualifies functions', () => {
    assert.deepEqual(one('SELECT Lower(x), pg_catalog.UPPER(y), "MyFn"(1) FROM t').functions, ['lower', 'pg_catalog.upper', 'myfn']);
  });
  it('records settings with values', () => {
    const f = one("SET LOCAL search_path TO a, 'b'");
    assert.deepEqual(f.settings, [{ name: 'search_path', action: 'set', local: true, value: 'a, b', via: 'SET' }]);
    assert.ok(f.flags.includes('setConfig'));
  });
  it('gives statement text and hash per statement', () => {
    const r = classifyUncached(parse, 'SELECT 1;\n  SELECT 2 ; ');
    assert.ok(r.ok);
    assert.deepEqual(r.statements.map((s) => [s.index, s.text]), [[0, 'SELECT 1'], [1, 'SELECT 2']]);
    assert.match(r.statements[0]?.hash ?? '', /^[0-9a-f]{64}$/);
  });
  it('slices by the parser when the scanner cannot split (BEGIN ATOMIC, non-ASCII)', () => {
    const r = classifyUncached(parse, "CREATE FUNCTION f() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT 1; END; SELECT 'é'");
    assert.ok(r.ok);
    assert.deepEqual(r.statements.map((s) => s.text), ['CREATE FUNCTION f() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT 1; END', "SELECT 'é'"]);
  });
  it('splits regclass-style names like PostgreSQL', () => {
    assert.deepEqual(splitQualifiedName('Public."My Table"'), ['public', 'My Table']);
    assert.deepEqual(splitQualifiedName('seq'), ['seq']);
    assert.equal(splitQualifiedName('a b'), null);
  });
});

describe('classify: coverage of the parser', () => {
  it('knows every statement node type libpg-query 18 defines (none falls to unrecognized)', () => {
    const req = createRequire(import.meta.url);
    const types = readFileSync(join(dirname(req.resolve('@pgsql/types/package.json')), 'types.d.ts'), 'utf8');
    const stmts = [...types.matchAll(/export interface (\w+Stmt) /g)].map((m) => m[1] ?? '');
    const ignored = new Set(['RawStmt', 'SetOperationStmt', 'ReturnStmt', 'PLAssignStmt']); // never top-level nodes
    const missing = stmts.filter((s) => !ignored.has(s) && BASE_KIND[s] === undefined);
    assert.deepEqual(missing, []);
  });
});

describe('PreparedRegistry', () => {
  it('resolves EXECUTE to the PREPAREd statement and forgets on DEALLOCATE', () => {
    const reg = new PreparedRegistry();
    reg.observe(one('PREPARE p AS DELETE FROM t WHERE id = $1'));
    const exec = one('EXECUTE p(1)');
    assert.equal(exec.kind, 'admin');
    const resolved = reg.resolve(exec);
    assert.equal(resolved.kind, 'write');
    assert.equal(resolved.command, 'DELETE');
    assert.equal(resolved.text, 'EXECUTE p(1)');
    assert.ok(!resolved.flags.includes('unresolvedExecute'));
    reg.observe(one('DEALLOCATE p'));
    assert.equal(reg.resolve(exec).kind, 'admin');
  });
  it('merges a name prepared twice to the more restrictive reading', () => {
    const reg = new PreparedRegistry();
    reg.observe(one('PREPARE p AS SELECT 1'));
    reg.observe(one('PREPARE p AS DELETE FROM t'));
    const r = reg.resolve(one('EXECUTE p'));
    assert.equal(r.kind, 'write');
    assert.ok(r.commands.includes('DELETE'));
  });
  it('keeps the kind of functions in EXECUTE parameters', () => {
    const reg = new PreparedRegistry();
    reg.observe(one('PREPARE p(int) AS SELECT $1'));
    assert.equal(reg.resolve(one("EXECUTE p(pg_terminate_backend(1))")).kind, 'admin');
  });
  it('forgets everything on DISCARD ALL', () => {
    const reg = new PreparedRegistry();
    reg.observe(one('PREPARE p AS SELECT 1'));
    reg.observe(one('DISCARD ALL'));
    assert.equal(reg.size, 0);
  });
});
