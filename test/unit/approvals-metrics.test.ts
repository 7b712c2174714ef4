// Waiting ApprovalRequests as gauges: which count as pending, and the oldest wait.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Registry } from 'prom-client';
import type { ApprovalRequest } from '../../operator/api/types.ts';
import { pendingStats, registerPendingGauges } from '../../operator/approvals/metrics.ts';

const now = Date.parse('2026-12-04T12:00:00Z');
function req(created: string, expires: string, phase?: 'Pending' | 'Approved' | 'Denied', cancel = false): ApprovalRequest {
  return {
    apiVersion: 'chaperone.dev/v1alpha1', kind: 'ApprovalRequest', metadata: { name: created, namespace: 'a', creationTimestamp: created },
    spec: { expiresAt: expires, ...(cancel ? { cancel: { reason: 'client gone' } } : {}) },
    ...(phase ? { status: { phase } } : {}),
  } as unknown as ApprovalRequest;
}

describe('pending approval gauges', () => {
  test('counts undecided, unexpired, uncancelled requests and the oldest wait', () => {
    const s = pendingStats([
      req('2026-12-04T11:50:00Z', '2026-12-04T12:10:00Z'),
      req('2026-12-04T11:40:00Z', '2026-12-04T12:10:00Z', 'Pending'),
      req('2026-12-04T11:00:00Z', '2026-12-04T11:30:00Z'), // expired, phase not yet written
      req('2026-12-04T11:00:00Z', '2026-12-04T12:30:00Z', 'Approved'),
      req('2026-12-04T11:00:00Z', '2026-12-04T12:30:00Z', undefined, true),
    ], now);
    assert.deepEqual(s, { pending: 2, oldestSeconds: 1200 });
    assert.deepEqual(pendingStats([], now), { pending: 0, oldestSeconds: 0 });
  });

  test('are exported under the names the dashboard and alerts use', async () => {
    const reg = new Registry();
    registerPendingGauges(reg, () => [req('2026-12-04T11:59:00Z', '2026-12-04T12:10:00Z')], () => now);
    const text = await reg.metrics();
    assert.match(text, /^chaperone_operator_approvals_pending 1$/m);
    assert.match(text, /^chaperone_operator_approval_oldest_pending_seconds 60$/m);
  });
});
