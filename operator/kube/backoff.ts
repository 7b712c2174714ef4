// Exponential backoff with full jitter (AWS architecture blog), for informer reconnects and work-queue retries.
import { setTimeout as delay } from 'node:timers/promises';

export interface BackoffOptions {
  readonly baseMs: number;
  readonly maxMs: number;
}

export const DEFAULT_BACKOFF: BackoffOptions = { baseMs: 500, maxMs: 30_000 };

/** The cap for attempt n (0-based): base · 2^n, at most max. */
export function backoffCap(attempt: number, o: BackoffOptions): number {
  return Math.min(o.maxMs, o.baseMs * 2 ** Math.min(attempt, 30));
}

/** Full jitter: uniform in [cap/2, cap], so retries of many keys spread out but never collapse to zero. */
export function backoffDelay(attempt: number, o: BackoffOptions, random: () => number = Math.random): number {
  const cap = backoffCap(attempt, o);
  return Math.round(cap / 2 + random() * (cap / 2));
}

/** Sleeps, returning early (without throwing) when `signal` aborts. */
export async function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  try {
    await delay(ms, undefined, { signal });
  } catch {
    // aborted: the caller checks signal.aborted
  }
}
