// The write-ahead recorder: links events into the chain, group-commits them to every sink, fails closed.
import { randomBytes, type KeyObject } from 'node:crypto';
import { ChaperoneError } from '../core/errors.ts';
import { ENVELOPE_KEYS } from './canonical.ts';
import { genesis, link, linkTail, type Entry, type LinkedBytes } from './chain.ts';
import type { AnyEvent, LineRef, RecordEvent, StreamStartEvent } from './event.ts';
import { checkpointMessage, keyId, signCheckpoint } from './signing.ts';
import type { Sink, SinkStats } from './sinks.ts';

export const DEFAULT_MAX_PENDING = 4096;
export const DEFAULT_MAX_PENDING_BYTES = 16 << 20;
export const DEFAULT_MAX_BATCH_LINES = 512;
export const DEFAULT_MAX_FIELD_CHARS = 4096;
/** containerd splits log lines longer than 16 KiB; staying below keeps `kubectl logs` lines whole. */
export const DEFAULT_MAX_LINE_BYTES = 16_000;
export const DEFAULT_RETRY_MS = 1000;
export const DEFAULT_CHECKPOINT_LINES = 1000;
export const DEFAULT_CHECKPOINT_MS = 10_000;
/** Longest wait of a `lazy` line (not write-ahead) for a write-ahead line to share its write with. */
export const DEFAULT_LAZY_MS = 5;

export interface SigningOptions {
  /** Ed25519 private key mounted only into the sidecar. */
  readonly privateKey: KeyObject;
  /** At most this many lines between checkpoints (the verifier enforces it). */
  readonly everyLines?: number;
  /** A checkpoint at least this often while lines are unsealed. */
  readonly everyMs?: number;
}

/** The slice of a pino logger the recorder uses. */
export interface RecorderLog {
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

export interface RecorderOptions {
  readonly sinks: readonly Sink[];
  readonly signing?: SigningOptions;
  /**
   * A second masking wall applied to every free-text string field (the masking engine's `mask`).
   * It must be a pure function of its input: short repeated values (table, rule and detector names,
   * SQLSTATEs) are masked once and memoized.
   */
  readonly mask?: (text: string) => string;
  readonly maxPending?: number;
  readonly maxPendingBytes?: number;
  /** Lines per group commit; 1 means one write + fdatasync per event. */
  readonly maxBatchLines?: number;
  readonly maxFieldChars?: number;
  readonly maxLineBytes?: number;
  /** Longest a `lazy` record waits to share the next write (default DEFAULT_LAZY_MS). */
  readonly lazyMs?: number;
  /** Least time between recovery attempts after a failure (the first is immediate). */
  readonly retryMs?: number;
  readonly origin?: Readonly<Record<string, string>>;
  readonly log?: RecorderLog;
  /** Injectable for tests. */
  readonly clock?: () => Date;
  readonly newStreamId?: () => string;
}

export interface RecorderHealth {
  readonly ok: boolean;
  readonly stream: string;
  /** The failure that broke the recorder (code and message; never data). */
  readonly error: string | null;
  readonly brokenSince: string | null;
}

export interface RecorderStats {
  readonly lines: number;
  readonly batches: number;
  readonly pending: number;
  readonly streams: number;
  readonly failures: number;
  readonly sinks: Readonly<Record<string, SinkStats>>;
}

/** How urgent a line is. */
export interface RecordOptions {
  /**
   * Not write-ahead (a result summary: the response is already on its way): the line may wait up to
   * `lazyMs` so that it shares one write with the next write-ahead line. Its place in the chain is
   * fixed when `record` is called, as for any line.
   */
  readonly lazy?: boolean;
}

export interface Recorder {
  /** Resolves once the line is written to every required sink; rejects (fail closed) otherwise. */
  record(event: RecordEvent, opts?: RecordOptions): Promise<LineRef>;
  /** Writes `stream.end` (and a final checkpoint when signing), then closes the sinks. */
  close(reason?: string): Promise<void>;
  health(): RecorderHealth;
  stats(): RecorderStats;
}

interface Pending {
  /** The line's UTF-8 bytes and its newline. */
  readonly data: Buffer;
  readonly bytes: number;
  readonly ref: LineRef;
  readonly resolve: (r: LineRef) => void;
  readonly reject: (e: Error) => void;
}

/** Fields that hold identifiers or enums, not free text: the mask hook leaves them alone. */
const RECORDER_ONLY: ReadonlySet<string> = new Set(['stream.start', 'stream.end', 'checkpoint']);
const UNMASKED = new Set(['type', 'session', 'statementHash', 'configHash', 'decision', 'protocol', 'outcome']);
/** An UNMASKED field is left alone only while it looks like an id or enum; anything else goes through the mask too. */
const IDENT = /^[A-Za-z0-9._:/-]{0,128}$/;
/** A Kubernetes object or node name, or a uid: lowercase letters, digits, `-` and `.`. */
const K8S_NAME = /^[a-z0-9]([a-z0-9.-]{0,251}[a-z0-9])?$/;

/** Whether the second wall applies to the string `v` of top-level field `key`. */
function masks(key: string, v: string): boolean {
  return !UNMASKED.has(key) || !IDENT.test(v);
}

/** Opens the sinks and writes the first `stream.start`; rejects if that fails (the sidecar must not serve unrecorded). */
export async function createRecorder(opts: RecorderOptions): Promise<Recorder> {
  if (opts.sinks.length === 0) throw new Error('createRecorder needs at least one sink');
  const r = new ChainRecorder(opts);
  try {
    await r.start();
  } catch (e) {
    await Promise.allSettled(opts.sinks.map((s) => s.close()));
    throw e;
  }
  return r;
}

class ChainRecorder implements Recorder {
  private readonly sinks: Sink[];
  private readonly allSinks: readonly Sink[];
  private readonly clock: () => Date;
  private readonly newStreamId: () => string;
  private readonly lim: Limits;
  private readonly signKey: KeyObject | null;
  private readonly signKeyId: string;
  private timer: NodeJS.Timeout | null = null;

  private stream = '';
  private seq = -1;
  private prev = '';
  private sinceCheckpoint = 0;
  private lastAcked: LineRef | null = null;
  private queue: Pending[] = [];
  private pendingCount = 0;
  private pendingBytes = 0;
  private flushing = false;
  /** A flush is queued for the end of this event-loop turn (setImmediate). */
  private scheduled = false;
  private lazyTimer: NodeJS.Timeout | null = null;
  private broken: { readonly error: Error; readonly at: Date } | null = null;
  private recovering: Promise<void> | null = null;
  private lastAttempt = 0;
  private closed = false;
  private counts = { lines: 0, batches: 0, streams: 0, failures: 0 };
  /** The mask hook's results for short repeated values (see RecorderOptions.mask). */
  private readonly memo: Map<string, string> | null;
  private readonly shapes = new Shapes();
  /** `origin` through the mask hook (second wall), once. */
  private readonly origin: Readonly<Record<string, string>> | undefined;
  private isoMs = -1;
  private iso = '';

  constructor(private readonly opts: RecorderOptions) {
    this.sinks = [...opts.sinks];
    this.allSinks = opts.sinks;
    this.clock = opts.clock ?? ((): Date => new Date());
    this.newStreamId = opts.newStreamId ?? ((): string => randomBytes(8).toString('hex'));
    this.lim = limits(opts);
    this.signKey = opts.signing?.privateKey ?? null;
    this.signKeyId = this.signKey ? keyId(this.signKey) : '';
    this.memo = opts.mask ? new Map() : null;
    const mask = opts.mask;
    // Pod, namespace, uid and node names (lowercase DNS names) pass as they are: masking them here
    // would build the detector table at start (~10 MB idle), which otherwise loads on first use.
    const wallOf = (v: string): string => (mask === undefined || K8S_NAME.test(v) ? v : mask(v));
    this.origin = opts.origin ? Object.fromEntries(Object.entries(opts.origin).map(([k, v]) => [wallOf(k), wallOf(v)])) : undefined;
  }

  async start(): Promise<void> {
    const infos = await Promise.all(this.sinks.map((s) => s.open()));
    const after = infos.find((i) => i.last)?.last ?? null;
    const truncated = infos.reduce((n, i) => n + i.truncatedBytes, 0);
    if (truncated > 0) this.opts.log?.warn({ truncatedBytes: truncated }, 'recording file ended in a torn line; cut it');
    await this.beginStream({ reason: 'start', after, truncated });
    if (this.signKey && this.lim.everyMs > 0) {
      this.timer = setInterval(() => this.timedCheckpoint(), this.lim.everyMs);
      this.timer.unref();
    }
  }

  record(event: RecordEvent, opts?: RecordOptions): Promise<LineRef> {
    if (this.closed) return Promise.reject(new ChaperoneError('CHAP_ERR_RECORDING_CLOSED'));
    if (this.broken) return this.recordWhileBroken(event, opts);
    if (this.pendingCount >= this.lim.maxPending || this.pendingBytes >= this.lim.maxPendingBytes) {
      return Promise.reject(new ChaperoneError('CHAP_ERR_RECORDING_BACKPRESSURE', { detail: `${this.pendingCount} lines, ${this.pendingBytes} bytes pending` }));
    }
    let body: AnyEvent | string;
    try {
      if (RECORDER_ONLY.has(event.type)) throw new ChaperoneError('CHAP_ERR_INTERNAL', { detail: `${event.type} lines are written by the recorder only` });
      body = this.bounded(event);
    } catch (e) {
      return Promise.reject(e instanceof Error ? e : new Error(String(e)));
    }
    const p = this.append(body);
    if (opts?.lazy === true) this.kickLazy();
    else this.kick();
    return p;
  }

  async close(reason = 'shutdown'): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.timer) clearInterval(this.timer);
    if (this.lazyTimer) clearTimeout(this.lazyTimer);
    this.lazyTimer = null;
    if (!this.broken && !this.recovering) {
      const end = this.append({ type: 'stream.end', reason });
      // The final checkpoint seals everything, stream.end included; it is the last line queued.
      const last = this.signKey && this.sinceCheckpoint > 0 ? this.appendCheckpoint() : end;
      this.kick();
      const [e] = await Promise.allSettled([end, last]);
      if (e.status === 'rejected') this.opts.log?.error({ err: (e.reason as Error).message }, 'recording stream.end could not be written');
    }
    await Promise.allSettled(this.allSinks.map((s) => s.close()));
  }

  health(): RecorderHealth {
    return {
      ok: !this.broken && !this.closed,
      stream: this.stream,
      error: this.broken ? describe(this.broken.error) : null,
      brokenSince: this.broken ? this.broken.at.toISOString() : null,
    };
  }

  stats(): RecorderStats {
    return { ...this.counts, pending: this.pendingCount, sinks: Object.fromEntries(this.allSinks.map((s) => [s.name, s.stats()])) };
  }

  /** Fail closed while broken; one caller per `retryMs` reopens the sinks and, on success, goes ahead. */
  private async recordWhileBroken(event: RecordEvent, opts: RecordOptions | undefined): Promise<LineRef> {
    const now = Date.now();
    if (this.recovering || now - this.lastAttempt < this.lim.retryMs) throw this.failedError();
    this.lastAttempt = now;
    this.recovering = this.recover();
    try {
      await this.recovering;
    } finally {
      this.recovering = null;
    }
    if (this.broken) throw this.failedError();
    return this.record(event, opts);
  }

  private async recover(): Promise<void> {
    const code = this.broken ? errorCode(this.broken.error) : 'EIO';
    let truncated = 0;
    try {
      for (const s of this.sinks) truncated += (await s.recover()).truncatedBytes;
    } catch (e) {
      this.broken = { error: e as Error, at: this.broken?.at ?? this.clock() };
      this.opts.log?.error({ err: describe(e as Error) }, 'recording sink could not be reopened; commands stay refused');
      return;
    }
    this.broken = null;
    await this.beginStream({ reason: 'recovered', after: this.lastAcked, truncated, error: code }).catch(() => undefined);
    if (!this.broken) this.opts.log?.warn({ stream: this.stream, after: this.lastAcked }, 'recording recovered; new stream started');
  }

  private beginStream(o: { reason: StreamStartEvent['reason']; after: LineRef | null; truncated: number; error?: string }): Promise<LineRef> {
    this.stream = this.newStreamId();
    this.seq = -1;
    this.prev = genesis(this.stream);
    this.sinceCheckpoint = 0;
    this.counts.streams++;
    const start: StreamStartEvent = {
      type: 'stream.start',
      reason: o.reason,
      after: o.after,
      checkpoint: this.signKey ? { key: this.signKeyId, everyLines: this.lim.everyLines, everyMs: this.lim.everyMs } : null,
      ...(o.error ? { error: o.error } : {}),
      ...(o.truncated > 0 ? { truncatedBytes: o.truncated } : {}),
      ...(this.origin ? { origin: this.origin } : {}),
    };
    const p = this.append(start);
    this.kick();
    return p;
  }

  /**
   * Links one line at the chain head; seals with a checkpoint when `everyLines` is reached. `body` is
   * an event, or the canonical tail of a recorded event (the fast path of `bounded`).
   */
  private append(body: AnyEvent | string, time = this.now()): Promise<LineRef> {
    const seq = ++this.seq;
    const { data, hash } = typeof body === 'string' ? linkTail(this.prev, this.stream, seq, time, body) : linkBytes(this.prev, { ...body, stream: this.stream, seq, time });
    this.prev = hash;
    const ref: LineRef = { stream: this.stream, seq, hash };
    const bytes = data.length;
    const p = new Promise<LineRef>((resolve, reject) => this.queue.push({ data, bytes, ref, resolve, reject }));
    this.pendingCount++;
    this.pendingBytes += bytes;
    if ((typeof body === 'string' || body.type !== 'checkpoint') && this.signKey && ++this.sinceCheckpoint >= this.lim.everyLines) {
      void this.appendCheckpoint().catch(() => undefined);
    }
    return p;
  }

  /** The line's time; the default clock's ISO text is reused within one millisecond (lines come in bursts). */
  private now(): string {
    if (this.opts.clock !== undefined) return this.clock().toISOString();
    const ms = Date.now();
    if (ms !== this.isoMs) {
      this.isoMs = ms;
      this.iso = new Date(ms).toISOString();
    }
    return this.iso;
  }

  private appendCheckpoint(): Promise<LineRef> {
    const key = this.signKey;
    if (!key) return Promise.reject(new Error('no signing key'));
    this.sinceCheckpoint = 0;
    const time = this.now();
    const sig = signCheckpoint(key, checkpointMessage(this.stream, this.seq + 1, time, this.prev));
    return this.append({ type: 'checkpoint', key: this.signKeyId, sig }, time);
  }

  private timedCheckpoint(): void {
    if (this.broken || this.recovering || this.closed || this.sinceCheckpoint === 0) return;
    void this.appendCheckpoint().catch(() => undefined);
    this.kick();
  }

  /**
   * Flushes at the end of this event-loop turn: every line queued by the I/O callbacks of the same
   * turn (all sessions) goes out in one write. A flush in progress picks new lines up itself.
   */
  private kick(): void {
    if (this.flushing || this.scheduled) return;
    this.scheduled = true;
    setImmediate(this.runFlush);
  }

  /**
   * A lazy line rides along with the next write, or goes alone after `lazyMs`. The timer is not
   * cancelled when a write takes the line first: it fires once, finds nothing or newer lazy lines
   * (which it then sends, still within `lazyMs` of their queueing), and is re-armed by the next lazy
   * line. Under load that is one timer per `lazyMs` instead of a setTimeout + clearTimeout per line.
   */
  private kickLazy(): void {
    if (this.flushing || this.scheduled || this.lazyTimer !== null) return;
    this.lazyTimer = setTimeout(this.lazyFire, this.lim.lazyMs);
  }

  private readonly lazyFire = (): void => {
    this.lazyTimer = null;
    if (this.queue.length > 0 && !this.closed) this.kick();
  };

  private readonly runFlush = (): void => {
    this.scheduled = false;
    if (this.flushing) return;
    this.flushing = true;
    void this.flushLoop().finally(() => {
      this.flushing = false;
      if (this.queue.length > 0 && !this.broken) this.kick();
    });
  };

  /** Group commit: whatever queued while the last batch was being written goes out in one write + sync. */
  private async flushLoop(): Promise<void> {
    while (this.queue.length > 0 && !this.broken) {
      const batch = this.queue.splice(0, this.lim.maxBatch);
      const data = batch.length === 1 && batch[0] ? batch[0].data : Buffer.concat(batch.map((p) => p.data));
      const failure = this.sinkFailures(await this.writeSinks(data));
      if (failure) {
        this.fail(failure, batch);
        return;
      }
      for (const s of this.sinks) s.ack();
      this.counts.batches++;
      this.counts.lines += batch.length;
      this.lastAcked = batch[batch.length - 1]?.ref ?? this.lastAcked;
      for (const p of batch) {
        this.pendingCount--;
        this.pendingBytes -= p.bytes;
        p.resolve(p.ref);
      }
    }
  }

  /** Every sink's outcome; one sink (the usual case) without allSettled's extra promises. */
  private async writeSinks(data: Buffer): Promise<readonly PromiseSettledResult<void>[]> {
    const only = this.sinks.length === 1 ? this.sinks[0] : undefined;
    if (only === undefined) return Promise.allSettled(this.sinks.map((s) => s.write(data)));
    try {
      await only.write(data);
      return FULFILLED;
    } catch (e) {
      return [{ status: 'rejected', reason: e }];
    }
  }

  /** Drops failed optional sinks; returns the first required sink's failure. */
  private sinkFailures(results: readonly PromiseSettledResult<void>[]): Error | null {
    if (results === FULFILLED) return null;
    let failure: Error | null = null;
    const failed: Sink[] = [];
    results.forEach((r, i) => {
      const s = this.sinks[i];
      if (r.status === 'fulfilled' || !s) return;
      const err = r.reason as Error;
      if (s.required) failure ??= withSink(s, err);
      else failed.push(s);
      this.opts.log?.[s.required ? 'error' : 'warn']({ sink: s.name, err: describe(err) }, s.required ? 'recording sink failed' : 'optional recording sink failed; dropped');
    });
    for (const s of failed) this.sinks.splice(this.sinks.indexOf(s), 1);
    return failure;
  }

  /** Breaks the recorder: this batch and every queued line are refused; the stream is over. */
  private fail(err: Error, batch: readonly Pending[]): void {
    this.broken = { error: err, at: this.clock() };
    this.counts.failures++;
    const refused = [...batch, ...this.queue];
    this.queue = [];
    const e = this.failedError();
    for (const p of refused) {
      this.pendingCount--;
      this.pendingBytes -= p.bytes;
      p.reject(e);
    }
  }

  private failedError(): ChaperoneError {
    return new ChaperoneError('CHAP_ERR_RECORDING_FAILED', { detail: this.broken ? describe(this.broken.error) : 'recovering' }, { cause: this.broken?.error });
  }

  /**
   * Masks free text (second wall), bounds every string and the whole line. Nearly always returns the
   * canonical tail built in one pass (`lineTail`); otherwise (a line too long, an odd key) a plain
   * JSON copy for `link`, with the same bytes as the outcome.
   */
  private bounded(event: RecordEvent): AnyEvent | string {
    const fast: LineCtx = { mask: this.opts.mask, memo: this.memo, shapes: this.shapes, max: this.lim.maxField, bound: 0, fallback: false };
    const tail = lineTail(event as unknown as Readonly<Record<string, unknown>>, fast);
    const max = this.lim.maxLine - 300;
    // The slow path's test: JSON.stringify(body) has the length and bytes of '{' + tail.
    if (tail !== null && !fast.fallback && !(fast.bound > max && (tail.length + 1 > max || Buffer.byteLength(tail) + 1 > max))) return tail;
    const ctx: SanitizeCtx = { mask: this.opts.mask, max: this.lim.maxField, bound: 0 };
    let body = sanitize(event, ctx, 0, '') as AnyEvent;
    // The exact check serializes the line; skip it when even the worst-case escaping fits (nearly always).
    if (ctx.bound > this.lim.maxLine - 300 && tooLong(body, this.lim.maxLine - 300)) {
      body = sanitize(event, { mask: this.opts.mask, max: Math.max(64, this.lim.maxField >> 4), bound: 0 }, 0, '') as AnyEvent;
      if (tooLong(body, this.lim.maxLine - 300)) {
        throw new ChaperoneError('CHAP_ERR_INTERNAL', { detail: `a ${event.type} event is too large to record (over ${this.lim.maxLine} bytes)` });
      }
    }
    return body;
  }
}

interface Limits {
  readonly maxPending: number;
  readonly maxPendingBytes: number;
  readonly maxBatch: number;
  readonly maxField: number;
  readonly maxLine: number;
  readonly retryMs: number;
  readonly everyLines: number;
  readonly everyMs: number;
  readonly lazyMs: number;
}

function limits(o: RecorderOptions): Limits {
  return {
    maxPending: o.maxPending ?? DEFAULT_MAX_PENDING,
    maxPendingBytes: o.maxPendingBytes ?? DEFAULT_MAX_PENDING_BYTES,
    maxBatch: Math.max(1, o.maxBatchLines ?? DEFAULT_MAX_BATCH_LINES),
    maxField: o.maxFieldChars ?? DEFAULT_MAX_FIELD_CHARS,
    maxLine: o.maxLineBytes ?? DEFAULT_MAX_LINE_BYTES,
    retryMs: o.retryMs ?? DEFAULT_RETRY_MS,
    everyLines: Math.max(1, o.signing?.everyLines ?? DEFAULT_CHECKPOINT_LINES),
    everyMs: o.signing?.everyMs ?? DEFAULT_CHECKPOINT_MS,
    lazyMs: Math.max(0, o.lazyMs ?? DEFAULT_LAZY_MS),
  };
}

const MAX_DEPTH = 8;
const FULFILLED: readonly PromiseSettledResult<void>[] = Object.freeze([Object.freeze({ status: 'fulfilled', value: undefined })]);

function linkBytes(prev: string, entry: Entry): LinkedBytes {
  const { line, hash } = link(prev, entry);
  return { data: Buffer.from(line + '\n', 'utf8'), hash };
}

/** Byte length does not depend on key order, so the fast JSON.stringify measures the canonical line. */
function tooLong(body: AnyEvent, max: number): boolean {
  const s = JSON.stringify(body);
  return s.length > max || Buffer.byteLength(s) > max;
}

/** Worst-case JSON bytes of one UTF-16 unit (`\uXXXX`). */
const WORST_ESCAPE = 6;

/** What sanitizing needs along the way; `bound` grows with an upper bound of the serialized bytes. */
interface SanitizeCtx {
  readonly mask: ((s: string) => string) | undefined;
  readonly max: number;
  bound: number;
}

/**
 * A plain-JSON copy with strings masked and clipped; adds to `ctx.bound` an upper bound of the
 * serialized bytes (every unit escaped, numbers at 24 bytes, 4 bytes of punctuation per member).
 */
function sanitize(v: unknown, ctx: SanitizeCtx, depth: number, key: string): unknown {
  if (typeof v === 'string') {
    const out = clip(ctx.mask && masks(key, v) ? ctx.mask(v) : v, ctx.max);
    ctx.bound += out.length * WORST_ESCAPE + 2;
    return out;
  }
  ctx.bound += 24;
  if (typeof v === 'number') return Number.isFinite(v) ? v : null;
  if (typeof v === 'boolean' || v === null) return v;
  if (typeof v !== 'object' || depth >= MAX_DEPTH) return null;
  if (Array.isArray(v)) {
    const out = new Array<unknown>(v.length);
    for (let i = 0; i < v.length; i++) out[i] = sanitize(v[i], ctx, depth + 1, key);
    return out;
  }
  return sanitizeObject(v as Record<string, unknown>, ctx, depth, key);
}

function sanitizeObject(src: Record<string, unknown>, ctx: SanitizeCtx, depth: number, key: string): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const k in src) {
    if (!Object.hasOwn(src, k)) continue;
    const x = src[k];
    if (x === undefined) continue;
    // Keys of nested objects (detector ids in `masked`, …) are strings of the recording too; top-level keys are the schema's.
    const mk = depth > 0 && ctx.mask ? ctx.mask(k) : k;
    ctx.bound += mk.length * WORST_ESCAPE + 4;
    out[mk] = sanitize(x, ctx, depth + 1, depth === 0 ? k : key);
  }
  return out;
}

/** Envelope keys other than type and session: an event carrying one takes the slow path (the envelope overrides it). */
const ENVELOPE_ONLY: ReadonlySet<string> = new Set(ENVELOPE_KEYS.filter((k) => k !== 'type' && k !== 'session'));
/** Free-text fields, nearly always unique: not memoized. */
const ONE_OFF: ReadonlySet<string> = new Set(['text', 'url', 'error']);
const MEMO_MAX_CHARS = 64;
const MEMO_MAX_ENTRIES = 2048;

/** `sanitize` and the canonical serialization in one pass; `bound` grows exactly as in `sanitize`. */
interface LineCtx {
  readonly mask: ((s: string) => string) | undefined;
  readonly memo: Map<string, string> | null;
  readonly shapes: Shapes;
  readonly max: number;
  bound: number;
  /** Set when the input needs the slow path (a `__proto__` key, which the copy would drop). */
  fallback: boolean;
}

/** One object shape: its keys as found, in canonical order, and each member's `"key":` text. */
interface Shape {
  readonly keys: readonly string[];
  readonly sorted: readonly string[];
  readonly json: readonly string[];
  /** False when the shape needs the slow path. */
  readonly ok: boolean;
  /** Whether the mask hook leaves every key unchanged (set on first use). */
  keysMasked?: boolean;
}

/**
 * The canonical order of the last shape seen per slot (event type, or top-level field for the
 * objects inside it): the hot events repeat their shape, so the sort runs once, not per line.
 */
class Shapes {
  private readonly bySlot = new Map<string, Shape>();

  of(slot: string, keys: readonly string[], top: boolean): Shape {
    const s = this.bySlot.get(slot);
    if (s !== undefined && sameKeys(s.keys, keys)) return s;
    const n = shapeOf(keys, top);
    if (this.bySlot.size >= 256) this.bySlot.clear();
    this.bySlot.set(slot, n);
    return n;
  }
}

function sameKeys(a: readonly string[], b: readonly string[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** Canonical order: at the top `type`, `session`, then the rest sorted (an envelope key or `__proto__` → slow path). */
function shapeOf(keys: readonly string[], top: boolean): Shape {
  let ok = !keys.includes('__proto__');
  let sorted: string[];
  if (top) {
    ok &&= keys.includes('type') && !keys.some((k) => ENVELOPE_ONLY.has(k));
    const rest = keys.filter((k) => k !== 'type' && k !== 'session').sort();
    sorted = keys.includes('session') ? ['type', 'session', ...rest] : ['type', ...rest];
  } else {
    sorted = [...keys].sort();
  }
  return { keys: [...keys], sorted, json: sorted.map((k) => JSON.stringify(k) + ':'), ok };
}

/**
 * The canonical line of `sanitize(event)` after the envelope, without the opening brace: `type`,
 * `session`, then the other keys sorted; null when the event needs the slow path. No copy, no
 * second serialization.
 */
function lineTail(ev: Readonly<Record<string, unknown>>, ctx: LineCtx): string | null {
  const type = ev.type;
  if (typeof type !== 'string') return null;
  const sh = ctx.shapes.of(type, Object.keys(ev), true);
  if (!sh.ok) return null;
  ctx.bound += 24; // the event object
  return members(ev, sh, ctx, 0, '');
}

/** `{`-less members and the closing brace; `key` is the top-level field (the mask exemptions go by it). */
function members(src: Readonly<Record<string, unknown>>, sh: Shape, ctx: LineCtx, depth: number, key: string): string {
  let s = '';
  for (let i = 0; i < sh.sorted.length; i++) {
    const k = sh.sorted[i] ?? '';
    const x = src[k];
    if (x === undefined) continue;
    ctx.bound += k.length * WORST_ESCAPE + 4;
    s += (s === '' ? '' : ',') + (sh.json[i] ?? '') + jsonValue(x, ctx, depth + 1, depth === 0 ? k : key);
  }
  return s + '}';
}

function jsonValue(v: unknown, ctx: LineCtx, depth: number, key: string): string {
  if (typeof v === 'string') {
    const out = clip(ctx.mask && masks(key, v) ? wall(ctx, v, key) : v, ctx.max);
    ctx.bound += out.length * WORST_ESCAPE + 2;
    return JSON.stringify(out);
  }
  ctx.bound += 24;
  if (typeof v === 'number') return Number.isFinite(v) ? String(v) : 'null';
  if (typeof v === 'boolean') return v ? 'true' : 'false';
  if (v === null || typeof v !== 'object' || depth >= MAX_DEPTH) return 'null';
  return Array.isArray(v) ? jsonArray(v, ctx, depth, key) : jsonObject(v as Readonly<Record<string, unknown>>, ctx, depth, key);
}

function jsonArray(v: readonly unknown[], ctx: LineCtx, depth: number, key: string): string {
  let s = '[';
  for (let i = 0; i < v.length; i++) s += (i === 0 ? '' : ',') + jsonValue(v[i], ctx, depth + 1, key);
  return s + ']';
}

function jsonObject(v: Readonly<Record<string, unknown>>, ctx: LineCtx, depth: number, key: string): string {
  const keys = Object.keys(v);
  if (keys.length === 0) return '{}';
  // Objects right under the event (classification, masked, summary) repeat their shape too.
  const sh = depth === 1 ? ctx.shapes.of(key, keys, false) : shapeOf(keys, false);
  if (!sh.ok || (ctx.mask !== undefined && !keysUnchanged(sh, ctx))) ctx.fallback = true;
  return '{' + members(v, sh, ctx, depth, key);
}

/** True when the mask leaves every key of the shape as it is (checked once per cached shape); else the slow path masks them. */
function keysUnchanged(sh: Shape, ctx: LineCtx): boolean {
  if (sh.keysMasked === undefined) sh.keysMasked = sh.keys.every((k) => wall(ctx, k, '') === k);
  return sh.keysMasked;
}

/** The second wall on one string, memoized for short values of fields that repeat. */
function wall(ctx: LineCtx, v: string, key: string): string {
  const mask = ctx.mask;
  if (mask === undefined) return v;
  const memo = ctx.memo;
  if (memo === null || v.length > MEMO_MAX_CHARS || ONE_OFF.has(key)) return mask(v);
  let m = memo.get(v);
  if (m === undefined) {
    m = mask(v);
    if (memo.size >= MEMO_MAX_ENTRIES) memo.clear();
    memo.set(v, m);
  }
  return m;
}

/** Cuts a string to `max` UTF-16 units without splitting a surrogate pair, saying how much was cut. */
export function clip(s: string, max: number): string {
  if (s.length <= max) return s;
  let n = max;
  const c = s.charCodeAt(n - 1);
  if (c >= 0xd800 && c <= 0xdbff) n--;
  return `${s.slice(0, n)}…[${s.length - n} more chars]`;
}

function withSink(s: Sink, err: Error): Error {
  const code = (err as NodeJS.ErrnoException).code ?? 'EIO';
  const e = new Error(`${code}: ${s.name}: ${err.message}`, { cause: err });
  (e as NodeJS.ErrnoException).code = code;
  return e;
}

function errorCode(e: Error): string {
  return (e as NodeJS.ErrnoException).code ?? 'EIO';
}

function describe(e: Error): string {
  return e.message;
}
