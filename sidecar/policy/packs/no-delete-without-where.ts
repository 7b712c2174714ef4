// Pack no-delete-without-where: no DELETE without a real WHERE (anywhere in the statement), no TRUNCATE.
import type { SqlPack } from './types.ts';

export const noDeleteWithoutWhere: SqlPack = {
  name: 'no-delete-without-where',
  description: 'Deny a DELETE with no WHERE or a constant-true one (WHERE true, 1=1, id = id), in CTEs, MERGE actions and SQL strings too; deny TRUNCATE.',
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
    { sql: 'TRUNCATE users', expect: 'deny', reason: 'delete-without-where', why: 'TRUNCATE' },
    { sql: 'DELETE FROM users WHERE id = 42', expect: 'allow', why: 'a real WHERE' },
    { sql: 'DELETE FROM users WHERE CURRENT OF c', expect: 'allow', why: 'one row through a cursor' },
    { sql: 'UPDATE users SET a = 1', expect: 'allow', why: 'UPDATE is the other pack' },
  ],
};
