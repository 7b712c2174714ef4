// Test fixtures: record sample sessions into memory with the real recorder, and forge lines as an attacker would.
import { Writable } from 'node:stream';
import { canonicalLine } from './canonical.ts';
import { sha256Hex } from './chain.ts';
import type { LineRef, RecordEvent } from './event.ts';
import { streamSink } from './sinks.ts';
import { createRecorder, type RecorderOptions } from './writer.ts';

/** A Writable that keeps what it was given. */
export class MemoryStream extends Writable {
  readonly chunks: Buffer[] = [];
  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (e?: Error | null) => void): void {
    this.chunks.push(chunk);
    cb();
  }
  text(): string {
    return Buffer.concat(this.chunks).toString('utf8');
  }
  lines(): string[] {
    return this.text().split('\n').filter((l) => l.length > 0);
  }
}

/** One small but complete session: start, a statement and its result, an approval, a denial, end. */
export function sampleSession(session: string): RecordEvent[] {
  const cls = { kinds: ['read'], tables: ['public.users'], functions: [] };
  return [
    { type: 'session.start', session, identity: 'agent-a', subject: 'system:serviceaccount:ns:agent', groups: ['devs'], pod: 'ns/agent-0', client: '127.0.0.1:50000', connection: 'main-db', protocol: 'postgres' },
    { type: 'statement', session, cmd: 1, text: 'SELECT id, email FROM users WHERE id = 1', classification: cls, decision: 'allow', rule: null, statementHash: 'a'.repeat(64) },
    { type: 'result', session, cmd: 1, rows: 1, bytes: 120, masked: { email: 1 }, durationMs: 2, sqlState: '00000' },
    { type: 'statement', session, cmd: 2, text: 'DELETE FROM users', classification: { kinds: ['write'], tables: ['public.users'], functions: [] }, decision: 'approval', rule: 'no-delete-without-where', statementHash: 'b'.repeat(64) },
    { type: 'approval.wait', session, cmd: 2, request: 'ar-1', approverGroups: ['dba'], timeoutMs: 60000 },
    { type: 'approval.outcome', session, cmd: 2, request: 'ar-1', outcome: 'denied', by: ['alice'], waitedMs: 1500 },
    { type: 'session.end', session, reason: 'client-closed', summary: { commands: 2, denied: 1, approvals: 1, rows: 1, bytes: 120, masked: { email: 1 }, durationMs: 1600 } },
  ];
}

export interface MemoryRecordingOptions extends Omit<RecorderOptions, 'sinks'> {
  readonly close?: boolean;
  /** The line the new stream follows, as a file sink reports it on open (a restart on the same file). */
  readonly after?: LineRef;
  /** First stream id number (ids are `streamNN`). */
  readonly firstStream?: number;
}

/** Records events in order into memory with the real recorder (fixed clock and stream ids); returns the lines. */
export async function recordToMemory(events: readonly RecordEvent[], opts: MemoryRecordingOptions = {}): Promise<string[]> {
  const out = new MemoryStream();
  let n = opts.firstStream ?? 0;
  let t = Date.UTC(2025, 0, 1) + n * 86_400_000;
  const sink = streamSink(out, { name: 'memory' });
  const after = opts.after;
  const rec = await createRecorder({
    clock: () => new Date((t += 7)),
    newStreamId: () => `stream${String(n++).padStart(2, '0')}`,
    ...opts,
    sinks: [after ? { ...sink, open: async () => ({ ...(await sink.open()), last: after }) } : sink],
  });
  for (const e of events) await rec.record(e);
  if (opts.close ?? true) await rec.close();
  return out.lines();
}

/** What a forger without the signing key can do: recompute `prev` of every line from `from` on. */
export function rechain(lines: readonly string[], from: number): string[] {
  const out = [...lines];
  for (let i = Math.max(1, from); i < out.length; i++) {
    const o = JSON.parse(out[i] ?? '{}') as Record<string, unknown>;
    if (o.seq === 0) continue;
    o.prev = sha256Hex(out[i - 1] ?? '');
    out[i] = canonicalLine(o);
  }
  return out;
}

/** A forged line in the stream of `like`, at the position of `like`'s seq + 1 (chain fixed by `rechain`). */
export function forgeAfter(like: string, patch: Readonly<Record<string, unknown>>): string {
  const o = JSON.parse(like) as Record<string, unknown>;
  return canonicalLine({ ...o, ...patch, seq: (o.seq as number) + 1 });
}

/** The reference a restarted recorder would put in `after` for line `i` of `lines`. */
export function refOf(lines: readonly string[], i: number): LineRef {
  const line = lines[i] ?? '';
  const o = JSON.parse(line) as { stream: string; seq: number };
  return { stream: o.stream, seq: o.seq, hash: sha256Hex(line) };
}

/** Renumbers seq from `from` on by +delta (a forger shifting lines after an insertion). */
export function renumber(lines: readonly string[], from: number, delta: number): string[] {
  return lines.map((l, i) => {
    if (i < from) return l;
    const o = JSON.parse(l) as Record<string, unknown>;
    return o.seq === 0 ? l : canonicalLine({ ...o, seq: (o.seq as number) + delta });
  });
}
