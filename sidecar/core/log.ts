// The sidecar's logger: pino JSON lines on stderr (stdout carries the recording stream), credentials redacted.
import { createRequire } from 'node:module';
import type { DestinationStream, Logger, LoggerOptions } from 'pino';
import type { LogLevel } from './config-types.ts';

export type { Logger } from 'pino';

/** Field names that may hold a credential, wherever they appear (top level or up to two objects deep). */
export const REDACTED_KEYS: readonly string[] = [
  'password', 'passwd', 'token', 'accessToken', 'access_token', 'idToken', 'id_token', 'refreshToken', 'secret',
  'authorization', 'Authorization', 'cookie', 'Cookie', 'set-cookie', 'proxy-authorization', 'credential', 'credentials', 'apiKey', 'api_key', 'hmacKey', 'privateKey',
];

/** pino `redact` paths: each key at depth 0, 1 and 2 (fast-redact needs explicit depths). */
export const REDACT_PATHS: readonly string[] = REDACTED_KEYS.flatMap((k) => {
  const key = /^[A-Za-z_$][\w$]*$/.test(k) ? k : `["${k}"]`;
  const join = (prefix: string): string => (key.startsWith('[') ? `${prefix}${key}` : `${prefix}.${key}`);
  return [key, join('*'), join('*.*')];
});

export const REDACTED = '[REDACTED]';

// pino is CommonJS: require keeps the ESM namespace wrapper out (measured cheaper; see bench/sidecar-footprint.ts).
const pinoLib = createRequire(import.meta.url)('pino') as typeof import('pino');

export interface LogOptions {
  readonly level?: LogLevel;
  /** Default: stderr (fd 2), written synchronously so nothing is lost on exit. Tests pass a stream. */
  readonly destination?: DestinationStream;
  /** Fixed fields on every line. */
  readonly base?: Readonly<Record<string, string>>;
}

export function createLogger(opts: LogOptions = {}): Logger {
  const options: LoggerOptions = {
    level: opts.level ?? 'info',
    base: { component: 'chaperone-sidecar', ...opts.base },
    redact: { paths: [...REDACT_PATHS], censor: REDACTED },
    timestamp: pinoLib.stdTimeFunctions.isoTime,
    formatters: { level: (label: string) => ({ level: label }) },
  };
  return pinoLib.default(options, opts.destination ?? pinoLib.destination({ dest: 2, sync: true }));
}

export interface SessionFields {
  readonly session: string;
  readonly connection: string;
  readonly protocol: string;
  /** The verified username, once known (never the token). */
  readonly principal?: string;
  readonly client?: string;
}

/** A child logger carrying the session's fields on every line. */
export function sessionLogger(log: Logger, fields: SessionFields): Logger {
  return log.child({ ...fields });
}

/** Applies a reloaded `log.level`. */
export function setLevel(log: Logger, level: LogLevel): void {
  log.level = level;
}
