// Bounded reader over one message body and the push-style frame accumulator both framers share.
import { isUtf8 } from 'node:buffer';
import { ProtocolError } from './codes.ts';

/**
 * Reads one message body strictly: every read is checked against the body's end, so a lying count or
 * length becomes a ProtocolError naming the message, never an out-of-bounds read or a RangeError.
 */
export class BodyReader {
  private buf: Buffer = Buffer.alloc(0);
  private pos = 0;
  private end = 0;
  private what = '';
  private strictUtf8 = true;

  /** Points the reader at `buf[start, buf.length)`; `what` names the message in errors. */
  reset(buf: Buffer, start: number, what: string, strictUtf8: boolean): this {
    this.buf = buf;
    this.pos = start;
    this.end = buf.length;
    this.what = what;
    this.strictUtf8 = strictUtf8;
    return this;
  }

  get remaining(): number {
    return this.end - this.pos;
  }

  fail(detail: string): ProtocolError {
    const noun = this.what.endsWith('Message') ? this.what : `${this.what} message`;
    return new ProtocolError('malformed_message', `malformed ${noun}: ${detail}`);
  }

  private need(n: number, field: string): void {
    if (this.end - this.pos < n) {
      throw this.fail(`${field} needs ${n} byte(s) but only ${this.end - this.pos} remain in the body`);
    }
  }

  byte(field: string): number {
    this.need(1, field);
    return this.buf[this.pos++] ?? 0;
  }

  int16(field: string): number {
    this.need(2, field);
    const v = this.buf.readInt16BE(this.pos);
    this.pos += 2;
    return v;
  }

  int32(field: string): number {
    this.need(4, field);
    const v = this.buf.readInt32BE(this.pos);
    this.pos += 4;
    return v;
  }

  uint32(field: string): number {
    this.need(4, field);
    const v = this.buf.readUInt32BE(this.pos);
    this.pos += 4;
    return v;
  }

  /** An Int16 count that must be ≥ 0 and, at `minBytesEach` bytes per item, fit in what is left. */
  count(field: string, minBytesEach: number): number {
    const n = this.int16(field);
    if (n < 0) throw this.fail(`${field} is negative (${n})`);
    if (n * minBytesEach > this.end - this.pos) {
      throw this.fail(`${field} says ${n} but the body has only ${this.end - this.pos} byte(s) left`);
    }
    return n;
  }

  /** A NUL-terminated string that must end inside the body. */
  cstring(field: string): string {
    const start = this.pos;
    const nul = this.buf.indexOf(0, start);
    if (nul < 0 || nul >= this.end) throw this.fail(`${field} is not NUL-terminated inside the message`);
    this.pos = nul + 1;
    return this.text(start, nul, field);
  }

  /** Decodes buf[start, end) as UTF-8; in strict mode invalid UTF-8 is refused so what we judge is what the server reads. */
  text(start: number, end: number, field: string): string {
    const buf = this.buf;
    if (this.strictUtf8 && end > start && !isUtf8(buf.subarray(start, end))) {
      throw new ProtocolError(
        'invalid_utf8',
        `${this.what}: ${field} is not valid UTF-8; connect with client_encoding=UTF8`,
      );
    }
    return buf.toString('utf8', start, end);
  }

  /** A view of the next n bytes (no copy). */
  bytes(n: number, field: string): Buffer {
    this.need(n, field);
    const v = this.buf.subarray(this.pos, this.pos + n);
    this.pos += n;
    return v;
  }

  /** An Int32 length then that many bytes; -1 is NULL; any other negative length is refused. */
  lengthPrefixed(field: string): Buffer | null {
    const n = this.int32(field);
    if (n === -1) return null;
    if (n < 0) throw this.fail(`${field} has length ${n}; only -1 (NULL) may be negative`);
    return this.bytes(n, field);
  }

  /** The rest of the body as a view. */
  rest(): Buffer {
    const v = this.buf.subarray(this.pos, this.end);
    this.pos = this.end;
    return v;
  }

  /** Every byte must have been consumed: trailing garbage is a framing lie. */
  done(): void {
    if (this.pos !== this.end) throw this.fail(`${this.end - this.pos} unexpected trailing byte(s)`);
  }
}

/** 0 or 1, the only format codes PostgreSQL defines. */
export function formatCode(reader: BodyReader, field: string): 0 | 1 {
  const v = reader.int16(field);
  if (v !== 0 && v !== 1) throw reader.fail(`${field} is ${v}; only 0 (text) and 1 (binary) exist`);
  return v;
}

/** An Int16 count followed by that many format codes. */
export function formatCodes(reader: BodyReader, field: string): (0 | 1)[] {
  const n = reader.count(`${field} count`, 2);
  const out = new Array<0 | 1>(n);
  for (let i = 0; i < n; i++) out[i] = formatCode(reader, field);
  return out;
}

/** A frame up to this size is given its exact buffer as soon as its header is known (one copy, no growth). */
const EXACT_ALLOC_LIMIT = 64 * 1024;

/**
 * Push-style framing with no copy for a frame that lies whole inside one chunk: frames are views of
 * the chunk, so `push` takes ownership of the chunks it is given (Node's socket chunks are fresh).
 * Only a frame straddling chunks is copied, into a buffer of its own that the framer never reuses.
 * That buffer grows with what has arrived (at most 2× it, past 64 KiB), never to what a length claims,
 * and the framer holds no views of earlier chunks, so a slow client trickling bytes cannot pin memory.
 * Subclasses say how long the header is and validate it as soon as it is complete, so an absurd
 * length is refused before any body byte is buffered.
 */
export abstract class FrameAccumulator<F> {
  /** Bytes of a header cut short by the end of a chunk (8 ≥ any header). */
  private readonly head = Buffer.alloc(8);
  /** The straddling frame being assembled, once its header is known. */
  private acc: Buffer | null = null;
  private pendingBytes = 0;
  /** Total length of the pending frame once its header is known, else -1. */
  private needed = -1;
  private failure: ProtocolError | null = null;

  /** Header bytes needed before the frame's total length is known (5 tagged, 4 untagged). */
  protected abstract headerSize(): number;
  /** Validates the header at buf[off…] and returns the whole frame's length; throws ProtocolError. */
  protected abstract frameLength(buf: Buffer, off: number): number;
  /** Builds the frame; `trailing` = bytes after it in this push (a state that refuses more data throws here, before the frame is handed out). */
  protected abstract makeFrame(raw: Buffer, trailing: number): F;
  /** Refuses data in states that accept none (e.g. after an SSLRequest until it is answered). */
  protected abstract checkAcceptsData(): void;

  /** Bytes of an unfinished frame held until more data arrives. */
  get pending(): number {
    return this.pendingBytes;
  }

  /** Frames every whole message in `chunk` (plus held bytes) and calls onFrame for each, in order. */
  push(chunk: Buffer, onFrame: (frame: F) => void): void {
    if (this.failure) {
      throw new ProtocolError('framer_failed', `the stream is already broken: ${this.failure.message}`);
    }
    if (chunk.length === 0) return;
    try {
      this.checkAcceptsData();
      let off = 0;
      if (this.pendingBytes > 0) {
        off = this.completePending(chunk, onFrame);
        if (off < 0) return;
      }
      this.frameWhole(chunk, off, onFrame);
    } catch (err) {
      // Our state is lost for the rest of the chunk either way, so a throwing onFrame breaks the stream too.
      this.fail(err instanceof ProtocolError ? err : new ProtocolError('framer_failed', `a frame handler threw: ${String(err)}`));
      throw err;
    }
  }

  /** At end of stream: null if everything was framed, else the error saying what was cut off. */
  end(): ProtocolError | null {
    if (this.failure) return this.failure;
    if (this.pendingBytes === 0) return null;
    const want = this.needed >= 0 ? `${this.needed} byte(s)` : `at least a ${this.headerSize()}-byte header`;
    return new ProtocolError(
      'incomplete_message',
      `the stream ended inside a message: ${this.pendingBytes} byte(s) received of ${want}`,
    );
  }

  private fail(err: ProtocolError): void {
    this.failure = err;
    this.acc = null;
    this.pendingBytes = 0;
    this.needed = -1;
  }

  private frameWhole(chunk: Buffer, start: number, onFrame: (frame: F) => void): void {
    const len = chunk.length;
    let off = start;
    for (;;) {
      const avail = len - off;
      if (avail === 0) return;
      if (avail < this.headerSize()) break;
      const total = this.frameLength(chunk, off);
      if (avail < total) {
        this.needed = total;
        break;
      }
      const raw = chunk.subarray(off, off + total);
      off += total;
      onFrame(this.makeFrame(raw, len - off));
    }
    this.hold(chunk, off);
  }

  /** Copies the unfinished tail chunk[off…] into our own storage. */
  private hold(chunk: Buffer, off: number): void {
    const n = chunk.length - off;
    this.pendingBytes = n;
    if (this.needed < 0) {
      chunk.copy(this.head, 0, off);
      return;
    }
    this.acc = Buffer.allocUnsafe(capacityFor(this.needed, n));
    chunk.copy(this.acc, 0, off);
  }

  /** Appends chunk[off, off+n) to the frame being assembled, growing its buffer with what arrived. */
  private append(chunk: Buffer, off: number, n: number): void {
    let acc = this.acc ?? Buffer.alloc(0);
    const want = this.pendingBytes + n;
    if (want > acc.length) {
      const grown = Buffer.allocUnsafe(Math.min(this.needed, Math.max(acc.length * 2, want)));
      acc.copy(grown, 0, 0, this.pendingBytes);
      acc = grown;
    }
    chunk.copy(acc, this.pendingBytes, off, off + n);
    this.acc = acc;
    this.pendingBytes = want;
  }

  /** Feeds the held frame from the front of `chunk`; returns the offset after it, or -1 if chunk was used up. */
  private completePending(chunk: Buffer, onFrame: (frame: F) => void): number {
    let off = 0;
    if (this.needed < 0) {
      const hdr = this.headerSize();
      off = Math.min(hdr - this.pendingBytes, chunk.length);
      chunk.copy(this.head, this.pendingBytes, 0, off);
      this.pendingBytes += off;
      if (this.pendingBytes < hdr) return -1;
      this.needed = this.frameLength(this.head, 0);
      this.acc = Buffer.allocUnsafe(capacityFor(this.needed, this.pendingBytes + chunk.length - off));
      this.head.copy(this.acc, 0, 0, this.pendingBytes);
    }
    const take = Math.min(this.needed - this.pendingBytes, chunk.length - off);
    this.append(chunk, off, take);
    off += take;
    if (this.pendingBytes < this.needed) return -1;
    const raw = this.acc ?? Buffer.alloc(0);
    this.acc = null;
    this.pendingBytes = 0;
    this.needed = -1;
    onFrame(this.makeFrame(raw, chunk.length - off));
    return off;
  }
}

/** Small frames get their exact size; large ones start at what has arrived (×2) and grow. */
function capacityFor(needed: number, have: number): number {
  return needed <= EXACT_ALLOC_LIMIT ? needed : Math.min(needed, Math.max(EXACT_ALLOC_LIMIT, have * 2));
}
