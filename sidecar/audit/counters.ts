// Recorded events → the counters the operator keeps in AgentIdentity status (pure): sessions, statements, denied, approvals, masked, last session.
import type { RecordEvent } from '../recording/event.ts';

export interface Counters {
  sessions: number;
  statements: number;
  denied: number;
  approvals: number;
  masked: number;
}

/** AgentIdentity status.lastSession (crds/agentidentity.yaml). */
export interface LastSession {
  readonly id: string;
  readonly pod: string;
  readonly connection: string;
  readonly subject: string;
  readonly startedAt: string;
  readonly endedAt: string;
  readonly statements: number;
  readonly denied: number;
  readonly masked: number;
  readonly summary: string;
}

export const zeroCounters = (): Counters => ({ sessions: 0, statements: 0, denied: 0, approvals: 0, masked: 0 });

interface Open {
  readonly connection: string;
  readonly subject: string;
  readonly pod: string;
  readonly startedAt: number;
}

/** Sessions remembered between start and end (older ones are forgotten: only lastSession needs them). */
const MAX_OPEN = 4096;

const clip = (s: string, n: number): string => (s.length > n ? s.slice(0, n) : s);

/** Counts what the recording says, in the same units `kubectl chaperone sessions` shows. */
export class CounterTally {
  private readonly open = new Map<string, Open>();
  private counts = zeroCounters();
  private last: LastSession | undefined;

  constructor(private readonly now: () => number = Date.now) {}

  observe(e: RecordEvent): void {
    const c = this.counts;
    switch (e.type) {
      case 'session.start':
        c.sessions++;
        if (this.open.size >= MAX_OPEN) this.open.delete(this.open.keys().next().value ?? '');
        this.open.set(e.session, { connection: e.connection, subject: e.subject, pod: e.pod ?? '', startedAt: this.now() });
        return;
      case 'statement':
      case 'request':
        c.statements++;
        if (e.decision === 'deny') c.denied++;
        return;
      case 'approval.wait':
        c.approvals++;
        return;
      case 'result':
        for (const n of Object.values(e.masked)) c.masked += n;
        return;
      case 'session.end':
        return this.end(e);
      default:
    }
  }

  private end(e: Extract<RecordEvent, { type: 'session.end' }>): void {
    const o = this.open.get(e.session);
    this.open.delete(e.session);
    const s = e.summary;
    const masked = Object.values(s.masked).reduce((a, b) => a + b, 0);
    const endedAt = this.now();
    this.last = {
      id: clip(e.session, 128), pod: clip(o?.pod ?? '', 253), connection: clip(o?.connection ?? '', 63), subject: clip(o?.subject ?? '', 256),
      startedAt: new Date(o?.startedAt ?? endedAt - s.durationMs).toISOString(), endedAt: new Date(endedAt).toISOString(),
      statements: s.commands, denied: s.denied, masked,
      summary: clip(`${e.reason}: ${s.commands} command(s), ${s.denied} denied, ${s.approvals} approval(s), ${s.rows} row(s), ${masked} masked, ${(s.durationMs / 1000).toFixed(1)} s`, 1024),
    };
  }

  /** Counts since the last take, and the last ended session (if one ended since); resets both. */
  take(): { delta: Counters; lastSession?: LastSession } {
    const delta = this.counts;
    this.counts = zeroCounters();
    const last = this.last;
    this.last = undefined;
    return { delta, ...(last ? { lastSession: last } : {}) };
  }
}

export function addCounters(a: Counters, b: Readonly<Counters>): Counters {
  return { sessions: a.sessions + b.sessions, statements: a.statements + b.statements, denied: a.denied + b.denied, approvals: a.approvals + b.approvals, masked: a.masked + b.masked };
}

export function isZero(c: Readonly<Counters>): boolean {
  return c.sessions === 0 && c.statements === 0 && c.denied === 0 && c.approvals === 0 && c.masked === 0;
}
