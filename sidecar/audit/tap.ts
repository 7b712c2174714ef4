// A Recorder wrapper that stamps the configured AgentIdentity name on session.start and hands every recorded event to the audit observers (Events, counters).
//
// Observers see an event only after the recorder acknowledged it (what the recording says is what
// they summarize), run synchronously, and can never fail or delay a session: a throw is swallowed.
import type { RecordEvent } from '../recording/event.ts';
import type { Recorder, RecordOptions } from '../recording/writer.ts';

export type AuditObserver = (e: RecordEvent) => void;

export interface TapOptions {
  /** The AgentIdentity this sidecar enforces; replaces what the protocol put in session.start. */
  readonly identityName?: string;
  readonly observers: readonly AuditObserver[];
  /** Told once per observer failure kind (rate limiting is the caller's). */
  readonly onObserverError?: (e: unknown) => void;
}

export function tapRecorder(inner: Recorder, o: TapOptions): Recorder {
  const stamp = (e: RecordEvent): RecordEvent => (o.identityName !== undefined && e.type === 'session.start' ? { ...e, identity: o.identityName } : e);
  const observe = (e: RecordEvent): void => {
    for (const f of o.observers) {
      try {
        f(e);
      } catch (err) {
        o.onObserverError?.(err);
      }
    }
  };
  return {
    record: (event: RecordEvent, opts?: RecordOptions) => {
      const e = stamp(event);
      const p = inner.record(e, opts);
      if (o.observers.length > 0) p.then(() => observe(e), () => undefined);
      return p;
    },
    close: (reason?: string) => inner.close(reason),
    health: () => inner.health(),
    stats: () => inner.stats(),
  };
}
