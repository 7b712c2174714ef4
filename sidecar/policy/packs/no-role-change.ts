// Pack no-role-change: the session keeps the role it logged in with, and roles are not managed.
import type { SqlPack } from './types.ts';

export const noRoleChange: SqlPack = {
  name: 'no-role-change',
  description: 'Deny SET/RESET ROLE, SET SESSION AUTHORIZATION, set_config(\'role\'), DISCARD ALL, and CREATE/ALTER/DROP ROLE, GRANT/REVOKE role.',
  rules: [
    { id: 'no-role-change.switch', action: 'deny', reason: 'role-change', message: 'changing the session role is not allowed', match: { flags: ['roleChange'] } },
    {
      id: 'no-role-change.manage',
      action: 'deny',
      reason: 'role-change',
      message: 'managing roles is not allowed',
      match: { commands: ['CREATE_ROLE', 'CREATE_USER', 'CREATE_GROUP', 'ALTER_ROLE', 'DROP_ROLE', 'GRANT_ROLE', 'REVOKE_ROLE'] },
    },
  ],
  examples: [
    { sql: 'SET ROLE postgres', expect: 'deny', reason: 'role-change', why: 'switches role' },
    { sql: 'SET LOCAL ROLE postgres', expect: 'deny', reason: 'role-change', why: 'LOCAL still switches' },
    { sql: 'RESET ROLE', expect: 'deny', reason: 'role-change', why: 'undoes a role the sidecar set' },
    { sql: 'SET SESSION AUTHORIZATION DEFAULT', expect: 'deny', reason: 'role-change', why: 'session authorization' },
    { sql: "SELECT set_config('role', 'postgres', false)", expect: 'deny', reason: 'role-change', why: 'role through set_config' },
    { sql: 'DISCARD ALL', expect: 'deny', reason: 'role-change', why: 'includes SET SESSION AUTHORIZATION DEFAULT' },
    { sql: 'CREATE ROLE x LOGIN SUPERUSER', expect: 'deny', reason: 'role-change', why: 'creates a role' },
    { sql: 'GRANT pg_read_server_files TO me', expect: 'deny', reason: 'role-change', why: 'grants a role' },
    { sql: 'SET search_path = public', expect: 'allow', why: 'an ordinary setting' },
  ],
};
