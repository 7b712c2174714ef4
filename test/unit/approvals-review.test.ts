// ApprovalRequest admission: reviews are stamped from userInfo; self-approval, outsiders, decided/expired requests, edits and forged reviewers are refused with a reason.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { admitReview, validateReview, type ReviewVerdict } from '../../operator/approvals/review.ts';
import { approvalRoutes } from '../../operator/approvals/routes.ts';
import { approvalPhase, CREATED_BY_ANNOTATION } from '../../operator/approvals/phase.ts';
import type { ApprovalRequest, ApprovalRequestReview } from '../../operator/api/types.ts';
import { APPROVER, OUTSIDER, SA, SECOND, SIDECAR, T0, request, review, update, withReview } from './approvals-fixtures.ts';

const NOW = T0 + 5000;

function reviewsOf(v: ReviewVerdict): ApprovalRequestReview[] {
  assert.ok(v.allowed, `expected allowed, got ${v.allowed ? '' : v.message}`);
  const op = v.patch.find((p) => p.path === '/spec/reviews');
  assert.ok(op, 'a /spec/reviews operation');
  return op.value as ApprovalRequestReview[];
}

function refused(v: ReviewVerdict, outcome: string, message: RegExp): void {
  assert.equal(v.allowed, false);
  if (v.allowed) return;
  assert.equal(v.outcome, outcome);
  assert.match(v.message, message);
}

describe('admitReview', () => {
  it('spec.review becomes a stamped spec.reviews entry with the authenticated user and time, and spec.review is removed', () => {
    const old = request();
    const v = admitReview(update(old, withReview(old, 'Approve', 'ticket OPS-1'), APPROVER), NOW);
    const rs = reviewsOf(v);
    assert.deepEqual(rs, [{ decision: 'Approve', reason: 'ticket OPS-1', reviewer: { username: 'approver', uid: 'u-1', groups: APPROVER.groups }, time: new Date(NOW).toISOString() }]);
    assert.ok(v.allowed && v.patch.some((p) => p.op === 'remove' && p.path === '/spec/review'));
  });

  it('a forged reviewer in an appended spec.reviews entry is overwritten with the real one', () => {
    const old = request();
    const forged = { ...old, spec: { ...old.spec, reviews: [{ decision: 'Approve' as const, reviewer: { username: 'the-cto', groups: ['db-approvers'] }, time: '2000-01-01T00:00:00Z' }] } };
    const rs = reviewsOf(admitReview(update(old, forged, SECOND), NOW));
    assert.equal(rs[0]?.reviewer.username, 'second-approver');
    assert.equal(rs[0]?.time, new Date(NOW).toISOString());
  });

  const refusals: { name: string; old?: ApprovalRequest; user: typeof APPROVER; decision?: 'Approve' | 'Deny' | 'Revoke'; reason?: string; outcome: string; message: RegExp; now?: number }[] = [
    { name: 'an outsider is not an approver', user: OUTSIDER, outcome: 'not-an-approver', message: /outsider is not in the approvers of rule delete-needs-approval \(groups db-approvers\)/ },
    { name: 'the requester ServiceAccount cannot approve even in an approver group', user: SIDECAR, outcome: 'self-approval', message: /requested \(or created\).*cannot decide it/ },
    { name: 'the human the agent acts for cannot approve', user: { username: 'alice@example.com', groups: ['db-approvers'] }, outcome: 'self-approval', message: /alice@example.com/ },
    { name: 'the creator (the sidecar SA) cannot approve', old: { ...request(), spec: { ...request().spec, requester: { subject: 'oidc:agent-7' } } }, user: SIDECAR, outcome: 'self-approval', message: /cannot decide/ },
    { name: 'approving after expiry is refused', user: APPROVER, now: T0 + 600_001, outcome: 'expired', message: /expired at/ },
    { name: 'a decided request cannot change', old: request({ status: { phase: 'Denied', reason: 'no' } }), user: APPROVER, outcome: 'decided', message: /already Denied/ },
    { name: 'an approved statement cannot take more reviews', old: request({ status: { phase: 'Approved' } }), user: SECOND, outcome: 'decided', message: /already Approved/ },
    { name: 'a deny needs a reason', user: APPROVER, decision: 'Deny', outcome: 'reason-required', message: /needs a reason/ },
    { name: 'revoke on a pending request is refused', user: APPROVER, decision: 'Revoke', reason: 'x', outcome: 'wrong-decision', message: /Revoke ends an approved window/ },
    { name: 'approving twice as the same user is refused', old: request({ approval: { required: 2 }, reviews: [review(APPROVER, 'Approve')] }), user: APPROVER, outcome: 'duplicate-review', message: /already approved/ },
    { name: 'an approved window only takes a Revoke', old: request({ approval: { scope: 'window', window: '30m' }, status: { phase: 'Approved' } }), user: SECOND, outcome: 'wrong-decision', message: /can only be revoked/ },
  ];
  for (const c of refusals) {
    it(`refuses: ${c.name}`, () => {
      const old = c.old ?? request();
      refused(admitReview(update(old, withReview(old, c.decision ?? 'Approve', c.reason), c.user), c.now ?? NOW), c.outcome, c.message);
    });
  }

  it('a Revoke with a reason on an approved window is stamped', () => {
    const old = request({ approval: { scope: 'window', window: '30m' }, reviews: [review(APPROVER, 'Approve')], status: { phase: 'Approved' } });
    const rs = reviewsOf(admitReview(update(old, withReview(old, 'Revoke', 'incident over'), SECOND), NOW));
    assert.equal(rs.length, 2);
    assert.equal(rs[1]?.decision, 'Revoke');
  });

  it('editing someone else\'s review is refused', () => {
    const old = request({ approval: { required: 2 }, reviews: [review(APPROVER, 'Approve', T0 + 1000, 'ok')] });
    const edited = { ...old, spec: { ...old.spec, reviews: [{ ...review(APPROVER, 'Approve'), reason: 'changed' }] } };
    refused(admitReview(update(old, edited, SECOND), NOW), 'review-edited', /review by approver \(entry 0\) cannot be changed/);
  });

  it('removing a review is refused', () => {
    const old = request({ approval: { required: 2 }, reviews: [review(APPROVER, 'Approve')] });
    refused(admitReview(update(old, { ...old, spec: { ...old.spec, reviews: [] } }, SECOND), NOW), 'review-edited', /append-only/);
  });

  for (const field of ['command', 'requester', 'expiresAt'] as const) {
    it(`changing spec.${field} is refused`, () => {
      const old = request();
      const changed = { ...old, spec: { ...old.spec, [field]: field === 'command' ? { ...old.spec.command, sha256: 'b'.repeat(64) } : field === 'requester' ? { subject: 'x' } : '2099-01-01T00:00:00Z' } };
      refused(admitReview(update(old, changed, APPROVER), NOW), 'immutable-field', new RegExp(`spec.${field} cannot change`));
    });
  }

  it('only the creator may set spec.cancel, and only while pending', () => {
    const old = request();
    const cancelled = { ...old, spec: { ...old.spec, cancel: { reason: 'client disconnected' } } };
    assert.equal(admitReview(update(old, cancelled, SIDECAR), NOW).allowed, true);
    refused(admitReview(update(old, cancelled, APPROVER), NOW), 'cancel-forbidden', /only the sidecar that created/);
    const decided = request({ status: { phase: 'Approved' } });
    refused(admitReview(update(decided, { ...decided, spec: { ...decided.spec, cancel: { reason: 'x' } } }, SIDECAR), NOW), 'decided', /cannot be cancelled/);
  });

  it('the creator annotation is stamped on create and cannot change', () => {
    const obj = request();
    delete (obj.metadata as { annotations?: unknown }).annotations;
    const v = admitReview({ ...update(obj, obj, SIDECAR), operation: 'CREATE', oldObject: undefined }, NOW);
    assert.ok(v.allowed);
    assert.deepEqual(v.patch, [{ op: 'add', path: '/metadata/annotations', value: { [CREATED_BY_ANNOTATION]: SA } }]);
    const old = request();
    const moved = { ...old, metadata: { ...old.metadata, annotations: { [CREATED_BY_ANNOTATION]: 'someone-else' } } };
    refused(admitReview(update(old, withReview(moved, 'Approve'), APPROVER), NOW), 'creator-changed', /cannot change/);
  });

  it('a request cannot be created with reviews', () => {
    const obj = request({ reviews: [review(APPROVER, 'Approve')] });
    refused(admitReview({ ...update(obj, obj, SIDECAR), operation: 'CREATE', oldObject: undefined }, NOW), 'born-reviewed', /without reviews/);
  });

  it('status updates pass (RBAC keeps them to the operator)', () => {
    const old = request();
    assert.equal(admitReview({ ...update(old, old, APPROVER), subResource: 'status' }, NOW).allowed, true);
  });
});

describe('validateReview and the routes', () => {
  it('refuses an appended review naming someone else (a mutation that did not stamp)', () => {
    const old = request();
    const obj = { ...old, spec: { ...old.spec, reviews: [review(SECOND, 'Approve')] } };
    refused(validateReview(update(old, obj, APPROVER)), 'unstamped-review', /another reviewer/);
    assert.equal(validateReview(update(old, obj, SECOND)).allowed, true);
  });

  it('the mutate route answers an AdmissionResponse with the JSONPatch, the refusal with 403 and the message', async () => {
    const [mutate] = approvalRoutes({ now: () => NOW });
    assert.ok(mutate);
    assert.equal(mutate.path, '/mutate/approvalrequests');
    const old = request();
    const ok = await mutate.handle(update(old, withReview(old, 'Approve'), APPROVER));
    assert.equal(ok.response.patchType, 'JSONPatch');
    const ops = JSON.parse(Buffer.from(ok.response.patch ?? '', 'base64').toString()) as { path: string }[];
    assert.deepEqual(ops.map((o) => o.path), ['/spec/review', '/spec/reviews']);
    const no = await mutate.handle(update(old, withReview(old, 'Approve'), OUTSIDER));
    assert.equal(no.response.allowed, false);
    assert.equal(no.response.status?.code, 403);
    assert.match(no.response.status?.message ?? '', /not in the approvers/);
  });
});

describe('self-approval and distinct approvers across spellings of a name', () => {
  const refusalsOf = (old: ApprovalRequest, user: typeof APPROVER): ReviewVerdict => admitReview(update(old, withReview(old, 'Approve'), user), NOW);
  for (const [name, username] of [
    ['in other case', 'Alice@Example.com'],
    ['with an OIDC username prefix', 'oidc:alice@example.com'],
    ["with the API server's issuer#claim form", 'https://login.example.com#alice@example.com'],
  ] as const) {
    it(`the human the agent acts for cannot approve ${name}`, () => {
      refused(refusalsOf(request(), { username, groups: ['db-approvers'] }), 'self-approval', /cannot decide it \(names are compared ignoring case/);
    });
  }
  it('the same person approving twice under another spelling is refused (approvals: 2 needs two people)', () => {
    const old = request({ approval: { required: 2 }, reviews: [review(APPROVER, 'Approve')] });
    refused(refusalsOf(old, { username: 'oidc:Approver', groups: ['db-approvers'] }), 'duplicate-review', /already approved/);
  });
  it('the phase counts one person once, and ignores a review by the requester under another spelling', () => {
    const twice = request({ approval: { required: 2 }, reviews: [review(APPROVER, 'Approve'), review({ username: 'APPROVER', groups: ['db-approvers'] }, 'Approve')] });
    assert.equal(approvalPhase(twice, NOW).phase, 'Pending');
    const self = request({ reviews: [review({ username: 'oidc:alice@example.com', groups: ['db-approvers'] }, 'Approve')] });
    assert.equal(approvalPhase(self, NOW).phase, 'Pending');
  });
});

describe('broad system groups never make an approver', () => {
  const broad = (groups: string[]): ApprovalRequest => request({ approval: { approvers: { groups } } });
  it('another agent\'s ServiceAccount (system:serviceaccounts:agents) cannot approve', () => {
    const other = { username: 'system:serviceaccount:agents:other-agent', groups: ['system:serviceaccounts', 'system:serviceaccounts:agents', 'system:authenticated'] };
    refused(admitReview(update(broad(['system:serviceaccounts:agents']), withReview(broad(['system:serviceaccounts:agents']), 'Approve'), other), NOW), 'not-an-approver', /system:serviceaccounts:agents cannot approve.*name approvers by user or a real group/);
  });
  it('system:authenticated lets nobody approve; a real group still does', () => {
    const old = broad(['system:authenticated', 'db-approvers']);
    refused(admitReview(update(old, withReview(old, 'Approve'), OUTSIDER), NOW), 'not-an-approver', /system:authenticated cannot approve/);
    assert.equal(admitReview(update(old, withReview(old, 'Approve'), APPROVER), NOW).allowed, true);
  });
  it('the phase does not count a review that only a broad group admitted', () => {
    const old = request({ approval: { approvers: { groups: ['system:authenticated'] } }, reviews: [review(OUTSIDER, 'Approve')] });
    assert.equal(approvalPhase(old, NOW).phase, 'Pending');
  });
});

describe('the phase never approves with zero approvals', () => {
  it('mode each with no groups (users only) stays Pending instead of approving at once', () => {
    const old = request({ approval: { approvers: { users: ['approver'] }, mode: 'each' } });
    const r = approvalPhase(old, NOW);
    assert.equal(r.phase, 'Pending');
    assert.match(r.reason, /mode each lists none/);
  });
  it('required 0 in the snapshot still needs one approval', () => {
    assert.equal(approvalPhase(request({ approval: { required: 0 } }), NOW).phase, 'Pending');
    assert.equal(approvalPhase(request({ approval: { required: 0 }, reviews: [review(APPROVER, 'Approve')] }), NOW).phase, 'Approved');
  });
});
