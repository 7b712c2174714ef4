// SQL classification: a libpg-query parse tree → StatementFacts (kind, command, tables, functions, flags).
//
// Taxonomy (`kind`, ordered from least to most restrictive; a statement takes the MAX of its own
// command's kind and of everything found anywhere inside it):
//   read        SELECT, VALUES, TABLE, COPY … TO STDOUT, DECLARE CURSOR (of a read)
//   transaction BEGIN/START/COMMIT/ROLLBACK/SAVEPOINT/RELEASE/PREPARE TRANSACTION…, SET CONSTRAINTS
//   utility     SET/RESET/SHOW (ordinary settings), EXPLAIN (no ANALYZE), LISTEN/UNLISTEN/NOTIFY,
//               FETCH/MOVE/CLOSE, DEALLOCATE, DISCARD
//   write       INSERT, UPDATE, DELETE, MERGE, TRUNCATE, COPY … FROM STDIN, LOCK, REFRESH MATERIALIZED
//               VIEW; also a read that calls nextval/setval/lo_* writers, or holds DML in a CTE
//   ddl         CREATE/ALTER/DROP of tables, views, indexes, sequences, types, functions, triggers,
//               rules, schemas…; SELECT INTO and CREATE TABLE AS (they create a table); COMMENT
//   dcl         GRANT/REVOKE, CREATE/ALTER/DROP ROLE|USER|GROUP, GRANT role, ALTER DEFAULT PRIVILEGES,
//               REASSIGN OWNED, ALTER … OWNER TO, CREATE/ALTER/DROP POLICY, user mappings,
//               SET ROLE / RESET ROLE / SET SESSION AUTHORIZATION, set_config('role', …)
//   admin       ALTER SYSTEM, VACUUM, ANALYZE, CLUSTER, REINDEX, CHECKPOINT, LOAD, CREATE|ALTER|DROP
//               EXTENSION, LANGUAGE, FDW, SERVER, EVENT TRIGGER, ACCESS METHOD, PUBLICATION,
//               SUBSCRIPTION, DATABASE, TABLESPACE, DO, CALL, COPY to/from a server file or PROGRAM,
//               CREATE FUNCTION … LANGUAGE c|internal, server-file/admin functions (pg_read_file,
//               lo_export, dblink*, pg_terminate_backend, …), an EXECUTE whose PREPARE is unknown,
//               SET session_replication_role, and any statement type this file does not know (fail closed).
// EXPLAIN ANALYZE, PREPARE and DECLARE CURSOR classify as their inner statement (ANALYZE executes
// it; PREPARE's EXECUTE will). A plain EXPLAIN only plans: its inner tables are listed as reads and
// its inner DML does not raise the kind (functions found in it still do, to err toward refusing).
import { hash } from 'node:crypto';
import { functionEffect, isFlaggedFunctionName, type FunctionEffect } from './sql-functions.ts';
import { normalizeSql, patternText } from './sql-normalize.ts';

export type SqlKind = 'read' | 'transaction' | 'utility' | 'write' | 'ddl' | 'dcl' | 'admin';

/** Kinds from least to most restrictive. */
export const SQL_KINDS: readonly SqlKind[] = ['read', 'transaction', 'utility', 'write', 'ddl', 'dcl', 'admin'];

export type SqlFlag =
  /** A data-modifying CTE (WITH d AS (DELETE … RETURNING *) SELECT …). */
  | 'writesInCte'
  | 'explainAnalyze'
  | 'copyProgram'
  /** COPY to/from a server file, pg_read_file & co., lo_import/lo_export, dblink*. */
  | 'serverFileAccess'
  /** dblink*: a connection to another server (or to this one as another user). */
  | 'remoteAccess'
  /** Changes the session's effective role: SET/RESET ROLE, SET SESSION AUTHORIZATION, DISCARD ALL, set_config('role'). */
  | 'roleChange'
  /** Runs code the classifier cannot see: DO, CREATE FUNCTION bodies, SQL strings in query_to_xml/dblink, schema_to_xml. */
  | 'dynamicCode'
  /** SELECT … FOR UPDATE/SHARE, LOCK TABLE, or an advisory lock (pg_advisory_lock & co.). */
  | 'rowLocks'
  | 'selectInto'
  | 'sequenceWrite'
  | 'largeObjectWrite'
  | 'adminFunction'
  /** Undoes a read-only session: BEGIN/SET TRANSACTION READ WRITE, default_transaction_read_only off, RESET ALL, DISCARD ALL. */
  | 'readWriteOverride'
  /** Makes the server lex text differently from this parser: standard_conforming_strings off, a non-UTF-8 client_encoding. */
  | 'parserDivergence'
  /** EXECUTE of a statement this session's PREPARE registry does not know. */
  | 'unresolvedExecute'
  /** A statement type this classifier does not know: classified admin. */
  | 'unrecognized'
  /** An UPDATE/DELETE/MERGE whose WHERE (ON) is constant-true (WHERE true, 1=1, id = id, x OR true) or names no column of the target row. */
  | 'trivialWhere'
  /** A DELETE (anywhere: CTEs, MERGE actions, COPY (…), rules, SQL strings) with no WHERE, or a trivial one (see trivialWhere). */
  | 'deleteWithoutWhere'
  /** The same for UPDATE. */
  | 'updateWithoutWhere'
  | 'sleep'
  /** Changes a session setting (SET, RESET, set_config). */
  | 'setConfig';

export type TableAccess = 'read' | 'lock' | 'write';

export interface TableRef {
  /** null when the statement did not qualify the name: search_path decides which schema. */
  readonly schema: string | null;
  /** As PostgreSQL resolves it: unquoted names folded to lowercase, quoted names exact. */
  readonly name: string;
  readonly access: TableAccess;
  /**
   * Every table of `schema` (every schema when null), `name` then being '*': schema_to_xml('billing')
   * reads them all, database_to_xml() every one, table_to_xml(<not a constant>) any one.
   */
  readonly wildcard?: true;
}

export interface DmlOp {
  readonly command: 'INSERT' | 'UPDATE' | 'DELETE' | 'MERGE' | 'TRUNCATE' | 'COPY_FROM';
  /** schema.name or name. */
  readonly table: string;
  /** For UPDATE/DELETE (and MERGE UPDATE/DELETE actions): a WHERE that is not constant-true. */
  readonly hasWhere: boolean;
  /** Not the statement's own top-level command (a CTE, COPY (…), a rule action, a function body). */
  readonly nested: boolean;
}

export interface SettingChange {
  /** Lowercased parameter name; '*' for RESET ALL or a set_config whose name is not a constant. */
  readonly name: string;
  readonly action: 'set' | 'reset' | 'default';
  readonly local: boolean;
  /** The constant value, when there is one. */
  readonly value: string | null;
  readonly via: 'SET' | 'RESET' | 'set_config' | 'BEGIN' | 'DISCARD';
}

/** Everything about a statement that does not depend on its literal values: what the cache stores. */
export interface StatementShape {
  readonly kind: SqlKind;
  /**
   * The kind without the `admin` an EXECUTE adds while unresolved (equal to `kind` when there is no
   * EXECUTE): what the PREPARE registry combines with the prepared statement's kind, so that
   * CREATE TABLE x AS EXECUTE p stays ddl.
   */
  readonly kindBesidesExecute: SqlKind;
  /** The effective top-level command: EXPLAIN ANALYZE DELETE → DELETE, PREPARE p AS UPDATE → UPDATE. */
  readonly command: string;
  /** Every command the statement executes: the top one plus nested DML (CTEs, COPY (…), rules). */
  readonly commands: readonly string[];
  /** The wrapper around the effective command, if any. */
  readonly wrapper: 'EXPLAIN' | 'EXPLAIN_ANALYZE' | 'PREPARE' | 'DECLARE_CURSOR' | null;
  readonly tables: readonly TableRef[];
  /** Called functions: schema.name or name, lowercased. */
  readonly functions: readonly string[];
  readonly dml: readonly DmlOp[];
  readonly flags: readonly SqlFlag[];
  readonly settings: readonly SettingChange[];
  /** For a top-level UPDATE/DELETE: it has a WHERE that is not constant-true; null for other commands. */
  readonly hasWhere: boolean | null;
  /** PREPARE name AS … */
  readonly prepares: string | null;
  /** EXECUTE name(…) anywhere in the statement (EXPLAIN ANALYZE EXECUTE, CREATE TABLE AS EXECUTE). */
  readonly executes: readonly string[];
  /** DEALLOCATE name; '*' for DEALLOCATE ALL / DISCARD ALL. */
  readonly deallocates: readonly string[];
  /** The normalized text (literals as `?`): what RE2 rule patterns match. */
  readonly normalized: string;
  /** 16 hex chars of SHA-256 over the normalized text: same structure, same fingerprint. */
  readonly fingerprint: string;
  /** True when a fact was read from a literal value: such a shape is cached by exact text only. */
  readonly literalSensitive: boolean;
}

export interface StatementFacts extends StatementShape {
  /** Position in the message (0-based). */
  readonly index: number;
  /** The exact statement text, without the separating `;`. */
  readonly text: string;
  /** SHA-256 (hex) of `text`: what an approval binds to. */
  readonly hash: string;
}

export interface SqlParseError {
  readonly code: 'parse-error' | 'too-complex' | 'classifier-error';
  readonly message: string;
  /** 0-based character offset where the parser stopped, when it said. */
  readonly cursorPosition: number | null;
}

export type ClassifyResult =
  | {
      readonly ok: true;
      readonly statements: readonly StatementFacts[];
      readonly cache: 'miss' | 'exact' | 'normalized';
      /**
       * Per statement, the cache entry object its facts were rebuilt from (absent on a miss): every
       * message with that entry has the same facts but for index, text and hash, so a decision, which
       * reads nothing else, can be memoized by it (evaluate-sql.ts).
       */
      readonly keys?: readonly (object | undefined)[];
    }
  | { readonly ok: false; readonly error: SqlParseError };

/** The subset of libpg-query's parse result this file reads (kept loose: the tree is walked generically). */
export interface ParseTree {
  readonly stmts?: readonly { readonly stmt?: unknown; readonly stmt_location?: number; readonly stmt_len?: number }[];
}
export type ParseFn = (sql: string) => ParseTree;

type Obj = Record<string, unknown>;

export function kindRank(k: SqlKind): number {
  return SQL_KINDS.indexOf(k);
}
export function maxKind(a: SqlKind, b: SqlKind): SqlKind {
  return kindRank(a) >= kindRank(b) ? a : b;
}

// ---------------------------------------------------------------------------------------------
// Statement types → base kind and command name.

/** Every statement node type libpg-query 18 produces → its base kind (a test checks none is missing). */
export const BASE_KIND: Readonly<Record<string, SqlKind>> = {
  SelectStmt: 'read', DeclareCursorStmt: 'read', PrepareStmt: 'read',
  TransactionStmt: 'transaction', ConstraintsSetStmt: 'transaction',
  VariableShowStmt: 'utility', VariableSetStmt: 'utility', DiscardStmt: 'utility', ListenStmt: 'utility',
  // NOTIFY reaches every listening session (job queues, cache invalidation) and PostgreSQL sends it
  // from a read-only transaction too: a write to other sessions, not a session utility.
  UnlistenStmt: 'utility', NotifyStmt: 'write', DeallocateStmt: 'utility', ClosePortalStmt: 'utility',
  FetchStmt: 'utility', ExplainStmt: 'read', ExecuteStmt: 'read',
  InsertStmt: 'write', UpdateStmt: 'write', DeleteStmt: 'write', MergeStmt: 'write', TruncateStmt: 'write',
  LockStmt: 'write', RefreshMatViewStmt: 'write', CopyStmt: 'read',
  CreateStmt: 'ddl', CreateForeignTableStmt: 'ddl', AlterTableStmt: 'ddl', DropStmt: 'ddl', IndexStmt: 'ddl',
  ViewStmt: 'ddl', CreateTableAsStmt: 'ddl', CreateSeqStmt: 'ddl', AlterSeqStmt: 'ddl', CreateSchemaStmt: 'ddl',
  CreateFunctionStmt: 'ddl', AlterFunctionStmt: 'ddl', RenameStmt: 'ddl', CommentStmt: 'ddl', SecLabelStmt: 'ddl',
  CreateTrigStmt: 'ddl', RuleStmt: 'ddl', CompositeTypeStmt: 'ddl', CreateEnumStmt: 'ddl', CreateRangeStmt: 'ddl',
  AlterEnumStmt: 'ddl', CreateDomainStmt: 'ddl', AlterDomainStmt: 'ddl', DefineStmt: 'ddl', CreateCastStmt: 'ddl',
  CreateConversionStmt: 'ddl', CreateOpClassStmt: 'ddl', CreateOpFamilyStmt: 'ddl', AlterOpFamilyStmt: 'ddl',
  AlterOperatorStmt: 'ddl', AlterTypeStmt: 'ddl', CreateStatsStmt: 'ddl', AlterStatsStmt: 'ddl',
  AlterObjectSchemaStmt: 'ddl', AlterObjectDependsStmt: 'ddl', AlterCollationStmt: 'ddl',
  ImportForeignSchemaStmt: 'ddl', CreateTransformStmt: 'ddl', AlterTSDictionaryStmt: 'ddl',
  AlterTSConfigurationStmt: 'ddl', DropOwnedStmt: 'ddl', ReplicaIdentityStmt: 'ddl',
  GrantStmt: 'dcl', GrantRoleStmt: 'dcl', CreateRoleStmt: 'dcl', AlterRoleStmt: 'dcl', AlterRoleSetStmt: 'dcl',
  DropRoleStmt: 'dcl', AlterDefaultPrivilegesStmt: 'dcl', ReassignOwnedStmt: 'dcl', AlterOwnerStmt: 'dcl',
  CreatePolicyStmt: 'dcl', AlterPolicyStmt: 'dcl', CreateUserMappingStmt: 'dcl', AlterUserMappingStmt: 'dcl',
  DropUserMappingStmt: 'dcl',
  AlterSystemStmt: 'admin', VacuumStmt: 'admin', ClusterStmt: 'admin', ReindexStmt: 'admin', CheckPointStmt: 'admin',
  LoadStmt: 'admin', CreateExtensionStmt: 'admin', AlterExtensionStmt: 'admin', AlterExtensionContentsStmt: 'admin',
  CreatePLangStmt: 'admin', CreateFdwStmt: 'admin', AlterFdwStmt: 'admin', CreateForeignServerStmt: 'admin',
  AlterForeignServerStmt: 'admin', CreateEventTrigStmt: 'admin', AlterEventTrigStmt: 'admin', CreateAmStmt: 'admin',
  DoStmt: 'admin', CallStmt: 'admin', CreateSubscriptionStmt: 'admin', AlterSubscriptionStmt: 'admin',
  DropSubscriptionStmt: 'admin', CreatePublicationStmt: 'admin', AlterPublicationStmt: 'admin',
  CreatedbStmt: 'admin', DropdbStmt: 'admin', AlterDatabaseStmt: 'admin', AlterDatabaseSetStmt: 'admin',
  AlterDatabaseRefreshCollStmt: 'admin', CreateTableSpaceStmt: 'admin', DropTableSpaceStmt: 'admin',
  AlterTableSpaceOptionsStmt: 'admin', AlterTableMoveAllStmt: 'admin',
};

const COMMAND_NAME: Readonly<Record<string, string>> = {
  CreateStmt: 'CREATE_TABLE', CreateForeignTableStmt: 'CREATE_FOREIGN_TABLE', IndexStmt: 'CREATE_INDEX',
  ViewStmt: 'CREATE_VIEW', CreateSeqStmt: 'CREATE_SEQUENCE', AlterSeqStmt: 'ALTER_SEQUENCE',
  CreateFunctionStmt: 'CREATE_FUNCTION', AlterFunctionStmt: 'ALTER_FUNCTION', RenameStmt: 'RENAME',
  CreateTrigStmt: 'CREATE_TRIGGER', RuleStmt: 'CREATE_RULE', CreatePLangStmt: 'CREATE_LANGUAGE',
  CreateFdwStmt: 'CREATE_FOREIGN_DATA_WRAPPER', CreateForeignServerStmt: 'CREATE_SERVER',
  CreateEventTrigStmt: 'CREATE_EVENT_TRIGGER', CreateAmStmt: 'CREATE_ACCESS_METHOD', DoStmt: 'DO', CallStmt: 'CALL',
  CheckPointStmt: 'CHECKPOINT', CreatedbStmt: 'CREATE_DATABASE', DropdbStmt: 'DROP_DATABASE',
  AlterDatabaseStmt: 'ALTER_DATABASE', AlterDatabaseSetStmt: 'ALTER_DATABASE', CreateTableSpaceStmt: 'CREATE_TABLESPACE',
  DropTableSpaceStmt: 'DROP_TABLESPACE', VariableShowStmt: 'SHOW', NotifyStmt: 'NOTIFY', ListenStmt: 'LISTEN',
  UnlistenStmt: 'UNLISTEN', DeallocateStmt: 'DEALLOCATE', ClosePortalStmt: 'CLOSE', ExecuteStmt: 'EXECUTE',
  LockStmt: 'LOCK', RefreshMatViewStmt: 'REFRESH_MATERIALIZED_VIEW', TruncateStmt: 'TRUNCATE',
  ConstraintsSetStmt: 'SET_CONSTRAINTS', AlterRoleSetStmt: 'ALTER_ROLE', AlterDefaultPrivilegesStmt: 'ALTER_DEFAULT_PRIVILEGES',
  DiscardStmt: 'DISCARD', DeclareCursorStmt: 'DECLARE_CURSOR', ExplainStmt: 'EXPLAIN', AlterOwnerStmt: 'ALTER_OWNER',
  CreateSchemaStmt: 'CREATE_SCHEMA', CreateExtensionStmt: 'CREATE_EXTENSION', AlterExtensionStmt: 'ALTER_EXTENSION',
  AlterExtensionContentsStmt: 'ALTER_EXTENSION', CreatePolicyStmt: 'CREATE_POLICY', AlterPolicyStmt: 'ALTER_POLICY',
  CreatePublicationStmt: 'CREATE_PUBLICATION', CreateSubscriptionStmt: 'CREATE_SUBSCRIPTION', CommentStmt: 'COMMENT',
};

/** DropStmt removeType values whose object is server-level (admin) or access control (dcl). */
const DROP_KIND: Readonly<Record<string, SqlKind>> = {
  OBJECT_EXTENSION: 'admin', OBJECT_FDW: 'admin', OBJECT_FOREIGN_SERVER: 'admin', OBJECT_EVENT_TRIGGER: 'admin',
  OBJECT_LANGUAGE: 'admin', OBJECT_ACCESS_METHOD: 'admin', OBJECT_PUBLICATION: 'admin', OBJECT_SUBSCRIPTION: 'admin',
  OBJECT_DATABASE: 'admin', OBJECT_TABLESPACE: 'admin', OBJECT_POLICY: 'dcl', OBJECT_ROLE: 'dcl',
};
const DROP_RELATIONS = new Set(['OBJECT_TABLE', 'OBJECT_VIEW', 'OBJECT_MATVIEW', 'OBJECT_INDEX', 'OBJECT_SEQUENCE', 'OBJECT_FOREIGN_TABLE']);

/** Where a RangeVar is written to (or locked) rather than read: `${parentType}.${field}`. */
const TARGET_ACCESS: ReadonlyMap<string, TableAccess> = new Map<string, TableAccess>([
  ['InsertStmt.relation', 'write'], ['UpdateStmt.relation', 'write'], ['DeleteStmt.relation', 'write'],
  ['MergeStmt.relation', 'write'], ['TruncateStmt.relations', 'write'], ['LockStmt.relations', 'lock'],
  ['CreateStmt.relation', 'write'], ['@intoClause.rel', 'write'], ['@into.rel', 'write'], ['AlterTableStmt.relation', 'write'],
  ['IndexStmt.relation', 'write'], ['CreateTrigStmt.relation', 'write'], ['RuleStmt.relation', 'write'],
  ['ViewStmt.view', 'write'], ['RefreshMatViewStmt.relation', 'write'], ['RenameStmt.relation', 'write'],
  ['VacuumRelation.relation', 'write'], ['ClusterStmt.relation', 'write'], ['ReindexStmt.relation', 'write'],
  ['CreatePolicyStmt.table', 'write'], ['AlterPolicyStmt.table', 'write'], ['GrantStmt.objects', 'write'],
  ['AlterOwnerStmt.relation', 'write'], ['AlterObjectSchemaStmt.relation', 'write'], ['CreateSeqStmt.sequence', 'write'],
  ['AlterSeqStmt.sequence', 'write'], ['CommentStmt.object', 'write'], ['SecLabelStmt.object', 'write'],
  ['CreateForeignTableStmt.relation', 'write'], ['AlterObjectDependsStmt.relation', 'write'],
]);

/** TransactionStmt kinds of two-phase commit (outlive the session or finish another one's transaction). */
const TWO_PHASE: ReadonlySet<string> = new Set(['TRANS_STMT_PREPARE', 'TRANS_STMT_COMMIT_PREPARED', 'TRANS_STMT_ROLLBACK_PREPARED']);

const DML_TYPES = new Set(['InsertStmt', 'UpdateStmt', 'DeleteStmt', 'MergeStmt']);

// A walk deeper than this is refused rather than risking the JS stack (the PG parser nests deeply too).
const MAX_DEPTH = 800;
// SQL strings inside SQL strings (query_to_xml('select query_to_xml(…)')): nesting beyond this is refused.
const MAX_SQL_STRING_DEPTH = 3;

class TooComplex extends Error {}

function isObj(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
function str(v: unknown): string | undefined {
  return typeof v === 'string' ? v : undefined;
}
/** A list of String nodes → their svals. */
function names(v: unknown): string[] {
  if (!Array.isArray(v)) return [];
  const out: string[] = [];
  for (const item of v) {
    const s = isObj(item) && isObj(item.String) ? str(item.String.sval) : undefined;
    if (s !== undefined) out.push(s);
  }
  return out;
}
/** Unwraps `{ Type: {...} }` to [Type, fields]. */
function unwrap(v: unknown): [string, Obj] | undefined {
  if (!isObj(v)) return undefined;
  const keys = Object.keys(v);
  const k = keys[0];
  if (keys.length !== 1 || k === undefined) return undefined;
  const inner = v[k];
  if (!isObj(inner) || !/^[A-Z]/.test(k)) return undefined;
  return [k, inner];
}
function camelToSnake(s: string): string {
  return s.replace(/([a-z0-9])([A-Z])/g, '$1_$2').toUpperCase();
}
function qualified(schema: string | null, name: string): string {
  return schema === null ? name : `${schema}.${name}`;
}
/** PostgreSQL parse_bool: true, yes, on, 1 and their unique prefixes. */
export function isTrueish(v: string | null): boolean {
  if (v === null) return false;
  const s = v.trim().toLowerCase();
  if (s === 'on' || s === '1') return true;
  return s.length > 0 && ('true'.startsWith(s) || 'yes'.startsWith(s));
}
function isUtf8Name(v: string | null): boolean {
  if (v === null) return false;
  const s = v.trim().toLowerCase().replace(/[-_]/g, '');
  return s === 'utf8' || s === 'unicode';
}

interface TopInfo {
  command: string;
  wrapper: StatementShape['wrapper'];
}

/** One walk over one top-level statement. */
class Walk {
  kind: SqlKind = 'read';
  kindBesidesExecute: SqlKind = 'read';
  readonly tables = new Map<string, TableRef>();
  readonly functions = new Set<string>();
  readonly flags = new Set<SqlFlag>();
  readonly commands = new Set<string>();
  readonly dml: DmlOp[] = [];
  readonly settings: SettingChange[] = [];
  readonly executes = new Set<string>();
  readonly deallocates = new Set<string>();
  prepares: string | null = null;
  literalSensitive = false;
  private readonly cteScopes: (readonly string[])[] = [];
  private lockDepth = 0;
  private planOnly = 0;
  private depth = 0;
  private topNode: Obj | undefined;
  private topType = '';

  constructor(private readonly parse: ParseFn, private readonly sqlDepth: number) {}

  escalate(k: SqlKind): void {
    this.kind = maxKind(this.kind, k);
    this.kindBesidesExecute = maxKind(this.kindBesidesExecute, k);
  }

  /** An EXECUTE the registry has yet to resolve: admin until then. */
  escalateForExecute(): void {
    this.kind = maxKind(this.kind, 'admin');
  }

  /** Walks a top-level statement; returns its effective command. */
  top(type: string, node: Obj): TopInfo {
    this.topNode = node;
    this.topType = type;
    const info = topInfo(type, node);
    this.commands.add(info.command);
    this.visit(type, node);
    return info;
  }

  walk(value: unknown, parentType: string, field: string): void {
    if (Array.isArray(value)) {
      for (const v of value) this.walk(v, parentType, field);
      return;
    }
    if (!isObj(value)) return;
    if (++this.depth > MAX_DEPTH) throw new TooComplex('statement nests too deeply to classify');
    try {
      const wrapped = unwrap(value);
      if (wrapped) this.visit(wrapped[0], wrapped[1], parentType, field);
      else this.visit(bareType(value, field), value, parentType, field);
    } finally {
      this.depth--;
    }
  }

  private children(type: string, node: Obj, skip?: ReadonlySet<string>): void {
    for (const key of Object.keys(node)) {
      if (skip?.has(key)) continue;
      const v = node[key];
      if (typeof v === 'object' && v !== null) this.walk(v, type, key);
    }
  }

  private visit(type: string, node: Obj, parentType = '', field = ''): void {
    const base = BASE_KIND[type];
    if (base !== undefined && this.planOnly === 0) this.escalate(base);
    const handler = HANDLERS[type];
    if (handler) {
      handler(this, node, parentType, field);
      return;
    }
    if (type.endsWith('Stmt') && base === undefined) {
      // A statement type this file does not know: fail closed, but still walk inside it.
      this.flags.add('unrecognized');
      this.escalate('admin');
    }
    this.children(type, node);
  }

  // --- handlers' helpers -------------------------------------------------------------------

  /** Walks a node that may carry a WITH clause, scoping CTE names the way PostgreSQL does. */
  withScopes(node: Obj, rest: (skip: ReadonlySet<string>) => void): void {
    const w = node.withClause;
    if (!isObj(w) || !Array.isArray(w.ctes)) {
      rest(EMPTY);
      return;
    }
    const ctes = w.ctes.map((c) => unwrap(c)?.[1]).filter(isObj);
    const cteNames = ctes.map((c) => str(c.ctename) ?? '');
    const recursive = w.recursive === true;
    ctes.forEach((cte, i) => {
      // A non-recursive CTE sees only the CTEs before it; its own name there means the real table.
      this.cteScopes.push(recursive ? cteNames : cteNames.slice(0, i));
      try {
        const q = unwrap(cte.ctequery);
        if (q && DML_TYPES.has(q[0])) this.flags.add('writesInCte');
        this.walk(cte.ctequery, 'CommonTableExpr', 'ctequery');
      } finally {
        this.cteScopes.pop();
      }
    });
    this.cteScopes.push(cteNames);
    try {
      rest(WITH_SKIP);
    } finally {
      this.cteScopes.pop();
    }
  }

  rangeVar(node: Obj, access: TableAccess): void {
    const name = str(node.relname);
    if (name === undefined) return;
    const schema = str(node.schemaname) ?? null;
    // A CTE name shadows a table only where a query reads; a DML/DDL target is always a real table
    // (WITH t AS (SELECT 1) DELETE FROM t deletes from table t).
    if (schema === null && access === 'read' && this.cteScopes.some((scope) => scope.includes(name))) return;
    let a = access;
    if (a === 'read' && this.lockDepth > 0) a = 'lock';
    if (this.planOnly > 0) a = 'read';
    this.addTable(schema, name, a);
  }

  addTable(schema: string | null, name: string, access: TableAccess, wildcard = false): void {
    const key = `${schema ?? ''}\u0001${name}${wildcard ? '\u0002' : ''}`;
    const prev = this.tables.get(key);
    if (prev && ACCESS_RANK[prev.access] >= ACCESS_RANK[access]) return;
    this.tables.set(key, wildcard ? { schema, name: '*', access, wildcard: true } : { schema, name, access });
  }

  /** Adds a table named by a text constant such as 'public.users' (nextval, table_to_xml). */
  addTableFromText(text: string, access: TableAccess): void {
    const parts = splitQualifiedName(text);
    if (!parts) {
      this.flags.add('dynamicCode');
      return;
    }
    this.addTable(parts.length > 1 ? (parts[parts.length - 2] ?? null) : null, parts[parts.length - 1] ?? text, access);
  }

  /** Constant value of an expression (A_Const, or a cast of one); marks the shape literal-sensitive. */
  constValue(v: unknown): string | null {
    const w = unwrap(v);
    if (!w) return null;
    const [t, n] = w;
    if (t === 'TypeCast') return this.constValue(n.arg);
    if (t === 'String') {
      // A DefElem argument: a keyword (ANALYZE off) or a string literal (ANALYZE 'off') the
      // normalizer strips, so the value may differ between messages sharing a key.
      this.literalSensitive = true;
      return str(n.sval) ?? null;
    }
    if (t === 'Integer') {
      // A DefElem argument written as a number (ANALYZE 0): stripped by the normalizer too.
      this.literalSensitive = true;
      return String(typeof n.ival === 'number' ? n.ival : 0);
    }
    if (t !== 'A_Const') return null;
    // TRUE/FALSE/NULL are keywords (kept by the normalizer); numbers and strings are stripped.
    if (isObj(n.boolval)) return n.boolval.boolval === true ? 'true' : 'false';
    if (n.isnull === true) return null;
    this.literalSensitive = true;
    return aConstText(n);
  }

  setting(change: SettingChange): void {
    this.settings.push(change);
    this.flags.add('setConfig');
    if (change.name === '*') {
      this.flags.add('readWriteOverride');
      if (change.via === 'set_config' || change.via === 'DISCARD') this.flags.add('roleChange');
      if (change.via === 'set_config') {
        // set_config(<not a constant>, …) could name any setting, role included.
        this.flags.add('parserDivergence');
        this.escalate('dcl');
      }
      return;
    }
    SETTING_EFFECTS[change.name]?.(this, change.action !== 'set', change.value);
  }

  dmlOp(command: DmlOp['command'], relation: unknown, hasWhere: boolean): void {
    if (this.planOnly > 0) return; // EXPLAIN without ANALYZE runs nothing.
    const rel = isObj(relation) ? relation : unwrap(relation)?.[1];
    const name = rel ? str(rel.relname) : undefined;
    const table = name === undefined ? '?' : qualified(str(rel?.schemaname) ?? null, name);
    const nested = rel !== undefined && this.topNode !== undefined && !this.isTopTarget(rel);
    this.dml.push({ command, table, hasWhere, nested });
    if (nested) this.commands.add(command);
    if (command === 'DELETE' && !hasWhere) this.flags.add('deleteWithoutWhere');
    if (command === 'UPDATE' && !hasWhere) this.flags.add('updateWithoutWhere');
  }

  private isTopTarget(rel: Obj): boolean {
    const top = this.topNode;
    if (!top) return false;
    if (top.relation === rel) return true;
    // PREPARE / EXPLAIN / DECLARE wrap the real top statement one level down (COPY (…) does not).
    const inner = WRAPPERS.has(this.topType) ? unwrap(top.query)?.[1] : undefined;
    if (inner?.relation === rel) return true;
    const rels = top.relations;
    return Array.isArray(rels) && rels.some((r) => unwrap(r)?.[1] === rel);
  }

  /**
   * A WHERE (or MERGE ON) that limits which rows of `target` (the statement's RangeVar) are hit: it
   * must refer to the target row (an unqualified column, a column qualified by the target's name or
   * alias, WHERE CURRENT OF) and not be constant-true. `WHERE 'yes'`, `WHERE 1 < 2`, `WHERE $1`,
   * `WHERE EXISTS (SELECT 1 FROM u WHERE u.x = 1)`, `DELETE … USING u WHERE u.x = 1` and MERGE … ON
   * s.x = 1 hit every row or none.
   */
  whereIsReal(where: unknown, target: unknown): boolean {
    if (where === undefined || where === null) return false;
    if (!refersToTarget(where, targetNames(target)) || isTriviallyTrue(this, where, 0)) {
      this.flags.add('trivialWhere');
      return false;
    }
    return true;
  }

  callFunction(funcname: readonly string[], args: readonly unknown[]): void {
    const bare = (funcname[funcname.length - 1] ?? '').toLowerCase();
    this.functions.add(funcname.map((p) => p.toLowerCase()).join('.'));
    const effect = functionEffect(bare);
    if (effect) this.applyEffect(effect, args);
  }

  private applyEffect(effect: FunctionEffect, args: readonly unknown[]): void {
    if (effect.kind) this.escalate(effect.kind);
    for (const f of effect.flags ?? []) this.flags.add(f);
    if (effect.sequenceArg !== undefined) this.namedTableArg(args[effect.sequenceArg], 'write');
    if (effect.tableArg !== undefined) this.namedTableArg(args[effect.tableArg], 'read');
    if (effect.schemaArg !== undefined) this.schemaArg(args[effect.schemaArg]);
    if (effect.allTables === true) this.addTable(null, '*', 'read', true);
    if (effect.sqlArgs) this.sqlArgs(effect.sqlArgs, args);
    if (effect.setConfig) this.setConfigCall(args);
  }

  private namedTableArg(arg: unknown, access: TableAccess): void {
    const v = this.constValue(arg);
    if (v === null) {
      // table_to_xml(some_expression): any table at all.
      this.flags.add('dynamicCode');
      this.addTable(null, '*', access, true);
    } else this.addTableFromText(v, access);
  }

  /** schema_to_xml('billing', …) reads every table of billing (a name, as PostgreSQL takes it: not folded). */
  private schemaArg(arg: unknown): void {
    const v = this.constValue(arg);
    this.addTable(v, '*', 'read', true);
  }

  private sqlArgs(indexes: readonly number[], args: readonly unknown[]): void {
    for (const i of indexes) {
      if (i >= args.length) continue;
      const sql = this.constValue(args[i]);
      // SQL built at run time could be anything: fail closed.
      if (sql === null) this.escalate('admin');
      else this.embeddedSql(sql);
    }
  }

  /** Classifies SQL held in a string constant into this walk (it executes as part of this statement). */
  embeddedSql(sql: string): void {
    if (this.sqlDepth >= MAX_SQL_STRING_DEPTH) {
      this.flags.add('dynamicCode');
      this.escalate('admin');
      return;
    }
    let tree: ParseTree;
    try {
      tree = this.parse(sql);
    } catch {
      // Not SQL to this parser (a dblink connection string, or syntax only the server knows): fail closed.
      this.flags.add('dynamicCode');
      this.escalate('admin');
      return;
    }
    const inner = new Walk(this.parse, this.sqlDepth + 1);
    for (const s of tree.stmts ?? []) {
      const w = unwrap(s.stmt);
      if (w) inner.top(w[0], w[1]);
    }
    this.absorb(inner, true);
  }

  /** Merges another walk's findings (an embedded SQL string, a function body). */
  absorb(o: Walk, nested: boolean): void {
    this.kind = maxKind(this.kind, o.kind);
    this.kindBesidesExecute = maxKind(this.kindBesidesExecute, o.kindBesidesExecute);
    for (const t of o.tables.values()) this.addTable(t.schema, t.name, t.access);
    for (const f of o.functions) this.functions.add(f);
    for (const f of o.flags) this.flags.add(f);
    for (const c of o.commands) this.commands.add(c);
    for (const d of o.dml) this.dml.push(nested ? { ...d, nested: true } : d);
    this.settings.push(...o.settings);
    for (const e of o.executes) this.executes.add(e);
    this.literalSensitive ||= o.literalSensitive;
  }

  private setConfigCall(args: readonly unknown[]): void {
    const name = this.constValue(args[0]);
    const value = this.constValue(args[1]);
    const localArg = this.constValue(args[2]);
    if (name === null) this.flags.add('dynamicCode');
    this.setting({
      name: name === null ? '*' : name.toLowerCase(),
      action: 'set',
      local: localArg !== null && isTrueish(localArg),
      value,
      via: 'set_config',
    });
  }

  withLock<T>(fn: () => T): T {
    this.lockDepth++;
    try {
      return fn();
    } finally {
      this.lockDepth--;
    }
  }

  withPlanOnly<T>(fn: () => T): T {
    this.planOnly++;
    try {
      return fn();
    } finally {
      this.planOnly--;
    }
  }

  walkChildren(type: string, node: Obj, skip?: ReadonlySet<string>): void {
    this.children(type, node, skip);
  }
}

/** Settings whose change is more than a preference. */
const SETTING_EFFECTS: Readonly<Record<string, (w: Walk, unset: boolean, value: string | null) => void>> = {
  role: (w) => {
    w.flags.add('roleChange');
    w.escalate('dcl');
  },
  session_authorization: (w) => {
    w.flags.add('roleChange');
    w.escalate('dcl');
  },
  default_transaction_read_only: (w, unset, v) => {
    if (unset || !isTrueish(v)) w.flags.add('readWriteOverride');
  },
  transaction_read_only: (w, unset, v) => {
    if (unset || !isTrueish(v)) w.flags.add('readWriteOverride');
  },
  standard_conforming_strings: (w, unset, v) => {
    if (!unset && !isTrueish(v)) w.flags.add('parserDivergence');
  },
  client_encoding: (w, unset, v) => {
    if (!unset && !isUtf8Name(v)) w.flags.add('parserDivergence');
  },
  // Disables triggers and foreign-key checks.
  session_replication_role: (w) => w.escalate('admin'),
};

const EMPTY: ReadonlySet<string> = new Set();
const WRAPPERS: ReadonlySet<string> = new Set(['PrepareStmt', 'ExplainStmt', 'DeclareCursorStmt']);
const WITH_SKIP: ReadonlySet<string> = new Set(['withClause']);
const ACCESS_RANK: Readonly<Record<TableAccess, number>> = { read: 0, lock: 1, write: 2 };

function aConstText(n: Obj): string | null {
  if (isObj(n.sval)) return str(n.sval.sval) ?? '';
  // Protobuf JSON omits zero values: { ival: {} } is 0.
  if (isObj(n.ival)) return String(typeof n.ival.ival === 'number' ? n.ival.ival : 0);
  if (isObj(n.fval)) return str(n.fval.fval) ?? '0';
  if (isObj(n.bsval)) return str(n.bsval.bsval) ?? '';
  return null;
}

/** Typed fields hold bare structs (no `{ Type: … }` wrapper): name them by shape, else by field (`@into`). */
function bareType(v: Obj, field: string): string {
  if ('relname' in v) return 'RangeVar';
  if ('funcname' in v && 'funcformat' in v) return 'FuncCall';
  return `@${field}`;
}

/** Splits 'schema.name' / '"Odd"."Name"' as PostgreSQL's regclass input would. */
export function splitQualifiedName(text: string): string[] | null {
  const parts: string[] = [];
  const re = /\s*(?:"((?:[^"]|"")*)"|([^".\s]+))\s*(\.|$)/y;
  let m: RegExpExecArray | null;
  let pos = 0;
  while (pos < text.length && (m = re.exec(text)) !== null) {
    const quoted = m[1];
    parts.push(quoted !== undefined ? quoted.replace(/""/g, '"') : (m[2] ?? '').replace(/[A-Z]+/g, (x) => x.toLowerCase()));
    pos = re.lastIndex;
    if (m[3] === '') break;
  }
  return parts.length > 0 && pos >= text.length ? parts : null;
}

// ---------------------------------------------------------------------------------------------
// Constant-true WHERE detection.

/** The names a WHERE can qualify the target's columns with: its alias if it has one, else its name. */
function targetNames(target: unknown): ReadonlySet<string> {
  const rel = isObj(target) ? (unwrap(target)?.[0] === 'RangeVar' ? unwrap(target)?.[1] : target) : undefined;
  const alias = isObj(rel?.alias) ? str(rel.alias.aliasname) : undefined;
  const name = str(rel?.relname);
  return new Set(alias !== undefined ? [alias] : name !== undefined ? [name] : []);
}

/**
 * Whether an expression can depend on the target row: a ColumnRef that is unqualified (it may be the
 * target's column, or its whole row) or qualified by a target name, or CURRENT OF. Anywhere inside,
 * subqueries included (a correlated subquery names the target). Iterative: no recursion limit.
 */
function refersToTarget(where: unknown, targets: ReadonlySet<string>): boolean {
  const stack: unknown[] = [where];
  while (stack.length > 0) {
    const v = stack.pop();
    if (Array.isArray(v)) {
      for (const x of v as unknown[]) stack.push(x);
      continue;
    }
    if (!isObj(v)) continue;
    if (isObj(v.CurrentOfExpr)) return true;
    if (isObj(v.ColumnRef)) {
      if (columnNamesTarget(v.ColumnRef, targets)) return true;
      continue;
    }
    for (const x of Object.values(v)) if (typeof x === 'object' && x !== null) stack.push(x);
  }
  return false;
}

/** An unqualified column (or whole-row reference), or one qualified by a target name. */
function columnNamesTarget(col: Obj, targets: ReadonlySet<string>): boolean {
  const fields: readonly unknown[] = Array.isArray(col.fields) ? (col.fields as unknown[]) : [];
  if (fields.length <= 1) return true;
  const q = fields[fields.length - 2];
  const qualifier = isObj(q) && isObj(q.String) ? str(q.String.sval) : undefined;
  return qualifier !== undefined && targets.has(qualifier);
}

const TRUE_CONSTS = new Set(['true']);

function isTriviallyTrue(w: Walk, v: unknown, depth: number): boolean {
  if (depth > 16) return false;
  const node = unwrap(v);
  if (!node) return false;
  const [t, n] = node;
  if (t === 'A_Const' || t === 'TypeCast') {
    const c = w.constValue(v);
    return c !== null && (TRUE_CONSTS.has(c) || (t === 'TypeCast' && isTrueish(c)));
  }
  if (t === 'BoolExpr' && Array.isArray(n.args)) {
    if (n.boolop === 'OR_EXPR') return n.args.some((a) => isTriviallyTrue(w, a, depth + 1)) || nullOrNotNull(n.args);
    if (n.boolop === 'AND_EXPR') return n.args.every((a) => isTriviallyTrue(w, a, depth + 1));
    return false;
  }
  if (t === 'A_Expr') return exprIsTrue(w, n);
  return false;
}

function exprIsTrue(w: Walk, n: Obj): boolean {
  if (n.kind === 'AEXPR_OP') return comparisonIsTrue(w, n);
  // id IS NOT DISTINCT FROM id holds for every row, NULLs included.
  if (n.kind === 'AEXPR_NOT_DISTINCT') return isSameColumn(n.lexpr, n.rexpr);
  return false;
}

/** x IS NULL OR x IS NOT NULL (for the same x) among the arguments of an OR. */
function nullOrNotNull(args: readonly unknown[]): boolean {
  const seen = new Map<string, Set<string>>();
  for (const a of args) {
    const t = unwrap(a);
    if (t?.[0] !== 'NullTest') continue;
    const key = JSON.stringify(stripLocations(t[1].arg));
    const tests = seen.get(key) ?? new Set<string>();
    tests.add(String(t[1].nulltesttype));
    seen.set(key, tests);
    if (tests.size === 2) return true;
  }
  return false;
}

function comparisonIsTrue(w: Walk, n: Obj): boolean {
  const op = names(n.name).join('.');
  const l = n.lexpr;
  const r = n.rexpr;
  const reflexive = op === '=' || op === '<=' || op === '>=';
  if (isSameColumn(l, r)) return reflexive;
  // Read values only when both sides are constants: `id = 1` must stay cacheable by its shape.
  if (!isConstNode(l) || !isConstNode(r)) return false;
  const lc = w.constValue(l);
  const rc = w.constValue(r);
  if (lc === null || rc === null) return false;
  const equal = lc === rc || numEq(lc, rc);
  if (reflexive) return equal;
  return (op === '<>' || op === '!=') && !equal;
}

function isSameColumn(l: unknown, r: unknown): boolean {
  return unwrap(l)?.[0] === 'ColumnRef' && JSON.stringify(stripLocations(l)) === JSON.stringify(stripLocations(r));
}

function isConstNode(v: unknown): boolean {
  const t = unwrap(v);
  return t !== undefined && (t[0] === 'A_Const' || (t[0] === 'TypeCast' && isConstNode(t[1].arg)));
}

function numEq(a: string, b: string): boolean {
  const x = Number(a);
  const y = Number(b);
  return a.trim() !== '' && b.trim() !== '' && Number.isFinite(x) && x === y;
}

function stripLocations(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(stripLocations);
  if (!isObj(v)) return v;
  const out: Obj = {};
  for (const [k, x] of Object.entries(v)) if (k !== 'location') out[k] = stripLocations(x);
  return out;
}

// ---------------------------------------------------------------------------------------------
// Per-type handlers: special meaning first, then (almost always) the generic walk of the children.

type Handler = (w: Walk, node: Obj, parentType: string, field: string) => void;

function analyzeOption(options: unknown, w: Walk): boolean {
  if (!Array.isArray(options)) return false;
  // PostgreSQL does not refuse a repeated option: the LAST one wins, so EXPLAIN (ANALYZE false,
  // ANALYZE) executes. Any ANALYZE that is not plainly false counts as executing.
  let analyze = false;
  for (const o of options) {
    const d = unwrap(o)?.[1];
    if (!d || str(d.defname) !== 'analyze') continue;
    if (d.arg === undefined) {
      analyze = true;
      continue;
    }
    const v = w.constValue(d.arg);
    if (v === null || !['false', 'off', 'no', '0', 'f', 'n', 'of', 'fa', 'fal', 'fals'].includes(v.trim().toLowerCase())) analyze = true;
  }
  return analyze;
}

function topInfo(type: string, node: Obj): TopInfo {
  const inner = unwrap(node.query);
  if (type === 'PrepareStmt' && inner) return { command: topInfo(inner[0], inner[1]).command, wrapper: 'PREPARE' };
  if (type === 'DeclareCursorStmt' && inner) return { command: topInfo(inner[0], inner[1]).command, wrapper: 'DECLARE_CURSOR' };
  if (type === 'ExplainStmt' && inner) {
    const probe = new Walk(() => ({}), MAX_SQL_STRING_DEPTH);
    if (analyzeOption(node.options, probe)) return { command: topInfo(inner[0], inner[1]).command, wrapper: 'EXPLAIN_ANALYZE' };
    return { command: 'EXPLAIN', wrapper: 'EXPLAIN' };
  }
  return { command: commandName(type, node), wrapper: null };
}

/** An enum-valued field as a string ('' when absent). */
function enumStr(v: unknown, fallback = ''): string {
  return typeof v === 'string' ? v : fallback;
}

const COMMAND_OF: Readonly<Record<string, (node: Obj) => string>> = {
  SelectStmt: (n) => (n.intoClause ? 'SELECT_INTO' : n.valuesLists ? 'VALUES' : 'SELECT'),
  CopyStmt: (n) => (n.is_from === true ? 'COPY_FROM' : 'COPY_TO'),
  VariableSetStmt: (n) => (enumStr(n.kind).startsWith('VAR_RESET') ? 'RESET' : 'SET'),
  TransactionStmt: (n) => enumStr(n.kind).replace(/^TRANS_STMT_/, ''),
  DropStmt: (n) => `DROP_${enumStr(n.removeType).replace(/^OBJECT_/, '')}`,
  AlterTableStmt: (n) => `ALTER_${enumStr(n.objtype, 'OBJECT_TABLE').replace(/^OBJECT_/, '')}`,
  CreateTableAsStmt: (n) => (n.objtype === 'OBJECT_MATVIEW' ? 'CREATE_MATERIALIZED_VIEW' : 'CREATE_TABLE_AS'),
  GrantStmt: (n) => (n.is_grant === true ? 'GRANT' : 'REVOKE'),
  GrantRoleStmt: (n) => (n.is_grant === true ? 'GRANT_ROLE' : 'REVOKE_ROLE'),
  CreateRoleStmt: (n) => `CREATE_${enumStr(n.stmt_type, 'ROLESTMT_ROLE').replace(/^ROLESTMT_/, '')}`,
  VacuumStmt: (n) => (n.is_vacuumcmd === true ? 'VACUUM' : 'ANALYZE'),
  FetchStmt: (n) => (n.ismove === true ? 'MOVE' : 'FETCH'),
};

function commandName(type: string, node: Obj): string {
  const fn = COMMAND_OF[type];
  return fn ? fn(node) : (COMMAND_NAME[type] ?? camelToSnake(type.replace(/Stmt$/, '')));
}

const HANDLERS: Readonly<Record<string, Handler>> = {
  RangeVar(w, node, parentType, field) {
    w.rangeVar(node, TARGET_ACCESS.get(`${parentType}.${field}`) ?? 'read');
  },
  FuncCall(w, node) {
    const args = Array.isArray(node.args) ? node.args : [];
    w.callFunction(names(node.funcname), args);
    w.walkChildren('FuncCall', node, FUNCNAME_SKIP);
  },
  ColumnRef(w, node) {
    // Attribute notation: `x.lo_export` can call lo_export(x).
    const f = names(node.fields);
    const last = f[f.length - 1];
    if (f.length >= 2 && last !== undefined && isFlaggedFunctionName(last.toLowerCase())) w.callFunction([last], []);
  },
  A_Indirection(w, node) {
    for (const s of names(node.indirection)) if (isFlaggedFunctionName(s.toLowerCase())) w.callFunction([s], []);
    w.walkChildren('A_Indirection', node);
  },
  SelectStmt(w, node) {
    if (node.intoClause) {
      w.flags.add('selectInto');
      w.escalate('ddl');
    }
    w.withScopes(node, (skip) => {
      if (Array.isArray(node.lockingClause) && node.lockingClause.length > 0) {
        w.flags.add('rowLocks');
        w.withLock(() => w.walk(node.fromClause, 'SelectStmt', 'fromClause'));
        w.walkChildren('SelectStmt', node, new Set([...skip, 'fromClause']));
      } else {
        w.walkChildren('SelectStmt', node, skip);
      }
    });
  },
  InsertStmt(w, node) {
    w.dmlOp('INSERT', node.relation, true);
    w.withScopes(node, (skip) => w.walkChildren('InsertStmt', node, skip));
  },
  UpdateStmt(w, node) {
    w.dmlOp('UPDATE', node.relation, w.whereIsReal(node.whereClause, node.relation));
    w.withScopes(node, (skip) => w.walkChildren('UpdateStmt', node, skip));
  },
  DeleteStmt(w, node) {
    w.dmlOp('DELETE', node.relation, w.whereIsReal(node.whereClause, node.relation));
    w.withScopes(node, (skip) => w.walkChildren('DeleteStmt', node, skip));
  },
  MergeStmt(w, node) {
    const joinReal = w.whereIsReal(node.joinCondition, node.relation);
    w.dmlOp('MERGE', node.relation, joinReal);
    for (const clause of Array.isArray(node.mergeWhenClauses) ? node.mergeWhenClauses : []) {
      const c = unwrap(clause)?.[1];
      if (!c) continue;
      const guarded = joinReal || (c.condition !== undefined && w.whereIsReal(c.condition, node.relation));
      if (c.commandType === 'CMD_DELETE') w.dmlOp('DELETE', node.relation, guarded);
      if (c.commandType === 'CMD_UPDATE') w.dmlOp('UPDATE', node.relation, guarded);
    }
    w.withScopes(node, (skip) => w.walkChildren('MergeStmt', node, skip));
  },
  TruncateStmt(w, node) {
    for (const r of Array.isArray(node.relations) ? node.relations : []) w.dmlOp('TRUNCATE', r, false);
    w.walkChildren('TruncateStmt', node);
  },
  LockStmt(w, node) {
    w.flags.add('rowLocks');
    w.walkChildren('LockStmt', node);
  },
  CopyStmt(w, node) {
    const isFrom = node.is_from === true;
    if (typeof node.filename === 'string') {
      w.flags.add(node.is_program === true ? 'copyProgram' : 'serverFileAccess');
      w.escalate('admin');
    }
    if (isFrom) {
      w.escalate('write');
      if (node.relation) {
        w.dmlOp('COPY_FROM', node.relation, true);
        w.rangeVar(node.relation as Obj, 'write');
      }
      w.walkChildren('CopyStmt', node, RELATION_SKIP);
    } else {
      w.walkChildren('CopyStmt', node);
    }
  },
  ExplainStmt(w, node) {
    if (analyzeOption(node.options, w)) {
      w.flags.add('explainAnalyze');
      w.walkChildren('ExplainStmt', node);
    } else {
      w.escalate('utility');
      w.withPlanOnly(() => w.walkChildren('ExplainStmt', node));
    }
  },
  PrepareStmt(w, node) {
    w.prepares = str(node.name) ?? '';
    w.walkChildren('PrepareStmt', node);
  },
  ExecuteStmt(w, node) {
    w.executes.add(str(node.name) ?? '');
    w.flags.add('unresolvedExecute');
    w.escalateForExecute();
    w.walkChildren('ExecuteStmt', node);
  },
  DeallocateStmt(w, node) {
    w.deallocates.add(node.isall === true || node.name === undefined ? '*' : (str(node.name) ?? '*'));
  },
  DiscardStmt(w, node) {
    if (node.target === 'DISCARD_ALL') {
      // DISCARD ALL = SET SESSION AUTHORIZATION DEFAULT; RESET ALL; DEALLOCATE ALL; …
      w.setting({ name: '*', action: 'reset', local: false, value: null, via: 'DISCARD' });
      w.deallocates.add('*');
    }
  },
  DoStmt(w, node) {
    w.flags.add('dynamicCode');
    w.walkChildren('DoStmt', node);
  },
  CreateFunctionStmt(w, node) {
    w.flags.add('dynamicCode');
    // LANGUAGE 'c' and the body are string literals: only an exact-text cache entry is safe.
    w.literalSensitive = true;
    const { language, body } = functionOptions(node);
    if (language === 'c' || language === 'internal') w.escalate('admin');
    if (body !== null && language === 'sql') w.embeddedSql(body);
    // funcname names the function being defined, not one being called.
    w.walkChildren('CreateFunctionStmt', node, FUNCNAME_SKIP);
  },
  CreateTrigStmt(w, node) {
    // The trigger function runs on every matching row from now on.
    w.callFunction(names(node.funcname), []);
    w.walkChildren('CreateTrigStmt', node, FUNCNAME_SKIP);
  },
  DropStmt(w, node) {
    const rt = String(node.removeType);
    const k = DROP_KIND[rt];
    if (k) w.escalate(k);
    if (DROP_RELATIONS.has(rt) && Array.isArray(node.objects)) {
      for (const o of node.objects) {
        const parts = names(unwrap(o)?.[1]?.items);
        const name = parts[parts.length - 1];
        if (name !== undefined) w.addTable(parts.length > 1 ? (parts[parts.length - 2] ?? null) : null, name, 'write');
      }
    }
    w.walkChildren('DropStmt', node);
  },
  VariableSetStmt(w, node) {
    variableSet(w, node, 'SET');
    w.walkChildren('VariableSetStmt', node);
  },
  AlterSystemStmt(w, node) {
    // The nested setstmt changes postgresql.auto.conf, not this session: kind admin says enough.
    w.flags.add('setConfig');
    persistentLexerSetting(w, node.setstmt);
  },
  AlterRoleSetStmt(w, node) {
    persistentLexerSetting(w, node.setstmt);
    w.walkChildren('AlterRoleSetStmt', node, SETSTMT_SKIP);
  },
  AlterDatabaseSetStmt(w, node) {
    persistentLexerSetting(w, node.setstmt);
    w.walkChildren('AlterDatabaseSetStmt', node, SETSTMT_SKIP);
  },
  TransactionStmt(w, node) {
    // Two-phase commit outlives the session: PREPARE TRANSACTION keeps the transaction (its locks,
    // its xmin) after the connection ends; COMMIT PREPARED makes another session's prepared writes
    // durable and ROLLBACK PREPARED throws them away. PostgreSQL allows both with
    // default_transaction_read_only on, so they are writes, not transaction control.
    if (TWO_PHASE.has(enumStr(node.kind))) w.escalate('write');
    for (const o of Array.isArray(node.options) ? node.options : []) {
      const d = unwrap(o)?.[1];
      if (d?.defname === 'transaction_read_only') {
        w.setting({ name: 'transaction_read_only', action: 'set', local: true, value: w.constValue(d.arg) === '1' ? 'on' : 'off', via: 'BEGIN' });
      }
    }
  },
};

/** LANGUAGE and the AS body of CREATE FUNCTION (language defaults to sql, as PostgreSQL does for BEGIN ATOMIC). */
function functionOptions(node: Obj): { language: string; body: string | null } {
  let language = 'sql';
  let body: string | null = null;
  for (const o of Array.isArray(node.options) ? node.options : []) {
    const d = unwrap(o)?.[1];
    if (d?.defname === 'language') language = (str(unwrap(d.arg)?.[1]?.sval) ?? language).toLowerCase();
    if (d?.defname === 'as') body = names(unwrap(d.arg)?.[1]?.items)[0] ?? null;
  }
  return { language, body };
}

/**
 * ALTER ROLE|DATABASE|SYSTEM … SET standard_conforming_strings = off: every later session (through
 * this sidecar too) would have its strings lexed differently from this parser. Same invariant as SET.
 */
function persistentLexerSetting(w: Walk, setstmt: unknown): void {
  const n = isObj(setstmt) ? (unwrap(setstmt)?.[0] === 'VariableSetStmt' ? unwrap(setstmt)?.[1] : setstmt) : undefined;
  if (!n || String(n.kind) !== 'VAR_SET_VALUE' || (str(n.name) ?? '').toLowerCase() !== 'standard_conforming_strings') return;
  const values = (Array.isArray(n.args) ? n.args : []).map((a) => w.constValue(a));
  if (values.length !== 1 || !isTrueish(values[0] ?? null)) w.flags.add('parserDivergence');
}

const FUNCNAME_SKIP: ReadonlySet<string> = new Set(['funcname']);
const RELATION_SKIP: ReadonlySet<string> = new Set(['relation']);
const SETSTMT_SKIP: ReadonlySet<string> = new Set(['setstmt']);

function variableSet(w: Walk, node: Obj, via: 'SET'): void {
  const kind = String(node.kind);
  const local = node.is_local === true;
  if (kind === 'VAR_RESET_ALL') {
    w.setting({ name: '*', action: 'reset', local, value: null, via: 'RESET' });
    return;
  }
  const name = (str(node.name) ?? '').toLowerCase();
  if (kind === 'VAR_SET_MULTI') {
    setMulti(w, node, name === 'session characteristics', local);
    return;
  }
  if (kind === 'VAR_RESET' || kind === 'VAR_SET_DEFAULT' || kind === 'VAR_SET_CURRENT') {
    const reset = kind === 'VAR_RESET';
    w.setting({ name, action: reset ? 'reset' : 'default', local, value: null, via: reset ? 'RESET' : via });
    return;
  }
  const values = (Array.isArray(node.args) ? node.args : []).map((a) => w.constValue(a));
  const value = values.some((v) => v === null) ? null : values.join(', ');
  w.setting({ name, action: 'set', local, value, via });
}

/** SET TRANSACTION / SET SESSION CHARACTERISTICS AS TRANSACTION: a DefElem list. */
function setMulti(w: Walk, node: Obj, sessionDefault: boolean, local: boolean): void {
  for (const a of Array.isArray(node.args) ? node.args : []) {
    const d = unwrap(a)?.[1];
    if (!d) continue;
    const def = str(d.defname) ?? '';
    const v = w.constValue(d.arg);
    const value = def === 'transaction_read_only' ? (v === '1' ? 'on' : 'off') : v;
    w.setting({ name: sessionDefault ? `default_${def}` : def, action: 'set', local, value, via: 'SET' });
  }
}

// ---------------------------------------------------------------------------------------------
// Building facts.

function fingerprintOf(normalized: string): string {
  return hash('sha256', normalized, 'hex').slice(0, 16);
}

/** One-shot crypto.hash: no Hash object per statement (cheaper than createHash().update().digest() on short texts). */
export function sha256Hex(text: string): string {
  return hash('sha256', text, 'hex');
}

/** Classifies one parsed top-level statement node into its shape. `normalized` is the cache-key form. */
export function shapeOf(parse: ParseFn, stmt: unknown, normalized: string): StatementShape {
  const w = new Walk(parse, 0);
  const wrapped = unwrap(stmt);
  let info: TopInfo = { command: 'UNKNOWN', wrapper: null };
  if (wrapped) info = w.top(wrapped[0], wrapped[1]);
  else {
    w.flags.add('unrecognized');
    w.escalate('admin');
  }
  const top = wrapped ? topStatementForWhere(wrapped) : undefined;
  const topDml = top ? w.dml.find((d) => !d.nested && (d.command === top)) : undefined;
  return {
    kind: w.kind,
    kindBesidesExecute: w.kindBesidesExecute,
    command: info.command,
    commands: [...w.commands],
    wrapper: info.wrapper,
    tables: [...w.tables.values()],
    functions: [...w.functions],
    dml: w.dml,
    flags: [...w.flags].sort(),
    settings: w.settings,
    hasWhere: topDml ? topDml.hasWhere : null,
    prepares: w.prepares,
    executes: [...w.executes],
    deallocates: [...w.deallocates],
    normalized: patternText(normalized),
    fingerprint: fingerprintOf(normalized),
    literalSensitive: w.literalSensitive,
  };
}

/** The UPDATE/DELETE whose WHERE `hasWhere` reports (through PREPARE/EXPLAIN ANALYZE wrappers). */
function topStatementForWhere([type, node]: [string, Obj]): 'UPDATE' | 'DELETE' | undefined {
  if (type === 'UpdateStmt') return 'UPDATE';
  if (type === 'DeleteStmt') return 'DELETE';
  const inner = unwrap(node.query);
  return inner && (type === 'PrepareStmt' || type === 'ExplainStmt' || type === 'DeclareCursorStmt') ? topStatementForWhere(inner) : undefined;
}

/** A parse error from libpg-query → our typed error (0-based character cursor). */
export function parseErrorOf(e: unknown): SqlParseError {
  const err = e as { message?: unknown; sqlDetails?: { message?: unknown; cursorPosition?: unknown } };
  const message = typeof err.sqlDetails?.message === 'string' ? err.sqlDetails.message : String(err.message ?? e);
  const cursor = typeof err.sqlDetails?.cursorPosition === 'number' ? err.sqlDetails.cursorPosition : null;
  return { code: 'parse-error', message, cursorPosition: cursor };
}

interface Span {
  readonly text: string;
  readonly normalized: string;
}

/** Statement texts from the parser's byte offsets (used when the scanner's split disagrees). */
function spansFromParser(text: string, tree: ParseTree): Span[] {
  const stmts = tree.stmts ?? [];
  const ascii = !/[\u0080-\uffff]/.test(text);
  const buf = ascii ? undefined : Buffer.from(text, 'utf8');
  return stmts.map((s) => {
    const loc = s.stmt_location ?? 0;
    const len = s.stmt_len ?? 0;
    let slice: string;
    if (buf) slice = buf.subarray(loc, len > 0 ? loc + len : buf.length).toString('utf8');
    else slice = text.slice(loc, len > 0 ? loc + len : text.length);
    const t = slice.trim();
    return { text: t, normalized: normalizeSql(t).key };
  });
}

export interface ParsedMessage {
  readonly statements: readonly StatementFacts[];
  /** The scanner's split agreed with the parser and no fact came from a literal. */
  readonly normalizable: boolean;
  readonly normalizedKey: string | null;
}

/**
 * Parses and classifies a whole message. Throws the parser's error (see parseErrorOf) on bad SQL,
 * TooComplex on a pathological tree; callers turn both into a ClassifyResult.
 */
export function classifyMessage(parse: ParseFn, text: string): ParsedMessage {
  // libpg-query refuses '' ("Query cannot be empty"); PostgreSQL answers EmptyQueryResponse.
  if (text.trim() === '') return { statements: [], normalizable: false, normalizedKey: null };
  // The parser stops at a NUL (a C string) and would classify only what comes before it, whatever
  // follows. PostgreSQL rejects such a message; so do we (the framer already should).
  const nul = text.indexOf('\0');
  if (nul >= 0) throw Object.assign(new Error('the query text contains a NUL byte'), { name: 'SqlError', sqlDetails: { message: 'the query text contains a NUL byte', cursorPosition: nul } });
  const tree = parse(text);
  const stmts = tree.stmts ?? [];
  const n = normalizeSql(text);
  const agree = n.complete && n.statements.length === stmts.length;
  const spans: Span[] = agree
    ? n.statements.map((s) => ({ text: text.slice(s.start, s.end), normalized: s.normalized }))
    : spansFromParser(text, tree);
  let normalizable = agree;
  const statements = stmts.map((s, index) => {
    const span = spans[index] ?? { text: '', normalized: '' };
    const shape = shapeOf(parse, s.stmt, span.normalized);
    if (shape.literalSensitive) normalizable = false;
    return { ...shape, index, text: span.text, hash: sha256Hex(span.text) };
  });
  return { statements, normalizable, normalizedKey: agree ? n.key : null };
}

/** Classifies without a cache: the reference path (the cached classifier must agree with it). */
export function classifyUncached(parse: ParseFn, text: string): ClassifyResult {
  try {
    return { ok: true, statements: classifyMessage(parse, text).statements, cache: 'miss' };
  } catch (e) {
    return { ok: false, error: toClassifyError(e) };
  }
}

export function toClassifyError(e: unknown): SqlParseError {
  if (e instanceof TooComplex) return { code: 'too-complex', message: e.message, cursorPosition: null };
  const err = e as { sqlDetails?: unknown; name?: unknown };
  if (err && typeof err === 'object' && (err.sqlDetails !== undefined || err.name === 'SqlError')) return parseErrorOf(e);
  return { code: 'classifier-error', message: `SQL classifier failed: ${String((e as Error)?.message ?? e)}`, cursorPosition: null };
}

export function displayTable(t: TableRef): string {
  return qualified(t.schema, t.name);
}
