// Judging one client SQL message (pure): classify, resolve EXECUTE, evaluate the policy, add the read-only wall; and the refusal's error fields.
import { ERRORS, formatMessage, type ErrorCode } from '../../core/errors.ts';
import type { CompiledSqlPolicy } from '../../policy/sql-rules.ts';
import { evaluateSql, type SqlDecision } from '../../policy/evaluate-sql.ts';
import type { StatementClassification } from '../../recording/event.ts';
import type { Protocol, SqlClassifier } from './sql-cache.ts';
import { displayTable, isTrueish, sha256Hex, type ClassifyResult, type SettingChange, type StatementFacts } from './sql-facts.ts';
import type { PreparedRegistry } from './sql-prepared.ts';

export interface Judgement {
  readonly decision: SqlDecision;
  readonly facts: readonly StatementFacts[];
  readonly classification: StatementClassification;
  /** What an approval binds to: the statement's own hash, or the whole message's for several statements. */
  readonly hash: string;
}

/** Settings whose change would lift the read-only second wall set at start-up. */
const READ_ONLY_SETTINGS = new Set(['default_transaction_read_only', 'transaction_read_only', '*']);

/**
 * Turning read-only on is what the connection already is: BEGIN READ ONLY, SET TRANSACTION READ ONLY,
 * SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY (pgjdbc's setReadOnly(true), Spring's
 * readOnly transactions). Only a SET to a value PostgreSQL reads as true; the value is a literal, so
 * such shapes are cached by exact text only.
 */
function turnsReadOnlyOn(s: SettingChange): boolean {
  return s.name !== '*' && s.action === 'set' && isTrueish(s.value);
}

/** A read-only connection refuses anything that could undo default_transaction_read_only, whatever the policy says. */
export function readOnlyViolation(facts: readonly StatementFacts[]): SqlDecision | null {
  for (const f of facts) {
    const setting = f.settings.find((s) => READ_ONLY_SETTINGS.has(s.name) && !turnsReadOnlyOn(s));
    if (f.flags.includes('readWriteOverride') || setting !== undefined) {
      return {
        action: 'deny',
        rule: 'chaperone.read-only',
        reason: 'read-only-connection',
        message: `this connection is read-only; ${setting ? `changing ${setting.name === '*' ? 'every setting (RESET ALL/DISCARD ALL)' : setting.name}` : 'a READ WRITE transaction'} is not allowed`,
        statementIndex: f.index,
      };
    }
  }
  return null;
}

/**
 * A normalized cache hit copies the shape's `tables` and `functions` arrays by reference, so for a
 * one-statement message those arrays identify the shape: its classification is built once (hot path).
 */
const classified = new WeakMap<object, { readonly kind: string; readonly functions: readonly string[]; readonly c: StatementClassification }>();

function classificationOf(facts: readonly StatementFacts[]): StatementClassification {
  const one = facts.length === 1 ? facts[0] : undefined;
  if (one === undefined) return buildClassification(facts);
  const hit = classified.get(one.tables);
  if (hit !== undefined && hit.kind === one.kind && hit.functions === one.functions) return hit.c;
  const c = buildClassification(facts);
  Object.freeze(c.kinds);
  Object.freeze(c.tables);
  Object.freeze(c.functions);
  classified.set(one.tables, { kind: one.kind, functions: one.functions, c: Object.freeze(c) });
  return c;
}

function buildClassification(facts: readonly StatementFacts[]): StatementClassification {
  const tables = new Set<string>();
  const functions = new Set<string>();
  for (const f of facts) {
    for (const t of f.tables) tables.add(displayTable(t));
    for (const fn of f.functions) functions.add(fn);
  }
  return { kinds: facts.map((f) => f.kind), tables: [...tables], functions: [...functions] };
}

/** What judging needs besides the text: the session's classifier, policy, PREPARE registry and read-only flag. */
export interface JudgeContext {
  readonly cls: SqlClassifier;
  readonly policy: CompiledSqlPolicy;
  readonly prepared: PreparedRegistry;
  readonly readOnly: boolean;
}

/** Classifies and judges a Query ('simple') or Parse ('extended') text. Never throws (a failure is a deny). */
export function judge(jc: JudgeContext, sql: string, protocol: Protocol): Judgement {
  const { cls, policy, prepared, readOnly } = jc;
  let classified: ClassifyResult = cls.classify(sql, protocol);
  let facts: readonly StatementFacts[] = [];
  if (classified.ok) {
    const { statements, keys } = classified;
    facts = statements.map((s) => prepared.resolve(s));
    // A statement EXECUTE resolved to other facts is no longer its cache entry's: no memo key.
    const resolvedKeys = keys?.map((k, i) => (facts[i] === statements[i] ? k : undefined));
    classified = { ok: true, statements: facts, cache: classified.cache, ...(resolvedKeys !== undefined ? { keys: resolvedKeys } : {}) };
  }
  let decision = evaluateSql(policy, classified);
  if (decision.action !== 'deny' && readOnly) decision = readOnlyViolation(facts) ?? decision;
  const hash = facts.length === 1 && facts[0] ? facts[0].hash : sha256Hex(sql);
  return { decision, facts, classification: classificationOf(facts), hash };
}

/** ErrorResponse fields for one of our refusals; the code is named at the end of the message so logs and tests can find it. */
export function errorFields(code: ErrorCode, params: Readonly<Record<string, string | number>>, severity: 'ERROR' | 'FATAL' = 'ERROR', extra: Readonly<Record<string, string>> = {}): Record<string, string> {
  const spec = ERRORS[code];
  return { S: severity, V: severity, C: spec.sqlState, M: `${formatMessage(spec.message, params)} [${code}]`, ...extra };
}

/** The client's error for a denied statement: rule, reason and message; a parse error carries the parser's position. */
export function denialFields(d: Extract<SqlDecision, { action: 'deny' }>): Record<string, string> {
  const extra: Record<string, string> = {};
  if (d.cursorPosition !== undefined && d.cursorPosition !== null) extra['P'] = String(d.cursorPosition + 1);
  extra['H'] = d.rule.startsWith('chaperone.parse') ? 'the PostgreSQL parser could not read this SQL, so Chaperone refuses it (fail closed)' : `refused by rule ${d.rule}; ask the platform team if this statement should be allowed`;
  return errorFields('CHAP_ERR_SQL_DENIED', { rule: d.rule, reason: d.reason, detail: d.message }, 'ERROR', extra);
}
