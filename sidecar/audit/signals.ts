// Recording events → the audit signals worth a Kubernetes Event (pure). The recording keeps everything; Events are the summary.
import type { RecordEvent } from '../recording/event.ts';
import type { AuditSignal, ObjectRef } from './event-aggregator.ts';

export interface SignalTargets {
  /** The sidecar's pod (from the downward API), or null when it runs outside Kubernetes. */
  readonly pod: ObjectRef | null;
  /** The AgentIdentity the sidecar enforces, or null when unknown. */
  readonly identity: ObjectRef | null;
}

function targets(t: SignalTargets): ObjectRef[] {
  return [t.pod, t.identity].filter((x): x is ObjectRef => x !== null);
}

function one(text: string, max = 200): string {
  const flat = text.replace(/\s+/g, ' ').trim();
  return flat.length > max ? `${flat.slice(0, max - 1)}…` : flat;
}

type Draft = Omit<AuditSignal, 'regarding'>;

const OUTCOME_REASON = { approved: 'ApprovalApproved', denied: 'ApprovalDenied', cancelled: 'ApprovalCancelled', expired: 'ApprovalExpired' } as const;

function reloadDraft(e: Extract<RecordEvent, { type: 'policy.reload' }>): Draft {
  return e.ok
    ? { reason: 'PolicyReloaded', type: 'Normal', action: 'Reload', note: `policy reloaded (config ${e.configHash.slice(0, 12)})` }
    : { reason: 'PolicyInvalid', type: 'Warning', action: 'Reload', note: `new policy refused, still enforcing config ${e.configHash.slice(0, 12)}: ${one(e.error ?? 'invalid', 600)}` };
}

function draft(e: RecordEvent): Draft | null {
  switch (e.type) {
    case 'session.start':
      return { reason: 'SessionStarted', type: 'Normal', action: 'Connect', note: `${e.subject} opened session ${e.session} on ${e.protocol} connection ${e.connection} from ${e.client}` };
    case 'session.end': {
      const s = e.summary;
      const masked = Object.values(s.masked).reduce((a, b) => a + b, 0);
      return {
        reason: 'SessionEnded', type: 'Normal', action: 'Disconnect',
        note: `session ${e.session} ended (${e.reason}): ${s.commands} command(s), ${s.denied} denied, ${s.approvals} approval(s), ${s.rows} row(s), ${masked} value(s) masked, ${(s.durationMs / 1000).toFixed(1)} s`,
      };
    }
    case 'statement':
    case 'request': {
      if (e.decision !== 'deny') return null;
      const what = e.type === 'statement' ? e.text : `${e.method} ${e.url}`;
      return { reason: 'StatementDenied', type: 'Warning', action: 'Deny', note: `session ${e.session} #${e.cmd} refused by ${e.rule ?? 'the default policy'}${e.reason ? ` (${e.reason})` : ''}: ${one(what)}` };
    }
    case 'approval.wait':
      return { reason: 'ApprovalRequested', type: 'Normal', action: 'Hold', note: `session ${e.session} #${e.cmd} waits for approval ${e.request}${e.approverGroups.length ? ` by ${e.approverGroups.join(', ')}` : ''}` };
    case 'approval.outcome': {
      const reason = OUTCOME_REASON[e.outcome];
      const by = e.by.length ? ` by ${e.by.join(', ')}` : '';
      return { reason, type: e.outcome === 'approved' ? 'Normal' : 'Warning', action: 'Decide', note: `approval ${e.request} for session ${e.session} #${e.cmd}: ${e.outcome}${by} after ${(e.waitedMs / 1000).toFixed(1)} s` };
    }
    case 'policy.reload':
      return reloadDraft(e);
    default:
      return null;
  }
}

/** Events go on the Pod and on the AgentIdentity (so `kubectl describe agentidentity` shows what its agents did). */
export function signalsFor(e: RecordEvent, t: SignalTargets): AuditSignal[] {
  const d = draft(e);
  if (!d) return [];
  return targets(t).map((regarding) => ({ ...d, regarding }));
}
