// SQL policy rules: the JSON the operator compiles from ApprovalRule CRDs, its validator, and the
// compiled matchers evaluate-sql.ts runs.
//
// Semantics (the contract operators write against):
//  - Combination is deny-overrides: every rule is tested; any matching deny wins, else any matching
//    require-approval, else any matching allow, else the policy's `default` (deny unless it says allow).
//    Among rules of the same action the first in order wins (invariants, then packs, then rules).
//  - A `match` ANDs its fields; list fields OR their entries; `anyOf` ORs sub-matches; `not` negates.
//    An empty match matches every statement. `unless` exempts what it matches from the rule.
//  - Multi-valued facts (tables, functions, commands, settings) are quantified by the action, so that
//    no rule can widen itself by accident: in deny and require-approval rules ONE matching element is
//    enough; in allow rules EVERY element must match (and there must be at least one). Inside `not`
//    and `unless` the quantifier flips (a deny's exception must hold for every table it names).
//  - Table globs: `schema.name`, either part may use `*` and `?`; unquoted parts fold to lowercase like
//    PostgreSQL identifiers, "Quoted" parts are exact; a glob without a dot matches the name in any
//    schema. A statement's unqualified table (search_path decides its schema) is taken to be in the
//    policy's `unqualifiedSchema` when it sets one (and the policy then refuses search_path changes);
//    otherwise it matches any schema in deny/approval rules and only a `*` schema in allow rules.
//  - Function globs work the same way on lowercased names (an unqualified call matches in allow rules
//    only a `*` or `pg_catalog` schema, or `unqualifiedSchema`).
//  - `pattern` is RE2 (linear time; backreferences and lookaround are refused at compile time),
//    matched case-insensitively against the normalized statement: comments removed, whitespace
//    collapsed, unquoted words lowercased, every literal shown as `?`.
import { createRequire } from 'node:module';
import type { SqlFlag, SqlKind, StatementFacts, TableAccess, TableRef } from '../protocols/postgres/sql-facts.ts';
import { SQL_KINDS } from '../protocols/postgres/sql-facts.ts';

export type SqlAction = 'allow' | 'deny' | 'require-approval';

export interface SqlMatchJson {
  readonly kinds?: readonly SqlKind[];
  /** Effective and nested commands: SELECT, INSERT, DELETE, COPY_FROM, CREATE_TABLE, DROP_*, … (globs). */
  readonly commands?: readonly string[];
  readonly tables?: readonly string[];
  /** Narrows `tables` to these access modes (default: any). */
  readonly access?: readonly TableAccess[];
  readonly functions?: readonly string[];
  /** The statement has at least one of these flags (both actions). */
  readonly flags?: readonly SqlFlag[];
  /** Setting names changed by SET/RESET/set_config (globs). */
  readonly settings?: readonly string[];
  readonly pattern?: string;
  readonly anyOf?: readonly SqlMatchJson[];
  readonly not?: SqlMatchJson;
}

export interface SqlRuleJson {
  /** Unique id, named in every decision and in the client's error message. */
  readonly id: string;
  readonly action: SqlAction;
  /** Reason code (kebab-case) carried by the decision; defaults by action. */
  readonly reason?: string;
  /** Human sentence for the client and the recording. */
  readonly message?: string;
  readonly match?: SqlMatchJson;
  readonly unless?: SqlMatchJson;
  /** require-approval only: passed through untouched to the approval backend. */
  readonly approval?: Readonly<Record<string, unknown>>;
}

export interface SqlPolicyJson {
  /** What happens when no rule matches. Default: deny. */
  readonly default?: 'allow' | 'deny';
  /** Built-in packs by name (see packs/index.ts). */
  readonly packs?: readonly string[];
  readonly rules?: readonly SqlRuleJson[];
  /**
   * The schema unqualified table names are taken to be in (the first existing schema of the role's
   * search_path, usually public). Setting it adds a rule refusing search_path changes.
   */
  readonly unqualifiedSchema?: string;
}

export interface PolicyError {
  /** JSON path of the offending field, e.g. `rules[2].match.tables[0]`. */
  readonly path: string;
  readonly message: string;
}

export const SQL_FLAGS: readonly SqlFlag[] = [
  'writesInCte', 'explainAnalyze', 'copyProgram', 'serverFileAccess', 'remoteAccess', 'roleChange', 'dynamicCode',
  'rowLocks', 'selectInto', 'sequenceWrite', 'largeObjectWrite', 'adminFunction', 'readWriteOverride',
  'parserDivergence', 'unresolvedExecute', 'unrecognized', 'trivialWhere', 'deleteWithoutWhere',
  'updateWithoutWhere', 'sleep', 'setConfig',
];
const ACCESS: readonly TableAccess[] = ['read', 'lock', 'write'];
const ACTIONS: readonly SqlAction[] = ['allow', 'deny', 'require-approval'];
const REASON_RE = /^[a-z][a-z0-9]*(?:-[a-z0-9]+)*$/;
const ID_RE = /^[A-Za-z0-9][A-Za-z0-9_.:/-]{0,127}$/;
const MAX_RULES = 2000;

export const DEFAULT_REASON: Readonly<Record<SqlAction, string>> = {
  allow: 'allowed',
  deny: 'rule-denied',
  'require-approval': 'approval-required',
};

// ---------------------------------------------------------------------------------------------
// Compiled form.

export type Quantifier = 'any' | 'all';

interface Ctx {
  readonly unqualifiedSchema: string | null;
}

/** Reads only kind, flags, commands, settings, tables, functions and normalized of `f` (evaluate-sql.ts memoizes decisions on exactly these). */
export type Matcher = (f: StatementFacts, q: Quantifier, ctx: Ctx) => boolean;

export interface CompiledSqlRule {
  readonly id: string;
  readonly action: SqlAction;
  readonly reason: string;
  readonly message: string;
  readonly approval: Readonly<Record<string, unknown>>;
  readonly matches: (f: StatementFacts, ctx: Ctx) => boolean;
  /** Where the rule came from: 'invariant', 'pack:<name>' or 'policy'. */
  readonly source: string;
}

export interface CompiledSqlPolicy {
  readonly defaultAction: 'allow' | 'deny';
  readonly rules: readonly CompiledSqlRule[];
  readonly ctx: Ctx;
  readonly packs: readonly string[];
}

export type CompileResult =
  | { readonly ok: true; readonly policy: CompiledSqlPolicy }
  | { readonly ok: false; readonly errors: readonly PolicyError[] };

// ---------------------------------------------------------------------------------------------
// Globs.

interface NameGlob {
  readonly schema: RegExp | null; // null: no schema part given
  readonly schemaIsStar: boolean;
  readonly name: RegExp;
  /** The name part is an unquoted `*`: it covers every table of the schema. */
  readonly nameIsStar: boolean;
}

function globPartToRegExp(part: string, quoted: boolean): RegExp {
  if (quoted) return new RegExp(`^${escapeRe(part)}$`);
  let re = '';
  for (const ch of part) re += ch === '*' ? '.*' : ch === '?' ? '.' : escapeRe(ch);
  return new RegExp(`^${re}$`, 's');
}

function escapeRe(s: string): string {
  return s.replace(/[\\^$.*+?()[\]{}|/]/g, '\\$&');
}

interface GlobPart {
  text: string;
  quoted: boolean;
}

/** Reads a "quoted" part starting at text[i] === '"'; returns the part and the index after it. */
function quotedPart(text: string, i: number, lower: boolean): [GlobPart, number] | string {
  let j = i + 1;
  let out = '';
  for (;;) {
    if (j >= text.length) return 'unterminated quoted identifier';
    if (text[j] === '"' && text[j + 1] === '"') {
      out += '"';
      j += 2;
    } else if (text[j] === '"') {
      return [{ text: lower ? out.toLowerCase() : out, quoted: true }, j + 1];
    } else {
      out += text[j];
      j++;
    }
  }
}

function plainPart(text: string, i: number): [GlobPart, number] | string {
  let j = i;
  while (j < text.length && text[j] !== '.') {
    if (text[j] === '"') return 'a quote may only start a name part';
    j++;
  }
  const raw = text.slice(i, j);
  if (raw.length === 0) return 'empty name part';
  return [{ text: raw.replace(/[A-Z]+/g, (m) => m.toLowerCase()), quoted: false }, j];
}

/** Splits `a.b`, `"A.x"."B"` into parts; unquoted parts are ASCII-lowercased like PostgreSQL identifiers. */
export function parseGlob(text: string, lowerQuoted = false): { parts: GlobPart[] } | string {
  const parts: GlobPart[] = [];
  let i = 0;
  for (;;) {
    const r = text[i] === '"' ? quotedPart(text, i, lowerQuoted) : plainPart(text, i);
    if (typeof r === 'string') return r;
    parts.push(r[0]);
    i = r[1];
    if (i >= text.length) break;
    if (text[i] !== '.') return `unexpected character ${JSON.stringify(text[i])} after a quoted name`;
    i++;
    if (i >= text.length) return 'name ends with a dot';
  }
  if (parts.length > 2) return 'use schema.name (database-qualified names are not supported)';
  return { parts };
}

function compileNameGlob(text: string, lowerQuoted: boolean): NameGlob | string {
  const parsed = parseGlob(text, lowerQuoted);
  if (typeof parsed === 'string') return parsed;
  const [a, b] = parsed.parts;
  if (!a) return 'empty name';
  if (!b) return { schema: null, schemaIsStar: true, name: globPartToRegExp(a.text, a.quoted), nameIsStar: !a.quoted && a.text === '*' };
  return {
    schema: globPartToRegExp(a.text, a.quoted),
    schemaIsStar: !a.quoted && a.text === '*',
    name: globPartToRegExp(b.text, b.quoted),
    nameIsStar: !b.quoted && b.text === '*',
  };
}

/**
 * A wildcard table (every table of a schema, or of every schema: schema_to_xml, database_to_xml)
 * meets a deny/approval glob whose schema it can meet, whatever the glob's name; an allow glob only
 * when the glob covers every name (`public.*`) of that very schema.
 */
function wildcardMatches(g: NameGlob, schema: string | null, q: Quantifier): boolean {
  if (q === 'all' && !g.nameIsStar) return false;
  if (g.schema === null || g.schemaIsStar) return true;
  if (schema !== null) return g.schema.test(schema);
  return q === 'any';
}

function tableMatches(g: NameGlob, t: TableRef, q: Quantifier, assumed: string | null): boolean {
  const { schema, name } = t;
  if (t.wildcard === true) return wildcardMatches(g, schema, q);
  if (!g.name.test(name)) return false;
  if (g.schema === null || g.schemaIsStar) return true;
  if (schema !== null) return g.schema.test(schema);
  // Unqualified: the pinned schema if the policy pins one (it then refuses search_path changes);
  // otherwise any schema could be meant: deny-side yes, allow-side no.
  if (assumed !== null) return g.schema.test(assumed);
  return q === 'any';
}

function functionMatches(g: NameGlob, schema: string | null, name: string, q: Quantifier, assumed: string | null): boolean {
  if (!g.name.test(name)) return false;
  if (g.schema === null || g.schemaIsStar) return true;
  if (schema !== null) return g.schema.test(schema);
  // Unqualified calls resolve in pg_catalog first, then along search_path.
  if (q === 'any') return true;
  return g.schema.test('pg_catalog') || (assumed !== null && g.schema.test(assumed));
}

function quantify<T>(items: readonly T[], q: Quantifier, test: (t: T) => boolean): boolean {
  if (q === 'any') return items.some(test);
  return items.length > 0 && items.every(test);
}

function flip(q: Quantifier): Quantifier {
  return q === 'any' ? 'all' : 'any';
}

// ---------------------------------------------------------------------------------------------
// Validation + compilation in one pass (errors collected with paths).

interface Builder {
  readonly errors: PolicyError[];
  re2: ((pattern: string) => { test(s: string): boolean }) | undefined;
}

function loadRe2(b: Builder): (pattern: string) => { test(s: string): boolean } {
  if (!b.re2) {
    // re2-wasm is loaded only when a policy has a pattern (it is WASM, like the SQL parser).
    const { RE2 } = createRequire(import.meta.url)('re2-wasm') as { RE2: new (p: string, f: string) => { test(s: string): boolean } };
    b.re2 = (p: string) => new RE2(p, 'iu');
  }
  return b.re2;
}

function err(b: Builder, path: string, message: string): void {
  b.errors.push({ path, message });
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function stringList(b: Builder, v: unknown, path: string): string[] | undefined {
  if (v === undefined) return undefined;
  if (!Array.isArray(v) || v.length === 0) {
    err(b, path, 'must be a non-empty array of strings');
    return undefined;
  }
  const out: string[] = [];
  v.forEach((x, i) => {
    if (typeof x !== 'string' || x.length === 0) err(b, `${path}[${i}]`, 'must be a non-empty string');
    else out.push(x);
  });
  return out;
}

function enumList<T extends string>(b: Builder, v: unknown, path: string, allowed: readonly T[]): T[] | undefined {
  const list = stringList(b, v, path);
  if (!list) return undefined;
  const out: T[] = [];
  list.forEach((x, i) => {
    if ((allowed as readonly string[]).includes(x)) out.push(x as T);
    else err(b, `${path}[${i}]`, `unknown value ${JSON.stringify(x)}; expected one of ${allowed.join(', ')}`);
  });
  return out;
}

const MATCH_KEYS = new Set(['kinds', 'commands', 'tables', 'access', 'functions', 'flags', 'settings', 'pattern', 'anyOf', 'not']);

function compileMatch(b: Builder, v: unknown, path: string, depth = 0): Matcher {
  const never: Matcher = () => false;
  if (!isRecord(v)) {
    err(b, path, 'must be an object');
    return never;
  }
  if (depth > 8) {
    err(b, path, 'nests too deeply (more than 8 levels of anyOf/not)');
    return never;
  }
  for (const k of Object.keys(v)) if (!MATCH_KEYS.has(k)) err(b, `${path}.${k}`, `unknown field; expected one of ${[...MATCH_KEYS].join(', ')}`);
  const parts: Matcher[] = [];
  const kinds = enumList(b, v.kinds, `${path}.kinds`, SQL_KINDS);
  if (kinds) parts.push((f) => kinds.includes(f.kind));
  const flags = enumList(b, v.flags, `${path}.flags`, SQL_FLAGS);
  if (flags) parts.push((f) => flags.some((x) => f.flags.includes(x)));
  const commands = compileSimpleGlobs(b, v.commands, `${path}.commands`, true);
  if (commands) parts.push((f, q) => quantify(f.commands, q, (c) => commands.some((g) => g.test(c))));
  const settings = compileSimpleGlobs(b, v.settings, `${path}.settings`, false);
  if (settings) parts.push((f, q) => quantify(f.settings, q, (s) => settings.some((g) => g.test(s.name))));
  pushTables(b, v, path, parts);
  pushFunctions(b, v, path, parts);
  pushPattern(b, v, path, parts);
  if (v.anyOf !== undefined) {
    if (!Array.isArray(v.anyOf) || v.anyOf.length === 0) err(b, `${path}.anyOf`, 'must be a non-empty array of matches');
    else {
      const subs = v.anyOf.map((m, i) => compileMatch(b, m, `${path}.anyOf[${i}]`, depth + 1));
      parts.push((f, q, c) => subs.some((m) => m(f, q, c)));
    }
  }
  if (v.not !== undefined) {
    const sub = compileMatch(b, v.not, `${path}.not`, depth + 1);
    parts.push((f, q, c) => !sub(f, flip(q), c));
  }
  return (f, q, c) => parts.every((m) => m(f, q, c));
}

function compileSimpleGlobs(b: Builder, v: unknown, path: string, upper: boolean): RegExp[] | undefined {
  const list = stringList(b, v, path);
  if (!list) return undefined;
  return list.map((g) => globPartToRegExp(upper ? g.toUpperCase() : g.toLowerCase(), false));
}

function pushTables(b: Builder, v: Record<string, unknown>, path: string, parts: Matcher[]): void {
  const access = enumList(b, v.access, `${path}.access`, ACCESS);
  const list = stringList(b, v.tables, `${path}.tables`);
  if (access && !list) err(b, `${path}.access`, 'needs `tables` next to it');
  if (!list) return;
  const globs: NameGlob[] = [];
  list.forEach((t, i) => {
    const g = compileNameGlob(t, false);
    if (typeof g === 'string') err(b, `${path}.tables[${i}]`, `bad table glob ${JSON.stringify(t)}: ${g}`);
    else globs.push(g);
  });
  parts.push((f, q, c) =>
    quantify(f.tables, q, (t) => (!access || access.includes(t.access)) && globs.some((g) => tableMatches(g, t, q, c.unqualifiedSchema))),
  );
}

function pushFunctions(b: Builder, v: Record<string, unknown>, path: string, parts: Matcher[]): void {
  const list = stringList(b, v.functions, `${path}.functions`);
  if (!list) return;
  const globs: NameGlob[] = [];
  list.forEach((t, i) => {
    const g = compileNameGlob(t, true);
    if (typeof g === 'string') err(b, `${path}.functions[${i}]`, `bad function glob ${JSON.stringify(t)}: ${g}`);
    else globs.push(g);
  });
  parts.push((f, q, c) =>
    quantify(f.functions, q, (fn) => {
      const dot = fn.lastIndexOf('.');
      const schema = dot < 0 ? null : fn.slice(0, dot);
      const name = dot < 0 ? fn : fn.slice(dot + 1);
      return globs.some((g) => functionMatches(g, schema, name, q, c.unqualifiedSchema));
    }),
  );
}

function pushPattern(b: Builder, v: Record<string, unknown>, path: string, parts: Matcher[]): void {
  if (v.pattern === undefined) return;
  if (typeof v.pattern !== 'string' || v.pattern.length === 0) {
    err(b, `${path}.pattern`, 'must be a non-empty string (an RE2 regular expression)');
    return;
  }
  try {
    const re = loadRe2(b)(v.pattern);
    parts.push((f) => re.test(f.normalized));
  } catch (e) {
    err(b, `${path}.pattern`, `RE2 refused ${JSON.stringify(v.pattern)}: ${(e as Error).message}. RE2 has no backreferences or lookaround.`);
  }
}

const RULE_KEYS = new Set(['id', 'action', 'reason', 'message', 'match', 'unless', 'approval']);

export function compileRule(b: Builder, v: unknown, path: string, source: string): CompiledSqlRule | undefined {
  if (!isRecord(v)) {
    err(b, path, 'must be an object');
    return undefined;
  }
  const errorsBefore = b.errors.length;
  const { id, action } = checkRuleFields(b, v, path);
  const match = v.match === undefined ? (): boolean => true : compileMatch(b, v.match, `${path}.match`);
  const unless = v.unless === undefined ? undefined : compileMatch(b, v.unless, `${path}.unless`);
  if (b.errors.length > errorsBefore || !id || !action) return undefined;
  const q: Quantifier = action === 'allow' ? 'all' : 'any';
  const reason = typeof v.reason === 'string' ? v.reason : DEFAULT_REASON[action];
  return {
    id,
    action,
    reason,
    message: typeof v.message === 'string' ? v.message : `${action} by rule ${id}`,
    approval: isRecord(v.approval) ? v.approval : {},
    matches: (f, c) => match(f, q, c) && !(unless?.(f, flip(q), c) ?? false),
    source,
  };
}

/** Field checks of a rule other than its matches. */
function checkRuleFields(b: Builder, v: Record<string, unknown>, path: string): { id?: string; action?: SqlAction } {
  for (const k of Object.keys(v)) if (!RULE_KEYS.has(k)) err(b, `${path}.${k}`, `unknown field; expected one of ${[...RULE_KEYS].join(', ')}`);
  const id = typeof v.id === 'string' && ID_RE.test(v.id) ? v.id : undefined;
  if (!id) err(b, `${path}.id`, 'must be a string of letters, digits and _ . : / - (at most 128)');
  const action = ACTIONS.find((a) => a === v.action);
  if (!action) err(b, `${path}.action`, `must be one of ${ACTIONS.join(', ')}`);
  if (v.reason !== undefined && (typeof v.reason !== 'string' || !REASON_RE.test(v.reason))) err(b, `${path}.reason`, 'must be a kebab-case code such as "no-bulk-delete"');
  if (v.message !== undefined && typeof v.message !== 'string') err(b, `${path}.message`, 'must be a string');
  if (v.approval !== undefined && (!isRecord(v.approval) || action !== 'require-approval')) err(b, `${path}.approval`, 'is an object, allowed only on require-approval rules');
  return { id, action };
}

export function newBuilder(): Builder {
  return { errors: [], re2: undefined };
}

function compilePacks(b: Builder, v: unknown, packs: PackLookup, packNames: readonly string[], into: CompiledSqlRule[]): string[] {
  const used: string[] = [];
  if (v === undefined) return used;
  (stringList(b, v, 'packs') ?? []).forEach((name, i) => {
    const pack = packs(name);
    if (!pack) {
      err(b, `packs[${i}]`, `unknown pack ${JSON.stringify(name)}; built-in packs: ${packNames.join(', ')}`);
      return;
    }
    used.push(name);
    pack.forEach((r, j) => {
      const c = compileRule(b, r, `packs[${i}](${name}).rules[${j}]`, `pack:${name}`);
      if (c) into.push(c);
    });
  });
  return used;
}

function compilePolicyRules(b: Builder, v: unknown, into: CompiledSqlRule[]): void {
  if (v === undefined) return;
  if (!Array.isArray(v)) {
    err(b, 'rules', 'must be an array of rules');
    return;
  }
  if (v.length > MAX_RULES) {
    err(b, 'rules', `at most ${MAX_RULES} rules`);
    return;
  }
  v.forEach((r, i) => {
    const c = compileRule(b, r, `rules[${i}]`, 'policy');
    if (c) into.push(c);
  });
}

function checkTopFields(b: Builder, json: Record<string, unknown>): { def: 'allow' | 'deny'; unq: string | null } {
  for (const k of Object.keys(json)) {
    if (!['default', 'packs', 'rules', 'unqualifiedSchema'].includes(k)) err(b, k, 'unknown field; expected default, packs, rules, unqualifiedSchema');
  }
  const def = json.default ?? 'deny';
  if (def !== 'allow' && def !== 'deny') err(b, 'default', 'must be "allow" or "deny"');
  const u = json.unqualifiedSchema;
  if (u !== undefined && (typeof u !== 'string' || u === '')) err(b, 'unqualifiedSchema', 'must be a schema name');
  return { def: def === 'allow' ? 'allow' : 'deny', unq: typeof u === 'string' && u !== '' ? u : null };
}

function checkUniqueIds(b: Builder, rules: readonly CompiledSqlRule[]): void {
  const seen = new Map<string, string>();
  for (const r of rules) {
    const prev = seen.get(r.id);
    if (prev !== undefined) err(b, r.source === 'policy' ? 'rules' : r.source, `duplicate rule id ${JSON.stringify(r.id)} (also in ${prev})`);
    seen.set(r.id, r.source);
  }
}

/** Added when a policy pins `unqualifiedSchema`: the pin only holds while search_path stays put. */
const SEARCH_PATH_PINNED: SqlRuleJson = {
  id: 'chaperone.search-path-pinned',
  action: 'deny',
  reason: 'search-path-pinned',
  message: 'this policy resolves unqualified table names in a fixed schema, so search_path may not be changed',
  match: { settings: ['search_path'] },
};

export type PackLookup = (name: string) => readonly SqlRuleJson[] | undefined;

/**
 * Validates and compiles a policy. `invariants` are prepended and cannot be switched off;
 * `packs` resolves built-in pack names. Errors carry JSON paths.
 */
export function compileSqlPolicyWith(json: unknown, invariants: readonly SqlRuleJson[], packs: PackLookup, packNames: readonly string[]): CompileResult {
  const b = newBuilder();
  if (!isRecord(json)) return { ok: false, errors: [{ path: '', message: 'the SQL policy must be an object' }] };
  const { def, unq } = checkTopFields(b, json);
  const rules: CompiledSqlRule[] = [];
  const all = unq === null ? invariants : [...invariants, SEARCH_PATH_PINNED];
  all.forEach((r, i) => {
    const c = compileRule(b, r, `<invariant ${i}>`, 'invariant');
    if (c) rules.push(c);
  });
  const usedPacks = compilePacks(b, json.packs, packs, packNames, rules);
  compilePolicyRules(b, json.rules, rules);
  checkUniqueIds(b, rules);
  if (b.errors.length > 0) return { ok: false, errors: b.errors };
  return {
    ok: true,
    policy: { defaultAction: def, rules, ctx: { unqualifiedSchema: unq }, packs: usedPacks },
  };
}
