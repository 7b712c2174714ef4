// The write-ahead recorder: links events into the chain, group-commits them to every sink, fails closed.
import { randomBytes, type KeyObject } from 'node:crypto';
import { ChaperoneError } from '../core/errors.ts';
import { genesis, link, type Entry } from './chain.ts';
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
  /** A second masking wall applied to every free-text string field (the masking engine's `mask`). */
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
  readonly line: string;
  readonly bytes: number;
  readonly ref: LineRef;
  readonly resolve: (r: LineRef) => void;
  readonly reject: (e: Error) => void;
}

/** Fields that hold identifiers or enums, not free text: the mask hook leaves them alone. */
const RECORDER_ONLY: ReadonlySet<string> = new Set(['stream.start', 'stream.end', 'checkpoint']);
const UNMASKED = new Set(['type', 'session', 'statementHash', 'configHash', 'decision', 'protocol', 'outcome']);

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

  constructor(private readonly opts: RecorderOptions) {
    this.sinks = [...opts.sinks];
    this.allSinks = opts.sinks;
    this.clock = opts.clock ?? ((): Date => new Date());
    this.newStreamId = opts.newStreamId ?? ((): string => randomBytes(8).toString('hex'));
    this.lim = limits(opts);
    this.signKey = opts.signing?.privateKey ?? null;
    this.signKeyId = this.signKey ? keyId(this.signKey) : '';
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
    let body: AnyEvent;
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
      ...(this.opts.origin ? { origin: this.opts.origin } : {}),
    };
    const p = this.append(start);
    this.kick();
    return p;
  }

  /** Links one line at the chain head; seals with a checkpoint when `everyLines` is reached. */
  private append(body: AnyEvent, time = this.clock().toISOString()): Promise<LineRef> {
    const seq = ++this.seq;
    const entry = { ...body, stream: this.stream, seq, time } as Entry;
    const { line, hash } = link(this.prev, entry);
    this.prev = hash;
    const ref: LineRef = { stream: this.stream, seq, hash };
    const bytes = Buffer.byteLength(line) + 1;
    const p = new Promise<LineRef>((resolve, reject) => this.queue.push({ line, bytes, ref, resolve, reject }));
    this.pendingCount++;
    this.pendingBytes += bytes;
    if (body.type !== 'checkpoint' && this.signKey && ++this.sinceCheckpoint >= this.lim.everyLines) {
      void this.appendCheckpoint().catch(() => undefined);
    }
    return p;
  }

  private appendCheckpoint(): Promise<LineRef> {
    const key = this.signKey;
    if (!key) return Promise.reject(new Error('no signing key'));
    this.sinceCheckpoint = 0;
    const time = this.clock().toISOString();
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

  /** A lazy line rides along with the next write, or goes alone after `lazyMs`. */
  private kickLazy(): void {
    if (this.flushing || this.scheduled || this.lazyTimer !== null) return;
    this.lazyTimer = setTimeout(() => {
      this.lazyTimer = null;
      this.kick();
    }, this.lim.lazyMs);
  }

  private readonly runFlush = (): void => {
    this.scheduled = false;
    if (this.flushing) return;
    if (this.lazyTimer !== null) {
      clearTimeout(this.lazyTimer);
      this.lazyTimer = null;
    }
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
      const data = Buffer.from(batch.map((p) => p.line + '\n').join(''), 'utf8');
      const results = await Promise.allSettled(this.sinks.map((s) => s.write(data)));
      const failure = this.sinkFailures(results);
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

  /** Drops failed optional sinks; returns the first required sink's failure. */
  private sinkFailures(results: readonly PromiseSettledResult<void>[]): Error | null {
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

  /** Masks free text (second wall), bounds every string and the whole line, and copies into plain JSON. */
  private bounded(event: RecordEvent): AnyEvent {
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
    const out = clip(ctx.mask && !UNMASKED.has(key) ? ctx.mask(v) : v, ctx.max);
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
    ctx.bound += k.length * WORST_ESCAPE + 4;
    out[k] = sanitize(x, ctx, depth + 1, depth === 0 ? k : key);
  }
  return out;
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
