// Holding a statement for a human: the approval-backend interface, a fail-closed default, an in-memory `local` backend, and the wait.
import { randomUUID } from 'node:crypto';

export interface ApprovalRequest {
  readonly id: string;
  readonly session: string;
  readonly cmd: number;
  readonly connection: string;
  readonly identity: string;
  readonly subject: string;
  readonly username: string;
  readonly groups: readonly string[];
  /** Masked statement text: what the approver reads. */
  readonly statement: string;
  /** What an approval binds to: SHA-256 of the exact statement text, or for an extended-protocol Execute of the text with its bound parameters (held-extended.ts bindHash). */
  readonly statementHash: string;
  readonly rule: string;
  readonly reason: string;
  readonly message: string;
  readonly approverGroups: readonly string[];
  readonly timeoutMs: number;
  /** Opaque rule settings (approvals count, …). */
  readonly settings: Readonly<Record<string, unknown>>;
  /** The connection's protocol (the ApprovalRequest's command.protocol). */
  readonly protocol?: 'postgres' | 'http' | 'kubernetes';
  /** The token's `iss`, and the human the agent acts for when the token says so (no self-approval). */
  readonly issuer?: string;
  readonly actingFor?: string;
  /** Why the agent says it runs the command (postgres application_name), masked. */
  readonly purpose?: string;
  /** How the parser classified the statement. */
  readonly classification?: { readonly kinds: readonly string[]; readonly tables: readonly string[]; readonly functions: readonly string[] };
  /** SHA-256 of the bound parameter formats and values alone (extended protocol; statementHash already covers them). */
  readonly parametersHash?: string;
}

/** `signal.reason` when holdForApproval aborts the wait: the backend cancels its request only when the client went away. */
export const ABORT_CLIENT_GONE = 'client-gone';
export const ABORT_TIMEOUT = 'timeout';

export type ApprovalOutcomeKind = 'approved' | 'denied' | 'expired';

export interface ApprovalOutcome {
  readonly outcome: ApprovalOutcomeKind;
  /** Why, for the client and the recording (e.g. "denied by bob: not during the freeze"). */
  readonly reason: string;
  /** Authenticated approvers. */
  readonly by?: readonly string[];
}

/** Where held statements go to be decided. `signal` aborts when the client disconnects or the wait times out. */
export interface ApprovalBackend {
  readonly name: string;
  requestApproval(req: ApprovalRequest, signal: AbortSignal): Promise<ApprovalOutcome>;
  /** One sentence telling the agent's human how to approve this request. */
  howToApprove(req: ApprovalRequest): string;
}

/** The default: nothing can approve, so every held statement is denied (fail closed). */
export const failClosedApprovals: ApprovalBackend = {
  name: 'none',
  requestApproval: () => Promise.resolve({ outcome: 'denied', reason: 'no approval backend configured' }),
  howToApprove: () => 'no approval backend is configured for this sidecar, so it will be refused; configure approvals.backend',
};

interface Waiting {
  readonly req: ApprovalRequest;
  readonly resolve: (o: ApprovalOutcome) => void;
}

/**
 * In-memory approvals: the admin listener (or a test) lists pending requests and decides them.
 * Who may decide is checked by the caller (the admin route authenticates approver tokens).
 */
export class LocalApprovals implements ApprovalBackend {
  readonly name = 'local';
  private readonly waiting = new Map<string, Waiting>();
  private readonly listeners: ((req: ApprovalRequest) => void)[] = [];

  requestApproval(req: ApprovalRequest, signal: AbortSignal): Promise<ApprovalOutcome> {
    return new Promise((resolve) => {
      const onAbort = (): void => {
        this.waiting.delete(req.id);
        resolve({ outcome: 'expired', reason: 'the wait ended before a decision' });
      };
      if (signal.aborted) return onAbort();
      signal.addEventListener('abort', onAbort, { once: true });
      this.waiting.set(req.id, {
        req,
        resolve: (o) => {
          signal.removeEventListener('abort', onAbort);
          resolve(o);
        },
      });
      for (const l of this.listeners.splice(0)) l(req);
    });
  }

  howToApprove(req: ApprovalRequest): string {
    return `an approver of group(s) ${req.approverGroups.join(', ') || '(any approver)'} can approve request ${req.id} through the sidecar's admin listener`;
  }

  pending(): readonly ApprovalRequest[] {
    return [...this.waiting.values()].map((w) => w.req);
  }

  /** Decides a pending request; false when it is not (or no longer) pending. */
  decide(id: string, decision: 'approved' | 'denied', by: string, reason = ''): boolean {
    const w = this.waiting.get(id);
    if (!w) return false;
    this.waiting.delete(id);
    const why = `${decision} by ${by}${reason === '' ? '' : `: ${reason}`}`;
    w.resolve({ outcome: decision, reason: why, by: [by] });
    return true;
  }

  /** Resolves with the next request that starts waiting (tests; also an admin long-poll). */
  nextRequest(): Promise<ApprovalRequest> {
    const first = this.pending()[0];
    if (first) return Promise.resolve(first);
    return new Promise((resolve) => this.listeners.push(resolve));
  }
}

export type HoldOutcome = ApprovalOutcome | { readonly outcome: 'cancelled'; readonly reason: string };

export function newApprovalId(): string {
  return `pg-${randomUUID()}`;
}

/** Waits for the backend with a timeout and the client's lifetime; a backend failure is a denial (fail closed). */
export async function holdForApproval(backend: ApprovalBackend, req: ApprovalRequest, clientGone: AbortSignal): Promise<HoldOutcome> {
  const ctl = new AbortController();
  const timer = setTimeout(() => ctl.abort(ABORT_TIMEOUT), req.timeoutMs);
  const onGone = (): void => ctl.abort(ABORT_CLIENT_GONE);
  if (clientGone.aborted) onGone();
  clientGone.addEventListener('abort', onGone, { once: true });
  try {
    const o = await backend.requestApproval(req, ctl.signal);
    if (clientGone.aborted) return { outcome: 'cancelled', reason: 'the client disconnected or cancelled while waiting' };
    if (ctl.signal.aborted && o.outcome !== 'approved') return { outcome: 'expired', reason: `no decision within ${Math.round(req.timeoutMs / 1000)} s` };
    return o;
  } catch (e) {
    return { outcome: 'denied', reason: `the approval backend failed (${(e as Error)?.message ?? String(e)}), so the statement is refused` };
  } finally {
    clearTimeout(timer);
    clientGone.removeEventListener('abort', onGone);
  }
}
