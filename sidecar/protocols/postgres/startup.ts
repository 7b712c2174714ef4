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

/** Set by the sidecar itself: the agent cannot pick another user or database, and text is UTF-8 (what the SQL parser reads). */
const SIDECAR_SET = new Set(['user', 'database', 'client_encoding']);

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
