// Engine API tests: values, texts, bytes, replacements, field rules, custom patterns, decoding, bad input.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createMasker } from './index.ts';
import { DETECTORS, createRng, generateSample } from './detectors/index.ts';

/** A synthesized secret the detector `id` finds (its generator, fixed seed). */
function sample(id: string, seed = 1): { text: string; secret: string } {
  const d = DETECTORS.find((x) => x.id === id);
  assert.ok(d, `detector ${id} exists`);
  const s = generateSample(d, createRng(seed));
  assert.ok(s, `detector ${id} generates samples`);
  return s;
}

const m = createMasker();

describe('maskText', () => {
  it('replaces a prefixed token with the default placeholder and counts it by detector id', () => {
    const { secret } = sample('github-pat');
    const r = m.maskText(`export TOKEN=${secret} # ci`);
    assert.equal(r.value, 'export TOKEN=[MASKED:github-pat] # ci');
    assert.equal(r.changed, true);
    assert.deepEqual(r.findings, { 'github-pat': 1 });
  });

  it('returns the very same string and no findings when nothing matched', () => {
    const t = 'SELECT id, name FROM users WHERE id = 42 -- nothing secret here';
    const r = m.maskText(t);
    assert.equal(r.value, t);
    assert.equal(r.changed, false);
    assert.deepEqual(r.findings, {});
  });

  it('never reports the secret value in findings', () => {
    const { secret } = sample('stripe-secret-key');
    const r = m.maskText(`key ${secret} and again ${secret}`);
    assert.deepEqual(r.findings, { 'stripe-secret-key': 2 });
    assert.ok(!JSON.stringify(r.findings).includes(secret.slice(4)));
    assert.ok(!r.value.includes(secret));
  });

  it('masks only the password of a connection URL', () => {
    const r = m.maskText('DATABASE_URL=postgres://app:S3cr3t-Pa55w0rd-x9@db.internal:5432/app');
    assert.ok(!r.value.includes('S3cr3t-Pa55w0rd-x9'), r.value);
    assert.ok(r.value.includes('postgres://app:'), r.value);
    assert.ok(r.value.includes(':5432/app'), r.value);
  });

  it('masks a percent-encoded password in a URL (decoded before scanning, masked in place)', () => {
    const r = m.maskText('url=https://admin:Sup%40r-S3cret%21pass@example.test/login');
    assert.ok(!r.value.includes('Sup%40r-S3cret%21pass'), r.value);
    assert.ok(!r.value.includes('S3cret'), r.value);
    assert.ok(r.value.startsWith('url=https://admin:'), r.value);
    assert.ok(r.value.endsWith('/login'), r.value);
  });

  it('masks a PEM key written with JSON \\n escapes inside a log line', () => {
    const pem = DETECTORS.find((d) => d.id === 'private-key-pem')!.positives[1]!.secret;
    const line = `level=info msg="loaded" body={"key":"${pem}"}`;
    const r = m.maskText(line);
    assert.ok(!r.value.includes('MII') || !r.value.includes(pem.slice(40, 80)), r.value);
    assert.ok(r.value.includes('[MASKED:'), r.value);
  });
});

describe('decoded carriers (HTML references, %25XX, octal bytea, UTF-16, NUL and zero-width characters)', () => {
  const { secret } = sample('github-pat');
  const text = `token=${secret}`;
  const utf16 = Buffer.from(text, 'utf16le');
  const carriers: [string, string][] = [
    ['decimal references', [...text].map((ch) => `&#${ch.charCodeAt(0)};`).join('')],
    ['hex references', [...text].map((ch) => `&#x${ch.charCodeAt(0).toString(16).toUpperCase()};`).join('')],
    ['named references in an attribute', `<div data-config="{&quot;token&quot;:&quot;${secret}&quot;}">`],
    ['percent-encoded twice', encodeURIComponent(encodeURIComponent(`{"t":"${secret}"}`)).replace(/%2525/g, '%25')],
    ['%25XX for every byte', [...Buffer.from(text)].map((b) => `%25${b.toString(16).padStart(2, '0')}`).join('')],
    ['octal bytea escapes', [...Buffer.from(text)].map((b) => `\\${b.toString(8).padStart(3, '0')}`).join('')],
    ['NUL between characters', [...text].join('\u0000')],
    ['zero-width spaces between characters', [...text].join('\u200b')],
    ['byte-order marks and word joiners', [...text].map((ch, i) => ch + (i % 2 ? '\ufeff' : '\u2060')).join('')],
  ];
  for (const [name, t] of carriers) {
    it(`masks a secret written as ${name}, in text, bytes and a stream split at every byte`, () => {
      const r = m.maskText(`before ${t} after`);
      assert.equal(r.changed, true, `${name}: ${r.value.slice(0, 100)}`);
      assert.ok(r.value.startsWith('before ') && r.value.endsWith(' after'), r.value);
      const buf = Buffer.from(`before ${t} after`);
      const whole = m.maskBuffer(buf).value;
      assert.equal(whole.toString(), r.value);
      for (let cut = 0; cut <= buf.length; cut += 3) {
        const s = m.stream();
        assert.ok(Buffer.concat([s.push(buf.subarray(0, cut)), s.push(buf.subarray(cut)), s.end()]).equals(whole), `${name}: split at ${cut}`);
      }
    });
  }

  it('masks a PEM key in a form-encoded body (spaces as +, newlines as %0A), split at every 7th byte', () => {
    const pem = DETECTORS.find((d) => d.id === 'private-key-pem')!.positives[0]!.secret;
    const form = `grant=1&key=${encodeURIComponent(pem).replace(/%20/g, '+')}&x=2`;
    const r = m.maskText(form);
    assert.ok(r.value.startsWith('grant=1&key=[MASKED:private-key-pem]'), r.value.slice(0, 80));
    assert.ok(r.value.endsWith('&x=2'));
    const buf = Buffer.from(form);
    for (let cut = 0; cut <= buf.length; cut += 7) {
      const s = m.stream();
      assert.equal(Buffer.concat([s.push(buf.subarray(0, cut)), s.push(buf.subarray(cut)), s.end()]).toString(), r.value, `split at ${cut}`);
    }
  });

  it('masks UTF-16LE bytes of a secret (a binary column) and leaves the rest of the bytes as they were', () => {
    const cell = Buffer.concat([Buffer.from([0xff, 0xfe]), utf16, Buffer.from('\u0000\u0000')]);
    const r = m.maskBuffer(cell);
    assert.equal(r.changed, true);
    assert.ok(!r.value.toString('latin1').split('\u0000').join('').includes(secret.slice(4)), 'no trace of the token');
    assert.ok(r.value.subarray(0, 2).equals(Buffer.from([0xff, 0xfe])));
  });

  it('leaves ordinary ampersands, entities of harmless text, and lone NULs alone', () => {
    for (const t of ['a=1&b=2&c=3', 'Tom &amp; Jerry &lt;3 &#169; 2024', 'col\u0000umn', 'caf\u00e9 \u2019quoted\u2019 \u20ac']) assert.equal(m.maskText(t).changed, false, t);
  });
});

describe('tokens without boundaries', () => {
  it('masks prefixed tokens inside a longer identifier and two pasted together', () => {
    for (const id of ['github-pat', 'github-fine-grained-pat', 'npm-access-token']) {
      const a = sample(id, 1).secret;
      const b = sample(id, 2).secret;
      for (const t of [`xx${a}yy`, `${a}${b}`, `${a}${a}`, `MY_${a}`, `id_${a}_v2`]) {
        const r = m.maskText(t);
        assert.ok(!r.value.includes(a.slice(-20)) && !r.value.includes(b.slice(-20)), `${id}: ${t} -> ${r.value}`);
      }
    }
  });
});

describe('variable-length tokens pasted together (a view splits a distinctive prefix off the token before it)', () => {
  const pairs: [string, string][] = [
    ['stripe-secret-key', 'stripe-secret-key'],
    ['slack-bot-token', 'slack-bot-token'],
    ['gitlab-pat', 'gitlab-pat'],
    ['slack-user-token', 'slack-user-token'],
    ['openai-project-key', 'openai-project-key'],
    ['stripe-secret-key', 'slack-bot-token'],
    ['slack-bot-token', 'stripe-secret-key'],
    ['gitlab-pat', 'github-pat'],
  ];
  for (const [x, y] of pairs) {
    it(`${x} then ${y}: both masked, in text, JSON and a stream split at every 5th byte`, () => {
      const a = sample(x, 3).secret;
      const b = sample(y, 4).secret;
      for (const t of [`${a}${b}`, `{"k":"${a}${b}"}`, `x ${a}${b}${a} y`]) {
        const r = m.maskText(t);
        for (const s of [a, b]) assert.ok(!r.value.includes(s.slice(-12)), `${t} -> ${r.value}`);
        const buf = Buffer.from(t);
        const st = m.stream();
        const out: Buffer[] = [];
        for (let i = 0; i < buf.length; i += 5) out.push(st.push(buf.subarray(i, i + 5)));
        out.push(st.end());
        assert.equal(Buffer.concat(out).toString(), r.value);
      }
    });
  }
  it('leaves words that merely contain a prefix alone', () => {
    for (const t of ['mask_live_data desk_live_chat task-xoxb-foo', 'the_npm_cache and my-glpat-notes']) assert.equal(m.maskText(t).value, t);
  });
});

describe('maskValue (a cell with its column name)', () => {
  const cm = createMasker({ fieldRules: [{ id: 'secret-columns', names: ['*password*', 'api_key', 'users.ssn'] }] });

  it('masks a whole value when the column name matches a glob, case-insensitively', () => {
    assert.deepEqual(cm.maskValue('hunter2', 'User_PASSWORD_hash'), { value: '[MASKED:secret-columns]', changed: true, findings: { 'secret-columns': 1 } });
    assert.equal(cm.maskValue('abc', 'API_KEY').value, '[MASKED:secret-columns]');
  });

  it('leaves a value whose column matches no rule to the detectors', () => {
    assert.equal(cm.maskValue('hunter2', 'username').value, 'hunter2');
    assert.equal(cm.maskValue('hunter2', 'api_key_id').value, 'hunter2');
    const { secret } = sample('openai-project-key');
    assert.equal(cm.maskValue(secret, 'notes').value, '[MASKED:openai-project-key]');
  });

  it('skips short values without scanning (no detector secret fits in 5 characters)', () => {
    const r = cm.maskValue('12345');
    assert.equal(r.changed, false);
  });
});

describe('maskBuffer', () => {
  it('returns the same Buffer object when nothing matched', () => {
    const b = Buffer.from('plain text, no secrets, 2024-05-01, id=42');
    assert.equal(m.maskBuffer(b).value, b);
  });

  it('keeps invalid UTF-8 bytes around a masked secret byte for byte', () => {
    const { secret } = sample('slack-bot-token');
    const b = Buffer.concat([Buffer.from([0xff, 0xfe, 0xc3]), Buffer.from(` ${secret} `), Buffer.from([0x80, 0xed, 0xa0, 0x80])]);
    const r = m.maskBuffer(b);
    assert.equal(r.changed, true);
    assert.deepEqual(r.value, Buffer.concat([Buffer.from([0xff, 0xfe, 0xc3]), Buffer.from(' [MASKED:slack-bot-token] '), Buffer.from([0x80, 0xed, 0xa0, 0x80])]));
  });

  it('agrees with maskText on UTF-8 text', () => {
    const { secret } = sample('anthropic-api-key');
    const t = `Grüße — key ${secret} ✓ done`;
    assert.equal(m.maskBuffer(Buffer.from(t)).value.toString('utf8'), m.maskText(t).value);
  });

  it('applies column rules to bytes', () => {
    const cm = createMasker({ fieldRules: [{ names: ['*secret*'] }] });
    assert.equal(cm.maskBuffer(Buffer.from('x'), 'client_secret').value.toString(), '[MASKED:field-rule-0]');
  });
});

describe('replacements', () => {
  const key = Buffer.from('0123456789abcdef0123456789abcdef');

  it('placeholder with a custom format', () => {
    const pm = createMasker({ replacement: { kind: 'placeholder', format: '<redacted {id}>' } });
    const { secret } = sample('github-pat');
    assert.equal(pm.maskText(secret).value, '<redacted github-pat>');
  });

  it('partial keeps the last N characters and hides the length', () => {
    const pm = createMasker({ replacements: { 'github-pat': { kind: 'partial', keepLast: 4 } } });
    const { secret } = sample('github-pat');
    assert.equal(pm.maskText(secret).value, '****' + secret.slice(-4));
    const other = sample('github-pat', 2).secret;
    assert.equal(pm.maskText(other).value.length, 8);
  });

  it('hmac: equal secrets give equal tokens, different secrets or keys differ', () => {
    const hm = createMasker({ replacement: { kind: 'hmac' }, hmacKey: key });
    const a = sample('github-pat', 1).secret;
    const b = sample('github-pat', 2).secret;
    const ta = hm.maskText(a).value;
    assert.match(ta, /^\[MASKED:github-pat:[0-9a-f]{16}\]$/);
    assert.equal(hm.maskText(`x ${a} y`).value, `x ${ta} y`);
    assert.notEqual(hm.maskText(b).value, ta);
    const other = createMasker({ replacement: { kind: 'hmac' }, hmacKey: Buffer.from('ffffffffffffffffffffffffffffffff') });
    assert.notEqual(other.maskText(a).value, ta);
    const prefixed = createMasker({ replacement: { kind: 'hmac', prefix: 'tok_', length: 12 }, hmacKey: key });
    assert.match(prefixed.maskText(a).value, /^tok_[0-9a-f]{12}$/);
  });

  it('hmac of a column value is deterministic across rows', () => {
    const hm = createMasker({ fieldRules: [{ id: 'emails', names: ['email'] }], replacements: { emails: { kind: 'hmac' } }, hmacKey: key });
    assert.equal(hm.maskValue('a@b.example', 'email').value, hm.maskValue('a@b.example', 'EMAIL').value);
    assert.notEqual(hm.maskValue('a@b.example', 'email').value, hm.maskValue('c@b.example', 'email').value);
  });
});

describe('options are validated up front', () => {
  const bad: [string, Parameters<typeof createMasker>[0], RegExp][] = [
    ['unknown detector', { detectors: ['no-such-detector'] }, /detectors\[0\].*no-such-detector/],
    ['hmac without key', { replacement: { kind: 'hmac' } }, /replacement: hmac replacement needs hmacKey/],
    ['short key', { hmacKey: Buffer.from('short') }, /hmacKey/],
    ['partial shows too much', { replacement: { kind: 'partial', keepLast: 10 } }, /keepLast/],
    ['replacement for unknown id', { replacements: { nope: { kind: 'placeholder' } } }, /replacements\.nope/],
    ['backreference', { customPatterns: [{ id: 'bad', pattern: '(a+)\\1' }] }, /customPatterns\[0\].*"\(a\+\)\\\\1".*RE2/],
    ['lookahead', { customPatterns: [{ id: 'bad2', pattern: 'x(?=y)' }] }, /customPatterns\[0\].*x\(\?=y\)/],
    ['duplicate id', { customPatterns: [{ id: 'a', pattern: 'x' }, { id: 'a', pattern: 'y' }] }, /used twice/],
    ['empty field names', { fieldRules: [{ names: [] }] }, /fieldRules\[0\]\.names/],
    ['window too small', { maxWindow: 10 }, /maxWindow/],
  ];
  for (const [name, opts, re] of bad) {
    it(`refuses ${name} with an error naming the field`, () => {
      assert.throws(() => createMasker(opts), re);
    });
  }

  it('selects detectors by category and disables by id', () => {
    const pii = createMasker({ detectors: ['pii'] });
    assert.ok(pii.ruleIds.includes('email'));
    assert.ok(!pii.ruleIds.includes('github-pat'));
    const noEmail = createMasker({ disable: ['email'] });
    assert.ok(!noEmail.ruleIds.includes('email'));
    assert.ok(!m.ruleIds.includes('ipv4-address'), 'IP detectors are off by default');
    assert.ok(createMasker({ detectors: ['default', 'ipv4-address'] }).ruleIds.includes('ipv4-address'));
  });
});

describe('custom patterns and keyword lists', () => {
  it('runs an RE2 pattern, masking its `secret` group', () => {
    const cm = createMasker({ detectors: [], customPatterns: [{ id: 'acme-key', pattern: 'acme_key=(?P<secret>[A-Z0-9]{12})', keywords: ['acme_key'] }] });
    const r = cm.maskText('cfg acme_key=AB12CD34EF56 end');
    assert.equal(r.value, 'cfg acme_key=[MASKED:acme-key] end');
    assert.deepEqual(r.findings, { 'acme-key': 1 });
  });

  it('runs a keywordless case-insensitive RE2 pattern', () => {
    const cm = createMasker({ detectors: [], customPatterns: [{ id: 'emp', pattern: 'emp-[0-9]{6}', ignoreCase: true }] });
    assert.equal(cm.maskText('EMP-123456 and emp-654321').value, '[MASKED:emp] and [MASKED:emp]');
  });

  it('masks keyword-list literals wherever they occur, case-insensitively', () => {
    const cm = createMasker({ detectors: [], keywordLists: [{ id: 'codenames', words: ['Bluebird', 'project-x'] }] });
    assert.equal(cm.maskText('BLUEBIRD ships; see Project-X.').value, '[MASKED:codenames] ships; see [MASKED:codenames].');
  });
});

describe('bad input stays linear and never throws', () => {
  it('a megabyte-long line with one secret at the end', () => {
    const { secret } = sample('github-pat');
    const t = 'a'.repeat(1 << 20) + ' ' + secret;
    const r = m.maskText(t);
    assert.ok(r.value.endsWith('[MASKED:github-pat]'));
  });

  it('pathological runs of base64-ish characters', () => {
    for (const run of ['A'.repeat(1 << 20), 'aB3+/'.repeat(200_000), ('0123456789abcdef'.repeat(4) + ' ').repeat(15_000)]) {
      const r = m.maskText(run);
      assert.equal(typeof r.value, 'string');
      assert.equal(m.maskBuffer(Buffer.from(run)).value.length > 0, true);
    }
  });

  it('random bytes, lone surrogates, NULs', () => {
    const rng = createRng(3);
    for (let i = 0; i < 50; i++) {
      const b = Buffer.from(Array.from({ length: 500 }, () => rng.int(256)));
      assert.doesNotThrow(() => m.maskBuffer(b));
      assert.doesNotThrow(() => m.maskText(b.toString('latin1') + '\ud800\u0000\udfff'));
    }
  });
});

describe('base64 in text', () => {
  it('masks a base64 run whose plaintext holds a secret, in text, bytes and streams', () => {
    const { secret } = sample('github-pat');
    const b64 = Buffer.from(`GITHUB_TOKEN=${secret}`).toString('base64');
    const t = `config blob: ${b64} (end)`;
    assert.equal(m.maskText(t).value, 'config blob: [MASKED:base64-encoded-secret] (end)');
    assert.equal(m.maskBuffer(Buffer.from(t)).value.toString(), 'config blob: [MASKED:base64-encoded-secret] (end)');
    const s = m.stream();
    const out = Buffer.concat([...Buffer.from(t)].map((b) => s.push(Buffer.from([b]))).concat(s.end())).toString();
    assert.equal(out, 'config blob: [MASKED:base64-encoded-secret] (end)');
  });

  it('leaves base64 of harmless text, hashes and binary alone', () => {
    for (const b64 of [Buffer.from('just a harmless configuration value').toString('base64'), 'q'.repeat(40), Buffer.alloc(48, 0xfe).toString('base64')]) {
      assert.equal(m.maskText(`x ${b64} y`).changed, false, b64);
    }
  });

  it('masks base64 wrapped in lines (MIME 76 columns, openssl 64; \\n or \\r\\n), whose lines decode only together', () => {
    const fine = sample('github-fine-grained-pat').secret;
    const key = DETECTORS.find((d) => d.id === 'private-key-pem')!.positives[0]!.secret.replace(/\\n/g, '\n');
    for (const plain of [`token: ${fine}`, key, JSON.stringify({ config: { auth: fine } })]) {
      for (const width of [76, 64]) {
        for (const nl of ['\n', '\r\n']) {
          const b64 = Buffer.from(plain).toString('base64').replace(new RegExp(`(.{${width}})`, 'g'), `$1${nl}`);
          const t = `Content-Transfer-Encoding: base64${nl}${nl}${b64}${nl}--boundary--`;
          const r = m.maskText(t);
          assert.ok(r.value.includes('[MASKED:base64-encoded-secret]'), `${width} ${JSON.stringify(nl)}: ${r.value.slice(0, 120)}`);
          for (const line of b64.split(nl).slice(0, -1)) assert.ok(!r.value.includes(line), 'no line of the block is left');
          assert.ok(r.value.endsWith(`${nl}--boundary--`));
        }
      }
    }
  });

  it('masks base64 of base64 and hex of a secret (0x…, upper or lower case)', () => {
    const { secret } = sample('github-pat');
    const twice = Buffer.from(Buffer.from(`token=${secret}`).toString('base64')).toString('base64');
    assert.equal(m.maskText(`blob=${twice}`).value, 'blob=[MASKED:base64-encoded-secret]');
    const hex = Buffer.from(`token=${secret}`).toString('hex');
    assert.equal(m.maskText(`dump ${hex} end`).value, 'dump [MASKED:base64-encoded-secret] end');
    assert.equal(m.maskText(`dump ${hex.toUpperCase()} end`).value, 'dump [MASKED:base64-encoded-secret] end');
    const r = m.maskText(`v=0x${hex};`).value;
    assert.ok(r.startsWith('v=0x') && r.endsWith(';'), r);
    assert.equal(Buffer.from(r.slice(4, -1), 'hex').toString(), 'token=[MASKED:github-pat]');
  });

  it('leaves hex of harmless text, digests and wrapped base64 of binary alone', () => {
    const rng = createRng(8);
    const bin = Buffer.from(Array.from({ length: 600 }, () => rng.int(256))).toString('base64').replace(/(.{76})/g, '$1\n');
    const digests = Array.from({ length: 5 }, () => rng.pick('0123456789abcdef', 64)).join('\n');
    for (const t of [Buffer.from('just a harmless configuration value').toString('hex'), bin, digests]) assert.equal(m.maskText(t).changed, false, t.slice(0, 80));
  });

  it('can be turned off', () => {
    const { secret } = sample('github-pat');
    const off = createMasker({ decodeBase64InText: false });
    const b64 = Buffer.from(`token ${secret}`).toString('base64');
    assert.equal(off.maskText(b64).changed, false);
  });
});

describe('bytea hex cells', () => {
  it('masks a secret stored as bytea (\\x hex output) and writes hex back', () => {
    const { secret } = sample('github-pat');
    const cell = '\\x' + Buffer.from(`token=${secret}`).toString('hex');
    const r = m.maskValue(cell, 'payload');
    assert.equal(r.changed, true);
    assert.ok(r.value.startsWith('\\x'));
    assert.equal(Buffer.from(r.value.slice(2), 'hex').toString(), 'token=[MASKED:github-pat]');
    const b = m.maskBuffer(Buffer.from(cell));
    assert.equal(Buffer.from(b.value.toString().slice(2), 'hex').toString(), 'token=[MASKED:github-pat]');
  });

  it('a bytea value inside text (COPY text doubles the backslash) and streamed gives the same hex as the whole cell', () => {
    const { secret } = sample('github-pat');
    const hex = Buffer.from(`token=${secret}`).toString('hex');
    const whole = m.maskBuffer(Buffer.from('\\x' + hex)).value.toString();
    assert.equal(m.maskText(`1\t\\\\x${hex}\n`).value, `1\t\\${whole}\n`);
    const cell = Buffer.from('\\x' + hex);
    for (let cut = 0; cut <= cell.length; cut++) {
      const s = m.stream();
      const out = Buffer.concat([s.push(cell.subarray(0, cut)), s.push(cell.subarray(cut)), s.end()]).toString();
      assert.equal(out, whole, `split at ${cut}`);
    }
  });
});
