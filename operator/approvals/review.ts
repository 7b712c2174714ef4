// ApprovalRequest admission (pure): stamps each new review with the authenticated reviewer and time, and refuses everything else an approver or agent must not do.
import { isDeepStrictEqual } from 'node:util';
import type { ApprovalRequest, ApprovalRequestReview, ApprovalRequestReviewInput } from '../api/types.ts';
import type { AdmissionRequest, AdmissionUserInfo, PatchOperation } from '../server/admission.ts';
import { CREATED_BY_ANNOTATION, FINAL_PHASES, isApprover, isBroadGroup, isRequester, personKey } from './phase.ts';

export type ReviewRefusal =
  | 'not-an-object'
  | 'born-reviewed'
  | 'immutable-field'
  | 'creator-changed'
  | 'review-edited'
  | 'too-many-reviews'
  | 'decided'
  | 'expired'
  | 'wrong-decision'
  | 'not-an-approver'
  | 'self-approval'
  | 'reason-required'
  | 'duplicate-review'
  | 'cancel-forbidden'
  | 'unstamped-review';

export type ReviewVerdict =
  | { readonly allowed: true; readonly outcome: string; readonly patch: readonly PatchOperation[] }
  | { readonly allowed: false; readonly outcome: ReviewRefusal; readonly code: number; readonly message: string };

/** Spec fields nobody may change after create (the CRD's CEL says so too; this gives the better message first). */
const IMMUTABLE = ['identity', 'connection', 'session', 'pod', 'requester', 'command', 'purpose', 'rule', 'approval', 'expiresAt'] as const;

function refuse(outcome: ReviewRefusal, message: string, code = 403): ReviewVerdict {
  return { allowed: false, outcome, code, message };
}

function asRequest(o: unknown): ApprovalRequest | undefined {
  if (typeof o !== 'object' || o === null) return undefined;
  const r = o as Partial<ApprovalRequest>;
  return typeof r.spec === 'object' && r.spec !== null ? (r as ApprovalRequest) : undefined;
}

function ruleName(r: ApprovalRequest): string {
  return r.spec.rule?.name ?? '(unknown rule)';
}

function approverList(r: ApprovalRequest): string {
  const a = r.spec.approval.approvers;
  const parts = [(a.groups ?? []).length ? `groups ${(a.groups ?? []).join(', ')}` : '', (a.users ?? []).length ? `users ${(a.users ?? []).join(', ')}` : ''].filter(Boolean);
  return parts.join('; ') || 'nobody';
}

/** The creator is stamped on create; on create the request may carry no decisions. */
function admitCreate(obj: ApprovalRequest, user: AdmissionUserInfo): ReviewVerdict {
  if (obj.spec.review !== undefined || (obj.spec.reviews ?? []).length > 0 || obj.spec.cancel !== undefined) {
    return refuse('born-reviewed', 'an ApprovalRequest is created without reviews, review or cancel; approvers add reviews afterwards with kubectl chaperone approve|deny');
  }
  const username = user.username ?? '';
  const annotations = { ...(obj.metadata.annotations ?? {}), [CREATED_BY_ANNOTATION]: username };
  const op: PatchOperation = obj.metadata.annotations === undefined ? { op: 'add', path: '/metadata/annotations', value: annotations } : { op: 'add', path: `/metadata/annotations/${CREATED_BY_ANNOTATION.replace('~', '~0').replace('/', '~1')}`, value: username };
  return { allowed: true, outcome: 'created', patch: [op] };
}

/** Which spec changes besides reviews and cancel the update attempts, by field name. */
function changedImmutable(old: ApprovalRequest, obj: ApprovalRequest): string | undefined {
  return IMMUTABLE.find((f) => !isDeepStrictEqual(old.spec[f], obj.spec[f]));
}

/** New entries the client asked for: spec.review and appended spec.reviews entries, each reduced to decision and reason. */
function newEntries(old: ApprovalRequest, obj: ApprovalRequest): ApprovalRequestReviewInput[] | ReviewVerdict {
  const before = old.spec.reviews ?? [];
  const after = obj.spec.reviews ?? [];
  for (let i = 0; i < before.length; i++) {
    if (!isDeepStrictEqual(before[i], after[i])) {
      const who = before[i]?.reviewer.username ?? 'someone';
      return refuse('review-edited', `spec.reviews is append-only: the review by ${who} (entry ${i}) cannot be changed or removed; add your own with kubectl chaperone approve|deny`);
    }
  }
  const entries: ApprovalRequestReviewInput[] = after.slice(before.length).map((r) => ({ decision: r.decision, ...(r.reason !== undefined ? { reason: r.reason } : {}) }));
  if (obj.spec.review !== undefined) entries.push(obj.spec.review);
  return entries;
}

/** May the request still take this decision, given its phase and the clock? */
function stateAllows(old: ApprovalRequest, d: ApprovalRequestReviewInput['decision'], now: number): ReviewVerdict | undefined {
  const phase = old.status?.phase ?? 'Pending';
  const name = old.metadata.name ?? '';
  if (phase === 'Approved' && old.spec.approval.scope === 'window') {
    if (d === 'Revoke') return undefined;
    return refuse('wrong-decision', `request ${name} is an approved window; it can only be revoked (kubectl chaperone revoke ${name} --reason …)`);
  }
  if (phase !== 'Pending' || FINAL_PHASES.has(phase)) return refuse('decided', `request ${name} is already ${phase}${old.status?.reason ? ` (${old.status.reason})` : ''}; a decided request cannot change`);
  if (d === 'Revoke') return refuse('wrong-decision', `request ${name} is Pending: Revoke ends an approved window; use deny to refuse a pending request`);
  const expires = Date.parse(old.spec.expiresAt);
  if (Number.isNaN(expires) || now >= expires) return refuse('expired', `request ${name} expired at ${old.spec.expiresAt}; the held command was refused, nothing can be approved any more`);
  return undefined;
}

/** Why a rule's system-wide groups admitted nobody (isBroadGroup), or ''. */
function broadGroupNote(r: ApprovalRequest): string {
  const broad = (r.spec.approval.approvers.groups ?? []).filter(isBroadGroup);
  if (broad.length === 0) return '';
  return `; the rule's group${broad.length > 1 ? 's' : ''} ${broad.join(', ')} cannot approve (every user or every ServiceAccount is in ${broad.length > 1 ? 'them' : 'it'}), so name approvers by user or a real group`;
}

/** Is this user allowed to decide, and is the decision well formed? */
function reviewerAllows(old: ApprovalRequest, user: AdmissionUserInfo, e: ApprovalRequestReviewInput): ReviewVerdict | undefined {
  const username = user.username ?? '';
  if (isRequester(old, username)) {
    return refuse('self-approval', `forbidden: ${username} requested (or created) ${old.metadata.name ?? 'this request'} and cannot decide it (names are compared ignoring case and an authenticator prefix such as oidc:); another approver of rule ${ruleName(old)} must`);
  }
  if (!isApprover(old, username, user.groups ?? [])) {
    return refuse('not-an-approver', `forbidden: ${username || '(anonymous)'} is not in the approvers of rule ${ruleName(old)} (${approverList(old)})${broadGroupNote(old)}; ask one of them, or have your user added to the rule's approval.approvers`);
  }
  if ((e.decision === 'Deny' || e.decision === 'Revoke') && (e.reason ?? '').trim() === '') {
    return refuse('reason-required', `a ${e.decision} needs a reason (--reason "…"): the agent is shown it`, 422);
  }
  if (e.decision === 'Approve' && (old.spec.reviews ?? []).some((r) => r.decision === 'Approve' && personKey(r.reviewer.username) === personKey(username))) {
    return refuse('duplicate-review', `${username} already approved ${old.metadata.name ?? 'this request'}; another approver must add the next approval`, 409);
  }
  return undefined;
}

/** spec.cancel: set once, by the request's creator (the sidecar), while Pending. */
function cancelAllows(old: ApprovalRequest, obj: ApprovalRequest, user: AdmissionUserInfo): ReviewVerdict | undefined {
  if (isDeepStrictEqual(old.spec.cancel, obj.spec.cancel)) return undefined;
  const creator = old.metadata.annotations?.[CREATED_BY_ANNOTATION];
  if (old.spec.cancel !== undefined) return refuse('cancel-forbidden', 'spec.cancel is already set and cannot change');
  if (creator === undefined || creator !== user.username) return refuse('cancel-forbidden', `only the sidecar that created the request (${creator ?? 'unknown'}) may cancel it; approvers deny instead`);
  if ((old.status?.phase ?? 'Pending') !== 'Pending') return refuse('decided', `request ${old.metadata.name ?? ''} is already ${old.status?.phase ?? ''}; it cannot be cancelled`);
  return undefined;
}

function stamp(e: ApprovalRequestReviewInput, user: AdmissionUserInfo, now: number): ApprovalRequestReview {
  const reviewer = { username: user.username ?? '', ...(user.uid ? { uid: user.uid } : {}), ...(user.groups?.length ? { groups: [...user.groups] } : {}) };
  return { decision: e.decision, ...(e.reason !== undefined && e.reason !== '' ? { reason: e.reason } : {}), reviewer, time: new Date(now).toISOString() };
}

/** Changes nobody may make: immutable spec fields and the creator annotation. */
function structureAllows(old: ApprovalRequest, obj: ApprovalRequest): ReviewVerdict | undefined {
  const field = changedImmutable(old, obj);
  if (field !== undefined) return refuse('immutable-field', `spec.${field} cannot change: an approval is bound to the exact command, requester and rule of the request; create a new request instead`);
  if (old.metadata.annotations?.[CREATED_BY_ANNOTATION] !== obj.metadata.annotations?.[CREATED_BY_ANNOTATION]) {
    return refuse('creator-changed', `the annotation ${CREATED_BY_ANNOTATION} is set by the admission webhook and cannot change`);
  }
  return undefined;
}

function admitUpdate(old: ApprovalRequest, obj: ApprovalRequest, user: AdmissionUserInfo, now: number): ReviewVerdict {
  const structural = structureAllows(old, obj) ?? cancelAllows(old, obj, user);
  if (structural) return structural;
  const entries = newEntries(old, obj);
  if (!Array.isArray(entries)) return entries;
  if (entries.length === 0) return { allowed: true, outcome: obj.spec.cancel && !old.spec.cancel ? 'cancelled' : 'unchanged', patch: [] };
  if (entries.length > 1) return refuse('too-many-reviews', 'one review per update: send a single spec.review (or one appended spec.reviews entry)', 422);
  const e = entries[0] as ApprovalRequestReviewInput;
  const bad = stateAllows(old, e.decision, now) ?? reviewerAllows(old, user, e);
  if (bad) return bad;
  const reviews = [...(old.spec.reviews ?? []), stamp(e, user, now)];
  const patch: PatchOperation[] = [];
  if (obj.spec.review !== undefined) patch.push({ op: 'remove', path: '/spec/review' });
  patch.push({ op: obj.spec.reviews === undefined ? 'add' : 'replace', path: '/spec/reviews', value: reviews });
  return { allowed: true, outcome: e.decision.toLowerCase(), patch };
}

/** The mutating webhook's decision for one AdmissionRequest on approvalrequests (status updates pass: RBAC limits them to the operator). */
export function admitReview(req: AdmissionRequest, now: number): ReviewVerdict {
  if (req.subResource !== undefined && req.subResource !== '') return { allowed: true, outcome: 'subresource', patch: [] };
  if (req.operation === 'DELETE' || req.operation === 'CONNECT') return { allowed: true, outcome: 'ignored', patch: [] };
  const obj = asRequest(req.object);
  if (!obj) return refuse('not-an-object', 'the object is not an ApprovalRequest with a spec', 400);
  if (req.operation === 'CREATE') return admitCreate(obj, req.userInfo);
  const old = asRequest(req.oldObject);
  if (!old) return refuse('not-an-object', 'the old object is not an ApprovalRequest with a spec', 400);
  return admitUpdate(old, obj, req.userInfo, now);
}

function validateCreate(obj: ApprovalRequest, user: AdmissionUserInfo): ReviewVerdict {
  if (obj.metadata.annotations?.[CREATED_BY_ANNOTATION] !== (user.username ?? '')) return refuse('creator-changed', `the ${CREATED_BY_ANNOTATION} annotation must name the creator; the mutating webhook did not run`, 500);
  return { allowed: true, outcome: 'created', patch: [] };
}

/**
 * The validating webhook's check after every mutation: reviews added by this update are stamped with
 * this user (nothing reordered them), spec.review is gone, and the creator annotation stands.
 */
export function validateReview(req: AdmissionRequest): ReviewVerdict {
  if ((req.subResource ?? '') !== '' || req.operation === 'DELETE' || req.operation === 'CONNECT') return { allowed: true, outcome: 'ignored', patch: [] };
  const obj = asRequest(req.object);
  if (!obj) return refuse('not-an-object', 'the object is not an ApprovalRequest with a spec', 400);
  if (obj.spec.review !== undefined) return refuse('unstamped-review', 'spec.review was not consumed: the chaperone mutating webhook for approvalrequests did not run; check the operator', 500);
  if (req.operation === 'CREATE') return validateCreate(obj, req.userInfo);
  const old = asRequest(req.oldObject);
  const before = old?.spec.reviews?.length ?? 0;
  const added = (obj.spec.reviews ?? []).slice(before);
  if (added.some((r) => r.reviewer.username !== req.userInfo.username)) return refuse('unstamped-review', 'a review added by this update names another reviewer than the authenticated user', 403);
  return { allowed: true, outcome: added.length > 0 ? 'reviewed' : 'unchanged', patch: [] };
}
