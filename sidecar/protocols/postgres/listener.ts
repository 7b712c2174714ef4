// The PostgreSQL gateway's listener: net.Server on the connection's host:port, one Session per socket, graceful close; main.ts imports it by protocol.
import { readFileSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { DEFAULT_APPROVAL_TIMEOUT_SECONDS, type ListenerContext, type PostgresConnectionConfig, type RunningListener } from '../../core/config-types.ts';
import type { TokenVerifier } from '../../identity/verify-token.ts';
import { createMasker, type Masker } from '../../masking/index.ts';
import { compileSqlPolicy } from '../../policy/evaluate-sql.ts';
import type { CompiledSqlPolicy } from '../../policy/sql-rules.ts';
import { failClosedApprovals, type ApprovalBackend } from './approval-hold.ts';
import { refusingVerifier } from './auth.ts';
import { CancelRegistry } from './cancel.ts';
import { errorFields } from './judge.ts';
import { errorResponse } from './serialize-backend.ts';
import { Session, type PgLogger, type PgMetrics, type RecorderLike, type SessionContext } from './session.ts';
import { createSqlClassifier, type SqlClassifier } from './sql-cache.ts';
import type { Credential } from './upstream.ts';

/** Every field optional; each default fails closed (no verifier = nobody gets in; no policy = deny all; no approvals = denied). */
export interface PostgresListenerDeps {
  readonly verifier?: TokenVerifier;
  readonly masker?: Masker;
  /** Compiled SQL policy; default: compiled from `conn.policy.sql` (a compile error refuses to start). */
  readonly policy?: CompiledSqlPolicy;
  /** null = recording explicitly off (tests, benches); absent = off with a warning in the log. */
  readonly recorder?: RecorderLike | null;
  readonly approvals?: ApprovalBackend;
  readonly approvalTimeoutMs?: number;
  readonly logger?: PgLogger;
  readonly metrics?: PgMetrics;
  /** AgentIdentity name for the recording. */
  readonly identity?: string;
  /** Replaces reading the credential files (tests). */
  readonly readCredential?: () => Promise<Credential>;
}

export interface PostgresListener {
  readonly address: { readonly host: string; readonly port: number };
  sessions(): number;
  /** Stops accepting; open sessions may finish until `deadlineMs` from now, then they are closed. */
  close(deadlineMs: number): Promise<void>;
}

const silent: PgLogger = { debug: () => undefined, info: () => undefined, warn: () => undefined, error: () => undefined };

let classifier: Promise<SqlClassifier> | undefined;
/** One classifier (and parse cache) per process, loaded on the first statement (libpg-query is ~13 MB). */
function sharedClassifier(): Promise<SqlClassifier> {
  classifier ??= createSqlClassifier();
  return classifier;
}

function policyFor(conn: PostgresConnectionConfig): CompiledSqlPolicy {
  const r = compileSqlPolicy(conn.policy.sql);
  if (!r.ok) throw new Error(`connection ${conn.name}: the SQL policy is invalid: ${r.errors.map((e) => `${e.path}: ${e.message}`).join('; ')}`);
  return r.policy;
}

function maskerFor(conn: PostgresConnectionConfig): Masker {
  const { hmacKeyFile, ...rest } = conn.masking;
  return createMasker({ ...rest, ...(hmacKeyFile !== undefined ? { hmacKey: readFileSync(hmacKeyFile) } : {}) });
}

/** Starts the gateway for one postgres connection. */
export async function startPostgresListener(conn: PostgresConnectionConfig, deps: PostgresListenerDeps = {}): Promise<PostgresListener> {
  const logger = deps.logger ?? silent;
  if (deps.recorder === undefined) logger.warn({ connection: conn.name }, 'no recorder given: statements are not recorded');
  const ctx: SessionContext = {
    conn,
    verifier: deps.verifier ?? refusingVerifier,
    masker: deps.masker ?? maskerFor(conn),
    policy: deps.policy ?? policyFor(conn),
    classifier: sharedClassifier,
    recorder: deps.recorder ?? null,
    approvals: deps.approvals ?? failClosedApprovals,
    approvalTimeoutMs: deps.approvalTimeoutMs ?? DEFAULT_APPROVAL_TIMEOUT_SECONDS * 1000,
    cancels: new CancelRegistry(),
    logger,
    metrics: deps.metrics ?? {},
    identity: deps.identity ?? conn.name,
    target: {
      host: conn.upstream.host,
      port: conn.upstream.port,
      tls: conn.upstream.tls,
      connectTimeoutMs: conn.limits.connectTimeoutSeconds * 1000,
      maxMessageSize: conn.limits.maxMessageBytes,
    },
    ...(deps.readCredential !== undefined ? { readCredential: deps.readCredential } : {}),
  };
  const sessions = new Set<Session>();
  const server: Server = createServer({ noDelay: true }, (socket: Socket) => {
    if (sessions.size >= conn.limits.maxSessions) {
      // Refused before any byte is read: the client sees a FATAL error at its first read.
      const detail = `connection ${conn.name} already has ${sessions.size} sessions (limits.maxSessions); close one or raise the limit`;
      socket.end(errorResponse({ ...errorFields('CHAP_ERR_PG_STARTUP_REFUSED', { detail }, 'FATAL'), C: '53300' }));
      return;
    }
    const s = new Session(socket, ctx, (done) => sessions.delete(done));
    sessions.add(s);
  });
  server.on('error', (e) => logger.error({ err: e.message }, 'listener error'));
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host: conn.listen.host, port: conn.listen.port }, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const addr = server.address();
  const address = typeof addr === 'object' && addr !== null ? { host: addr.address, port: addr.port } : { host: conn.listen.host, port: conn.listen.port };
  logger.info({ connection: conn.name, ...address }, 'postgres gateway listening');
  return {
    address,
    sessions: () => sessions.size,
    close: async (deadlineMs: number): Promise<void> => {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      const until = Date.now() + Math.max(0, deadlineMs);
      while (sessions.size > 0 && Date.now() < until) await new Promise((r) => setTimeout(r, 50));
      for (const s of [...sessions]) s.shutdown();
      await closed;
    },
  };
}

/** The ProtocolModule entry main.ts calls (config-types.ts `ProtocolModule`). Policy and masking are taken at start. */
export async function startListener(lc: ListenerContext): Promise<RunningListener> {
  const state = lc.current();
  const conn = state.config;
  if (conn.protocol !== 'postgres') throw new Error(`connection ${lc.name} is ${conn.protocol}, not postgres`);
  const svc = lc.services;
  const metrics: PgMetrics = {
    sessionStarted: (c) => svc.metrics.sessionStarted(c, 'postgres'),
    sessionEnded: (c) => svc.metrics.sessionEnded(c, 'postgres'),
    statement: (c, d) => svc.metrics.statement(c, d === 'approval' ? 'require-approval' : d),
    authFailure: (c, r) => svc.metrics.authFailure(c, r),
    masked: (_c, rule, n) => svc.metrics.masked(rule, n),
    upstreamLatency: (c, s) => svc.metrics.upstreamLatency(c, s),
  };
  const l = await startPostgresListener(conn, {
    verifier: svc.verifier,
    recorder: svc.recorder,
    logger: svc.log,
    metrics,
    approvals: svc.approvals,
    approvalTimeoutMs: state.approvals.timeoutSeconds * 1000,
  });
  return { address: l.address, sessions: () => l.sessions(), stop: (deadline) => l.close(deadline - Date.now()) };
}
