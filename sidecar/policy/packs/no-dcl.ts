// Pack no-dcl: no privilege or role management (GRANT/REVOKE, roles, policies, ownership).
import type { SqlPack } from './types.ts';

export const noDcl: SqlPack = {
  name: 'no-dcl',
  description: 'Deny DCL: GRANT/REVOKE, CREATE/ALTER/DROP ROLE, ALTER DEFAULT PRIVILEGES, row-level security policies, ownership changes, role switches.',
  rules: [{ id: 'no-dcl.kind', action: 'deny', reason: 'dcl', message: 'privilege and role changes (DCL) are not allowed on this connection', match: { kinds: ['dcl'] } }],
  examples: [
    { sql: 'GRANT SELECT ON users TO public', expect: 'deny', reason: 'dcl', why: 'a grant' },
    { sql: 'ALTER DEFAULT PRIVILEGES GRANT ALL ON TABLES TO bob', expect: 'deny', reason: 'dcl', why: 'default privileges' },
    { sql: 'ALTER TABLE users OWNER TO bob', expect: 'allow', why: 'ALTER TABLE … OWNER is DDL (use no-ddl)' },
    { sql: 'SELECT 1', expect: 'allow', why: 'a read' },
  ],
};
