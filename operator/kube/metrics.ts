// What operator/kube reports to metrics; operator/metrics.ts implements it with prom-client (kept an interface so kube/ has no registry).
export type ReconcileResult = 'success' | 'error' | 'requeue';

export interface KubeMetrics {
  /** An informer had to list again: `gone` (410) or `error` (backoff). */
  informerRelist(informer: string, reason: 'gone' | 'error'): void;
  queueDepth(queue: string, depth: number): void;
  queueRetry(queue: string): void;
  reconcile(controller: string, result: ReconcileResult, seconds: number): void;
}

/** For tests and tools that do not export metrics. */
export const NO_METRICS: KubeMetrics = {
  informerRelist: () => undefined,
  queueDepth: () => undefined,
  queueRetry: () => undefined,
  reconcile: () => undefined,
};
