// Listener TLS material: the server certificate and key as a SecureContext, re-read when either file changes (checked at most once a second).
import { readFileSync, statSync } from 'node:fs';
import { createSecureContext, type SecureContext } from 'node:tls';
import type { ListenTlsConfig } from '../../core/config-types.ts';

/** Files are stat'ed only when a TLS session starts, and at most this often: a cert-manager or ConfigMap swap is picked up within it. */
export const TLS_RECHECK_MS = 1000;

export interface TlsLogger {
  warn(obj: object, msg: string): void;
  info(obj: object, msg: string): void;
}

export interface TlsStats {
  loads: number;
  reloadFailures: number;
}

function stamp(path: string): string {
  const s = statSync(path);
  return `${s.ino}:${s.size}:${s.mtimeMs}`;
}

/** Reads and checks the pair; the error names the files and what to do, never their contents. */
function build(cfg: ListenTlsConfig): SecureContext {
  let cert: Buffer;
  let key: Buffer;
  try {
    cert = readFileSync(cfg.certFile);
    key = readFileSync(cfg.keyFile);
  } catch (e) {
    throw new Error(`listener TLS: cannot read ${cfg.certFile} / ${cfg.keyFile}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  try {
    return createSecureContext({ cert, key, minVersion: 'TLSv1.2' });
  } catch (e) {
    throw new Error(`listener TLS: ${cfg.certFile} and ${cfg.keyFile} are not a usable PEM certificate and matching key (${(e as Error).message})`);
  }
}

export class ListenerTls {
  readonly required: boolean;
  readonly stats: TlsStats = { loads: 0, reloadFailures: 0 };
  private ctx: SecureContext;
  private stamps: string;
  private checkedAt: number;

  /** Throws when the files cannot be read or do not form a certificate + key (the listener then refuses to start). */
  constructor(
    private readonly cfg: ListenTlsConfig,
    private readonly log: TlsLogger,
    private readonly now: () => number = Date.now,
  ) {
    this.required = cfg.required;
    this.ctx = build(cfg);
    this.stamps = this.currentStamps();
    this.stats.loads++;
    this.checkedAt = this.now();
  }

  /** Same files as another config's listen.tls (so a reload keeps the loaded context). */
  sameFiles(cfg: ListenTlsConfig): boolean {
    return cfg.certFile === this.cfg.certFile && cfg.keyFile === this.cfg.keyFile;
  }

  /** The context for a new TLS session; a changed file is re-read, a broken new pair keeps the last good one (logged). */
  context(): SecureContext {
    const now = this.now();
    if (now - this.checkedAt < TLS_RECHECK_MS) return this.ctx;
    this.checkedAt = now;
    let stamps: string;
    try {
      stamps = this.currentStamps();
    } catch {
      return this.ctx;
    }
    if (stamps === this.stamps) return this.ctx;
    try {
      this.ctx = build(this.cfg);
      this.stamps = stamps;
      this.stats.loads++;
      this.log.info({ certFile: this.cfg.certFile }, 'listener TLS certificate reloaded');
    } catch (e) {
      // Half-written files during a swap land here; the next check retries.
      this.stats.reloadFailures++;
      this.log.warn({ err: (e as Error).message }, 'listener TLS reload failed; keeping the last good certificate');
    }
    return this.ctx;
  }

  private currentStamps(): string {
    return `${stamp(this.cfg.certFile)}|${stamp(this.cfg.keyFile)}`;
  }
}
