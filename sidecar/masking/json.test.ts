// maskJson and maskBase64Value: structure and types kept, field rules by key path, decoding, fallbacks.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createMasker } from './index.ts';
import { nothingToMask, walkJson } from './json.ts';
import { compile } from './mask.ts';
import { DETECTORS, createRng, generateSample } from './detectors/index.ts';

function secretOf(id: string, seed = 1): string {
  const s = generateSample(DETECTORS.find((d) => d.id === id)!, createRng(seed));
  assert.ok(s);
  return s.secret;
}

const m = createMasker({ fieldRules: [{ id: 'pw', names: ['*password*'] }, { id: 'path', names: ['spec.credentials.*'] }] });

describe('maskJson', () => {
  it('masks string values by detector and keeps numbers, bools, null, big integers and formatting', () => {
    const gh = secretOf('github-pat');
    const text = `{\n  "id": 12345678901234567890,\n  "ratio": 1.50,\n  "ok": true,\n  "none": null,\n  "token": "${gh}",\n  "list": [1, "x", false]\n}`;
    const r = m.maskJson(text);
    assert.equal(r.value, text.replace(gh, '[MASKED:github-pat]'));
    assert.deepEqual(r.findings, { 'github-pat': 1 });
    const parsed = JSON.parse(r.value) as Record<string, unknown>;
    assert.equal(typeof parsed['ratio'], 'number');
    assert.equal(parsed['ok'], true);
  });

  it('applies field-name rules by key name and by dotted key path; a matched container masks every leaf', () => {
    const text = JSON.stringify({ user: { Password: 'hunter2', name: 'bob' }, spec: { credentials: { a: 'x', b: 7 } }, db_password: { old: ['p1', 'p2'], rotated: true } });
    const r = m.maskJson(text);
    const v = JSON.parse(r.value) as { user: Record<string, string>; spec: { credentials: Record<string, unknown> }; db_password: { old: string[]; rotated: boolean } };
    assert.equal(v.user['Password'], '[MASKED:pw]');
    assert.equal(v.user['name'], 'bob');
    assert.deepEqual(v.spec.credentials, { a: '[MASKED:path]', b: '[MASKED:path]' });
    assert.deepEqual(v.db_password.old, ['[MASKED:pw]', '[MASKED:pw]']);
    assert.equal(v.db_password.rotated, true, 'booleans carry no secret and keep their type');
  });

  it('masks a PEM key with \\n escapes inside a JSON string and keeps valid JSON', () => {
    const pem = DETECTORS.find((d) => d.id === 'private-key-pem')!.positives[1]!.secret;
    const text = `{"type":"service_account","private_key":"${pem}\\n","client_email":"svc@proj.iam.gserviceaccount.com"}`;
    const r = m.maskJson(text);
    const v = JSON.parse(r.value) as Record<string, string>;
    assert.match(v['private_key']!, /^\[MASKED:[a-z-]+\]/);
    assert.ok(!r.value.includes('-----BEGIN'));
  });

  it('escapes replacements so the result stays valid JSON', () => {
    const wm = createMasker({ replacement: { kind: 'placeholder', format: '"{id}"\\' } });
    const r = wm.maskJson(`{"k":"${secretOf('github-pat')}"}`);
    assert.deepEqual(JSON.parse(r.value), { k: '"github-pat"\\' });
  });

  it('masks a card number stored as a JSON number (as a string placeholder)', () => {
    const r = m.maskJson('{"card":4111111111111111,"qty":3}');
    assert.equal(r.value, '{"card":"[MASKED:payment-card]","qty":3}');
  });

  it('returns the same string when nothing matched', () => {
    const t = '{"a":[1,2,{"b":"c"}]}';
    assert.equal(m.maskJson(t).value, t);
    assert.equal(m.maskJson(t).changed, false);
  });

  it('handles 100k levels of nesting without a stack overflow', () => {
    const depth = 100_000;
    const gh = secretOf('github-pat');
    const text = '['.repeat(depth) + `"${gh}"` + ']'.repeat(depth);
    const r = m.maskJson(text);
    assert.equal(r.value, '['.repeat(depth) + '"[MASKED:github-pat]"' + ']'.repeat(depth));
    const objs = '{"a":'.repeat(depth) + '1' + '}'.repeat(depth);
    assert.equal(m.maskJson(objs).value, objs);
  });

  it('falls back to text masking on invalid JSON (never passes it through)', () => {
    const gh = secretOf('github-pat');
    for (const bad of [`{"token": "${gh}"`, `{"token": "${gh}",}`, `{token: '${gh}'}`, `{"a":1} trailing ${gh}`, `["${gh}" "x"]`, '']) {
      const r = m.maskJson(bad);
      assert.ok(!r.value.includes(gh), `masked: ${bad}`);
    }
  });

  it('decodes base64 string values (Kubernetes Secret data) and re-encodes the masked plaintext', () => {
    const gh = secretOf('github-pat');
    const secret = { apiVersion: 'v1', kind: 'Secret', data: { 'config.env': Buffer.from(`GITHUB_TOKEN=${gh}\nMODE=prod\n`).toString('base64'), plain: Buffer.from('just some config value').toString('base64') } };
    const r = m.maskJson(JSON.stringify(secret));
    const v = JSON.parse(r.value) as typeof secret;
    assert.equal(Buffer.from(v.data['config.env'], 'base64').toString(), 'GITHUB_TOKEN=[MASKED:github-pat]\nMODE=prod\n');
    assert.equal(v.data.plain, secret.data.plain);
    assert.deepEqual(r.findings, { 'github-pat': 1 });
  });

  it('masks the password in docker auths (base64 of user:password, itself inside base64 .dockerconfigjson)', () => {
    const cfg = JSON.stringify({ auths: { 'registry.example.test': { auth: Buffer.from('robot:a-very-long-registry-password').toString('base64') } } });
    const secret = JSON.stringify({ kind: 'Secret', data: { '.dockerconfigjson': Buffer.from(cfg).toString('base64') } });
    const r = m.maskJson(secret);
    const outer = JSON.parse(r.value) as { data: Record<string, string> };
    const inner = JSON.parse(Buffer.from(outer.data['.dockerconfigjson']!, 'base64').toString()) as { auths: Record<string, { auth: string }> };
    const auth = Buffer.from(inner.auths['registry.example.test']!.auth, 'base64').toString();
    assert.ok(auth.startsWith('robot:'), auth);
    assert.ok(!auth.includes('a-very-long-registry-password'), auth);
  });
});

describe('maskBase64Value', () => {
  it('masks the plaintext and returns base64 in the same alphabet', () => {
    const gh = secretOf('github-pat');
    const b64url = Buffer.from(`token: ${gh}`).toString('base64url');
    const r = m.maskBase64Value(b64url);
    assert.equal(Buffer.from(r.value, 'base64url').toString(), 'token: [MASKED:github-pat]');
    assert.ok(!r.value.includes('+') && !r.value.includes('/'));
  });

  it('masks a whole value whose field name matches a rule, staying base64', () => {
    const r = m.maskBase64Value(Buffer.from('hunter2-but-longer').toString('base64'), 'db-password');
    assert.equal(Buffer.from(r.value, 'base64').toString(), '[MASKED:pw]');
  });

  it('masks a value that is not base64 as text', () => {
    const gh = secretOf('github-pat');
    assert.equal(m.maskBase64Value(`not base64 ${gh}`).value, 'not base64 [MASKED:github-pat]');
  });

  it('leaves binary plaintext alone and returns the input unchanged', () => {
    const bin = Buffer.from(Array.from({ length: 64 }, (_, i) => (i * 37) % 256)).toString('base64');
    const r = m.maskBase64Value(bin);
    assert.equal(r.value, bin);
    assert.equal(r.changed, false);
  });
});

describe('maskJson nothing-to-mask gate', () => {
  const configs = [
    compile({}, DETECTORS),
    compile({ detectors: [] }, DETECTORS),
    compile({ detectors: [], keywordLists: [{ id: 'cred', words: ['bench-upstream-credential-0123456789'] }] }, DETECTORS),
    compile({ decodeBase64InText: false }, DETECTORS),
  ];
  const rng = createRng(7);
  const rnd = (): number => rng.int(1 << 30) / (1 << 30);
  const pick = <T>(a: readonly T[]): T => a[rng.int(a.length)]!;
  const plainValues = ['item-1', 'active', 'the quick brown fox jumps over the lazy dog', '2026-12-04T20:09:05Z', '+1 415 555 0100', 'x', '', 'aGVsbG8gd29ybGQgaGVsbG8=', '100%', 'a\\"b', 'caf\\u00e9', 'DE89 3704 0044 0532 0130 00'];
  const secrets = DETECTORS.flatMap((d) => d.positives.map((p) => p.text));
  /** A random document: plain values, numbers, sometimes a detector's secret or the credential, sometimes broken. */
  const docOf = (withSecret: boolean): string => {
    const items: string[] = [];
    const n = 1 + Math.floor(rnd() * 6);
    for (let i = 0; i < n; i++) {
      const v = rnd() < 0.5 ? `"${pick(plainValues)}"` : String(Math.floor(rnd() * 10 ** Math.floor(rnd() * 17)));
      items.push(`"k${i}":${v}`);
    }
    if (withSecret) items.splice(Math.floor(rnd() * items.length), 0, `"s":${JSON.stringify(rnd() < 0.2 ? 'bench-upstream-credential-0123456789' : pick(secrets))}`);
    const doc = `{${items.join(',')}}`;
    return rnd() < 0.15 ? doc.slice(0, Math.floor(rnd() * doc.length)) : doc;
  };

  it('skips the walk only where the walk changes nothing (random documents, with and without secrets, valid and cut short)', () => {
    let skipped = 0;
    for (let i = 0; i < 600; i++) {
      const text = docOf(rnd() < 0.5);
      for (const c of configs) {
        if (!nothingToMask(c, text)) continue;
        skipped++;
        assert.equal(walkJson(c, text).changed, false, `gate skipped a document the walk changes: ${text}`);
      }
    }
    assert.ok(skipped > 100, `the gate should skip plain documents (skipped ${skipped})`);
  });

  it('never skips a document holding a detector sample, the credential, an escape or a field rule match', () => {
    const c = configs[0]!;
    for (const s of secrets) {
      const text = JSON.stringify({ items: [{ id: 1, note: s }] });
      if (walkJson(c, text).changed) assert.equal(nothingToMask(c, text), false, s);
    }
    assert.equal(nothingToMask(configs[2]!, '{"echo":"bench-upstream-credential-0123456789"}'), false);
    assert.equal(nothingToMask(configs[1]!, '{"a":"\\u0041"}'), false);
    assert.equal(nothingToMask(compile({ fieldRules: [{ id: 'pw', names: ['password'] }] }, DETECTORS), '{"password":"x"}'), false);
    assert.equal(nothingToMask(configs[1]!, '{"items":[{"id":1,"name":"item-1","status":"idle"}]}'), true);
    assert.equal(nothingToMask(c, '{"items":[{"id":1,"name":"item-1","status":"idle"}]}'), false, 'keywordless detectors (cards, phones) always walk');
  });

  it('finds a keyword or a base64 run straddling a slice of the prefilter pass (documents over 8 KiB)', () => {
    // Spaces keep it free of base64 runs, which would be a hit of their own.
    const cred = 'pass phrase with its own spaces';
    const c = compile({ detectors: [], keywordLists: [{ id: 'phrase', words: [cred] }] }, DETECTORS);
    for (let cut = 1; cut < cred.length; cut += 7) {
      // The credential starts `cut` characters before offset 8192, where the second slice begins.
      const fill = 8192 - cut - '{"pad":"'.length - 1;
      const text = `{"pad":"${'a '.repeat(fill).slice(0, fill)} ${cred} tail"}`;
      assert.equal(text.indexOf(cred), 8192 - cut);
      assert.equal(walkJson(c, text).changed, true);
      assert.equal(nothingToMask(c, text), false, `cut ${cut}`);
    }
    const b64 = 'QUJDREVGR0hJSktMTU5PUFFSU1RVVldY';
    const text = `{"pad":"${'x '.repeat(4088)}","v":"${b64}"}`;
    assert.ok(text.indexOf(b64) < 8192 && text.indexOf(b64) + b64.length > 8192);
    assert.equal(nothingToMask(configs[1]!, text), false);
    assert.equal(nothingToMask(configs[1]!, `{"pad":"${'x '.repeat(6000)}"}`), true);
  });
});
