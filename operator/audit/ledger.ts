// The applied-report ledger of one identity (pure): totals plus the last applied seq per sidecar stream, stored as one object so both change in one resourceVersion-guarded write.
//
// Why one object: a report is counted exactly when its seq enters the ledger, in the same write that
// adds its delta to the totals. Any operator replica, before or after a restart, reads the ledger
// and drops a seq it already holds; AgentIdentity status only mirrors the totals (docs/audit.md).
import type { Counters, LastSession } from '../../sidecar/audit/counters.ts';
import type { ReportBody } from '../../sidecar/audit/reporter.ts';

export const LEDGER_VERSION = 1;
/** Streams kept per identity (least recently applied dropped first): ~70 bytes each, far below a ConfigMap's 1 MiB. */
export const DEFAULT_MAX_STREAMS = 4_096;
const COUNTER_KEYS = ['sessions', 'statements', 'denied', 'approvals', 'masked'] as const;

export interface LedgerState {
  readonly v: typeof LEDGER_VERSION;
  /** The AgentIdentity's uid: a recreated identity (same name, new uid) starts a new ledger. */
  readonly uid: string;
  readonly counters: Counters;
  readonly lastSession?: LastSession;
  /** `<pod uid>/<stream>` → [last applied seq, when (ms)]. */
  readonly streams: Readonly<Record<string, readonly [number, number]>>;
}

export const zero = (): Counters => ({ sessions: 0, statements: 0, denied: 0, approvals: 0, masked: 0 });

/** A new ledger; `from` seeds the totals (the status an identity already shows, e.g. after an upgrade). */
export function freshLedger(uid: string, from?: Partial<Counters>, lastSession?: LastSession): LedgerState {
  const counters = zero();
  for (const k of COUNTER_KEYS) counters[k] = safeCount(from?.[k]);
  return { v: LEDGER_VERSION, uid, counters, ...(lastSession ? { lastSession } : {}), streams: {} };
}

function safeCount(v: unknown): number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0 ? v : 0;
}

/** The stored JSON as a ledger, or undefined when absent or unreadable (then a fresh one is started). */
export function parseLedger(text: string | undefined): LedgerState | undefined {
  if (text === undefined) return undefined;
  try {
    const v = JSON.parse(text) as Partial<LedgerState>;
    if (v.v !== LEDGER_VERSION || typeof v.uid !== 'string' || typeof v.counters !== 'object' || typeof v.streams !== 'object' || v.streams === null) return undefined;
    return v as LedgerState;
  } catch {
    return undefined;
  }
}

export function streamKey(r: Pick<ReportBody, 'pod' | 'stream'>): string {
  return `${r.pod.uid}/${r.stream}`;
}

const newer = (a: LastSession | undefined, b: LastSession | undefined): LastSession | undefined => (!a ? b : !b ? a : a.endedAt <= b.endedAt ? b : a);

/**
 * Applies the reports whose seq is above the stream's last applied one (in seq order); the rest are
 * retries of applied reports. `applied[i]` says which of `reports` counted.
 */
export function applyReports(state: LedgerState, reports: readonly ReportBody[], now: number, maxStreams = DEFAULT_MAX_STREAMS): { state: LedgerState; applied: boolean[] } {
  const streams = new Map(Object.entries(state.streams));
  const counters = { ...state.counters };
  let lastSession = state.lastSession;
  const applied = reports.map(() => false);
  const order = reports.map((r, i) => ({ r, i })).sort((a, b) => a.r.seq - b.r.seq);
  for (const { r, i } of order) {
    const key = streamKey(r);
    if (r.seq <= (streams.get(key)?.[0] ?? 0)) continue;
    for (const k of COUNTER_KEYS) counters[k] += r.delta[k];
    lastSession = newer(lastSession, r.lastSession);
    // Re-insert: Map order becomes least recently applied first.
    streams.delete(key);
    streams.set(key, [r.seq, now]);
    applied[i] = true;
  }
  const entries = [...streams.entries()].sort((a, b) => a[1][1] - b[1][1]);
  const kept = entries.slice(Math.max(0, entries.length - maxStreams));
  return { state: { v: LEDGER_VERSION, uid: state.uid, counters, ...(lastSession ? { lastSession } : {}), streams: Object.fromEntries(kept) }, applied };
}

/**
 * What status should show given what it shows now: per counter the larger (both only grow, so a
 * replica that mirrors an older ledger never takes counts back), and the later last session.
 */
export function mirrorStatus(status: { counters?: Partial<Counters>; lastSession?: LastSession } | undefined, state: LedgerState): { counters: Counters; lastSession?: LastSession } {
  const counters = zero();
  for (const k of COUNTER_KEYS) counters[k] = Math.max(safeCount(status?.counters?.[k]), state.counters[k]);
  const ls = newer(status?.lastSession, state.lastSession);
  return { counters, ...(ls ? { lastSession: ls } : {}) };
}

export function sameCounters(a: Partial<Counters> | undefined, b: Counters): boolean {
  return COUNTER_KEYS.every((k) => (a?.[k] ?? 0) === b[k]);
}
