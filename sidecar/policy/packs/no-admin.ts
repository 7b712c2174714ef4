// Pack no-admin: no server administration (ALTER SYSTEM, VACUUM, COPY PROGRAM, DO, CALL, extensions,
// backend signalling, server files) — everything the classifier puts in kind `admin`.
import type { SqlPack } from './types.ts';

export const noAdmin: SqlPack = {
  name: 'no-admin',
  description: 'Deny kind admin: ALTER SYSTEM, VACUUM/ANALYZE/CLUSTER/REINDEX, CHECKPOINT, LOAD, extensions, DO, CALL, COPY PROGRAM or server files, pg_terminate_backend & co.',
  rules: [{ id: 'no-admin.kind', action: 'deny', reason: 'admin', message: 'server administration is not allowed on this connection', match: { kinds: ['admin'] } }],
  examples: [
    { sql: "ALTER SYSTEM SET log_statement = 'none'", expect: 'deny', reason: 'admin', why: 'changes server config' },
    { sql: 'VACUUM FULL users', expect: 'deny', reason: 'admin', why: 'maintenance with an exclusive lock' },
    { sql: 'DO $$ BEGIN PERFORM 1; END $$', expect: 'deny', reason: 'admin', why: 'anonymous code' },
    { sql: 'CALL cleanup()', expect: 'deny', reason: 'admin', why: 'a procedure can do anything' },
    { sql: 'CREATE EXTENSION dblink', expect: 'deny', reason: 'admin', why: 'loads code' },
    { sql: "LOAD 'auto_explain'", expect: 'deny', reason: 'admin', why: 'loads a shared library' },
    { sql: 'SELECT pg_terminate_backend(1234)', expect: 'deny', reason: 'admin', why: 'kills another session' },
    { sql: "COPY t FROM PROGRAM 'id'", expect: 'deny', reason: 'admin', why: 'runs a program' },
    { sql: 'SELECT * FROM t', expect: 'allow', why: 'a read' },
    { sql: 'DELETE FROM t WHERE id = 1', expect: 'allow', why: 'DML is not admin' },
  ],
};
