// Response bodies masked as they stream, with bounded memory: whole JSON documents, NDJSON/watch lines, SSE events, or a byte stream (the engine's carry-over window).
import { Transform, type TransformCallback } from 'node:stream';
import type { Masker, MaskResult, StreamMasker } from '../../masking/index.ts';

/**
 * `json`: one document, masked whole at the end (output stays valid JSON; field rules apply).
 * `lines`: each `\n`-terminated line masked on its own as it completes (NDJSON, Kubernetes watch, logs).
 * `sse`: each Server-Sent Event masked as it completes (a blank line ends it), so token streams keep flowing.
 * `text`: the streaming masker (a secret split across chunks is still found; a few KiB are held back).
 * `objects`: a sequence of JSON objects or arrays (one document, or a Kubernetes watch stream however
 *   it is laid out), each masked whole as soon as its closing bracket arrives; chosen by content, not by
 *   what the request looked like, so a pretty-printed list and a watch are both seen object by object.
 * `media`: image/audio/video/font types: passed through when the first bytes look binary (a control
 *   byte in the first 512, as the WHATWG sniffer reads them), masked as `text` when they do not (a
 *   text body under a media label is scanned, never passed raw on the label's word).
 * `none`: passed through.
 * `refuse`: not passed on at all (the gateway answers 502 CHAP_ERR_HTTP_UNMASKABLE before any byte).
 */
export type BodyMode = 'none' | 'media' | 'text' | 'json' | 'lines' | 'sse' | 'objects' | 'refuse';

/** A document, line or event larger than this is masked as a plain stream instead (or refused: `overflow: 'fail'`). */
export const DEFAULT_MAX_UNIT_BYTES = 8 * 1024 * 1024;

export class UnmaskableError extends Error {
  override readonly name = 'UnmaskableError';
}

export interface BodyMaskOptions {
  readonly mode: BodyMode;
  readonly masker: Masker;
  /** json mode: how a whole document is masked (default `masker.maskJson`). */
  readonly maskDocument?: (text: string) => MaskResult<string>;
  /** lines mode: how a line is masked, without its `\n` (default `masker.maskJson`, which masks non-JSON as text). */
  readonly maskLine?: (line: string) => MaskResult<string>;
  readonly maxUnitBytes?: number;
  /** Over the limit: `stream` masks the rest as text (plain HTTP); `fail` ends the body with an error (Kubernetes: a Secret must be seen whole). */
  readonly overflow?: 'stream' | 'fail';
}

const NL = 0x0a;
const CR = 0x0d;
/** How many leading bytes `media` looks at before it decides. */
export const SNIFF_BYTES = 512;

/** A byte no text carries (WHATWG MIME sniffing's "binary data byte"): NUL…BS, VT, SO…SUB, FS…US. */
export function looksBinary(b: Uint8Array): boolean {
  for (const c of b) if (c <= 0x08 || c === 0x0b || (c >= 0x0e && c <= 0x1a) || (c >= 0x1c && c <= 0x1f)) return true;
  return false;
}

/**
 * Where top-level JSON objects/arrays end in a byte stream, across chunks (strings and escapes
 * skipped; `"`, `\\` and brackets are ASCII, never inside a UTF-8 sequence). `bad` once the stream
 * holds something else at the top level (a scalar, a stray closer): the caller then treats the rest as
 * one document.
 */
function isSpace(ch: number): boolean {
  return ch === 0x20 || ch === 0x0a || ch === 0x0d || ch === 0x09;
}

export class JsonValueScanner {
  private depth = 0;
  private inString = false;
  private escaped = false;
  bad = false;

  /** Scans `b` from `from`: the index just past the first top-level value that ends there, or -1 (state kept for the next bytes). */
  next(b: Uint8Array, from: number): number {
    if (this.bad) return -1;
    for (let i = from; i < b.length; i++) {
      const ch = b[i]!;
      if (this.inString) this.stringByte(ch);
      else if (ch === 0x7b || ch === 0x5b) this.depth++;
      else if (this.depth === 0) {
        if (!isSpace(ch)) return this.fail();
      } else if (ch === 0x22) this.inString = true;
      else if ((ch === 0x7d || ch === 0x5d) && --this.depth === 0) return i + 1;
    }
    return -1;
  }

  private stringByte(ch: number): void {
    if (this.escaped) this.escaped = false;
    else if (ch === 0x5c) this.escaped = true;
    else if (ch === 0x22) this.inString = false;
  }

  private fail(): number {
    this.bad = true;
    return -1;
  }
}

/** Leading JSON whitespace of `b`. */
function leadingSpace(b: Buffer): number {
  let i = 0;
  while (i < b.length && isSpace(b[i]!)) i++;
  return i;
}

/** Just past the line terminator at `j` (LF, CRLF or a lone CR); -1 for a CR that is the last byte. */
function lineEnd(b: Buffer, j: number): number {
  if (b[j] === NL) return j + 1;
  if (j + 1 >= b.length) return -1;
  return b[j + 1] === NL ? j + 2 : j + 1;
}

/**
 * End of the first SSE event in `b` at or after `from`: the index just past the blank line that ends
 * it, or -1. Lines end in CRLF, LF or a lone CR (the SSE grammar allows all three), so `\r\r` ends an
 * event too; a CR that is the last byte may still be half of a CRLF and waits for the next byte.
 */
export function sseEventEnd(b: Buffer, from: number): number {
  let lf = b.indexOf(NL, from);
  let cr = b.indexOf(CR, from);
  let i = from;
  for (;;) {
    if (lf >= 0 && lf < i) lf = b.indexOf(NL, i);
    if (cr >= 0 && cr < i) cr = b.indexOf(CR, i);
    const j = lf < 0 ? cr : cr < 0 ? lf : Math.min(lf, cr);
    if (j < 0) return -1;
    const k = lineEnd(b, j);
    if (k < 0 || k >= b.length) return -1;
    if (b[k] === NL) return k + 1;
    if (b[k] === CR) return b[k + 1] === NL ? k + 2 : k + 1;
    i = k;
  }
}

export class MaskingTransform extends Transform {
  private pending: Buffer[] = [];
  private pendingLen = 0;
  /** Where the next delimiter search starts inside the joined pending bytes. */
  private scanFrom = 0;
  private sm: StreamMasker | undefined;
  private readonly scanner: JsonValueScanner | undefined;
  private readonly counts: Record<string, number> = {};
  private readonly max: number;
  private readonly maskDoc: (t: string) => MaskResult<string>;
  private readonly maskLine: (t: string) => MaskResult<string>;
  /** `media` mode found binary bytes: the rest passes through. */
  private passing = false;
  bytesIn = 0;
  bytesOut = 0;

  constructor(private readonly o: BodyMaskOptions) {
    super();
    this.max = o.maxUnitBytes ?? DEFAULT_MAX_UNIT_BYTES;
    this.maskDoc = o.maskDocument ?? ((t) => o.masker.maskJson(t));
    this.maskLine = o.maskLine ?? ((t) => o.masker.maskJson(t));
    if (o.mode === 'text') this.sm = o.masker.stream();
    if (o.mode === 'objects') this.scanner = new JsonValueScanner();
  }

  findings(): Record<string, number> {
    const out = { ...this.counts };
    if (this.sm) for (const [k, n] of Object.entries(this.sm.findings())) out[k] = (out[k] ?? 0) + n;
    return out;
  }

  private add(r: MaskResult<string>): string {
    if (r.changed) for (const [k, n] of Object.entries(r.findings)) this.counts[k] = (this.counts[k] ?? 0) + n;
    return r.value;
  }

  private out(b: Buffer): void {
    if (b.length === 0) return;
    this.bytesOut += b.length;
    this.push(b);
  }

  private joined(): Buffer {
    if (this.pending.length > 1) this.pending = [Buffer.concat(this.pending, this.pendingLen)];
    return this.pending[0] ?? Buffer.alloc(0);
  }

  private setPending(b: Buffer): void {
    this.pending = b.length > 0 ? [b] : [];
    this.pendingLen = b.length;
  }

  /** Switches to the byte-stream masker for the rest of the body (a unit grew past the limit). */
  private overflow(): void {
    if (this.o.overflow === 'fail') throw new UnmaskableError(`a ${this.o.mode === 'json' || this.o.mode === 'objects' ? 'document' : this.o.mode === 'sse' ? 'event' : 'line'} of more than ${this.max} bytes cannot be masked whole`);
    this.sm = this.o.masker.stream();
    const rest = this.joined();
    this.setPending(Buffer.alloc(0));
    this.out(this.sm.push(rest));
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    try {
      this.bytesIn += chunk.length;
      if (this.o.mode === 'refuse') throw new UnmaskableError('this response cannot be masked, so none of it is passed on');
      if (this.o.mode === 'none' || this.passing) this.out(chunk);
      else if (this.o.mode === 'media' && this.sm === undefined) this.sniff(chunk, false);
      else if (this.sm !== undefined) this.out(this.sm.push(chunk));
      else if (this.scanner !== undefined) {
        this.drainObjects(chunk);
        if (this.pendingLen > this.max) this.overflow();
      } else {
        this.pending.push(chunk);
        this.pendingLen += chunk.length;
        if (this.o.mode === 'lines') this.drainLines();
        else if (this.o.mode === 'sse') this.drainEvents();
        if (this.sm === undefined && this.pendingLen > this.max) this.overflow();
      }
      cb();
    } catch (e) {
      cb(e as Error);
    }
  }

  /** `media`: the first bytes decide (binary: passed through; text: the stream masker from the first byte). */
  private sniff(chunk: Buffer | undefined, end: boolean): void {
    if (chunk !== undefined) {
      this.pending.push(chunk);
      this.pendingLen += chunk.length;
    }
    if (this.pendingLen < SNIFF_BYTES && !end) return;
    const head = this.joined();
    this.setPending(Buffer.alloc(0));
    if (looksBinary(head.subarray(0, SNIFF_BYTES))) {
      this.passing = true;
      this.out(head);
    } else {
      this.sm = this.o.masker.stream();
      this.out(this.sm.push(head));
    }
  }

  /**
   * True when the chunk just added ends no line (lines) or event (sse: its blank line ends with a
   * `\n` in this chunk): the chunks stay a list, so a long line arriving in many chunks is joined
   * once when it ends, not once per chunk (which copied it quadratically).
   */
  private nothingEnds(): boolean {
    const last = this.pending[this.pending.length - 1];
    if (last === undefined || last.indexOf(NL) >= 0 || (this.o.mode === 'sse' && last.indexOf(CR) >= 0)) return false;
    // No newline in the pending bytes past the old resume point (sse backs off 2 for a split blank line).
    this.scanFrom = this.pendingLen;
    return true;
  }

  private drainLines(): void {
    if (this.nothingEnds()) return;
    const b = this.joined();
    let start = 0;
    const parts: Buffer[] = [];
    for (let i = b.indexOf(NL, this.scanFrom); i >= 0; i = b.indexOf(NL, start)) {
      parts.push(Buffer.from(this.add(this.maskLine(b.toString('utf8', start, i))) + '\n', 'utf8'));
      start = i + 1;
    }
    if (parts.length > 0) this.out(parts.length === 1 ? parts[0]! : Buffer.concat(parts));
    const rest = b.subarray(start);
    this.setPending(rest);
    this.scanFrom = rest.length;
  }

  /** One document at a time: the chunk is scanned once (the scanner keeps its state), the pending bytes joined only when a document ends. */
  private drainObjects(chunk: Buffer): void {
    const sc = this.scanner!;
    let from = 0;
    for (let end = sc.next(chunk, 0); end >= 0; end = sc.next(chunk, from)) {
      this.pending.push(chunk.subarray(from, end));
      this.pendingLen += end - from;
      this.emitDocument(this.joined());
      this.setPending(Buffer.alloc(0));
      from = end;
    }
    if (from < chunk.length) {
      this.pending.push(from === 0 ? chunk : chunk.subarray(from));
      this.pendingLen += chunk.length - from;
    }
  }

  /** Whitespace before a document goes out as it is (watch events stay one per line), the document masked whole. */
  private emitDocument(b: Buffer): void {
    const ws = leadingSpace(b);
    if (ws > 0) this.out(b.subarray(0, ws));
    if (ws < b.length) this.out(Buffer.from(this.add(this.maskDoc(b.toString('utf8', ws))), 'utf8'));
  }

  private drainEvents(): void {
    if (this.nothingEnds()) return;
    const b = this.joined();
    let start = 0;
    const parts: Buffer[] = [];
    for (let end = sseEventEnd(b, Math.max(0, this.scanFrom - 3)); end >= 0; end = sseEventEnd(b, start)) {
      parts.push(Buffer.from(this.add(this.o.masker.maskText(b.toString('utf8', start, end))), 'utf8'));
      start = end;
    }
    if (parts.length > 0) this.out(parts.length === 1 ? parts[0]! : Buffer.concat(parts));
    const rest = b.subarray(start);
    this.setPending(rest);
    this.scanFrom = rest.length;
  }

  override _flush(cb: TransformCallback): void {
    try {
      if (this.o.mode === 'media' && this.sm === undefined && !this.passing) this.sniff(undefined, true);
      if (this.sm !== undefined) this.out(this.sm.end());
      else if (this.pendingLen > 0 && this.scanner !== undefined) {
        const b = this.joined();
        this.setPending(Buffer.alloc(0));
        this.emitDocument(b);
      } else if (this.pendingLen > 0) {
        const text = this.joined().toString('utf8');
        this.setPending(Buffer.alloc(0));
        if (this.o.mode === 'json') this.out(Buffer.from(this.add(this.maskDoc(text)), 'utf8'));
        else if (this.o.mode === 'lines') this.out(Buffer.from(this.add(this.maskLine(text)), 'utf8'));
        else this.out(Buffer.from(this.add(this.o.masker.maskText(text)), 'utf8'));
      }
      cb();
    } catch (e) {
      cb(e as Error);
    }
  }
}

/** Media type (lower-case, no parameters) of a Content-Type value. */
export function mediaType(ct: string | undefined): string {
  return (ct ?? '').split(';')[0]?.trim().toLowerCase() ?? '';
}

/** Which mode a plain HTTP response body gets, by its Content-Type. Unknown and absent types are masked as text. */
export function modeFor(contentType: string | undefined): BodyMode {
  const t = mediaType(contentType);
  if (t === 'text/event-stream') return 'sse';
  if (t === 'application/x-ndjson' || t === 'application/ndjson' || t === 'application/jsonl' || t === 'application/x-jsonlines' || t === 'application/json-seq') return 'lines';
  if (t === 'application/json' || t.endsWith('+json')) return 'json';
  // SVG is XML text; other media types pass only when their bytes look binary (`media`).
  if (t === 'image/svg+xml') return 'text';
  if (t.startsWith('image/') || t.startsWith('audio/') || t.startsWith('video/') || t.startsWith('font/')) return 'media';
  return 'text';
}
