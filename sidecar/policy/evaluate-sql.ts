// SQL policy evaluation: classified statements × compiled policy → one decision for the message.
//
// Deny-overrides per statement (deny > require-approval > allow > the policy default), then per
// message: any denied statement refuses the whole message (nothing is forwarded), else any statement
// needing approval holds the whole message, else it is allowed. Every failure is a deny: a parse error,
// a classifier error, an exception inside a rule.
import type { ClassifyResult, StatementFacts } from '../protocols/postgres/sql-facts.ts';
import { SQL_INVARIANTS, SQL_PACKS, sqlPack } from './packs/index.ts';
import type { CompileResult, CompiledSqlPolicy, CompiledSqlRule } from './sql-rules.ts';
import { compileSqlPolicyWith } from './sql-rules.ts';

/** Reason codes the engine itself produces; rules add their own (kebab-case). */
export type SqlEngineReason = 'default-deny' | 'parse-error' | 'too-complex' | 'classifier-error' | 'policy-error';

export type SqlDecision =
  | { readonly action: 'allow'; readonly rule: string | null; readonly reason: 'allowed' | 'default-allow' | 'empty-query' | (string & {}) }
  | {
      readonly action: 'deny';
      /** Rule id; `chaperone.*` for the engine's own refusals. */
      readonly rule: string;
      readonly reason: SqlEngineReason | (string & {});
      readonly message: string;
      /** Which statement of the message (0-based); null when the message as a whole failed. */
      readonly statementIndex: number | null;
      /** For parse errors: the parser's 0-based character position. */
      readonly cursorPosition?: number | null;
    }
  | {
      readonly action: 'require-approval';
      readonly rule: string;
      readonly reason: string;
      readonly message: string;
      readonly statementIndex: number;
      /** Opaque settings copied from the rule (approver groups, count, timeout…). */
      readonly approval: Readonly<Record<string, unknown>>;
    };

/** Compiles a policy with the built-in packs and invariants. */
export function compileSqlPolicy(json: unknown): CompileResult {
  return compileSqlPolicyWith(json, SQL_INVARIANTS, (n) => sqlPack(n)?.rules, SQL_PACKS.map((p) => p.name));
}

function firstMatch(rules: readonly CompiledSqlRule[], action: CompiledSqlRule['action'], f: StatementFacts, policy: CompiledSqlPolicy): CompiledSqlRule | undefined {
  return rules.find((r) => r.action === action && r.matches(f, policy.ctx));
}

/** One statement's decision. Throws only if a rule throws (evaluateSql turns that into a deny). */
export function evaluateStatement(policy: CompiledSqlPolicy, f: StatementFacts): SqlDecision {
  const deny = firstMatch(policy.rules, 'deny', f, policy);
  if (deny) return { action: 'deny', rule: deny.id, reason: deny.reason, message: deny.message, statementIndex: f.index };
  const approval = firstMatch(policy.rules, 'require-approval', f, policy);
  if (approval) {
    return { action: 'require-approval', rule: approval.id, reason: approval.reason, message: approval.message, statementIndex: f.index, approval: approval.approval };
  }
  const allow = firstMatch(policy.rules, 'allow', f, policy);
  if (allow) return { action: 'allow', rule: allow.id, reason: allow.reason };
  if (policy.defaultAction === 'allow') return { action: 'allow', rule: null, reason: 'default-allow' };
  return {
    action: 'deny',
    rule: 'chaperone.default',
    reason: 'default-deny',
    message: 'no rule allows this statement and the policy default is deny',
    statementIndex: f.index,
  };
}

/**
 * Decisions per policy and cache entry (ClassifyResult `keys`): rules read only shape facts (kind,
 * commands, tables, functions, flags, settings, the normalized text), never a statement's own text,
 * hash or position, so one entry always gets the same decision from one compiled policy. Weak on
 * both sides: a reloaded policy or an evicted entry takes its decisions with it.
 */
const decisions = new WeakMap<CompiledSqlPolicy, WeakMap<object, SqlDecision>>();

/** The facts rules read are the key's own (same arrays, same values): a key passed along with other facts is ignored. */
function sameShape(key: object, f: StatementFacts): boolean {
  if (key === f) return true;
  const k = key as Partial<StatementFacts>;
  return k.tables === f.tables && k.functions === f.functions && k.flags === f.flags && k.commands === f.commands && k.settings === f.settings && k.kind === f.kind && k.normalized === f.normalized;
}

function decide(policy: CompiledSqlPolicy, f: StatementFacts, key: object | undefined): SqlDecision {
  if (key === undefined || !sameShape(key, f)) return evaluateStatement(policy, f);
  let byKey = decisions.get(policy);
  const hit = byKey?.get(key);
  // statementIndex is the one field that comes from the message, not the entry.
  if (hit !== undefined && (hit.action === 'allow' || hit.statementIndex === f.index)) return hit;
  const d = evaluateStatement(policy, f);
  if (byKey === undefined) {
    byKey = new WeakMap();
    decisions.set(policy, byKey);
  }
  byKey.set(key, Object.freeze(d));
  return d;
}

export interface SqlEvaluation {
  /** The decision for the whole message. */
  readonly decision: SqlDecision;
  /** Per statement, for the recording (empty when the message failed to classify). */
  readonly statements: readonly SqlDecision[];
}

/** Judges a classified message. Never throws. */
export function evaluateSqlDetailed(policy: CompiledSqlPolicy, classified: ClassifyResult): SqlEvaluation {
  if (!classified.ok) {
    const e = classified.error;
    const decision: SqlDecision = {
      action: 'deny',
      rule: `chaperone.${e.code}`,
      reason: e.code,
      message: e.code === 'parse-error' ? `the SQL could not be parsed: ${e.message}` : e.message,
      statementIndex: null,
      cursorPosition: e.cursorPosition,
    };
    return { decision, statements: [] };
  }
  let statements: SqlDecision[];
  try {
    const keys = classified.keys;
    statements = classified.statements.map((f, i) => decide(policy, f, keys?.[i]));
  } catch (e) {
    const decision: SqlDecision = {
      action: 'deny',
      rule: 'chaperone.policy-error',
      reason: 'policy-error',
      message: `the policy engine failed, so the statement is refused: ${(e as Error)?.message ?? String(e)}`,
      statementIndex: null,
    };
    return { decision, statements: [] };
  }
  if (statements.length === 0) return { decision: { action: 'allow', rule: null, reason: 'empty-query' }, statements };
  const denied = statements.find((d) => d.action === 'deny');
  if (denied) return { decision: denied, statements };
  const held = statements.find((d) => d.action === 'require-approval');
  return { decision: held ?? statements[0] ?? { action: 'allow', rule: null, reason: 'empty-query' }, statements };
}

export function evaluateSql(policy: CompiledSqlPolicy, classified: ClassifyResult): SqlDecision {
  return evaluateSqlDetailed(policy, classified).decision;
}
