// A controller: a work queue of namespace/name keys, a reconcile function, and the reconcile metrics around it.
import type { Logger } from 'pino';
import type { KubeMetrics } from './metrics.ts';
import { WorkQueue } from './workqueue.ts';
import type { BackoffOptions } from './backoff.ts';

export interface ReconcileOutcome {
  /** Reconcile again after this long even without a change (e.g. polling something unwatched). */
  readonly requeueAfterMs?: number;
}

export interface ControllerOptions {
  readonly name: string;
  /** Level-triggered: read the current state for `key` and converge; must be idempotent. Throw to retry with backoff. */
  readonly reconcile: (key: string) => Promise<ReconcileOutcome | void>;
  readonly concurrency?: number;
  readonly backoff?: BackoffOptions;
  readonly metrics: KubeMetrics;
  readonly log: Logger;
}

export class Controller {
  readonly queue: WorkQueue;

  constructor(private readonly o: ControllerOptions) {
    this.queue = new WorkQueue({
      name: o.name, concurrency: o.concurrency, backoff: o.backoff, metrics: o.metrics, log: o.log,
      process: (key) => this.process(key),
    });
  }

  get name(): string {
    return this.o.name;
  }

  enqueue(key: string): void {
    this.queue.add(key);
  }

  enqueueAfter(key: string, ms: number): void {
    this.queue.addAfter(key, ms);
  }

  start(): void {
    this.queue.start();
  }

  /** Drains in-flight reconciles; queued keys are dropped (the next leader relists them). */
  async stop(): Promise<void> {
    await this.queue.shutdown();
  }

  idle(): Promise<void> {
    return this.queue.idle();
  }

  private async process(key: string): Promise<void> {
    const started = process.hrtime.bigint();
    const seconds = (): number => Number(process.hrtime.bigint() - started) / 1e9;
    let out: ReconcileOutcome | void;
    try {
      out = await this.o.reconcile(key);
    } catch (err) {
      this.o.metrics.reconcile(this.o.name, 'error', seconds());
      throw err;
    }
    if (out?.requeueAfterMs !== undefined) {
      this.o.metrics.reconcile(this.o.name, 'requeue', seconds());
      this.queue.addAfter(key, out.requeueAfterMs);
    } else this.o.metrics.reconcile(this.o.name, 'success', seconds());
  }
}
