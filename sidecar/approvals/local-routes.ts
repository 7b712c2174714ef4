// Admin routes of the `local` approval backend: list held commands and approve or deny them with an approver's token.
import type { AdminRequest, AdminResponse, AdminRoutes } from '../admin/routes.ts';
import { requestBearer } from '../identity/bearer.ts';
import type { TokenVerifier } from '../identity/verify-token.ts';
import type { LocalApprovals } from '../protocols/postgres/approval-hold.ts';
import { mayDecide } from './may-decide.ts';

export interface LocalApprovalRoutesOptions {
  readonly backend: LocalApprovals;
  readonly verifier: TokenVerifier;
  readonly approverGroups: readonly string[];
  /** Called for every decision attempt (logged by the caller; never the token). */
  readonly audit?: (e: { readonly id: string; readonly by: string; readonly decision: string; readonly ok: boolean; readonly why: string }) => void;
}

const MAX_REASON = 500;

function json(status: number, body: object): AdminResponse {
  return { status, body };
}

/** The reason from a `{ "reason": "…" }` body; empty when absent, undefined when the body is not that shape. */
function readReason(body: Buffer): string | undefined {
  if (body.length === 0) return '';
  try {
    const v = JSON.parse(body.toString('utf8')) as unknown;
    if (typeof v !== 'object' || v === null) return undefined;
    const r = (v as { reason?: unknown }).reason;
    if (r === undefined) return '';
    return typeof r === 'string' ? r.slice(0, MAX_REASON) : undefined;
  } catch {
    return undefined;
  }
}

/**
 * GET  /approvals                   pending held commands (masked statement text)
 * POST /approvals/<id>/approve      body {"reason": "…"} optional
 * POST /approvals/<id>/deny         body {"reason": "…"} optional
 * Every call needs `Authorization: Bearer <token>` of a principal in an approver group.
 */
export function registerLocalApprovalRoutes(routes: AdminRoutes, o: LocalApprovalRoutesOptions): void {
  const authenticate = async (req: AdminRequest): Promise<{ principal: import('../identity/principal.ts').Principal } | AdminResponse> => {
    const v = await o.verifier.verify(requestBearer(req));
    if (!v.ok) return json(401, { error: 'CHAP_ERR_AUTH_TOKEN_REFUSED', reason: v.reason, message: `the approver token was refused (${v.reason}): ${v.message}` });
    if (!v.principal.groups.some((g) => o.approverGroups.includes(g))) {
      return json(403, { error: 'CHAP_ERR_APPROVAL_FORBIDDEN', reason: 'not-an-approver', message: `${v.principal.username} is not in an approver group (${o.approverGroups.join(', ') || 'none configured'})` });
    }
    return { principal: v.principal };
  };

  routes.add('GET', '/approvals', async (req) => {
    const a = await authenticate(req);
    if ('status' in a) return a;
    const pending = o.backend.pending().map((r) => ({
      id: r.id, connection: r.connection, session: r.session, requester: r.username, groups: r.groups,
      statement: r.statement, statementHash: r.statementHash, rule: r.rule, reason: r.reason, message: r.message, approverGroups: r.approverGroups,
    }));
    return json(200, { pending });
  });

  routes.add('POST', '/approvals/*', async (req) => {
    const m = /^\/approvals\/([A-Za-z0-9_.:-]{1,128})\/(approve|deny)$/.exec(req.url.pathname);
    if (!m) return json(404, { error: 'not-found', message: 'use POST /approvals/<id>/approve or /approvals/<id>/deny' });
    const [, id = '', verb] = m;
    const a = await authenticate(req);
    if ('status' in a) return a;
    const reason = readReason(req.body);
    if (reason === undefined) return json(400, { error: 'bad-request', message: 'the body must be JSON like {"reason": "…"} (reason optional, a string)' });
    const held = o.backend.pending().find((r) => r.id === id);
    if (!held) return json(404, { error: 'not-pending', message: `request ${id} is not pending (unknown, already decided, expired or cancelled)` });
    const may = mayDecide(a.principal, held, o.approverGroups);
    const decision = verb === 'approve' ? 'approved' : 'denied';
    o.audit?.({ id, by: a.principal.username, decision, ok: may.ok, why: may.ok ? reason : may.message });
    if (!may.ok) return json(403, { error: 'CHAP_ERR_APPROVAL_FORBIDDEN', reason: may.reason, message: may.message });
    const done = o.backend.decide(id, decision, a.principal.username, reason);
    if (!done) return json(409, { error: 'not-pending', message: `request ${id} was decided or ended meanwhile` });
    return json(200, { id, decision, by: a.principal.username });
  });
}
