// The hash chain: pure linking of one line to the previous one, and the genesis value of a stream.
import { hash } from 'node:crypto';
import { canonicalLine } from './canonical.ts';
import { REC_PREFIX, REC_VERSION, type AnyEvent } from './event.ts';

/** What `link` needs besides the previous hash: the envelope position and the event itself. */
export type Entry = { readonly stream: string; readonly seq: number; readonly time: string } & AnyEvent;

export interface Linked {
  /** The exact line, without the trailing newline. */
  readonly line: string;
  /** Hex SHA-256 of the line's UTF-8 bytes: the next line's `prev`. */
  readonly hash: string;
}

/** One-shot hash (no Hash object per line); a string is hashed as its UTF-8 bytes. */
export function sha256Hex(data: string | Uint8Array): string {
  return hash('sha256', data, 'hex');
}

/** `prev` of seq 0: `printf 'chaperone/rec/v1 genesis %s' STREAM | sha256sum`. */
export function genesis(stream: string): string {
  return sha256Hex(`chaperone/rec/v1 genesis ${stream}`);
}

/** Serializes `entry` canonically with `prev`, and hashes the resulting bytes. Pure. */
export function link(prev: string, entry: Entry): Linked {
  const line = canonicalLine({ ...entry, chaperone: REC_VERSION, prev });
  return { line, hash: sha256Hex(line) };
}

/** A line as written: its UTF-8 bytes with the trailing newline, and the hash of the line without it. */
export interface LinkedBytes {
  readonly data: Buffer;
  readonly hash: string;
}

/**
 * The same line as `link` for a body already serialized canonically: `tail` is the body's JSON
 * without its opening brace, `type` and `session` first, every other key sorted, and no envelope key
 * among them (the recorder's fast path builds it; `prev` is always hex, so it needs no escaping).
 * The line is encoded once: the bytes hashed are the bytes written.
 */
export function linkTail(prev: string, stream: string, seq: number, time: string, tail: string): LinkedBytes {
  const data = Buffer.from(`${REC_PREFIX}"stream":${JSON.stringify(stream)},"seq":${seq},"prev":"${prev}","time":${JSON.stringify(time)},${tail}\n`, 'utf8');
  return { data, hash: sha256Hex(data.subarray(0, data.length - 1)) };
}
