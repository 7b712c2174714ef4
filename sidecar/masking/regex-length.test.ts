// minMatchLength / maxReadLength: bounds the engine skips short texts and stops stream rescans by, so neither may be beaten by a real match.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { maxReadLength, minMatchLength } from './regex-length.ts';
import { DETECTORS } from './detectors/index.ts';

describe('minMatchLength', () => {
  const cases: [string, number][] = [
    ['abc', 3],
    ['a|bc', 1],
    ['ghp_[A-Za-z0-9]{36}', 40],
    ['(?<![a-z])x(?=y)\\b', 1],
    ['(?:ab){2,5}c?d*e+', 5],
    ['(?<secret>[0-9]{4})-\\1', 5],
    ['\\u0041\\x41\\p{L}.', 4],
    ['a{,3}', 5], // not a quantifier: literal braces
    ['(?i:x)', 0], // unknown modifier: unsure, so 0
    ['[a-z', 0],
  ];
  for (const [src, want] of cases) it(`${src} → ${want}`, () => assert.equal(minMatchLength(src), want));

  it('never exceeds the length of a match of any detector on its own positives', () => {
    for (const d of DETECTORS) {
      const min = minMatchLength(d.pattern.source);
      const re = new RegExp(d.pattern.source, d.pattern.flags.includes('g') ? d.pattern.flags : d.pattern.flags + 'g');
      for (const p of d.positives) {
        re.lastIndex = 0;
        for (let m = re.exec(p.text); m !== null; m = re.exec(p.text)) {
          assert.ok(m[0].length >= min, `${d.id}: match of ${m[0].length} < bound ${min}`);
          if (m[0].length === 0) re.lastIndex++;
        }
      }
    }
  });
});

describe('maxReadLength', () => {
  const cases: [string, number][] = [
    ['abc', 3],
    ['a|bc', 2],
    ['ghp_[A-Za-z0-9]{36}', 40],
    ['(?<![a-z]{9})x(?=yz)\\b', 3], // a lookbehind reads back, a lookahead ahead
    ['(?:ab){2,5}c?', 11],
    ['(?:ab){2,5}c?d*', Infinity],
    ['a+', Infinity],
    ['a{2,}', Infinity],
    ['(x)([- ]{1,3})y\\2', 8],
    ['(?<n>x)\\k<n>', Infinity],
    ['(?i:x)', Infinity], // unknown modifier: unsure
    ['[a-z', Infinity],
  ];
  for (const [src, want] of cases) it(`${src} → ${want}`, () => assert.equal(maxReadLength(src), want));

  it('is never below a match of any detector on its own positives (with one character of lookahead)', () => {
    for (const d of DETECTORS) {
      const max = maxReadLength(d.pattern.source);
      const re = new RegExp(d.pattern.source, d.pattern.flags.includes('g') ? d.pattern.flags : d.pattern.flags + 'g');
      for (const p of d.positives) {
        re.lastIndex = 0;
        for (let m = re.exec(p.text); m !== null; m = re.exec(p.text)) {
          assert.ok(m[0].length <= max, `${d.id}: match of ${m[0].length} > bound ${max}`);
          if (m[0].length === 0) re.lastIndex++;
        }
      }
    }
  });
});
