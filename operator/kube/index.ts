// operator/kube's public surface: the API client, informers, work queues, controllers, apply/status helpers and leader election.
export { backoffCap, backoffDelay, DEFAULT_BACKOFF, sleep, type BackoffOptions } from './backoff.ts';
export {
  DEFAULT_MAX_SOCKETS, DEFAULT_REQUEST_TIMEOUT_MS, FIELD_MANAGER, isStatus, KubeApiError, KubeClient, resourcePath, RESOURCES,
  type ApplyOptions, type KubeClientOptions, type KubeList, type ListOptions, type PathParts, type ResourceRef, type WatchEvent, type WatchOptions,
} from './client.ts';
export { applyObject, type Applicable } from './apply.ts';
export { Controller, type ControllerOptions, type ReconcileOutcome } from './controller.ts';
export {
  DEFAULT_RESYNC_MS, DEFAULT_WATCH_TIMEOUT_SECONDS, errText, Informer, isNotNewer, objectKey, splitKey,
  type InformerHandler, type InformerOptions, type InformerStats, type KubeObject,
} from './informer.ts';
export { LeaderElector, type LeaderCallbacks, type LeaderElectorOptions, type Lease } from './leader.ts';
export { NO_METRICS, type KubeMetrics, type ReconcileResult } from './metrics.ts';
export { findCondition, nowTime, ownerReference, patchStatus, setCondition, type Condition, type ConditionInput } from './status.ts';
export { DEFAULT_CONCURRENCY, DEFAULT_RETRY_BACKOFF, WorkQueue, type WorkQueueOptions } from './workqueue.ts';
