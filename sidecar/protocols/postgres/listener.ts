// The PostgreSQL gateway's listener: net.Server on the connection's host:port, one Session per socket, the config current at accept time, graceful close; main.ts imports it by protocol.
import { readFileSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { DEFAULT_APPROVAL_TIMEOUT_SECONDS, type ConnectionState, type ListenerContext, type PostgresConnectionConfig, type RunningListener } from '../../core/config-types.ts';
import type { TokenVerifier } from '../../identity/verify-token.ts';
import { createMasker, type Masker } from '../../masking/index.ts';
import { compileSqlPolicy } from '../../policy/evaluate-sql.ts';
import type { CompiledSqlPolicy } from '../../policy/sql-rules.ts';
import { failClosedApprovals, type ApprovalBackend } from './approval-hold.ts';
import { refusingVerifier } from './auth.ts';
import { CancelRegistry } from './cancel.ts';
import { ListenerTls } from './listener-tls.ts';
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
  /**
   * The connection's config now (hot reload): each NEW session takes it, so a policy, masking,
   * access or limit change applies to the next connection without a restart; open sessions keep
   * the snapshot they started with. Absent = `conn` (and `masker`/`policy`) for the listener's life.
   */
  readonly current?: () => ListenerSnapshot;
}

/** What a reload may change for new sessions (the listen address is fixed for a listener's life). */
export interface ListenerSnapshot {
  readonly conn: PostgresConnectionConfig;
  readonly masker?: Masker;
  readonly policy?: CompiledSqlPolicy;
  readonly approvalTimeoutMs?: number;
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

/** Sweep period for the idle and duration limits: 1 s, or 250 ms when a limit is under 10 s (tests). */
function sweepMs(conn: PostgresConnectionConfig): number {
  const l = conn.limits;
  const set = [l.idleTimeoutSeconds, l.idleInTransactionTimeoutSeconds ?? 0, l.maxSessionSeconds ?? 0].filter((n) => n > 0);
  return set.length > 0 && Math.min(...set) < 10 ? 250 : 1000;
}

/** Builds the SessionContext of one config snapshot (memoized by the listener while the snapshot stays the same object). */
class Contexts {
  private last: { readonly snap: ListenerSnapshot; readonly ctx: SessionContext } | undefined;
  private tls: ListenerTls | undefined;
  readonly cancels = new CancelRegistry();

  constructor(
    private readonly deps: PostgresListenerDeps,
    private readonly logger: PgLogger,
  ) {}

  /** Throws on a policy that does not compile or TLS files that do not load: a listener never serves with a broken snapshot. */
  get(snap: ListenerSnapshot): SessionContext {
    if (this.last?.snap === snap) return this.last.ctx;
    const ctx = this.build(snap);
    this.last = { snap, ctx };
    return ctx;
  }

  private listenerTls(conn: PostgresConnectionConfig): ListenerTls | undefined {
    const t = conn.listen.tls;
    if (t === undefined) return undefined;
    if (this.tls?.sameFiles(t) === true && this.tls.required === t.required) return this.tls;
    this.tls = new ListenerTls(t, this.logger);
    return this.tls;
  }

  private build(snap: ListenerSnapshot): SessionContext {
    const { conn } = snap;
    const d = this.deps;
    const tls = this.listenerTls(conn);
    return {
      conn,
      verifier: d.verifier ?? refusingVerifier,
      masker: snap.masker ?? d.masker ?? maskerFor(conn),
      policy: snap.policy ?? d.policy ?? policyFor(conn),
      classifier: sharedClassifier,
      recorder: d.recorder ?? null,
      approvals: d.approvals ?? failClosedApprovals,
      approvalTimeoutMs: snap.approvalTimeoutMs ?? d.approvalTimeoutMs ?? DEFAULT_APPROVAL_TIMEOUT_SECONDS * 1000,
      cancels: this.cancels,
      logger: this.logger,
      metrics: d.metrics ?? {},
      identity: d.identity ?? conn.name,
      target: {
        host: conn.upstream.host,
        port: conn.upstream.port,
        tls: conn.upstream.tls,
        connectTimeoutMs: conn.limits.connectTimeoutSeconds * 1000,
        maxMessageSize: conn.limits.maxMessageBytes,
      },
      ...(d.readCredential !== undefined ? { readCredential: d.readCredential } : {}),
      ...(tls !== undefined ? { tls } : {}),
    };
  }
}

/** Starts the gateway for one postgres connection. */
export async function startPostgresListener(conn: PostgresConnectionConfig, deps: PostgresListenerDeps = {}): Promise<PostgresListener> {
  const logger = deps.logger ?? silent;
  if (deps.recorder === undefined) logger.warn({ connection: conn.name }, 'no recorder given: statements are not recorded');
  const fixed: ListenerSnapshot = { conn };
  const current = deps.current ?? ((): ListenerSnapshot => fixed);
  const contexts = new Contexts(deps, logger);
  contexts.get(current());
  const sessions = new Set<Session>();
  const server: Server = createServer({ noDelay: true }, (socket: Socket) => {
    let ctx: SessionContext;
    try {
      ctx = contexts.get(current());
    } catch (e) {
      // A reloaded snapshot that cannot be served (e.g. a TLS key that does not load): refuse, keep listening.
      logger.error({ connection: conn.name, err: (e as Error).message }, 'cannot start a session with the current config');
      socket.end(errorResponse(errorFields('CHAP_ERR_INTERNAL', { detail: 'the connection\'s current config cannot be served; see the sidecar log' }, 'FATAL')));
      return;
    }
    const limit = ctx.conn.limits.maxSessions;
    if (sessions.size >= limit) {
      // Refused before any byte is read: the client sees a FATAL error at its first read.
      const detail = `connection ${conn.name} already has ${sessions.size} sessions (limits.maxSessions); close one or raise the limit`;
      socket.end(errorResponse({ ...errorFields('CHAP_ERR_PG_STARTUP_REFUSED', { detail }, 'FATAL'), C: '53300' }));
      return;
    }
    const s = new Session(socket, ctx, (done) => sessions.delete(done));
    sessions.add(s);
  });
  let sweep: NodeJS.Timeout | undefined;
  const tick = (): void => {
    const now = performance.now();
    for (const s of sessions) s.checkLimits(now);
    sweep = setTimeout(tick, sweepMs(current().conn));
    sweep.unref();
  };
  sweep = setTimeout(tick, sweepMs(conn));
  sweep.unref();
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
      clearTimeout(sweep);
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      const until = Date.now() + Math.max(0, deadlineMs);
      while (sessions.size > 0 && Date.now() < until) await new Promise((r) => setTimeout(r, 50));
      for (const s of [...sessions]) s.shutdown();
      await closed;
    },
  };
}

/** One ConnectionState (a good config) → the listener's snapshot, memoized so a session start costs one Map-free compare. */
function snapshotOf(lc: ListenerContext): () => ListenerSnapshot {
  let last: { state: ConnectionState; snap: ListenerSnapshot } | undefined;
  return () => {
    const state = lc.current();
    if (last?.state === state) return last.snap;
    const conn = state.config;
    if (conn.protocol !== 'postgres') throw new Error(`connection ${lc.name} is ${conn.protocol}, not postgres`);
    const snap: ListenerSnapshot = {
      conn,
      masker: state.masker,
      ...(state.sqlPolicy !== undefined ? { policy: state.sqlPolicy } : {}),
      approvalTimeoutMs: state.approvals.timeoutSeconds * 1000,
    };
    last = { state, snap };
    return snap;
  };
}

/**
 * The ProtocolModule entry main.ts calls (config-types.ts `ProtocolModule`). Each new session takes
 * `lc.current()` (policy, masking, access, limits, upstream, listener TLS), so a reload needs no new
 * listener (`followsReloads`); open sessions keep the snapshot they started with.
 */
export async function startListener(lc: ListenerContext): Promise<RunningListener> {
  const current = snapshotOf(lc);
  const conn = current().conn;
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
    current,
    ...(lc.current().identityName !== undefined ? { identity: lc.current().identityName } : {}),
  });
  return { address: l.address, followsReloads: true, sessions: () => l.sessions(), stop: (deadline) => l.close(deadline - Date.now()) };
}
