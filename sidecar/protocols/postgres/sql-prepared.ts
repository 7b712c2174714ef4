// Per-session registry of SQL-level PREPARE statements, so that EXECUTE p classifies as p's statement.
//
// Use: `resolve(facts)` before judging a statement; `observe(facts)` for every statement forwarded
// upstream. The classifier alone marks EXECUTE as admin + unresolvedExecute (fail closed); only a
// registry that saw the PREPARE turns it into the prepared statement's facts. A name prepared twice
// (the second PREPARE fails on the server, unless the first one failed) resolves to the union of
// both definitions, so the registry errs toward the more restrictive reading.
import type { SqlFlag, SqlKind, StatementFacts, TableRef, DmlOp, SettingChange } from './sql-facts.ts';
import { maxKind } from './sql-facts.ts';
import { functionEffect } from './sql-functions.ts';

const MAX_PREPARED = 1000;

export class PreparedRegistry {
  private readonly byName = new Map<string, StatementFacts[]>();

  /** Records the PREPARE / DEALLOCATE / DISCARD ALL effects of a forwarded statement. */
  observe(f: StatementFacts): void {
    for (const d of f.deallocates) {
      if (d === '*') this.byName.clear();
      else this.byName.delete(d);
    }
    if (f.prepares === null) return;
    const list = this.byName.get(f.prepares);
    if (list) list.push(f);
    else if (this.byName.size < MAX_PREPARED) this.byName.set(f.prepares, [f]);
  }

  /** Replaces unresolved EXECUTE facts by the prepared statements' facts merged into them. */
  resolve(f: StatementFacts): StatementFacts {
    if (f.executes.length === 0) return f;
    const prepared: StatementFacts[] = [];
    for (const name of f.executes) {
      const defs = this.byName.get(name);
      if (!defs) return f; // Unknown name: stays admin + unresolvedExecute.
      prepared.push(...defs);
    }
    return merge(f, prepared);
  }

  get size(): number {
    return this.byName.size;
  }
}

function merge(exec: StatementFacts, prepared: readonly StatementFacts[]): StatementFacts {
  // The EXECUTE's own kind is admin only because it was unresolved; what else the statement is
  // (CREATE TABLE x AS EXECUTE p: ddl) stays, combined with the definitions.
  let kind = exec.kindBesidesExecute;
  const tables = new Map<string, TableRef>();
  const functions = new Set(exec.functions);
  const flags = new Set<SqlFlag>(exec.flags);
  flags.delete('unresolvedExecute');
  // EXECUTE p: p's commands; CREATE TABLE x AS EXECUTE p: CREATE_TABLE_AS and p's.
  const bare = exec.command === 'EXECUTE';
  const commands = new Set<string>(exec.commands.filter((c) => c !== 'EXECUTE'));
  const dml: DmlOp[] = [];
  const settings: SettingChange[] = [...exec.settings];
  for (const t of exec.tables) addTable(tables, t);
  let hasWhere: boolean | null = null;
  for (const p of prepared) {
    kind = maxKind(kind, p.kind);
    for (const t of p.tables) addTable(tables, t);
    for (const fn of p.functions) functions.add(fn);
    for (const fl of p.flags) flags.add(fl);
    for (const c of p.commands) commands.add(c);
    dml.push(...p.dml);
    settings.push(...p.settings);
    if (bare && p.hasWhere !== null) hasWhere = (hasWhere ?? true) && p.hasWhere;
  }
  return {
    ...exec,
    kind: maxKind(kind, parameterKind(exec)),
    kindBesidesExecute: maxKind(kind, parameterKind(exec)),
    command: bare ? (prepared[0]?.command ?? exec.command) : exec.command,
    commands: [...commands],
    tables: [...tables.values()],
    functions: [...functions],
    dml,
    flags: [...flags].sort(),
    settings,
    hasWhere,
  };
}

/** Functions in EXECUTE's own parameters (EXECUTE p(nextval('s'))) still count. */
function parameterKind(exec: StatementFacts): SqlKind {
  let kind: SqlKind = 'read';
  for (const fn of exec.functions) {
    const effect = functionEffect(fn.slice(fn.lastIndexOf('.') + 1));
    if (effect?.kind) kind = maxKind(kind, effect.kind);
  }
  return kind;
}

function addTable(tables: Map<string, TableRef>, t: TableRef): void {
  const k = `${t.schema ?? ''}\u0001${t.name}`;
  const prev = tables.get(k);
  if (!prev || rank(t.access) > rank(prev.access)) tables.set(k, t);
}

function rank(a: TableRef['access']): number {
  return a === 'write' ? 2 : a === 'lock' ? 1 : 0;
}
