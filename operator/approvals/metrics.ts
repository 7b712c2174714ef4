// Gauges of waiting ApprovalRequests (how many, and the oldest wait), read from the informer at scrape time.
import { Gauge, type Registry } from 'prom-client';
import type { ApprovalRequest } from '../api/types.ts';

export interface PendingStats {
  readonly pending: number;
  /** Seconds the oldest undecided request has waited (0 when none). */
  readonly oldestSeconds: number;
}

/** Pending = no final phase yet and not past its expiresAt (pure). */
export function pendingStats(requests: readonly ApprovalRequest[], now: number): PendingStats {
  let pending = 0;
  let oldest = now;
  for (const r of requests) {
    const phase = r.status?.phase;
    if (phase !== undefined && phase !== 'Pending') continue;
    if (Date.parse(r.spec.expiresAt) <= now || r.spec.cancel !== undefined) continue;
    pending++;
    const created = Date.parse(r.metadata.creationTimestamp ?? '');
    if (Number.isFinite(created) && created < oldest) oldest = created;
  }
  return { pending, oldestSeconds: pending === 0 ? 0 : Math.max(0, (now - oldest) / 1000) };
}

/** Every replica reports the same numbers from its own informer; alert on max(). */
export function registerPendingGauges(registry: Registry, list: () => readonly ApprovalRequest[], now: () => number = Date.now): void {
  const stats = (): PendingStats => pendingStats(list(), now());
  new Gauge({ name: 'chaperone_operator_approvals_pending', help: 'ApprovalRequests waiting for a decision.', registers: [registry], collect(): void { this.set(stats().pending); } });
  new Gauge({ name: 'chaperone_operator_approval_oldest_pending_seconds', help: 'How long the oldest waiting ApprovalRequest has waited.', registers: [registry], collect(): void { this.set(stats().oldestSeconds); } });
}
