// Recording sinks: an append-only file with fdatasync (durable) and a Writable such as stdout (handed to the kernel).
import { statSync, writeSync } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import type { Writable } from 'node:stream';
import { sha256Hex } from './chain.ts';
import type { LineRef } from './event.ts';
import { extractRecord } from './verify.ts';

/** What a sink found when it opened: the last complete recording line (for `after`) and torn bytes it cut. */
export interface SinkOpenInfo {
  readonly last: LineRef | null;
  readonly truncatedBytes: number;
}

export interface Sink {
  readonly name: string;
  /** A required sink's failure fails the record (and the command); an optional one is dropped. */
  readonly required: boolean;
  open(): Promise<SinkOpenInfo>;
  /** Writes whole lines and makes them as durable as this sink can; rejects on any failure. */
  write(data: Buffer): Promise<void>;
  /** Everything written so far is acknowledged (the file's new truncate-back point). */
  ack(): void;
  /** After a failure: reopen and discard unacknowledged bytes where possible; rejects if it cannot. */
  recover(): Promise<SinkOpenInfo>;
  close(): Promise<void>;
  stats(): SinkStats;
}

export interface SinkStats {
  readonly writes: number;
  readonly bytes: number;
  readonly syncs: number;
}

export type FileSync = 'fdatasync' | 'fsync' | 'none';

export interface FileSinkOptions {
  readonly path: string;
  /** `fdatasync` (default) after every batch; `none` only for benchmarks (not durable). */
  readonly sync?: FileSync;
  /** Check after each write that the path still names the open file (removed or rotated files are a failure). Default true. */
  readonly checkPath?: boolean;
  readonly required?: boolean;
  /** File mode when created (default 0o600: the recording is for the sidecar and auditors only). */
  readonly mode?: number;
}

/** Longest tail read on open; lines are bounded well below it (DEFAULT_MAX_LINE_BYTES). */
const TAIL_BYTES = 1 << 20;

/** A failure that is ours, not the OS's: carries a code like one. */
export class SinkError extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = 'SinkError';
  }
}

/**
 * Appends to a file; a batch is acknowledged only after write + fdatasync + the path check.
 * The write and the path check are synchronous system calls (a page-cache append and a stat: a few
 * µs each, like pino's default destination), so a batch costs no thread-pool round trips; only the
 * fdatasync, which waits for the disk, runs off the event loop.
 */
export function fileSink(opts: FileSinkOptions): Sink {
  const sync = opts.sync ?? 'fdatasync';
  const checkPath = opts.checkPath ?? true;
  let fh: FileHandle | null = null;
  let id = { dev: 0, ino: 0 };
  let written = 0;
  let acked = 0;
  const counts = { writes: 0, bytes: 0, syncs: 0 };

  async function openFresh(): Promise<SinkOpenInfo> {
    const h = await open(opts.path, 'a+', opts.mode ?? 0o600);
    try {
      const st = await h.stat();
      id = { dev: st.dev, ino: st.ino };
      const tail = await repairTail(h, st.size, opts.path);
      fh = h;
      written = acked = st.size - tail.truncatedBytes;
      return tail;
    } catch (e) {
      await h.close().catch(() => undefined);
      throw e;
    }
  }

  return {
    name: `file:${opts.path}`,
    required: opts.required ?? true,
    open: openFresh,
    write(data: Buffer): Promise<void> {
      const h = fh;
      if (!h) return Promise.reject(new SinkError('EBADF', `recording file ${opts.path} is not open`));
      let pathError: Error | null = null;
      try {
        writeAll(h.fd, data);
      } catch (e) {
        return Promise.reject(e instanceof Error ? e : new Error(String(e)));
      }
      written += data.length;
      counts.writes++;
      counts.bytes += data.length;
      // Writes to an unlinked file succeed silently: the path check (after every write) is the only way to notice.
      try {
        if (checkPath) samePath(opts.path, id);
      } catch (e) {
        pathError = e as Error;
      }
      if (sync === 'none') return pathError === null ? Promise.resolve() : Promise.reject(pathError);
      return (sync === 'fsync' ? h.sync() : h.datasync()).then(() => {
        counts.syncs++;
        if (pathError !== null) throw pathError;
      });
    },
    ack(): void {
      acked = written;
    },
    async recover(): Promise<SinkOpenInfo> {
      const old = fh;
      fh = null;
      await old?.close().catch(() => undefined);
      const before = id;
      const h = await open(opts.path, 'a+', opts.mode ?? 0o600);
      const st = await h.stat().catch(async (e: unknown) => {
        await h.close().catch(() => undefined);
        throw e;
      });
      if (st.dev !== before.dev || st.ino !== before.ino) {
        await h.close();
        return openFresh(); // a new file (rotated or recreated): start from its own tail
      }
      // Same file: drop bytes whose write was never acknowledged, so the file holds only whole, acknowledged lines.
      const cut = Math.max(0, st.size - acked);
      if (cut > 0) {
        await h.truncate(acked);
        await h.datasync();
      }
      fh = h;
      written = Math.min(st.size, acked);
      return { last: null, truncatedBytes: cut };
    },
    async close(): Promise<void> {
      const h = fh;
      fh = null;
      await h?.close();
    },
    stats: () => ({ ...counts }),
  };
}

function writeAll(fd: number, data: Buffer): void {
  let off = 0;
  while (off < data.length) {
    const n = writeSync(fd, data, off, data.length - off);
    if (n <= 0) throw new SinkError('EIO', 'the recording file accepted no bytes');
    off += n;
  }
}

function samePath(path: string, id: { dev: number; ino: number }): void {
  let st;
  try {
    st = statSync(path, { throwIfNoEntry: true });
  } catch (e) {
    throw new SinkError('ENOENT', `recording file ${path} was removed while open (${(e as NodeJS.ErrnoException).code ?? 'error'}): lines written since are lost`);
  }
  if (st.dev !== id.dev || st.ino !== id.ino) {
    throw new SinkError('ESTALE', `recording file ${path} was replaced while open (rotated or recreated); reopening it`);
  }
}

/**
 * Cuts a torn last line (bytes after the last newline: a write that was never acknowledged) and
 * returns the last complete recording line, so a new stream can name it in `after`.
 */
async function repairTail(h: FileHandle, size: number, path: string): Promise<SinkOpenInfo> {
  if (size === 0) return { last: null, truncatedBytes: 0 };
  const len = Math.min(size, TAIL_BYTES);
  const buf = Buffer.alloc(len);
  await h.read(buf, 0, len, size - len);
  let end = len;
  let truncatedBytes = 0;
  if (buf[len - 1] !== 0x0a) {
    const nl = buf.lastIndexOf(0x0a);
    if (nl < 0 && size > len) throw new SinkError('EINVAL', `recording file ${path} has no line break in its last ${len} bytes: not a recording file?`);
    end = nl + 1;
    truncatedBytes = len - end;
    await h.truncate(size - truncatedBytes);
    await h.datasync();
  }
  if (end < 2) return { last: null, truncatedBytes };
  const start = buf.lastIndexOf(0x0a, end - 2) + 1;
  const lineBytes = buf.subarray(start, Math.max(start, end - 1));
  return { last: lastRef(lineBytes), truncatedBytes };
}

function lastRef(lineBytes: Buffer): LineRef | null {
  const rec = extractRecord(lineBytes.toString('utf8'));
  if (rec === null) return null;
  try {
    const o = JSON.parse(rec) as { stream?: unknown; seq?: unknown };
    if (typeof o.stream !== 'string' || typeof o.seq !== 'number') return null;
    return { stream: o.stream, seq: o.seq, hash: sha256Hex(rec) };
  } catch {
    return null;
  }
}

export interface StreamSinkOptions {
  readonly name?: string;
  readonly required?: boolean;
}

/**
 * Writes to a Writable (process.stdout by default). "Written" means the stream's write callback
 * ran: the bytes were handed to the kernel (the pipe to the container runtime), not that they
 * reached a disk. A failed stream cannot be reopened: it stays failed until the process restarts.
 */
export function streamSink(stream: Writable = process.stdout, opts: StreamSinkOptions = {}): Sink {
  let failure: Error | null = null;
  const counts = { writes: 0, bytes: 0, syncs: 0 };
  const name = opts.name ?? (stream === process.stdout ? 'stdout' : 'stream');
  const onError = (e: Error): void => {
    failure ??= e;
  };

  return {
    name,
    required: opts.required ?? true,
    open(): Promise<SinkOpenInfo> {
      stream.on('error', onError);
      return Promise.resolve({ last: null, truncatedBytes: 0 });
    },
    write(data: Buffer): Promise<void> {
      return new Promise((resolve, reject) => {
        if (failure) return reject(failure);
        if (stream.destroyed || !stream.writable) return reject(new SinkError('EPIPE', `${name} is closed`));
        const fail = (e: Error): void => reject(e);
        stream.once('error', fail);
        try {
          // The callback runs once the bytes left Node (after any backpressure wait), or with the error.
          stream.write(data, (err) => {
            stream.off('error', fail);
            if (err) {
              failure ??= err;
              reject(err);
              return;
            }
            counts.writes++;
            counts.bytes += data.length;
            resolve();
          });
        } catch (e) {
          // A synchronous stdout (a file) throws from write().
          stream.off('error', fail);
          const err = e as Error;
          failure ??= err;
          reject(err);
        }
      });
    },
    ack(): void {},
    recover(): Promise<SinkOpenInfo> {
      if (failure || stream.destroyed || !stream.writable) {
        return Promise.reject(new SinkError('EPIPE', `${name} failed (${failure?.message ?? 'closed'}) and cannot be reopened; restart the sidecar`));
      }
      return Promise.resolve({ last: null, truncatedBytes: 0 });
    },
    close(): Promise<void> {
      stream.off('error', onError);
      return Promise.resolve();
    },
    stats: () => ({ ...counts }),
  };
}
