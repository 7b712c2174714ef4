// Recorder throughput: stdout only vs file with group fdatasync vs file with one fdatasync per event, at 1 and 16 writers.
import { generateKeyPairSync } from 'node:crypto';
import { createWriteStream, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createMasker } from '../sidecar/masking/index.ts';
import type { ResultEvent, StatementEvent } from '../sidecar/recording/event.ts';
import { fileSink, streamSink, type Sink } from '../sidecar/recording/sinks.ts';
import { createRecorder, type RecorderOptions } from '../sidecar/recording/writer.ts';
import { round3, writeResult, type BenchRow } from './lib/results.ts';

/** Bounds: each run stops at MAX_EVENTS or MAX_MS, whichever first (the machine is shared). */
const MAX_EVENTS = Number(process.env.REC_BENCH_EVENTS ?? 20_000);
const MAX_MS = Number(process.env.REC_BENCH_MS ?? 3000);
const WRITERS = [1, 16] as const;

interface Config {
  readonly name: string;
  readonly file: boolean;
  /** No stdout either: a sink that accepts instantly, to isolate the recorder's own cost (mask, link, hash, queue). */
  readonly nullSink?: boolean;
  readonly opts: Partial<RecorderOptions>;
}

const { privateKey } = generateKeyPairSync('ed25519');
/** The second wall as main.ts builds it (default detectors). */
const wall = createMasker({});
const CONFIGS: readonly Config[] = [
  { name: 'null-sink', file: false, nullSink: true, opts: {} },
  { name: 'null-sink-wall', file: false, nullSink: true, opts: { mask: (t) => wall.maskText(t).value } },
  { name: 'null-sink-wall-tx', file: false, nullSink: true, opts: { mask: (t) => wall.maskText(t).value } },
  { name: 'stdout-only', file: false, opts: {} },
  { name: 'file-group-fdatasync', file: true, opts: {} },
  { name: 'file-fdatasync-per-event', file: true, opts: { maxBatchLines: 1 } },
  { name: 'file-group-fdatasync-signed', file: true, opts: { signing: { privateKey, everyLines: 1000, everyMs: 10_000 } } },
];

function event(session: string, cmd: number): StatementEvent {
  return {
    type: 'statement',
    session,
    cmd,
    text: `SELECT abalance FROM pgbench_accounts WHERE aid = ${cmd}`,
    classification: { kinds: ['read'], tables: ['public.pgbench_accounts'], functions: [] },
    decision: 'allow',
    rule: null,
    statementHash: 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855',
  };
}

/** The result line of a pgbench `-S` statement (recorded lazily after it, as the gateway does). */
function result(session: string, cmd: number): ResultEvent {
  return { type: 'result', session, cmd, rows: 1, bytes: 60, masked: {}, durationMs: 0.123 };
}

function nullSink(): Sink {
  const ok = (): Promise<{ last: null; truncatedBytes: number }> => Promise.resolve({ last: null, truncatedBytes: 0 });
  return { name: 'null', required: true, open: ok, write: () => Promise.resolve(), ack: () => undefined, recover: ok, close: () => Promise.resolve(), stats: () => ({ writes: 0, bytes: 0, syncs: 0 }) };
}

interface Run {
  readonly events: number;
  readonly ms: number;
  readonly meanLatencyUs: number;
  readonly p99LatencyUs: number;
  readonly syncsPerEvent: number;
  readonly cpuUsPerEvent: number;
  readonly sysUsPerEvent: number;
}

async function runOne(cfg: Config, writers: number, dir: string, maxEvents = MAX_EVENTS): Promise<Run> {
  const sinks: Sink[] = [cfg.nullSink ? nullSink() : streamSink(createWriteStream('/dev/null'), { name: 'stdout' })];
  const path = join(dir, `${cfg.name}-${writers}.jsonl`);
  if (cfg.file) sinks.push(fileSink({ path }));
  const rec = await createRecorder({ ...cfg.opts, sinks });
  const lat: number[] = [];
  const t0 = performance.now();
  const cpu0 = process.cpuUsage();
  let issued = 0;
  await Promise.all(
    Array.from({ length: writers }, async (_, w) => {
      // Each writer behaves like a session: the next statement waits for the previous record (write-ahead).
      while (issued < maxEvents && performance.now() - t0 < MAX_MS) {
        const n = issued++;
        const s = performance.now();
        const done = rec.record(event(`w${w}`, n));
        // `-tx`: a statement and its result line, like one gateway transaction (an event is then a transaction).
        if (cfg.name.endsWith('-tx')) void rec.record(result(`w${w}`, n), { lazy: true });
        await done;
        lat.push(performance.now() - s);
      }
    }),
  );
  const ms = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  const stats = rec.stats();
  await rec.close();
  lat.sort((a, b) => a - b);
  const syncs = stats.sinks[`file:${path}`]?.syncs ?? 0;
  return {
    events: lat.length,
    ms,
    meanLatencyUs: (lat.reduce((a, b) => a + b, 0) / lat.length) * 1000,
    p99LatencyUs: (lat[Math.floor(lat.length * 0.99)] ?? 0) * 1000,
    syncsPerEvent: syncs / lat.length,
    cpuUsPerEvent: (cpu.user + cpu.system) / lat.length,
    sysUsPerEvent: cpu.system / lat.length,
  };
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'chap-rec-bench-'));
  const rows: BenchRow[] = [];
  const eps: Record<string, number> = {};
  try {
    // Warm-up (discarded): JIT and the thread pool, so the first measured config is not penalized.
    for (const cfg of CONFIGS) await runOne(cfg, 16, dir, 1000);
    for (const writers of WRITERS) {
      for (const cfg of CONFIGS) {
        const r = await runOne(cfg, writers, dir);
        const config = `${cfg.name} c=${writers}`;
        eps[config] = r.events / (r.ms / 1000);
        rows.push(
          { config, metric: 'events_per_s', value: round3(eps[config]), unit: 'events/s' },
          { config, metric: 'us_per_event', value: round3((r.ms * 1000) / r.events), unit: 'µs' },
          { config, metric: 'record_latency_mean', value: round3(r.meanLatencyUs), unit: 'µs' },
          { config, metric: 'record_latency_p99', value: round3(r.p99LatencyUs), unit: 'µs' },
          { config, metric: 'cpu_per_event', value: round3(r.cpuUsPerEvent), unit: 'µs' },
          { config, metric: 'sys_cpu_per_event', value: round3(r.sysUsPerEvent), unit: 'µs' },
          { config, metric: 'fdatasync_per_event', value: round3(r.syncsPerEvent), unit: 'syncs' },
          { config, metric: 'events', value: r.events, unit: 'events' },
        );
        console.log(`${config.padEnd(36)} ${String(Math.round(eps[config])).padStart(7)} ev/s  mean ${r.meanLatencyUs.toFixed(0)} µs  p99 ${r.p99LatencyUs.toFixed(0)} µs  cpu ${r.cpuUsPerEvent.toFixed(1)} (sys ${r.sysUsPerEvent.toFixed(1)}) µs/ev  syncs/ev ${r.syncsPerEvent.toFixed(3)}`);
      }
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  const ratio = (a: string, b: string): number => round3((eps[a] ?? 0) / (eps[b] ?? 1));
  const path = writeResult({
    name: 'recording',
    command: 'node --import tsx bench/recording-throughput.ts',
    params: { maxEvents: MAX_EVENTS, maxMs: MAX_MS, writers: WRITERS, stdout: '/dev/null (all configs)', file: `${tmpdir()} (fdatasync per batch)` },
    results: rows,
    ratios: {
      'group_vs_per_event_c16': ratio('file-group-fdatasync c=16', 'file-fdatasync-per-event c=16'),
      'group_vs_per_event_c1': ratio('file-group-fdatasync c=1', 'file-fdatasync-per-event c=1'),
      'file_group_vs_stdout_c16': ratio('file-group-fdatasync c=16', 'stdout-only c=16'),
      'signed_vs_unsigned_c16': ratio('file-group-fdatasync-signed c=16', 'file-group-fdatasync c=16'),
    },
  });
  console.log(`wrote ${path}`);
}

await main();
