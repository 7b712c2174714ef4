// kubectl-chaperone output (pure): the pending table and one-line summaries of decisions.
import type { ApprovalRequest } from '../api/types.ts';

/** kubectl-style ages: 45s, 3m, 2h, 4d. */
export function age(fromIso: string | undefined, now: number): string {
  const t = fromIso ? Date.parse(fromIso) : NaN;
  if (Number.isNaN(t)) return '<unknown>';
  const s = Math.max(0, Math.round((now - t) / 1000));
  if (s < 120) return `${s}s`;
  if (s < 7200) return `${Math.floor(s / 60)}m`;
  if (s < 172800) return `${Math.floor(s / 3600)}h`;
  return `${Math.floor(s / 86400)}d`;
}

/** "in 9m" / "expired". */
export function expires(iso: string, now: number): string {
  const t = Date.parse(iso);
  if (Number.isNaN(t)) return '<unknown>';
  return t <= now ? 'expired' : `in ${age(new Date(now - (t - now)).toISOString(), now)}`;
}

export function isPending(r: ApprovalRequest): boolean {
  return (r.status?.phase ?? 'Pending') === 'Pending';
}

function requester(r: ApprovalRequest): string {
  const q = r.spec.requester;
  const who = q.username ?? q.subject;
  return q.actingFor ? `${who} (for ${q.actingFor})` : who;
}

function cut(s: string, n: number): string {
  return s.length <= n ? s : `${s.slice(0, n - 1)}…`;
}

/** The columns of `kubectl chaperone approvals`; wide adds phase, rule and approvals. */
export function table(items: readonly ApprovalRequest[], o: { readonly now: number; readonly wide: boolean; readonly allNamespaces: boolean }): string {
  const head = [...(o.allNamespaces ? ['NAMESPACE'] : []), 'NAME', 'AGE', 'IDENTITY', 'CONNECTION', 'COMMAND', 'REQUESTER', 'EXPIRES', ...(o.wide ? ['PHASE', 'RULE', 'APPROVALS'] : [])];
  const rows = items.map((r) => [
    ...(o.allNamespaces ? [r.metadata.namespace ?? ''] : []),
    r.metadata.name ?? '', age(r.metadata.creationTimestamp, o.now), r.spec.identity, r.spec.connection,
    cut(r.spec.command.summary ?? r.spec.command.text, o.wide ? 120 : 60), requester(r), expires(r.spec.expiresAt, o.now),
    ...(o.wide ? [r.status?.phase ?? 'Pending', r.spec.rule.name, `${r.status?.approvals ?? 0}/${r.spec.approval.required}`] : []),
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((row) => (row[i] ?? '').length)));
  const line = (cells: readonly string[]): string => cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i] ?? 0))).join('   ').trimEnd();
  return [line(head), ...rows.map(line)].join('\n');
}

/** What happened after a review patch, from the object the API server returned. */
export function reviewSummary(r: ApprovalRequest, decision: string): string {
  const name = r.metadata.name ?? '';
  const last = (r.spec.reviews ?? []).at(-1);
  const by = last ? ` as ${last.reviewer.username}` : '';
  const count = (r.spec.reviews ?? []).filter((x) => x.decision === 'Approve').length;
  const tail = decision === 'Approve' ? ` (${count} of ${r.spec.approval.required} approval(s)${r.spec.approval.mode === 'each' ? ' from each group' : ''})` : '';
  return `approvalrequest/${name} ${decision === 'Approve' ? 'approved' : decision === 'Deny' ? 'denied' : 'revoked'}${by}${tail}`;
}
