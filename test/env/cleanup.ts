// One registry of teardown functions for test environments, run on exit, SIGINT/SIGTERM/SIGHUP and uncaught errors.
//
// Two paths, because Node gives two kinds of last moments:
//  - graceful (`stop`, async): on signals, and on 'beforeExit' when a test file's event loop drains
//    while something is still registered (a shared control plane nobody stopped);
//  - last resort (`kill`, sync): on 'exit', which also fires after an uncaught exception or
//    process.exit(), where no promise can run any more.
// Daemons are additionally started with a parent-death signal (see process.ts), so even a SIGKILL of
// the test process leaves no etcd, kube-apiserver or postgres behind.

export interface Teardown {
  /** Graceful stop; must be idempotent and never throw for an already-stopped thing. */
  readonly stop: () => Promise<void>;
  /** Synchronous last resort (SIGKILL + rmSync); must be idempotent. */
  readonly kill: () => void;
}

interface Entry {
  readonly name: string;
  readonly td: Teardown;
}

/** Graceful teardown on a signal may take this long before we fall back to `kill`. */
const DEFAULT_SIGNAL_TEARDOWN_MS = 20_000;

const registry = new Map<number, Entry>();
let nextId = 1;
let installed = false;
let draining: Promise<void> | undefined;

/** Registers a teardown; returns a function that unregisters it (call it after your own stop()). */
export function onTeardown(name: string, td: Teardown): () => void {
  install();
  const id = nextId++;
  registry.set(id, { name, td });
  return () => {
    registry.delete(id);
  };
}

/** Runs every registered graceful stop, newest first; safe to call more than once. */
export function teardownAll(): Promise<void> {
  draining ??= (async () => {
    const entries = [...registry.entries()].reverse();
    for (const [id, { name, td }] of entries) {
      try {
        await td.stop();
      } catch (err) {
        process.stderr.write(`teardown of ${name} failed (${String(err)}); killing it\n`);
        safeKill(name, td);
      }
      registry.delete(id);
    }
  })().finally(() => {
    draining = undefined;
  });
  return draining;
}

/** True while teardownAll() runs (e.g. after Ctrl-C): watchdogs should not report the daemons they see stopping. */
export function isTearingDown(): boolean {
  return draining !== undefined;
}

/** How many teardowns are still registered (tests assert 0 after stop()). */
export function pendingTeardowns(): string[] {
  return [...registry.values()].map((e) => e.name);
}

function killAllSync(): void {
  for (const [id, { name, td }] of [...registry.entries()].reverse()) {
    safeKill(name, td);
    registry.delete(id);
  }
}

function safeKill(name: string, td: Teardown): void {
  try {
    td.kill();
  } catch (err) {
    process.stderr.write(`last-resort kill of ${name} failed: ${String(err)}\n`);
  }
}

function onSignal(signal: NodeJS.Signals): void {
  if (draining !== undefined) {
    // A second Ctrl-C while stopping: stop waiting.
    killAllSync();
    process.exit(signal === 'SIGINT' ? 130 : 143);
  }
  if (registry.size > 0) process.stderr.write(`\n${signal}: tearing down ${pendingTeardowns().join(', ')} ...\n`);
  const timer = setTimeout(() => {
    process.stderr.write(`teardown still running after ${DEFAULT_SIGNAL_TEARDOWN_MS} ms; killing\n`);
    killAllSync();
    process.exit(1);
  }, DEFAULT_SIGNAL_TEARDOWN_MS);
  teardownAll()
    .catch(() => killAllSync())
    .finally(() => {
      clearTimeout(timer);
      process.exit(signal === 'SIGINT' ? 130 : signal === 'SIGHUP' ? 129 : 143);
    });
}

function install(): void {
  if (installed) return;
  installed = true;
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(sig, onSignal);
  process.on('beforeExit', () => {
    // The loop drained with environments still up (e.g. a shared control plane): stop them
    // gracefully; the loop then drains again and the process exits on its own.
    if (registry.size > 0 && draining === undefined) void teardownAll();
  });
  process.on('exit', killAllSync);
}
