// Decoded views of a text: JSON string escapes and percent-encoding undone, with a map back to the raw offsets.
//
// Detectors run on the raw text and, when it holds escapes, also on this view; spans found in the
// view are mapped back to raw offsets, so a PEM key written as `...\nMIIE...` inside a JSON string
// or a password written `p%40ss` in a URL is masked in place and the carrier stays valid.
import type { KeywordHits } from './prefilter.ts';

/** A decoded text and, for each of its code units, the raw offset it came from (plus one end entry). */
export interface DecodedView {
  readonly text: string;
  /** `map[i]` = raw offset of view unit i; `map[text.length]` = raw length. Monotonic. */
  readonly map: Int32Array;
}

// Only sequences that decode to something else: JSON's escapes, %XX (and %25XX, encoded twice),
// octal `\ooo` (PostgreSQL bytea escape output), HTML character references, and characters that
// decode to nothing (NUL, as between the bytes of UTF-16 text, and zero-width characters, as UTF-16
// code units or as the latin1 view of their UTF-8 bytes). `\x` with another x stays raw.
const HAS_ESCAPE = /\\[nrtbf"\\/]|\\u[0-9A-Fa-f]{4}|\\[0-3][0-7]{2}|%[0-9A-Fa-f]{2}|&(?:#[0-9]{1,7}|#[xX][0-9A-Fa-f]{1,6}|quot|amp|lt|gt|apos);|[\0\u200b-\u200d\u2060\ufeff]|\xe2\x80[\x8b-\x8d]|\xe2\x81\xa0|\xef\xbb\xbf/;

/** Longest escape (`&#1114111;`, `&#x10FFFF;`): a stream keeps this much before a cut (stream.ts). */
export const MAX_ESCAPE_LENGTH = 10;

/** True when the text has a JSON escape or a percent-escape worth decoding. */
export function hasEscapes(text: string): boolean {
  return HAS_ESCAPE.test(text);
}

const SIMPLE: Readonly<Record<string, string>> = { n: '\n', r: '\r', t: '\t', b: '\b', f: '\f', '"': '"', '\\': '\\', '/': '/' };
const NAMED: Readonly<Record<string, string>> = { quot: '"', amp: '&', lt: '<', gt: '>', apos: "'" };
const ENTITY = /&(?:#([0-9]{1,7})|#[xX]([0-9A-Fa-f]{1,6})|(quot|amp|lt|gt|apos));/y;
/** Where an escape can start: the loop below jumps between these. */
const ESCAPE_START = /[\\%&\0\u200b-\u200d\u2060\ufeff\xe2\xef]/g;

function hexVal(c: number): number {
  if (c >= 48 && c <= 57) return c - 48;
  const l = c | 0x20;
  if (l >= 97 && l <= 102) return l - 87;
  return -1;
}

function hex2(text: string, i: number): number {
  const a = hexVal(text.charCodeAt(i));
  const b = hexVal(text.charCodeAt(i + 1));
  return a < 0 || b < 0 ? -1 : a * 16 + b;
}

function octal3(text: string, i: number): number {
  const a = text.charCodeAt(i) - 48;
  const b = text.charCodeAt(i + 1) - 48;
  const c = text.charCodeAt(i + 2) - 48;
  return a >= 0 && a <= 3 && b >= 0 && b <= 7 && c >= 0 && c <= 7 ? a * 64 + b * 8 + c : -1;
}

const DROP = { len: 1, unit: '' };
const DROP3 = { len: 3, unit: '' };

function entityAt(text: string, i: number): { len: number; unit: string } | undefined {
  ENTITY.lastIndex = i;
  const m = ENTITY.exec(text);
  if (m === null) return undefined;
  if (m[3] !== undefined) return { len: m[0].length, unit: NAMED[m[3]]! };
  const cp = m[1] !== undefined ? Number(m[1]) : parseInt(m[2]!, 16);
  return cp > 0x10ffff ? undefined : { len: m[0].length, unit: String.fromCodePoint(cp) };
}

function backslashAt(text: string, i: number): { len: number; unit: string } | undefined {
  const e = text.charAt(i + 1);
  const simple = SIMPLE[e];
  if (simple !== undefined) return { len: 2, unit: simple };
  if (e === 'u' && i + 6 <= text.length) {
    const hi = hex2(text, i + 2);
    const lo = hex2(text, i + 4);
    if (hi >= 0 && lo >= 0) return { len: 6, unit: String.fromCharCode(hi * 256 + lo) };
  }
  const o = octal3(text, i + 1);
  return o >= 0 ? { len: 4, unit: String.fromCharCode(o) } : undefined;
}

function percentAt(text: string, i: number): { len: number; unit: string } | undefined {
  if (i + 3 > text.length) return undefined;
  const v = hex2(text, i + 1);
  if (v === 0x25) {
    const w = hex2(text, i + 3);
    if (w >= 0) return { len: 5, unit: String.fromCharCode(w) }; // %2541: encoded twice
  }
  return v >= 0 ? { len: 3, unit: String.fromCharCode(v) } : undefined;
}

/** Characters that decode to nothing: NUL and zero-width ones, as code units or as the latin1 view of their UTF-8 bytes. */
function droppedAt(text: string, i: number, c: number): { len: number; unit: string } | undefined {
  if (c === 0 || (c >= 0x200b && c <= 0x200d) || c === 0x2060 || c === 0xfeff) return DROP;
  const c1 = text.charCodeAt(i + 1);
  const c2 = text.charCodeAt(i + 2);
  if (c === 0xe2 && ((c1 === 0x80 && c2 >= 0x8b && c2 <= 0x8d) || (c1 === 0x81 && c2 === 0xa0))) return DROP3;
  if (c === 0xef && c1 === 0xbb && c2 === 0xbf) return DROP3;
  return undefined;
}

/** Length and decoded units (possibly none) of the escape at `i`, or undefined when `text[i]` starts none. */
function escapeAt(text: string, i: number): { len: number; unit: string } | undefined {
  const c = text.charCodeAt(i);
  if (c === 92 /* \ */) return backslashAt(text, i);
  if (c === 37 /* % */) return percentAt(text, i);
  if (c === 38 /* & */) return entityAt(text, i);
  return droppedAt(text, i, c);
}

const NO_GLUE: readonly number[] = [];

/** The next character at or after `i` that can start an escape (the text length when none). */
function nextEscapeStart(text: string, i: number): number {
  ESCAPE_START.lastIndex = i;
  const next = ESCAPE_START.exec(text);
  return next === null ? text.length : next.index;
}

/**
 * Decodes from a position where decoding is in sync (the text start, or an offset taken from a
 * previous view's map). Linear: one pass, escapes are at most MAX_ESCAPE_LENGTH units.
 * `glue` (ascending raw offsets, see gluePoints) are where a distinctive token prefix is glued to
 * the token before it: the view has a space there (mapped to that offset), so each token of a
 * pasted pair (`sk_live_A…sk_live_B…`, `…xoxb-…xoxb-…`) ends and starts at a boundary.
 */
export function decodeView(text: string, glue: readonly number[] = NO_GLUE): DecodedView {
  const n = text.length;
  const gn = glue.length;
  const map = new Int32Array(n + 1 + gn);
  const parts: string[] = [];
  let out = 0;
  let runStart = 0;
  let i = 0;
  let g = 0;
  let nextEsc = -1; // the next character that can start an escape, at or after i (cached across glue points)
  // Escapes are sparse: jump between the characters that can start one with a native search
  // instead of testing every unit; each search starts past the previous one (linear).
  while (i < n) {
    if (nextEsc < i) nextEsc = nextEscapeStart(text, i);
    while (g < gn && glue[g]! < i) g++;
    const gp = g < gn ? glue[g]! : n;
    const at = Math.min(nextEsc, gp);
    while (i < at) map[out++] = i++;
    if (i >= n) break;
    if (i === gp) {
      g++;
      if (i > runStart) parts.push(text.slice(runStart, i));
      parts.push(' ');
      map[out++] = i;
      runStart = i;
      continue;
    }
    const esc = escapeAt(text, i);
    if (esc === undefined) {
      map[out++] = i++;
      continue;
    }
    if (i > runStart) parts.push(text.slice(runStart, i));
    parts.push(esc.unit);
    for (let k = 0; k < esc.unit.length; k++) map[out++] = i;
    i += esc.len;
    runStart = i;
  }
  if (n > runStart) parts.push(text.slice(runStart, n));
  map[out] = n;
  return { text: parts.join(''), map: map.subarray(0, out + 1) };
}

/** A token body character: a distinctive prefix right after one is glued to the token before it. */
function isTokenUnit(c: number): boolean {
  return (c >= 48 && c <= 57) || ((c | 0x20) >= 97 && (c | 0x20) <= 122) || c === 95 || c === 45;
}

/**
 * Raw offsets, ascending, where a keyword flagged in `glue` (a distinctive token prefix such as
 * `sk_live_`, `xoxb-`, `glpat-`) starts right after a token character; undefined when there is
 * none (the common case: one pass over the keyword hits, nothing allocated).
 */
export function gluePoints(text: string, hits: KeywordHits, words: readonly string[], glue: Uint8Array): number[] | undefined {
  let points: number[] | undefined;
  for (let h = 0; h < hits.count; h++) {
    const k = hits.keywords[h]!;
    if (glue[k] !== 1) continue;
    const start = hits.ends[h]! - words[k]!.length;
    if (start <= 0 || !isTokenUnit(text.charCodeAt(start - 1))) continue;
    (points ??= []).push(start);
  }
  if (points !== undefined && points.length > 1) {
    points.sort((a, b) => a - b);
    points = points.filter((p, j) => j === 0 || p !== points![j - 1]);
  }
  return points;
}

/** Undoes escapes in a short raw span (used to key HMAC tokens on the secret, not its spelling). */
export function decodeSpan(raw: string): string {
  return hasEscapes(raw) ? decodeView(raw).text : raw;
}

/** Smallest view index whose raw offset is >= `raw` (binary search on the monotonic map). */
export function viewIndexAtOrAfter(map: Int32Array, raw: number): number {
  let lo = 0;
  let hi = map.length - 1;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (map[mid]! < raw) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** Largest view index whose raw offset is <= `raw` (a position where decoding is in sync). */
export function viewIndexAtOrBefore(map: Int32Array, raw: number): number {
  const i = viewIndexAtOrAfter(map, raw);
  return map[i]! > raw && i > 0 ? i - 1 : i;
}
