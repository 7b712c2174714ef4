// Polls until a condition holds, for state that reaches the API server asynchronously (RBAC caches, webhook configs).
import { setTimeout as delay } from 'node:timers/promises';

export interface EventuallyOptions {
  /** What we wait for, for the timeout message (a function is read at timeout, to show late state). */
  readonly what: string | (() => string);
  readonly timeoutMs?: number;
  readonly intervalMs?: number;
}

export const DEFAULT_EVENTUALLY_TIMEOUT_MS = 30_000;

/** Calls `probe` until it returns a value other than undefined, or throws with the last result after the timeout. */
export async function eventually<T>(probe: () => Promise<T | undefined>, o: EventuallyOptions): Promise<T> {
  const deadline = Date.now() + (o.timeoutMs ?? DEFAULT_EVENTUALLY_TIMEOUT_MS);
  let last: unknown;
  for (;;) {
    try {
      const v = await probe();
      if (v !== undefined) return v;
      last = undefined;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${o.timeoutMs ?? DEFAULT_EVENTUALLY_TIMEOUT_MS} ms waiting for ${typeof o.what === 'function' ? o.what() : o.what}${last instanceof Error ? `; last error: ${last.message}` : ''}`);
    }
    await delay(o.intervalMs ?? 200);
  }
}
