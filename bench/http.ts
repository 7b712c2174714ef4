// HTTP gateway throughput and latency: direct vs haproxy vs the sidecar (masking on / off), 1 KiB and 64 KiB JSON, keep-alive c=50 → bench/results/http.json.
//
// Bounded: each cell runs CELL_SECONDS. The upstream, the sidecar and the reference proxies run in
// child processes (this file with --*-child), so each has its own event loop; the load generator
// (undici Pool, keep-alive, c=50) runs here and its CPU per request is reported, as is the
// upstream's: on 2 cores they share the machine with the proxy. `node-pipe` (node:http server →
// keep-alive http.Agent → pipe) is the floor any node:http proxy pays; `undici-pipe` the same with
// undici as the client. Closed-loop cells run ROUNDS times with the targets interleaved (medians
// reported), then one fixed-rate cell (open loop, RATE requests/s) per target for p99. With
// CHAP_BENCH_BASELINE_DIR (a checkout of an older commit) its sidecar runs too, as base-*: A/B on
// the same load. CHAP_BENCH_SIDECAR_NODE_ARGS="--cpu-prof --cpu-prof-dir=…" profiles the children.
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { Agent, createServer, request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Pool } from 'undici';
import { round3, writeResult, type BenchRow } from './lib/results.ts';
import type { SidecarServices } from '../sidecar/core/config-types.ts';

const CELL_SECONDS = Number(process.env['CHAP_BENCH_CELL_SECONDS'] ?? 2);
const CONNECTIONS = Number(process.env['CHAP_BENCH_CONNECTIONS'] ?? 50);
// Below the sidecar's capacity on a loaded 2-core box (~900 req/s at 1 KiB, ~250 at 64 KiB): p99 then measures latency, not a queue.
const RATE = Number(process.env['CHAP_BENCH_RATE'] ?? 200);
/** Closed-loop rounds per size (targets interleaved each round; medians reported). */
const ROUNDS = Math.max(1, Number(process.env['CHAP_BENCH_ROUNDS'] ?? 3));
const TARGETS = (process.env['CHAP_BENCH_TARGETS'] ?? 'direct,haproxy,node-pipe,sidecar-masking,sidecar-nomasking').split(',');
const SIZES = (process.env['CHAP_BENCH_SIZES'] ?? '1024,65536').split(',').map(Number);
const SELF = fileURLToPath(import.meta.url);
const NODE = process.execPath;

/** A JSON document of about `n` bytes that looks like an API answer (no secrets in it). */
function doc(n: number): string {
  const items: { id: number; name: string; status: string; note: string }[] = [];
  let s = '';
  for (let i = 0; s.length < n; i++) {
    items.push({ id: i, name: `item-${i}`, status: i % 3 === 0 ? 'active' : 'idle', note: 'the quick brown fox jumps over the lazy dog' });
    s = JSON.stringify({ items });
  }
  return s;
}

function upstreamChild(): void {
  const bodies = new Map([...new Set([1024, ...SIZES])].map((n) => [n, Buffer.from(doc(n))]));
  const server = createServer((req, res) => {
    const n = Number((req.url ?? '/1024').slice(1));
    const b = bodies.get(n) ?? bodies.get(1024)!;
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': b.length });
    res.end(b);
  });
  server.keepAliveTimeout = 60_000;
  server.listen(0, '127.0.0.1', () => process.stdout.write(`${(server.address() as { port: number }).port}\n`));
}

/** The floor for any Node proxy: node:http server → keep-alive http.Agent → pipe back, nothing else. */
function nodePipeChild(upstreamPort: number): void {
  const agent = new Agent({ keepAlive: true, maxSockets: 256, maxFreeSockets: 256, scheduling: 'lifo' });
  const server = createServer({ keepAliveTimeout: 60_000, noDelay: true }, (req, res) => {
    const headers = { ...req.headers };
    delete headers['authorization'];
    const up = request({ hostname: '127.0.0.1', port: upstreamPort, method: req.method, path: req.url, headers, agent }, (r) => {
      res.writeHead(r.statusCode ?? 502, r.headers);
      r.pipe(res);
    });
    up.on('error', () => res.destroy());
    req.pipe(up);
  });
  server.listen(0, '127.0.0.1', () => process.stdout.write(`${(server.address() as { port: number }).port}\n`));
}

/** The same floor with undici's Pool as the upstream client (what a switch from node:http's client would buy). */
function undiciPipeChild(upstreamPort: number): void {
  const pool = new Pool(`http://127.0.0.1:${upstreamPort}`, { connections: 256, pipelining: 1, keepAliveTimeout: 60_000 });
  const server = createServer({ keepAliveTimeout: 60_000, noDelay: true }, (req, res) => {
    const headers = { ...req.headers };
    delete headers['authorization'];
    delete headers['connection'];
    delete headers['host'];
    pool.request({ method: req.method ?? 'GET', path: req.url ?? '/', headers, body: req.method === 'GET' || req.method === 'HEAD' ? null : req }).then(
      (r) => {
        res.writeHead(r.statusCode, r.headers as Record<string, string>);
        r.body.pipe(res);
      },
      () => res.destroy(),
    );
  });
  server.listen(0, '127.0.0.1', () => process.stdout.write(`${(server.address() as { port: number }).port}\n`));
}

interface SidecarChildConfig {
  readonly upstream: string;
  readonly issuer: string;
  readonly masking: boolean;
  readonly dir: string;
}

async function sidecarChild(cfg: SidecarChildConfig): Promise<void> {
  const { startHttpGateway, metricsOf } = await import('../sidecar/protocols/http/listener.ts');
  const { createMetrics } = await import('../sidecar/core/metrics.ts');
  const { createTokenVerifier } = await import('../sidecar/identity/verify-token.ts');
  const { createRecorder } = await import('../sidecar/recording/writer.ts');
  const { fileSink } = await import('../sidecar/recording/sinks.ts');
  const { failClosedApprovals } = await import('../sidecar/protocols/postgres/approval-hold.ts');
  const recorder = await createRecorder({ sinks: [fileSink({ path: join(cfg.dir, `rec-${cfg.masking ? 'm' : 'n'}.jsonl`), sync: 'none' })] });
  const silent = { debug: () => undefined, info: () => undefined, warn: () => undefined, error: () => undefined };
  const g = await startHttpGateway(
    {
      name: 'api', protocol: 'http', listen: { host: '127.0.0.1', port: 0 }, access: { allowedGroups: [], allowedSubjects: [], anyAuthenticated: true }, readOnly: false,
      limits: { maxMessageBytes: 1 << 20, idleTimeoutSeconds: 0, statementTimeoutSeconds: undefined, connectTimeoutSeconds: 5, maxSessions: 1000 },
      // Masking off = no detectors (the credential keyword still runs): what the scan itself costs.
      masking: cfg.masking ? {} : { detectors: [] },
      upstream: { url: cfg.upstream, tls: { caFile: undefined, serverName: undefined, certFile: undefined, keyFile: undefined } },
      credentials: { type: 'bearer', tokenFile: join(cfg.dir, 'cred') },
      policy: { http: { default: 'allow', rules: [{ id: 'no-admin', action: 'deny', match: { http: { paths: ['/admin/**'] } } }] } },
    },
    { verifier: createTokenVerifier({ issuers: [{ issuer: cfg.issuer, audiences: ['chaperone'] }] }), recorder, approvals: failClosedApprovals, approvalTimeoutMs: 1000, logger: silent, metrics: metricsOf({ metrics: createMetrics() } as unknown as SidecarServices, 'http'), identity: 'bench' },
  );
  process.stdout.write(`${g.address.port}\n`);
}

function firstLine(p: ChildProcess): Promise<string> {
  return new Promise((resolve, reject) => {
    let buf = '';
    p.stdout?.on('data', (d: Buffer) => {
      buf += d.toString();
      const i = buf.indexOf('\n');
      if (i >= 0) resolve(buf.slice(0, i));
    });
    p.once('exit', (code) => reject(new Error(`child exited ${code ?? 'signal'} before it was ready`)));
  });
}

/** Extra node flags for the sidecar child, e.g. `--cpu-prof --cpu-prof-dir=/tmp/prof`. */
const CHILD_NODE_ARGS = (process.env['CHAP_BENCH_SIDECAR_NODE_ARGS'] ?? '').split(' ').filter((a) => a !== '');

/** A checkout of an older revision (e.g. `git worktree add /tmp/base HEAD~1`): its sidecar runs as targets base-masking / base-nomasking, interleaved with the current one (A/B on the same machine load). */
const BASELINE_DIR = process.env['CHAP_BENCH_BASELINE_DIR'];

function child(args: string[], nodeArgs: string[] = [], self = SELF): ChildProcess {
  return spawn(NODE, [...nodeArgs, '--import', 'tsx', self, ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
}

/** utime + stime of a process in ms (/proc/<pid>/stat fields 14 and 15, in clock ticks of 10 ms). */
function cpuMs(pid: number | undefined): number {
  if (pid === undefined) return NaN;
  try {
    const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.split(' ') ?? [];
    return (Number(f[11]) + Number(f[12])) * 10;
  } catch {
    return NaN;
  }
}

interface CellResult {
  readonly rps: number;
  readonly p50: number;
  readonly p99: number;
  readonly errors: number;
  readonly bytes: number;
}

interface ClosedCell extends CellResult {
  readonly proxyUs: number;
  readonly genUs: number;
  readonly upUs: number;
}

function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  if (s.length === 0) return NaN;
  const m = s.length >> 1;
  return s.length % 2 === 1 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

function percentile(sorted: Float64Array, q: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
}

/** Closed loop (rate undefined: each of the connections sends again as soon as it has an answer) or open loop at `rate`/s. */
async function cell(url: string, path: string, token: string, rate: number | undefined): Promise<CellResult> {
  const pool = new Pool(url, { connections: CONNECTIONS, pipelining: 1, keepAliveTimeout: 60_000 });
  const lat: number[] = [];
  let errors = 0;
  let bytes = 0;
  const headers = { authorization: `Bearer ${token}` };
  const one = async (): Promise<void> => {
    const t = performance.now();
    try {
      const r = await pool.request({ path, method: 'GET', headers });
      const b = Buffer.from(await r.body.arrayBuffer());
      if (r.statusCode !== 200) errors++;
      bytes += b.length;
      lat.push(performance.now() - t);
    } catch {
      errors++;
    }
  };
  // Warm-up: open the connections, fill caches.
  await Promise.all(Array.from({ length: CONNECTIONS }, () => one()));
  lat.length = 0;
  bytes = 0;
  const start = performance.now();
  const end = start + CELL_SECONDS * 1000;
  if (rate === undefined) {
    await Promise.all(Array.from({ length: CONNECTIONS }, async () => {
      while (performance.now() < end) await one();
    }));
  } else {
    const inflight = new Set<Promise<void>>();
    let sent = 0;
    while (performance.now() < end) {
      const due = Math.floor(((performance.now() - start) / 1000) * rate);
      for (; sent < due; sent++) {
        const p = one().finally(() => inflight.delete(p));
        inflight.add(p);
      }
      await new Promise((r) => setTimeout(r, 1));
    }
    await Promise.all(inflight);
  }
  const secs = (performance.now() - start) / 1000;
  await pool.close();
  const sorted = Float64Array.from(lat).sort();
  return { rps: lat.length / secs, p50: percentile(sorted, 0.5), p99: percentile(sorted, 0.99), errors, bytes };
}

async function haproxy(dir: string, upstreamPort: number): Promise<{ port: number; proc: ChildProcess }> {
  const port = await new Promise<number>((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const p = (s.address() as { port: number }).port;
      s.close(() => resolve(p));
    });
  });
  const cfg = join(dir, 'haproxy.cfg');
  await writeFile(cfg, [
    'global', '  maxconn 4096', 'defaults', '  mode http', '  timeout connect 5s', '  timeout client 60s', '  timeout server 60s', '  option http-keep-alive',
    `frontend fe`, `  bind 127.0.0.1:${port}`, '  default_backend be', 'backend be', `  server up 127.0.0.1:${upstreamPort} maxconn 256`,
  ].join('\n') + '\n');
  const proc = spawn('haproxy', ['-f', cfg, '-db'], { stdio: ['ignore', 'ignore', 'inherit'] });
  for (let i = 0; i < 50; i++) {
    try {
      const r = await fetch(`http://127.0.0.1:${port}/1024`);
      await r.arrayBuffer();
      if (r.ok) break;
    } catch {
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  return { port, proc };
}

async function main(): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'chap-bench-http-'));
  const procs: ChildProcess[] = [];
  const { startOidcProvider } = await import('../test/helpers/oidc-provider.ts');
  const idp = await startOidcProvider();
  try {
    const up = child(['--upstream-child']);
    procs.push(up);
    const upstreamPort = Number(await firstLine(up));
    const urls = new Map<string, string>([['direct', `http://127.0.0.1:${upstreamPort}`]]);
    const pids = new Map<string, number | undefined>([['direct', undefined]]);
    if (TARGETS.includes('haproxy')) {
      const h = await haproxy(dir, upstreamPort);
      procs.push(h.proc);
      urls.set('haproxy', `http://127.0.0.1:${h.port}`);
      pids.set('haproxy', h.proc.pid);
    }
    if (TARGETS.includes('undici-pipe')) {
      const p = child(['--undici-pipe-child', String(upstreamPort)], CHILD_NODE_ARGS);
      procs.push(p);
      urls.set('undici-pipe', `http://127.0.0.1:${await firstLine(p)}`);
      pids.set('undici-pipe', p.pid);
    }
    if (TARGETS.includes('node-pipe')) {
      const p = child(['--node-pipe-child', String(upstreamPort)], CHILD_NODE_ARGS);
      procs.push(p);
      urls.set('node-pipe', `http://127.0.0.1:${await firstLine(p)}`);
      pids.set('node-pipe', p.pid);
    }
    const sidecars = [['sidecar-masking', true, SELF], ['sidecar-nomasking', false, SELF], ['base-masking', true, join(BASELINE_DIR ?? '', 'bench/http.ts')], ['base-nomasking', false, join(BASELINE_DIR ?? '', 'bench/http.ts')]] as const;
    for (const [name, masking, self] of sidecars) {
      if (!TARGETS.includes(name) || (name.startsWith('base-') && BASELINE_DIR === undefined)) continue;
      const cfg: SidecarChildConfig = { upstream: `http://127.0.0.1:${upstreamPort}`, issuer: idp.issuer, masking, dir: join(dir, name) };
      await mkdir(cfg.dir, { recursive: true });
      await writeFile(join(cfg.dir, 'cred'), 'bench-upstream-credential-0123456789\n');
      const p = child(['--sidecar-child', JSON.stringify(cfg)], CHILD_NODE_ARGS, self);
      procs.push(p);
      urls.set(name, `http://127.0.0.1:${await firstLine(p)}`);
      pids.set(name, p.pid);
    }
    const token = await idp.token('agent-writer');
    const rows: BenchRow[] = [];
    const ratios: Record<string, number> = {};
    for (const size of SIZES) {
      const got = new Map<string, { max: CellResult; fixed: CellResult }>();
      const closed = new Map<string, ClosedCell[]>();
      // Rounds interleave the targets so a burst of load from elsewhere lands on all of them; medians are reported.
      for (let round = 0; round < ROUNDS; round++) {
        for (const t of TARGETS) {
          const url = urls.get(t);
          if (url === undefined) continue;
          const c0 = cpuMs(pids.get(t));
          const u0 = cpuMs(up.pid);
          const g0 = process.cpuUsage();
          const max = await cell(url, `/${size}`, token, undefined);
          const c1 = cpuMs(pids.get(t));
          const g1 = process.cpuUsage(g0);
          const n = max.rps * CELL_SECONDS;
          // The load generator and the upstream share the 2 cores: if either nears a full core, the cell measures them, not the proxy.
          const list = closed.get(t) ?? [];
          list.push({ ...max, proxyUs: ((c1 - c0) * 1000) / n, genUs: (g1.user + g1.system) / n, upUs: ((cpuMs(up.pid) - u0) * 1000) / n });
          closed.set(t, list);
        }
      }
      for (const t of TARGETS) {
        const url = urls.get(t);
        const list = closed.get(t);
        if (url === undefined || list === undefined) continue;
        const med = (f: (c: ClosedCell) => number): number => median(list.map(f));
        const max: CellResult = { rps: med((c) => c.rps), p50: med((c) => c.p50), p99: med((c) => c.p99), errors: list.reduce((e, c) => e + c.errors, 0), bytes: 0 };
        const cpuUsPerReq = med((c) => c.proxyUs);
        const genUsPerReq = med((c) => c.genUs);
        const upUsPerReq = med((c) => c.upUs);
        const fixed = await cell(url, `/${size}`, token, RATE);
        got.set(t, { max, fixed });
        const label = `${t} ${size === 1024 ? '1KiB' : `${size / 1024}KiB`}`;
        rows.push({ config: label, metric: 'requests_per_second_c50', value: round3(max.rps), unit: 'req/s' });
        rows.push({ config: label, metric: 'p50_ms_c50', value: round3(max.p50), unit: 'ms' });
        rows.push({ config: label, metric: 'p99_ms_c50', value: round3(max.p99), unit: 'ms' });
        rows.push({ config: label, metric: `p99_ms_at_${RATE}rps`, value: round3(fixed.p99), unit: 'ms' });
        if (Number.isFinite(cpuUsPerReq)) rows.push({ config: label, metric: 'proxy_cpu_us_per_request', value: round3(cpuUsPerReq), unit: 'us' });
        rows.push({ config: label, metric: 'loadgen_cpu_us_per_request', value: round3(genUsPerReq), unit: 'us' });
        rows.push({ config: label, metric: 'upstream_cpu_us_per_request', value: round3(upUsPerReq), unit: 'us' });
        rows.push({ config: label, metric: 'errors', value: max.errors + fixed.errors, unit: 'count' });
        const cpus = list.map((c) => Math.round(c.proxyUs)).join('/');
        process.stderr.write(`${label}: ${Math.round(max.rps)} req/s c=${CONNECTIONS} (p50 ${max.p50.toFixed(2)} ms, p99 ${max.p99.toFixed(2)} ms); at ${RATE}/s p99 ${fixed.p99.toFixed(2)} ms; errors ${max.errors + fixed.errors}; CPU µs/req proxy ${Number.isFinite(cpuUsPerReq) ? Math.round(cpuUsPerReq) : '-'} (rounds ${cpus}), loadgen ${Math.round(genUsPerReq)} (${Math.round((genUsPerReq * max.rps) / 10_000)} % of a core), upstream ${Math.round(upUsPerReq)}\n`);
      }
      const h = got.get('haproxy');
      const np = got.get('node-pipe');
      const kb = size === 1024 ? '1KiB' : `${size / 1024}KiB`;
      for (const s of ['sidecar-masking', 'sidecar-nomasking', 'base-masking', 'base-nomasking', 'node-pipe', 'undici-pipe']) {
        const g = got.get(s);
        if (g === undefined) continue;
        if (h !== undefined) {
          ratios[`${s}/haproxy rps ${kb}`] = round3(g.max.rps / h.max.rps);
          ratios[`${s}/haproxy p99@${RATE} ${kb}`] = round3(g.fixed.p99 / h.fixed.p99);
        }
        // Against the bare Node proxy: what the gateway's own work costs on top of node:http.
        if (np !== undefined && s !== 'node-pipe') ratios[`${s}/node-pipe rps ${kb}`] = round3(g.max.rps / np.max.rps);
      }
    }
    const path = writeResult({
      name: 'http',
      command: 'node --import tsx bench/http.ts',
      params: { cellSeconds: CELL_SECONDS, rounds: ROUNDS, connections: CONNECTIONS, fixedRate: RATE, sizes: SIZES, targets: TARGETS, loadGenerator: 'undici Pool in the bench process (keep-alive); its CPU per request is reported (loadgen_cpu_us_per_request)', sidecar: 'child process: real token verifier (cached), one deny rule, file recorder without fsync, default detectors (masking) or none' },
      results: rows,
      ratios,
    });
    process.stderr.write(`wrote ${path}\n${JSON.stringify(ratios, null, 2)}\n`);
  } finally {
    for (const p of procs) p.kill(CHILD_NODE_ARGS.length > 0 ? 'SIGINT' : 'SIGTERM');
    await idp.close();
    await rm(dir, { recursive: true, force: true });
  }
}

const mode = process.argv[2];
// A clean exit on SIGINT writes the CPU profile when one was asked for.
if (mode?.endsWith('-child') === true) process.once('SIGINT', () => process.exit(0));
if (mode === '--upstream-child') upstreamChild();
else if (mode === '--node-pipe-child') nodePipeChild(Number(process.argv[3]));
else if (mode === '--undici-pipe-child') undiciPipeChild(Number(process.argv[3]));
else if (mode === '--sidecar-child') void sidecarChild(JSON.parse(process.argv[3] ?? '{}') as SidecarChildConfig);
else await main();
