// Sidecar footprint: start-up time and RSS (idle, after the first /metrics scrape, after a first SQL session) of chaperone-sidecar with one postgres connection.
//
// Runs the tsc build (what the image runs) and, for comparison, the sources under tsx. RSS is
// VmRSS from /proc; RssAnon (private memory) is reported beside it because the node binary's
// file-backed pages (~35 MB) count in VmRSS too.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { startPostgres } from '../test/env/postgres.ts';
import { AUDIENCE, startOidcProvider } from '../test/helpers/oidc-provider.ts';
import { round3, writeResult, type BenchRow } from './lib/results.ts';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const node = join(root, 'node_modules', '.bin', 'node');
const RUNS = 5;
const SETTLE_MS = 1500;
const GOAL_IDLE_RSS_MB = 55;

interface Memory {
  readonly rssMB: number;
  readonly anonMB: number;
}

function memory(pid: number): Memory {
  const s = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (k: string): number => Number(new RegExp(`${k}:\\s+(\\d+)`).exec(s)?.[1] ?? 0);
  return { rssMB: kb('VmRSS') / 1024, anonMB: kb('RssAnon') / 1024 };
}

function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] ?? 0;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** The node flags the image runs the sidecar with: those of the `#!/usr/bin/env -S node …` line of cli.ts / cli.js. */
function shebangFlags(file: string): string[] {
  const first = readFileSync(file, 'utf8').split('\n', 1)[0] ?? '';
  const m = /^#!\S*env -S node(.*)$/.exec(first);
  return (m?.[1] ?? '').split(' ').filter((a) => a !== '');
}

/** tsc build into a temp dir that resolves packages through a node_modules symlink. */
function build(): string {
  const out = mkdtempSync(join(tmpdir(), 'chap-footprint-build-'));
  const r = spawnSync(join(root, 'node_modules', '.bin', 'tsc'), ['-p', join(root, 'tsconfig.build.json'), '--outDir', out, '--sourceMap', 'false'], { cwd: root, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`tsc build failed:\n${r.stdout}${r.stderr}`);
  copyFileSync(join(root, 'package.json'), join(out, 'package.json'));
  symlinkSync(join(root, 'node_modules'), join(out, 'node_modules'));
  return out;
}

interface Started {
  readonly child: ChildProcess;
  readonly startMs: number;
  readonly adminPort: number;
  readonly pgPort: number;
  readonly exited: Promise<void>;
}

async function start(args: readonly string[]): Promise<Started> {
  const t0 = process.hrtime.bigint();
  const child = spawn(node, args, { cwd: root, stdio: ['ignore', 'ignore', 'pipe'] });
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  let err = '';
  return new Promise((resolve, reject) => {
    let adminPort = 0;
    let pgPort = 0;
    const timer = setTimeout(() => reject(new Error(`sidecar did not start:\n${err}`)), 30_000);
    child.stderr?.on('data', (b: Buffer) => {
      err += b.toString('utf8');
      for (const line of err.split('\n')) {
        if (!line.startsWith('{')) continue;
        const l = JSON.parse(line) as { msg?: string; port?: number; admin?: { port: number } };
        if (l.msg === 'listener started' && l.port) pgPort = l.port;
        if (l.msg === 'sidecar started' && l.admin) adminPort = l.admin.port;
      }
      if (adminPort && pgPort) {
        clearTimeout(timer);
        resolve({ child, startMs: Number(process.hrtime.bigint() - t0) / 1e6, adminPort, pgPort, exited });
      }
    });
    child.once('exit', (c) => reject(new Error(`sidecar exited ${c}:\n${err}`)));
  });
}

async function session(port: number, token: string): Promise<void> {
  const c = new pg.Client({ host: '127.0.0.1', port, user: 'agent', database: 'postgres', password: token });
  await c.connect();
  for (let i = 0; i < 20; i++) await c.query('SELECT $1::int + 1 AS n, now()', [i]);
  await c.query("SELECT 'x' AS a, 42 AS b");
  await c.end();
}

async function main(): Promise<void> {
  const pgp = await startPostgres({ auth: 'scram-sha-256' });
  const idp = await startOidcProvider();
  const dir = mkdtempSync(join(tmpdir(), 'chap-footprint-'));
  const out = build();
  try {
    writeFileSync(join(dir, 'username'), `${pgp.superuser}\n`);
    writeFileSync(join(dir, 'password'), `${pgp.password}\n`);
    const config = join(dir, 'sidecar.json');
    writeFileSync(config, JSON.stringify({
      version: 1,
      identity: { issuers: [{ issuer: idp.issuer, audiences: [AUDIENCE] }] },
      connections: [{
        name: 'db', protocol: 'postgres', listen: { port: 0 },
        upstream: { host: '127.0.0.1', port: pgp.port, database: 'postgres', tls: { mode: 'disable' } },
        credentials: { usernameFile: join(dir, 'username'), passwordFile: join(dir, 'password') },
        access: { allowedGroups: ['db-writers'] },
        policy: { sql: { default: 'allow', packs: ['no-ddl'] } },
      }],
      admin: { port: 0 },
    }));
    const variants: Record<string, readonly string[]> = {
      dist: [...shebangFlags(join(out, 'sidecar', 'cli.js')), join(out, 'sidecar', 'cli.js'), '--config', config],
      tsx: [...shebangFlags(join(root, 'sidecar', 'cli.ts')), '--import', 'tsx', join(root, 'sidecar', 'cli.ts'), '--config', config],
    };
    const rows: BenchRow[] = [];
    const summary: Record<string, number> = {};
    for (const [name, args] of Object.entries(variants)) {
      const m: Record<string, number[]> = { startMs: [], idleRss: [], idleAnon: [], scrapedRss: [], loadedRss: [], loadedAnon: [] };
      for (let i = 0; i < RUNS; i++) {
        const s = await start(args);
        try {
          m.startMs!.push(s.startMs);
          await sleep(SETTLE_MS);
          const idle = memory(s.child.pid!);
          m.idleRss!.push(idle.rssMB);
          m.idleAnon!.push(idle.anonMB);
          await (await fetch(`http://127.0.0.1:${s.adminPort}/metrics`)).text();
          await sleep(300);
          m.scrapedRss!.push(memory(s.child.pid!).rssMB);
          await session(s.pgPort, await idp.token('agent-writer'));
          await sleep(SETTLE_MS);
          const loaded = memory(s.child.pid!);
          m.loadedRss!.push(loaded.rssMB);
          m.loadedAnon!.push(loaded.anonMB);
        } finally {
          s.child.kill('SIGTERM');
          await s.exited;
        }
      }
      const units: Record<string, string> = { startMs: 'ms' };
      for (const [metric, xs] of Object.entries(m)) {
        const v = round3(median(xs));
        rows.push({ config: name, metric, value: v, unit: units[metric] ?? 'MB' });
        summary[`${name}.${metric}`] = v;
        console.log(`${name.padEnd(5)} ${metric.padEnd(11)} median ${v} ${units[metric] ?? 'MB'}  (runs: ${xs.map((x) => x.toFixed(1)).join(', ')})`);
      }
    }
    const path = writeResult({
      name: 'sidecar-footprint',
      command: 'node --import tsx bench/sidecar-footprint.ts',
      params: { runs: RUNS, settleMs: SETTLE_MS, connections: 'one postgres', goalIdleRssMB: GOAL_IDLE_RSS_MB, session: '20 extended-protocol SELECTs + 1 simple' },
      results: rows,
      ratios: { 'dist.idleRss/goal': round3((summary['dist.idleRss'] ?? 0) / GOAL_IDLE_RSS_MB), 'tsx/dist.startMs': round3((summary['tsx.startMs'] ?? 0) / (summary['dist.startMs'] ?? 1)) },
    });
    console.log(`wrote ${path}`);
  } finally {
    rmSync(out, { recursive: true, force: true });
    rmSync(dir, { recursive: true, force: true });
    await idp.close();
    await pgp.stop();
  }
}

await main();
