// Walks the detector table: ids, flags, examples, generated samples, and linear time on adversarial input.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Detector } from '../types.ts';
import { DETECTORS, findWithDetector, generateSample } from './index.ts';
import { base62, crc32, crcTokenValid, luhnValid } from './lib.ts';
import { createRng } from './rng.ts';

const ADVERSARIAL_BYTES = 256 * 1024;
const GUARD_MS = 2000;

function covers(d: Detector, text: string, secret: string): boolean {
  const at = text.indexOf(secret);
  return at >= 0 && findWithDetector(d, text).some((s) => s.start <= at && s.end >= at + secret.length);
}

function fill(unit: string): string {
  if (unit.length === 0) return '';
  return unit.repeat(Math.ceil(ADVERSARIAL_BYTES / unit.length)).slice(0, ADVERSARIAL_BYTES);
}

/** Inputs that make backtracking engines crawl: own charset runs, repeated prefixes, near-miss repeats. */
function adversarialInputs(d: Detector): string[] {
  const sample = d.generate?.(createRng(7)) ?? d.positives[0]?.secret ?? 'x';
  const charset = [...new Set(sample)].join('');
  const head = d.keywords[0] ?? sample.slice(0, 6);
  return [
    fill(charset),
    fill(head),
    fill(sample.slice(0, 12)),
    fill(sample.slice(0, -1) + ' '),
    fill(sample.slice(0, -1)),
    fill('aA0+/=_-.:@ '),
  ];
}

/** Runs the raw pattern over the whole input; returns the number of matches. */
function scanAll(re: RegExp, input: string): number {
  const r = new RegExp(re.source, re.flags);
  let n = 0;
  for (let m = r.exec(input); m !== null; m = r.exec(input)) {
    n++;
    if (m[0].length === 0) r.lastIndex++;
  }
  return n;
}

describe('detector table', () => {
  it('has at least 100 secret formats and the PII set', () => {
    assert.ok(DETECTORS.filter((d) => d.category === 'secret').length >= 100);
    for (const id of ['email', 'phone-number', 'payment-card', 'iban', 'us-ssn', 'ipv4-address', 'ipv6-address']) {
      assert.ok(DETECTORS.some((d) => d.id === id), `missing ${id}`);
    }
  });

  it('has unique kebab-case ids', () => {
    const seen = new Set<string>();
    for (const d of DETECTORS) {
      assert.match(d.id, /^[a-z0-9]+(?:-[a-z0-9]+)*$/, d.id);
      assert.ok(!seen.has(d.id), `duplicate id ${d.id}`);
      seen.add(d.id);
    }
  });

  it('gives every pattern the g flag, lower-case keywords, a bound and examples', () => {
    for (const d of DETECTORS) {
      assert.ok(d.pattern.flags.includes('g'), `${d.id}: pattern needs the g flag`);
      for (const k of d.keywords) assert.equal(k, k.toLowerCase(), `${d.id}: keyword ${k} must be lower-case`);
      assert.ok(d.maxLength > 0 && d.maxLength <= 20000, `${d.id}: maxLength`);
      assert.ok(d.positives.length >= 2, `${d.id}: needs 2 positives`);
      assert.ok(d.negatives.length >= 2, `${d.id}: needs 2 negatives`);
      assert.ok(d.description.length > 10, `${d.id}: description`);
    }
  });

  it('IP detectors are off by default; the rest are on', () => {
    for (const d of DETECTORS) {
      const off = d.id === 'ipv4-address' || d.id === 'ipv6-address';
      assert.equal(d.enabledByDefault ?? true, !off, d.id);
    }
  });
});

describe('examples', () => {
  for (const d of DETECTORS) {
    it(`${d.id}: finds every positive and covers its secret`, () => {
      for (const p of d.positives) {
        assert.ok(p.text.includes(p.secret), `${d.id}: secret not inside text (${p.reason})`);
        assert.ok(covers(d, p.text, p.secret), `${d.id}: missed positive "${p.reason}"`);
      }
    });
    it(`${d.id}: misses every hard negative`, () => {
      for (const n of d.negatives) {
        assert.deepEqual(findWithDetector(d, n.text), [], `${d.id}: fired on negative "${n.reason}"`);
      }
    });
  }
});

describe('generate()', () => {
  for (const d of DETECTORS) {
    it(`${d.id}: 50 generated samples are found by their own detector`, () => {
      assert.ok(d.generate !== undefined, `${d.id}: needs generate()`);
      for (let seed = 1; seed <= 50; seed++) {
        const s = generateSample(d, createRng(seed));
        assert.ok(s !== undefined);
        assert.ok(covers(d, s.text, s.secret), `${d.id}: seed ${seed} not found: ${s.text.slice(0, 120)}`);
        assert.ok(s.secret.length <= d.maxLength, `${d.id}: seed ${seed} longer than maxLength`);
        assert.ok(covers(d, `{"v":"${s.text}"} `, s.secret), `${d.id}: seed ${seed} lost inside JSON`);
      }
    });
  }
});

/** Longest raw match of the pattern in `text` (the whole match, key and separators included). */
function longestMatch(re: RegExp, text: string): number {
  const r = new RegExp(re.source, re.flags);
  let max = 0;
  for (let m = r.exec(text); m !== null; m = r.exec(text)) {
    max = Math.max(max, m[0].length);
    if (m[0].length === 0) r.lastIndex++;
  }
  return max;
}

describe('maxLength bounds the whole match (the streaming carry-over relies on it)', () => {
  for (const d of DETECTORS) {
    it(`${d.id}: positives and generated samples fit in maxLength`, () => {
      const texts = [...d.positives.map((p) => p.text)];
      for (let seed = 1; seed <= 50; seed++) texts.push(d.generate?.(createRng(seed)) ?? '');
      for (const t of texts) assert.ok(longestMatch(d.pattern, t) <= d.maxLength, `${d.id}: match longer than maxLength ${d.maxLength}`);
    });
  }
});

describe('linear time on adversarial input', () => {
  for (const d of DETECTORS) {
    it(`${d.id}: completes on 256 KiB runs of its charset, prefixes and near misses`, () => {
      for (const input of adversarialInputs(d)) {
        const t0 = performance.now();
        const n = scanAll(d.pattern, input);
        const ms = performance.now() - t0;
        assert.ok(n >= 0);
        assert.ok(ms < GUARD_MS, `${d.id}: ${ms.toFixed(0)} ms on ${JSON.stringify(input.slice(0, 24))}… (catastrophic?)`);
      }
    });
  }
});

describe('checksums', () => {
  it('GitHub/npm CRC32: the last 6 chars are base62(crc32(random 30))', () => {
    const body = 'a'.repeat(10) + 'B'.repeat(10) + '0123456789';
    const tok = 'ghp_' + body + base62(crc32(body), 6);
    assert.ok(crcTokenValid(tok, 4));
    assert.ok(!crcTokenValid(tok.slice(0, -1) + (tok.endsWith('0') ? '1' : '0'), 4));
    assert.equal(crc32('123456789'), 0xcbf43926);
  });
  it('Luhn', () => {
    assert.ok(luhnValid('4111111111111111'));
    assert.ok(!luhnValid('4111111111111112'));
  });
});
