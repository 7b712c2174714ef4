// The scanner: runs the enabled rules over one view of a text and returns spans in raw offsets.
//
// Semantics shared by whole-text and streaming masking (that is what makes them agree):
// - a rule with keywords runs only if one occurs in the text, and a match counts only if one of its
//   keywords lies within NEAR characters of it (locality: a far keyword says nothing about a match);
// - a rejected candidate (validator, locality) resumes the search one character after its start,
//   an accepted one after its end: the accepted matches are then a function of the text and the
//   resume position only, so a stream can stop and resume a rule anywhere;
// - a match longer than its rule's maxLength that was rejected resumes after its end (linear time).
import type { Compiled, Rule } from './options.ts';
import type { KeywordHits } from './prefilter.ts';
import { SHAPE_MAX_TEXT, shapesOfText } from './shapes.ts';

/** Keywords count for a match when they start or end within this many characters of it. */
export const NEAR = 128;

export interface RawSpan {
  /** Raw offsets (relative to the scanned data), end exclusive. */
  start: number;
  end: number;
  rule: number;
  /** Raw offset where the whole match (not only its `secret` group) starts: a resumed search restarts there. */
  matchStart: number;
  /** The match ran to the end of data that is not the end of the stream: it may continue. */
  truncated: boolean;
}

export interface ViewScan {
  readonly text: string;
  /** View offset → raw offset; undefined when the view is the raw text. */
  readonly map: Int32Array | undefined;
  readonly hits: KeywordHits;
  /** True when the text end is the end of the input (no more data will come). */
  readonly ended: boolean;
  /** Matches starting at or after this view offset are left for later (stream commit point). */
  readonly limit: number;
  /** Stream mode, per rule (+1 slot for literals): view offset where its search resumes; updated to where it stopped. */
  readonly resume?: Int32Array;
  /** Digit-shape gates the text passes (`shapes.ts`), when already computed; else computed here if needed. */
  readonly shapes?: number;
}

/** Per-compiled scratch: a generation stamp per rule (dedupes active rules without allocating) and hit lists. */
interface Scratch {
  gen: number;
  readonly stamp: Uint32Array;
  readonly ruleHits: number[][];
}
// One scratch per nesting level: a validator may mask a decoded value (base64) in the middle of a scan.
const scratches = new WeakMap<Compiled, Scratch[]>();
let depth = 0;

function scratchOf(c: Compiled, level: number): Scratch {
  let pool = scratches.get(c);
  if (pool === undefined) {
    pool = [];
    scratches.set(c, pool);
  }
  let s = pool[level];
  if (s === undefined) {
    s = { gen: 0, stamp: new Uint32Array(c.rules.length), ruleHits: c.rules.map(() => []) };
    pool[level] = s;
  }
  return s;
}

/** Rules to run: those with a keyword hit (each hit is filed under its rules) and keywordless ones past the digit and shape gates. */
function activeRules(c: Compiled, v: ViewScan, sc: Scratch): number[] {
  const { hits } = v;
  const length = v.text.length;
  const active: number[] = [];
  sc.gen = (sc.gen + 1) >>> 0;
  if (sc.gen === 0) {
    sc.stamp.fill(0);
    sc.gen = 1;
  }
  const g = sc.gen;
  for (let i = 0; i < hits.count; i++) {
    for (const r of c.rulesByKeyword[hits.keywords[i]!]!) {
      if ((c.rules[r]!.minMatch ?? 0) > length) continue; // no match fits in the text
      if (sc.stamp[r] !== g) {
        sc.stamp[r] = g;
        sc.ruleHits[r]!.length = 0;
        active.push(r);
      }
      sc.ruleHits[r]!.push(i);
    }
  }
  keywordlessActive(c, v, sc, active);
  return active;
}

/** Adds the keywordless rules past their digit gate and, computed once if any gets that far, their shape gate. */
function keywordlessActive(c: Compiled, v: ViewScan, sc: Scratch, active: number[]): void {
  const length = v.text.length;
  let shapes = v.shapes ?? -1;
  for (const r of c.keywordlessRules) {
    const rule = c.rules[r]!;
    if (v.hits.digits < rule.minDigits || length < Math.max(rule.minTextLength, rule.minMatch ?? 0)) continue;
    const bit = rule.shape ?? 0;
    if (bit !== 0) {
      // On long texts the gated regexes scan faster than a shape pass would: gate only short ones.
      if (shapes < 0 && length <= SHAPE_MAX_TEXT) shapes = shapesOfText(v.text);
      if (shapes >= 0 && (shapes & bit) === 0) continue; // its regex cannot match anywhere in the text
    }
    sc.stamp[r] = sc.gen;
    active.push(r);
  }
}

/** First index into `list` (hit indices, ends non-decreasing) whose hit ends at or after pos. */
function firstHitEndingAtOrAfter(hits: KeywordHits, list: readonly number[], pos: number): number {
  let lo = 0;
  let hi = list.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (hits.ends[list[mid]!]! < pos) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** A keyword of the rule starts or ends within NEAR of the masked span. */
function keywordNear(c: Compiled, hits: KeywordHits, list: readonly number[] | undefined, start: number, end: number): boolean {
  if (list === undefined) return true;
  const from = start - NEAR;
  const to = end + NEAR;
  const words = c.prefilter.words;
  for (let j = firstHitEndingAtOrAfter(hits, list, from); j < list.length; j++) {
    const i = list[j]!;
    const hEnd = hits.ends[i]!;
    if (hEnd - words[hits.keywords[i]!]!.length < to) return true;
    if (hEnd - c.maxKeywordLength >= to) break; // ends are sorted: every later hit starts at or after `to`
  }
  return false;
}

interface Candidate {
  /** Whole match. */
  readonly ms: number;
  readonly me: number;
  /** Masked span (`secret` group or whole match). */
  readonly s: number;
  readonly e: number;
}

function candidateOf(rule: Rule, m: NonNullable<ReturnType<Rule['re']['exec']>>, offset: number): Candidate {
  const c = candidateIn(rule, m);
  return offset === 0 ? c : { ms: c.ms + offset, me: c.me + offset, s: c.s + offset, e: c.e + offset };
}

function candidateIn(rule: Rule, m: NonNullable<ReturnType<Rule['re']['exec']>>): Candidate {
  const ms = m.index ?? 0;
  const me = ms + (m[0]?.length ?? 0);
  if (rule.indices) {
    const ind = (m as RegExpExecArray).indices;
    const g = ind?.groups?.['secret'];
    if (g !== undefined) return { ms, me, s: g[0], e: g[1] };
    return { ms, me, s: ms, e: me };
  }
  const secret = m.groups?.['secret'];
  if (secret !== undefined && secret.length > 0) {
    const at = (m[0] ?? '').indexOf(secret);
    if (at >= 0) return { ms, me, s: ms + at, e: ms + at + secret.length };
  }
  return { ms, me, s: ms, e: me };
}

function toRaw(v: ViewScan, cand: { ms: number; s: number; e: number }, rule: number, truncated: boolean): RawSpan {
  const { ms, s, e } = cand;
  if (v.map === undefined) return { start: s, end: e, rule, matchStart: ms, truncated };
  return { start: v.map[s]!, end: v.map[e]!, rule, matchStart: v.map[ms]!, truncated };
}

/** Texts longer than this are scanned only in windows around the rule's keyword hits. */
const WINDOW_MIN_TEXT = 16384;
/** Context kept around a window for lookbehind and lookahead assertions. */
const WINDOW_MARGIN = 64;

/**
 * Windows [from, to) where an accepted match of the rule can start: within NEAR + maxLength of one
 * of its keywords (a match is accepted only near a keyword). Merged, in order.
 */
function windowsOf(c: Compiled, rule: Rule, hits: KeywordHits, list: readonly number[], n: number): number[] {
  const out: number[] = [];
  const reach = NEAR + rule.maxLength;
  for (const i of list) {
    const hEnd = hits.ends[i]!;
    const hStart = hEnd - c.prefilter.words[hits.keywords[i]!]!.length;
    const from = rule.startsAtKeyword === true ? hStart : Math.max(0, hStart - reach);
    const to = rule.startsAtKeyword === true ? hStart + 1 : Math.min(n, hEnd + NEAR + 1);
    if (out.length > 0 && from <= out[out.length - 1]!) out[out.length - 1] = Math.max(out[out.length - 1]!, to);
    else out.push(from, to);
  }
  return out;
}

interface Cursor {
  pos: number;
  /** Where the scan saw the next match start at or after `pos` (Infinity: none in the text; `pos`: not looked). */
  next: number;
}

/** Past the regex's own reach: boundary assertions and an escape cut at the end of a decoded view. */
const READ_MARGIN = 64;

/** What one rule's scan over one view needs. */
interface RuleScan {
  readonly c: Compiled;
  readonly rule: Rule;
  readonly v: ViewScan;
  /** The rule's keyword hits (indices into v.hits); undefined for keywordless rules. */
  readonly list: readonly number[] | undefined;
  readonly out: RawSpan[];
}

/** Locality, the keywordless gates, then the validator (or the partial validator on a cut-short candidate). */
function accepts(rs: RuleScan, cand: Candidate, truncated: boolean): boolean {
  const { c, rule, v, list } = rs;
  if (cand.e <= cand.s || !keywordNear(c, v.hits, list, cand.s, cand.e)) return false;
  if (cand.me - cand.ms < rule.minTextLength || !digitsAtLeast(v.text, cand.ms, cand.me, rule.minDigits)) return false;
  // A truncated candidate may fail a checksum only because its tail has not arrived: mask it,
  // unless the rule can tell from the part seen (base64 whose start decodes to binary).
  if (truncated) return rule.validatePartial?.(v.text.slice(cand.s, cand.e)) ?? true;
  return rule.validate === undefined || safeValidate(rule, v.text.slice(cand.s, cand.e));
}

/** Runs the rule's exec loop over starts in [cur.pos, stop) on `sub` = text[sub.start, …). False: stop scanning (limit reached). */
function scanWindow(rs: RuleScan, cur: Cursor, stop: number, sub: { text: string; start: number }): boolean {
  const { rule, v } = rs;
  const { text, limit } = v;
  const re = rule.re;
  const subEnd = sub.start + sub.text.length;
  for (;;) {
    cur.next = cur.pos;
    if (cur.pos >= stop || cur.pos >= limit || cur.pos > text.length) return true;
    re.lastIndex = cur.pos - sub.start;
    let m = re.exec(sub.text);
    if (m === null) {
      cur.next = Infinity;
      return true;
    }
    let cand = candidateOf(rule, m, sub.start);
    cur.next = cand.ms;
    if (cand.ms >= limit) return false;
    if (cand.ms >= stop) return true;
    if (cand.me >= subEnd && subEnd < text.length) {
      // The window cut a long match short: take it again from the whole text.
      re.lastIndex = cand.ms;
      m = re.exec(text);
      if (m === null) return true;
      cand = candidateOf(rule, m, 0);
    }
    const truncated = !v.ended && cand.me >= text.length;
    if (accepts(rs, cand, truncated)) {
      rs.out.push(toRaw(v, cand, rule.index, truncated));
      cur.pos = Math.max(cand.me, cand.ms + 1);
    } else {
      cur.pos = cand.me - cand.ms > rule.maxLength ? Math.max(cand.me, cand.ms + 1) : cand.ms + 1;
    }
  }
}

function scanRule(c: Compiled, rule: Rule, v: ViewScan, list: readonly number[] | undefined, out: RawSpan[]): void {
  const { text, limit } = v;
  const cur: Cursor = { pos: v.resume?.[rule.index] ?? 0, next: 0 };
  const n = text.length;
  const rs: RuleScan = { c, rule, v, list, out };
  let resumeAt = limit;
  if (list === undefined || n < WINDOW_MIN_TEXT) {
    scanWindow(rs, cur, n + 1, { text, start: 0 });
    // Stream: no match begins in [pos, next) of the data seen; where an attempt there reads no
    // further than the data, more data cannot change that, so the next scan starts past it.
    if (!v.ended && rule.readMax !== undefined) resumeAt = Math.max(limit, Math.min(cur.next, n - rule.readMax - READ_MARGIN));
  } else {
    const w = windowsOf(c, rule, v.hits, list, n);
    for (let k = 0; k < w.length; k += 2) {
      const from = w[k]!;
      const to = w[k + 1]!;
      if (to <= cur.pos) continue;
      // Starts at or past the limit are left for a later scan (stream): the resume offset must not
      // jump past them, or a match beginning there would never be looked at again.
      if (cur.pos >= limit || from >= limit) break;
      cur.pos = Math.max(cur.pos, from);
      const subStart = Math.max(0, cur.pos - WINDOW_MARGIN);
      const sub = { text: text.slice(subStart, Math.min(n, to + rule.maxLength + WINDOW_MARGIN)), start: subStart };
      if (!scanWindow(rs, cur, to, sub)) break;
      if (cur.pos < to) cur.pos = Math.max(cur.pos, Math.min(to, limit));
    }
  }
  rule.re.lastIndex = 0;
  // No match starts in [pos, limit) with the data seen: the rest can only start at `limit` or later.
  if (v.resume !== undefined) v.resume[rule.index] = Math.max(cur.pos, resumeAt);
}

/** The digit gate of keywordless rules, applied to the match itself so it does not depend on the rest of the text. */
function digitsAtLeast(text: string, from: number, to: number, min: number): boolean {
  if (min === 0) return true;
  let n = 0;
  for (let i = from; i < to; i++) {
    const ch = text.charCodeAt(i);
    if (ch >= 48 && ch <= 57 && ++n >= min) return true;
  }
  return false;
}

function safeValidate(rule: Rule, candidate: string): boolean {
  try {
    return rule.validate?.(candidate) ?? true;
  } catch {
    // A validator that throws on odd input must not let the value through: treat it as a match.
    return true;
  }
}

/** Spans of keyword-list literals (masked wherever they occur). */
function literalSpans(c: Compiled, v: ViewScan, out: RawSpan[]): void {
  const words = c.prefilter.words;
  const from = v.resume?.[c.rules.length] ?? 0;
  for (let i = 0; i < v.hits.count; i++) {
    const k = v.hits.keywords[i]!;
    const list = c.literalOf[k];
    if (list === undefined) continue;
    const e = v.hits.ends[i]!;
    const s = e - words[k]!.length;
    if (s >= v.limit || s < from) continue;
    out.push(toRaw(v, { ms: s, s, e }, -1 - c.literalIds.indexOf(list), false));
  }
}

/** Scans one view with every active rule; appends raw spans to `out`. */
export function scanView(c: Compiled, v: ViewScan, out: RawSpan[]): void {
  depth++;
  try {
    scanViewAt(c, v, out, scratchOf(c, depth - 1));
  } finally {
    depth--;
  }
}

function scanViewAt(c: Compiled, v: ViewScan, out: RawSpan[], sc: Scratch): void {
  const active = activeRules(c, v, sc);
  for (const r of active) {
    const rule = c.rules[r]!;
    scanRule(c, rule, v, rule.keywords.length === 0 ? undefined : sc.ruleHits[r], out);
  }
  if (c.literalIds.length > 0) literalSpans(c, v, out);
  if (v.resume !== undefined) {
    // Stream mode: rules that did not run (no keyword in the data) cannot match before the limit.
    for (let r = 0; r < c.rules.length; r++) if (sc.stamp[r] !== sc.gen) v.resume[r] = Math.max(v.resume[r]!, v.limit);
    v.resume[c.rules.length] = Math.max(v.resume[c.rules.length]!, v.limit);
  }
}

/** A masked region: the union of overlapping spans, labelled by its first span's rule. */
export interface Group {
  readonly start: number;
  readonly end: number;
  readonly rule: number;
  readonly truncated: boolean;
}

/** Sorts spans and merges strictly overlapping ones (touching spans stay separate groups). */
export function mergeSpans(spans: RawSpan[]): Group[] {
  if (spans.length === 0) return [];
  spans.sort((a, b) => a.start - b.start || b.end - a.end || a.rule - b.rule);
  const groups: Group[] = [];
  let cur = { ...spans[0]! };
  for (let i = 1; i < spans.length; i++) {
    const s = spans[i]!;
    if (s.start < cur.end) {
      if (s.end > cur.end) cur.end = s.end;
      cur.truncated ||= s.truncated;
    } else {
      groups.push(cur);
      cur = { ...s };
    }
  }
  groups.push(cur);
  return groups;
}
