// pgbench through the PostgreSQL gateway vs direct vs pgbouncer (-S/-N, simple/prepared, c=1/16/64, interleaved) → bench/results/pg.json.
//
// Bounded: each cell runs `pgbench -T CELL_SECONDS`. The sidecar runs in a child process (this file
// with --sidecar-child) with the real token verifier (oidc-provider IdP), policy packs, default
// masking and a file recorder (no fsync), so its RSS and CPU time are its own.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { chownSync, readFileSync, writeFileSync } from 'node:fs';
import { chmod, copyFile, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { round3, writeResult, type BenchRow } from './lib/results.ts';

const run = promisify(execFile);
const CELL_SECONDS = Number(process.env['CHAP_BENCH_CELL_SECONDS'] ?? 3);
const CLIENTS = (process.env['CHAP_BENCH_CLIENTS'] ?? '1,16,64').split(',').map(Number);
/** Filters for profiling runs (defaults: everything). */
const TARGETS = (process.env['CHAP_BENCH_TARGETS'] ?? 'direct,pgbouncer,sidecar').split(',');
const SCRIPTS = (process.env['CHAP_BENCH_SCRIPTS'] ?? '-S,-N').split(',') as ('-S' | '-N')[];
const MODES = (process.env['CHAP_BENCH_MODES'] ?? 'simple,prepared').split(',');
/** Extra node flags for the sidecar child, e.g. `--cpu-prof --cpu-prof-dir=/tmp/prof`. */
const CHILD_NODE_ARGS = (process.env['CHAP_BENCH_SIDECAR_NODE_ARGS'] ?? '').split(' ').filter((a) => a !== '');

/** The node flags a checkout's sidecar runs with in the image: those of `sidecar/cli.ts`'s `#!/usr/bin/env -S node …` line. */
function shebangFlags(file: string): string[] {
  const first = readFileSync(file, 'utf8').split('\n', 1)[0] ?? '';
  const m = /^#!\S*env -S node(.*)$/.exec(first);
  return (m?.[1] ?? '').split(' ').filter((a) => a !== '');
}
const SQL_POLICY = { default: 'allow', packs: ['no-delete-without-where', 'no-update-without-where', 'no-server-file-access', 'no-role-change'] };

/**
 * A/B runs: with CHAP_BENCH_BASE_ROOT set to another checkout (e.g. `git worktree add /tmp/base <commit>`
 * plus a node_modules symlink), the target `sidecar-base` runs that checkout's gateway in the same
 * cells, interleaved with `sidecar`, so both see the same machine load.
 */
const BASE_ROOT = process.env['CHAP_BENCH_BASE_ROOT'];

interface ChildConfig {
  readonly pgPort: number;
  readonly dir: string;
  readonly issuer: string;
  /** Checkout whose sidecar/ code runs (default: this one). */
  readonly root?: string;
  readonly recording?: string;
  /** Ablation for profiling (CHAP_BENCH_BASE_VARIANT, sidecar-base only): norec, nowall, nomask. */
  readonly variant?: string;
}

type ListenerModule = typeof import('../sidecar/protocols/postgres/listener.ts');
type VerifierModule = typeof import('../sidecar/identity/verify-token.ts');
type WriterModule = typeof import('../sidecar/recording/writer.ts');
type SinksModule = typeof import('../sidecar/recording/sinks.ts');
type MaskingModule = typeof import('../sidecar/masking/index.ts');
/** The recorder's second masking wall, as main.ts builds it (default detectors); CHAP_BENCH_RECORDER_WALL=0 leaves it out (runs before 2026-12-04 evening had none). */
const RECORDER_WALL = process.env['CHAP_BENCH_RECORDER_WALL'] !== '0';

async function load<T>(root: string | undefined, rel: string): Promise<T> {
  const url = root === undefined ? new URL(`../${rel}`, import.meta.url).href : pathToFileURL(join(root, rel)).href;
  return (await import(url)) as T;
}

/** The sidecar process: listener on an ephemeral port, real verifier, recorder to a file. */
async function sidecarChild(cfg: ChildConfig): Promise<void> {
  const { startPostgresListener } = await load<ListenerModule>(cfg.root, 'sidecar/protocols/postgres/listener.ts');
  const { createTokenVerifier } = await load<VerifierModule>(cfg.root, 'sidecar/identity/verify-token.ts');
  const { createRecorder } = await load<WriterModule>(cfg.root, 'sidecar/recording/writer.ts');
  const { fileSink } = await load<SinksModule>(cfg.root, 'sidecar/recording/sinks.ts');
  const { createMasker } = await load<MaskingModule>(cfg.root, 'sidecar/masking/index.ts');
  const v = cfg.variant ?? '';
  const wall = RECORDER_WALL && !v.includes('nowall') ? createMasker({}) : undefined;
  const recorder = await createRecorder({
    sinks: [fileSink({ path: join(cfg.dir, cfg.recording ?? 'recording.jsonl'), sync: 'none' })],
    ...(wall ? { mask: (t: string): string => wall.maskText(t).value } : {}),
  });
  const verifier = createTokenVerifier({ issuers: [{ issuer: cfg.issuer, audiences: ['chaperone'] }] });
  const l = await startPostgresListener(
    {
      name: 'bench',
      protocol: 'postgres',
      listen: { host: '127.0.0.1', port: 0 },
      access: { allowedGroups: ['db-writers'], allowedSubjects: [], anyAuthenticated: false },
      readOnly: false,
      limits: { maxMessageBytes: 1 << 20, idleTimeoutSeconds: 0, statementTimeoutSeconds: undefined, connectTimeoutSeconds: 10, maxSessions: 200 },
      masking: {},
      upstream: { host: '127.0.0.1', port: cfg.pgPort, database: 'postgres', tls: { mode: 'disable', caFile: undefined, serverName: undefined, certFile: undefined, keyFile: undefined } },
      credentials: { usernameFile: join(cfg.dir, 'username'), passwordFile: join(cfg.dir, 'password') },
      policy: { sql: SQL_POLICY as never },
    },
    { verifier, recorder: v.includes('norec') ? null : recorder, ...(v.includes('nomask') ? { masker: { ...createMasker({}), maskText: (t: string) => ({ value: t, changed: false, findings: {} }), maskBuffer: (b: Buffer) => ({ value: b, changed: false, findings: {} }) } } : {}) },
  );
  process.stdout.write(`READY ${l.address.port}\n`);
  process.on('SIGTERM', () => {
    void l.close(0).then(() => recorder.close()).finally(() => process.exit(0));
  });
}

/** The floor for any Node proxy: a byte pipe (no framing, no policy, no recording); only with CHAP_BENCH_TARGETS=…,node-pipe. */
async function pipeChild(pgPort: number): Promise<void> {
  const { createServer, connect } = await import('node:net');
  const srv = createServer((c) => {
    const u = connect(pgPort, '127.0.0.1');
    c.setNoDelay(true);
    u.setNoDelay(true);
    c.pipe(u).pipe(c);
    c.on('error', () => u.destroy());
    u.on('error', () => c.destroy());
  });
  srv.listen(0, '127.0.0.1', () => {
    const a = srv.address();
    process.stdout.write(`READY ${typeof a === 'object' && a !== null ? a.port : 0}\n`);
  });
  process.on('SIGTERM', () => process.exit(0));
}

interface PgbenchResult {
  readonly tps: number;
  readonly latencyMs: number;
  readonly transactions: number;
}

async function pgbench(port: number, env: NodeJS.ProcessEnv, script: '-S' | '-N', mode: string, clients: number): Promise<PgbenchResult> {
  const args = ['-n', '-h', '127.0.0.1', '-p', String(port), '-U', 'postgres', '-T', String(CELL_SECONDS), '-c', String(clients), '-j', String(Math.min(clients, 2)), '-M', mode, script, 'postgres'];
  const { stdout } = await run('pgbench', args, { env, timeout: (CELL_SECONDS + 60) * 1000, maxBuffer: 8 << 20 });
  const tps = Number(/tps = ([\d.]+)/.exec(stdout)?.[1] ?? NaN);
  const latencyMs = Number(/latency average = ([\d.]+) ms/.exec(stdout)?.[1] ?? NaN);
  const transactions = Number(/actually processed: (\d+)/.exec(stdout)?.[1] ?? NaN);
  return { tps, latencyMs, transactions };
}

/** utime and stime separately (µs): the sys share is the socket syscalls and the kernel's loopback delivery. */
function cpuSplit(pid: number): { user: number; sys: number } {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.split(' ') ?? [];
  return { user: (Number(f[11]) / 100) * 1e6, sys: (Number(f[12]) / 100) * 1e6 };
}

function rssMiB(pid: number, field: 'VmRSS' | 'VmHWM'): number {
  const m = new RegExp(`${field}:\\s+(\\d+) kB`).exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Number(m?.[1] ?? NaN) / 1024;
}

/** Resets the process's VmHWM to its current RSS (Linux clear_refs 5), so the next VmHWM read is the peak since now. */
function resetPeak(pid: number): boolean {
  try {
    writeFileSync(`/proc/${pid}/clear_refs`, '5');
    return true;
  } catch {
    return false;
  }
}

function waitLine(child: ChildProcess, re: RegExp, ms: number): Promise<RegExpExecArray> {
  return new Promise((resolve, reject) => {
    let buf = '';
    const timer = setTimeout(() => reject(new Error(`child did not print ${String(re)} in ${ms} ms: ${buf}`)), ms);
    child.stdout?.on('data', (c: Buffer) => {
      buf += c.toString();
      const m = re.exec(buf);
      if (m) {
        clearTimeout(timer);
        resolve(m);
      }
    });
    child.once('exit', (code) => reject(new Error(`child exited (${code}) before ready: ${buf}`)));
  });
}

async function startPgbouncer(pgPort: number, password: string, user: { uid: number; gid: number; name: string } | undefined): Promise<{ port: number; pid: number; stop: () => Promise<void> }> {
  const { freePort } = await import('../test/env/ports.ts');
  const { startDaemon } = await import('../test/env/process.ts');
  const dir = await mkdtemp(join(tmpdir(), 'chap-pgbouncer-'));
  const port = await freePort();
  const ini = [
    '[databases]',
    `postgres = host=127.0.0.1 port=${pgPort} dbname=postgres`,
    '[pgbouncer]',
    'listen_addr = 127.0.0.1',
    `listen_port = ${port}`,
    'auth_type = trust',
    `auth_file = ${join(dir, 'users.txt')}`,
    'pool_mode = session',
    'max_client_conn = 300',
    'default_pool_size = 80',
    `unix_socket_dir = ${dir}`,
    `pidfile = ${join(dir, 'pgbouncer.pid')}`,
    `logfile = ${join(dir, 'pgbouncer.log')}`,
    'log_connections = 0',
    'log_disconnections = 0',
    '',
  ].join('\n');
  await writeFile(join(dir, 'pgbouncer.ini'), ini);
  await writeFile(join(dir, 'users.txt'), `"postgres" "${password}"\n`);
  await chmod(join(dir, 'users.txt'), 0o600);
  if (user !== undefined) for (const f of ['', 'pgbouncer.ini', 'users.txt']) chownSync(join(dir, f), user.uid, user.gid);
  const d = startDaemon({ name: 'pgbouncer', command: 'pgbouncer', args: [join(dir, 'pgbouncer.ini')], logFile: join(dir, 'stdout.log'), user, cwd: dir });
  for (let i = 0; i < 100; i++) {
    try {
      await run('psql', ['-X', '-h', '127.0.0.1', '-p', String(port), '-U', 'postgres', '-tAc', 'SELECT 1', 'postgres'], { env: { ...process.env, PGCONNECT_TIMEOUT: '2' } });
      break;
    } catch {
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  return {
    port,
    pid: d.pid,
    stop: async () => {
      await d.stop('SIGTERM');
      await rm(dir, { recursive: true, force: true });
    },
  };
}

async function main(): Promise<void> {
  const { startPostgres, postgresOsUser } = await import('../test/env/postgres.ts');
  const { startOidcProvider } = await import('../test/helpers/oidc-provider.ts');
  const pg = await startPostgres({ auth: 'scram-sha-256', settings: { max_connections: '250' } });
  const idp = await startOidcProvider();
  const dir = await mkdtemp(join(tmpdir(), 'chap-benchpg-'));
  let child: ChildProcess | undefined;
  let base: ChildProcess | undefined;
  let basePort = 0;
  let pipe: ChildProcess | undefined;
  let pipePort = 0;
  let bouncer: Awaited<ReturnType<typeof startPgbouncer>> | undefined;
  try {
    await writeFile(join(dir, 'username'), pg.superuser);
    await writeFile(join(dir, 'password'), pg.password);
    const direct = { ...process.env, PGPASSWORD: pg.password, PGSSLMODE: 'disable' };
    await run('pgbench', ['-i', '-q', '-s', '10', '-h', '127.0.0.1', '-p', String(pg.port), '-U', 'postgres', 'postgres'], { env: direct, timeout: 300_000 });
    bouncer = await startPgbouncer(pg.port, pg.password, postgresOsUser());
    const cfg: ChildConfig = { pgPort: pg.port, dir, issuer: idp.issuer };
    const ownFlags = shebangFlags(new URL('../sidecar/cli.ts', import.meta.url).pathname);
    child = spawn(process.execPath, [...ownFlags, ...CHILD_NODE_ARGS, '--import', 'tsx', process.argv[1] ?? 'bench/pg.ts', '--sidecar-child', JSON.stringify(cfg)], { stdio: ['ignore', 'pipe', 'inherit'] });
    const sidecarPort = Number((await waitLine(child, /READY (\d+)/, 30_000))[1]);
    if (BASE_ROOT !== undefined && TARGETS.includes('sidecar-base')) {
      const bcfg: ChildConfig = { ...cfg, root: BASE_ROOT, recording: 'recording-base.jsonl', ...(process.env['CHAP_BENCH_BASE_VARIANT'] ? { variant: process.env['CHAP_BENCH_BASE_VARIANT'] } : {}) };
      base = spawn(process.execPath, [...shebangFlags(join(BASE_ROOT, 'sidecar', 'cli.ts')), ...CHILD_NODE_ARGS, '--import', 'tsx', process.argv[1] ?? 'bench/pg.ts', '--sidecar-child', JSON.stringify(bcfg)], { stdio: ['ignore', 'pipe', 'inherit'] });
      basePort = Number((await waitLine(base, /READY (\d+)/, 30_000))[1]);
    }
    if (TARGETS.includes('node-pipe')) {
      pipe = spawn(process.execPath, [...CHILD_NODE_ARGS, '--import', 'tsx', process.argv[1] ?? 'bench/pg.ts', '--pipe-child', String(pg.port)], { stdio: ['ignore', 'pipe', 'inherit'] });
      pipePort = Number((await waitLine(pipe, /READY (\d+)/, 30_000))[1]);
    }
    const sidecarPid = child.pid ?? 0;
    const idleRss = rssMiB(sidecarPid, 'VmRSS');
    if (process.env['CHAP_BENCH_VERBOSE'] === '1') console.log(`sidecar ready: rss ${idleRss.toFixed(1)} MiB, peak ${rssMiB(sidecarPid, 'VmHWM').toFixed(1)} MiB`);
    // Warm-up (not measured): loads the SQL parser (WASM) and lets the JIT settle, so the first cell
    // measures the steady state like the others (direct and pgbouncer need no warm-up).
    const warm = { ...process.env, PGPASSWORD: await idp.token('agent-writer'), PGSSLMODE: 'disable' };
    for (const port of basePort > 0 ? [sidecarPort, basePort] : [sidecarPort]) {
      for (const mode of ['simple', 'prepared']) {
        await run('pgbench', ['-n', '-h', '127.0.0.1', '-p', String(port), '-U', 'postgres', '-T', '1', '-c', '2', '-M', mode, '-S', 'postgres'], { env: warm, timeout: 60_000 });
      }
    }
    const rows: BenchRow[] = [{ config: 'sidecar', metric: 'rss-idle', value: round3(idleRss), unit: 'MiB' }];
    // The peak of start-up and warm-up (parser load, first sessions) apart from the peak under load.
    rows.push({ config: 'sidecar', metric: 'rss-peak-warmup', value: round3(rssMiB(sidecarPid, 'VmHWM')), unit: 'MiB' });
    if (process.env['CHAP_BENCH_VERBOSE'] === '1') console.log(`after warm-up: rss ${rssMiB(sidecarPid, 'VmRSS').toFixed(1)} MiB, peak ${rssMiB(sidecarPid, 'VmHWM').toFixed(1)} MiB`);
    const perCellPeak = resetPeak(sidecarPid);
    let loadPeak = 0;
    const ratios: Record<string, number> = {};
    const results = new Map<string, PgbenchResult>();
    let cellIndex = 0;
    for (const script of SCRIPTS) {
      for (const mode of MODES) {
        for (const c of CLIENTS) {
          // Interleaved: the three targets run back to back for every cell, so drift hits all alike.
          const token = await idp.token('agent-writer');
          const targets: [string, number, NodeJS.ProcessEnv, number][] = [
            ['direct', pg.port, direct, 0],
            ['pgbouncer', bouncer.port, { ...process.env, PGSSLMODE: 'disable' }, bouncer.pid],
            ['sidecar', sidecarPort, { ...process.env, PGPASSWORD: token, PGSSLMODE: 'disable' }, sidecarPid],
            ['node-pipe', pipePort, direct, pipe?.pid ?? 0],
          ];
          // A/B: the base sidecar goes before the sidecar in every other cell (at c=1 the one measured
          // second in a cell was measured up to 30 % slower whichever it was, so a fixed order biases).
          const baseTarget: [string, number, NodeJS.ProcessEnv, number] = ['sidecar-base', basePort, { ...process.env, PGPASSWORD: token, PGSSLMODE: 'disable' }, base?.pid ?? 0];
          targets.splice((cellIndex++ % 2 === 0 ? 2 : 3), 0, baseTarget);
          for (const [name, port, env, pid] of targets.filter((t) => TARGETS.includes(t[0]) && t[1] > 0)) {
            const split0 = pid > 0 ? cpuSplit(pid) : { user: 0, sys: 0 };
            const r = await pgbench(port, env, script, mode, c);
            const split1 = pid > 0 ? cpuSplit(pid) : { user: 0, sys: 0 };
            const tx = Math.max(1, r.transactions);
            const cpu = pid > 0 ? (split1.user + split1.sys - split0.user - split0.sys) / tx : NaN;
            const sysShare = pid > 0 ? ` (user ${((split1.user - split0.user) / tx).toFixed(0)}, sys ${((split1.sys - split0.sys) / tx).toFixed(0)})` : '';
            const cell = `${script.slice(1)} ${mode} c=${c}`;
            results.set(`${name} ${cell}`, r);
            rows.push({ config: name, metric: `tps ${cell}`, value: round3(r.tps), unit: 'tps' });
            if (c === 1) rows.push({ config: name, metric: `latency ${cell}`, value: round3(r.latencyMs * 1000), unit: 'µs' });
            if (pid > 0) rows.push({ config: name, metric: `cpu-per-tx ${cell}`, value: round3(cpu), unit: 'µs' });
            if (pid === sidecarPid && perCellPeak) {
              const peak = rssMiB(pid, 'VmHWM');
              loadPeak = Math.max(loadPeak, peak);
              rows.push({ config: name, metric: `rss-peak ${cell}`, value: round3(peak), unit: 'MiB' });
              resetPeak(pid);
            }
            const peakNote = pid === sidecarPid && perCellPeak ? `  peak ${rows[rows.length - 1]?.value ?? 0} MiB` : '';
            console.log(`${name.padEnd(9)} ${cell.padEnd(18)} ${r.tps.toFixed(0).padStart(7)} tps  ${(r.latencyMs * 1000).toFixed(0).padStart(6)} µs avg${pid > 0 ? `  ${cpu.toFixed(0)} CPU-µs/tx${sysShare}` : ''}${peakNote}`);
          }
          const cell = `${script.slice(1)} ${mode} c=${c}`;
          const cpuOf = (t: string): number | undefined => rows.find((r) => r.config === t && r.metric === `cpu-per-tx ${cell}`)?.value;
          const [cpuA, cpuB] = [cpuOf('sidecar'), cpuOf('sidecar-base')];
          if (cpuA !== undefined && cpuB !== undefined) ratios[`A/B cpu-per-tx sidecar/sidecar-base ${cell}`] = round3(cpuA / cpuB);
          const s = results.get(`sidecar ${cell}`);
          const b = results.get(`pgbouncer ${cell}`);
          const d = results.get(`direct ${cell}`);
          if (s && b && d) {
            ratios[`sidecar/pgbouncer tps ${cell}`] = round3(s.tps / b.tps);
            ratios[`sidecar/direct tps ${cell}`] = round3(s.tps / d.tps);
            if (c === 1) {
              const added = (s.latencyMs - d.latencyMs) * 1000;
              const addedB = (b.latencyMs - d.latencyMs) * 1000;
              rows.push({ config: 'sidecar', metric: `added-latency ${cell}`, value: round3(added), unit: 'µs' });
              rows.push({ config: 'pgbouncer', metric: `added-latency ${cell}`, value: round3(addedB), unit: 'µs' });
              ratios[`added latency sidecar/pgbouncer ${cell}`] = round3(added / addedB);
            }
          }
        }
      }
    }
    rows.push({ config: 'sidecar', metric: 'rss-peak', value: round3(perCellPeak ? loadPeak : rssMiB(sidecarPid, 'VmHWM')), unit: 'MiB' });
    rows.push({ config: 'sidecar', metric: 'rss-after', value: round3(rssMiB(sidecarPid, 'VmRSS')), unit: 'MiB' });
    if (process.env['CHAP_BENCH_NO_WRITE'] === '1') return;
    const path = writeResult({
      name: 'pg',
      command: 'node --import tsx bench/pg.ts',
      params: { cellSeconds: CELL_SECONDS, clients: CLIENTS, scale: 10, policy: SQL_POLICY, masking: 'default detectors', recording: `file, sync none${RECORDER_WALL ? ', second wall (default detectors)' : ''}`, ...(BASE_ROOT !== undefined ? { abBase: 'sidecar-base: CHAP_BENCH_BASE_ROOT checkout' } : {}), pgbouncer: 'session pooling, trust' },
      results: rows,
      ratios,
    });
    console.log(`wrote ${path}`);
  } finally {
    pipe?.kill('SIGTERM');
    base?.kill('SIGTERM');
    if (child && child.exitCode === null) {
      // Wait for the child so a --cpu-prof profile is written before the temp dirs go.
      const exited = new Promise((r) => child?.once('exit', r));
      child.kill('SIGTERM');
      await Promise.race([exited, new Promise((r) => setTimeout(r, 10_000))]);
    }
    await bouncer?.stop();
    await idp.close();
    await pg.stop();
    // Keep the sidecar's recording for `verify` (the child has exited, so the file is complete).
    const keep = process.env['CHAP_BENCH_RECORDING_COPY'];
    if (keep !== undefined && keep !== '') await copyFile(join(dir, 'recording.jsonl'), keep).catch((e: unknown) => console.error(`could not copy the recording: ${(e as Error).message}`));
    await rm(dir, { recursive: true, force: true });
  }
}

if (process.argv[2] === '--pipe-child') {
  await pipeChild(Number(process.argv[3]));
} else if (process.argv[2] === '--sidecar-child') {
  await sidecarChild(JSON.parse(process.argv[3] ?? '{}') as ChildConfig);
} else {
  await main();
}
