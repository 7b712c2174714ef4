// Verifies recording lines: sequence, hash chain, stream links and Ed25519 checkpoints; reports the first bad line.
import type { KeyObject } from 'node:crypto';
import { canonicalLine } from './canonical.ts';
import { genesis, sha256Hex } from './chain.ts';
import { EVENT_TYPES, REC_PREFIX, type LineRef } from './event.ts';
import { checkpointMessage, keyTable, verifyCheckpoint } from './signing.ts';

export type VerifyReason =
  | 'bad-json'
  | 'bad-field'
  | 'non-canonical'
  | 'missing-start'
  | 'seq-gap'
  | 'seq-reorder'
  | 'duplicate'
  | 'chain-broken'
  | 'stream-gap'
  | 'truncated'
  | 'bad-signature'
  | 'missing-checkpoint'
  | 'unended'
  | 'empty';

export interface VerifyOptions {
  /** Ed25519 public keys; with them every checkpoint's signature is checked. */
  readonly publicKeys?: readonly KeyObject[];
  /** Fail unless every line is covered by a valid checkpoint (needs `publicKeys`). */
  readonly requireSealed?: boolean;
  /** The input may begin in the middle of a stream (`kubectl logs --since/--tail`). */
  readonly allowPartialStart?: boolean;
  /**
   * Fail unless every stream ends with `stream.end` or is followed by a later stream (`unended`): a
   * recording cut right after a valid checkpoint is otherwise whole up to the cut. Not for live logs.
   */
  readonly requireClosed?: boolean;
  /** Recent line hashes kept per stream to check a later stream's `after` link (default 4096). */
  readonly ackWindow?: number;
}

export interface StreamSummary {
  readonly stream: string;
  readonly firstSeq: number;
  readonly lastSeq: number;
  readonly lines: number;
  readonly checkpoints: number;
  /** Lines after the last checkpoint (all lines when the stream has none). */
  readonly unsealed: number;
  /** A `stream.end` line was seen. */
  readonly ended: boolean;
  /** Neither ended nor followed by a later stream: the input stops in the middle of this stream (an open tail). */
  readonly open: boolean;
  /** The stream that follows this one (its `stream.start` names this stream in `after`). */
  readonly successor: string | null;
  /** Lines written after the one the successor names: writes whose `record` call failed. */
  readonly unacknowledged: number;
  /** The input began mid-stream (only with `allowPartialStart`). */
  readonly partial: boolean;
}

export interface VerifyOk {
  readonly ok: true;
  /** Recording lines verified. */
  readonly count: number;
  /** Other lines skipped (logs sharing stdout). */
  readonly foreign: number;
  readonly streams: readonly StreamSummary[];
  readonly unsealed: number;
  readonly signatures: 'checked' | 'unchecked' | 'none';
  readonly warnings: readonly string[];
}

export interface VerifyFail {
  readonly ok: false;
  /** 1-based line number in the input (all lines counted). */
  readonly line: number;
  readonly reason: VerifyReason;
  readonly message: string;
  /** Recording lines that verified before this one. */
  readonly count: number;
}

export type VerifyResult = VerifyOk | VerifyFail;

export const DEFAULT_ACK_WINDOW = 4096;

interface StreamState {
  readonly stream: string;
  readonly firstSeq: number;
  readonly partial: boolean;
  readonly policy: { readonly key: string; readonly everyLines: number } | null;
  lastSeq: number;
  lastHash: string;
  lines: number;
  checkpoints: number;
  /** Non-checkpoint lines since the last checkpoint (or the start). */
  sinceCheckpoint: number;
  /** Input line number of the first line after the last checkpoint. */
  firstUnsealedLine: number;
  ended: boolean;
  successor: string | null;
  unacknowledged: number;
  /** The successor's link, once checked: lines up to `seq` are sealed by the successor's first checkpoint. */
  linkedAt: number;
  /** Input line number of the line after `linkedAt` (the first unacknowledged one), or -1. */
  unackedLine: number;
  /** Input line number of the last line. */
  lastLine: number;
  readonly recent: Map<number, string>;
  /** Input line numbers of the lines in `recent`. */
  readonly recentLine: Map<number, number>;
}

/** A stream's claim to follow a line of another stream (its `stream.start`'s `after`). */
interface Claim {
  readonly successor: string;
  readonly seq: number;
}

type Obj = Readonly<Record<string, unknown>>;
type Fail = { readonly reason: VerifyReason; readonly message: string };

const KUBECTL_PREFIX = /^(\[[^\]]*\] )?(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2}) )?$/;
const HEX64 = /^[0-9a-f]{64}$/;
const KEY_ID = /^[0-9a-f]{16}$/;
const STREAM_ID = /^[A-Za-z0-9._-]{1,64}$/;
const TYPES: ReadonlySet<string> = new Set(EVENT_TYPES);
const STREAM_SCOPED: ReadonlySet<string> = new Set(['stream.start', 'stream.end', 'checkpoint', 'policy.reload']);
const strictUtf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/**
 * Returns the recording line inside an input line, or null for a foreign line. Accepts the
 * prefixes `kubectl logs` adds: `[pod/NAME/CONTAINER] ` (--prefix) and an RFC 3339 time (--timestamps).
 */
export function extractRecord(text: string): string | null {
  const at = text.indexOf(REC_PREFIX);
  if (at < 0) return null;
  if (at === 0) return text;
  return KUBECTL_PREFIX.test(text.slice(0, at)) ? text.slice(at) : null;
}

/** A streaming verifier: `push` each input line (without its newline), then `end`. Stops at the first failure. */
export class Verifier {
  private readonly keys: ReadonlyMap<string, KeyObject> | null;
  private readonly streams = new Map<string, StreamState>();
  /** Every `after` seen, by the stream it names: one successor per stream, and it must come after it. */
  private readonly claims = new Map<string, Claim>();
  private readonly warnings: string[] = [];
  private readonly window: number;
  private lineNo = 0;
  private count = 0;
  private foreign = 0;
  private failed: VerifyFail | null = null;
  /** A recording line that did not parse: `bad-json`, or `truncated` if nothing follows it. */
  private torn: { readonly line: number; readonly message: string } | null = null;

  constructor(private readonly opts: VerifyOptions = {}) {
    if (opts.requireSealed && !opts.publicKeys?.length) {
      throw new Error('requireSealed needs publicKeys: a checkpoint proves nothing unless its signature is checked');
    }
    this.keys = opts.publicKeys?.length ? keyTable(opts.publicKeys) : null;
    this.window = opts.ackWindow ?? DEFAULT_ACK_WINDOW;
  }

  /** Feeds one input line; returns the failure once one is found (and keeps returning it). */
  push(input: string | Uint8Array): VerifyFail | null {
    if (this.failed) return this.failed;
    this.lineNo++;
    if (this.torn) return this.fail(this.torn.line, { reason: 'bad-json', message: this.torn.message });
    let text: string;
    try {
      text = typeof input === 'string' ? input : strictUtf8.decode(input);
    } catch {
      // Invalid UTF-8 can only be a recording line if it carries the marker bytes.
      if (!Buffer.from(input as Uint8Array).includes(REC_PREFIX)) return this.skip();
      return this.fail(this.lineNo, { reason: 'bad-json', message: 'the line is not valid UTF-8: it was altered' });
    }
    const rec = extractRecord(text);
    if (rec === null) {
      // Only a recording line carries the marker bytes; behind a prefix kubectl does not add, it was made to look foreign.
      return text.includes(REC_PREFIX) ? this.fail(this.lineNo, { reason: 'bad-field', message: misplaced(text) }) : this.skip();
    }
    let obj: unknown;
    try {
      obj = JSON.parse(rec);
    } catch (e) {
      this.torn = { line: this.lineNo, message: `the recording line is not valid JSON (${(e as Error).message}): it was altered or cut` };
      return null;
    }
    const bad = this.check(rec, obj as Obj);
    if (bad) return this.fail(this.lineNo, bad);
    this.count++;
    return null;
  }

  /**
   * Feeds an input line too long to hold (`head` is its beginning): a log line is skipped, but a
   * recording line never is that long (the recorder keeps lines under 16 kB), so one is a failure.
   */
  pushOverlong(head: Uint8Array, length: number): VerifyFail | null {
    if (this.failed) return this.failed;
    this.lineNo++;
    if (this.torn) return this.fail(this.torn.line, { reason: 'bad-json', message: this.torn.message });
    if (!Buffer.from(head.buffer, head.byteOffset, head.byteLength).includes(REC_PREFIX)) return this.skip();
    return this.fail(this.lineNo, { reason: 'bad-field', message: `a recording line of ${length} or more bytes (the recorder writes lines under 16 kB): it was altered` });
  }

  /** Ends the input; `lastLineUnterminated` when the input did not end with a newline. */
  end(opts: { readonly lastLineUnterminated?: boolean } = {}): VerifyResult {
    if (this.failed) return this.failed;
    if (this.torn) {
      return this.fail(this.torn.line, { reason: 'truncated', message: 'the last recording line is incomplete: the recording was cut (or the sidecar died mid-write)' });
    }
    if (this.count === 0) {
      return this.fail(this.lineNo, { reason: 'empty', message: `no recording lines found (they begin with ${REC_PREFIX})` });
    }
    if (opts.lastLineUnterminated) this.warnings.push('the input does not end with a newline; the last line verified anyway');
    let unsealed = 0;
    for (const st of this.streams.values()) {
      this.sealBySuccessor(st);
      unsealed += st.sinceCheckpoint;
      const bad = this.tailFailure(st);
      if (bad) return bad;
      this.streamWarnings(st);
    }
    for (const [pred, c] of this.claims) {
      if (!this.streams.has(pred)) {
        this.warnings.push(`stream ${c.successor} follows seq ${c.seq} of stream ${pred}, which is not in this input: the earlier log (kubectl logs --previous, an older file) was not given, or that stream was removed`);
      }
    }
    return {
      ok: true,
      count: this.count,
      foreign: this.foreign,
      streams: [...this.streams.values()].map(summary),
      unsealed,
      signatures: this.keys ? 'checked' : [...this.streams.values()].some((s) => s.checkpoints > 0) ? 'unchecked' : 'none',
      warnings: this.warnings,
    };
  }

  /** `requireSealed` and `requireClosed` at the end of a stream. */
  private tailFailure(st: StreamState): VerifyFail | null {
    if (this.opts.requireSealed && st.sinceCheckpoint > 0) {
      return this.fail(st.firstUnsealedLine, {
        reason: 'missing-checkpoint',
        message: `unsealed tail: ${st.sinceCheckpoint} line(s) of stream ${st.stream} after its last checkpoint are not signed (lines after a checkpoint were removed or added, or the recorder died before sealing them)`,
      });
    }
    if (this.opts.requireClosed && !st.ended && st.successor === null) {
      return this.fail(st.lastLine, {
        reason: 'unended',
        message: `open tail: stream ${st.stream} ends at seq ${st.lastSeq} without stream.end and no later stream follows it: the lines after it were cut (even right after a valid checkpoint), the sidecar died, or the log is still being written`,
      });
    }
    return null;
  }

  private streamWarnings(st: StreamState): void {
    if (!st.ended && st.successor === null) {
      this.warnings.push(
        `open tail: stream ${st.stream} ends at seq ${st.lastSeq} without stream.end: the sidecar stopped uncleanly, the input is a live log, or lines were removed from the end (even a cut right after a valid checkpoint looks like this; --require-closed fails on it)`,
      );
    }
    if (st.unacknowledged > 0) {
      this.warnings.push(`stream ${st.stream}: ${st.unacknowledged} line(s) after seq ${st.lastSeq - st.unacknowledged} were written but not acknowledged (their commands were refused)`);
    }
    if (st.sinceCheckpoint > 0 && (this.keys || st.policy)) {
      this.warnings.push(`unsealed tail: ${st.sinceCheckpoint} line(s) of stream ${st.stream} after its last checkpoint are not signed${this.keys ? '' : ' (and no signature was checked: pass --key)'}`);
    }
  }

  /**
   * A successor's `stream.start` names the hash of this stream's line `linkedAt`, so once the
   * successor has a valid checkpoint, this stream's lines up to `linkedAt` are signed through it
   * (a sidecar that died between checkpoints and restarted on the same file). Lines after it are not.
   */
  private sealBySuccessor(st: StreamState): void {
    if (!this.keys || st.successor === null || st.linkedAt < 0 || st.sinceCheckpoint === 0) return;
    const next = this.streams.get(st.successor);
    if (!next || next.checkpoints === 0) return;
    const after = st.lastSeq - st.linkedAt;
    if (after >= st.sinceCheckpoint) return;
    st.sinceCheckpoint = after;
    if (after > 0 && st.unackedLine >= 0) st.firstUnsealedLine = st.unackedLine;
  }

  private skip(): null {
    this.foreign++;
    return null;
  }

  private fail(line: number, f: Fail): VerifyFail {
    this.failed = { ok: false, line, reason: f.reason, message: f.message, count: this.count };
    return this.failed;
  }

  private check(rec: string, o: Obj): Fail | null {
    const env = checkEnvelope(o);
    if (env) return { reason: 'bad-field', message: env };
    if (canonicalLine(o) !== rec) {
      if (rec.endsWith('\r')) return { reason: 'non-canonical', message: 'the line ends in \\r (CRLF line endings): the recorder writes \\n only, so the file was converted or altered' };
      return { reason: 'non-canonical', message: 'the line parses but is not in canonical form (key order, spacing or escapes changed): it was altered' };
    }
    const hash = sha256Hex(rec);
    return o.type === 'stream.start' ? this.onStart(o, hash) : this.onLine(o, hash);
  }

  private onStart(o: Obj, hash: string): Fail | null {
    const stream = o.stream as string;
    const seen = this.streams.get(stream);
    if (seen) {
      return seen.recent.get(0) === hash
        ? { reason: 'duplicate', message: `the stream.start of stream ${stream} appears twice` }
        : { reason: 'seq-reorder', message: `stream ${stream} starts again after seq ${seen.lastSeq}` };
    }
    const shape = checkStartFields(o);
    if (shape) return { reason: 'bad-field', message: shape };
    const early = this.claimedEarlier(stream);
    if (early) return early;
    if (o.prev !== genesis(stream)) {
      return { reason: 'chain-broken', message: `stream.start of ${stream} does not carry the genesis hash of its stream id` };
    }
    const linkFail = this.linkPredecessor(stream, o.after as LineRef | null);
    if (linkFail) return linkFail;
    const policy = o.checkpoint as { key: string; everyLines: number } | null;
    if (policy && this.keys && !this.keys.has(policy.key)) {
      return { reason: 'bad-signature', message: `stream ${stream} is signed with key ${policy.key}, which is not among the public keys given` };
    }
    const st = newState({ stream, seq: 0, hash, policy, lineNo: this.lineNo, partial: false });
    this.streams.set(stream, st);
    return null;
  }

  /** A stream must not begin after a stream that names it as its predecessor: reordering streams would hide a cut tail. */
  private claimedEarlier(stream: string): Fail | null {
    const c = this.claims.get(stream);
    if (!c) return null;
    return {
      reason: 'seq-reorder',
      message: `stream ${stream} begins after stream ${c.successor}, which names its seq ${c.seq} as its predecessor: streams were reordered or moved (when joining logs, put the older one, e.g. kubectl logs --previous, first)`,
    };
  }

  private linkPredecessor(stream: string, after: LineRef | null): Fail | null {
    if (!after) return null;
    const claimed = this.claims.get(after.stream);
    if (claimed) {
      return { reason: 'chain-broken', message: `streams ${claimed.successor} and ${stream} both claim to follow stream ${after.stream}` };
    }
    this.claims.set(after.stream, { successor: stream, seq: after.seq });
    const pred = this.streams.get(after.stream);
    if (!pred) return null; // the predecessor is outside this input (e.g. `kubectl logs --previous`)
    if (after.seq > pred.lastSeq) {
      return {
        reason: 'stream-gap',
        message: `stream ${stream} follows seq ${after.seq} of stream ${after.stream}, but that stream ends at seq ${pred.lastSeq} here: its last ${after.seq - pred.lastSeq} line(s) were removed`,
      };
    }
    const h = pred.recent.get(after.seq);
    if (h === undefined) {
      this.warnings.push(`stream ${stream} follows seq ${after.seq} of ${after.stream}, too far back to check (ack window ${this.window})`);
    } else if (h !== after.hash) {
      return { reason: 'chain-broken', message: `stream ${stream} follows a line of stream ${after.stream} (seq ${after.seq}) whose hash differs from the one here` };
    }
    pred.successor = stream;
    pred.unacknowledged = pred.lastSeq - after.seq;
    if (h !== undefined) {
      pred.linkedAt = after.seq;
      pred.unackedLine = pred.recentLine.get(after.seq + 1) ?? -1;
    }
    pred.recent.clear(); // nothing may follow it any more; free the window
    pred.recentLine.clear();
    return null;
  }

  private onLine(o: Obj, hash: string): Fail | null {
    const stream = o.stream as string;
    const seq = o.seq as number;
    let st = this.streams.get(stream);
    if (!st) {
      if (!this.opts.allowPartialStart) {
        return { reason: 'missing-start', message: `a line of stream ${stream} (seq ${seq}) comes before any stream.start of it: lines before it were removed (for a log excerpt, allow a partial start)` };
      }
      const early = this.claimedEarlier(stream);
      if (early) return early;
      st = newState({ stream, seq, hash, policy: null, lineNo: this.lineNo, partial: true });
      this.streams.set(stream, st);
      return this.after(st, o, hash);
    }
    if (st.successor !== null) {
      return { reason: 'seq-reorder', message: `a line of stream ${stream} (seq ${seq}) comes after stream ${st.successor} took over from it: lines were moved or appended` };
    }
    const order = checkOrder(st, seq, hash, o.prev as string);
    if (order) return order;
    if (st.ended && o.type !== 'checkpoint') return { reason: 'bad-field', message: `a ${String(o.type)} line follows the stream.end of stream ${stream}` };
    return this.after(st, o, hash);
  }

  /** Advances the stream state with an in-order line; checks checkpoints. */
  private after(st: StreamState, o: Obj, hash: string): Fail | null {
    if (!st.partial || st.lines > 0) {
      st.lastSeq = o.seq as number;
      st.lastHash = hash;
      st.recent.set(st.lastSeq, hash);
      st.recentLine.set(st.lastSeq, this.lineNo);
      if (st.recent.size > this.window) {
        st.recent.delete(st.lastSeq - this.window);
        st.recentLine.delete(st.lastSeq - this.window);
      }
    }
    st.lastLine = this.lineNo;
    st.lines++;
    if (o.type === 'stream.end') st.ended = true;
    if (o.type === 'checkpoint') return this.onCheckpoint(st, o);
    if (st.sinceCheckpoint === 0) st.firstUnsealedLine = this.lineNo;
    st.sinceCheckpoint++;
    if (st.policy && st.sinceCheckpoint > st.policy.everyLines) {
      return {
        reason: 'missing-checkpoint',
        message: `${st.sinceCheckpoint} lines of stream ${st.stream} since its last checkpoint, but it promises one every ${st.policy.everyLines}: a checkpoint was removed`,
      };
    }
    return null;
  }

  private onCheckpoint(st: StreamState, o: Obj): Fail | null {
    const key = o.key as string;
    if (st.policy && key !== st.policy.key) return { reason: 'bad-signature', message: `checkpoint signed by key ${key}, but stream ${st.stream} declared key ${st.policy.key}` };
    if (this.keys) {
      const pub = this.keys.get(key);
      if (!pub) return { reason: 'bad-signature', message: `checkpoint signed by key ${key}, which is not among the public keys given` };
      const msg = checkpointMessage(st.stream, o.seq as number, o.time as string, o.prev as string);
      if (!verifyCheckpoint(pub, msg, o.sig as string)) {
        return { reason: 'bad-signature', message: `the checkpoint's signature does not verify: this line or one before it in stream ${st.stream} was altered, or the checkpoint is forged` };
      }
    }
    st.checkpoints++;
    st.sinceCheckpoint = 0;
    return null;
  }
}

/** Verifies a whole list of lines (the last one is treated as the end of input). */
export function verifyLines(lines: Iterable<string | Uint8Array>, opts: VerifyOptions = {}): VerifyResult {
  const v = new Verifier(opts);
  for (const l of lines) if (v.push(l)) break;
  return v.end();
}

interface NewState {
  readonly stream: string;
  readonly seq: number;
  readonly hash: string;
  readonly policy: StreamState['policy'];
  readonly lineNo: number;
  readonly partial: boolean;
}

function newState({ stream, seq, hash, policy, lineNo, partial }: NewState): StreamState {
  return {
    stream,
    firstSeq: seq,
    partial,
    policy,
    lastSeq: seq,
    lastHash: hash,
    lines: partial ? 0 : 1,
    checkpoints: 0,
    sinceCheckpoint: partial ? 0 : 1,
    firstUnsealedLine: lineNo,
    ended: false,
    successor: null,
    unacknowledged: 0,
    linkedAt: -1,
    unackedLine: -1,
    lastLine: lineNo,
    recent: new Map([[seq, hash]]),
    recentLine: new Map([[seq, lineNo]]),
  };
}

function checkOrder(st: StreamState, seq: number, hash: string, prev: string): Fail | null {
  const expected = st.lastSeq + 1;
  if (seq === expected) {
    return prev === st.lastHash
      ? null
      : { reason: 'chain-broken', message: `prev does not match the hash of seq ${st.lastSeq} of stream ${st.stream}: that line or this one was altered, or a line was replaced` };
  }
  if (seq > expected) {
    return { reason: 'seq-gap', message: `expected seq ${expected} of stream ${st.stream}, got ${seq}: ${seq - expected} line(s) missing here, or lines out of order` };
  }
  if (st.recent.get(seq) === hash) return { reason: 'duplicate', message: `seq ${seq} of stream ${st.stream} appears twice` };
  return { reason: 'seq-reorder', message: `seq ${seq} of stream ${st.stream} comes after seq ${st.lastSeq}: lines were reordered or inserted` };
}

function checkEnvelope(o: Obj): string | null {
  if (typeof o !== 'object' || o === null || Array.isArray(o)) return 'a recording line must be a JSON object';
  return checkPosition(o) ?? checkKind(o);
}

function checkPosition(o: Obj): string | null {
  if (typeof o.stream !== 'string' || !STREAM_ID.test(o.stream)) return 'stream must be a stream id (1-64 of A-Z a-z 0-9 . _ -)';
  if (!Number.isSafeInteger(o.seq) || (o.seq as number) < 0) return 'seq must be a non-negative integer';
  if (typeof o.prev !== 'string' || !HEX64.test(o.prev)) return 'prev must be 64 lower-case hex digits';
  if (typeof o.time !== 'string' || Number.isNaN(Date.parse(o.time))) return 'time must be an ISO 8601 time';
  return null;
}

function checkKind(o: Obj): string | null {
  if (typeof o.type !== 'string' || !TYPES.has(o.type)) return `unknown event type ${JSON.stringify(o.type)}`;
  if (!STREAM_SCOPED.has(o.type) && typeof o.session !== 'string') return `a ${o.type} line must name its session`;
  return o.type === 'checkpoint' ? checkCheckpointFields(o) : null;
}

function checkCheckpointFields(o: Obj): string | null {
  if (typeof o.key !== 'string' || !KEY_ID.test(o.key)) return 'checkpoint key must be a 16-hex-digit key id';
  if (typeof o.sig !== 'string' || !/^[0-9a-f]{128}$/.test(o.sig)) return 'checkpoint sig must be 128 hex digits';
  return null;
}

/** `after` of a stream.start: null, or a reference to a line of another stream. */
function validAfter(v: unknown): boolean {
  if (v === null) return true;
  if (typeof v !== 'object' || v === undefined) return false;
  const a = v as Obj;
  return typeof a.stream === 'string' && STREAM_ID.test(a.stream) && Number.isSafeInteger(a.seq) && (a.seq as number) >= 0 && typeof a.hash === 'string' && HEX64.test(a.hash);
}

function checkStartFields(o: Obj): string | null {
  if (o.seq !== 0) return 'stream.start must have seq 0';
  if (!validAfter(o.after)) {
    return 'stream.start after must be null or {stream, seq, hash}';
  }
  const c = o.checkpoint as Obj | null | undefined;
  if (c !== null && (typeof c !== 'object' || typeof c.key !== 'string' || !KEY_ID.test(c.key) || !Number.isSafeInteger(c.everyLines) || (c.everyLines as number) < 1)) {
    return 'stream.start checkpoint must be null or {key, everyLines >= 1, everyMs}';
  }
  return null;
}

/** Why a line that carries the marker behind an unrecognised prefix is refused (never skipped as a log line). */
function misplaced(text: string): string {
  if (text.startsWith('\uFEFF')) return 'a UTF-8 byte order mark before a recording line (the recorder never writes one): the file was re-encoded or altered';
  return 'a recording line behind a prefix that is not kubectl\'s ([pod/…] or a timestamp): it was altered, or disguised as a log line to hide it';
}

function summary(st: StreamState): StreamSummary {
  return {
    stream: st.stream,
    firstSeq: st.firstSeq,
    lastSeq: st.lastSeq,
    lines: st.lines,
    checkpoints: st.checkpoints,
    unsealed: st.sinceCheckpoint,
    ended: st.ended,
    open: !st.ended && st.successor === null,
    successor: st.successor,
    unacknowledged: st.unacknowledged,
    partial: st.partial,
  };
}
