// Streaming masker: masks a byte stream chunk by chunk with a bounded carry-over, equal to masking it whole.
//
// The stream keeps `context` bytes already emitted (for lookbehind and nearby keywords) and holds
// back `hold` bytes not yet emitted (for matches up to the window, plus lookahead and keywords).
// Each rule keeps the offset where its search resumes, so a resumed scan finds exactly the matches
// a scan of the whole buffer would (see scan.ts). A match still running at the end of the data
// (longer than the window: a long PEM block, a huge token) is masked from its start and its
// continuation is swallowed until it ends, so nothing of it leaks and a placeholder comes out once.
import type { FindingCounts } from './types.ts';
import { decodeView, gluePoints, hasEscapes, MAX_ESCAPE_LENGTH, viewIndexAtOrAfter, viewIndexAtOrBefore, type DecodedView } from './decode.ts';
import { countFindings, groupReplacement } from './replace.ts';
import type { Compiled, StreamMasker } from './options.ts';
import type { KeywordHits, PrefilterState } from './prefilter.ts';
import { mergeSpans, NEAR, scanView, type Group, type RawSpan } from './scan.ts';

const EMPTY = Buffer.alloc(0);
/** Lookbehind / lookahead margin beyond keywords and matches (boundary assertions are short). */
const MARGIN = 64;
// PEM body as the private-key detectors define it; the END line closes it.
const PEM_BODY = /(?:[A-Za-z0-9+/=\s:,.\\]|-(?!----))*/y;
const PEM_END = /-----END[ +][A-Z0-9 +]{1,40}-----/y;
// Any other over-long token runs until a delimiter.
const TOKEN_BODY = /[^\s"'`<>,;{}()[\]|]*/y;

type Continuation = 'pem' | 'token';

interface Views {
  readonly text: string;
  readonly dv: DecodedView | undefined;
}

export function createStream(c: Compiled): StreamMasker {
  const slots = c.rules.length + 1;
  const hold = c.window + NEAR + c.maxKeywordLength + MARGIN;
  const context = NEAR + c.maxKeywordLength + MARGIN;
  const step = Math.max(1024, hold >> 2);
  let buf: Buffer = EMPTY; // context + not yet emitted bytes; at most context + hold + step + one chunk
  let base = 0; // absolute offset of buf[0]
  let emitted = 0; // absolute offset up to which output is final
  let cont: Continuation | undefined;
  let done = false;
  const rawResume = new Float64Array(slots); // absolute offsets
  const decResume = new Float64Array(slots);
  // The same per rule, relative to buf (raw) or to the decoded view: scratch reused by every scan.
  const rawRel = new Int32Array(slots);
  const decRel = new Int32Array(slots);
  const findings: Record<string, number> = {};
  const queue: Buffer[] = [];
  let queued = 0;
  // The prefilter reads each byte once: its automaton state carries across pushes, and the keyword
  // hits of the held bytes are kept (absolute ends) until trimmed off.
  const pst: PrefilterState = { state: 0, run: 0 };
  let scanned = 0; // absolute offset up to which the prefilter has read
  // Digits read so far: the keywordless rules' text gate only needs an upper bound (each match is
  // checked for its own digits), so bytes trimmed off are not subtracted.
  let seenDigits = 0;
  const hitEnds: number[] = [];
  const hitKws: number[] = [];
  const words = c.prefilter.words;

  /** Runs the prefilter over the bytes of buf it has not read yet. */
  const readNew = (): void => {
    if (scanned >= base + buf.length) return;
    const h = c.prefilter.scanBytesFrom(buf, scanned - base, pst);
    for (let i = 0; i < h.count; i++) {
      hitEnds.push(scanned + h.ends[i]!);
      hitKws.push(h.keywords[i]!);
    }
    seenDigits += h.digits;
    scanned = base + buf.length;
  };

  /** Keyword hits of buf, as a scan of buf from its first byte would report them (offsets relative to base). */
  const heldHits = (): KeywordHits => {
    readNew();
    let n = 0;
    for (let i = 0; i < hitEnds.length; i++) if (hitEnds[i]! - words[hitKws[i]!]!.length >= base) n++;
    const ends = new Int32Array(n);
    const keywords = new Int32Array(n);
    for (let i = 0, j = 0; i < hitEnds.length; i++) {
      const k = hitKws[i]!;
      if (hitEnds[i]! - words[k]!.length < base) continue; // began in bytes already trimmed off
      ends[j] = hitEnds[i]! - base;
      keywords[j++] = k;
    }
    return { count: n, ends, keywords, digits: seenDigits, escapes: false };
  };

  /** Forgets what the prefilter knew of the `cut` bytes about to be dropped. */
  const dropHits = (cut: number): void => {
    readNew(); // a swallowed continuation may be trimmed before it was scanned
    let j = 0;
    for (let i = 0; i < hitEnds.length; i++) {
      if (hitEnds[i]! - words[hitKws[i]!]!.length < base + cut) continue;
      hitEnds[j] = hitEnds[i]!;
      hitKws[j++] = hitKws[i]!;
    }
    hitEnds.length = j;
    hitKws.length = j;
  };

  const flushQueue = (): void => {
    if (queue.length === 0) return;
    buf = Buffer.concat([buf, ...queue]);
    queue.length = 0;
    queued = 0;
  };

  /** Swallows the continuation of an over-long match; false when it needs more data. */
  const continueRun = (ended: boolean): boolean => {
    if (cont === undefined) return true;
    const from = emitted - base;
    const text = buf.toString('latin1', from, buf.length);
    const body = cont === 'pem' ? PEM_BODY : TOKEN_BODY;
    body.lastIndex = 0;
    body.exec(text);
    let len = body.lastIndex;
    // Keep the last bytes unread until more arrive: the body's own lookahead and the END line need them.
    if (!ended && len > text.length - MARGIN) {
      emitted = base + from + Math.max(0, text.length - MARGIN);
      return false;
    }
    if (cont === 'pem') {
      PEM_END.lastIndex = len;
      if (PEM_END.exec(text) !== null) len = PEM_END.lastIndex;
    }
    emitted = base + from + len;
    cont = undefined;
    for (let i = 0; i < slots; i++) {
      rawResume[i] = Math.max(rawResume[i]!, emitted);
      decResume[i] = Math.max(decResume[i]!, emitted);
    }
    return true;
  };

  const scanAll = (views: Views, hits: KeywordHits, limitRel: number, ended: boolean): { raw: RawSpan[]; dec: RawSpan[] } => {
    const { text, dv } = views;
    const raw: RawSpan[] = [];
    const resume = rawRel;
    for (let i = 0; i < slots; i++) resume[i] = Math.max(0, rawResume[i]! - base);
    scanView(c, { text, map: undefined, hits, ended, limit: limitRel, resume }, raw);
    for (let i = 0; i < slots; i++) rawResume[i] = base + resume[i]!;
    if (dv === undefined) {
      decResume.set(rawResume);
      return { raw, dec: [] };
    }
    const dec: RawSpan[] = [];
    const dres = decRel;
    // Most slots share a resume offset (the last commit point): map each distinct one once.
    let lastIn = -1;
    let lastOut = 0;
    for (let i = 0; i < slots; i++) {
      const a = Math.max(0, decResume[i]! - base);
      if (a !== lastIn) {
        lastIn = a;
        lastOut = viewIndexAtOrAfter(dv.map, a);
      }
      dres[i] = lastOut;
    }
    const dlimit = viewIndexAtOrAfter(dv.map, limitRel);
    scanView(c, { text: dv.text, map: dv.map, hits: c.prefilter.scanText(dv.text), ended, limit: dlimit, resume: dres }, dec);
    for (let i = 0; i < slots; i++) decResume[i] = base + dv.map[Math.min(dres[i]!, dv.text.length)]!;
    return { raw, dec };
  };

  /** Where output becomes final: the commit point, or earlier to keep a straddling region whole. */
  const emitPoint = (groups: readonly Group[], limitRel: number): { end: number; overLong: Group | undefined } => {
    for (const g of groups) {
      if (g.start < limitRel && g.end > limitRel) {
        if (g.truncated) return { end: g.end, overLong: g };
        return { end: g.start, overLong: undefined };
      }
      if (g.start >= limitRel) break;
    }
    return { end: limitRel, overLong: undefined };
  };

  const resetResume = (spans: readonly RawSpan[], resume: Float64Array, endRel: number): void => {
    for (let i = 0; i < slots; i++) resume[i] = Math.max(resume[i]!, base + endRel);
    // Regions not emitted yet are found again next time: resume each rule at its first one.
    const first = new Map<number, number>();
    for (const s of spans) {
      if (s.start < endRel) continue;
      const slot = s.rule >= 0 ? s.rule : c.rules.length;
      const prev = first.get(slot);
      if (prev === undefined || s.matchStart < prev) first.set(slot, s.matchStart);
    }
    // The match may begin before `emitted` (a key name before its `secret` group): trim keeps it.
    for (const [slot, start] of first) resume[slot] = base + start;
  };

  /** Output from `emitted` up to `end` (relative), groups replaced; advances `emitted`. */
  const emitGroups = (groups: readonly Group[], end: number, overLong: Group | undefined): Buffer[] => {
    const out: Buffer[] = [];
    let at = emitted - base;
    const masked: Group[] = [];
    for (const g of groups) {
      if (g.start < at) continue; // cannot happen: every rule resumes at or after `emitted`
      if (g !== overLong && g.end > end) break;
      out.push(buf.subarray(at, g.start), Buffer.from(groupReplacement(c, g, buf.toString('utf8', g.start, g.end)), 'utf8'));
      masked.push(g);
      at = g.end;
    }
    if (end > at) out.push(buf.subarray(at, end));
    countFindings(c, masked, findings);
    emitted = base + Math.max(end, at);
    return out;
  };

  const process = (ended: boolean): Buffer => {
    if (!continueRun(ended)) return trim(undefined, EMPTY);
    const n = buf.length;
    const limitRel = ended ? n : n - hold;
    if (base + limitRel <= emitted) return trim(undefined, EMPTY);
    const text = buf.toString('latin1', 0, n);
    const hits = heldHits();
    const glue = c.decodeEscapes ? gluePoints(text, hits, words, c.glue) : undefined;
    const dv = glue !== undefined || (c.decodeEscapes && hasEscapes(text)) ? decodeView(text, glue) : undefined;
    const { raw, dec } = scanAll({ text, dv }, hits, limitRel, ended);
    const groups = mergeSpans([...raw, ...dec]);
    const { end, overLong } = emitPoint(groups, limitRel);
    const out = emitGroups(groups, end, overLong);
    resetResume(raw, rawResume, end);
    resetResume(dec, decResume, end);
    if (overLong !== undefined && overLong.end >= n && !ended) {
      cont = buf.toString('latin1', overLong.start, Math.min(n, overLong.start + 64)).includes('-----BEGIN') ? 'pem' : 'token';
    }
    return trim(dv, out.length === 1 ? Buffer.from(out[0]!) : Buffer.concat(out));
  };

  /** Drops bytes before the context window, at a point where escape decoding is in sync. */
  const trim = (dv: DecodedView | undefined, result: Buffer): Buffer => {
    let oldest = emitted - context;
    for (let i = 0; i < slots; i++) oldest = Math.min(oldest, rawResume[i]! - MARGIN, decResume[i]! - MARGIN);
    let cut = Math.max(0, oldest - base);
    if (dv !== undefined && cut > 0) {
      // A view that dropped every byte up to the cut (a run of NULs or zero-width characters) maps no
      // position at or before it: those bytes decode to nothing, so cut among them as without a view
      // (never past the cut: that dropped unemitted bytes; never at 0: a long NUL run grew the buffer).
      const sync = dv.map[viewIndexAtOrBefore(dv.map, cut)]!;
      cut = sync <= cut ? sync : syncPoint(buf, cut);
    }
    else if (cut > 0) cut = syncPoint(buf, cut);
    if (cut > 0) {
      dropHits(cut);
      buf = Buffer.from(buf.subarray(cut));
      base += cut;
    }
    return result;
  };

  return {
    push(chunk: Buffer): Buffer {
      if (done) throw new Error('masking stream: push() after end(); create a new stream per body');
      if (chunk.length === 0) return EMPTY;
      // Chunks queue up without copying; rescanning the held window on every small chunk (SSE
      // sends ~100 bytes) would cost ~40x: rescan once a quarter window (at least 1 KiB) is new.
      queue.push(Buffer.from(chunk));
      queued += chunk.length;
      if (base + buf.length + queued - emitted < hold + step && cont === undefined) return EMPTY;
      flushQueue();
      return process(false);
    },
    end(): Buffer {
      if (done) throw new Error('masking stream: end() called twice');
      done = true;
      flushQueue();
      const out = process(true);
      buf = EMPTY;
      return out;
    },
    findings: (): FindingCounts => ({ ...findings }),
  };
}

/** Longest escape the decoded view knows, less one: how far before a cut one can begin. */
const ESCAPE_REACH = MAX_ESCAPE_LENGTH - 1;

/**
 * Without a decoded view the held data has no complete escape (so no `\\` pair either), but an
 * escape may begin in its last few bytes and end in bytes still to come: cut before the first
 * `\`, `%`, `&` or zero-width lead byte within reach. Bounded: backing off over a whole run of `%` (or `\%\%…`) kept the
 * whole run held, and every rescan read it again (quadratic, and memory grew with the input).
 */
export function syncPoint(buf: Buffer, cut: number): number {
  let at = cut;
  for (let i = Math.max(0, cut - ESCAPE_REACH); i < cut; i++) {
    const b = buf[i];
    if (b === 0x5c || b === 0x25 || b === 0x26 || b === 0xe2 || b === 0xef) {
      at = i;
      break;
    }
  }
  return at;
}
