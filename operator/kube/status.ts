// metav1.Condition bookkeeping (lastTransitionTime moves only when status flips) and status-subresource patches.
import type { V1OwnerReference } from '@kubernetes/client-node';
import { resourcePath, type KubeClient, type ResourceRef } from './client.ts';

export interface Condition {
  type: string;
  status: 'True' | 'False' | 'Unknown';
  observedGeneration?: number;
  lastTransitionTime: string;
  reason: string;
  message: string;
}

export type ConditionInput = Omit<Condition, 'lastTransitionTime'>;

export function findCondition<C extends { type: string }>(conditions: readonly C[] | undefined, type: string): C | undefined {
  return conditions?.find((c) => c.type === type);
}

/** RFC 3339 without milliseconds, as the API server writes metav1.Time. */
export function nowTime(now: Date = new Date()): string {
  return now.toISOString().replace(/\.\d{3}Z$/, 'Z');
}

/**
 * Sets one condition, keeping the others. lastTransitionTime is kept unless the status changed
 * (metav1.Condition semantics); reason, message and observedGeneration are always the new ones.
 */
export function setCondition(conditions: readonly Condition[] | undefined, c: ConditionInput, now: Date = new Date()): Condition[] {
  const list = [...(conditions ?? [])];
  const i = list.findIndex((x) => x.type === c.type);
  const old = i >= 0 ? list[i] : undefined;
  const lastTransitionTime = old && old.status === c.status ? old.lastTransitionTime : nowTime(now);
  const next: Condition = { ...c, lastTransitionTime };
  if (i >= 0) list[i] = next;
  else list.push(next);
  return list;
}

/** Merge-patches `/status` (the status subresource ignores everything else). */
export async function patchStatus<T = unknown>(client: KubeClient, r: ResourceRef, namespace: string, name: string, status: unknown): Promise<T> {
  return client.mergePatch<T>(resourcePath(r, { namespace, name, subresource: 'status' }), { status });
}

/** An ownerReference to `owner` (controller=true: at most one controller per object). */
export function ownerReference(
  owner: { apiVersion: string; kind: string; metadata: { name?: string | undefined; uid?: string | undefined } },
  o: { controller?: boolean; blockOwnerDeletion?: boolean } = {},
): V1OwnerReference {
  return {
    apiVersion: owner.apiVersion, kind: owner.kind, name: owner.metadata.name ?? '', uid: owner.metadata.uid ?? '',
    controller: o.controller ?? true, blockOwnerDeletion: o.blockOwnerDeletion ?? true,
  };
}
