// Benchmark: SQL classification cost per statement (parse, cold classify, cached) and cache hit rate
// on a pgbench-like stream. Writes bench/results/sql-classify.json. Bounded: ~10 s on 2 cores.
import { performance } from 'node:perf_hooks';
import { writeResult, round3, type BenchRow } from './lib/results.ts';
import { SqlClassifier, loadSqlParser } from '../sidecar/protocols/postgres/sql-cache.ts';
import { classifyUncached } from '../sidecar/protocols/postgres/sql-facts.ts';
import { normalizeSql } from '../sidecar/protocols/postgres/sql-normalize.ts';
import { compileSqlPolicy, evaluateSql } from '../sidecar/policy/evaluate-sql.ts';

const ITER = Number(process.env.BENCH_ITER ?? 4000);

function rnd(n: number): number {
  return 1 + Math.floor(Math.random() * n);
}

const STATEMENTS: Record<string, () => string> = {
  'pgbench-select': () => `SELECT abalance FROM pgbench_accounts WHERE aid = ${rnd(100000)};`,
  'tpcb-update': () => `UPDATE pgbench_accounts SET abalance = abalance + ${rnd(5000) - 2500} WHERE aid = ${rnd(100000)};`,
  'join-3': () =>
    `SELECT a.aid, b.bbalance, t.tbalance FROM pgbench_accounts a JOIN pgbench_branches b ON b.bid = a.bid JOIN pgbench_tellers t ON t.bid = b.bid WHERE a.aid = ${rnd(100000)} AND t.tid > ${rnd(10)} ORDER BY t.tid LIMIT 10`,
};

/** Median of `rounds` timings of `n` calls, in µs per call. */
function time(n: number, fn: (i: number) => void, rounds = 5): number {
  for (let i = 0; i < Math.min(n, 500); i++) fn(i); // warm up the JIT
  const per: number[] = [];
  for (let r = 0; r < rounds; r++) {
    const t0 = performance.now();
    for (let i = 0; i < n; i++) fn(i);
    per.push(((performance.now() - t0) * 1000) / n);
  }
  per.sort((a, b) => a - b);
  return per[Math.floor(per.length / 2)] ?? 0;
}

/** pgbench TPC-B: seven simple-protocol messages per transaction, fresh literals each time. */
function* tpcbStream(txns: number): Generator<string> {
  for (let i = 0; i < txns; i++) {
    const aid = rnd(100000);
    const tid = rnd(10);
    const bid = rnd(1);
    const delta = rnd(10000) - 5000;
    yield 'BEGIN;';
    yield `UPDATE pgbench_accounts SET abalance = abalance + ${delta} WHERE aid = ${aid};`;
    yield `SELECT abalance FROM pgbench_accounts WHERE aid = ${aid};`;
    yield `UPDATE pgbench_tellers SET tbalance = tbalance + ${delta} WHERE tid = ${tid};`;
    yield `UPDATE pgbench_branches SET bbalance = bbalance + ${delta} WHERE bid = ${bid};`;
    yield `INSERT INTO pgbench_history (tid, bid, aid, delta, mtime) VALUES (${tid}, ${bid}, ${aid}, ${delta}, CURRENT_TIMESTAMP);`;
    yield 'END;';
  }
}

async function main(): Promise<void> {
  const rssBefore = process.memoryUsage().rss;
  const t0 = performance.now();
  const parse = await loadSqlParser();
  const loadMs = performance.now() - t0;
  const rssAfterLoad = process.memoryUsage().rss;
  const policyResult = compileSqlPolicy({ default: 'allow', packs: ['read-only', 'no-server-file-access', 'no-admin'] });
  if (!policyResult.ok) throw new Error(JSON.stringify(policyResult.errors));
  const policy = policyResult.policy;
  const rows: BenchRow[] = [];
  const ratios: Record<string, number> = {};

  for (const [name, gen] of Object.entries(STATEMENTS)) {
    const texts = Array.from({ length: ITER }, gen);
    const at = (i: number): string => texts[i % texts.length] ?? '';
    const parseUs = time(ITER, (i) => parse(at(i)));
    const normalizeUs = time(ITER, (i) => normalizeSql(at(i)));
    const coldUs = time(ITER, (i) => classifyUncached(parse, at(i)));
    const warm = new SqlClassifier(parse);
    warm.classify(at(0));
    const normalizedHitUs = time(ITER, (i) => warm.classify(at(i)));
    const exact = new SqlClassifier(parse);
    exact.classify(at(0), 'extended');
    const exactHitUs = time(ITER, () => exact.classify(at(0), 'extended'));
    const facts = warm.classify(at(1));
    const evaluateUs = time(ITER, () => evaluateSql(policy, facts));
    rows.push(
      { config: name, metric: 'libpg-query parseSync', value: round3(parseUs), unit: 'µs/stmt' },
      { config: name, metric: 'normalize (scanner)', value: round3(normalizeUs), unit: 'µs/stmt' },
      { config: name, metric: 'classify cold (parse + walk + normalize + sha256)', value: round3(coldUs), unit: 'µs/stmt' },
      { config: name, metric: 'classify cached, normalized hit (new literals)', value: round3(normalizedHitUs), unit: 'µs/stmt' },
      { config: name, metric: 'classify cached, exact hit (extended protocol)', value: round3(exactHitUs), unit: 'µs/stmt' },
      { config: name, metric: 'evaluate (3 packs)', value: round3(evaluateUs), unit: 'µs/stmt' },
    );
    ratios[`${name}: cold / normalized hit`] = round3(coldUs / normalizedHitUs);
    ratios[`${name}: parse / normalize`] = round3(parseUs / normalizeUs);
  }

  const TXNS = 5000;
  const stream = new SqlClassifier(parse);
  const ts = performance.now();
  let n = 0;
  for (const q of tpcbStream(TXNS)) {
    stream.classify(q);
    n++;
  }
  const streamUs = ((performance.now() - ts) * 1000) / n;
  const s = stream.stats();
  rows.push(
    { config: 'tpcb-stream', metric: 'cache hit rate', value: Number(s.hitRate.toFixed(5)), unit: 'ratio' },
    { config: 'tpcb-stream', metric: 'cache misses', value: s.misses, unit: 'statements' },
    { config: 'tpcb-stream', metric: 'cache entries', value: s.entries, unit: 'entries' },
    { config: 'tpcb-stream', metric: 'cache bytes (estimate)', value: s.bytes, unit: 'bytes' },
    { config: 'tpcb-stream', metric: 'classify, mean over stream', value: round3(streamUs), unit: 'µs/stmt' },
    { config: 'libpg-query', metric: 'lazy load time', value: round3(loadMs), unit: 'ms' },
    { config: 'libpg-query', metric: 'RSS added by loading', value: round3((rssAfterLoad - rssBefore) / 2 ** 20), unit: 'MiB' },
  );
  const path = writeResult({
    name: 'sql-classify',
    command: './node_modules/.bin/node --import tsx bench/sql-classify.ts',
    params: { iterations: ITER, rounds: 5, statistic: 'median of rounds', tpcbTransactions: TXNS, statementsInStream: n },
    results: rows,
    ratios,
  });
  for (const r of rows) console.log(`${r.config.padEnd(16)} ${r.metric.padEnd(52)} ${r.value} ${r.unit}`);
  console.log(path);
}

await main();
