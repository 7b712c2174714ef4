// Pack no-update-without-where: no UPDATE without a real WHERE, anywhere in the statement.
import type { SqlPack } from './types.ts';

export const noUpdateWithoutWhere: SqlPack = {
  name: 'no-update-without-where',
  description: 'Deny an UPDATE with no WHERE or one that does not depend on the row (constant-true, or a condition on a FROM table only), in CTEs, MERGE actions and SQL strings too.',
  rules: [{ id: 'no-update-without-where.update', action: 'deny', reason: 'update-without-where', message: 'UPDATE without a WHERE clause is not allowed', match: { flags: ['updateWithoutWhere'] } }],
  examples: [
    { sql: 'UPDATE users SET admin = true', expect: 'deny', reason: 'update-without-where', why: 'no WHERE' },
    { sql: "UPDATE users SET admin = true WHERE 'a' = 'a'", expect: 'deny', reason: 'update-without-where', why: 'a constant-true WHERE' },
    { sql: 'UPDATE users SET admin = true WHERE true OR id = 3', expect: 'deny', reason: 'update-without-where', why: 'OR true' },
    { sql: 'WITH u AS (UPDATE users SET a = 1 RETURNING id) SELECT * FROM u', expect: 'deny', reason: 'update-without-where', why: 'in a CTE' },
    { sql: 'MERGE INTO t USING s ON t.id = t.id WHEN MATCHED THEN UPDATE SET a = 1', expect: 'deny', reason: 'update-without-where', why: 't.id = t.id holds for every row' },
    { sql: 'UPDATE users SET a = 1 FROM flags f WHERE f.on', expect: 'deny', reason: 'update-without-where', why: 'the condition is on flags only' },
    { sql: 'UPDATE users SET a = 1 WHERE id = 7', expect: 'allow', why: 'a real WHERE' },
    { sql: 'MERGE INTO t USING s ON t.id = s.id WHEN MATCHED THEN UPDATE SET a = s.a', expect: 'allow', why: 'a join condition' },
    { sql: 'DELETE FROM users', expect: 'allow', why: 'DELETE is the other pack' },
  ],
};
