// Lists (and with --check, fails on) processes and temp dirs our test environments left behind; run after a test suite.
import { existsSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { processesMentioning, TEMP_PREFIXES } from './tempdir.ts';

export interface Leftovers {
  readonly processes: { pid: number; cmd: string }[];
  readonly dirs: string[];
}

/** Everything under os.tmpdir() with our prefixes, and every process whose command line mentions one. */
export function findLeftovers(parent = tmpdir()): Leftovers {
  const dirs = existsSync(parent) ? readdirSync(parent).filter((n) => TEMP_PREFIXES.some((p) => n.startsWith(p))).map((n) => join(parent, n)) : [];
  const processes = TEMP_PREFIXES.flatMap((p) => processesMentioning(join(parent, p)));
  return { processes, dirs };
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const l = findLeftovers();
  if (l.processes.length === 0 && l.dirs.length === 0) {
    process.stdout.write('leftovers: none (no etcd, kube-apiserver or postgres from the test environments, no temp dirs)\n');
  } else {
    for (const p of l.processes) process.stdout.write(`leftover process ${p.pid}: ${p.cmd}\n`);
    for (const d of l.dirs) process.stdout.write(`leftover dir ${d}\n`);
    process.stdout.write('leftovers: a test did not stop its environment (see above); kill the pids and remove the dirs\n');
    if (process.argv.includes('--check')) process.exitCode = 1;
  }
}
