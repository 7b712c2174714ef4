// ApprovalRules selecting one connection → its SQL policy (`SqlPolicyJson`) or its opaque HTTP/Kubernetes rules.
//
// The CRD says "the matching rule with the highest priority decides; at equal priority Deny beats
// RequireApproval beats Allow". The sidecar combines deny-overrides (any matching deny wins, then
// any require-approval, then any allow). Equal priorities therefore need nothing; across priorities
// each rule gets `unless: { anyOf: [<match of every higher-priority rule>] }`, so a lower rule only
// decides when no higher one matches. `unless` is quantified the other way (a deny's exemption must
// hold for every table it names), so where the two readings differ the compiled policy is the
// stricter one.
import type { ApprovalRule, ApprovalRuleMatchHttp, ApprovalRuleMatchSql } from '../api/types.ts';
import type { SqlAction, SqlMatchJson, SqlPolicyJson, SqlRuleJson } from '../../sidecar/policy/sql-rules.ts';
import type { HttpPolicyConfig } from '../../sidecar/core/config-types.ts';
import { hostPatternMatches } from '../../sidecar/protocols/egress/rules.ts';
import { DEFAULT_RULE_PRIORITY } from './select.ts';
import type { CompileError } from './types.ts';

export const DEFAULT_APPROVAL_TIMEOUT = '10m';
const RULE_ID_RE = /^[A-Za-z0-9][A-Za-z0-9_.:/-]{0,127}$/;

const ACTION: Readonly<Record<ApprovalRule['spec']['action'], SqlAction>> = { Deny: 'deny', RequireApproval: 'require-approval', Allow: 'allow' };

/** Go duration (`1h30m`, `10s`, `1.5h`, `250ms`) → whole seconds, rounded up; undefined if it does not parse. */
export function durationSeconds(text: string): number | undefined {
  const re = /([0-9]+(?:\.[0-9]+)?)(ms|s|m|h)/gy;
  let total = 0;
  let end = 0;
  for (let m = re.exec(text); m !== null; m = re.exec(text)) {
    const n = Number(m[1]);
    total += m[2] === 'ms' ? n / 1000 : m[2] === 's' ? n : m[2] === 'm' ? n * 60 : n * 3600;
    end = re.lastIndex;
  }
  if (text === '' || end !== text.length) return undefined;
  return Math.ceil(total);
}

export function rulePath(r: ApprovalRule, field: string): string {
  return `ApprovalRule/${r.metadata.name ?? ''}.${field}`;
}

/** The CRD's sql block → the sidecar's match (empty lists dropped: the sidecar refuses them; `DROP TABLE` → `DROP_TABLE`). */
export function sqlMatch(m: ApprovalRuleMatchSql): SqlMatchJson {
  const list = <T>(v: readonly T[] | undefined): { v: T[] } | undefined => (v !== undefined && v.length > 0 ? { v: [...v] } : undefined);
  const kinds = list(m.kinds);
  const commands = list(m.commands?.map((c) => c.trim().replace(/\s+/g, '_')));
  const tables = list(m.tables);
  const functions = list(m.functions);
  const flags = list(m.flags);
  return {
    ...(kinds ? { kinds: kinds.v } : {}),
    ...(commands ? { commands: commands.v } : {}),
    ...(tables ? { tables: tables.v } : {}),
    ...(functions ? { functions: functions.v } : {}),
    ...(flags ? { flags: flags.v } : {}),
    ...(m.pattern !== undefined ? { pattern: m.pattern } : {}),
  };
}

/** The approval settings the sidecar passes to its backend (`approverGroups`, `timeoutSeconds` are read by the session). */
export function approvalSettings(r: ApprovalRule, errors: CompileError[]): Record<string, unknown> {
  const a: NonNullable<ApprovalRule['spec']['approval']> = r.spec.approval ?? { approvers: {} };
  const seconds = (field: 'timeout' | 'window', text: string | undefined): number | undefined => {
    if (text === undefined) return undefined;
    const n = durationSeconds(text);
    if (n === undefined) errors.push({ path: rulePath(r, `spec.approval.${field}`), message: `${JSON.stringify(text)} is not a duration such as 10m` });
    return n;
  };
  // Undefined fields vanish in the canonical JSON.
  return {
    rule: r.metadata.name ?? '',
    approverGroups: [...(a.approvers.groups ?? [])],
    approverUsers: [...(a.approvers.users ?? [])],
    required: a.required ?? 1,
    mode: a.mode ?? 'any',
    timeoutSeconds: seconds('timeout', a.timeout ?? DEFAULT_APPROVAL_TIMEOUT) ?? 0,
    scope: a.scope ?? 'statement',
    windowSeconds: seconds('window', a.window),
  };
}

function ruleId(r: ApprovalRule, errors: CompileError[]): string {
  const id = r.metadata.name ?? '';
  if (!RULE_ID_RE.test(id)) errors.push({ path: rulePath(r, 'metadata.name'), message: 'the sidecar names rules by the ApprovalRule name, which must be at most 128 characters here' });
  return id;
}

/** `rules` are the ApprovalRules for one postgres connection with a sql block, highest priority first (select.ts order). */
export function compileSqlPolicy(rules: readonly ApprovalRule[], readOnly: boolean, errors: CompileError[]): SqlPolicyJson {
  const out: SqlRuleJson[] = [];
  rules.forEach((r) => {
    const sql = r.spec.match.sql;
    if (sql === undefined) return;
    const prio = r.spec.priority ?? DEFAULT_RULE_PRIORITY;
    const higher = rules.filter((h) => h.spec.match.sql !== undefined && (h.spec.priority ?? DEFAULT_RULE_PRIORITY) > prio).map((h) => sqlMatch(h.spec.match.sql ?? {}));
    const match = sqlMatch(sql);
    const action = ACTION[r.spec.action];
    out.push({
      id: ruleId(r, errors),
      action,
      ...(r.spec.message !== undefined ? { message: r.spec.message } : {}),
      ...(Object.keys(match).length > 0 ? { match } : {}),
      ...(higher.length > 0 ? { unless: { anyOf: higher } } : {}),
      ...(action === 'require-approval' ? { approval: approvalSettings(r, errors) } : {}),
    });
  });
  // The connection itself is the grant: what no rule matches is allowed (the built-in invariants always apply).
  return { default: 'allow', ...(readOnly ? { packs: ['read-only'] } : {}), ...(out.length > 0 ? { rules: out } : {}) };
}

/** The upstream of a fixed-upstream http connection: what `match.http.hosts` is checked against at compile time. */
export interface FixedUpstream {
  readonly host: string;
  readonly port: number;
}

/** An http connection's upstream URL → host and port (undefined when it does not parse; the sidecar's check reports that). */
export function fixedUpstream(url: string | undefined): FixedUpstream | undefined {
  try {
    const u = new URL(url ?? '');
    const port = u.port !== '' ? Number(u.port) : u.protocol === 'https:' ? 443 : 80;
    return { host: u.hostname.replace(/^\[|\]$/g, ''), port };
  } catch {
    return undefined;
  }
}

/**
 * `match.http` as the sidecar takes it. `hosts` (empty means any): a fixed-upstream connection
 * (`upstream` given) is judged here — the rule applies without hosts when one matches its upstream,
 * not at all otherwise (null); the forward proxy (`upstream` undefined) keeps hosts for its own
 * per-target compiler.
 */
function httpMatchFor(m: ApprovalRuleMatchHttp, upstream: FixedUpstream | undefined, proxy: boolean): ApprovalRuleMatchHttp | null {
  const { hosts, ...rest } = structuredClone(m);
  if (hosts === undefined || hosts.length === 0) return rest;
  if (proxy) return { ...rest, hosts };
  if (upstream === undefined) return rest;
  return hosts.some((h) => hostPatternMatches(h, upstream.host, upstream.port)) ? rest : null;
}

/**
 * HTTP and Kubernetes matches are carried as plain objects (`{ id, action, priority, message,
 * match: { http | kubernetes }, approval }`, highest priority first) for the sidecar's rule compiler.
 * `target`: an http connection's upstream, or `'proxy'` for the forward proxy (hosts kept).
 */
export function compileHttpPolicy(rules: readonly ApprovalRule[], block: 'http' | 'kubernetes', errors: CompileError[], target?: FixedUpstream | 'proxy'): HttpPolicyConfig {
  const out: Record<string, unknown>[] = [];
  for (const r of rules) {
    const raw = r.spec.match[block];
    if (raw === undefined) continue;
    const m = block === 'http' ? httpMatchFor(raw as ApprovalRuleMatchHttp, target === 'proxy' ? undefined : target, target === 'proxy') : structuredClone(raw);
    if (m === null) continue;
    if (target === 'proxy') tunnelCheck(r, m as ApprovalRuleMatchHttp, errors);
    const action = ACTION[r.spec.action];
    out.push({
      id: ruleId(r, errors),
      action,
      priority: r.spec.priority ?? DEFAULT_RULE_PRIORITY,
      ...(r.spec.message !== undefined ? { message: r.spec.message } : {}),
      match: { [block]: m },
      ...(action === 'require-approval' ? { approval: approvalSettings(r, errors) } : {}),
    });
  }
  return { default: 'allow', ...(out.length > 0 ? { rules: out } : {}) };
}

/** A CONNECT tunnel is opaque: a proxy rule that names CONNECT cannot also look inside it (the sidecar refuses that too, less readably). */
function tunnelCheck(r: ApprovalRule, m: ApprovalRuleMatchHttp, errors: CompileError[]): void {
  const blind = (['paths', 'query', 'body', 'websocket'] as const).filter((k) => m[k] !== undefined);
  if ((m.methods ?? []).includes('CONNECT') && blind.length > 0) {
    errors.push({ path: rulePath(r, 'spec.match.http'), message: `a CONNECT tunnel through the forward proxy is judged by hosts only; methods CONNECT cannot be combined with ${blind.join(', ')}: split the rule in two` });
  }
}
