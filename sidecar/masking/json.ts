// JSON masking: one iterative pass over the tokens; strings are decoded, masked and re-encoded in place.
//
// Numbers, literals, whitespace and key order are kept byte for byte (no JSON.parse round trip, so
// big integers and formatting survive). Field rules match a value's key or its dotted key path and
// mask it whole (a container under such a key: every leaf). Nesting depth costs an array slot, not
// a stack frame, so 100k levels are fine. Anything that is not valid JSON falls back to text masking.
import type { FindingCounts, MaskResult } from './types.ts';
import { maskDecoded, type PlainMaskers } from './base64.ts';
import { maskBytes, maskString, unchanged } from './mask.ts';
import type { Compiled } from './options.ts';
import { replacementText } from './replace.ts';

/** Key paths are built from at most this many innermost keys (deeper ones match by key name only). */
const MAX_PATH_SEGMENTS = 32;
/** Numbers with fewer digits hold no card, phone or id number. */
const MIN_NUMBER_DIGITS = 7;
const STRING_BODY = /(?:[^"\\]|\\.)*"/y;
const NUMBER = /-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?/y;
const WS = /[ \t\r\n]*/y;

class InvalidJson extends Error {}

interface Frame {
  readonly array: boolean;
  index: number;
  key: string | undefined;
  /** Field rule id masking everything inside, if the container's own key matched. */
  readonly maskedBy: string | undefined;
}

interface State {
  readonly c: Compiled;
  readonly text: string;
  readonly depth: number;
  readonly parts: string[];
  readonly findings: Record<string, number>;
  readonly stack: Frame[];
  readonly pathRules: boolean;
  at: number; // text copied to parts up to here
}

function add(findings: Record<string, number>, more: FindingCounts): void {
  for (const [k, v] of Object.entries(more)) findings[k] = (findings[k] ?? 0) + v;
}

function replaceToken(st: State, start: number, end: number, json: string): void {
  st.parts.push(st.text.slice(st.at, start), json);
  st.at = end;
}

function currentPath(st: State): string | undefined {
  if (!st.pathRules) return undefined;
  const segs: string[] = [];
  for (let i = Math.max(0, st.stack.length - MAX_PATH_SEGMENTS); i < st.stack.length; i++) {
    const f = st.stack[i]!;
    segs.push(f.array ? String(f.index) : (f.key ?? ''));
  }
  return segs.join('.');
}

/** Field rule for the value about to be read at the top of the stack. */
function fieldRuleHere(st: State): string | undefined {
  const top = st.stack[st.stack.length - 1];
  if (top === undefined) return undefined;
  if (top.maskedBy !== undefined) return top.maskedBy;
  if (st.c.fields.empty) return undefined;
  const name = top.array ? parentKey(st) : top.key;
  if (name === undefined) return undefined;
  return st.c.fields.match(name, currentPath(st));
}

/** For an array element, its key is the array's own key (`"tokens": ["a", "b"]`). */
function parentKey(st: State): string | undefined {
  const parent = st.stack[st.stack.length - 2];
  return parent?.array === false ? parent.key : undefined;
}

function readString(st: State, i: number): { end: number; value: string; raw: boolean } {
  // Most strings have no escape: the next quote ends them (the regex below agrees when no backslash precedes it).
  const q = st.text.indexOf('"', i + 1);
  if (q >= 0) {
    const plainInner = st.text.slice(i + 1, q);
    if (!plainInner.includes('\\')) return { end: q + 1, value: plainInner, raw: true };
  }
  STRING_BODY.lastIndex = i + 1;
  if (STRING_BODY.exec(st.text) === null) throw new InvalidJson('unterminated string');
  const end = STRING_BODY.lastIndex;
  const inner = st.text.slice(i + 1, end - 1);
  if (!inner.includes('\\')) return { end, value: inner, raw: true };
  try {
    return { end, value: JSON.parse(st.text.slice(i, end)) as string, raw: false };
  } catch {
    throw new InvalidJson('bad escape');
  }
}

const plain: PlainMaskers = { maskJson: (c, t, d) => maskJsonWith(c, t, d), maskBytes };

function maskStringValue(st: State, value: string, field: string | undefined, name: string | undefined): MaskResult<string> {
  const { c } = st;
  if (field !== undefined) {
    if (value.length === 0) return unchanged(value);
    return { value: replacementText(c.replacementFor(field), field, value, c.hmacKey, false), changed: true, findings: { [field]: 1 } };
  }
  if (c.decodeBase64InJson) {
    // The value is scanned as it is too: a token can look like base64 of some text.
    const b = maskDecoded(c, value, name, st.depth, plain);
    if (b?.changed === true) return b;
  }
  return maskString(c, value);
}

function onString(st: State, i: number, isKey: boolean): number {
  const { end, value } = readString(st, i);
  const top = st.stack[st.stack.length - 1];
  if (isKey) {
    if (top !== undefined) top.key = value;
    const r = maskString(st.c, value);
    if (r.changed) {
      replaceToken(st, i, end, JSON.stringify(r.value));
      add(st.findings, r.findings);
    }
    return end;
  }
  const name = top === undefined ? undefined : top.array ? parentKey(st) : top.key;
  const r = maskStringValue(st, value, fieldRuleHere(st), name);
  if (r.changed) {
    replaceToken(st, i, end, JSON.stringify(r.value));
    add(st.findings, r.findings);
  }
  return end;
}

function onNumber(st: State, i: number): number {
  NUMBER.lastIndex = i;
  if (NUMBER.exec(st.text) === null) throw new InvalidJson('bad number');
  const end = NUMBER.lastIndex;
  const field = fieldRuleHere(st);
  const raw = st.text.slice(i, end);
  if (field !== undefined) {
    // A masked number becomes a string: hiding the value outranks keeping its type.
    replaceToken(st, i, end, JSON.stringify(replacementText(st.c.replacementFor(field), field, raw, st.c.hmacKey, false)));
    add(st.findings, { [field]: 1 });
    return end;
  }
  if (end - i >= MIN_NUMBER_DIGITS) {
    const r = maskString(st.c, raw);
    if (r.changed) {
      replaceToken(st, i, end, JSON.stringify(r.value));
      add(st.findings, r.findings);
    }
  }
  return end;
}

function literal(st: State, i: number): number {
  for (const w of ['true', 'false', 'null']) if (st.text.startsWith(w, i)) return i + w.length;
  throw new InvalidJson('unexpected token');
}

function skipWs(text: string, i: number): number {
  // Compact JSON has no whitespace between tokens: test one character before running the regex.
  const c = text.charCodeAt(i);
  if (c !== 0x20 && c !== 0x09 && c !== 0x0a && c !== 0x0d) return i;
  WS.lastIndex = i;
  WS.exec(text);
  return WS.lastIndex;
}

function openContainer(st: State, array: boolean): void {
  const maskedBy = fieldRuleHere(st);
  st.stack.push({ array, index: 0, key: undefined, maskedBy });
}

/** Reads one value starting at i (a container only opens; its end is handled by the loop). */
function onValue(st: State, i: number): number {
  const ch = st.text.charCodeAt(i);
  if (ch === 0x22) return onString(st, i, false);
  if (ch === 0x7b || ch === 0x5b) {
    openContainer(st, ch === 0x5b);
    return i + 1;
  }
  if (ch === 0x2d || (ch >= 0x30 && ch <= 0x39)) return onNumber(st, i);
  return literal(st, i);
}

/** After a value inside a container: `,` continues, the closer pops. Returns the new position and whether a value follows. */
function afterValue(st: State, start: number): { pos: number; expectValue: boolean; expectKey: boolean } {
  let i = start;
  // Closers pop in a loop, not by recursion: `]]]]…` 100k deep must not grow the call stack.
  for (;;) {
    const top = st.stack[st.stack.length - 1];
    if (top === undefined) return { pos: i, expectValue: false, expectKey: false };
    const ch = st.text.charCodeAt(i);
    if (ch === 0x2c) {
      if (top.array) top.index++;
      return { pos: i + 1, expectValue: top.array, expectKey: !top.array };
    }
    if ((top.array && ch === 0x5d) || (!top.array && ch === 0x7d)) {
      st.stack.pop();
      i = skipWs(st.text, i + 1);
      continue;
    }
    throw new InvalidJson('expected , or closer');
  }
}

interface Cursor {
  pos: number;
  expectValue: boolean;
  expectKey: boolean;
}

/** In an object, where a key (or the closer of an empty object) is due. */
function onKeyPosition(st: State, cur: Cursor): void {
  const { text } = st;
  const ch = text.charCodeAt(cur.pos);
  const top = st.stack[st.stack.length - 1]!;
  if (ch === 0x7d && top.index === 0 && top.key === undefined) {
    st.stack.pop();
    Object.assign(cur, afterValue(st, skipWs(text, cur.pos + 1)));
    return;
  }
  if (ch !== 0x22) throw new InvalidJson('expected key');
  let i = skipWs(text, onString(st, cur.pos, true));
  if (text.charCodeAt(i) !== 0x3a) throw new InvalidJson('expected :');
  i = skipWs(text, i + 1);
  cur.pos = i;
  cur.expectKey = false;
  cur.expectValue = true;
}

/** Where a value is due: read it; a container only opens (an empty array closes at once). */
function onValuePosition(st: State, cur: Cursor): void {
  const { text } = st;
  const before = st.stack.length;
  const i = skipWs(text, onValue(st, cur.pos));
  if (st.stack.length <= before) {
    Object.assign(cur, afterValue(st, i));
    return;
  }
  const array = st.stack[st.stack.length - 1]!.array;
  if (array && text.charCodeAt(i) === 0x5d) {
    st.stack.pop();
    Object.assign(cur, afterValue(st, skipWs(text, i + 1)));
    return;
  }
  cur.pos = i;
  cur.expectKey = !array;
  cur.expectValue = array;
}

function walk(st: State): void {
  const { text } = st;
  const cur: Cursor = { pos: skipWs(text, 0), expectValue: true, expectKey: false };
  let started = false;
  while (cur.pos < text.length || cur.expectValue || cur.expectKey) {
    if (cur.pos >= text.length) throw new InvalidJson('unexpected end');
    if (cur.expectKey) onKeyPosition(st, cur);
    else {
      if (!cur.expectValue || (started && st.stack.length === 0)) throw new InvalidJson('trailing data');
      started = true;
      onValuePosition(st, cur);
    }
    cur.pos = skipWs(text, cur.pos);
  }
}

/** Shortest base64 value the walk decodes (base64.ts MIN_BASE64_LENGTH): a run this long sends the document to the walk. */
const BASE64_WALK_RUN = 16;
/** The prefilter reports base64 runs shorter than BASE64_WALK_RUN when the text base64 rule is on (mask.ts). */
const BASE64_TEXT_RULE = 'base64-encoded-secret';

/** Base64 alphabet (standard and URL) as a byte table. */
const B64_CHAR = new Uint8Array(256);
for (const ch of 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/_-') B64_CHAR[ch.charCodeAt(0)] = 1;

interface Gate {
  /** The gate applies: no field rules and no keywordless rules. */
  readonly applies: boolean;
  /** A base64 run the walk would decode is not already a prefilter hit: count runs here. */
  readonly countRuns: boolean;
}

const gates = new WeakMap<Compiled, Gate>();

function gateOf(c: Compiled): Gate {
  let g = gates.get(c);
  if (g === undefined) {
    g = { applies: c.fields.empty && c.keywordlessRules.length === 0, countRuns: c.decodeBase64InJson && !c.rules.some((r) => r.id === BASE64_TEXT_RULE) };
    gates.set(c, g);
  }
  return g;
}

function hasBase64Run(text: string): boolean {
  let run = 0;
  for (let i = 0; i < text.length; i++) {
    const ch = text.charCodeAt(i);
    run = ch < 256 && B64_CHAR[ch] === 1 ? run + 1 : 0;
    if (run >= BASE64_WALK_RUN) return true;
  }
  return false;
}

/** Documents longer than twice this are probed on their first slice before the whole pass: a keyword there sends them to the walk at once. */
const GATE_PROBE = 8192;

/**
 * Proves that the walk would change nothing, with one prefilter pass instead of one masking call
 * per token (64 KiB: ~0.4 ms instead of ~1.8 ms). Only for masking without field rules and without
 * keywordless rules (the default detectors have some: cards, phones, IBANs; proving those absent
 * token by token needs a region pass and JSON.parse, measured to save ~13 % on a keyword-free
 * document and to cost ~40 % when a keyword turns up late, so those documents walk). Sound because,
 * with no backslash (no escapes: every token's value is its raw text):
 * - every rule needs a keyword, and every keyword inside a key, string or number is a keyword of
 *   the whole text (a probe of the first 8 KiB first, so an early keyword costs one slice);
 * - literal lists (the credential) are prefilter keywords too;
 * - a base64 value the walk would decode is a run of at least 16 base64 characters (a prefilter hit
 *   when the text base64 rule is on, counted here otherwise);
 * - invalid JSON is masked as one text, where the same keyword argument holds.
 */
export function nothingToMask(c: Compiled, text: string): boolean {
  const g = gateOf(c);
  if (!g.applies || text.includes('\\')) return false;
  if (text.length > 2 * GATE_PROBE && c.prefilter.scanText(text.slice(0, GATE_PROBE)).count > 0) return false;
  const hits = c.prefilter.scanText(text);
  if (hits.count > 0 || (c.decodeEscapes && hits.escapes)) return false;
  return !(g.countRuns && hasBase64Run(text));
}

/** Masks a JSON document; invalid JSON is masked as text instead (never passed through). */
export function maskJsonWith(c: Compiled, text: string, depth = 0): MaskResult<string> {
  if (nothingToMask(c, text)) return unchanged(text);
  return walkJson(c, text, depth);
}

/** The token walk itself (exported for the gate's equivalence test). */
export function walkJson(c: Compiled, text: string, depth = 0): MaskResult<string> {
  const st: State = { c, text, depth, parts: [], findings: {}, stack: [], pathRules: true, at: 0 };
  try {
    walk(st);
  } catch (e) {
    if (e instanceof InvalidJson) return maskString(c, text);
    throw e;
  }
  if (st.parts.length === 0) return unchanged(text);
  st.parts.push(text.slice(st.at));
  return { value: st.parts.join(''), changed: true, findings: st.findings };
}

/** maskBase64Value: base64 plaintext masked and re-encoded; a value that is not base64 text is masked as text. */
export function maskBase64With(c: Compiled, b64: string, fieldName: string | undefined): MaskResult<string> {
  const r = maskDecoded(c, b64.trim(), fieldName, 0, plain);
  if (r?.changed === true) return r;
  return maskString(c, b64);
}
