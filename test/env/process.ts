// Starts test daemons (etcd, kube-apiserver, postgres) in their own process group, logging to a file, dying with us.
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, openSync, readFileSync } from 'node:fs';

/** How long a daemon gets between SIGTERM (or the caller's signal) and SIGKILL. */
export const DEFAULT_STOP_GRACE_MS = 10_000;

export interface DaemonOptions {
  /** Short name for messages, e.g. "etcd". */
  readonly name: string;
  readonly command: string;
  readonly args: readonly string[];
  /** Appended stdout+stderr; read back by tail() when start-up fails. */
  readonly logFile: string;
  readonly env?: NodeJS.ProcessEnv;
  readonly cwd?: string;
  /** Run as this unprivileged uid/gid (postgres refuses to run as root); supplementary groups are cleared. */
  readonly user?: OsUser;
}

export interface OsUser {
  readonly name: string;
  readonly uid: number;
  readonly gid: number;
}

export interface ExitInfo {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
}

export interface Daemon {
  readonly name: string;
  readonly pid: number;
  readonly logFile: string;
  /** Resolves when the process has exited (never rejects). */
  readonly exited: Promise<ExitInfo>;
  hasExited(): boolean;
  /** Signal the process group, wait up to graceMs, then SIGKILL the group. Idempotent. */
  stop(signal?: NodeJS.Signals, graceMs?: number): Promise<void>;
  /** Synchronous last resort: SIGKILL the group and wait briefly until it is gone. Idempotent. */
  killSync(): void;
  /** The last `lines` lines of the log, for error messages. */
  tail(lines?: number): string;
}

/** setpriv arguments that run a command as `user` and kill it when this process dies. */
export function setprivArgs(user?: OsUser): string[] {
  const wrap = ['--pdeathsig', 'KILL'];
  if (user !== undefined) wrap.push(`--reuid=${user.uid}`, `--regid=${user.gid}`, '--clear-groups');
  return wrap;
}

/**
 * Spawns `command` through `setpriv --pdeathsig KILL` (util-linux): the kernel kills the daemon if
 * this Node process dies for any reason, even SIGKILL, so no daemon outlives its test process.
 * `detached` gives it its own process group, so stop() reaches postgres' children as well.
 */
export function startDaemon(o: DaemonOptions): Daemon {
  const wrap = setprivArgs(o.user);
  const log = openSync(o.logFile, 'a');
  let child: ChildProcess;
  try {
    child = spawn('setpriv', [...wrap, '--', o.command, ...o.args], {
      cwd: o.cwd,
      env: o.env ?? process.env,
      detached: true,
      stdio: ['ignore', log, log],
    });
  } finally {
    closeSync(log);
  }
  // Our teardown registry, not the child, decides when the test process may end.
  child.unref();
  let exitInfo: ExitInfo | undefined;
  const exited = new Promise<ExitInfo>((resolve) => {
    child.once('exit', (code, signal) => {
      exitInfo = { code, signal };
      resolve(exitInfo);
    });
    child.once('error', (err) => {
      exitInfo = { code: null, signal: null };
      process.stderr.write(`${o.name}: could not start ${o.command}: ${err.message} (is util-linux 'setpriv' installed?)\n`);
      resolve(exitInfo);
    });
  });
  const pid = child.pid ?? -1;
  const signalGroup = (sig: NodeJS.Signals): void => {
    if (pid <= 0 || exitInfo !== undefined) return;
    try {
      process.kill(-pid, sig);
    } catch {
      // ESRCH: the group is already gone.
    }
  };
  let stopping: Promise<void> | undefined;
  return {
    name: o.name,
    pid,
    logFile: o.logFile,
    exited,
    hasExited: () => exitInfo !== undefined,
    stop(signal: NodeJS.Signals = 'SIGTERM', graceMs = DEFAULT_STOP_GRACE_MS): Promise<void> {
      stopping ??= (async () => {
        if (exitInfo !== undefined) return;
        signalGroup(signal);
        const timer = setTimeout(() => signalGroup('SIGKILL'), graceMs);
        await exited;
        clearTimeout(timer);
        // Children of the leader (postgres backends) may outlive it for a moment.
        if (pid > 0) killGroupSync(pid);
      })();
      return stopping;
    },
    killSync(): void {
      if (pid > 0) killGroupSync(pid);
    },
    tail: (lines = 40) => tailFile(o.logFile, lines),
  };
}

/** SIGKILL a process group and wait (synchronously, up to waitMs) until its leader is gone or a zombie. */
export function killGroupSync(pgid: number, waitMs = 3_000): void {
  try {
    process.kill(-pgid, 'SIGKILL');
  } catch {
    return;
  }
  const deadline = Date.now() + waitMs;
  while (Date.now() < deadline && isAlive(pgid)) sleepSync(20);
}

/** True if the process exists and is not a zombie (a dead child not yet reaped still answers kill 0). */
export function isAlive(pid: number): boolean {
  const stat = `/proc/${pid}/stat`;
  if (!existsSync(stat)) return false;
  try {
    const s = readFileSync(stat, 'utf8');
    const state = s.slice(s.lastIndexOf(')') + 2, s.lastIndexOf(')') + 3);
    return state !== 'Z' && state !== 'X';
  } catch {
    return false;
  }
}

export function sleepSync(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

export function tailFile(file: string, lines: number): string {
  try {
    const all = readFileSync(file, 'utf8').split('\n');
    return all.slice(-lines - 1).join('\n').trimEnd();
  } catch {
    return `(no log at ${file})`;
  }
}
