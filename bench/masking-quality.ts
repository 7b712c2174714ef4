// Masking quality on the synthesized corpus: recall, precision, false positives, leaks, streaming — beside gitleaks and secretlint.
//
// Run: node --import tsx bench/masking-quality.ts   → bench/results/masking-quality.json
// A secret counts as caught only when at most 4 of its characters stay visible.
import { createMasker } from '../sidecar/masking/index.ts';
import { DETECTORS, createRng } from '../sidecar/masking/detectors/index.ts';
import { compile, findGroups } from '../sidecar/masking/mask.ts';
import { generateCorpus, NEGATIVE_CLASSES, type EmbeddedSecret, type PositiveSample } from '../test/corpus/generate.ts';
import { gitleaksBinary, gitleaksSpans, gitleaksVersion, secretlintSpans, type PeerSpan } from './tools/peers.ts';
import { round3, writeResult, type BenchRow } from './lib/results.ts';

const VISIBLE_MAX = 4;

interface ToolScore {
  caught: number;
  total: number;
  leakedBytes: number;
  tpSpans: number;
  fpSpans: number;
  byDetector: Record<string, { caught: number; total: number }>;
  byKind: Record<string, { caught: number; total: number }>;
  negHits: Record<string, number>;
}

function visible(s: EmbeddedSecret, spans: readonly PeerSpan[]): number {
  const covered = new Uint8Array(s.end - s.start);
  for (const sp of spans) for (let i = Math.max(sp.start, s.start); i < Math.min(sp.end, s.end); i++) covered[i - s.start] = 1;
  return covered.length - covered.reduce((a, b) => a + b, 0);
}

function score(positives: readonly PositiveSample[], posSpans: readonly PeerSpan[][], negClasses: readonly string[], negSpans: readonly PeerSpan[][]): ToolScore {
  const sc: ToolScore = { caught: 0, total: 0, leakedBytes: 0, tpSpans: 0, fpSpans: 0, byDetector: {}, byKind: {}, negHits: {} };
  positives.forEach((p, i) => {
    const spans = posSpans[i] ?? [];
    for (const s of p.secrets) {
      const v = visible(s, spans);
      const ok = v <= VISIBLE_MAX;
      sc.total++;
      if (ok) sc.caught++;
      else sc.leakedBytes += v;
      const d = (sc.byDetector[s.detector] ??= { caught: 0, total: 0 });
      d.total++;
      if (ok) d.caught++;
      const k = (sc.byKind[s.kind] ??= { caught: 0, total: 0 });
      k.total++;
      if (ok) k.caught++;
    }
    for (const sp of spans) {
      if (p.secrets.some((s) => sp.start < s.end && sp.end > s.start)) sc.tpSpans++;
      else sc.fpSpans++;
    }
  });
  negSpans.forEach((spans, i) => {
    const cls = negClasses[i] ?? '?';
    sc.negHits[cls] = (sc.negHits[cls] ?? 0) + (spans.length > 0 ? 1 : 0);
    sc.fpSpans += spans.length;
  });
  return sc;
}

function streamMismatches(texts: readonly { text: string; cuts?: readonly number[] }[]): { checked: number; mismatches: number; examples: string[] } {
  const m = createMasker();
  const rng = createRng(99);
  let checked = 0;
  let mismatches = 0;
  const examples: string[] = [];
  for (const [i, t] of texts.entries()) {
    const buf = Buffer.from(t.text);
    const whole = m.maskBuffer(buf).value;
    const plans: number[][] = [t.cuts !== undefined ? [...t.cuts] : []];
    const rand: number[] = [];
    for (let at = 1 + rng.int(64); at < buf.length; at += 1 + rng.int(64)) rand.push(at);
    plans.push(rand);
    if (i % 20 === 0) plans.push(Array.from({ length: Math.max(0, buf.length - 1) }, (_, k) => k + 1)); // 1-byte chunks
    for (const cuts of plans) {
      const s = m.stream();
      const out: Buffer[] = [];
      let prev = 0;
      for (const c of cuts) {
        out.push(s.push(buf.subarray(prev, c)));
        prev = c;
      }
      out.push(s.push(buf.subarray(prev)), s.end());
      checked++;
      if (!Buffer.concat(out).equals(whole)) {
        mismatches++;
        if (examples.length < 5) examples.push(`text ${i}, ${cuts.length} cuts`);
      }
    }
  }
  return { checked, mismatches, examples };
}

function summarize(name: string, sc: ToolScore, negCount: Record<string, number>): { rows: BenchRow[]; summary: Record<string, unknown> } {
  const recall = sc.caught / sc.total;
  const precision = sc.tpSpans + sc.fpSpans === 0 ? 1 : sc.tpSpans / (sc.tpSpans + sc.fpSpans);
  const rows: BenchRow[] = [
    { config: name, metric: 'recall', value: round3(recall), unit: 'ratio' },
    { config: name, metric: 'precision', value: round3(precision), unit: 'ratio' },
    { config: name, metric: 'leaked-secret-bytes', value: sc.leakedBytes, unit: 'bytes' },
  ];
  for (const [k, v] of Object.entries(sc.byKind)) rows.push({ config: name, metric: `recall-${k}`, value: round3(v.caught / v.total), unit: 'ratio' });
  const fpRate: Record<string, number> = {};
  for (const cls of NEGATIVE_CLASSES) {
    fpRate[cls] = round3((sc.negHits[cls] ?? 0) / (negCount[cls] ?? 1));
    rows.push({ config: name, metric: `fp-rate-${cls}`, value: fpRate[cls], unit: 'ratio' });
  }
  const perDetector: Record<string, number> = {};
  for (const [d, v] of Object.entries(sc.byDetector)) perDetector[d] = round3(v.caught / v.total);
  return { rows, summary: { recall: round3(recall), precision: round3(precision), leakedBytes: sc.leakedBytes, byKind: sc.byKind, fpRate, perDetector } };
}

async function main(): Promise<void> {
  const t0 = Date.now();
  const corpus = generateCorpus({ seed: 20240501, perDetector: 3, perNegativeClass: 40 });
  const posTexts = corpus.positives.map((p) => p.text);
  const negTexts = corpus.negatives.map((n) => n.text);
  const negClasses = corpus.negatives.map((n) => n.negClass);
  const negCount: Record<string, number> = {};
  for (const c of negClasses) negCount[c] = (negCount[c] ?? 0) + 1;

  const c = compile({}, DETECTORS);
  const ours = (t: string): PeerSpan[] => findGroups(c, t, c.prefilter.scanText(t)).map((g) => ({ start: g.start, end: g.end, rule: String(g.rule) }));
  const oursScore = score(corpus.positives, posTexts.map(ours), negClasses, negTexts.map(ours));

  // The real output must agree with the spans: no caught secret may survive masking.
  const m = createMasker();
  let outputLeaks = 0;
  for (const p of corpus.positives) {
    const out = m.maskText(p.text).value;
    for (const s of p.secrets) if (s.value.length > VISIBLE_MAX && out.includes(s.value)) outputLeaks++;
  }

  const bin = gitleaksBinary();
  const gl = gitleaksSpans(bin, [...posTexts, ...negTexts]);
  const glScore = score(corpus.positives, gl.slice(0, posTexts.length), negClasses, gl.slice(posTexts.length));
  const sl = await secretlintSpans([...posTexts, ...negTexts]);
  const slScore = score(corpus.positives, sl.slice(0, posTexts.length), negClasses, sl.slice(posTexts.length));

  const stream = streamMismatches([...corpus.splits, ...corpus.positives.filter((_, i) => i % 4 === 0)]);

  const o = summarize('chaperone', oursScore, negCount);
  const g = summarize('gitleaks', glScore, negCount);
  const s = summarize('secretlint', slScore, negCount);
  const rows = [...o.rows, ...g.rows, ...s.rows, { config: 'chaperone', metric: 'stream-mismatches', value: stream.mismatches, unit: 'count' }, { config: 'chaperone', metric: 'output-leaks', value: outputLeaks, unit: 'count' }];
  const missed = Object.entries(oursScore.byDetector).filter(([, v]) => v.caught < v.total).map(([d, v]) => `${d} ${v.caught}/${v.total}`);
  const path = writeResult({
    name: 'masking-quality',
    command: 'node --import tsx bench/masking-quality.ts',
    params: {
      seed: corpus.seed,
      positives: corpus.positives.length,
      secrets: oursScore.total,
      negatives: corpus.negatives.length,
      splitTexts: corpus.splits.length,
      detectors: DETECTORS.length,
      gitleaks: gitleaksVersion(bin),
      secretlint: '@secretlint/secretlint-rule-preset-recommend',
      visibleMax: VISIBLE_MAX,
      streamChecks: stream.checked,
      streamExamples: stream.examples,
      chaperoneMissed: missed,
      details: { chaperone: o.summary, gitleaks: g.summary, secretlint: s.summary },
      seconds: (Date.now() - t0) / 1000,
    },
    results: rows,
    ratios: {
      'recall chaperone/gitleaks': round3((oursScore.caught / oursScore.total) / Math.max(1e-9, glScore.caught / glScore.total)),
      'recall chaperone/secretlint': round3((oursScore.caught / oursScore.total) / Math.max(1e-9, slScore.caught / slScore.total)),
    },
  });
  const show = (n: string, x: Record<string, unknown>): void => console.log(n.padEnd(11), JSON.stringify({ recall: x['recall'], precision: x['precision'], leakedBytes: x['leakedBytes'], byKind: x['byKind'] }));
  show('chaperone', o.summary);
  show('gitleaks', g.summary);
  show('secretlint', s.summary);
  console.log('fp-rate chaperone', JSON.stringify(o.summary['fpRate']));
  console.log('fp-rate gitleaks ', JSON.stringify(g.summary['fpRate']));
  console.log(`stream mismatches ${stream.mismatches}/${stream.checked}, output leaks ${outputLeaks}; missed: ${missed.join(', ') || 'none'}`);
  console.log(`wrote ${path} in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
}

await main();
// secretlint leaves a handle open for ~40 s after its last lint: exit once the results are written.
process.exit(0);
