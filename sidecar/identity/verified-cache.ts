// A small LRU of tokens already verified: the same token on every HTTP request pays the signature check once per window.
export interface VerifiedCacheStats {
  hits: number;
  misses: number;
  evictions: number;
}

interface Entry<V> {
  readonly value: V;
  /** ms since the epoch: min(token exp, cached-at + max age). */
  readonly until: number;
}

export class VerifiedCache<V> {
  readonly stats: VerifiedCacheStats = { hits: 0, misses: 0, evictions: 0 };
  private readonly map = new Map<string, Entry<V>>();

  constructor(
    private readonly maxEntries: number,
    private readonly maxAgeMs: number,
  ) {}

  /** Only a hit still inside its window counts; an expired token is never served from here (no skew: re-verify decides). */
  get(key: string, now: number): V | undefined {
    if (this.maxEntries === 0) return undefined;
    const e = this.map.get(key);
    // `!(now < until)`, not `until <= now`: a NaN window (a bad exp or option) is a miss, never a hit forever.
    if (e === undefined || !(now < e.until)) {
      if (e !== undefined) this.map.delete(key);
      this.stats.misses++;
      return undefined;
    }
    this.map.delete(key); // move to the most-recent end
    this.map.set(key, e);
    this.stats.hits++;
    return e.value;
  }

  set(key: string, value: V, expiresAt: number, now = Date.now()): void {
    if (this.maxEntries === 0) return;
    this.map.delete(key);
    this.map.set(key, { value, until: Math.min(expiresAt, now + this.maxAgeMs) });
    while (this.map.size > this.maxEntries) {
      const oldest = this.map.keys().next();
      if (oldest.done === true) break;
      this.map.delete(oldest.value);
      this.stats.evictions++;
    }
  }
}
