// The verify CLI as a process on real files and kubectl-style logs, and the by-hand procedure of docs/recording.md.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createPublicKey, generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { recordToMemory, sampleSession } from '../../sidecar/recording/fixtures.ts';
import { keyId } from '../../sidecar/recording/signing.ts';

const root = fileURLToPath(new URL('../../', import.meta.url));
const cli = join(root, 'sidecar/recording/verify-cli.ts');
let dir = '';
let lines: string[] = [];
const { privateKey, publicKey } = generateKeyPairSync('ed25519');

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'chap-verify-'));
  lines = await recordToMemory([...sampleSession('s1'), ...sampleSession('s2')], { signing: { privateKey, everyLines: 4, everyMs: 0 } });
  writeFileSync(join(dir, 'rec.jsonl'), lines.join('\n') + '\n');
  writeFileSync(join(dir, 'pub.pem'), publicKey.export({ type: 'spki', format: 'pem' }));
});
after(() => rmSync(dir, { recursive: true, force: true }));

function run(args: readonly string[], input?: string): { code: number | null; out: string; err: string } {
  const r = spawnSync(process.execPath, ['--import', 'tsx', cli, ...args], { cwd: root, input, encoding: 'utf8', timeout: 30_000 });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

function write(name: string, content: string): string {
  const p = join(dir, name);
  writeFileSync(p, content);
  return p;
}

test('a whole signed recording exits 0 and says so', () => {
  const r = run([join(dir, 'rec.jsonl'), '--key', join(dir, 'pub.pem'), '--require-sealed']);
  assert.equal(r.code, 0, r.out + r.err);
  assert.match(r.out, /^OK .*signatures checked; 0 unsealed/);
});

test('kubectl logs --timestamps output with pino lines mixed in, from stdin', () => {
  const log = lines.flatMap((l, i) => [`2025-01-01T00:00:0${i % 10}.123456789Z {"level":30,"msg":"x"}`, `2025-01-01T00:00:0${i % 10}.223456789Z ${l}`]).join('\n') + '\n';
  const r = run(['-', '--key', join(dir, 'pub.pem')], log);
  assert.equal(r.code, 0, r.out + r.err);
  assert.match(r.out, new RegExp(`${lines.length} other line`));
});

test('a dropped line exits 1 naming the line and the reason', () => {
  const r = run([write('drop.jsonl', lines.toSpliced(5, 1).join('\n') + '\n')]);
  assert.equal(r.code, 1);
  assert.match(r.out, /^FAIL .*: line 6: seq-gap: /);
});

test('a cut last line exits 1 as truncated', () => {
  const text = lines.join('\n');
  const r = run([write('cut.jsonl', text.slice(0, text.length - 10))]);
  assert.equal(r.code, 1);
  assert.match(r.out, /truncated/);
});

test('--json prints the result object', () => {
  const r = run([join(dir, 'rec.jsonl'), '--json']);
  assert.equal(r.code, 0);
  const o = JSON.parse(r.out) as { ok: boolean; count: number; signatures: string };
  assert.deepEqual([o.ok, o.count, o.signatures], [true, lines.length, 'unchecked']);
});

test('usage errors exit 2', () => {
  assert.equal(run(['--require-sealed']).code, 2);
  assert.equal(run(['--bogus']).code, 2);
  assert.equal(run([join(dir, 'missing.jsonl')]).code, 2);
});

test('the by-hand procedure in docs/recording.md works with sha256sum, jq and openssl', () => {
  const doc = readFileSync(join(root, 'docs/recording.md'), 'utf8');
  const script = /<!-- verify-by-hand -->\n```bash\n([\s\S]*?)```/.exec(doc)?.[1];
  assert.ok(script, 'the doc has the verify-by-hand block');
  const sh = write('vbh.sh', script);
  const ok = spawnSync('bash', [sh, join(dir, 'rec.jsonl'), join(dir, 'pub.pem')], { encoding: 'utf8', timeout: 60_000 });
  assert.equal(ok.status, 0, ok.stdout + ok.stderr);
  assert.match(ok.stdout, /chain ok/);
  const edited = write('edited.jsonl', lines.join('\n').replace('"waitedMs":1500', '"waitedMs":1501') + '\n');
  const bad = spawnSync('bash', [sh, edited, join(dir, 'pub.pem')], { encoding: 'utf8', timeout: 60_000 });
  assert.equal(bad.status, 1, bad.stdout + bad.stderr);
  const last = lines.at(-1) ?? '';
  const forgedSig = write('sig.jsonl', [...lines.slice(0, -1), last.replace(/"sig":"(.)/, (_m, c: string) => `"sig":"${c === '0' ? '1' : '0'}`)].join('\n') + '\n');
  const sig = spawnSync('bash', [sh, forgedSig, join(dir, 'pub.pem')], { encoding: 'utf8', timeout: 60_000 });
  assert.match(sig.stdout, /bad signature/);
});

test('the documented key id recipe (openssl DER | sha256sum | cut -c1-16) matches keyId', () => {
  const r = spawnSync('sh', ['-c', `openssl pkey -pubin -in ${join(dir, 'pub.pem')} -outform DER | sha256sum | cut -c1-16`], { encoding: 'utf8' });
  assert.equal(r.stdout.trim(), keyId(createPublicKey(readFileSync(join(dir, 'pub.pem'), 'utf8'))));
});
