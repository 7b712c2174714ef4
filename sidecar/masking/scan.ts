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
  /** Per rule: view offset where its search resumes; updated to where it stopped. */
  readonly resume: Int32Array;
}

function activeRules(c: Compiled, hits: KeywordHits): Uint8Array {
  const active = new Uint8Array(c.rules.length);
  for (const r of c.keywordlessRules) if (hits.digits >= c.rules[r]!.minDigits) active[r] = 1;
  for (let i = 0; i < hits.count; i++) for (const r of c.rulesByKeyword[hits.keywords[i]!]!) active[r] = 1;
  return active;
}

/** First hit index whose end is >= pos (ends are non-decreasing). */
function firstHitEndingAtOrAfter(hits: KeywordHits, pos: number): number {
  let lo = 0;
  let hi = hits.count;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (hits.ends[mid]! < pos) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

function keywordNear(c: Compiled, rule: Rule, hits: KeywordHits, start: number, end: number): boolean {
  if (rule.keywords.length === 0) return true;
  const from = start - NEAR;
  const to = end + NEAR;
  const words = c.prefilter.words;
  for (let i = firstHitEndingAtOrAfter(hits, from); i < hits.count; i++) {
    const hEnd = hits.ends[i]!;
    const k = hits.keywords[i]!;
    const hStart = hEnd - words[k]!.length;
    if (hEnd - c.maxKeywordLength >= to) break; // ends are sorted: every later hit starts at or after `to`
    if (hStart < to && rule.keywords.includes(k)) return true;
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

function candidateOf(rule: Rule, m: NonNullable<ReturnType<Rule['re']['exec']>>): Candidate {
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

function scanRule(c: Compiled, rule: Rule, v: ViewScan, out: RawSpan[]): void {
  const { text, limit } = v;
  const re = rule.re;
  let pos = v.resume[rule.index]!;
  re.lastIndex = pos;
  for (;;) {
    if (pos >= limit || pos > text.length) break;
    re.lastIndex = pos;
    const m = re.exec(text);
    if (m === null) break;
    const cand = candidateOf(rule, m);
    if (cand.ms >= limit) break;
    const truncated = !v.ended && cand.me >= text.length;
    let accepted = cand.e > cand.s && keywordNear(c, rule, v.hits, cand.s, cand.e) && digitsAtLeast(text, cand.ms, cand.me, rule.minDigits);
    // A truncated candidate may fail a checksum only because its tail has not arrived: mask it.
    if (accepted && !truncated && rule.validate !== undefined) accepted = safeValidate(rule, text.slice(cand.s, cand.e));
    if (accepted) {
      out.push(toRaw(v, cand, rule.index, truncated));
      pos = Math.max(cand.me, cand.ms + 1);
    } else {
      pos = cand.me - cand.ms > rule.maxLength ? Math.max(cand.me, cand.ms + 1) : cand.ms + 1;
    }
  }
  // No match starts in [pos, limit) with the data seen: the rest can only start at `limit` or later.
  v.resume[rule.index] = Math.max(pos, limit);
  re.lastIndex = 0;
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
  for (let i = 0; i < v.hits.count; i++) {
    const k = v.hits.keywords[i]!;
    const list = c.literalOf[k];
    if (list === undefined) continue;
    const e = v.hits.ends[i]!;
    const s = e - words[k]!.length;
    if (s >= v.limit || s < (v.resume[c.rules.length] ?? 0)) continue;
    out.push(toRaw(v, { ms: s, s, e }, -1 - c.literalIds.indexOf(list), false));
  }
}

/** Scans one view with every active rule; appends raw spans to `out`. */
export function scanView(c: Compiled, v: ViewScan, out: RawSpan[]): void {
  const active = activeRules(c, v.hits);
  for (const rule of c.rules) {
    if (active[rule.index] === 1) scanRule(c, rule, v, out);
    else v.resume[rule.index] = Math.max(v.resume[rule.index]!, v.limit);
  }
  if (c.literalIds.length > 0) {
    literalSpans(c, v, out);
    v.resume[c.rules.length] = Math.max(v.resume[c.rules.length] ?? 0, v.limit);
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
