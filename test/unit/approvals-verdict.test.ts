// The sidecar's reading of an ApprovalRequest (pure): approval only for the exact held statement, windows, refusals with the reason; and the object it creates.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { bindingOf, verdictOf, windowKey } from '../../sidecar/approvals/verdict.ts';
import { approvalSnapshot, requestObject, summaryOf, MAX_TEXT } from '../../sidecar/approvals/request-body.ts';
import type { ApprovalRequest as HeldCommand } from '../../sidecar/protocols/postgres/approval-hold.ts';
import type { ApprovalRequest } from '../../operator/api/types.ts';

const NOW = Date.parse('2030-01-01T12:00:00Z');
const HELD: HeldCommand = {
  id: 'pg-1', session: 's-1', cmd: 3, connection: 'orders-db', identity: 'coding-agent', subject: 'agent-writer', username: 'agent-writer', groups: ['agents'],
  statement: "DELETE FROM orders WHERE email = '<email>'", statementHash: 'a'.repeat(64), rule: 'delete-needs-approval', reason: 'destructive', message: 'needs eyes',
  approverGroups: ['db-approvers'], timeoutMs: 600_000,
  settings: { approverGroups: ['db-approvers'], approverUsers: ['dave'], required: 2, mode: 'each', scope: 'statement', timeoutSeconds: 600 },
  protocol: 'postgres', issuer: 'https://idp', actingFor: 'alice@example.com', purpose: 'cleanup', classification: { kinds: ['read', 'write'], tables: ['orders'], functions: [] },
};

function obj(held: HeldCommand, status?: ApprovalRequest['status']): ApprovalRequest {
  const o = requestObject(held, { namespace: 'agents', name: 'agent-pod', uid: 'uid-1' }, NOW);
  return status ? { ...o, status } : o;
}

describe('requestObject', () => {
  it('carries identity, requester, masked command with hash and classification, purpose, rule snapshot and expiresAt', () => {
    const o = obj(HELD);
    assert.equal(o.metadata.name, 'pg-1');
    assert.deepEqual(o.metadata.labels, { 'app.kubernetes.io/managed-by': 'chaperone-sidecar', 'chaperone.dev/identity': 'coding-agent', 'chaperone.dev/connection': 'orders-db', 'chaperone.dev/pod-uid': 'uid-1' });
    assert.deepEqual(o.spec.requester, { subject: 'agent-writer', username: 'agent-writer', issuer: 'https://idp', groups: ['agents'], actingFor: 'alice@example.com' });
    assert.deepEqual(o.spec.command.sql, { kind: 'write', tables: ['orders'] });
    assert.equal(o.spec.command.sha256, 'a'.repeat(64));
    assert.deepEqual(o.spec.approval, { approvers: { groups: ['db-approvers'], users: ['dave'] }, required: 2, mode: 'each', scope: 'statement', timeout: '600s' });
    assert.equal(o.spec.expiresAt, new Date(NOW + 600_000).toISOString());
    assert.deepEqual(o.spec.pod, { name: 'agent-pod', uid: 'uid-1' });
  });

  it('cuts text at 16 KiB and marks it; the summary is one line', () => {
    const o = obj({ ...HELD, statement: `DELETE\n  FROM t WHERE ${'x'.repeat(MAX_TEXT)}` });
    assert.equal(o.spec.command.text.length, MAX_TEXT);
    assert.equal(o.spec.command.truncated, true);
    assert.ok(summaryOf('a\n  b').startsWith('a b'));
    assert.ok((o.spec.command.summary ?? '').endsWith('…'));
  });

  it('HTTP holds (id http-…) become protocol http with method and path; no sql block', () => {
    const o = obj({ ...HELD, id: 'http-1', protocol: undefined, statement: 'DELETE /v1/customers/42?force=true', classification: undefined });
    assert.equal(o.spec.command.protocol, 'http');
    assert.deepEqual(o.spec.command.http, { method: 'DELETE', path: '/v1/customers/42?force=true' });
    assert.equal(o.spec.command.sql, undefined);
  });

  it('a window without a length falls back to statement scope (the CRD requires window with scope window)', () => {
    assert.equal(approvalSnapshot({ ...HELD, settings: { scope: 'window' } }).scope, 'statement');
    assert.equal(obj({ ...HELD, settings: { scope: 'window', windowSeconds: 1800 } }).spec.approval.window, '1800s');
  });
});

describe('verdictOf', () => {
  it('pending without a phase', () => {
    assert.deepEqual(verdictOf(obj(HELD), HELD, NOW, { window: false }), { kind: 'pending' });
  });

  it('approved for exactly this statement → approved with the approvers', () => {
    const o = { ...obj(HELD, { phase: 'Approved', reason: 'approved by bob' }) };
    o.spec.reviews = [{ decision: 'Approve', reviewer: { username: 'bob' }, time: new Date(NOW).toISOString() }];
    assert.deepEqual(verdictOf(o, HELD, NOW, { window: false }), { kind: 'approved', reason: 'approved: approved by bob', by: ['bob'] });
  });

  const mismatches: [string, Partial<HeldCommand>, RegExp][] = [
    ['another statement hash', { statementHash: 'b'.repeat(64) }, /different statement hash/],
    ['another requester', { subject: 'someone-else' }, /different requester/],
    ['another rule', { rule: 'other' }, /different rule/],
    ['another connection', { connection: 'other-db' }, /different identity or connection/],
  ];
  for (const [name, change, msg] of mismatches) {
    it(`approved for ${name} → refused (fail closed)`, () => {
      const v = verdictOf(obj(HELD, { phase: 'Approved' }), { ...HELD, ...change }, NOW, { window: false });
      assert.equal(v.kind, 'denied');
      assert.ok(v.kind === 'denied' && msg.test(v.reason));
    });
  }

  it('denied, revoked, cancelled and expired carry the reason', () => {
    assert.match((verdictOf(obj(HELD, { phase: 'Denied', reason: 'denied by bob: freeze' }), HELD, NOW, { window: false }) as { reason: string }).reason, /was denied: denied by bob: freeze/);
    assert.equal(verdictOf(obj(HELD, { phase: 'Expired' }), HELD, NOW, { window: false }).kind, 'expired');
    assert.match((verdictOf(obj(HELD, { phase: 'Revoked' }), HELD, NOW, { window: true }) as { reason: string }).reason, /revoked/);
    assert.match((verdictOf(obj(HELD, { phase: 'Cancelled' }), HELD, NOW, { window: false }) as { reason: string }).reason, /cancelled/);
  });

  it('a window covers a later statement (any hash) until its end, and not after', () => {
    const w = { ...HELD, settings: { scope: 'window', windowSeconds: 600 } };
    const o = obj(w, { phase: 'Approved', window: { expiresAt: new Date(NOW + 60_000).toISOString() } });
    const later = { ...w, statementHash: 'c'.repeat(64) };
    const v = verdictOf(o, later, NOW, { window: true });
    assert.equal(v.kind, 'approved');
    assert.equal(v.kind === 'approved' ? v.windowEndsAt : 0, NOW + 60_000);
    assert.equal(verdictOf(o, later, NOW + 60_000, { window: true }).kind, 'expired');
    assert.equal(verdictOf(obj(HELD, { phase: 'Approved' }), later, NOW, { window: true }).kind, 'denied', 'a statement-scope approval is no window');
    assert.equal(windowKey(w), windowKey(later));
  });

  it('is bound to the object the sidecar created: a request deleted and recreated with the same name and fields is refused', () => {
    const mine = obj(HELD);
    mine.metadata = { ...mine.metadata, uid: 'uid-a', annotations: { 'chaperone.dev/created-by': 'system:serviceaccount:agents:coding-agent' } };
    const bound = bindingOf(mine);
    assert.deepEqual(bound, { uid: 'uid-a', creator: 'system:serviceaccount:agents:coding-agent' });
    const approved = (o: ApprovalRequest): ApprovalRequest => ({ ...o, status: { phase: 'Approved', reason: 'approved by bob' } });
    assert.equal(verdictOf(approved(mine), HELD, NOW, { window: false, bound }).kind, 'approved');
    const recreated = approved({ ...mine, metadata: { ...mine.metadata, uid: 'uid-b' } });
    const v = verdictOf(recreated, HELD, NOW, { window: false, bound });
    assert.equal(v.kind, 'denied');
    assert.match(v.kind === 'denied' ? v.reason : '', /ApprovalRequest pg-1 is not the request this sidecar created \(uid uid-b, not uid-a\): it was deleted and recreated/);
    assert.equal(verdictOf({ ...recreated, status: undefined }, HELD, NOW, { window: false, bound }).kind, 'denied', 'not even pending: the original is gone');
    const otherCreator = approved({ ...mine, metadata: { ...mine.metadata, annotations: { 'chaperone.dev/created-by': 'mallory' } } });
    assert.match((verdictOf(otherCreator, HELD, NOW, { window: false, bound }) as { reason: string }).reason, /created by mallory, not system:serviceaccount:agents:coding-agent/);
    const w = { ...HELD, settings: { ...HELD.settings, scope: 'window' as const, windowSeconds: 600 } };
    const win = obj(w, { phase: 'Approved', window: { expiresAt: new Date(NOW + 60_000).toISOString() } });
    assert.equal(verdictOf({ ...win, metadata: { ...win.metadata, uid: 'uid-a' } }, w, NOW, { window: true, bound: { uid: 'uid-a' } }).kind, 'approved');
    assert.equal(verdictOf({ ...win, metadata: { ...win.metadata, uid: 'uid-c' } }, w, NOW, { window: true, bound: { uid: 'uid-a' } }).kind, 'denied', 'a recreated window request does not keep the window open');
  });
});
