// Pack no-delete-without-where: no DELETE without a real WHERE (anywhere in the statement), no TRUNCATE.
import type { SqlPack } from './types.ts';

export const noDeleteWithoutWhere: SqlPack = {
  name: 'no-delete-without-where',
  description: 'Deny a DELETE with no WHERE or one that does not depend on the row (WHERE true, 1=1, id = id, \'yes\', $1, a condition on a USING table only), in CTEs, MERGE actions and SQL strings too; deny TRUNCATE.',
  rules: [
    { id: 'no-delete-without-where.delete', action: 'deny', reason: 'delete-without-where', message: 'DELETE without a WHERE clause is not allowed', match: { flags: ['deleteWithoutWhere'] } },
    { id: 'no-delete-without-where.truncate', action: 'deny', reason: 'delete-without-where', message: 'TRUNCATE deletes every row and is not allowed', match: { commands: ['TRUNCATE'] } },
  ],
  examples: [
    { sql: 'DELETE FROM users', expect: 'deny', reason: 'delete-without-where', why: 'no WHERE' },
    { sql: 'DELETE FROM users WHERE true', expect: 'deny', reason: 'delete-without-where', why: 'a constant-true WHERE' },
    { sql: 'DELETE FROM users WHERE 1 = 1', expect: 'deny', reason: 'delete-without-where', why: 'a constant-true WHERE' },
    { sql: 'DELETE FROM users WHERE id = id OR false', expect: 'deny', reason: 'delete-without-where', why: 'id = id holds for every non-null id' },
    { sql: 'WITH d AS (DELETE FROM users RETURNING *) SELECT count(*) FROM d', expect: 'deny', reason: 'delete-without-where', why: 'in a CTE' },
    { sql: 'MERGE INTO t USING s ON true WHEN MATCHED THEN DELETE', expect: 'deny', reason: 'delete-without-where', why: 'a MERGE on true deletes everything' },
    { sql: "DELETE FROM users WHERE 'yes'", expect: 'deny', reason: 'delete-without-where', why: "'yes' is true and names no column of users" },
    { sql: 'DELETE FROM users USING banned b WHERE b.active', expect: 'deny', reason: 'delete-without-where', why: 'the condition is on banned only: every user goes' },
    { sql: 'TRUNCATE users', expect: 'deny', reason: 'delete-without-where', why: 'TRUNCATE' },
    { sql: 'DELETE FROM users WHERE id = 42', expect: 'allow', why: 'a real WHERE' },
    { sql: 'DELETE FROM users u USING banned b WHERE b.user_id = u.id', expect: 'allow', why: 'joined to the target row' },
    { sql: 'DELETE FROM users WHERE CURRENT OF c', expect: 'allow', why: 'one row through a cursor' },
    { sql: 'UPDATE users SET a = 1', expect: 'allow', why: 'UPDATE is the other pack' },
  ],
};
