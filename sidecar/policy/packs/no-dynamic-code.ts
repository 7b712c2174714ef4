// Pack no-dynamic-code: nothing that runs code the classifier cannot fully see.
import type { SqlPack } from './types.ts';

export const noDynamicCode: SqlPack = {
  name: 'no-dynamic-code',
  description: 'Deny DO blocks, CREATE FUNCTION/PROCEDURE bodies, and functions that run SQL strings (query_to_xml, ts_stat, dblink, schema_to_xml…).',
  rules: [{ id: 'no-dynamic-code.flag', action: 'deny', reason: 'dynamic-code', message: 'dynamic code (DO, function bodies, SQL in strings) is not allowed', match: { flags: ['dynamicCode'] } }],
  examples: [
    { sql: 'DO $$ BEGIN EXECUTE $q$DELETE FROM t$q$; END $$', expect: 'deny', reason: 'dynamic-code', why: 'EXECUTE inside DO is invisible' },
    { sql: "CREATE FUNCTION f() RETURNS void LANGUAGE plpgsql AS 'BEGIN DELETE FROM t; END'", expect: 'deny', reason: 'dynamic-code', why: 'a function body' },
    { sql: "SELECT query_to_xml('select 1', true, false, '')", expect: 'deny', reason: 'dynamic-code', why: 'SQL in a string' },
    { sql: "SELECT schema_to_xml('public', true, false, '')", expect: 'deny', reason: 'dynamic-code', why: 'reads every table in a schema' },
    { sql: 'SELECT lower(name) FROM users', expect: 'allow', why: 'an ordinary function' },
  ],
};
