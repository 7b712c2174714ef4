// The masking benchmarks' peers: gitleaks (built from its Go module, run on files) and secretlint (in-process).
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { lintSource } from '@secretlint/core';
import { creator as presetRecommend } from '@secretlint/secretlint-rule-preset-recommend';

const HERE = dirname(fileURLToPath(import.meta.url));

export interface PeerSpan {
  readonly start: number;
  readonly end: number;
  readonly rule: string;
}

/** Path of the cached gitleaks binary, building it first if missing (bench/tools/build-gitleaks.sh). */
export function gitleaksBinary(): string {
  const out = execFileSync('bash', [join(HERE, 'build-gitleaks.sh')], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
  return out.trim().split('\n').pop() ?? '';
}

export function gitleaksVersion(bin: string): string {
  return spawnSync(bin, ['version'], { encoding: 'utf8' }).stdout.trim();
}

interface GitleaksFinding {
  readonly RuleID: string;
  readonly File: string;
  readonly Secret: string;
}

/** Runs `gitleaks dir` over one file per text; spans are every occurrence of each reported secret. */
export function gitleaksSpans(bin: string, texts: readonly string[]): PeerSpan[][] {
  const dir = mkdtempSync(join(tmpdir(), 'chap-gitleaks-'));
  try {
    texts.forEach((t, i) => writeFileSync(join(dir, `s${i}.txt`), t));
    const report = join(dir, 'report.json');
    const r = spawnSync(bin, ['dir', dir, '--no-banner', '--log-level', 'error', '--report-format', 'json', '--report-path', report, '--exit-code', '0'], { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`gitleaks failed (${r.status}): ${r.stderr}`);
    const findings = JSON.parse(readFileSync(report, 'utf8')) as GitleaksFinding[];
    const spans: PeerSpan[][] = texts.map(() => []);
    for (const f of findings) {
      const m = /s(\d+)\.txt$/.exec(f.File);
      if (m === null || f.Secret.length === 0) continue;
      const i = Number(m[1]);
      const t = texts[i] ?? '';
      for (let at = t.indexOf(f.Secret); at >= 0; at = t.indexOf(f.Secret, at + 1)) spans[i]!.push({ start: at, end: at + f.Secret.length, rule: f.RuleID });
    }
    return spans;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Wall time of `gitleaks stdin` over one input (process start included, so pass a big one). */
export function gitleaksStdinSeconds(bin: string, input: Buffer): number {
  // Never point --report-path at /dev/null: gitleaks replaces the path with a regular file, which
  // broke /dev/null for the whole machine once. A temp file per run is cheap.
  const dir = mkdtempSync(join(tmpdir(), 'chaperone-gitleaks-'));
  try {
    const t0 = process.hrtime.bigint();
    const r = spawnSync(bin, ['stdin', '--no-banner', '--log-level', 'error', '--exit-code', '0', '--report-format', 'json', '--report-path', join(dir, 'report.json')], { input, maxBuffer: 1 << 30 });
    const s = Number(process.hrtime.bigint() - t0) / 1e9;
    if (r.status !== 0) throw new Error(`gitleaks stdin failed (${r.status}): ${r.stderr.toString()}`);
    return s;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const SECRETLINT_CONFIG = { rules: [{ id: '@secretlint/secretlint-rule-preset-recommend', rule: presetRecommend }] };

/** secretlint with its recommended preset, in-process, one text at a time. */
export async function secretlintSpans(texts: readonly string[]): Promise<PeerSpan[][]> {
  const out: PeerSpan[][] = [];
  for (const [i, content] of texts.entries()) {
    const r = await lintSource({ source: { content, filePath: `/virtual/s${i}.txt`, contentType: 'text' }, options: { config: SECRETLINT_CONFIG, noPhysicFilePath: true } });
    out.push(r.messages.filter((m) => m.type === 'message').map((m) => ({ start: m.range[0], end: m.range[1], rule: m.ruleId })));
  }
  return out;
}
