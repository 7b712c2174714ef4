// The built-in SQL packs by name, plus the invariant rules every policy carries.
import type { SqlRuleJson } from '../sql-rules.ts';
import type { SqlPack } from './types.ts';
import { noAdmin } from './no-admin.ts';
import { noDcl } from './no-dcl.ts';
import { noDdl } from './no-ddl.ts';
import { noDeleteWithoutWhere } from './no-delete-without-where.ts';
import { noDynamicCode } from './no-dynamic-code.ts';
import { noRoleChange } from './no-role-change.ts';
import { noServerFileAccess } from './no-server-file-access.ts';
import { noUpdateWithoutWhere } from './no-update-without-where.ts';
import { readOnly } from './read-only.ts';

export type { SqlPack, PackExample } from './types.ts';

export const SQL_PACKS: readonly SqlPack[] = [
  readOnly, noDdl, noDcl, noDeleteWithoutWhere, noUpdateWithoutWhere, noServerFileAccess, noRoleChange, noAdmin, noDynamicCode,
];

const BY_NAME: ReadonlyMap<string, SqlPack> = new Map(SQL_PACKS.map((p) => [p.name, p]));

export function sqlPack(name: string): SqlPack | undefined {
  return BY_NAME.get(name);
}

/**
 * Rules no policy can switch off (deny-overrides means no allow can beat them):
 *  - the server would lex later text differently from our parser (standard_conforming_strings off,
 *    a client_encoding such as SJIS whose multi-byte characters contain quote bytes): every later
 *    classification would be a guess;
 *  - a statement type this classifier does not know;
 *  - EXECUTE of a prepared statement the session never saw prepared (nothing to judge).
 */
export const SQL_INVARIANTS: readonly SqlRuleJson[] = [
  {
    id: 'chaperone.parser-divergence',
    action: 'deny',
    reason: 'parser-divergence',
    message: 'settings that make the server parse SQL differently (standard_conforming_strings off, a non-UTF8 client_encoding) are refused',
    match: { flags: ['parserDivergence'] },
  },
  {
    id: 'chaperone.unrecognized',
    action: 'deny',
    reason: 'unrecognized-statement',
    message: 'this statement type is not known to the classifier',
    match: { flags: ['unrecognized'] },
  },
  {
    id: 'chaperone.unresolved-execute',
    action: 'deny',
    reason: 'unresolved-execute',
    message: 'EXECUTE names a prepared statement this session did not PREPARE through the sidecar',
    match: { flags: ['unresolvedExecute'] },
  },
];
