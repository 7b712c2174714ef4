// Whole-value masking of strings and bytes: scan the raw text and its decoded view, merge, replace.
import type { FindingCounts, MaskResult } from './types.ts';
import { decodeView, gluePoints, hasEscapes } from './decode.ts';
import { compileOptions, type Compiled, type MaskerOptions, type Rule } from './options.ts';
import type { Detector } from './types.ts';
import { decodeBase64, looksLikeText, MAX_DECODE_DEPTH } from './base64.ts';
import { compilePrefilter } from './prefilter.ts';
import type { KeywordHits } from './prefilter.ts';
import { countFindings, groupReplacement } from './replace.ts';
import { mergeSpans, scanView, type Group, type RawSpan } from './scan.ts';
import { SHAPE_ALL, SHAPE_MAX_TEXT, shapesOfBytes, shapesOfText } from './shapes.ts';

/** Texts shorter than this hold no detector's secret (literal keyword lists still apply). */
export const MIN_SCAN_LENGTH = 6;

const NONE: FindingCounts = Object.freeze({});

export function unchanged<T>(value: T): MaskResult<T> {
  return { value, changed: false, findings: NONE };
}

/** Spans of one complete text (`hits` are the raw text's keyword hits, `shapes` its digit-shape gates if known). */
export function findGroups(c: Compiled, text: string, hits: KeywordHits, shapes?: number): Group[] {
  const spans: RawSpan[] = [];
  const escapes = hits.escapes; // read before scanning: nested scans reuse the hits object
  const glue = c.decodeEscapes ? gluePoints(text, hits, c.prefilter.words, c.glue) : undefined;
  scanView(c, { text, map: undefined, hits, ended: true, limit: text.length, shapes: shapes !== undefined && shapes >= 0 ? shapes : undefined }, spans);
  if (glue !== undefined || (c.decodeEscapes && escapes && hasEscapes(text))) {
    const dv = decodeView(text, glue);
    const dhits = c.prefilter.scanText(dv.text);
    scanView(c, { text: dv.text, map: dv.map, hits: dhits, ended: true, limit: dv.text.length }, spans);
  }
  return mergeSpans(spans);
}

function skipScan(c: Compiled, length: number): boolean {
  return length < MIN_SCAN_LENGTH && (c.literalIds.length === 0 || length < 2);
}

/** True when a keyword hit enables a rule whose shortest match fits, or is a literal to mask. */
function keywordRuleRuns(c: Compiled, hits: KeywordHits, length: number): boolean {
  if (hits.count === 0) return false;
  for (let i = 0; i < hits.count; i++) {
    const k = hits.keywords[i]!;
    if (c.literalOf[k] !== undefined) return true;
    for (const r of c.rulesByKeyword[k]!) if ((c.rules[r]!.minMatch ?? 0) <= length) return true;
  }
  return false;
}

/** True when a keywordless rule passes its digit gate and (given `shapes`) its shape gate. */
function keywordlessRuns(c: Compiled, hits: KeywordHits, length: number, shapes: number): boolean {
  for (const r of c.keywordlessRules) {
    const rule = c.rules[r]!;
    const bit = rule.shape ?? 0;
    if (hits.digits >= rule.minDigits && length >= Math.max(rule.minTextLength, rule.minMatch ?? 0) && (bit === 0 || (shapes & bit) !== 0)) return true;
  }
  return false;
}

/** Returned by gatesOf when a keyword or an escape needs the scan anyway (the scanner computes shapes if it needs them). */
const NOT_COMPUTED = -1;
/** Returned by gatesOf when no rule can match: the caller returns the text untouched. */
const NOTHING = -2;

/** Digit-shape gates (>= 0) of a text (bytes or string) that only keywordless rules could touch, or one of the two above. */
function gatesOf(c: Compiled, hits: KeywordHits, length: number, source: Uint8Array | string): number {
  if ((c.decodeEscapes && hits.escapes) || keywordRuleRuns(c, hits, length)) return NOT_COMPUTED;
  if (hits.digits < c.keywordlessMinDigits || length < c.keywordlessMinLength || !keywordlessRuns(c, hits, length, SHAPE_ALL)) return NOTHING;
  if (length > SHAPE_MAX_TEXT) return NOT_COMPUTED; // long texts: the regexes themselves are the cheaper test
  const s = typeof source === 'string' ? shapesOfText(source) : shapesOfBytes(source);
  return keywordlessRuns(c, hits, length, s) ? s : NOTHING;
}

export function maskString(c: Compiled, text: string): MaskResult<string> {
  if (skipScan(c, text.length)) return unchanged(text);
  const hits = c.prefilter.scanText(text);
  // The common case on the hot path: no keyword, no digit shape, no escapes: untouched, nothing allocated.
  const shapes = gatesOf(c, hits, text.length, text);
  if (shapes === NOTHING) return unchanged(text);
  const groups = findGroups(c, text, hits, shapes);
  if (groups.length === 0) return unchanged(text);
  const parts: string[] = [];
  let at = 0;
  for (const g of groups) {
    parts.push(text.slice(at, g.start), groupReplacement(c, g, text.slice(g.start, g.end)));
    at = g.end;
  }
  parts.push(text.slice(at));
  return { value: parts.join(''), changed: true, findings: countFindings(c, groups) };
}

/** Bytes are scanned as latin1 (one char per byte): offsets are byte offsets and invalid UTF-8 is harmless. */
// Buffer.prototype.latin1Slice skips toString's argument checks (a third of the cost on short cells).
const latin1Slice = (Buffer.prototype as unknown as { latin1Slice?: (this: Buffer, s: number, e: number) => string }).latin1Slice;
export function latin1(buf: Buffer): string {
  return latin1Slice !== undefined ? latin1Slice.call(buf, 0, buf.length) : buf.toString('latin1');
}

export function maskBytes(c: Compiled, buf: Buffer): MaskResult<Buffer> {
  if (skipScan(c, buf.length)) return unchanged(buf);
  const hits = c.prefilter.scanBytes(buf);
  // Decoding bytes to a string is the main cost on short cells: skip it when no rule can run
  // (no keyword, no escape, and no digit shape a keywordless regex needs, checked on the bytes).
  const shapes = gatesOf(c, hits, buf.length, buf);
  if (shapes === NOTHING) return unchanged(buf);
  const text = latin1(buf);
  const groups = findGroups(c, text, hits, shapes);
  if (groups.length === 0) return unchanged(buf);
  const parts: Buffer[] = [];
  let at = 0;
  for (const g of groups) {
    parts.push(buf.subarray(at, g.start), Buffer.from(groupReplacement(c, g, buf.toString('utf8', g.start, g.end)), 'utf8'));
    at = g.end;
  }
  parts.push(buf.subarray(at));
  return { value: Buffer.concat(parts), changed: true, findings: countFindings(c, groups) };
}


export const BASE64_RULE_ID = 'base64-encoded-secret';
/** Base64-character run length that triggers the base64 rule (the shortest run its regex takes). */
const BASE64_TRIGGER = 14;
/** Base64 runs worth decoding in text: 16 to 4096 characters (12 to 3072 bytes of plaintext). */
const BASE64_RUN = /(?<![A-Za-z0-9+/_-])(?:[A-Za-z0-9+/]{14,4096}={0,2}|[A-Za-z0-9_-]{16,4096})(?![A-Za-z0-9+/=_-])/dg;
/** Longest line of a wrapped base64 block (MIME wraps at 76, PEM and openssl at 64). */
const WRAP_LINE = 100;
/**
 * A base64 block wrapped in lines (MIME, `base64` and openssl output, `\n` or `\r\n`): its lines
 * decode only together. It starts where no base64 line ends just before it, so a block is tried
 * once (from its first line), not from each of its lines; `lines` continuation lines at most,
 * chosen so that the longest block fits the stream window.
 */
function wrappedBase64(lines: number): RegExp {
  const b = '[A-Za-z0-9+/]';
  return new RegExp(`(?<![A-Za-z0-9+/=_-]\\r?\\n)(?<![A-Za-z0-9+/_-])${b}{16,${WRAP_LINE}}(?:\\r?\\n${b}{1,${WRAP_LINE}}){1,${lines}}={0,2}(?![A-Za-z0-9+/=_-])`, 'dg');
}
/** Hex text of bytes (even length), optionally after `x` (PostgreSQL bytea `\\x…`, whose backslash ends the run before it) or `0x`. */
const HEX_RUN = /^(?:0?x)?((?:[0-9a-f]{2})+|(?:[0-9A-F]{2})+)$/;
let nesting = 0;

/** Bytes a run in text stands for: base64 (wrapped lines joined), or hex. Undefined: neither decodes to text. */
function runPlaintext(run: string): Buffer | undefined {
  const flat = run.includes('\n') ? run.replace(/\r?\n/g, '') : run;
  const dec = decodeBase64(flat);
  if (dec !== undefined && looksLikeText(dec.bytes)) return dec.bytes;
  const hex = HEX_RUN.exec(run);
  if (hex !== null && hex[1]!.length >= 24) {
    const bytes = Buffer.from(hex[1]!, 'hex');
    if (looksLikeText(bytes)) return bytes;
  }
  return undefined;
}

/**
 * A base64 or hex run in text holds a secret when its plaintext is text that masking would change.
 * Nested carriers (base64 of base64, hex of base64) are followed MAX_DECODE_DEPTH deep.
 */
function base64HoldsSecret(c: Compiled, run: string): boolean {
  if (nesting >= MAX_DECODE_DEPTH - 1) return false;
  const bytes = runPlaintext(run);
  if (bytes === undefined) return false;
  nesting++;
  try {
    return maskBytes(c, bytes).changed;
  } finally {
    nesting--;
  }
}

const BYTEA_RUN = /^(0?x)((?:[0-9a-fA-F]{2})+)$/;

/**
 * A hex run after `x` or `0x` (PostgreSQL bytea output `\\x…`, also in COPY text) is written back
 * as the hex of its masked bytes, exactly as a whole bytea value is (engine.ts), so a stream of it
 * gives what masking the value whole gives and the column stays valid bytea.
 */
function byteaRewrite(c: Compiled, region: string): string | undefined {
  const m = BYTEA_RUN.exec(region);
  if (m === null) return undefined;
  const r = maskBytes(c, Buffer.from(m[2]!, 'hex'));
  return r.changed ? m[1]! + r.value.toString('hex') : undefined;
}

/** A run cut short by the end of the data seen so far: its complete head must decode to text (base64 or hex). */
function partialRunIsText(run: string): boolean {
  const flat = run.includes('\n') ? run.replace(/\r?\n/g, '') : run;
  const head = flat.slice(0, flat.length - (flat.length % 4));
  const dec = decodeBase64(head);
  if (dec !== undefined && looksLikeText(dec.bytes.subarray(0, dec.bytes.length - 3))) return true;
  const hex = /^(?:0?x)?([0-9a-fA-F]*)$/.exec(run);
  if (hex === null) return false;
  const h = hex[1]!.slice(0, hex[1]!.length & ~1);
  // The last complete bytes may be half a UTF-8 sequence: drop three.
  return looksLikeText(Buffer.from(h, 'hex').subarray(0, Math.max(0, h.length / 2 - 3)));
}

/** Compiles options and, unless turned off, adds the rule that decodes base64 runs in text and masks those hiding a secret. */
export function compile(opts: MaskerOptions, table: readonly Detector[]): Compiled {
  const base = compileOptions(opts, table);
  if (opts.decodeBase64InText === false) return base;
  const holder: { c?: Compiled } = {};
  const index = base.rules.length;
  // A run of 14 base64 characters is a prefilter hit of one extra keyword: the rule scans only there.
  const runKeyword = base.prefilter.words.length;
  const rule: Rule = {
    index,
    id: BASE64_RULE_ID,
    category: 'secret',
    re: BASE64_RUN,
    indices: true,
    validate: (run) => holder.c !== undefined && base64HoldsSecret(holder.c, run),
    keywords: [runKeyword],
    minDigits: 0,
    minTextLength: 16,
    minMatch: 16,
    startsAtKeyword: true,
    validatePartial: partialRunIsText,
    rewrite: (region) => (holder.c === undefined ? undefined : byteaRewrite(holder.c, region)),
    maxLength: 4100,
  };
  const window = Math.max(base.window, Math.min(4100, base.cap));
  // Wrapped blocks: as many lines as fit the stream window, so a stream sees every block whole.
  const lines = Math.floor(window / (WRAP_LINE + 2)) - 1;
  const wrapped: Rule = { ...rule, index: index + 1, re: wrappedBase64(lines), minMatch: 18, maxLength: (lines + 1) * (WRAP_LINE + 2) };
  const c: Compiled = {
    ...base,
    rules: [...base.rules, rule, wrapped],
    prefilter: compilePrefilter(base.prefilter.words, BASE64_TRIGGER),
    rulesByKeyword: [...base.rulesByKeyword, [index, index + 1]],
    literalOf: [...base.literalOf, undefined],
    maxKeywordLength: Math.max(base.maxKeywordLength, BASE64_TRIGGER),
    window,
  };
  holder.c = c;
  return c;
}
