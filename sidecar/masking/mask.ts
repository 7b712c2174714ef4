// Whole-value masking of strings and bytes: scan the raw text and its decoded view, merge, replace.
import type { FindingCounts, MaskResult } from './types.ts';
import { decodeView, hasEscapes } from './decode.ts';
import { compileOptions, type Compiled, type MaskerOptions, type Rule } from './options.ts';
import type { Detector } from './types.ts';
import { decodeBase64, looksLikeText } from './base64.ts';
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
  scanView(c, { text, map: undefined, hits, ended: true, limit: text.length, shapes: shapes !== undefined && shapes >= 0 ? shapes : undefined }, spans);
  if (c.decodeEscapes && escapes && hasEscapes(text)) {
    const dv = decodeView(text);
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
let nesting = 0;

/** A base64 run in text holds a secret when its plaintext is text that masking would change. */
function base64HoldsSecret(c: Compiled, run: string): boolean {
  if (nesting > 0) return false; // one level: base64 inside base64 is followed by maskJson/maskBase64Value only
  const dec = decodeBase64(run);
  if (dec === undefined || !looksLikeText(dec.bytes)) return false;
  nesting++;
  try {
    return maskBytes(c, dec.bytes).changed;
  } finally {
    nesting--;
  }
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
    validatePartial: (run) => {
      const head = run.slice(0, run.length - (run.length % 4));
      const dec = decodeBase64(head);
      return dec !== undefined && looksLikeText(dec.bytes.subarray(0, dec.bytes.length - 3));
    },
    maxLength: 4100,
  };
  const c: Compiled = {
    ...base,
    rules: [...base.rules, rule],
    prefilter: compilePrefilter(base.prefilter.words, BASE64_TRIGGER),
    rulesByKeyword: [...base.rulesByKeyword, [index]],
    literalOf: [...base.literalOf, undefined],
    maxKeywordLength: Math.max(base.maxKeywordLength, BASE64_TRIGGER),
    window: Math.max(base.window, Math.min(4100, base.cap)),
  };
  holder.c = c;
  return c;
}
