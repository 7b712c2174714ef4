// The parse cache: normalized sharing, exact-only for literal-sensitive statements, LRU bounds, stats.
import { before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { SqlClassifier, loadSqlParser } from './sql-cache.ts';
import { classifyUncached, sha256Hex, type ParseFn } from './sql-facts.ts';

let parse: ParseFn;
before(async () => {
  parse = await loadSqlParser();
});

describe('SqlClassifier cache', () => {
  it('shares one normalized entry between literals and rebuilds text and hash per message', () => {
    const c = new SqlClassifier(parse);
    const a = c.classify('UPDATE t SET a = a + 1 WHERE id = 1');
    const b = c.classify('UPDATE t SET a = a + 5 WHERE id = 2');
    assert.ok(a.ok && b.ok);
    assert.equal(a.cache, 'miss');
    assert.equal(b.cache, 'normalized');
    assert.equal(b.statements[0]?.text, 'UPDATE t SET a = a + 5 WHERE id = 2');
    assert.equal(b.statements[0]?.hash, sha256Hex('UPDATE t SET a = a + 5 WHERE id = 2'));
    assert.equal(a.statements[0]?.fingerprint, b.statements[0]?.fingerprint);
    assert.equal(c.stats().entries, 1);
  });

  it('agrees with the uncached classifier on a hit', () => {
    const c = new SqlClassifier(parse);
    c.classify('SELECT * FROM a JOIN b ON a.id = b.id WHERE a.x = 1; DELETE FROM c WHERE id = 9');
    const hit = c.classify('SELECT * FROM a JOIN b ON a.id = b.id WHERE a.x = 22; DELETE FROM c WHERE id = 10');
    const ref = classifyUncached(parse, 'SELECT * FROM a JOIN b ON a.id = b.id WHERE a.x = 22; DELETE FROM c WHERE id = 10');
    assert.ok(hit.ok && ref.ok);
    assert.equal(hit.cache, 'normalized');
    assert.deepEqual(hit.statements, ref.statements);
  });

  const sensitive: [string, string][] = [
    ["SELECT set_config('search_path', 'x', false)", "SELECT set_config('role', 'x', false)"],
    ["SELECT query_to_xml('select 1', true, false, '')", "SELECT query_to_xml('delete from t', true, false, '')"],
    ['DELETE FROM t WHERE id = 2 OR 1 = 2', 'DELETE FROM t WHERE id = 2 OR 1 = 1'],
    ["EXPLAIN (ANALYZE 'off') DELETE FROM t WHERE id = 1", "EXPLAIN (ANALYZE 'on') DELETE FROM t WHERE id = 1"],
    ['EXPLAIN (ANALYZE 0) DELETE FROM t WHERE id = 1', 'EXPLAIN (ANALYZE 1) DELETE FROM t WHERE id = 1'],
    ["SELECT nextval('a')", "SELECT nextval('b')"],
    ["SELECT table_to_xml('public.a', true, false, '')", "SELECT table_to_xml('billing.cards', true, false, '')"],
    ["SET client_encoding = 'UTF8'", "SET client_encoding = 'SJIS'"],
    // Scanner/lexer disagreements that once shared a key with a harmless statement (cache poisoning):
    // a line comment ends at \r too, so the DROP runs;
    ['SELECT 1', 'SELECT 1 -- x\r; DROP TABLE t'],
    // 'a'<newline>'b' continues in the first part's E mode, so \' does not end the second part;
    ["SELECT E'a'\n'b' || 'c'", "SELECT E'a'\n'\\' || ' ; DROP TABLE t; -- '"],
    // the UESCAPE literal decides what the identifier is (here: secrets), whatever its quoting.
    ['SELECT * FROM U&"secret!0073" UESCAPE $$#$$', 'SELECT * FROM U&"secret!0073" UESCAPE $$!$$'],
    ["SELECT * FROM U&\"secret!0073\" UESCAPE '#'", "SELECT * FROM U&\"secret!0073\" UESCAPE E'!'"],
  ];
  for (const [first, second] of sensitive) {
    it(`does not let ${JSON.stringify(second)} reuse the facts of ${JSON.stringify(first)}`, () => {
      const c = new SqlClassifier(parse);
      c.classify(first);
      const r = c.classify(second);
      assert.ok(r.ok);
      assert.equal(r.cache, 'miss');
      assert.deepEqual(r, { ...classifyUncached(parse, second), cache: 'miss' });
    });
  }

  it('uses exact text only for the extended protocol', () => {
    const c = new SqlClassifier(parse);
    c.classify('SELECT * FROM t WHERE id = $1', 'extended');
    const again = c.classify('SELECT * FROM t WHERE id = $1', 'extended');
    const other = c.classify('SELECT * FROM t WHERE id = $2', 'extended');
    assert.ok(again.ok && other.ok);
    assert.equal(again.cache, 'exact');
    assert.equal(other.cache, 'miss');
  });

  it('evicts the least recently used entry at the entry bound', () => {
    const c = new SqlClassifier(parse, { maxEntries: 2 });
    c.classify('SELECT * FROM a');
    c.classify('SELECT * FROM b');
    c.classify('SELECT * FROM a'); // a is now the most recent
    c.classify('SELECT * FROM c'); // evicts b
    assert.equal(c.stats().evictions, 1);
    const a = c.classify('SELECT * FROM a');
    const b = c.classify('SELECT * FROM b');
    assert.ok(a.ok && b.ok);
    assert.notEqual(a.cache, 'miss');
    assert.equal(b.cache, 'miss');
  });

  it('stays under its byte bound', () => {
    const c = new SqlClassifier(parse, { maxBytes: 20_000 });
    for (let i = 0; i < 200; i++) c.classify(`SELECT col_${i} FROM table_${i}`);
    assert.ok(c.stats().bytes <= 20_000, String(c.stats().bytes));
    assert.ok(c.stats().entries < 200);
  });

  it('does not cache texts over maxCachedText', () => {
    const c = new SqlClassifier(parse, { maxCachedText: 10 });
    c.classify('SELECT * FROM long_table');
    assert.equal(c.stats().entries, 0);
  });

  it('does not cache parse errors and reports them typed', () => {
    const c = new SqlClassifier(parse);
    const r = c.classify('SELEC 1');
    assert.equal(r.ok, false);
    assert.ok(!r.ok && r.error.code === 'parse-error' && r.error.cursorPosition === 0 && /syntax error/.test(r.error.message));
    assert.equal(c.stats().entries, 0);
  });

  it('counts hits and misses', () => {
    const c = new SqlClassifier(parse);
    c.classify('SELECT 1');
    c.classify('SELECT 2');
    c.classify('SELECT 3');
    const s = c.stats();
    assert.equal(s.misses, 1);
    assert.equal(s.hits, 2);
    assert.equal(s.normalizedHits, 2);
    assert.ok(Math.abs(s.hitRate - 2 / 3) < 1e-9);
  });

  it('turns a non-SQL parser failure into a typed classifier error', () => {
    const c = new SqlClassifier(() => {
      throw new Error('boom');
    });
    const r = c.classify('SELECT 1');
    assert.ok(!r.ok && r.error.code === 'classifier-error');
  });
});

describe('SqlClassifier cache: differential check over the evasion corpus', () => {
  it('a cached answer always equals the uncached answer for the same text', async () => {
    const { EVASIONS } = await import('../../../test/corpus/sql/evasions.ts');
    const c = new SqlClassifier(parse);
    // Warm with each case, then ask for variants whose digits and string contents changed.
    const variants = (sql: string): string[] => [sql, sql.replace(/\d/g, (d) => String((Number(d) + 3) % 10)), sql.replace(/'([^']*)'/g, "'zz'")];
    for (const e of EVASIONS) c.classify(e.sql);
    let hits = 0;
    for (const e of EVASIONS) {
      for (const v of variants(e.sql)) {
        const got = c.classify(v);
        if (got.ok && got.cache !== 'miss') hits++;
        const ref = classifyUncached(parse, v);
        if (!got.ok || !ref.ok) {
          assert.equal(got.ok, ref.ok, v);
          continue;
        }
        assert.deepEqual(got.statements, ref.statements, v);
      }
    }
    assert.ok(hits > EVASIONS.length, `only ${hits} hits: the check would prove nothing`);
  });
});
