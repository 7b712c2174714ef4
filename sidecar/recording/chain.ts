// The hash chain: pure linking of one line to the previous one, and the genesis value of a stream.
import { createHash } from 'node:crypto';
import { canonicalLine } from './canonical.ts';
import { REC_VERSION, type AnyEvent } from './event.ts';

/** What `link` needs besides the previous hash: the envelope position and the event itself. */
export type Entry = { readonly stream: string; readonly seq: number; readonly time: string } & AnyEvent;

export interface Linked {
  /** The exact line, without the trailing newline. */
  readonly line: string;
  /** Hex SHA-256 of the line's UTF-8 bytes: the next line's `prev`. */
  readonly hash: string;
}

export function sha256Hex(data: string | Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
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
