// Streaming masker: random chunkings (1-byte chunks included) give exactly the whole-buffer result.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createMasker, type Masker } from './index.ts';
import { syncPoint } from './stream.ts';
import { DETECTORS, createRng } from './detectors/index.ts';
import type { Rng } from './types.ts';

function streamed(m: Masker, buf: Buffer, size: () => number): Buffer {
  const s = m.stream();
  const out: Buffer[] = [];
  for (let i = 0; i < buf.length; ) {
    const n = Math.max(1, size());
    out.push(s.push(buf.subarray(i, i + n)));
    i += n;
  }
  out.push(s.end());
  return Buffer.concat(out);
}

const FILLER = ['lorem ipsum dolor sit amet', '2024-05-01T12:00:00Z INFO request done', 'id=42 status=ok', 'Grüße, naïve café ✓', '{"a":1,"b":[true,null]}', 'ünïcödé'];

function filler(rng: Rng, approx: number): string {
  let s = '';
  while (s.length < approx) s += (FILLER[rng.int(FILLER.length)] ?? '') + (rng.int(3) === 0 ? '\n' : ' ');
  return s;
}

/** Texts made of every detector's positives with filler between, a few at a time. */
function corpus(window: number): string[] {
  const rng = createRng(11);
  const pos = DETECTORS.flatMap((d) => d.positives).filter((p) => p.text.length < window);
  const texts: string[] = [];
  for (let i = 0; i < pos.length; i += 8) {
    let t = '';
    for (const p of pos.slice(i, i + 8)) t += filler(rng, rng.int(window * 2)) + p.text;
    texts.push(t + filler(rng, 40));
  }
  return texts;
}

function assertSame(m: Masker, text: string, rng: Rng, label: string): void {
  const buf = Buffer.from(text);
  const whole = m.maskBuffer(buf).value;
  const modes: [string, () => number][] = [
    ['1-byte', () => 1],
    ['1..7', () => 1 + rng.int(7)],
    ['1..300', () => 1 + rng.int(300)],
    ['1..5000', () => 1 + rng.int(5000)],
  ];
  for (const [name, size] of modes) {
    const out = streamed(m, buf, size);
    if (!out.equals(whole)) {
      let i = 0;
      while (out[i] === whole[i]) i++;
      assert.fail(`${label}, chunks ${name}: differs at byte ${i}:\n whole  ${JSON.stringify(whole.subarray(Math.max(0, i - 60), i + 60).toString())}\n stream ${JSON.stringify(out.subarray(Math.max(0, i - 60), i + 60).toString())}`);
    }
  }
}

describe('stream equals whole-buffer masking', () => {
  it('on every detector positive, small window (256) so chunk boundaries land inside secrets', () => {
    const m = createMasker({ detectors: ['all'], maxWindow: 256 });
    const rng = createRng(5);
    corpus(256).forEach((t, i) => assertSame(m, t, rng, `text ${i}`));
  });

  it('on every detector positive, default window', () => {
    const m = createMasker({ detectors: ['all'] });
    const rng = createRng(6);
    const texts = corpus(4096);
    // 1-byte chunks over the default window cost a rescan per byte: a bounded sample of texts.
    texts.filter((_, i) => i % 6 === 0).forEach((t, i) => assertSame(m, t, rng, `text ${i}`));
  });

  it('with custom patterns, keyword lists, escapes and hmac tokens', () => {
    const m = createMasker({
      maxWindow: 256,
      customPatterns: [{ id: 'emp', pattern: 'EMP-[0-9]{6}' }],
      keywordLists: [{ id: 'code', words: ['bluebird'] }],
      replacement: { kind: 'hmac' },
      hmacKey: Buffer.alloc(32, 7),
    });
    const rng = createRng(9);
    const gh = DETECTORS.find((d) => d.id === 'github-pat')!.positives[0]!.text;
    const t = `${filler(rng, 400)} EMP-123456 ${filler(rng, 300)} Bluebird {"k":"${gh.replace(/"/g, '\\"')}\\n"} p%40ss ${filler(rng, 600)} ${gh} end`;
    assertSame(m, t, rng, 'mixed');
  });

  it('pasted token pairs, words after cards/IBANs, doubled quotes, block scalars, values on the next line, + before a quote', () => {
    const rng = createRng(44);
    const sk = (seed: number): string => DETECTORS.find((d) => d.id === 'stripe-secret-key')!.generate!(createRng(seed));
    const xo = DETECTORS.find((d) => d.id === 'slack-bot-token')!.generate!(createRng(5));
    const parts = [
      `${sk(1)}${sk(2)}`, `${xo}${sk(3)}${xo}`, '4539578763621486card', 'DE89370400440532013000EUR', 'order 4111111111111111A',
      '"{""password"":""Zq7Lm2Xp9Wk4Tn8Rv3Yb""}"', 'password: |\n  Hc5Jd8Fs1Ga6Kw0Qe4Up\n', '{\n  "api_key":\n    "Hc5Jd8Fs1Ga6Kw0Qe4UpZq7Lm2Xp9Wk4Tn8Rv3Yb"\n}', '{"api_key":+"Zq7Lm2Xp9Wk4Tn8Rv3YbHc5Jd8Fs1Ga6Kw0Qe4Up"}',
    ];
    for (const m of [createMasker({ maxWindow: 256 }), createMasker()]) {
      const t = parts.map((p) => filler(rng, 10 + rng.int(300)) + p).join('') + filler(rng, 40);
      assertSame(m, t, rng, 'this round');
      for (const p of parts) {
        const whole = m.maskBuffer(Buffer.from(p)).value;
        for (let cut = 0; cut <= p.length; cut++) {
          const s = m.stream();
          const b = Buffer.from(p);
          assert.ok(Buffer.concat([s.push(b.subarray(0, cut)), s.push(b.subarray(cut)), s.end()]).equals(whole), `${p} split at ${cut}`);
        }
      }
    }
  });

  it('every split point of a text with secrets gives the same output (two chunks)', () => {
    const m = createMasker({ maxWindow: 256 });
    const gh = DETECTORS.find((d) => d.id === 'github-pat')!.positives[0]!.text;
    const text = Buffer.from(`${'x'.repeat(300)} key=${gh} mail jane.doe@mail.test.org ${'y'.repeat(200)}`);
    const whole = m.maskBuffer(text).value;
    for (let cut = 0; cut <= text.length; cut++) {
      const s = m.stream();
      const out = Buffer.concat([s.push(text.subarray(0, cut)), s.push(text.subarray(cut)), s.end()]);
      assert.ok(out.equals(whole), `split at ${cut}`);
    }
  });

  it('keeps UTF-8 sequences split across chunks intact', () => {
    const m = createMasker();
    const text = Buffer.from('€'.repeat(3000) + ' 𝄞 ' + 'é'.repeat(3000));
    const out = streamed(m, text, () => 1);
    assert.ok(out.equals(text));
  });

  it('holds back a bounded window, never the whole stream', () => {
    const m = createMasker();
    const s = m.stream();
    let held = 0;
    let max = 0;
    const chunk = Buffer.from('plain words without secrets '.repeat(40));
    for (let i = 0; i < 200; i++) {
      held += chunk.length - s.push(chunk).length;
      max = Math.max(max, held);
    }
    held -= s.end().length;
    assert.equal(held, 0);
    assert.ok(max <= m.window + 2048 + chunk.length, `held back at most ${max} bytes`);
  });

  it('masks a PEM block longer than the window from BEGIN on, leaking none of its body', () => {
    const m = createMasker({ maxWindow: 256 });
    const rng = createRng(2);
    const body = Array.from({ length: 40 }, () => rng.pick('ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/', 64)).join('\n');
    const pem = `-----BEGIN RSA PRIVATE KEY-----\n${body}\n-----END RSA PRIVATE KEY-----`;
    const text = Buffer.from(`before\n${pem}\nafter`);
    for (const size of [() => 1, () => 1 + rng.int(100), () => 4000]) {
      const out = streamed(m, text, size).toString();
      assert.ok(out.startsWith('before\n[MASKED:'), out.slice(0, 80));
      assert.ok(out.endsWith('\nafter'), out.slice(-80));
      for (const line of body.split('\n')) assert.ok(!out.includes(line.slice(0, 20)), 'no body line leaks');
    }
  });

  it('passes a base64 image longer than the window through untouched, chunked or not (regression: masked when cut short)', () => {
    const m = createMasker({ maxWindow: 256 });
    const rng = createRng(4);
    const img = Buffer.from(Array.from({ length: 3000 }, () => rng.int(256))).toString('base64');
    const text = Buffer.from(`<img src="data:image/png;base64,${img}"> and ${'x'.repeat(900)}\n`);
    assert.ok(m.maskBuffer(text).value.equals(text));
    for (const size of [() => 1 + rng.int(50), () => 700]) assert.ok(streamed(m, text, size).equals(text));
  });

  it('reports findings by detector id', () => {
    const m = createMasker();
    const gh = DETECTORS.find((d) => d.id === 'github-pat')!.positives[0]!.text;
    const s = m.stream();
    s.push(Buffer.from(`a ${gh} b `));
    s.push(Buffer.from(`c ${gh}`));
    s.end();
    assert.deepEqual(s.findings(), { 'github-pat': 2 });
  });

  it('keywords and matches straddling 1-byte, 2-byte, window and window+1 chunks (the prefilter resumes across pushes)', () => {
    const m = createMasker({ maxWindow: 256, keywordLists: [{ id: 'code', words: ['bluebird'] }] });
    const gh = DETECTORS.find((d) => d.id === 'github-pat')!.positives[0]!.text;
    const rng = createRng(21);
    // A keyword-gated secret (the keyword itself straddles cuts), a literal, a keywordless card and a base64 run.
    const b64 = Buffer.from(`token=${gh}`).toString('base64');
    const text = `${filler(rng, 700)} password: Xk9#mQ2vL7pR4tZ8 ${filler(rng, 300)} Bluebird ${filler(rng, 250)} card 4111 1111 1111 1111 ${filler(rng, 280)} ${b64} ${filler(rng, 600)} ${gh}`;
    const buf = Buffer.from(text);
    const whole = m.maskBuffer(buf).value;
    assert.notDeepEqual(whole, buf, 'the text has secrets to mask');
    for (const size of [1, 2, m.window, m.window + 1, m.window - 1, 1024, 1025]) {
      for (const offset of [0, 1, 7]) {
        // A first chunk of `offset` bytes shifts every later cut.
        const s = m.stream();
        const out: Buffer[] = [s.push(buf.subarray(0, offset))];
        for (let i = offset; i < buf.length; i += size) out.push(s.push(buf.subarray(i, i + size)));
        out.push(s.end());
        assert.ok(Buffer.concat(out).equals(whole), `chunks of ${size} after ${offset}`);
      }
    }
  });

  it('random texts with planted secrets: chunked output equals one-shot output for random chunkings', () => {
    const rng = createRng(33);
    const pos = DETECTORS.flatMap((d) => d.positives).filter((p) => p.text.length < 200);
    const maskers = [createMasker({ maxWindow: 256 }), createMasker()];
    const pieces = ['password=', 'api_key: ', 'Bearer ', '\\n', '%40', '\\u0041', ' 4111-1111-1111-1111 ', '+44 20 7946 0958', 'DE89370400440532013000', ' sk_live_', '"token":"'];
    for (let t = 0; t < 24; t++) {
      let text = '';
      while (text.length < 1500 + rng.int(4000)) {
        const k = rng.int(4);
        text += k === 0 ? pos[rng.int(pos.length)]!.text : k === 1 ? (pieces[rng.int(pieces.length)] ?? '') : filler(rng, 20 + rng.int(400));
      }
      const m = maskers[t % 2]!;
      const buf = Buffer.from(text);
      const whole = m.maskBuffer(buf).value;
      for (let k = 0; k < 4; k++) {
        const max = [3, 64, m.window + 2, 3 * m.window][k]!;
        const out = streamed(m, buf, () => 1 + rng.int(max));
        if (!out.equals(whole)) {
          let i = 0;
          while (out[i] === whole[i]) i++;
          assert.fail(`text ${t}, chunks 1..${max}: differs at byte ${i}:\n whole  ${JSON.stringify(whole.subarray(Math.max(0, i - 60), i + 60).toString())}\n stream ${JSON.stringify(out.subarray(Math.max(0, i - 60), i + 60).toString())}`);
        }
      }
    }
  });

  it('texts over 16 KiB (rules scan keyword windows) cut in two anywhere near the limit (regression: a JWT was emitted unmasked)', () => {
    // A rescan's resume offset jumped to the end of a keyword window straddling the commit limit,
    // so a token starting between the limit and that end was never scanned again.
    const m = createMasker();
    const jwt = DETECTORS.find((d) => d.id === 'jwt')!.positives[0]!.secret;
    const text = Buffer.from(`Authorization: Bearer ${jwt} `.repeat(Math.ceil(17500 / (jwt.length + 23))));
    const whole = m.maskBuffer(text).value;
    assert.ok(!whole.toString().includes(jwt), 'one-shot masks every copy');
    for (let cut = 16384; cut <= 16640; cut++) {
      const s = m.stream();
      const out = Buffer.concat([s.push(text.subarray(0, cut)), s.push(text.subarray(cut)), s.end()]);
      assert.ok(!out.toString().includes(jwt), `split at ${cut}: a JWT leaked`);
      assert.ok(out.equals(whole), `split at ${cut}`);
    }
  });

  it('a long run of % or \\% (no escape in it) is trimmed like any text: the carry-over stays bounded', () => {
    // The trim backed off over the whole run, so the held bytes grew with the input and each
    // rescan read them again (1 MB of '%' in 1 KiB chunks: 1.9 s; 50 MB: quadratic).
    assert.equal(syncPoint(Buffer.from('%'.repeat(10_000)), 9000), 8991);
    assert.equal(syncPoint(Buffer.from('\\%'.repeat(5000)), 9000), 8991);
    assert.equal(syncPoint(Buffer.from('abc\\u00'), 7), 3, 'an escape begun before the cut stays whole');
    assert.equal(syncPoint(Buffer.from('abcdefgh'), 7), 7);
    const m = createMasker({ maxWindow: 256 });
    const gh = DETECTORS.find((d) => d.id === 'github-pat')!.positives[0]!.text;
    const text = Buffer.from(`${'%'.repeat(3000)}%41${gh}${'\\%'.repeat(1500)}p%40ss password=%41bc%25%34%31dEf9x ${'%'.repeat(700)}%4`);
    assertSame(m, text.toString(), createRng(12), 'percent runs');
  });

  it('a run of NULs (binary padding, which the decoded view drops) loses no byte and stays bounded', () => {
    // The trim mapped a cut inside an all-dropped view to the end of the buffer: 64 KiB of NULs came out 4315 bytes short.
    const m = createMasker({});
    for (const n of [100, 8192, 65_536]) {
      const s = m.stream();
      let out = s.push(Buffer.alloc(n)).length;
      out += s.push(Buffer.alloc(n)).length;
      out += s.end().length;
      assert.equal(out, 2 * n, `${n} NULs twice`);
    }
    const s = m.stream();
    for (let i = 0; i < 512; i++) s.push(Buffer.alloc(16_384));
    assert.equal(s.end().length < 64 * 1024, true, 'the carry-over stayed a window, not the input');
    const gh = DETECTORS.find((d) => d.id === 'github-pat')!.positives[0]!.text;
    assertSame(m, `${'\0'.repeat(6000)}${gh}${'\0'.repeat(6000)}`, createRng(13), 'NUL runs around a token');
  });

  it('refuses push after end', () => {
    const s = createMasker().stream();
    s.end();
    assert.throws(() => s.push(Buffer.from('x')), /after end/);
  });
});
