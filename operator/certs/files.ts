// Externally managed webhook TLS (cert-manager or any): tls.crt, tls.key and ca.crt from a directory, watched and hot-reloaded.
import { watch, type FSWatcher } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { TlsMaterial, WebhookLog } from '../server/webhook-server.ts';
import { keyMatches } from './pki.ts';

/** Secret volumes swap files through a `..data` symlink; fs.watch sees that, the poll catches what it misses. */
export const DEFAULT_POLL_MS = 10_000;
/** Several files change in one swap: wait for the writes to settle before reading the pair. */
const SETTLE_MS = 100;

export interface CertDirOptions {
  readonly dir: string;
  readonly log: WebhookLog;
  readonly onChange: (tls: TlsMaterial) => void;
  readonly pollMs?: number;
}

export interface CertDir {
  current(): TlsMaterial;
  /** Reads the files again; resolves true when a new, valid pair was taken. */
  reload(): Promise<boolean>;
  close(): void;
}

async function optional(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, 'utf8');
  } catch {
    return undefined;
  }
}

/** Reads the pair; throws naming the file that is missing or a key that does not fit. */
export async function readCertDir(dir: string): Promise<TlsMaterial> {
  const [cert, key, ca] = await Promise.all([optional(join(dir, 'tls.crt')), optional(join(dir, 'tls.key')), optional(join(dir, 'ca.crt'))]);
  if (!cert || !key) throw new Error(`webhook TLS directory ${dir} lacks ${!cert ? 'tls.crt' : 'tls.key'}; mount the cert-manager Certificate's Secret there (keys tls.crt, tls.key, ca.crt)`);
  if (!keyMatches({ certPem: cert, keyPem: key })) throw new Error(`webhook TLS directory ${dir}: tls.key is not the key of tls.crt (a half-written rotation, or the wrong Secret)`);
  return ca ? { cert, key, ca } : { cert, key };
}

/** Loads the directory (throws if unusable at start), then reloads on change; a bad intermediate state keeps the old pair. */
export async function watchCertDir(o: CertDirOptions): Promise<CertDir> {
  let tls = await readCertDir(o.dir);
  let timer: NodeJS.Timeout | undefined;
  const reload = async (): Promise<boolean> => {
    let next: TlsMaterial;
    try {
      next = await readCertDir(o.dir);
    } catch (err) {
      o.log.warn({ dir: o.dir, error: (err as Error).message }, 'webhook TLS files not usable; keeping the current certificate');
      return false;
    }
    if (next.cert === tls.cert && next.key === tls.key && next.ca === tls.ca) return false;
    tls = next;
    o.log.info({ dir: o.dir }, 'webhook TLS files changed; reloading');
    o.onChange(tls);
    return true;
  };
  const soon = (): void => {
    clearTimeout(timer);
    timer = setTimeout(() => void reload(), SETTLE_MS);
  };
  let watcher: FSWatcher | undefined;
  try {
    watcher = watch(o.dir, soon);
    watcher.on('error', () => undefined);
  } catch {
    watcher = undefined;
  }
  const poll = setInterval(() => void reload(), o.pollMs ?? DEFAULT_POLL_MS);
  poll.unref();
  return {
    current: () => tls,
    reload,
    close: () => {
      watcher?.close();
      clearInterval(poll);
      clearTimeout(timer);
    },
  };
}
