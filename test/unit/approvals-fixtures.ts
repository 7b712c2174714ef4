// Builders for ApprovalRequest objects and AdmissionRequests in the approvals unit tests.
import type { ApprovalRequest, ApprovalRequestReview } from '../../operator/api/types.ts';
import type { AdmissionRequest, AdmissionUserInfo } from '../../operator/server/admission.ts';
import { CREATED_BY_ANNOTATION } from '../../operator/approvals/phase.ts';

export const T0 = Date.parse('2030-01-01T12:00:00Z');
export const SA = 'system:serviceaccount:agents:coding-agent';
export const APPROVER: AdmissionUserInfo = { username: 'approver', uid: 'u-1', groups: ['db-approvers', 'system:authenticated'] };
export const SECOND: AdmissionUserInfo = { username: 'second-approver', uid: 'u-2', groups: ['db-approvers', 'system:authenticated'] };
export const OUTSIDER: AdmissionUserInfo = { username: 'outsider', groups: ['developers', 'system:authenticated'] };
export const SIDECAR: AdmissionUserInfo = { username: SA, groups: ['system:serviceaccounts', 'system:serviceaccounts:agents', 'db-approvers'] };

export function request(over: { approval?: Partial<ApprovalRequest['spec']['approval']>; reviews?: ApprovalRequestReview[]; status?: ApprovalRequest['status']; cancel?: boolean } = {}): ApprovalRequest {
  return {
    apiVersion: 'chaperone.dev/v1alpha1',
    kind: 'ApprovalRequest',
    metadata: { name: 'pg-1', namespace: 'agents', annotations: { [CREATED_BY_ANNOTATION]: SA } },
    spec: {
      identity: 'coding-agent', connection: 'orders-db', session: 's-1',
      requester: { subject: SA, username: SA, actingFor: 'alice@example.com' },
      command: { protocol: 'postgres', text: 'DELETE FROM orders', sha256: 'a'.repeat(64) },
      rule: { name: 'delete-needs-approval' },
      approval: { approvers: { groups: ['db-approvers'] }, required: 1, mode: 'any', scope: 'statement', timeout: '10m', ...over.approval },
      expiresAt: new Date(T0 + 600_000).toISOString(),
      ...(over.reviews ? { reviews: over.reviews } : {}),
      ...(over.cancel ? { cancel: { reason: 'client disconnected' } } : {}),
    },
    ...(over.status ? { status: over.status } : {}),
  };
}

export function review(user: AdmissionUserInfo, decision: ApprovalRequestReview['decision'], at = T0 + 1000, reason?: string): ApprovalRequestReview {
  return { decision, ...(reason ? { reason } : {}), reviewer: { username: user.username ?? '', ...(user.groups ? { groups: user.groups } : {}) }, time: new Date(at).toISOString() };
}

export function update(old: ApprovalRequest, obj: ApprovalRequest, userInfo: AdmissionUserInfo): AdmissionRequest {
  return {
    uid: 'uid-1', kind: { group: 'chaperone.dev', version: 'v1alpha1', kind: 'ApprovalRequest' }, resource: { group: 'chaperone.dev', version: 'v1alpha1', resource: 'approvalrequests' },
    operation: 'UPDATE', userInfo, object: obj, oldObject: old, namespace: 'agents', name: old.metadata.name ?? '',
  };
}

/** `old` with a spec.review added, as `kubectl patch --type=merge -p '{"spec":{"review":…}}'` sends it. */
export function withReview(old: ApprovalRequest, decision: 'Approve' | 'Deny' | 'Revoke', reason?: string): ApprovalRequest {
  return { ...old, spec: { ...old.spec, review: { decision, ...(reason ? { reason } : {}) } } };
}
