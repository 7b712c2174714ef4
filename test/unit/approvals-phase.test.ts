// approvalPhase: Pending/Approved/Denied/Expired/Cancelled/Revoked from reviews, mode any/each, windows and the clock.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { approvalPhase } from '../../operator/approvals/phase.ts';
import { APPROVER, OUTSIDER, SA, SECOND, SIDECAR, T0, request, review } from './approvals-fixtures.ts';

const OTHER_GROUP = { username: 'carol', groups: ['sre'] };

describe('approvalPhase', () => {
  const cases: { name: string; req: ReturnType<typeof request>; now?: number; phase: string; approvals?: number; reason?: RegExp }[] = [
    { name: 'no reviews, before expiry → Pending', req: request(), phase: 'Pending', approvals: 0 },
    { name: 'one approval of required 1 → Approved', req: request({ reviews: [review(APPROVER, 'Approve')] }), phase: 'Approved', approvals: 1, reason: /approved by approver/ },
    { name: 'required 2: one approval waits for the second', req: request({ approval: { required: 2 }, reviews: [review(APPROVER, 'Approve')] }), phase: 'Pending', approvals: 1, reason: /1 more/ },
    { name: 'required 2: the same approver twice counts once', req: request({ approval: { required: 2 }, reviews: [review(APPROVER, 'Approve'), review(APPROVER, 'Approve')] }), phase: 'Pending', approvals: 1 },
    { name: 'required 2: two distinct approvers → Approved', req: request({ approval: { required: 2 }, reviews: [review(APPROVER, 'Approve'), review(SECOND, 'Approve')] }), phase: 'Approved', approvals: 2 },
    { name: 'any Deny wins over approvals', req: request({ reviews: [review(APPROVER, 'Approve'), review(SECOND, 'Deny', T0 + 2000, 'not now')] }), phase: 'Denied', reason: /second-approver: not now/ },
    { name: 'a review by a non-approver is not counted', req: request({ reviews: [review(OUTSIDER, 'Approve')] }), phase: 'Pending', approvals: 0 },
    { name: 'a review by the requester is not counted even if it got in', req: request({ reviews: [review(SIDECAR, 'Approve')] }), phase: 'Pending', approvals: 0 },
    { name: 'a review stamped after expiresAt is not counted', req: request({ reviews: [review(APPROVER, 'Approve', T0 + 700_000)] }), now: T0 + 800_000, phase: 'Expired' },
    { name: 'past expiresAt without a decision → Expired', req: request(), now: T0 + 600_000, phase: 'Expired', reason: /no decision before/ },
    { name: 'spec.cancel → Cancelled', req: request({ cancel: true }), phase: 'Cancelled', reason: /client disconnected/ },
    { name: 'mode each: one group satisfied, the other not → Pending', req: request({ approval: { mode: 'each', approvers: { groups: ['db-approvers', 'sre'] } }, reviews: [review(APPROVER, 'Approve')] }), phase: 'Pending', reason: /1 from sre/ },
    { name: 'mode each: one from each group → Approved', req: request({ approval: { mode: 'each', approvers: { groups: ['db-approvers', 'sre'] } }, reviews: [review(APPROVER, 'Approve'), review(OTHER_GROUP, 'Approve')] }), phase: 'Approved', approvals: 2 },
    { name: 'a listed user counts without a group', req: request({ approval: { approvers: { users: ['dave'] } }, reviews: [review({ username: 'dave' }, 'Approve')] }), phase: 'Approved' },
    { name: 'final phases never change', req: request({ status: { phase: 'Denied', reason: 'x' }, reviews: [review(APPROVER, 'Approve')] }), phase: 'Denied' },
    { name: 'an approved statement stays Approved after expiresAt', req: request({ status: { phase: 'Approved', decidedAt: new Date(T0).toISOString() } }), now: T0 + 10_000_000, phase: 'Approved' },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const r = approvalPhase(c.req, c.now ?? T0 + 5000);
      assert.equal(r.phase, c.phase);
      if (c.approvals !== undefined) assert.equal(r.approvals, c.approvals);
      if (c.reason) assert.match(r.reason, c.reason);
    });
  }

  it('a Pending request asks to be looked at again at expiresAt', () => {
    assert.equal(approvalPhase(request(), T0).nextCheckAt, T0 + 600_000);
  });

  it('window scope: Approved opens a window of the rule\'s length, visible in status, then Expired', () => {
    const req = request({ approval: { scope: 'window', window: '30m' }, reviews: [review(APPROVER, 'Approve')] });
    const a = approvalPhase(req, T0 + 5000);
    assert.equal(a.phase, 'Approved');
    assert.equal(a.window?.expiresAt, new Date(T0 + 5000 + 1_800_000).toISOString());
    assert.equal(a.nextCheckAt, T0 + 5000 + 1_800_000);
    const approved = { ...req, status: { phase: 'Approved' as const, decidedAt: a.decidedAt, window: a.window, approvals: 1 } };
    assert.equal(approvalPhase(approved, T0 + 60_000).phase, 'Approved');
    assert.equal(approvalPhase(approved, T0 + 5000 + 1_800_000).phase, 'Expired');
  });

  it('window scope: a Revoke by an approver ends it as Revoked with the time', () => {
    const req = request({ approval: { scope: 'window', window: '30m' }, reviews: [review(APPROVER, 'Approve'), review(SECOND, 'Revoke', T0 + 9000, 'done')] });
    const r = approvalPhase({ ...req, status: { phase: 'Approved', decidedAt: new Date(T0 + 5000).toISOString() } }, T0 + 10_000);
    assert.equal(r.phase, 'Revoked');
    assert.equal(r.window?.revokedAt, new Date(T0 + 9000).toISOString());
    assert.match(r.reason, /revoked by second-approver: done/);
  });

  it('the requester subject is never an approver even when listed by name', () => {
    const r = approvalPhase(request({ approval: { approvers: { users: [SA, 'x'] } }, reviews: [review({ username: SA }, 'Approve')] }), T0 + 5000);
    assert.equal(r.phase, 'Pending');
  });
});
