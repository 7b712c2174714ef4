// judge(): the read-only connection's own wall (chaperone.read-only) next to the policy.
import { before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { compileSqlPolicy } from '../../policy/evaluate-sql.ts';
import type { CompiledSqlPolicy } from '../../policy/sql-rules.ts';
import { judge } from './judge.ts';
import { SqlClassifier, loadSqlParser } from './sql-cache.ts';
import { PreparedRegistry } from './sql-prepared.ts';

let cls: SqlClassifier;
let allowAll: CompiledSqlPolicy;
before(async () => {
  cls = new SqlClassifier(await loadSqlParser());
  const r = compileSqlPolicy({ default: 'allow' });
  assert.ok(r.ok);
  allowAll = r.policy;
});

function decide(sql: string): { action: string; rule: string | null } {
  const j = judge({ cls, policy: allowAll, prepared: new PreparedRegistry(), readOnly: true }, sql, 'simple');
  return { action: j.decision.action, rule: j.decision.rule };
}

describe('judge: read-only connection wall', () => {
  // pgjdbc's setReadOnly(true) and Spring's readOnly transactions send these: the connection already is read-only.
  const turnOn = [
    'BEGIN READ ONLY',
    'START TRANSACTION ISOLATION LEVEL SERIALIZABLE, READ ONLY, DEFERRABLE',
    'SET TRANSACTION READ ONLY',
    'SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY',
    'SET default_transaction_read_only = on',
    "SET default_transaction_read_only TO 'true'",
    'SET default_transaction_read_only = 1',
    'SET LOCAL transaction_read_only = on',
    "SELECT set_config('default_transaction_read_only', 'on', false)",
  ];
  for (const sql of turnOn) {
    it(`given ${JSON.stringify(sql)}, allows it (read-only stays on)`, () => {
      assert.equal(decide(sql).action, 'allow');
    });
  }
  const turnOff = [
    'BEGIN READ WRITE',
    'BEGIN READ ONLY, READ WRITE',
    'SET TRANSACTION READ WRITE',
    'SET SESSION CHARACTERISTICS AS TRANSACTION READ WRITE',
    'SET default_transaction_read_only = off',
    "SET default_transaction_read_only = 'of'",
    'SET default_transaction_read_only = 0',
    'SET default_transaction_read_only TO DEFAULT',
    'RESET default_transaction_read_only',
    'RESET ALL',
    'DISCARD ALL',
    "SELECT set_config('default_transaction_read_only', 'off', false)",
    "SELECT set_config('default_transaction_read_only', current_setting('x.y'), false)",
    'SET transaction_read_only = on; SET transaction_read_only = off',
  ];
  for (const sql of turnOff) {
    it(`given ${JSON.stringify(sql)}, refuses it`, () => {
      assert.equal(decide(sql).action, 'deny');
    });
  }
  it('given the same shape with on then off, the cached answer for on is not reused for off', () => {
    assert.equal(decide("SET default_transaction_read_only = 'on'").action, 'allow');
    assert.equal(decide("SET default_transaction_read_only = 'off'").action, 'deny');
    assert.equal(decide("SET default_transaction_read_only = 'on'").action, 'allow');
  });
});
