// Listener TLS files re-read when they change (cert-manager, a rotated Secret): new connections get the new pair without a restart.
import { readFileSync, statSync } from 'node:fs';
import { createSecureContext } from 'node:tls';

/** The files are stat'ed at most this often, and only when a connection arrives. */
export const TLS_FILES_RECHECK_MS = 1000;

export interface TlsPair {
  readonly cert: Buffer;
  readonly key: Buffer;
}

export interface TlsFileLogger {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
}

function stamp(path: string): string {
  const s = statSync(path);
  return `${s.ino}:${s.size}:${s.mtimeMs}`;
}

/** Reads and checks the pair; errors name the files and what to do, never their contents. */
function readPair(certFile: string, keyFile: string): TlsPair {
  let pair: TlsPair;
  try {
    pair = { cert: readFileSync(certFile), key: readFileSync(keyFile) };
  } catch (e) {
    throw new Error(`listener TLS: cannot read ${certFile} / ${keyFile} (${(e as NodeJS.ErrnoException).code ?? (e as Error).message}); check the mounted Secret`);
  }
  try {
    createSecureContext({ cert: pair.cert, key: pair.key });
  } catch (e) {
    throw new Error(`listener TLS: ${certFile} and ${keyFile} are not a PEM certificate and its matching key (${(e as Error).message})`);
  }
  return pair;
}

export class TlsFilePair {
  private pair: TlsPair;
  private stamps: string;
  private checkedAt: number;
  reloads = 0;
  failures = 0;

  /** Throws when the files cannot be read or are not a certificate and its key (the listener then refuses to start). */
  constructor(
    readonly certFile: string,
    readonly keyFile: string,
    private readonly log?: TlsFileLogger,
    private readonly now: () => number = Date.now,
  ) {
    this.pair = readPair(certFile, keyFile);
    this.stamps = this.currentStamps();
    this.checkedAt = this.now();
  }

  get current(): TlsPair {
    return this.pair;
  }

  /** The pair when the files changed since the last look and form a valid pair; undefined otherwise (a broken swap keeps the last good pair). */
  poll(): TlsPair | undefined {
    const now = this.now();
    if (now - this.checkedAt < TLS_FILES_RECHECK_MS) return undefined;
    this.checkedAt = now;
    let stamps: string;
    try {
      stamps = this.currentStamps();
    } catch {
      return undefined; // mid-swap (a symlink flip): the next look retries
    }
    if (stamps === this.stamps) return undefined;
    try {
      this.pair = readPair(this.certFile, this.keyFile);
    } catch (e) {
      // Half-written files land here; the stamps stay old so the next look retries.
      this.failures++;
      this.log?.warn({ err: (e as Error).message }, 'listener TLS reload failed; keeping the last good certificate');
      return undefined;
    }
    this.stamps = stamps;
    this.reloads++;
    this.log?.info({ certFile: this.certFile }, 'listener TLS certificate reloaded');
    return this.pair;
  }

  private currentStamps(): string {
    return `${stamp(this.certFile)}|${stamp(this.keyFile)}`;
  }
}
