// Every built-in pack proves itself: each example, evaluated under { default: 'allow', packs: [pack] }.
import { before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { SqlClassifier, loadSqlParser } from '../../protocols/postgres/sql-cache.ts';
import { compileSqlPolicy, evaluateSql } from '../evaluate-sql.ts';
import { SQL_PACKS } from './index.ts';

let classifier: SqlClassifier;
before(async () => {
  classifier = new SqlClassifier(await loadSqlParser());
});

for (const pack of SQL_PACKS) {
  describe(`pack ${pack.name}`, () => {
    it('compiles, has rule ids under its name, and has both allow and deny examples', () => {
      const r = compileSqlPolicy({ default: 'allow', packs: [pack.name] });
      assert.ok(r.ok, JSON.stringify(!r.ok && r.errors));
      for (const rule of pack.rules) assert.ok(rule.id.startsWith(`${pack.name}.`), rule.id);
      assert.ok(pack.examples.some((e) => e.expect === 'allow'), 'needs an allow example');
      assert.ok(pack.examples.some((e) => e.expect === 'deny'), 'needs a deny example');
    });
    for (const ex of pack.examples) {
      it(`given ${JSON.stringify(ex.sql)}, returns ${ex.expect}${ex.reason ? ` (${ex.reason})` : ''}: ${ex.why}`, () => {
        const r = compileSqlPolicy({ default: 'allow', packs: [pack.name] });
        assert.ok(r.ok);
        const d = evaluateSql(r.policy, classifier.classify(ex.sql));
        assert.equal(d.action, ex.expect, JSON.stringify(d));
        if (ex.reason !== undefined && d.action === 'deny') assert.equal(d.reason, ex.reason);
      });
    }
  });
}
