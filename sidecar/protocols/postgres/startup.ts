// Start-up decisions (pure): which client start-up parameters reach the upstream, and which start-ups are refused.
import type { StartupMessage } from './messages.ts';

/**
 * Start-up parameters are GUC settings applied before any SQL is judged (a client could send
 * `role=…`, `options=-c default_transaction_read_only=off`, `search_path=…`). Only settings that
 * cannot widen what the agent may do are forwarded; the rest are dropped and reported in a notice.
 * Lowercased names.
 */
export const FORWARDED_PARAMETERS: ReadonlySet<string> = new Set([
  'application_name',
  'datestyle',
  'timezone',
  'intervalstyle',
  'extra_float_digits',
  'bytea_output',
  'statement_timeout',
  'lock_timeout',
  'idle_in_transaction_session_timeout',
  'geqo',
  'lc_monetary',
  'lc_numeric',
  'lc_time',
]);

/**
 * Set by the sidecar itself: the agent cannot pick another user or database; text is UTF-8 and
 * string literals are standard (what the sidecar's SQL parser reads). A start-up setting outranks
 * `ALTER ROLE/DATABASE … SET` and postgresql.conf, so a `standard_conforming_strings = off` left
 * there by an earlier session cannot make the server lex SQL differently from the judge.
 */
const SIDECAR_SET = new Set(['user', 'database', 'client_encoding', 'standard_conforming_strings']);

/** Settings that decide how the server lexes SQL, and the only value the sidecar's parser agrees with (session.ts watches their ParameterStatus). */
export const LEXING_SETTINGS: ReadonlyMap<string, string> = new Map([
  ['client_encoding', 'UTF8'],
  ['standard_conforming_strings', 'on'],
]);

/** The setting and value when a reported parameter makes the server lex SQL differently from the sidecar's parser; else null. */
export function lexingDivergence(name: string, value: string): string | null {
  const want = LEXING_SETTINGS.get(name.toLowerCase());
  if (want === undefined) return null;
  const norm = (v: string): string => v.trim().toUpperCase().replace(/[-_]/g, '');
  if (norm(value) === norm(want) || (want === 'UTF8' && norm(value) === 'UNICODE')) return null;
  return `${name}=${value}`;
}

export interface StartupPlan {
  /** Parameters for the upstream StartupMessage, in order. */
  readonly upstream: ReadonlyMap<string, string>;
  /** Client parameters not forwarded (names only; values may be anything). */
  readonly dropped: readonly string[];
  /** Protocol options (`_pq_.*`) the client asked for; we speak 3.0 without options. */
  readonly unrecognizedOptions: readonly string[];
  /** The client asked for a minor version above 0: answer NegotiateProtocolVersion(0). */
  readonly negotiate: boolean;
}

export interface UpstreamIdentity {
  readonly user: string;
  readonly database: string;
  readonly readOnly: boolean;
  /** Sent as statement_timeout (ms) when set: a configured limit the client cannot raise at start-up. */
  readonly statementTimeoutSeconds?: number | undefined;
}

/** Why a start-up is refused, or null when it may go on. */
export function startupRefusal(m: StartupMessage): string | null {
  if (m.major !== 3) return `protocol ${m.major}.${m.minor} is not supported; this gateway speaks protocol 3`;
  const replication = m.parameters.get('replication');
  if (replication !== undefined && !/^(false|off|no|0)$/i.test(replication)) {
    return 'replication connections are not allowed through the Chaperone gateway';
  }
  return null;
}

/** Builds the upstream parameters from the connection and the client's allowed settings. */
export function planStartup(m: StartupMessage, id: UpstreamIdentity): StartupPlan {
  const upstream = new Map<string, string>([
    ['user', id.user],
    ['database', id.database],
    ['client_encoding', 'UTF8'],
    ['standard_conforming_strings', 'on'],
  ]);
  const dropped: string[] = [];
  const unrecognizedOptions: string[] = [];
  for (const [name, value] of m.parameters) {
    const lower = name.toLowerCase();
    if (lower.startsWith('_pq_.')) unrecognizedOptions.push(name);
    else if (SIDECAR_SET.has(lower)) continue;
    else if (lower === 'replication' || !FORWARDED_PARAMETERS.has(lower)) dropped.push(name);
    else if (lower === 'statement_timeout' && id.statementTimeoutSeconds !== undefined) dropped.push(name);
    else upstream.set(name, value);
  }
  if (id.statementTimeoutSeconds !== undefined) upstream.set('statement_timeout', String(Math.round(id.statementTimeoutSeconds * 1000)));
  // The second wall for read-only connections: even a statement the classifier misjudged runs read-only.
  if (id.readOnly) upstream.set('default_transaction_read_only', 'on');
  return { upstream, dropped, unrecognizedOptions, negotiate: m.minor > 0 || unrecognizedOptions.length > 0 };
}
