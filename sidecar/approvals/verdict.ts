// What an ApprovalRequest's status means for the held command (pure): still pending, approved (hash bound), or refused with the reason.
import type { ApprovalRequest as HeldCommand } from '../protocols/postgres/approval-hold.ts';
import type { ApprovalRequest as ApprovalRequestObject } from '../../operator/api/types.ts';

/**
 * Stamped by the operator's mutating webhook on create: the authenticated user that created the
 * request (the sidecar's ServiceAccount). Defined here so the sidecar loads no operator code.
 */
export const CREATED_BY_ANNOTATION = 'chaperone.dev/created-by';

export type Verdict =
  | { readonly kind: 'pending' }
  | { readonly kind: 'approved'; readonly reason: string; readonly by: string[]; readonly windowEndsAt?: number }
  | { readonly kind: 'denied' | 'expired'; readonly reason: string; readonly by: string[] };

/**
 * The object this sidecar created: its uid (and the creator the admission webhook stamped). A request deleted and
 * recreated under the same name with the same fields is another object, with its own reviews: it never stands in.
 */
export interface Binding {
  readonly uid?: string;
  readonly creator?: string;
}

/** The binding of the object the API server returned on create. */
export function bindingOf(created: ApprovalRequestObject): Binding {
  const creator = created.metadata.annotations?.[CREATED_BY_ANNOTATION];
  return { ...(created.metadata.uid ? { uid: created.metadata.uid } : {}), ...(creator !== undefined ? { creator } : {}) };
}

/** Why `obj` is not the object bound, or undefined when it is. */
function replaced(obj: ApprovalRequestObject, bound: Binding | undefined): string | undefined {
  if (bound === undefined) return undefined;
  if (bound.uid !== undefined && obj.metadata.uid !== bound.uid) return `uid ${obj.metadata.uid ?? '(none)'}, not ${bound.uid}`;
  const creator = obj.metadata.annotations?.[CREATED_BY_ANNOTATION];
  if (bound.creator !== undefined && creator !== bound.creator) return `created by ${creator ?? '(nobody recorded)'}, not ${bound.creator}`;
  return undefined;
}

/** A window is shared by one requester on one connection under one rule of one identity. */
export function windowKey(req: HeldCommand): string {
  return JSON.stringify([req.identity, req.connection, req.rule, req.subject]);
}

function reviewers(obj: ApprovalRequestObject, decision: 'Approve' | 'Deny' | 'Revoke'): string[] {
  return [...new Set((obj.spec.reviews ?? []).filter((r) => r.decision === decision).map((r) => r.reviewer.username))];
}

/** The request names exactly this command: same name, identity, connection, rule, requester and SHA-256 (fail closed on any difference). */
function mismatch(obj: ApprovalRequestObject, req: HeldCommand, window: boolean): string | undefined {
  const s = obj.spec;
  if (s.identity !== req.identity || s.connection !== req.connection) return 'identity or connection';
  if (s.rule.name !== req.rule) return 'rule';
  if (s.requester.subject !== req.subject) return 'requester';
  if (!window && s.command.sha256 !== req.statementHash) return 'statement hash';
  if (window && s.approval.scope !== 'window') return 'scope';
  return undefined;
}

function approved(obj: ApprovalRequestObject, req: HeldCommand, now: number, window: boolean): Verdict {
  const name = obj.metadata.name ?? req.id;
  const why = obj.status?.reason ? `: ${obj.status.reason}` : '';
  const bad = mismatch(obj, req, window);
  if (bad) return { kind: 'denied', reason: `ApprovalRequest ${name} was approved for a different ${bad} than the held statement, so it is refused`, by: [] };
  if (obj.spec.approval.scope !== 'window') return { kind: 'approved', reason: `approved${why}`, by: reviewers(obj, 'Approve') };
  const end = obj.status?.window?.expiresAt ? Date.parse(obj.status.window.expiresAt) : NaN;
  if (Number.isNaN(end) || end <= now) return { kind: 'expired', reason: `the approved window of ApprovalRequest ${name} has ended`, by: [] };
  return { kind: 'approved', reason: `approved${why}`, by: reviewers(obj, 'Approve'), windowEndsAt: end };
}

/**
 * `window`: the request is consulted for a later statement under an approved window (its hash is of
 * the first statement; the window's end and revocation decide). `bound`: the object the sidecar created
 * (bindingOf); any other object of that name is refused, whatever its phase.
 */
export function verdictOf(obj: ApprovalRequestObject, req: HeldCommand, now: number, o: { readonly window: boolean; readonly bound?: Binding }): Verdict {
  const name = obj.metadata.name ?? req.id;
  const other = replaced(obj, o.bound);
  if (other !== undefined) return { kind: 'denied', reason: `ApprovalRequest ${name} is not the request this sidecar created (${other}): it was deleted and recreated, so it is refused`, by: [] };
  const phase = obj.status?.phase;
  const why = obj.status?.reason ? `: ${obj.status.reason}` : '';
  switch (phase) {
    case undefined:
    case 'Pending':
      return o.window ? { kind: 'denied', reason: 'the window is not approved', by: [] } : { kind: 'pending' };
    case 'Approved':
      return approved(obj, req, now, o.window);
    case 'Denied':
      return { kind: 'denied', reason: `ApprovalRequest ${name} was denied${why}`, by: reviewers(obj, 'Deny') };
    case 'Revoked':
      return { kind: 'denied', reason: `the window of ApprovalRequest ${name} was revoked${why}`, by: reviewers(obj, 'Revoke') };
    case 'Cancelled':
      return { kind: 'denied', reason: `ApprovalRequest ${name} was cancelled${why}`, by: [] };
    case 'Expired':
      return { kind: 'expired', reason: `ApprovalRequest ${name} expired${why}`, by: [] };
  }
}
