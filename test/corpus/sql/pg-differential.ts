// Differential check of the SQL classifier against a real PostgreSQL (a tool, not part of `make test`:
// it needs a corpus of .sql scripts, e.g. PostgreSQL's src/test/regress/sql, and a throwaway server).
//
//   PGURL=postgres://postgres@127.0.0.1:55432/regression DIR=/path/to/regress/sql OUT=/root/diff.jsonl \
//     node --import tsx test/corpus/sql/pg-differential.ts
//
// Each script is split with libpg-query's own scanner and parser (psql meta-commands and COPY data
// dropped), one connection per script, statement_timeout 2 s. For every statement outside a script's
// own transaction: judge it as a read-only connection with the read-only pack would; run it in
// BEGIN READ ONLY … ROLLBACK (SQLSTATE 25006 = PostgreSQL calls it a write); then run it for real in
// BEGIN … txid_current_if_assigned() … COMMIT (an xid = it wrote), which also advances the script's
// state. Also checks that the cached, uncached and literal-varied classifications agree. Writes one
// JSON line per statement and prints the statements the pack allows that PostgreSQL says write.
// Never point it at a server whose data matters: the scripts run for real.
import { appendFileSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import pg from 'pg';
import { compileSqlPolicy } from '../../../sidecar/policy/evaluate-sql.ts';
import type { CompiledSqlPolicy } from '../../../sidecar/policy/sql-rules.ts';
import { judge } from '../../../sidecar/protocols/postgres/judge.ts';
import { SqlClassifier, loadSqlParser } from '../../../sidecar/protocols/postgres/sql-cache.ts';
import { classifyUncached, type ClassifyResult, type ParseFn } from '../../../sidecar/protocols/postgres/sql-facts.ts';
import { PreparedRegistry } from '../../../sidecar/protocols/postgres/sql-prepared.ts';

interface Token {
  readonly start: number;
  readonly end: number;
  readonly text: string;
  readonly tokenName: string;
}
interface Lib {
  scanSync(sql: string): { tokens: Token[] };
  parseSync(sql: string): { stmts?: unknown[] };
  loadModule(): Promise<void>;
}

/** Drops psql meta-command lines and COPY … FROM STDIN data; a trailing \g, \gset … ends a statement. */
export function stripPsql(script: string): string {
  const out: string[] = [];
  let inCopyData = false;
  for (const line of script.split('\n')) {
    if (inCopyData) {
      if (line.trim() === '\\.') inCopyData = false;
      out.push('');
    } else if (/^\s*\\/.test(line)) {
      out.push('');
    } else {
      const l = line.replace(/\\(g|gset|gexec|gx|gdesc|crosstabview|bind)\b.*$/, ';');
      if (/^\s*copy\b/i.test(l) && /\bfrom\s+stdin\b[^;]*;\s*$/i.test(l)) inCopyData = true;
      out.push(l);
    }
  }
  return out.join('\n');
}

function parsesAsOne(lib: Lib, s: string): boolean {
  try {
    return (lib.parseSync(s).stmts?.length ?? 0) === 1;
  } catch {
    return false;
  }
}

/** ';' at parenthesis depth 0 splits; a piece that does not parse is joined with the next ones (BEGIN ATOMIC … END). */
export function splitStatements(lib: Lib, script: string): string[] {
  const text = stripPsql(script);
  let tokens: Token[];
  try {
    tokens = lib.scanSync(text).tokens;
  } catch {
    return [];
  }
  const pieces: string[] = [];
  let depth = 0;
  let start = 0;
  for (const t of tokens) {
    if (t.text === '(') depth++;
    else if (t.text === ')') depth = Math.max(0, depth - 1);
    else if (t.tokenName === 'ASCII_59' && depth === 0) {
      pieces.push(text.slice(start, t.start));
      start = t.end;
    }
  }
  const out: string[] = [];
  for (let i = 0; i < pieces.length; i++) {
    let acc = pieces[i] ?? '';
    if (acc.trim() === '') continue;
    let j = i;
    let ok = parsesAsOne(lib, acc);
    while (!ok && j + 1 < pieces.length && j - i < 30) {
      j++;
      acc = `${acc};${pieces[j] ?? ''}`;
      ok = parsesAsOne(lib, acc);
    }
    if (ok) {
      out.push(acc.trim());
      i = j;
    }
  }
  return out;
}

function signature(r: ClassifyResult): string {
  if (!r.ok) return `error:${r.error.code}`;
  return JSON.stringify(r.statements.map((s) => [s.kind, [...s.flags].sort(), s.command, s.tables.map((t) => `${t.schema ?? ''}.${t.name}:${t.access}`).sort()]));
}

/** The statement with every integer literal changed: the normalized cache must answer as a fresh parse. */
function varied(lib: Lib, sql: string): string | null {
  let outS = '';
  let pos = 0;
  try {
    for (const t of lib.scanSync(sql).tokens) {
      if (t.tokenName !== 'ICONST') continue;
      const n = Number(t.text);
      outS += sql.slice(pos, t.start) + String(n === 0 ? 1 : n === 1 ? 0 : n + 7);
      pos = t.end;
    }
  } catch {
    return null;
  }
  return pos === 0 ? null : outS + sql.slice(pos);
}

type Client = pg.Client & { txStatus?: string };

async function connect(url: string): Promise<Client> {
  for (let attempt = 0; ; attempt++) {
    const c: Client = new pg.Client({ connectionString: url });
    c.on('error', () => undefined);
    try {
      await c.connect();
      const conn = (c as unknown as { connection: { on(e: string, f: (m: { status: string }) => void): void } }).connection;
      conn.on('readyForQuery', (m) => {
        c.txStatus = m.status;
      });
      await c.query("SET statement_timeout = '2s'; SET lock_timeout = '1s'; SET client_min_messages = error");
      return c;
    } catch (e) {
      if (attempt > 60) throw e;
      await new Promise((res) => setTimeout(res, 1000)); // the server may be restarting after a crash
    }
  }
}

async function run(c: Client, sql: string): Promise<{ code: string | null; value?: string | null }> {
  try {
    const res = await c.query(sql);
    const last = Array.isArray(res) ? (res as pg.QueryResult[])[(res as pg.QueryResult[]).length - 1] : res;
    const row = last?.rows?.[0] as Record<string, unknown> | undefined;
    const v = row ? Object.values(row)[0] : undefined;
    return { code: null, value: v === undefined || v === null ? null : typeof v === 'string' ? v : JSON.stringify(v) };
  } catch (e) {
    return { code: (e as { code?: string }).code ?? 'connection' };
  }
}

interface Ctx {
  readonly lib: Lib;
  readonly parse: ParseFn;
  readonly cls: SqlClassifier;
  readonly policy: CompiledSqlPolicy;
}

function classify(ctx: Ctx, prepared: PreparedRegistry, sql: string, rec: Record<string, unknown>): void {
  try {
    const j = judge({ cls: ctx.cls, policy: ctx.policy, prepared, readOnly: true }, sql, 'simple');
    rec['kinds'] = j.facts.map((f) => f.kind);
    rec['flags'] = [...new Set(j.facts.flatMap((f) => f.flags))];
    rec['decision'] = j.decision.action;
    const a = signature(ctx.cls.classify(sql));
    const u = signature(classifyUncached(ctx.parse, sql));
    if (a !== u) rec['cacheDiffers'] = { a, u };
    const v = varied(ctx.lib, sql);
    if (v !== null) {
      const va = signature(ctx.cls.classify(v));
      const vu = signature(classifyUncached(ctx.parse, v));
      if (va !== vu) rec['variedDiffers'] = { v, va, vu };
    }
    for (const f of j.facts) prepared.observe(f);
  } catch (e) {
    rec['crash'] = String(e);
  }
}

/** Read-only probe, then the real run in a transaction that reports whether it took an xid. */
async function probe(c: Client, sql: string, rec: Record<string, unknown>): Promise<void> {
  await run(c, 'BEGIN READ ONLY');
  rec['readOnlyCode'] = (await run(c, sql)).code;
  await run(c, 'ROLLBACK');
  await run(c, 'BEGIN');
  const rw = await run(c, sql);
  rec['code'] = rw.code;
  if (rw.code === '25001') {
    await run(c, 'ROLLBACK'); // cannot run inside a transaction block: run it bare
    rec['code'] = (await run(c, sql)).code;
    return;
  }
  if (rw.code === null && c.txStatus === 'T') rec['xid'] = (await run(c, 'SELECT txid_current_if_assigned()')).value ?? null;
  if (c.txStatus !== 'I') await run(c, 'COMMIT');
}

async function runScript(ctx: Ctx, url: string, file: string, out: string): Promise<Record<string, unknown>[]> {
  const stmts = splitStatements(ctx.lib, readFileSync(file, 'utf8'));
  const prepared = new PreparedRegistry();
  const found: Record<string, unknown>[] = [];
  let c = await connect(url);
  for (const sql of stmts) {
    const rec: Record<string, unknown> = { file, sql };
    classify(ctx, prepared, sql, rec);
    const transactionControl = Array.isArray(rec['kinds']) && (rec['kinds'] as string[]).includes('transaction');
    if (c.txStatus === 'I' && !transactionControl) await probe(c, sql, rec);
    else rec['code'] = (await run(c, sql)).code; // inside the script's own transaction: no oracle
    if (rec['code'] === 'connection' || rec['readOnlyCode'] === 'connection') {
      await c.end().catch(() => undefined);
      c = await connect(url);
    }
    const writes = rec['readOnlyCode'] === '25006' || (typeof rec['xid'] === 'string' && rec['xid'] !== '');
    if ((rec['decision'] === 'allow' && writes) || rec['crash'] || rec['cacheDiffers'] || rec['variedDiffers']) found.push(rec);
    appendFileSync(out, `${JSON.stringify(rec)}\n`);
  }
  await c.end().catch(() => undefined);
  return found;
}

async function main(): Promise<void> {
  const url = process.env['PGURL'];
  const dir = process.env['DIR'];
  const out = process.env['OUT'] ?? 'pg-differential.jsonl';
  if (!url || !dir) throw new Error('set PGURL (a throwaway server) and DIR (a folder of .sql scripts)');
  const lib = (await import('libpg-query')) as unknown as Lib;
  await lib.loadModule();
  const parse = await loadSqlParser();
  const compiled = compileSqlPolicy({ default: 'allow', packs: ['read-only'] });
  if (!compiled.ok) throw new Error('read-only pack does not compile');
  const ctx: Ctx = { lib, parse, cls: new SqlClassifier(parse), policy: compiled.policy };
  writeFileSync(out, '');
  const files = readdirSync(dir).filter((f) => f.endsWith('.sql')).sort((a, b) => (a === 'test_setup.sql' ? -1 : b === 'test_setup.sql' ? 1 : a.localeCompare(b)));
  for (const f of files) {
    for (const rec of await runScript(ctx, url, `${dir}/${f}`, out)) console.log(JSON.stringify(rec));
  }
}

if (import.meta.url === `file://${process.argv[1]}`) await main();
