// The SQL classifier the sessions use: lazy libpg-query load, an LRU parse cache, hit/miss stats.
//
// Two keys: the exact text (extended-protocol Parse, and any literal-sensitive statement) and the
// normalized text (simple protocol: `… WHERE id = 1` and `… = 2` share one entry). A normalized entry
// stores only each statement's shape; the text and hash of each statement are rebuilt from the new
// message with the scanner's split, which matched the parser's when the entry was stored.
import type { ClassifyResult, ParseFn, StatementFacts, StatementShape } from './sql-facts.ts';
import { classifyMessage, sha256Hex, toClassifyError } from './sql-facts.ts';
import { normalizeSql, type NormalizedSql } from './sql-normalize.ts';

export const DEFAULT_CACHE_ENTRIES = 5000;
export const DEFAULT_CACHE_BYTES = 16 * 1024 * 1024;
/** Longer texts are classified every time: a few huge statements must not flush the cache. */
export const DEFAULT_MAX_CACHED_TEXT = 64 * 1024;

export interface SqlCacheOptions {
  readonly maxEntries?: number;
  readonly maxBytes?: number;
  readonly maxCachedText?: number;
}

export interface SqlCacheStats {
  readonly hits: number;
  readonly exactHits: number;
  readonly normalizedHits: number;
  readonly misses: number;
  readonly evictions: number;
  readonly entries: number;
  readonly bytes: number;
  /** hits / (hits + misses), 0 when nothing was looked up. */
  readonly hitRate: number;
}

type Entry =
  | { readonly type: 'exact'; readonly facts: readonly StatementFacts[]; readonly bytes: number }
  | { readonly type: 'normalized'; readonly shapes: readonly StatementShape[]; readonly bytes: number };

/** A Map keeps insertion order: re-inserting on a hit makes the first key the least recently used. */
class Lru {
  private readonly map = new Map<string, Entry>();
  bytes = 0;
  evictions = 0;

  constructor(private readonly maxEntries: number, private readonly maxBytes: number) {}

  get(key: string): Entry | undefined {
    const e = this.map.get(key);
    if (e) {
      this.map.delete(key);
      this.map.set(key, e);
    }
    return e;
  }

  set(key: string, e: Entry): void {
    const old = this.map.get(key);
    if (old) {
      this.bytes -= old.bytes;
      this.map.delete(key);
    }
    this.map.set(key, e);
    this.bytes += e.bytes;
    while (this.map.size > this.maxEntries || this.bytes > this.maxBytes) {
      const first = this.map.keys().next();
      if (first.done === true) break;
      const victim = this.map.get(first.value);
      this.map.delete(first.value);
      this.bytes -= victim?.bytes ?? 0;
      this.evictions++;
    }
  }

  get size(): number {
    return this.map.size;
  }

  clear(): void {
    this.map.clear();
    this.bytes = 0;
  }
}

/** Rough heap cost: UTF-16 strings plus a fixed cost per object, enough to bound memory. */
function shapeBytes(s: StatementShape): number {
  let n = 400 + s.normalized.length * 2 + s.command.length * 2;
  for (const t of s.tables) n += 64 + (t.name.length + (t.schema?.length ?? 0)) * 2;
  for (const f of s.functions) n += 32 + f.length * 2;
  n += (s.dml.length + s.settings.length) * 96 + s.flags.length * 16;
  return n;
}

function toShape(f: StatementFacts): StatementShape {
  // Drop index/text/hash: they belong to one message, the shape to every message of that form.
  const { index: _i, text: _t, hash: _h, ...shape } = f;
  return shape;
}

export type Protocol = 'simple' | 'extended';

export class SqlClassifier {
  private readonly lru: Lru;
  private readonly maxCachedText: number;
  private hitsExact = 0;
  private hitsNormalized = 0;
  private missCount = 0;

  constructor(private readonly parse: ParseFn, options: SqlCacheOptions = {}) {
    this.lru = new Lru(options.maxEntries ?? DEFAULT_CACHE_ENTRIES, options.maxBytes ?? DEFAULT_CACHE_BYTES);
    this.maxCachedText = options.maxCachedText ?? DEFAULT_MAX_CACHED_TEXT;
  }

  /**
   * Classifies a message. `simple`: a Query message (may hold several statements; literals are
   * normalized for the cache). `extended`: a Parse message's text (cached by exact text only).
   * Never throws: parser and classifier failures come back as { ok: false }.
   */
  classify(text: string, protocol: Protocol = 'simple'): ClassifyResult {
    const cacheable = text.length <= this.maxCachedText;
    // Simple protocol: the normalized lookup first. Literals vary per call (pgbench's aid), so the
    // exact key would miss, after copying the text into a key and hashing it (hot path).
    const n = protocol === 'simple' && cacheable ? normalizeSql(text) : undefined;
    const normKey = n?.complete === true ? `n\u0000${n.key}` : undefined;
    if (n && normKey !== undefined) {
      const hit = this.normalizedHit(text, n, normKey);
      if (hit) return { ok: true, statements: hit.statements, cache: 'normalized', keys: hit.shapes };
    }
    const exactKey = `x\u0000${text}`;
    if (cacheable) {
      const hit = this.lru.get(exactKey);
      if (hit?.type === 'exact') {
        this.hitsExact++;
        return { ok: true, statements: hit.facts, cache: 'exact', keys: hit.facts };
      }
    }
    this.missCount++;
    let parsed;
    try {
      parsed = classifyMessage(this.parse, text);
    } catch (e) {
      return { ok: false, error: toClassifyError(e) };
    }
    if (cacheable) this.store(exactKey, normKey, parsed);
    return { ok: true, statements: parsed.statements, cache: 'miss' };
  }

  /** Rebuilds this message's facts from a normalized entry: shapes from the cache, text and hash from the message. */
  private normalizedHit(text: string, n: NormalizedSql, normKey: string): { statements: StatementFacts[]; shapes: readonly StatementShape[] } | undefined {
    const hit = this.lru.get(normKey);
    if (hit?.type !== 'normalized' || hit.shapes.length !== n.statements.length) return undefined;
    this.hitsNormalized++;
    const statements = hit.shapes.map((shape, index) => {
      const span = n.statements[index];
      const t = span ? text.slice(span.start, span.end) : '';
      return { ...shape, index, text: t, hash: sha256Hex(t) };
    });
    return { statements, shapes: hit.shapes };
  }

  private store(exactKey: string, normKey: string | undefined, parsed: ReturnType<typeof classifyMessage>): void {
    const shapesBytes = parsed.statements.reduce((a, s) => a + shapeBytes(s), 0);
    if (normKey !== undefined && parsed.normalizable && parsed.normalizedKey !== null) {
      const shapes = parsed.statements.map(toShape);
      this.lru.set(normKey, { type: 'normalized', shapes, bytes: normKey.length * 2 + shapesBytes });
      return;
    }
    const bytes = exactKey.length * 2 + shapesBytes + parsed.statements.reduce((a, s) => a + s.text.length * 2 + 140, 0);
    this.lru.set(exactKey, { type: 'exact', facts: parsed.statements, bytes });
  }

  stats(): SqlCacheStats {
    const hits = this.hitsExact + this.hitsNormalized;
    const total = hits + this.missCount;
    return {
      hits,
      exactHits: this.hitsExact,
      normalizedHits: this.hitsNormalized,
      misses: this.missCount,
      evictions: this.lru.evictions,
      entries: this.lru.size,
      bytes: this.lru.bytes,
      hitRate: total === 0 ? 0 : hits / total,
    };
  }

  clear(): void {
    this.lru.clear();
  }
}

let loading: Promise<ParseFn> | undefined;

/**
 * Loads libpg-query (WASM, ~13 MB of RSS) on first use only, so a sidecar that never sees SQL
 * never pays for it. Concurrent callers share one load.
 */
export function loadSqlParser(): Promise<ParseFn> {
  loading ??= (async (): Promise<ParseFn> => {
    const mod = await import('libpg-query');
    await mod.loadModule();
    return (sql: string) => mod.parseSync(sql);
  })();
  return loading;
}

export async function createSqlClassifier(options: SqlCacheOptions = {}): Promise<SqlClassifier> {
  return new SqlClassifier(await loadSqlParser(), options);
}
