// Pack no-ddl: no schema changes (CREATE/ALTER/DROP, SELECT INTO, CREATE TABLE AS, rules, triggers).
import type { SqlPack } from './types.ts';

export const noDdl: SqlPack = {
  name: 'no-ddl',
  description: 'Deny DDL: CREATE/ALTER/DROP of tables, views, functions, triggers, rules, types, schemas; SELECT INTO; COMMENT.',
  rules: [{ id: 'no-ddl.kind', action: 'deny', reason: 'ddl', message: 'schema changes (DDL) are not allowed on this connection', match: { kinds: ['ddl'] } }],
  examples: [
    { sql: 'CREATE TABLE t (id int)', expect: 'deny', reason: 'ddl', why: 'creates a table' },
    { sql: 'DROP TABLE IF EXISTS users CASCADE', expect: 'deny', reason: 'ddl', why: 'drops a table' },
    { sql: 'ALTER TABLE users ADD COLUMN x int', expect: 'deny', reason: 'ddl', why: 'alters a table' },
    { sql: 'CREATE RULE r AS ON SELECT TO t DO INSTEAD DELETE FROM u', expect: 'deny', reason: 'ddl', why: 'a rule hides a write behind a read' },
    { sql: 'CREATE TRIGGER tr AFTER INSERT ON t FOR EACH ROW EXECUTE FUNCTION f()', expect: 'deny', reason: 'ddl', why: 'a trigger' },
    { sql: 'SELECT * INTO t2 FROM t', expect: 'deny', reason: 'ddl', why: 'SELECT INTO creates a table' },
    { sql: 'INSERT INTO t VALUES (1)', expect: 'allow', why: 'DML is not DDL' },
    { sql: 'SELECT 1', expect: 'allow', why: 'a read' },
  ],
};
