// A rate-limited work queue with client-go semantics: dedup by key, one worker per key at a time, bounded concurrency, per-key exponential retry.
import type { Logger } from 'pino';
import { backoffDelay, type BackoffOptions } from './backoff.ts';
import { errText } from './informer.ts';
import type { KubeMetrics } from './metrics.ts';

export const DEFAULT_CONCURRENCY = 4;
export const DEFAULT_RETRY_BACKOFF: BackoffOptions = { baseMs: 200, maxMs: 60_000 };

export interface WorkQueueOptions {
  readonly name: string;
  /** Throw to retry the key later (backoff per key); return normally to forget its failures. */
  readonly process: (key: string) => Promise<void>;
  readonly concurrency?: number;
  readonly backoff?: BackoffOptions;
  readonly metrics?: KubeMetrics;
  readonly log?: Logger;
}

export class WorkQueue {
  /** Keys waiting, in order (a Set keeps each once). */
  private readonly queue = new Set<string>();
  /** Keys being processed now. */
  private readonly active = new Set<string>();
  /** Keys added while active: processed once more when the current run ends. */
  private readonly dirty = new Set<string>();
  private readonly failures = new Map<string, number>();
  private readonly timers = new Map<string, NodeJS.Timeout>();
  private readonly idleWaiters: (() => void)[] = [];
  private readonly concurrency: number;
  private running = false;
  private stopping = false;
  private inFlight = new Set<Promise<void>>();

  constructor(private readonly o: WorkQueueOptions) {
    this.concurrency = Math.max(1, o.concurrency ?? DEFAULT_CONCURRENCY);
  }

  get name(): string {
    return this.o.name;
  }

  add(key: string): void {
    if (this.stopping) return;
    const t = this.timers.get(key);
    if (t) {
      clearTimeout(t);
      this.timers.delete(key);
    }
    if (this.active.has(key)) this.dirty.add(key);
    else this.queue.add(key);
    this.report();
    this.pump();
  }

  /** Adds the key after `ms` (an earlier add wins; a later addAfter replaces a pending one). */
  addAfter(key: string, ms: number): void {
    if (this.stopping) return;
    if (ms <= 0) return this.add(key);
    const old = this.timers.get(key);
    if (old) clearTimeout(old);
    const t = setTimeout(() => {
      this.timers.delete(key);
      this.add(key);
    }, ms);
    t.unref();
    this.timers.set(key, t);
  }

  /** Waiting + active (+ scheduled retries): what the depth gauge reports. */
  depth(): number {
    return this.queue.size + this.active.size + this.dirty.size;
  }

  pendingRetries(): number {
    return this.timers.size;
  }

  start(): void {
    this.running = true;
    this.pump();
  }

  /** Resolves when nothing is queued or running (scheduled retries do not count). */
  idle(): Promise<void> {
    if (this.queue.size === 0 && this.active.size === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  /** Stops taking new work, drops scheduled retries, waits for in-flight reconciles. */
  async shutdown(): Promise<void> {
    this.stopping = true;
    this.running = false;
    for (const t of this.timers.values()) clearTimeout(t);
    this.timers.clear();
    this.queue.clear();
    this.dirty.clear();
    await Promise.allSettled([...this.inFlight]);
    this.report();
    this.wakeIdle();
  }

  private pump(): void {
    while (this.running && this.active.size < this.concurrency && this.queue.size > 0) {
      const key = this.queue.values().next().value as string;
      this.queue.delete(key);
      this.active.add(key);
      const p = this.run(key);
      this.inFlight.add(p);
      void p.finally(() => this.inFlight.delete(p));
    }
    this.wakeIdle();
  }

  private async run(key: string): Promise<void> {
    try {
      await this.o.process(key);
      this.failures.delete(key);
    } catch (err) {
      const n = this.failures.get(key) ?? 0;
      this.failures.set(key, n + 1);
      const wait = backoffDelay(n, this.o.backoff ?? DEFAULT_RETRY_BACKOFF);
      this.o.metrics?.queueRetry(this.o.name);
      this.o.log?.warn({ queue: this.o.name, key, attempt: n + 1, retryInMs: wait, err: errText(err) }, 'reconcile failed; retrying with backoff');
      this.active.delete(key);
      if (!this.dirty.delete(key)) this.addAfter(key, wait);
      else this.queue.add(key);
      this.report();
      this.pump();
      return;
    }
    this.active.delete(key);
    if (this.dirty.delete(key)) this.queue.add(key);
    this.report();
    this.pump();
  }

  private report(): void {
    this.o.metrics?.queueDepth(this.o.name, this.depth());
  }

  private wakeIdle(): void {
    if (this.queue.size === 0 && this.active.size === 0) for (const w of this.idleWaiters.splice(0)) w();
  }
}
