// Hot reload: watches the config file and its directory (ConfigMap volumes swap a `..data` symlink), debounces, compares content hashes, keeps the last good config.
//
// Why the directory: kubelet updates a ConfigMap volume by writing a new `..2026_…` directory and
// renaming a `..data` symlink onto it; `config.yaml` is a symlink through `..data`, so a watch on the
// file keeps watching the old inode and misses the swap. inotify on the directory sees the rename.
// A slow poll backs both up (some volume types deliver no events at all).
import { watch, type FSWatcher } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { parseConfig, sha256, type CheckOptions } from './config.ts';
import { DEFAULT_RELOAD_DEBOUNCE_MS, type ConfigError, type LoadResult } from './config-types.ts';
import type { ReloadResult } from './metrics.ts';

export type GoodConfig = Extract<LoadResult, { ok: true }>;

/** The file is re-read this often even without events (cheap: one small read and a hash). */
export const DEFAULT_POLL_INTERVAL_MS = 10_000;

export interface Degraded {
  /** One line: why the file on disk is not the config in use. */
  readonly reason: string;
  readonly errors: readonly ConfigError[];
  /** sha256 of the refused content. */
  readonly hash: string;
  readonly since: string;
}

export interface WatchLog {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

export interface WatchOptions {
  readonly path: string;
  readonly initial: GoodConfig;
  /** Called with the new config after it became current; a throw is logged and the new config stays. */
  readonly onApply: (next: GoodConfig, previous: GoodConfig) => void | Promise<void>;
  readonly log: WatchLog;
  readonly metric?: (r: ReloadResult) => void;
  readonly debounceMs?: number;
  readonly pollIntervalMs?: number;
  readonly check?: CheckOptions;
}

export interface ConfigWatcher {
  current(): GoodConfig;
  /** Undefined while the file on disk is the config in use. */
  degraded(): Degraded | undefined;
  /** Re-reads now (tests, SIGHUP); resolves when the attempt is done. */
  reload(): Promise<ReloadResult>;
  close(): void;
}

export function watchConfig(opts: WatchOptions): ConfigWatcher {
  const debounceMs = opts.debounceMs ?? DEFAULT_RELOAD_DEBOUNCE_MS;
  let current = opts.initial;
  let degraded: Degraded | undefined;
  let closed = false;
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<ReloadResult> | undefined;
  let again = false;
  const watchers: FSWatcher[] = [];

  async function attempt(): Promise<ReloadResult> {
    let text: string;
    try {
      text = await readFile(opts.path, 'utf8');
    } catch (e) {
      // Mid-swap the symlink may dangle for an instant: keep the config, the next event or poll retries.
      const code = (e as NodeJS.ErrnoException).code ?? 'error';
      return refuse(sha256(`unreadable:${code}`), [{ path: '(file)', message: `cannot read ${opts.path}: ${code}` }]);
    }
    const hash = sha256(text);
    if (hash === current.hash) {
      if (degraded) {
        degraded = undefined;
        opts.log.info({ hash }, 'config file is back to the config in use');
      }
      return 'unchanged';
    }
    if (hash === degraded?.hash) return 'unchanged';
    const r = parseConfig(text, opts.check);
    if (!r.ok) return refuse(hash, r.errors);
    const previous = current;
    current = r;
    degraded = undefined;
    try {
      await opts.onApply(r, previous);
    } catch (e) {
      opts.log.error({ err: e, hash }, 'applying the reloaded config failed');
    }
    // Logged once applied: a session opened after this line is judged by the new config.
    opts.log.info({ hash, previousHash: previous.hash }, 'config reloaded');
    return 'applied';
  }

  function refuse(hash: string, errors: readonly ConfigError[]): ReloadResult {
    if (hash === degraded?.hash) return 'unchanged';
    const first = errors[0];
    const reason = `config file refused, still serving config ${current.hash.slice(0, 12)}: ${first ? `${first.path}: ${first.message}` : 'invalid'}${errors.length > 1 ? ` (and ${errors.length - 1} more)` : ''}`;
    degraded = { reason, errors, hash, since: new Date().toISOString() };
    opts.log.warn({ hash, errors: errors.map((e) => `${e.path}: ${e.message}`) }, 'config reload refused; keeping the last good config');
    return 'invalid';
  }

  async function run(): Promise<ReloadResult> {
    let result: ReloadResult;
    do {
      again = false;
      result = await attempt();
      if (result !== 'unchanged') opts.metric?.(result);
    } while (again && !closed);
    return result;
  }

  function reload(): Promise<ReloadResult> {
    if (running) {
      again = true;
      return running;
    }
    running = run().finally(() => {
      running = undefined;
    });
    return running;
  }

  function schedule(): void {
    if (closed) return;
    if (timer) clearTimeout(timer);
    timer = setTimeout(() => {
      timer = undefined;
      void reload();
    }, debounceMs);
    timer.unref();
  }

  function addWatch(target: string): void {
    try {
      const w = watch(target, { persistent: false }, schedule);
      w.on('error', (e) => opts.log.warn({ err: e, target }, 'config watch failed; relying on the poll'));
      watchers.push(w);
    } catch (e) {
      opts.log.warn({ err: e, target }, 'cannot watch; relying on the poll');
    }
  }

  addWatch(dirname(opts.path));
  addWatch(opts.path);
  const poll = setInterval(() => void reload(), opts.pollIntervalMs ?? DEFAULT_POLL_INTERVAL_MS);
  poll.unref();

  return {
    current: () => current,
    degraded: () => degraded,
    reload,
    close(): void {
      closed = true;
      if (timer) clearTimeout(timer);
      clearInterval(poll);
      for (const w of watchers) w.close();
    },
  };
}
