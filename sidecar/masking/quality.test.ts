// Quality on a small slice of the generated corpus: no secret byte leaks, streaming with cuts inside secrets agrees.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createMasker } from './index.ts';
import { DETECTORS } from './detectors/index.ts';
import { compile, findGroups } from './mask.ts';
import { generateCorpus } from '../../test/corpus/generate.ts';

const corpus = generateCorpus({ seed: 7, perDetector: 1, perNegativeClass: 5 });
const m = createMasker();

describe('corpus slice', () => {
  it('leaves at most 4 characters of any embedded secret visible (0 leaked bytes)', () => {
    const c = compile({}, DETECTORS);
    const leaks: string[] = [];
    for (const p of corpus.positives) {
      const groups = findGroups(c, p.text, c.prefilter.scanText(p.text));
      for (const s of p.secrets) {
        let visible = 0;
        for (let i = s.start; i < s.end; i++) if (!groups.some((g) => g.start <= i && i < g.end)) visible++;
        if (visible > 4) leaks.push(`${p.id} (${p.carrier}): ${visible} of ${s.end - s.start} characters visible`);
      }
      const out = m.maskText(p.text).value;
      for (const s of p.secrets) if (out.includes(s.value)) leaks.push(`${p.id}: value survives in the output`);
    }
    assert.deepEqual(leaks, []);
  });

  it('streams the split texts (chunk boundaries inside secrets) exactly like the whole buffer', () => {
    for (const s of corpus.splits.slice(0, 30)) {
      const buf = Buffer.from(s.text);
      const st = m.stream();
      const out: Buffer[] = [];
      let prev = 0;
      for (const cut of s.cuts) {
        out.push(st.push(buf.subarray(prev, cut)));
        prev = cut;
      }
      out.push(st.push(buf.subarray(prev)), st.end());
      assert.ok(Buffer.concat(out).equals(m.maskBuffer(buf).value), s.id);
    }
  });

  it('generates the same corpus for the same seed', () => {
    assert.deepEqual(generateCorpus({ seed: 7, perDetector: 1, perNegativeClass: 5 }), corpus);
  });

  it('records secrets whose offsets point at their exact value', () => {
    for (const p of corpus.positives) for (const s of p.secrets) assert.equal(p.text.slice(s.start, s.end), s.value, p.id);
  });
});
