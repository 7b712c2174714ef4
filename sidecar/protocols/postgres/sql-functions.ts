// Catalog of PostgreSQL functions whose call is more than a read: writes, admin actions, server
// file/network access, SQL strings executed, session settings. Matched by bare name (any schema):
// a same-named function in another schema is flagged too, which errs toward refusing.
import type { SqlFlag, SqlKind } from './sql-facts.ts';

export interface FunctionEffect {
  /** The least kind a statement calling this function has. */
  readonly kind?: SqlKind;
  readonly flags?: readonly SqlFlag[];
  /** Argument indexes that hold SQL text the function executes (parsed when constant). */
  readonly sqlArgs?: readonly number[];
  /** Argument index naming a table the function reads in full (a regclass/text constant). */
  readonly tableArg?: number;
  /** Argument index naming a schema every table of which the function reads (schema_to_xml). */
  readonly schemaArg?: number;
  /** Reads every table of the database (database_to_xml). */
  readonly allTables?: true;
  /** Argument index naming a sequence the function advances or sets. */
  readonly sequenceArg?: number;
  /** set_config(name, value, is_local). */
  readonly setConfig?: true;
}

const ADMIN: FunctionEffect = { kind: 'admin', flags: ['adminFunction'] };
const FILE: FunctionEffect = { kind: 'admin', flags: ['serverFileAccess'] };
const LO_WRITE: FunctionEffect = { kind: 'write', flags: ['largeObjectWrite'] };
const REMOTE: FunctionEffect = { kind: 'admin', flags: ['serverFileAccess', 'remoteAccess'] };
const XML_QUERY: FunctionEffect = { flags: ['dynamicCode'], sqlArgs: [0] };
const XML_TABLE: FunctionEffect = { tableArg: 0 };
// schema_to_xml / database_to_xml read every table of a schema or database: a wildcard table.
const XML_SCHEMA: FunctionEffect = { flags: ['dynamicCode'], schemaArg: 0 };
const XML_ALL: FunctionEffect = { flags: ['dynamicCode'], allTables: true };
const SLEEP: FunctionEffect = { flags: ['sleep'] };
// Advisory locks: no data is written, but another session waiting on the key (a migration lock, a
// job queue) is blocked until this one lets go. Read-only refuses them with the row locks.
const ADVISORY_LOCK: FunctionEffect = { flags: ['rowLocks'] };

const EXACT: ReadonlyMap<string, FunctionEffect> = new Map<string, FunctionEffect>([
  ['nextval', { kind: 'write', flags: ['sequenceWrite'], sequenceArg: 0 }],
  ['setval', { kind: 'write', flags: ['sequenceWrite'], sequenceArg: 0 }],
  ['set_config', { setConfig: true }],
  // Server files (pg_read_server_files / pg_write_server_files territory) and adminpack.
  ['pg_read_file', FILE],
  ['pg_read_binary_file', FILE],
  ['pg_stat_file', FILE],
  ['pg_file_write', FILE],
  ['pg_file_rename', FILE],
  ['pg_file_unlink', FILE],
  ['pg_file_sync', FILE],
  ['pg_file_read', FILE],
  ['pg_logdir_ls', FILE],
  ['pg_current_logfile', FILE],
  ['lo_import', { kind: 'admin', flags: ['serverFileAccess', 'largeObjectWrite'] }],
  ['lo_export', FILE],
  // Large objects: server-side writes.
  ['lo_create', LO_WRITE],
  ['lo_creat', LO_WRITE],
  ['lo_unlink', LO_WRITE],
  ['lo_put', LO_WRITE],
  ['lo_from_bytea', LO_WRITE],
  ['lowrite', LO_WRITE],
  ['lo_truncate', LO_WRITE],
  ['lo_truncate64', LO_WRITE],
  ['lo_open', LO_WRITE],
  // Functions that run a SQL string (query_to_xml('DELETE …') executes the DELETE).
  ['query_to_xml', XML_QUERY],
  ['query_to_xmlschema', XML_QUERY],
  ['query_to_xml_and_xmlschema', XML_QUERY],
  ['ts_stat', { flags: ['dynamicCode'], sqlArgs: [0] }],
  ['ts_rewrite', { flags: ['dynamicCode'], sqlArgs: [1] }],
  ['table_to_xml', XML_TABLE],
  ['table_to_xmlschema', XML_TABLE],
  ['table_to_xml_and_xmlschema', XML_TABLE],
  ['schema_to_xml', XML_SCHEMA],
  ['schema_to_xmlschema', XML_SCHEMA],
  ['schema_to_xml_and_xmlschema', XML_SCHEMA],
  ['database_to_xml', XML_ALL],
  ['database_to_xmlschema', XML_ALL],
  ['database_to_xml_and_xmlschema', XML_ALL],
  // Server administration.
  ['pg_terminate_backend', ADMIN],
  ['pg_cancel_backend', ADMIN],
  ['pg_reload_conf', ADMIN],
  ['pg_rotate_logfile', ADMIN],
  ['pg_promote', ADMIN],
  ['pg_switch_wal', ADMIN],
  ['pg_create_restore_point', ADMIN],
  ['pg_backup_start', ADMIN],
  ['pg_backup_stop', ADMIN],
  ['pg_start_backup', ADMIN],
  ['pg_stop_backup', ADMIN],
  ['pg_wal_replay_pause', ADMIN],
  ['pg_wal_replay_resume', ADMIN],
  ['pg_log_backend_memory_contexts', ADMIN],
  ['pg_import_system_collations', ADMIN],
  ['pg_logical_emit_message', ADMIN],
  ['pg_sync_replication_slots', ADMIN],
  ['pg_advisory_lock', ADVISORY_LOCK],
  ['pg_advisory_lock_shared', ADVISORY_LOCK],
  ['pg_advisory_xact_lock', ADVISORY_LOCK],
  ['pg_advisory_xact_lock_shared', ADVISORY_LOCK],
  ['pg_try_advisory_lock', ADVISORY_LOCK],
  ['pg_try_advisory_lock_shared', ADVISORY_LOCK],
  ['pg_try_advisory_xact_lock', ADVISORY_LOCK],
  ['pg_try_advisory_xact_lock_shared', ADVISORY_LOCK],
  // Contrib and PG 17/18 functions that change server state: pg_surgery destroys or freezes tuples,
  // pg_visibility truncates a visibility map, pg_buffercache evicts, pg_stat_statements resets,
  // the statistics import functions overwrite planner statistics, pg_background runs SQL in a worker.
  ['heap_force_kill', ADMIN],
  ['heap_force_freeze', ADMIN],
  ['pg_truncate_visibility_map', ADMIN],
  ['pg_buffercache_evict', ADMIN],
  ['pg_buffercache_evict_relation', ADMIN],
  ['pg_buffercache_evict_all', ADMIN],
  ['pg_stat_statements_reset', ADMIN],
  ['pg_restore_relation_stats', ADMIN],
  ['pg_restore_attribute_stats', ADMIN],
  ['pg_clear_relation_stats', ADMIN],
  ['pg_clear_attribute_stats', ADMIN],
  ['pg_background_launch', { kind: 'admin', flags: ['dynamicCode'], sqlArgs: [0] }],
  // NOTIFY as a function: delivered to every listener, allowed in a read-only transaction.
  ['pg_notify', { kind: 'write' }],
  // Index maintenance PostgreSQL runs with default_transaction_read_only on (it writes WAL, no xid):
  // BRIN summaries added or removed, a GIN pending list merged into the index. Like VACUUM: admin.
  ['brin_summarize_new_values', ADMIN],
  ['brin_summarize_range', ADMIN],
  ['brin_desummarize_range', ADMIN],
  ['gin_clean_pending_list', ADMIN],
  // Catalog and server internals: the OID counter, initdb's pinned objects, an extension script's
  // config dump, a WAL running-xacts record (PG 16), adminpack's old rotate, autoprewarm's file/worker.
  ['pg_nextoid', ADMIN],
  ['pg_stop_making_pinned_objects', ADMIN],
  ['pg_extension_config_dump', ADMIN],
  ['pg_log_standby_snapshot', ADMIN],
  ['pg_rotate_logfile_old', ADMIN],
  ['autoprewarm_dump_now', ADMIN],
  ['autoprewarm_start_worker', ADMIN],
  // pageinspect: raw pages of any relation (a table's rows, an index's keys, pg_authid), whatever the
  // table rules say: bt_page_items('cards_pkey', 1) names an index, not the table. Every table.
  ['get_raw_page', { allTables: true }],
  ['bt_page_items', { allTables: true }],
  ['pg_sleep', SLEEP],
  ['pg_sleep_for', SLEEP],
  ['pg_sleep_until', SLEEP],
]);

/** Name prefixes that cover whole families (dblink_*, pg_ls_*dir, replication slots/origins, stat resets). */
const PREFIXES: readonly (readonly [string, FunctionEffect])[] = [
  // dblink(conn, sql), dblink_exec(conn, sql), dblink_open(conn, cursor, sql), …: any constant
  // argument that parses as SQL is classified too (a connection string does not parse).
  ['dblink', { ...REMOTE, flags: ['serverFileAccess', 'remoteAccess', 'dynamicCode'], sqlArgs: [0, 1, 2] }],
  ['pg_ls_', FILE],
  ['pg_stat_reset', ADMIN],
  ['pg_replication_origin_', ADMIN],
  ['pg_create_physical_replication_slot', ADMIN],
  ['pg_create_logical_replication_slot', ADMIN],
  ['pg_copy_physical_replication_slot', ADMIN],
  ['pg_copy_logical_replication_slot', ADMIN],
  ['pg_drop_replication_slot', ADMIN],
  ['pg_replication_slot_advance', ADMIN],
  ['pg_logical_slot_', ADMIN],
  // Only callable in binary-upgrade mode, but each rewrites catalogs.
  ['binary_upgrade_', ADMIN],
];

/** The effect of calling a function with this bare (unqualified, lowercased) name, if any. */
export function functionEffect(bareName: string): FunctionEffect | undefined {
  const exact = EXACT.get(bareName);
  if (exact) return exact;
  for (const [prefix, effect] of PREFIXES) {
    if (bareName.startsWith(prefix)) return effect;
  }
  return undefined;
}

/** True when a column/attribute name is also a flagged function: `t.lo_export` may be `lo_export(t)`. */
export function isFlaggedFunctionName(name: string): boolean {
  return functionEffect(name) !== undefined;
}
