// Digit-shape gates: a gate must pass on every text its detector's regex matches (never hide a match).
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { DETECTORS, createRng, generateSample } from './detectors/index.ts';
import { GATED_SOURCES, shapeBitOf, shapesOfBytes, shapesOfText } from './shapes.ts';

const gated = DETECTORS.filter((d) => GATED_SOURCES[d.id] !== undefined);

function matches(re: RegExp, text: string): boolean {
  const g = new RegExp(re.source, re.flags.includes('g') ? re.flags : re.flags + 'g');
  return g.exec(text) !== null;
}

function check(text: string): void {
  const t = shapesOfText(text);
  const b = shapesOfBytes(Buffer.from(text, 'latin1'));
  assert.equal(b, t, `bytes and text gates differ on ${JSON.stringify(text)}`);
  for (const d of gated) {
    if (matches(d.pattern, text)) assert.ok((t & shapeBitOf(d.id, d.pattern)) !== 0, `${d.id}: gate hides a match in ${JSON.stringify(text)}`);
  }
}

describe('shape gates', () => {
  it('cover every keywordless detector of the table (an edited pattern must update its gate)', () => {
    for (const d of DETECTORS) if (d.keywords.length === 0) assert.notEqual(shapeBitOf(d.id, d.pattern), 0, `${d.id} has no shape gate`);
  });

  it('pass on every positive and generated sample', () => {
    const rng = createRng(7);
    for (const d of gated) {
      for (const p of d.positives) check(p.text);
      for (let i = 0; i < 50; i++) {
        const s = generateSample(d, rng);
        if (s !== undefined) check(s.text);
      }
    }
  });

  it('pass on every regex match in random digit-heavy texts (bounded fuzz)', () => {
    const rng = createRng(11);
    const alphabet = '0123456789012345678901234567890123456789  --..()+/:ABDEGMNOZabxyz_\u00e9';
    const seps = [' ', '-', '.', ' ', '-', '.', ') ', '(', '+', '+1', ':', '/', 'GB', 'DE', 'x', ' - ', '\u00e9'];
    for (let n = 0; n < 6000; n++) {
      // Digit groups of 1-7 digits between short separators: the shapes the gates reason about.
      let s = '';
      const groups = 1 + rng.int(8);
      for (let g = 0; g < groups; g++) {
        s += seps[rng.int(seps.length)]!;
        const len = 1 + rng.int(7);
        for (let i = 0; i < len; i++) s += String(rng.int(10));
      }
      if (rng.int(3) === 0) s += alphabet[rng.int(alphabet.length)]!;
      check(s);
    }
    for (let n = 0; n < 3000; n++) {
      const len = 4 + rng.int(60);
      let s = '';
      for (let i = 0; i < len; i++) s += alphabet[rng.int(alphabet.length)]!;
      check(s);
    }
    for (const d of gated) {
      // Mutations of real samples: drop, duplicate or swap characters near separators.
      for (let n = 0; n < 300; n++) {
        const s = generateSample(d, rng);
        if (s === undefined) continue;
        const at = rng.int(s.text.length);
        const c = alphabet[rng.int(alphabet.length)]!;
        check(s.text.slice(0, at) + c + s.text.slice(at + 1));
        check(s.text.slice(0, at) + s.text.slice(at + 1));
      }
    }
  });

  it('fail on timestamps, ids and amounts (what DataRow cells are made of)', () => {
    for (const t of ['2024-03-15 12:34:56+00', '2024-03-15T12:34:56.123456Z', '1234567', '4521.07', 'order 7 of 12', '10.0.0.1', 'v1.2.3']) {
      assert.equal(shapesOfText(t), 0, t);
    }
  });

  it('drop the gate of an edited pattern', () => {
    assert.equal(shapeBitOf('payment-card', /[0-9]{13,19}/g), 0);
    assert.equal(shapeBitOf('iban', new RegExp(GATED_SOURCES['iban']!.source, 'gi')), 0);
  });
});
