// Undoing a response's codings before it is masked: Content-Encoding and Transfer-Encoding lists (node's parser only undoes `chunked`), each layer bounded against decompression bombs.
import { Transform, type TransformCallback } from 'node:stream';
import { createBrotliDecompress, createGunzip, createInflate, createInflateRaw, createZstdDecompress } from 'node:zlib';
import { UnmaskableError } from './mask-body.ts';

/** Decoded bytes may reach this many times the bytes received … */
export const DEFAULT_MAX_DECODE_RATIO = 200;
/** … once past this many decoded bytes (small bodies may compress better than any ratio). */
export const DEFAULT_DECODE_RATIO_FLOOR = 32 * 1024 * 1024;
/** More layers than this (`gzip, gzip, gzip, …`) are refused. */
export const MAX_CODING_LAYERS = 3;

/** `deflate` is zlib-wrapped by the RFC, raw deflate by some servers (browsers and curl accept both): the first two bytes decide. */
class DeflateEither extends Transform {
  private inner: Transform | undefined;
  private head = Buffer.alloc(0);

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    if (this.inner !== undefined) return void this.feed(chunk, cb);
    this.head = Buffer.concat([this.head, chunk]);
    if (this.head.length < 2) return cb();
    const zlibHeader = (this.head[0]! & 0x0f) === 8 && ((this.head[0]! << 8) | this.head[1]!) % 31 === 0;
    this.inner = zlibHeader ? createInflate() : createInflateRaw();
    const inner = this.inner;
    // Backpressure: a slow reader pauses the inflater (its output would otherwise pile up here).
    inner.on('data', (d: Buffer) => {
      if (!this.push(d)) inner.pause();
    });
    this.inner.once('error', (e) => this.destroy(e));
    const h = this.head;
    this.head = Buffer.alloc(0);
    this.feed(h, cb);
  }

  override _read(size: number): void {
    this.inner?.resume();
    super._read(size);
  }

  private feed(b: Buffer, cb: TransformCallback): void {
    if (this.inner!.write(b)) cb();
    else this.inner!.once('drain', () => cb());
  }

  override _flush(cb: TransformCallback): void {
    if (this.inner === undefined) return cb(this.head.length > 0 ? new Error('a deflate body of one byte') : null);
    this.inner.once('end', () => cb());
    this.inner.end();
  }
}

function decoderOf(coding: string): Transform | undefined {
  switch (coding) {
    case 'gzip':
    case 'x-gzip':
      return createGunzip();
    case 'deflate':
      return new DeflateEither();
    case 'br':
      return createBrotliDecompress();
    case 'zstd':
      return createZstdDecompress();
    default:
      return undefined;
  }
}

function codings(v: string | string[] | undefined): string[] {
  const all = Array.isArray(v) ? v.join(',') : (v ?? '');
  return all.split(',').map((s) => s.trim().toLowerCase()).filter((s) => s !== '' && s !== 'identity');
}

/**
 * The decoders, outermost first, for a response's `Content-Encoding` and `Transfer-Encoding`
 * (codings are applied in the order listed, transfer codings after content codings, so they are
 * undone in reverse). `[]`: nothing to undo. `undefined`: a coding that cannot be undone, or too many
 * layers — the body must not be passed on.
 */
export function decodersFor(contentEncoding: string | string[] | undefined, transferEncoding: string | string[] | undefined): Transform[] | undefined {
  const layers = [...codings(contentEncoding), ...codings(transferEncoding).filter((c) => c !== 'chunked')].reverse();
  if (layers.length > MAX_CODING_LAYERS) return undefined;
  const out: Transform[] = [];
  for (const c of layers) {
    const d = decoderOf(c);
    if (d === undefined) return undefined;
    out.push(d);
  }
  return out;
}

/**
 * Counts bytes before and after decoding and cuts the body (UnmaskableError) when the decoded bytes
 * pass `ratio` × the received ones beyond `floor`: a 1 GiB-expanding gzip ends after ~32 MiB with an
 * error instead of keeping the masker busy for minutes.
 */
export function bombGuard(o: { ratio?: number; floor?: number } = {}): { count: Transform; check: Transform } {
  const ratio = o.ratio ?? DEFAULT_MAX_DECODE_RATIO;
  const floor = o.floor ?? DEFAULT_DECODE_RATIO_FLOOR;
  let received = 0;
  let decoded = 0;
  const count = new Transform({
    transform(chunk: Buffer, _enc, cb) {
      received += chunk.length;
      cb(null, chunk);
    },
  });
  const check = new Transform({
    transform(chunk: Buffer, _enc, cb) {
      decoded += chunk.length;
      if (decoded > floor && decoded > received * ratio) return cb(new UnmaskableError(`the decoded body passed ${ratio}× its ${received} compressed bytes (${decoded} bytes): cut as a decompression bomb`));
      cb(null, chunk);
    },
  });
  return { count, check };
}
