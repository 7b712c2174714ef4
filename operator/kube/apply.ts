// Server-side apply of a desired object with the operator's field manager.
import { FIELD_MANAGER, type ApplyOptions, type KubeClient, type ResourceRef } from './client.ts';

export interface Applicable {
  apiVersion: string;
  kind: string;
  metadata: { name?: string | undefined; namespace?: string | undefined };
}

/** Applies `obj` (the full intent of our field manager: fields we stop sending are removed). Unchanged intent = no write, same resourceVersion. */
export async function applyObject<T = unknown>(client: KubeClient, r: ResourceRef, obj: Applicable, o: ApplyOptions = {}): Promise<T> {
  return client.apply<T>(obj, r, { fieldManager: o.fieldManager ?? FIELD_MANAGER, force: o.force ?? true, subresource: o.subresource });
}
