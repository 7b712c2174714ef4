// Audit signals → a bounded stream of Kubernetes Event writes (pure: the caller supplies the clock and does the I/O).
//
// A busy agent must not flood the API server: the first signal of a (reason, object) pair in a window
// becomes one Event; repeats in the window fold into that Event's `series.count`, written once when
// the window closes; and at most `maxNewPerWindow` distinct Events are created per window — the rest
// fold into one `EventsThrottled` Event per object, which says how many of each reason were folded.
// The recording keeps every fact; Events are the summary a human sees in `kubectl describe`.

export type AuditReason =
  | 'SessionStarted'
  | 'SessionEnded'
  | 'StatementDenied'
  | 'ApprovalRequested'
  | 'ApprovalApproved'
  | 'ApprovalDenied'
  | 'ApprovalExpired'
  | 'ApprovalCancelled'
  | 'PolicyReloaded'
  | 'PolicyInvalid';

export const THROTTLED_REASON = 'EventsThrottled';

export interface ObjectRef {
  readonly apiVersion: string;
  readonly kind: string;
  readonly namespace: string;
  readonly name: string;
  readonly uid?: string;
}

export interface AuditSignal {
  readonly reason: AuditReason;
  readonly type: 'Normal' | 'Warning';
  /** What happened, one line, already masked (Events are readable by many). */
  readonly note: string;
  readonly regarding: ObjectRef;
  /** events.k8s.io `action`: what the sidecar did (`Connect`, `Deny`, `Hold`, `Reload`, …). */
  readonly action: string;
}

/** An events.k8s.io/v1 Event body (the fields we set). */
export interface EventBody {
  readonly apiVersion: 'events.k8s.io/v1';
  readonly kind: 'Event';
  readonly metadata: { readonly name: string; readonly namespace: string };
  readonly eventTime: string;
  readonly reportingController: string;
  readonly reportingInstance: string;
  readonly action: string;
  readonly reason: string;
  readonly type: 'Normal' | 'Warning';
  readonly note: string;
  readonly regarding: ObjectRef;
  readonly series?: { readonly count: number; readonly lastObservedTime: string };
}

export type EventWrite =
  | { readonly op: 'create'; readonly event: EventBody }
  /** Merge patch of `series` (and note) on an Event created earlier in this window. */
  | { readonly op: 'series'; readonly namespace: string; readonly name: string; readonly series: { readonly count: number; readonly lastObservedTime: string }; readonly note: string };

export interface AggregatorOptions {
  /** Window length; one Event per (reason, object) per window. Default 60 s. */
  readonly windowMs?: number;
  /** Distinct Events created per window, across reasons; beyond it signals fold into EventsThrottled. Default 30. */
  readonly maxNewPerWindow?: number;
  /** Distinct keys tracked per window (bounds memory when objects are many). Default 1,000. */
  readonly maxKeys?: number;
  readonly reportingController?: string;
  /** Usually the pod name. */
  readonly reportingInstance: string;
  /** Event name suffix source; tests pass a counter. */
  readonly newId?: () => string;
}

interface Entry {
  readonly event: EventBody;
  count: number;
  last: string;
  /** count already written (1 after the create). */
  written: number;
  /** For the throttled entry: folded counts by reason. */
  readonly folded?: Map<string, number>;
}

const NOTE_MAX = 1024; // the API server refuses notes over 1 kB

function clip(note: string): string {
  return note.length <= NOTE_MAX ? note : `${note.slice(0, NOTE_MAX - 1)}…`;
}

function microTime(ms: number): string {
  // MicroTime wants microseconds: RFC 3339 with 6 fraction digits.
  return new Date(ms).toISOString().replace(/\.(\d{3})Z$/, '.$1000Z');
}

function dnsPart(s: string, max: number): string {
  const t = s.toLowerCase().replace(/[^a-z0-9.-]+/g, '-').replace(/^[^a-z0-9]+|[^a-z0-9]+$/g, '');
  return t.slice(0, max).replace(/[^a-z0-9]+$/, '') || 'x';
}

export class EventAggregator {
  private readonly windowMs: number;
  private readonly maxNew: number;
  private readonly maxKeys: number;
  private readonly controller: string;
  private readonly instance: string;
  private readonly newId: () => string;
  private windowStart = -1;
  private created = 0;
  private readonly entries = new Map<string, Entry>();
  /** Signals dropped because even the throttled entry could not be tracked (maxKeys reached). */
  dropped = 0;

  constructor(opts: AggregatorOptions) {
    this.windowMs = opts.windowMs ?? 60_000;
    this.maxNew = opts.maxNewPerWindow ?? 30;
    this.maxKeys = opts.maxKeys ?? 1000;
    this.controller = opts.reportingController ?? 'chaperone.dev/sidecar';
    this.instance = opts.reportingInstance;
    let n = 0;
    this.newId = opts.newId ?? ((): string => `${Date.now().toString(36)}${(n++).toString(36)}${Math.random().toString(36).slice(2, 6)}`);
  }

  /** Takes one signal; returns the writes to do now (a create, or nothing when it folds into an existing Event). */
  add(signal: AuditSignal, now: number): EventWrite[] {
    const out = this.roll(now);
    const key = `${signal.reason}\u0000${signal.regarding.kind}\u0000${signal.regarding.namespace}\u0000${signal.regarding.name}`;
    const at = microTime(now);
    const hit = this.entries.get(key);
    if (hit) {
      hit.count++;
      hit.last = at;
      return out;
    }
    if (this.created < this.maxNew && this.entries.size < this.maxKeys) {
      const event = this.body({ ...signal, note: clip(signal.note) }, at);
      this.entries.set(key, { event, count: 1, last: at, written: 1 });
      this.created++;
      out.push({ op: 'create', event });
      return out;
    }
    out.push(...this.throttle(signal, at));
    return out;
  }

  /** Call periodically (and on shutdown with `final`): closes the window and writes folded counts. */
  tick(now: number, final = false): EventWrite[] {
    const out = this.roll(now);
    if (final) out.push(...this.flush());
    return out;
  }

  private throttle(signal: AuditSignal, at: string): EventWrite[] {
    const key = `${THROTTLED_REASON}\u0000${signal.regarding.kind}\u0000${signal.regarding.namespace}\u0000${signal.regarding.name}`;
    const t = this.entries.get(key);
    if (t) {
      t.count++;
      t.last = at;
      t.folded?.set(signal.reason, (t.folded.get(signal.reason) ?? 0) + 1);
      return [];
    }
    if (this.entries.size >= this.maxKeys) {
      this.dropped++;
      return [];
    }
    const note = `more than ${this.maxNew} distinct events in ${Math.round(this.windowMs / 1000)} s; further ones are counted here (the recording has every one)`;
    const event = this.body({ reason: THROTTLED_REASON, type: 'Warning', action: 'Throttle', note, regarding: signal.regarding }, at);
    this.entries.set(key, { event, count: 1, last: at, written: 1, folded: new Map([[signal.reason, 1]]) });
    return [{ op: 'create', event }];
  }

  private roll(now: number): EventWrite[] {
    if (this.windowStart < 0) this.windowStart = now;
    if (now - this.windowStart < this.windowMs) return [];
    const out = this.flush();
    this.windowStart = now;
    this.created = 0;
    return out;
  }

  private flush(): EventWrite[] {
    const out: EventWrite[] = [];
    for (const e of this.entries.values()) {
      if (e.count <= e.written) continue;
      const note = e.folded
        ? clip(`${e.event.note}: ${[...e.folded].map(([r, n]) => `${r}×${n}`).join(', ')}`)
        : e.event.note;
      out.push({ op: 'series', namespace: e.event.metadata.namespace, name: e.event.metadata.name, series: { count: e.count, lastObservedTime: e.last }, note });
      e.written = e.count;
    }
    this.entries.clear();
    return out;
  }

  private body(s: Omit<AuditSignal, 'reason'> & { readonly reason: string }, at: string): EventBody {
    const { reason, type, action, note, regarding } = s;
    return {
      apiVersion: 'events.k8s.io/v1',
      kind: 'Event',
      metadata: { name: `${dnsPart(regarding.name, 200)}.${dnsPart(reason, 20)}.${dnsPart(this.newId(), 20)}`, namespace: regarding.namespace },
      eventTime: at,
      reportingController: this.controller,
      reportingInstance: this.instance.slice(0, 128),
      action,
      reason,
      type,
      note,
      regarding,
    };
  }
}
