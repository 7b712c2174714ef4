// The operator's Prometheus metrics (prom-client, one registry per operator): reconciles, errors, queue depth, informer relists, webhook latency, leadership.
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { KubeMetrics, ReconcileResult } from './kube/metrics.ts';

/** Webhook latency buckets: the goal is ≤ 5 ms added p99, so resolution sits below 10 ms. */
export const WEBHOOK_BUCKETS = [0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
export const RECONCILE_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

export interface OperatorMetricsOptions {
  /** Process metrics (RSS, CPU, event-loop lag); off in tests that make many registries. */
  readonly defaultMetrics?: boolean;
}

export class OperatorMetrics implements KubeMetrics {
  readonly registry = new Registry();
  private readonly reconciles: Counter<'controller' | 'result'>;
  private readonly reconcileErrors: Counter<'controller'>;
  private readonly reconcileSeconds: Histogram<'controller'>;
  private readonly depth: Gauge<'queue'>;
  private readonly retries: Counter<'queue'>;
  private readonly relists: Counter<'informer' | 'reason'>;
  private readonly webhook: Histogram<'webhook' | 'outcome'>;
  private readonly leader: Gauge;

  constructor(o: OperatorMetricsOptions = {}) {
    const registers = [this.registry];
    this.reconciles = new Counter({ name: 'chaperone_operator_reconcile_total', help: 'Reconciles by controller and result (success, error, requeue).', labelNames: ['controller', 'result'], registers });
    this.reconcileErrors = new Counter({ name: 'chaperone_operator_reconcile_errors_total', help: 'Reconciles that threw (retried with backoff).', labelNames: ['controller'], registers });
    this.reconcileSeconds = new Histogram({ name: 'chaperone_operator_reconcile_duration_seconds', help: 'Time per reconcile.', labelNames: ['controller'], buckets: RECONCILE_BUCKETS, registers });
    this.depth = new Gauge({ name: 'chaperone_operator_queue_depth', help: 'Keys queued or being processed, per work queue.', labelNames: ['queue'], registers });
    this.retries = new Counter({ name: 'chaperone_operator_queue_retries_total', help: 'Keys requeued with backoff after a failed reconcile.', labelNames: ['queue'], registers });
    this.relists = new Counter({ name: 'chaperone_operator_informer_relists_total', help: 'Informer relists: gone (watch resourceVersion expired, 410) or error (after backoff).', labelNames: ['informer', 'reason'], registers });
    this.webhook = new Histogram({ name: 'chaperone_operator_webhook_duration_seconds', help: 'Admission request handling time by webhook and outcome.', labelNames: ['webhook', 'outcome'], buckets: WEBHOOK_BUCKETS, registers });
    this.leader = new Gauge({ name: 'chaperone_operator_leader', help: '1 while this replica holds the leader Lease.', registers });
    if (o.defaultMetrics ?? true) collectDefaultMetrics({ register: this.registry, prefix: 'chaperone_operator_' });
  }

  reconcile(controller: string, result: ReconcileResult, seconds: number): void {
    this.reconciles.inc({ controller, result });
    if (result === 'error') this.reconcileErrors.inc({ controller });
    this.reconcileSeconds.observe({ controller }, seconds);
  }

  queueDepth(queue: string, depth: number): void {
    this.depth.set({ queue }, depth);
  }

  queueRetry(queue: string): void {
    this.retries.inc({ queue });
  }

  informerRelist(informer: string, reason: 'gone' | 'error'): void {
    this.relists.inc({ informer, reason });
  }

  /** Hand this to the webhook server (`observe`): one observation per admission answered. */
  readonly observeWebhook = (webhook: string, outcome: string, seconds: number): void => {
    this.webhook.observe({ webhook, outcome }, seconds);
  };

  setLeader(leading: boolean): void {
    this.leader.set(leading ? 1 : 0);
  }

  /** Prometheus text exposition. */
  async text(): Promise<string> {
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }
}
