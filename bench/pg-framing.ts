// MiB/s of framing a PostgreSQL result stream: our BackendFramer (+ DataRow cell access) vs pg-protocol's Parser; bounded in time.
import { performance } from 'node:perf_hooks';
import { loadavg } from 'node:os';
import { Parser } from 'pg-protocol/dist/parser.js';
import { BackendFramer, DataRowCursor, decodeDataRow } from '../sidecar/protocols/postgres/backend-framer.ts';
import { BackendCode } from '../sidecar/protocols/postgres/codes.ts';
import { commandComplete, dataRow, readyForQuery, rowDescription } from '../sidecar/protocols/postgres/serialize-backend.ts';
import { round3, writeResult } from './lib/results.ts';

const ROWS_PER_RESULT = 1000;
const RESULTS = 40;
/** Socket-sized reads: Node hands a TCP stream to 'data' in chunks of up to 64 KiB. */
const CHUNK = 64 * 1024;
const ROUNDS = 3;
/** Each round stops after this long even on a slow machine (passes are whole streams). */
const ROUND_BUDGET_MS = 300;

/** A pgbench-like wide-ish result: id, name, email, timestamp, a ~60-byte note; every 7th note NULL. */
function buildStream(): Buffer {
  const parts: Buffer[] = [];
  for (let r = 0; r < RESULTS; r++) {
    parts.push(rowDescription([{ name: 'id', typeOid: 23, typeSize: 4 }, { name: 'name' }, { name: 'email' }, { name: 'created_at', typeOid: 1184, typeSize: 8 }, { name: 'note' }]));
    for (let i = 0; i < ROWS_PER_RESULT; i++) {
      const id = r * ROWS_PER_RESULT + i;
      parts.push(
        dataRow([
          String(id),
          `user-${id}`,
          `user${id}@example.test`,
          '2024-05-01 12:34:56.789+00',
          i % 7 === 0 ? null : `note ${id}: lorem ipsum dolor sit amet, consectetur adipiscing`,
        ]),
      );
    }
    parts.push(commandComplete(`SELECT ${ROWS_PER_RESULT}`), readyForQuery('I'));
  }
  return Buffer.concat(parts);
}

const stream = buildStream();
const chunks: Buffer[] = [];
for (let off = 0; off < stream.length; off += CHUNK) chunks.push(stream.subarray(off, off + CHUNK));
const expectedRows = RESULTS * ROWS_PER_RESULT;

type Pass = () => number;

/** pg-protocol in its only mode: every DataRow decoded to an array of strings. */
const pgProtocol: Pass = () => {
  const parser = new Parser();
  let rows = 0;
  for (const c of chunks) {
    parser.parse(c, (m) => {
      if (m.name === 'dataRow') rows++;
    });
  }
  return rows;
};

/** Framing only: raw frames, as forwarded when nothing needs masking. */
const framerOnly: Pass = () => {
  const framer = new BackendFramer();
  let rows = 0;
  for (const c of chunks) {
    framer.push(c, (f) => {
      if (f.code === BackendCode.DataRow) rows++;
    });
  }
  return rows;
};

/** Framing + validating every DataRow and reading every cell's offsets in place (what a scanner needs). */
const framerCursor: Pass = () => {
  const framer = new BackendFramer();
  const cursor = new DataRowCursor();
  let rows = 0;
  let bytes = 0;
  for (const c of chunks) {
    framer.push(c, (f) => {
      if (f.code !== BackendCode.DataRow) return;
      cursor.reset(f);
      for (let i = 0; i < cursor.count; i++) bytes += cursor.length(i);
      rows++;
    });
  }
  if (bytes === 0) throw new Error('no cells read');
  return rows;
};

/** Framing + decodeDataRow: every cell as a Buffer view. */
const framerViews: Pass = () => {
  const framer = new BackendFramer();
  let rows = 0;
  for (const c of chunks) {
    framer.push(c, (f) => {
      if (f.code !== BackendCode.DataRow) return;
      if (decodeDataRow(f).cells.length !== 5) throw new Error('bad row');
      rows++;
    });
  }
  return rows;
};

/** Framing + every cell decoded to a string: the same work pg-protocol does, for a like-for-like number. */
const framerStrings: Pass = () => {
  const framer = new BackendFramer();
  const cursor = new DataRowCursor();
  let rows = 0;
  let last: (string | null)[] = [];
  for (const c of chunks) {
    framer.push(c, (f) => {
      if (f.code !== BackendCode.DataRow) return;
      cursor.reset(f);
      const raw = cursor.frame;
      const cells = new Array<string | null>(cursor.count);
      for (let i = 0; i < cursor.count; i++) {
        const len = cursor.length(i);
        const start = cursor.start(i);
        cells[i] = len < 0 ? null : raw.toString('utf8', start, start + len);
      }
      last = cells;
      rows++;
    });
  }
  if (last.length !== 5) throw new Error('no cells read');
  return rows;
};

const CASES: readonly [string, Pass][] = [
  ['pg-protocol Parser (cells as strings)', pgProtocol],
  ['BackendFramer, raw frames only', framerOnly],
  ['BackendFramer + DataRowCursor (cell offsets in place)', framerCursor],
  ['BackendFramer + decodeDataRow (cells as Buffer views)', framerViews],
  ['BackendFramer + cells as strings', framerStrings],
];

function round(pass: Pass): number {
  const started = performance.now();
  let passes = 0;
  do {
    if (pass() !== expectedRows) throw new Error('bench: wrong row count');
    passes++;
  } while (performance.now() - started < ROUND_BUDGET_MS);
  const seconds = (performance.now() - started) / 1000;
  return (passes * stream.length) / 2 ** 20 / seconds;
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

const loadBefore = loadavg()[0] ?? 0;
for (const [, pass] of CASES) round(pass); // warm-up: let V8 optimize each path before measuring
const samples = new Map<string, number[]>(CASES.map(([name]) => [name, []]));
for (let r = 0; r < ROUNDS; r++) {
  for (const [name, pass] of CASES) samples.get(name)!.push(round(pass)); // interleaved so drift hits all alike
}

const mibs = new Map([...samples].map(([name, xs]) => [name, round3(median(xs))]));
const base = mibs.get(CASES[0]![0])!;
for (const [name, v] of mibs) console.log(`${name.padEnd(58)} ${String(v).padStart(8)} MiB/s  ${round3(v / base)}×`);

const path = writeResult({
  name: 'pg-framing',
  command: './node_modules/.bin/node --import tsx bench/pg-framing.ts',
  params: {
    streamMiB: round3(stream.length / 2 ** 20),
    rows: expectedRows,
    columns: 5,
    chunkBytes: CHUNK,
    rounds: ROUNDS,
    roundBudgetMs: ROUND_BUDGET_MS,
    statistic: 'median of interleaved rounds',
    loadavg1Before: round3(loadBefore),
  },
  results: [...mibs].map(([config, value]) => ({ config, metric: 'throughput', value, unit: 'MiB/s' })),
  ratios: {
    'framer-only/pg-protocol': round3(mibs.get(CASES[1]![0])! / base),
    'framer+cursor/pg-protocol': round3(mibs.get(CASES[2]![0])! / base),
    'framer+views/pg-protocol': round3(mibs.get(CASES[3]![0])! / base),
    'framer+strings/pg-protocol': round3(mibs.get(CASES[4]![0])! / base),
  },
});
console.log(`wrote ${path}`);
