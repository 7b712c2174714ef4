// Writes the aggregator's Event creates and series updates to the API server, in the background, bounded, never blocking a session.
//
// Events are a summary, not the record: a failed or dropped write is logged (rate limited) and
// counted, and the command it describes is not affected. The recording stays the source of truth.
import type { RecordEvent } from '../recording/event.ts';
import type { KubeHttp } from '../approvals/kube-http.ts';
import { EventAggregator, type AggregatorOptions, type EventWrite } from './event-aggregator.ts';
import { signalsFor, type SignalTargets } from './signals.ts';

export interface EmitterLog {
  warn(obj: object, msg: string): void;
}

export interface EventEmitterOptions extends Omit<AggregatorOptions, 'reportingInstance'> {
  readonly api: Pick<KubeHttp, 'request'>;
  readonly targets: SignalTargets;
  readonly reportingInstance: string;
  readonly log?: EmitterLog;
  /** Writes waiting to be sent; beyond it new ones are dropped and counted. Default 256. */
  readonly maxQueue?: number;
  /** How often folded counts are written. Default 10 s. */
  readonly flushMs?: number;
  readonly now?: () => number;
}

export interface EmitterStats {
  readonly sent: number;
  readonly failed: number;
  readonly dropped: number;
  readonly queued: number;
}

const EVENTS = (ns: string): string => `/apis/events.k8s.io/v1/namespaces/${encodeURIComponent(ns)}/events`;

export class KubernetesEventEmitter {
  private readonly agg: EventAggregator;
  private readonly queue: EventWrite[] = [];
  private readonly maxQueue: number;
  private readonly now: () => number;
  private readonly timer: NodeJS.Timeout;
  private sending: Promise<void> | null = null;
  private lastWarn = 0;
  private stats = { sent: 0, failed: 0, dropped: 0 };

  constructor(private readonly o: EventEmitterOptions) {
    this.agg = new EventAggregator(o);
    this.maxQueue = o.maxQueue ?? 256;
    this.now = o.now ?? Date.now;
    this.timer = setInterval(() => this.enqueue(this.agg.tick(this.now())), o.flushMs ?? 10_000);
    this.timer.unref();
  }

  /** Feed every recorded event; most produce nothing. */
  observe(e: RecordEvent): void {
    const t = this.now();
    for (const s of signalsFor(e, this.o.targets)) this.enqueue(this.agg.add(s, t));
  }

  health(): EmitterStats {
    return { ...this.stats, dropped: this.stats.dropped + this.agg.dropped, queued: this.queue.length };
  }

  /** Writes the last folded counts and waits (bounded by the API timeout) for the queue to drain. */
  async close(): Promise<void> {
    clearInterval(this.timer);
    this.enqueue(this.agg.tick(this.now(), true));
    while (this.sending) await this.sending;
  }

  private enqueue(writes: readonly EventWrite[]): void {
    for (const w of writes) {
      if (this.queue.length >= this.maxQueue) this.stats.dropped++;
      else this.queue.push(w);
    }
    if (!this.sending && this.queue.length > 0) {
      this.sending = this.drain().finally(() => {
        this.sending = null;
        if (this.queue.length > 0) this.enqueue([]);
      });
    }
  }

  private async drain(): Promise<void> {
    for (let w = this.queue.shift(); w; w = this.queue.shift()) {
      try {
        const r = await this.send(w);
        if (r >= 200 && r < 300) this.stats.sent++;
        else this.failed(`HTTP ${r}`, w);
      } catch (e) {
        this.failed((e as Error).message, w);
      }
    }
  }

  private async send(w: EventWrite): Promise<number> {
    if (w.op === 'create') return (await this.o.api.request('POST', EVENTS(w.event.metadata.namespace), w.event)).status;
    const path = `${EVENTS(w.namespace)}/${encodeURIComponent(w.name)}`;
    return (await this.o.api.request('PATCH', path, { series: w.series, note: w.note }, 'application/merge-patch+json')).status;
  }

  private failed(why: string, w: EventWrite): void {
    this.stats.failed++;
    const t = this.now();
    if (t - this.lastWarn < 60_000) return;
    this.lastWarn = t;
    const reason = w.op === 'create' ? w.event.reason : 'series';
    this.o.log?.warn({ err: why, reason, failed: this.stats.failed }, 'could not write a Kubernetes Event (the recording is unaffected; check the sidecar ServiceAccount may create events.events.k8s.io)');
  }
}
