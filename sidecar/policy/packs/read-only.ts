// Pack read-only: reads, transaction control and harmless utilities only; nothing that writes,
// locks rows, or turns a read-only session back into a read-write one.
import type { SqlPack } from './types.ts';

export const readOnly: SqlPack = {
  name: 'read-only',
  description: 'Allow only reads (SELECT, COPY TO STDOUT, SHOW, EXPLAIN, transaction control); deny writes, DDL, DCL, admin, row and advisory locks and read-write overrides.',
  rules: [
    {
      id: 'read-only.kind',
      action: 'deny',
      reason: 'not-read-only',
      message: 'this connection is read-only: only reads are allowed',
      match: { not: { kinds: ['read', 'transaction', 'utility'] } },
    },
    {
      id: 'read-only.row-locks',
      action: 'deny',
      reason: 'row-locks',
      message: 'this connection is read-only: SELECT … FOR UPDATE/SHARE, LOCK and advisory locks take locks that block other sessions',
      match: { flags: ['rowLocks'] },
    },
    {
      id: 'read-only.read-write-override',
      action: 'deny',
      reason: 'read-write-override',
      message: 'this connection is read-only: READ WRITE transactions, default_transaction_read_only, RESET ALL and DISCARD ALL are refused',
      match: { flags: ['readWriteOverride'] },
    },
  ],
  examples: [
    { sql: 'SELECT * FROM users WHERE id = 1', expect: 'allow', why: 'a plain read' },
    { sql: 'BEGIN; SELECT 1; COMMIT', expect: 'allow', why: 'transaction control is harmless' },
    { sql: 'EXPLAIN DELETE FROM users', expect: 'allow', why: 'EXPLAIN without ANALYZE only plans' },
    { sql: "COPY users TO STDOUT", expect: 'allow', why: 'COPY TO STDOUT is a read' },
    { sql: "SELECT query_to_xml('select 1', true, false, '')", expect: 'allow', why: 'the SQL string is itself a read' },
    { sql: 'DELETE FROM users WHERE id = 1', expect: 'deny', reason: 'not-read-only', why: 'a write' },
    { sql: 'WITH d AS (DELETE FROM users RETURNING *) SELECT * FROM d', expect: 'deny', reason: 'not-read-only', why: 'DML hidden in a CTE' },
    { sql: 'EXPLAIN ANALYZE DELETE FROM users', expect: 'deny', reason: 'not-read-only', why: 'EXPLAIN ANALYZE executes the DELETE' },
    { sql: "SELECT nextval('users_id_seq')", expect: 'deny', reason: 'not-read-only', why: 'nextval advances a sequence' },
    { sql: 'SELECT * FROM users FOR UPDATE', expect: 'deny', reason: 'row-locks', why: 'row locks are writes to the lock manager and the tuple header' },
    { sql: 'SELECT pg_advisory_lock(1)', expect: 'deny', reason: 'row-locks', why: 'an advisory lock blocks other sessions waiting on the key' },
    { sql: 'EXPLAIN (ANALYZE false, ANALYZE) DELETE FROM users', expect: 'deny', reason: 'not-read-only', why: 'the last ANALYZE wins: it executes' },
    { sql: 'BEGIN READ WRITE', expect: 'deny', reason: 'read-write-override', why: 'would undo default_transaction_read_only' },
    { sql: 'SET default_transaction_read_only = off', expect: 'deny', reason: 'read-write-override', why: 'would undo the upstream second wall' },
    { sql: "SELECT set_config('default_transaction_read_only', 'off', false)", expect: 'deny', reason: 'read-write-override', why: 'the same through set_config' },
    { sql: 'SET SESSION CHARACTERISTICS AS TRANSACTION READ WRITE', expect: 'deny', reason: 'read-write-override', why: 'the same, spelled the SQL-standard way' },
    { sql: 'RESET ALL', expect: 'deny', reason: 'read-write-override', why: 'resets default_transaction_read_only' },
    { sql: 'SELECT * INTO copy_of_users FROM users', expect: 'deny', reason: 'not-read-only', why: 'SELECT INTO creates a table' },
    { sql: 'SET ROLE admin', expect: 'deny', reason: 'not-read-only', why: 'role changes are DCL' },
    { sql: 'SELECT 1; DROP TABLE users', expect: 'deny', reason: 'not-read-only', why: 'a harmless first statement does not excuse the second' },
  ],
};
