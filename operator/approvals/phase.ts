// The ApprovalRequest's phase from its spec, reviews and the clock (pure): what the controller writes to status.
import type { ApprovalRequest, ApprovalRequestReview, ApprovalRequestStatus } from '../api/types.ts';
import { durationSeconds } from '../compile/rules.ts';
import { CREATED_BY_ANNOTATION } from '../../sidecar/approvals/verdict.ts';

export type Phase = NonNullable<ApprovalRequestStatus['phase']>;

export const FINAL_PHASES: ReadonlySet<Phase> = new Set(['Denied', 'Expired', 'Cancelled', 'Revoked']);

export interface PhaseResult {
  readonly phase: Phase;
  /** Why, in words (the deny reason, who approved, when it expired). */
  readonly reason: string;
  /** CamelCase code for the Decided condition. */
  readonly code: string;
  readonly approvals: number;
  /** When the phase left Pending (kept from status once set). */
  readonly decidedAt?: string;
  readonly window?: { readonly expiresAt?: string; readonly revokedAt?: string };
  /** When the phase may next change by the clock alone (expiresAt, a window's end): the controller requeues then. */
  readonly nextCheckAt?: number;
}

/**
 * Groups that say nothing about who someone is: every logged-in user, anonymous, every ServiceAccount (any agent's
 * sidecar holds one, and an agent with a kubernetes connection acts as its own). A rule naming them never lets anyone
 * approve through them; list the users (or real groups) instead.
 */
export function isBroadGroup(g: string): boolean {
  return g === 'system:authenticated' || g === 'system:unauthenticated' || g === 'system:serviceaccounts' || g.startsWith('system:serviceaccounts:');
}

/** Whether a reviewer is one of the request's approvers (a user listed by name, or in a listed group other than the broad system ones). */
export function isApprover(req: ApprovalRequest, username: string, groups: readonly string[]): boolean {
  const a = req.spec.approval.approvers;
  return (a.users ?? []).includes(username) || groups.some((g) => !isBroadGroup(g) && (a.groups ?? []).includes(g));
}

/**
 * One person's key, to compare names that different authenticators spell differently: lower case, and without the
 * prefix an API server's OIDC authenticator adds (`oidc:alice@example.com`, or `https://issuer#alice` for a
 * non-email claim). ServiceAccount and other `system:` names are kept whole.
 */
export function personKey(name: string): string {
  const n = name.trim().toLowerCase();
  if (n.startsWith('system:')) return n;
  const hash = n.lastIndexOf('#');
  if (hash >= 0) return n.slice(hash + 1);
  const colon = n.indexOf(':');
  return colon >= 0 ? n.slice(colon + 1) : n;
}

/** Who may never decide this request: the requester's subject and username, the human it acts for, and its creator. */
export function requesterNames(req: ApprovalRequest): string[] {
  const r = req.spec.requester;
  const creator = req.metadata.annotations?.[CREATED_BY_ANNOTATION];
  return [r.subject, r.username, r.actingFor, creator].filter((n): n is string => typeof n === 'string' && n !== '');
}

/** Whether `username` is (or, spelled by another authenticator or in other case, may be) one of requesterNames. */
export function isRequester(req: ApprovalRequest, username: string): boolean {
  const names = requesterNames(req);
  if (names.includes(username)) return true;
  const key = personKey(username);
  return key !== '' && names.some((n) => personKey(n) === key);
}

/** Stamped by the mutating webhook on create: the authenticated user that created the request (the sidecar's ServiceAccount). */
export { CREATED_BY_ANNOTATION };

/** Reviews the phase may count: stamped, admitted before expiry, by a listed approver who is not the requester. */
function countable(req: ApprovalRequest): ApprovalRequestReview[] {
  const expires = Date.parse(req.spec.expiresAt);
  return (req.spec.reviews ?? []).filter((r) => {
    const t = Date.parse(r.time);
    return !Number.isNaN(t) && t <= expires && !isRequester(req, r.reviewer.username) && isApprover(req, r.reviewer.username, r.reviewer.groups ?? []);
  });
}

/** Distinct approving usernames, and whether they are enough under `mode` (`any`: N people; `each`: N from every listed group). */
export function countApprovals(req: ApprovalRequest, reviews: readonly ApprovalRequestReview[]): { readonly count: number; readonly enough: boolean; readonly missing: string } {
  const a = req.spec.approval;
  // Distinct people: one person approving under two spellings of their name (case, an authenticator prefix) counts once.
  const approvers = new Map<string, readonly string[]>();
  for (const r of reviews) if (r.decision === 'Approve' && !approvers.has(personKey(r.reviewer.username))) approvers.set(personKey(r.reviewer.username), r.reviewer.groups ?? []);
  const count = approvers.size;
  // Never fewer than one approval, whatever the snapshot says (the CRD's minimum is 1; this is the second lock).
  const required = Math.max(1, a.required);
  if (a.mode !== 'each') return { count, enough: count >= required, missing: count >= required ? '' : `${required - count} more approval(s)` };
  // mode each with no group would be satisfied by nobody at all: not enough, ever (the ApprovalRule CRD refuses that shape).
  if ((a.approvers.groups ?? []).length === 0) return { count, enough: false, missing: 'approvers.groups (mode each lists none, so it can never be satisfied)' };
  const short: string[] = [];
  for (const g of a.approvers.groups ?? []) {
    const n = [...approvers.values()].filter((gs) => gs.includes(g)).length;
    if (n < required) short.push(`${required - n} from ${g}`);
  }
  return { count, enough: short.length === 0, missing: short.join(', ') };
}

function reviewText(r: ApprovalRequestReview): string {
  return `${r.reviewer.username}${r.reason !== undefined && r.reason !== '' ? `: ${r.reason}` : ''}`;
}

function windowEnd(req: ApprovalRequest, decidedAt: string): string | undefined {
  const s = req.spec.approval.window === undefined ? undefined : durationSeconds(req.spec.approval.window);
  const t = Date.parse(decidedAt);
  return s === undefined || Number.isNaN(t) ? undefined : new Date(t + s * 1000).toISOString();
}

function findRevoke(req: ApprovalRequest): ApprovalRequestReview | undefined {
  return (req.spec.reviews ?? []).find((r) => r.decision === 'Revoke' && isApprover(req, r.reviewer.username, r.reviewer.groups ?? []) && !isRequester(req, r.reviewer.username));
}

/** An approved request: a statement approval stays; a window ends by Revoke or by its clock. */
function approvedPhase(req: ApprovalRequest, st: ApprovalRequestStatus, now: number): PhaseResult {
  const decidedAt = st.decidedAt ?? new Date(now).toISOString();
  const approvals = st.approvals ?? 0;
  if (req.spec.approval.scope !== 'window') return { phase: 'Approved', reason: st.reason ?? 'approved', code: 'Approved', approvals, decidedAt };
  const expiresAt = st.window?.expiresAt ?? windowEnd(req, decidedAt);
  const revoke = findRevoke(req);
  if (revoke) return { phase: 'Revoked', reason: `window revoked by ${reviewText(revoke)}`, code: 'Revoked', approvals, decidedAt, window: expiresAt ? { expiresAt, revokedAt: revoke.time } : { revokedAt: revoke.time } };
  const end = expiresAt === undefined ? NaN : Date.parse(expiresAt);
  if (Number.isNaN(end) || now >= end) return { phase: 'Expired', reason: `the approved window ended at ${expiresAt ?? '(unknown)'}`, code: 'WindowEnded', approvals, decidedAt, ...(expiresAt ? { window: { expiresAt } } : {}) };
  return { phase: 'Approved', reason: st.reason ?? 'approved', code: 'Approved', approvals, decidedAt, window: { expiresAt: expiresAt as string }, nextCheckAt: end };
}

/** A pending request: any Deny wins, then cancel, then enough approvals, then the clock. */
function pendingPhase(req: ApprovalRequest, now: number): PhaseResult {
  const at = new Date(now).toISOString();
  const reviews = countable(req);
  const deny = reviews.find((r) => r.decision === 'Deny');
  const { count, enough, missing } = countApprovals(req, reviews);
  if (deny) return { phase: 'Denied', reason: `denied by ${reviewText(deny)}`, code: 'Denied', approvals: count, decidedAt: at };
  if (req.spec.cancel) return { phase: 'Cancelled', reason: `cancelled by the sidecar: ${req.spec.cancel.reason}`, code: 'Cancelled', approvals: count, decidedAt: at };
  if (enough) {
    const who = [...new Set(reviews.filter((r) => r.decision === 'Approve').map(reviewText))].join('; ');
    const reason = `approved by ${who}`;
    if (req.spec.approval.scope !== 'window') return { phase: 'Approved', reason, code: 'Approved', approvals: count, decidedAt: at };
    const expiresAt = windowEnd(req, at);
    return { phase: 'Approved', reason, code: 'Approved', approvals: count, decidedAt: at, ...(expiresAt ? { window: { expiresAt }, nextCheckAt: Date.parse(expiresAt) } : {}) };
  }
  const expires = Date.parse(req.spec.expiresAt);
  if (Number.isNaN(expires) || now >= expires) return { phase: 'Expired', reason: `no decision before ${req.spec.expiresAt}${missing ? ` (still needed ${missing})` : ''}`, code: 'Expired', approvals: count, decidedAt: at };
  return { phase: 'Pending', reason: `waiting for ${missing}`, code: 'Pending', approvals: count, nextCheckAt: expires };
}

/** The phase the request should have at `now` (ms), given what status says so far. Final phases never change. */
export function approvalPhase(req: ApprovalRequest, now: number): PhaseResult {
  const st = req.status ?? {};
  const cur = st.phase;
  if (cur !== undefined && FINAL_PHASES.has(cur)) {
    return { phase: cur, reason: st.reason ?? '', code: cur, approvals: st.approvals ?? 0, ...(st.decidedAt ? { decidedAt: st.decidedAt } : {}), ...(st.window ? { window: st.window } : {}) };
  }
  if (cur === 'Approved') return approvedPhase(req, st, now);
  return pendingPhase(req, now);
}
