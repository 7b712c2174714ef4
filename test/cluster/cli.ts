// `make cluster-up` / `cluster-down`: run one test control plane by hand (foreground), stop it, or wrap a command with one.
import { spawn } from 'node:child_process';
import { existsSync, readFileSync, rmSync, symlinkSync, unlinkSync, writeFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { isTearingDown, onTeardown, teardownAll } from '../env/cleanup.ts';
import { isAlive } from '../env/process.ts';
import { ATTACH_ENV, startControlPlane, type ControlPlane } from './control-plane.ts';
import { cacheDir, toolPath } from './tools.ts';

const HEALTH_EVERY_MS = 5_000;
const DOWN_WAIT_MS = 30_000;

interface RunInfo {
  readonly pid: number;
  readonly dir: string;
  readonly url: string;
}

function runDir(): string {
  return join(cacheDir(), 'run');
}
const pidFile = (): string => join(runDir(), 'cluster-up.json');
const linkPath = (): string => join(runDir(), 'cluster');

function readRunInfo(): RunInfo | undefined {
  if (!existsSync(pidFile())) return undefined;
  try {
    return JSON.parse(readFileSync(pidFile(), 'utf8')) as RunInfo;
  } catch {
    return undefined;
  }
}

function clearRunInfo(): void {
  rmSync(pidFile(), { force: true });
  try {
    unlinkSync(linkPath());
  } catch {
    // no link
  }
}

function describe(cp: ControlPlane): string {
  const width = Math.max(...cp.users.map((u) => u.name.length));
  const lines = [
    `control plane up: ${cp.url} (kube-apiserver ${cp.version}; etcd + apiserver logs in ${join(cp.dir, 'logs')})`,
    'kubeconfigs:',
    ...cp.users.map((u) => `  ${u.name.padEnd(width)}  ${cp.kubeconfig(u.name)}   (groups: ${u.groups.join(', ')})`),
    '',
    `try:    ${toolPath('kubectl')} --kubeconfig ${cp.kubeconfig('admin')} get ns`,
    `reuse:  ${ATTACH_ENV}=${linkPath()} npm run test:integration   (tests attach instead of starting their own)`,
    'stop:   Ctrl-C here, or `make cluster-down` from another shell',
  ];
  return lines.join('\n');
}

async function up(): Promise<void> {
  const running = readRunInfo();
  if (running !== undefined && isAlive(running.pid)) {
    throw new Error(`a control plane is already up (pid ${running.pid}, ${running.url}); stop it with 'make cluster-down' first`);
  }
  clearRunInfo();
  const cp = await startControlPlane();
  mkdirSync(runDir(), { recursive: true });
  writeFileSync(pidFile(), JSON.stringify({ pid: process.pid, dir: cp.dir, url: cp.url } satisfies RunInfo));
  symlinkSync(cp.dir, linkPath());
  // Registered after the control plane, so it runs first on the way out (newest first).
  onTeardown('cluster-up pid file', { stop: () => Promise.resolve(clearRunInfo()), kill: clearRunInfo });
  process.stdout.write(`${describe(cp)}\n`);
  // Stay in the foreground; leave if a daemon dies underneath us.
  for (;;) {
    await delay(HEALTH_EVERY_MS);
    const r = await cp.request('admin', 'GET', '/readyz').catch((err: unknown) => ({ status: 0, text: String(err) }));
    if (isTearingDown()) return;
    if (r.status !== 200) {
      process.stderr.write(`control plane stopped answering (/readyz: ${r.status} ${r.text}); logs in ${join(cp.dir, 'logs')}; tearing down\n`);
      await teardownAll();
      process.exit(1);
    }
  }
}

async function down(): Promise<void> {
  const info = readRunInfo();
  if (info === undefined || !isAlive(info.pid)) {
    clearRunInfo();
    process.stdout.write('no test control plane is running (nothing to stop)\n');
    return;
  }
  process.kill(info.pid, 'SIGTERM');
  const until = Date.now() + DOWN_WAIT_MS;
  while (isAlive(info.pid) && Date.now() < until) await delay(100);
  if (isAlive(info.pid)) throw new Error(`pid ${info.pid} did not stop within ${DOWN_WAIT_MS} ms; kill it by hand (kill ${info.pid})`);
  process.stdout.write(`stopped the control plane at ${info.url} (pid ${info.pid})\n`);
}

/** Starts one control plane, runs the command with CHAPERONE_TEST_CLUSTER pointing at it, stops it. */
async function exec(cmd: readonly string[]): Promise<number> {
  const [bin, ...args] = cmd;
  if (bin === undefined) throw new Error('usage: cli.ts exec -- <command> [args…]');
  const cp = await startControlPlane();
  try {
    return await new Promise<number>((resolve, reject) => {
      const child = spawn(bin, args, { stdio: 'inherit', env: { ...process.env, [ATTACH_ENV]: cp.dir } });
      child.on('error', reject);
      child.on('exit', (code, signal) => resolve(code ?? (signal !== null ? 128 + 15 : 1)));
    });
  } finally {
    await cp.stop();
  }
}

async function main(argv: readonly string[]): Promise<void> {
  const [verb, ...rest] = argv;
  switch (verb) {
    case 'up':
      return up();
    case 'down':
      return down();
    case 'exec':
      process.exitCode = await exec(rest[0] === '--' ? rest.slice(1) : rest);
      return;
    default:
      throw new Error('usage: node --import tsx test/cluster/cli.ts up | down | exec -- <command…>');
  }
}

main(process.argv.slice(2)).catch((err: unknown) => {
  process.stderr.write(`${err instanceof Error ? err.message : String(err)}\n`);
  process.exitCode = 1;
});
