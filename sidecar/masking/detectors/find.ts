// Reference semantics of one detector on one text: keywords, then the regex, then group `secret`, then validate.
import type { Detector, Rng } from '../types.ts';

export interface Span {
  readonly start: number;
  readonly end: number;
}

// Patterns without the `d` flag get a clone that has it, so the `secret` group's offsets are exact.
const withIndices = new WeakMap<RegExp, RegExp>();

function indexedPattern(p: RegExp): RegExp {
  if (p.hasIndices) return p;
  let clone = withIndices.get(p);
  if (clone === undefined) {
    clone = new RegExp(p.source, p.flags.includes('d') ? p.flags : p.flags + 'd');
    withIndices.set(p, clone);
  }
  return clone;
}

/** True when the text holds one of the detector's keywords (case-insensitive), or it has none. */
export function keywordsMatch(d: Detector, text: string): boolean {
  if (d.keywords.length === 0) return true;
  const lower = text.toLowerCase();
  return d.keywords.some((k) => lower.includes(k));
}

/** Spans the detector would mask in `text`: the `secret` group when the pattern has one, else the whole match. */
export function findWithDetector(d: Detector, text: string): Span[] {
  if (!keywordsMatch(d, text)) return [];
  const re = indexedPattern(d.pattern);
  const spans: Span[] = [];
  re.lastIndex = 0;
  for (let m = re.exec(text); m !== null; m = re.exec(text)) {
    if (m[0].length === 0) re.lastIndex++;
    const range = m.indices?.groups?.['secret'] ?? m.indices?.[0];
    if (range === undefined) continue;
    const [start, end] = range;
    if (end <= start) continue;
    if (d.validate !== undefined && !d.validate(text.slice(start, end))) continue;
    spans.push({ start, end });
  }
  re.lastIndex = 0;
  return spans;
}

/**
 * One generated sample with its secret. Convention: `generate()` returns a snippet the detector
 * finds on its own; for prefixed formats that is the secret itself, for context-only detectors
 * (those with a `secret` group) it is `key = value` and the secret is the `secret` span.
 */
export function generateSample(d: Detector, rng: Rng): { text: string; secret: string } | undefined {
  if (d.generate === undefined) return undefined;
  const text = d.generate(rng);
  const span = findWithDetector(d, text)[0];
  if (span === undefined) return { text, secret: text };
  return { text, secret: text.slice(span.start, span.end) };
}
