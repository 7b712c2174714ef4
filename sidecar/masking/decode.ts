// Decoded views of a text: JSON string escapes and percent-encoding undone, with a map back to the raw offsets.
//
// Detectors run on the raw text and, when it holds escapes, also on this view; spans found in the
// view are mapped back to raw offsets, so a PEM key written as `...\nMIIE...` inside a JSON string
// or a password written `p%40ss` in a URL is masked in place and the carrier stays valid.

/** A decoded text and, for each of its code units, the raw offset it came from (plus one end entry). */
export interface DecodedView {
  readonly text: string;
  /** `map[i]` = raw offset of view unit i; `map[text.length]` = raw length. Monotonic. */
  readonly map: Int32Array;
}

// Only sequences that decode to something else: JSON's escapes and %XX. `\x` with another x stays raw.
const HAS_ESCAPE = /\\[nrtbf"\\/]|\\u[0-9A-Fa-f]{4}|%[0-9A-Fa-f]{2}/;

/** True when the text has a JSON escape or a percent-escape worth decoding. */
export function hasEscapes(text: string): boolean {
  return HAS_ESCAPE.test(text);
}

const SIMPLE: Readonly<Record<string, string>> = { n: '\n', r: '\r', t: '\t', b: '\b', f: '\f', '"': '"', '\\': '\\', '/': '/' };

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

/** Length and decoded unit of the escape at `i`, or 0 when `text[i]` starts none. */
function escapeAt(text: string, i: number): { len: number; unit: string } | undefined {
  const c = text.charCodeAt(i);
  if (c === 92 /* \ */) {
    const e = text.charAt(i + 1);
    const simple = SIMPLE[e];
    if (simple !== undefined) return { len: 2, unit: simple };
    if (e === 'u' && i + 6 <= text.length) {
      const hi = hex2(text, i + 2);
      const lo = hex2(text, i + 4);
      if (hi >= 0 && lo >= 0) return { len: 6, unit: String.fromCharCode(hi * 256 + lo) };
    }
    return undefined;
  }
  if (c === 37 /* % */ && i + 3 <= text.length) {
    const v = hex2(text, i + 1);
    if (v >= 0) return { len: 3, unit: String.fromCharCode(v) };
  }
  return undefined;
}

/**
 * Decodes from a position where decoding is in sync (the text start, or an offset taken from a
 * previous view's map). Linear: one pass, escapes are at most six units.
 */
export function decodeView(text: string): DecodedView {
  const n = text.length;
  const map = new Int32Array(n + 1);
  const parts: string[] = [];
  let out = 0;
  let runStart = 0;
  let i = 0;
  // Escapes are sparse: jump between backslashes and percent signs with indexOf (native) instead
  // of testing every unit; each next position is searched again only once passed (linear).
  let nextBs = text.indexOf('\\');
  let nextPct = text.indexOf('%');
  while (i < n) {
    if (nextBs >= 0 && nextBs < i) nextBs = text.indexOf('\\', i);
    if (nextPct >= 0 && nextPct < i) nextPct = text.indexOf('%', i);
    const at = Math.min(nextBs < 0 ? n : nextBs, nextPct < 0 ? n : nextPct);
    while (i < at) map[out++] = i++;
    if (i >= n) break;
    const esc = escapeAt(text, i);
    if (esc === undefined) {
      map[out++] = i++;
      continue;
    }
    if (i > runStart) parts.push(text.slice(runStart, i));
    parts.push(esc.unit);
    map[out++] = i;
    i += esc.len;
    runStart = i;
  }
  if (n > runStart) parts.push(text.slice(runStart, n));
  map[out] = n;
  return { text: parts.join(''), map: map.subarray(0, out + 1) };
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
