// The ApprovalRequest a held command becomes (pure): identity, requester, the masked command bound to its SHA-256, the rule's approval snapshot, expiresAt.
import type { ApprovalRequest as HeldCommand } from '../protocols/postgres/approval-hold.ts';
import type { ApprovalRequest as ApprovalRequestObject } from '../../operator/api/types.ts';

export const API_GROUP_VERSION = 'chaperone.dev/v1alpha1';
export const MAX_TEXT = 16384;
export const MAX_SUMMARY = 200;
export const LABEL_IDENTITY = 'chaperone.dev/identity';
export const LABEL_CONNECTION = 'chaperone.dev/connection';
export const LABEL_POD_UID = 'chaperone.dev/pod-uid';
export const LABEL_MANAGED_BY = 'app.kubernetes.io/managed-by';

/** Most restrictive first: a statement of several kinds is listed under the first it has. */
const KIND_ORDER = ['admin', 'dcl', 'ddl', 'write', 'utility', 'transaction', 'read'] as const;
type SqlKind = (typeof KIND_ORDER)[number];
const LABEL_VALUE = /^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/;

export interface PodRef {
  readonly name?: string;
  readonly uid?: string;
  readonly namespace: string;
}

export interface ApprovalSnapshot {
  readonly groups: string[];
  readonly users: string[];
  readonly required: number;
  readonly mode: 'any' | 'each';
  readonly scope: 'statement' | 'window';
  readonly timeoutSeconds: number;
  readonly windowSeconds: number | undefined;
}

function strings(v: unknown): string[] {
  return Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : [];
}

function posInt(v: unknown): number | undefined {
  return typeof v === 'number' && Number.isFinite(v) && v > 0 ? Math.round(v) : undefined;
}

/** The rule's approval settings as the compiler wrote them (operator/compile/rules.ts approvalSettings), with safe defaults. */
export function approvalSnapshot(held: HeldCommand): ApprovalSnapshot {
  const s = held.settings;
  const groups = strings(s['approverGroups']);
  return {
    groups: groups.length > 0 ? groups : [...held.approverGroups],
    users: strings(s['approverUsers']),
    required: Math.min(posInt(s['required']) ?? 1, 10),
    mode: s['mode'] === 'each' ? 'each' : 'any',
    scope: s['scope'] === 'window' && posInt(s['windowSeconds']) !== undefined ? 'window' : 'statement',
    timeoutSeconds: Math.max(1, Math.round(held.timeoutMs / 1000)),
    windowSeconds: posInt(s['windowSeconds']),
  };
}

/** One line for listings: whitespace collapsed, cut with an ellipsis. */
export function summaryOf(text: string): string {
  const one = text.replace(/\s+/g, ' ').trim();
  return one.length <= MAX_SUMMARY ? one : `${one.slice(0, MAX_SUMMARY - 1)}…`;
}

function sqlKind(kinds: readonly string[]): SqlKind | undefined {
  return KIND_ORDER.find((k) => kinds.includes(k));
}

function labels(held: HeldCommand, pod: PodRef): Record<string, string> {
  const out: Record<string, string> = { [LABEL_MANAGED_BY]: 'chaperone-sidecar' };
  const put = (k: string, v: string | undefined): void => {
    if (v !== undefined && v.length <= 63 && LABEL_VALUE.test(v)) out[k] = v;
  };
  put(LABEL_IDENTITY, held.identity);
  put(LABEL_CONNECTION, held.connection);
  put(LABEL_POD_UID, pod.uid);
  return out;
}

function sqlBlock(held: HeldCommand): NonNullable<ApprovalRequestObject['spec']['command']['sql']> | undefined {
  const c = held.classification;
  if (c === undefined) return undefined;
  const kind = sqlKind(c.kinds);
  return {
    ...(kind ? { kind } : {}),
    ...(c.tables.length ? { tables: c.tables.slice(0, 64).map((t) => t.slice(0, 256)) } : {}),
    ...(c.functions.length ? { functions: c.functions.slice(0, 64).map((f) => f.slice(0, 128)) } : {}),
  };
}

function requester(held: HeldCommand): ApprovalRequestObject['spec']['requester'] {
  return {
    subject: held.subject,
    ...(held.username ? { username: held.username } : {}),
    ...(held.issuer ? { issuer: held.issuer } : {}),
    ...(held.groups.length ? { groups: held.groups.slice(0, 64) } : {}),
    ...(held.actingFor ? { actingFor: held.actingFor } : {}),
  };
}

/** The protocol, from the held command or, for callers that do not say, from its id prefix (`http-…`, `kubernetes-…`). */
export function protocolOf(held: HeldCommand): 'postgres' | 'http' | 'kubernetes' {
  if (held.protocol) return held.protocol;
  if (held.id.startsWith('http-')) return 'http';
  if (held.id.startsWith('kubernetes-')) return 'kubernetes';
  return 'postgres';
}

/** `GET /path?x` (the HTTP gateways' statement text) → method and path. */
function httpBlock(text: string): { method: string; path: string } | undefined {
  const m = /^([A-Z]{1,16}) (\S{1,4096})/.exec(text);
  return m ? { method: m[1] ?? '', path: m[2] ?? '' } : undefined;
}

function command(held: HeldCommand): ApprovalRequestObject['spec']['command'] {
  const protocol = protocolOf(held);
  const truncated = held.statement.length > MAX_TEXT;
  const sql = protocol === 'postgres' ? sqlBlock(held) : undefined;
  const http = protocol === 'http' ? httpBlock(held.statement) : undefined;
  return {
    protocol,
    text: truncated ? held.statement.slice(0, MAX_TEXT) : held.statement,
    ...(truncated ? { truncated } : {}),
    summary: summaryOf(held.statement),
    sha256: held.statementHash,
    ...(sql ? { sql } : {}),
    ...(http ? { http } : {}),
  };
}

/** The object the sidecar POSTs. `now` is ms since the epoch; expiresAt is now plus the wait. */
export function requestObject(held: HeldCommand, pod: PodRef, now: number): ApprovalRequestObject {
  const a = approvalSnapshot(held);
  return {
    apiVersion: API_GROUP_VERSION,
    kind: 'ApprovalRequest',
    metadata: { name: held.id, namespace: pod.namespace, labels: labels(held, pod) },
    spec: {
      identity: held.identity,
      connection: held.connection,
      session: held.session,
      ...(pod.name ? { pod: { name: pod.name, ...(pod.uid ? { uid: pod.uid } : {}) } } : {}),
      requester: requester(held),
      command: command(held),
      ...(held.purpose ? { purpose: held.purpose.slice(0, 1024) } : {}),
      rule: { name: held.rule, ...(held.message ? { message: held.message.slice(0, 1024) } : {}) },
      approval: {
        approvers: { ...(a.groups.length ? { groups: a.groups } : {}), ...(a.users.length ? { users: a.users } : {}) },
        required: a.required,
        mode: a.mode,
        scope: a.scope,
        timeout: `${a.timeoutSeconds}s`,
        ...(a.scope === 'window' ? { window: `${a.windowSeconds ?? 60}s` } : {}),
      },
      expiresAt: new Date(now + held.timeoutMs).toISOString(),
    },
  };
}
