// Whole-value masking of strings and bytes: scan the raw text and its decoded view, merge, replace.
import type { FindingCounts, MaskResult } from './types.ts';
import { decodeView, hasEscapes } from './decode.ts';
import type { Compiled } from './options.ts';
import type { KeywordHits } from './prefilter.ts';
import { countFindings, groupReplacement } from './replace.ts';
import { mergeSpans, scanView, type Group, type RawSpan } from './scan.ts';

/** Texts shorter than this hold no detector's secret (literal keyword lists still apply). */
export const MIN_SCAN_LENGTH = 6;

const NONE: FindingCounts = Object.freeze({});

export function unchanged<T>(value: T): MaskResult<T> {
  return { value, changed: false, findings: NONE };
}

/** Spans of one complete text (`hits` are the raw text's keyword hits). */
export function findGroups(c: Compiled, text: string, hits: KeywordHits): Group[] {
  const spans: RawSpan[] = [];
  const slots = c.rules.length + 1;
  scanView(c, { text, map: undefined, hits, ended: true, limit: text.length, resume: new Int32Array(slots) }, spans);
  if (c.decodeEscapes && hasEscapes(text)) {
    const dv = decodeView(text);
    const dhits = c.prefilter.scanText(dv.text);
    scanView(c, { text: dv.text, map: dv.map, hits: dhits, ended: true, limit: dv.text.length, resume: new Int32Array(slots) }, spans);
  }
  return mergeSpans(spans);
}

function skipScan(c: Compiled, length: number): boolean {
  return length < MIN_SCAN_LENGTH && (c.literalIds.length === 0 || length < 2);
}

export function maskString(c: Compiled, text: string): MaskResult<string> {
  if (skipScan(c, text.length)) return unchanged(text);
  const groups = findGroups(c, text, c.prefilter.scanText(text));
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
export function maskBytes(c: Compiled, buf: Buffer): MaskResult<Buffer> {
  if (skipScan(c, buf.length)) return unchanged(buf);
  const hits = c.prefilter.scanBytes(buf);
  const text = buf.toString('latin1', 0, buf.length);
  const groups = findGroups(c, text, hits);
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

