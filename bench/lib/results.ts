// The benchmark results convention: every benchmark writes bench/results/<name>.json in one shape.
import { mkdirSync, writeFileSync, readFileSync } from 'node:fs';
import { cpus, totalmem, release } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export interface BenchRow {
  /** What was measured: "direct", "pgbouncer", "sidecar", … */
  readonly config: string;
  readonly metric: string;
  readonly value: number;
  readonly unit: string;
}

export interface BenchResult {
  readonly name: string;
  readonly date: string;
  readonly machine: { readonly cpus: number; readonly cpuModel: string; readonly memGiB: number; readonly node: string; readonly kernel: string };
  readonly command: string;
  readonly params: Readonly<Record<string, unknown>>;
  readonly results: readonly BenchRow[];
  readonly ratios: Readonly<Record<string, number>>;
}

export const RESULTS_DIR = join(dirname(fileURLToPath(import.meta.url)), '..', 'results');

export function machine(): BenchResult['machine'] {
  const c = cpus();
  return {
    cpus: c.length,
    cpuModel: c[0]?.model ?? 'unknown',
    memGiB: Math.round(totalmem() / 2 ** 30),
    node: process.version,
    kernel: release(),
  };
}

/** Writes bench/results/<name>.json and returns its path. */
export function writeResult(r: Omit<BenchResult, 'date' | 'machine'>): string {
  mkdirSync(RESULTS_DIR, { recursive: true });
  const full: BenchResult = { ...r, date: new Date().toISOString(), machine: machine() };
  const path = join(RESULTS_DIR, `${r.name}.json`);
  writeFileSync(path, JSON.stringify(full, null, 2) + '\n');
  return path;
}

export function readResult(name: string): BenchResult {
  return JSON.parse(readFileSync(join(RESULTS_DIR, `${name}.json`), 'utf8')) as BenchResult;
}

/** Rounds for display and ratios: 3 significant digits. */
export function round3(x: number): number {
  return Number(x.toPrecision(3));
}
