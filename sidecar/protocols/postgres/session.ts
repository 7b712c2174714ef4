// One client ⇄ sidecar ⇄ PostgreSQL session: a short loop over framed messages, driving session-state.ts, judge.ts, mask-rows.ts and upstream.ts.
import { randomBytes } from 'node:crypto';
import type { Socket } from 'node:net';
import { TLSSocket } from 'node:tls';
import type { ErrorCode } from '../../core/errors.ts';
import type { PostgresConnectionConfig } from '../../core/config-types.ts';
import type { Principal, TokenVerifier } from '../../identity/verify-token.ts';
import type { Masker } from '../../masking/index.ts';
import type { CompiledSqlPolicy } from '../../policy/sql-rules.ts';
import type { SqlDecision } from '../../policy/evaluate-sql.ts';
import type { Decision, RecordEvent } from '../../recording/event.ts';
import { holdForApproval, newApprovalId, type ApprovalBackend, type ApprovalRequest } from './approval-hold.ts';
import { authenticate } from './auth.ts';
import { decodeBackend, decodeReadyStatus, decodeRowDescription } from './backend-framer.ts';
import type { CancelRegistry } from './cancel.ts';
import { BackendCode, FrontendCode, ProtocolError } from './codes.ts';
import { decodeDescribeOrClose, decodeExecute, decodeParse, decodePasswordMessage, decodeQuery, decodeStartup, FrontendFramer, decodeBind } from './frontend-framer.ts';
import { bindHash, HeldExtended, isPrivateName, MAX_HELD, shownCommand, type HeldPortal } from './held-extended.ts';
import { denialFields, errorFields, judge, type Judgement } from './judge.ts';
import { NO_FINDINGS, ResponseMasker, Scrubber, type Column } from './mask-rows.ts';
import type { BackendFrame, FrontendFrame, StartupMessage, TransactionStatus } from './messages.ts';
import * as be from './serialize-backend.ts';
import { bind as bindMessage, close as closeMessage, describe as describeMessage, parse as parseMessage, query as queryMessage, terminate as terminateMessage } from './serialize-frontend.ts';
import { next, route, SessionState, type SessionAction, type SessionEvent, type Transition } from './session-state.ts';
import type { SqlClassifier } from './sql-cache.ts';
import { PreparedRegistry } from './sql-prepared.ts';
import type { ListenerTls } from './listener-tls.ts';
import { RawRun } from './raw-run.ts';
import { ResultShapes } from './result-shapes.ts';
import { lexingDivergence, planStartup, startupRefusal, type StartupPlan } from './startup.ts';
import { connectUpstream, readCredential, sendUpstreamCancel, UpstreamError, type Credential, type UpstreamSession, type UpstreamTarget } from './upstream.ts';

/** The slice of a pino logger a session uses (object first, fixed message). */
export interface PgLogger {
  debug(obj: object, msg: string): void;
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
  child?(bindings: object): PgLogger;
}

/** Counters a session reports; every hook is optional. */
export interface PgMetrics {
  sessionStarted?(connection: string): void;
  sessionEnded?(connection: string, reason: string): void;
  statement?(connection: string, decision: Decision): void;
  authFailure?(connection: string, reason: string): void;
  masked?(connection: string, rule: string, n: number): void;
  upstreamLatency?(connection: string, seconds: number): void;
}

export interface RecorderLike {
  /** `lazy`: not write-ahead; the line may wait a few ms to share the next write. */
  record(event: RecordEvent, opts?: { readonly lazy?: boolean }): Promise<unknown>;
}

/** Everything a session needs, resolved (listener.ts fills the fail-closed defaults). */
export interface SessionContext {
  readonly conn: PostgresConnectionConfig;
  readonly verifier: TokenVerifier;
  readonly masker: Masker;
  readonly policy: CompiledSqlPolicy;
  readonly classifier: () => Promise<SqlClassifier>;
  readonly recorder: RecorderLike | null;
  readonly approvals: ApprovalBackend;
  readonly approvalTimeoutMs: number;
  readonly cancels: CancelRegistry;
  readonly logger: PgLogger;
  readonly metrics: PgMetrics;
  /** AgentIdentity name, for the recording. */
  readonly identity: string;
  readonly target: UpstreamTarget;
  readonly readCredential?: () => Promise<Credential>;
  /** Listener TLS (SSLRequest answered 'S'); absent = plaintext only. */
  readonly tls?: ListenerTls;
}

/** Responses between two ReadyForQuery: what the result line of that batch reports. */
interface Cycle {
  cmd: number | null;
  readonly started: number;
  rows: number;
  bytes: number;
  sqlState: string | undefined;
  error: string | undefined;
  /** Poison tokens sent in this cycle (null until the first: most cycles have none). */
  poisons: string[] | null;
}

const POISON_PREFIX = 'chaperone_refused_';
/** Messages after which the last RowDescription no longer describes the rows that follow (mask-rows.ts `endResult`). */
const RESULT_ENDS: ReadonlySet<number> = new Set([BackendCode.CommandComplete, BackendCode.EmptyQueryResponse, BackendCode.PortalSuspended, BackendCode.ErrorResponse, BackendCode.ReadyForQuery]);
/** Shared record() options and rejection sink for result lines (no allocation per result). */
const LAZY = Object.freeze({ lazy: true });
const ignore = (): undefined => undefined;
const POISON_RE = /chaperone_refused_[0-9a-f]+_\d+/;
/** Messages that may wait behind a held statement's Parse/Bind; anything else (Sync, Flush, Query…) sends what waits first. */
const DEFERRABLE: ReadonlySet<number> = new Set([FrontendCode.Parse, FrontendCode.Bind, FrontendCode.Describe, FrontendCode.Execute, FrontendCode.Close]);
const MAX_DEFERRED = 256;
/**
 * Text the server could lex differently from the judge if a statement still running upstream turned
 * standard_conforming_strings off or set a client_encoding whose multi-byte characters swallow a
 * quote (a function body, a DO block, a trigger: nothing the SQL rules can see). Such text waits
 * until every earlier statement has answered ReadyForQuery, where PostgreSQL reports the change and
 * `lexingChanged` ends the session first.
 */
const LEXING_SENSITIVE = /[\\\u0080-\uffff]/;
/** Frames waiting behind an async step (recording, approval) before the client socket is paused. */
const INBOX_HIGH_WATER = 256;

/** Answers that move result-shapes.ts's queue (RowDescription does so in Session.rowDescription). */
const SHAPE_ANSWERS: ReadonlySet<number> = new Set([BackendCode.NoData, BackendCode.CommandComplete, BackendCode.EmptyQueryResponse, BackendCode.PortalSuspended, BackendCode.ErrorResponse, BackendCode.ReadyForQuery]);

/** Moves the shapes queue; true when the frame answers the session's own Describe (the client never sees it). */
function shapeAnswer(shapes: ResultShapes<readonly Column[]>, code: BackendFrame['code'], rm: ResponseMasker): boolean {
  switch (code) {
    case BackendCode.NoData:
      return shapes.described(undefined, () => rm.currentColumns) === 'internal';
    case BackendCode.ErrorResponse:
      shapes.error();
      return false;
    case BackendCode.ReadyForQuery:
      shapes.ready();
      return false;
    default:
      shapes.resultEnd();
      return false;
  }
}

/** A judged SQL message on its way to a decision. */
interface Judged {
  readonly f: FrontendFrame;
  readonly j: Judgement;
  readonly cmd: number;
  readonly protocol: 'simple' | 'extended';
  /** Masked text (the approver and the recording see this). */
  readonly text: string;
  /** Parse's statement name ('' unnamed); undefined for a Query. */
  readonly statement: string | undefined;
}

type ApprovalDecision = Extract<SqlDecision, { action: 'require-approval' }>;

/** What a held extended-protocol statement remembers for its Executes. */
interface HeldPayload {
  readonly judged: Judged;
  readonly d: ApprovalDecision;
}

/** The one Execute an extended-protocol hold is for, with its portal's bound parameters. */
interface BoundExecute {
  readonly frame: FrontendFrame;
  readonly portal: HeldPortal<HeldPayload>;
}

/** A statement name as a quoted SQL identifier. */
function quoteIdent(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}

function newCycle(): Cycle {
  return { cmd: null, started: performance.now(), rows: 0, bytes: 0, sqlState: undefined, error: undefined, poisons: null };
}

export class Session {
  readonly id: string;
  private state: SessionState = SessionState.Startup;
  private readonly framer: FrontendFramer;
  private readonly inbox: FrontendFrame[] = [];
  private pumping = false;
  private clientPaused = false;
  private upstreamPaused = false;
  private up: UpstreamSession | null = null;
  private upSocket: Socket | TLSSocket | null = null;
  private rm: ResponseMasker | null = null;
  /** What shape rows have that come without a RowDescription (an Execute of a statement or portal described earlier). */
  private shapes: ResultShapes<readonly Column[]> | null = null;
  private principal: Principal | null = null;
  private startup: StartupMessage | null = null;
  private plan: StartupPlan | null = null;
  private cls: SqlClassifier | null = null;
  private discarding = false;
  /** An Execute went upstream since the last Sync: a later Parse is parsed after it ran, with no ReadyForQuery between. */
  private executedUnsynced = false;
  /** Resolves the pump's wait for every outstanding ReadyForQuery (a lexing-sensitive statement); one at a time. */
  private idleWaiter: (() => void) | null = null;
  private readonly prepared = new PreparedRegistry();
  /**
   * Names this session ever created with SQL PREPARE (never forgotten: a DEALLOCATE or Close the
   * server skipped after an error would otherwise let a later Bind run it unjudged). A Bind of one
   * is judged as `EXECUTE name` would be, so a protocol-level Bind/Execute gets the same decision
   * as SQL EXECUTE (it runs the same statement).
   */
  private readonly sqlPrepared = new Set<string>();
  /** Extended-protocol statements that need approval (private names upstream) and the portals bound from them. */
  private readonly held = new HeldExtended<HeldPayload>();
  /**
   * Frames not yet sent upstream, from a held Parse or a Bind of a held statement on: so the server
   * takes no locks and opens no transaction for it while a human decides. Sent at Sync, Flush or
   * any other message, and after the held Execute's decision (before it, or before its refusal).
   */
  private deferred: Buffer[] | null = null;
  /** Named statement → the cmd of its Parse (result lines of later executions refer to it). */
  private readonly statementCmd = new Map<string, number>();
  private readonly cycles: Cycle[] = [];
  private open: Cycle = newCycle();
  private readonly poisons = new Map<string, Buffer>();
  private readonly nonce = randomBytes(8).toString('hex');
  private poisonSeq = 0;
  private cmdSeq = 0;
  private readonly gone = new AbortController();
  private hold: AbortController | null = null;
  private fakePid = 0;
  private closed = false;
  private readonly startedAt = Date.now();
  /** performance.now() of the session's start, of the last client bytes and of the last ReadyForQuery (idle limits). */
  private readonly openedAt = performance.now();
  private lastClientAt = this.openedAt;
  private lastReadyAt = this.openedAt;
  private encrypted = false;
  private client: Socket | TLSSocket;
  private readonly summary = { commands: 0, denied: 0, approvals: 0, rows: 0, bytes: 0, masked: {} as Record<string, number> };
  private sessionRecorded = false;
  private readonly log: PgLogger;
  /** Untouched frames in a row become one socket write (flushed before the loop regains control). */
  private readonly toClient = new RawRun((b) => this.sendClient(b));
  private readonly toUpstream = new RawRun((b) => this.sendUpstream(b));
  /** Result lines of this chunk, recorded once its response bytes are written (off the client's critical path). */
  private results: RecordEvent[] = [];

  private readonly onData = (chunk: Buffer): void => this.onClientData(chunk);
  private readonly onEnd = (): void => this.close('client-closed');
  private readonly onError = (e: NodeJS.ErrnoException): void => {
    if (this.encrypted && !this.closed && this.state === SessionState.Startup) this.log.info({ err: e.code ?? e.message }, 'listener TLS handshake failed');
    this.close(`client-error ${e.code ?? ''}`.trim());
  };
  private readonly onDrain = (): void => this.resumeUpstream();
  /** Framer callbacks made once, not per received chunk. */
  private readonly onClientFrame = (f: FrontendFrame): void => this.enqueue(f);
  private readonly onBackendFrame = (f: BackendFrame): void => this.onUpstreamFrame(f);

  constructor(
    client: Socket,
    private readonly ctx: SessionContext,
    private readonly onClosed: (s: Session) => void = () => undefined,
  ) {
    this.id = `pg-${randomBytes(8).toString('hex')}`;
    this.client = client;
    this.framer = new FrontendFramer({ maxMessageSize: ctx.conn.limits.maxMessageBytes });
    this.log = ctx.logger.child?.({ session: this.id, connection: ctx.conn.name, protocol: 'postgres' }) ?? ctx.logger;
    client.setNoDelay(true);
    this.attachClient(client);
  }

  private attachClient(c: Socket | TLSSocket): void {
    c.on('data', this.onData);
    c.on('end', this.onEnd);
    c.on('error', this.onError);
    c.on('close', this.onEnd);
    c.on('drain', this.onDrain);
  }

  private detachClient(c: Socket | TLSSocket): void {
    c.off('data', this.onData);
    c.off('end', this.onEnd);
    c.off('error', this.onError);
    c.off('close', this.onEnd);
    c.off('drain', this.onDrain);
  }

  /**
   * 'S', then the TLS handshake on the same socket; the next start-up packet arrives inside TLS.
   * Nothing may follow the SSLRequest in plaintext (the framer refuses it: CVE-2021-23214), so
   * no plaintext byte can end up inside the encrypted stream.
   */
  private startTls(tls: ListenerTls): void {
    const raw = this.client;
    this.toClient.flush();
    raw.write(be.encryptionAccepted());
    this.detachClient(raw);
    const secure = new TLSSocket(raw, { isServer: true, secureContext: tls.context() });
    secure.setNoDelay(true);
    this.client = secure;
    this.encrypted = true;
    this.attachClient(secure);
    this.framer.resumeStartup();
  }

  /**
   * The listener's periodic sweep (`now` = performance.now()): a session over its age limit, or
   * waiting for its client longer than the idle limit (inside a transaction: the
   * idle-in-transaction limit), gets a FATAL error and is closed. A running statement, an approval
   * wait or our own login steps never count as idle.
   */
  checkLimits(now: number): void {
    if (this.closed) return;
    const l = this.ctx.conn.limits;
    const max = l.maxSessionSeconds ?? 0;
    if (max > 0 && now - this.openedAt >= max * 1000) return this.limitReached('CHAP_ERR_PG_SESSION_TOO_LONG', max, 'max-session-duration');
    if (!this.waitingForClient()) return;
    const inTx = this.state === SessionState.Ready && this.lastStatus !== 'I';
    const limit = inTx ? (l.idleInTransactionTimeoutSeconds ?? 0) : l.idleTimeoutSeconds;
    if (limit <= 0 || now - Math.max(this.lastClientAt, this.lastReadyAt) < limit * 1000) return;
    if (inTx) this.limitReached('CHAP_ERR_PG_IDLE_IN_TRANSACTION_TIMEOUT', limit, 'idle-in-transaction-timeout');
    else this.limitReached('CHAP_ERR_PG_IDLE_TIMEOUT', limit, 'idle-timeout');
  }

  private waitingForClient(): boolean {
    if (this.state === SessionState.Startup || this.state === SessionState.AwaitingPassword) return true;
    if (this.state !== SessionState.Ready) return false;
    return this.cycles.length === 0 && this.open.cmd === null && this.inbox.length === 0 && !this.pumping;
  }

  private limitReached(code: ErrorCode, seconds: number, reason: string): void {
    this.log.info({ reason, seconds }, 'session limit reached');
    this.fatal(errorFields(code, { seconds: String(seconds) }, 'FATAL'), reason);
  }

  get sessionState(): SessionState {
    return this.state;
  }

  /** Graceful shutdown: tell the client why, then close. */
  shutdown(): void {
    if (this.closed) return;
    this.writeClient(be.errorResponse(errorFields('CHAP_ERR_RECORDING_CLOSED', {}, 'FATAL')));
    this.close('shutdown');
  }

  // ---- client side ----

  private onClientData(chunk: Buffer): void {
    if (this.closed) return;
    this.lastClientAt = performance.now();
    this.upSocket?.cork();
    try {
      this.framer.push(chunk, this.onClientFrame);
    } catch (e) {
      this.protocolFailure(e);
    } finally {
      this.toUpstream.flush();
      this.upSocket?.uncork();
    }
  }

  private protocolFailure(e: unknown): void {
    const detail = e instanceof ProtocolError ? e.message : `unexpected error (${(e as Error)?.message ?? String(e)})`;
    const fields = errorFields('CHAP_ERR_PG_PROTOCOL', { detail }, 'FATAL');
    if (e instanceof ProtocolError) fields['C'] = e.sqlState;
    this.log.warn({ err: detail }, 'client protocol error');
    this.fatal(fields, 'protocol-error');
  }

  private enqueue(f: FrontendFrame): void {
    this.inbox.push(f);
    if (this.inbox.length > INBOX_HIGH_WATER && !this.clientPaused) {
      this.clientPaused = true;
      this.client.pause();
    }
    if (!this.pumping) this.pump();
  }

  /** The loop: one message at a time, in order; an async step (record, approve, connect) suspends it. */
  private pump(): void {
    this.pumping = true;
    while (this.inbox.length > 0 && !this.closed) {
      const f = this.inbox.shift();
      if (f === undefined) break;
      let r: void | Promise<void>;
      try {
        r = this.handle(f);
      } catch (e) {
        this.protocolFailure(e);
        break;
      }
      if (r instanceof Promise) {
        r.then(
          () => this.resumePump(),
          (e: unknown) => this.internalFailure(e),
        );
        return;
      }
    }
    this.pumping = false;
    if (this.clientPaused && this.inbox.length < INBOX_HIGH_WATER / 2 && !this.closed) {
      this.clientPaused = false;
      this.client.resume();
    }
  }

  private resumePump(): void {
    this.upSocket?.cork();
    try {
      this.pump();
    } finally {
      this.toUpstream.flush();
      this.upSocket?.uncork();
    }
  }

  private internalFailure(e: unknown): void {
    // A malformed message decoded after an async step (the first statement waits for the classifier) is still the client's protocol error.
    if (e instanceof ProtocolError) return this.protocolFailure(e);
    this.log.error({ err: (e as Error)?.stack ?? String(e) }, 'session failed');
    this.fatal(errorFields('CHAP_ERR_INTERNAL', { detail: (e as Error)?.message ?? String(e) }, 'FATAL'), 'error');
  }

  private handle(f: FrontendFrame): void | Promise<void> {
    switch (this.state) {
      case SessionState.Startup:
        return this.onStartupFrame(f);
      case SessionState.AwaitingPassword:
        if (f.kind === 'tagged' && f.code === FrontendCode.Password) return this.apply(next(this.state, { type: 'password', token: decodePasswordMessage(f).password }));
        return this.apply(next(this.state, { type: 'tagged-early', code: f.code }));
      case SessionState.Ready:
        return this.onTagged(f);
      default:
        return undefined;
    }
  }

  private onStartupFrame(f: FrontendFrame): void | Promise<void> {
    const m = decodeStartup(f);
    switch (m.name) {
      case 'sslRequest':
        return this.apply(next(this.state, { type: 'ssl-request', offer: this.ctx.tls !== undefined && !this.encrypted }));
      case 'gssEncRequest':
        return this.apply(next(this.state, { type: 'gssenc-request' }));
      case 'cancelRequest':
        this.ctx.cancels.cancel(m.processId, m.secretKey);
        return this.apply(next(this.state, { type: 'cancel-request' }));
      case 'startupMessage':
        this.startup = m;
        return this.apply(next(this.state, { type: 'startup', refusal: startupRefusal(m), ...(this.ctx.tls?.required === true && !this.encrypted ? { tlsRequiredBy: this.ctx.conn.name } : {}) }));
    }
  }

  /** Runs a transition's actions; the first async action suspends the loop until it is done. */
  private apply(t: Transition): void | Promise<void> {
    this.state = t.state;
    for (const a of t.actions) {
      const r = this.act(a);
      if (r instanceof Promise) return r;
    }
    return undefined;
  }

  private event(e: SessionEvent): void | Promise<void> {
    return this.apply(next(this.state, e));
  }

  private act(a: SessionAction): void | Promise<void> {
    switch (a.type) {
      case 'refuse-encryption':
        this.writeClient(be.encryptionRefused());
        this.framer.resumeStartup();
        return;
      case 'accept-tls':
        if (this.ctx.tls !== undefined) this.startTls(this.ctx.tls);
        return;
      case 'forward-cancel':
        return;
      case 'ask-password':
        this.askPassword();
        return;
      case 'verify':
        return this.verify(a.token);
      case 'connect-upstream':
        return this.connect();
      case 'send-welcome':
        this.welcome();
        return;
      case 'fatal':
        this.fatal(errorFields(a.code, a.params, 'FATAL'), 'refused');
        return;
      case 'close':
        this.close('closed');
        return;
    }
  }

  private askPassword(): void {
    const m = this.startup;
    if (m === null) return;
    this.plan = planStartup(m, {
      user: '',
      database: this.ctx.conn.upstream.database,
      readOnly: this.ctx.conn.readOnly,
      statementTimeoutSeconds: this.ctx.conn.limits.statementTimeoutSeconds,
    });
    if (this.plan.negotiate) this.writeClient(be.negotiateProtocolVersion(0, this.plan.unrecognizedOptions));
    this.writeClient(be.authenticationCleartextPassword());
  }

  private async verify(token: string): Promise<void> {
    const conn = this.ctx.conn;
    const a = await authenticate(this.ctx.verifier, token, conn.name, conn.access);
    if (this.closed) return;
    if (!a.ok) {
      this.ctx.metrics.authFailure?.(conn.name, a.reason);
      this.log.info({ reason: a.reason }, 'agent refused');
      return this.event({ type: 'auth-refused', code: a.code, params: a.params });
    }
    this.principal = a.principal;
    const p = a.principal;
    const client = `${this.client.remoteAddress ?? '?'}:${this.client.remotePort ?? 0}`;
    const pod = p.pod ? `${p.serviceAccount?.namespace ?? ''}/${p.pod.name}` : null;
    const ok = await this.record({ type: 'session.start', session: this.id, identity: this.ctx.identity, subject: p.subject, groups: p.groups, pod, client, connection: conn.name, protocol: 'postgres' });
    if (!ok) return this.event({ type: 'auth-refused', code: 'CHAP_ERR_RECORDING_FAILED', params: { detail: 'session start' } });
    this.sessionRecorded = true;
    this.ctx.metrics.sessionStarted?.(conn.name);
    return this.event({ type: 'auth-ok' });
  }

  private async connect(): Promise<void> {
    const conn = this.ctx.conn;
    const started = performance.now();
    try {
      const cred = await (this.ctx.readCredential ?? (() => readCredential(conn.credentials)))();
      const m = this.startup;
      if (m === null) throw new Error('no start-up message');
      this.plan = planStartup(m, { user: cred.user, database: conn.upstream.database, readOnly: conn.readOnly, statementTimeoutSeconds: conn.limits.statementTimeoutSeconds });
      const up = await connectUpstream(this.ctx.target, cred, this.plan.upstream, this.gone.signal);
      this.ctx.metrics.upstreamLatency?.(conn.name, (performance.now() - started) / 1000);
      if (this.closed) {
        up.socket.destroy();
        return;
      }
      this.attachUpstream(up, cred);
      return this.event({ type: 'upstream-ready' });
    } catch (e) {
      if (this.closed) return;
      return this.event(this.upstreamFailure(e));
    }
  }

  private upstreamFailure(e: unknown): SessionEvent {
    const name = this.ctx.conn.name;
    if (!(e instanceof UpstreamError)) return { type: 'upstream-failed', code: 'CHAP_ERR_INTERNAL', params: { detail: (e as Error)?.message ?? String(e) } };
    let detail = e.message;
    const fields = e.fields;
    if (fields) detail += `: ${this.ctx.masker.maskText(fields.get('M') ?? '').value}`;
    this.log.warn({ kind: e.kind, detail }, 'upstream login failed');
    const code: ErrorCode = e.kind === 'auth' ? 'CHAP_ERR_UPSTREAM_AUTH' : 'CHAP_ERR_UPSTREAM_UNAVAILABLE';
    return { type: 'upstream-failed', code, params: { connection: name, detail } };
  }

  private attachUpstream(up: UpstreamSession, cred: Credential): void {
    this.up = up;
    this.upSocket = up.socket;
    this.rm = new ResponseMasker(this.ctx.masker, new Scrubber(cred.password));
    this.shapes = new ResultShapes(this.rm.columnsOf);
    const s = up.socket;
    s.setNoDelay(true);
    s.on('data', (chunk: Buffer) => this.onUpstreamData(chunk));
    s.on('error', (e: NodeJS.ErrnoException) => this.upstreamLost(e.code ?? e.message));
    s.on('close', () => this.upstreamLost('the upstream closed the connection'));
    s.on('drain', () => this.resumeClient());
    this.lastStatus = up.status;
  }

  private lastStatus: TransactionStatus = 'I';

  private welcome(): void {
    const up = this.up;
    const rm = this.rm;
    if (up === null || rm === null) return;
    const key = this.ctx.cancels.register(() => this.onCancel());
    this.fakePid = key.processId;
    this.client.cork();
    this.writeClient(be.authenticationOk());
    for (const f of up.parameterStatus) {
      if (this.lexingChanged(f)) return;
      this.writeClient(rm.parameterStatus(f));
    }
    for (const f of up.notices) this.writeClient(rm.errorOrNotice(f));
    const dropped = this.plan?.dropped ?? [];
    if (dropped.length > 0) {
      this.writeClient(be.noticeResponse({ S: 'NOTICE', V: 'NOTICE', C: '01000', M: `Chaperone did not forward the start-up parameter(s) ${dropped.join(', ')}: they could change what the session may do; use SET after connecting (policy permitting)` }));
    }
    this.writeClient(be.backendKeyData(key.processId, key.secretKey));
    this.writeClient(be.readyForQuery(up.status));
    this.client.uncork();
    up.socket.resume();
    for (const f of up.extra) this.onUpstreamFrame(f);
    this.toClient.flush();
    this.recordResults();
    this.log.debug({ subject: this.principal?.subject }, 'session ready');
  }

  /** A CancelRequest with our fake key: end an approval wait, or cancel the upstream query. */
  private onCancel(): void {
    if (this.hold !== null) {
      this.hold.abort();
      return;
    }
    const up = this.up;
    if (up === null) return;
    sendUpstreamCancel(this.ctx.target, up.processId, up.secretKey).catch((e: unknown) => this.log.warn({ err: (e as Error).message }, 'upstream cancel failed'));
  }

  // ---- ready: routing ----

  private onTagged(f: FrontendFrame): void | Promise<void> {
    if (this.deferred !== null && !DEFERRABLE.has(f.code)) this.releaseDeferred();
    if (f.code === FrontendCode.Execute) this.executedUnsynced = true;
    switch (route(f.code, this.discarding)) {
      case 'judge-query':
        return this.withClassifier(() => this.onSql(f, 'simple'));
      case 'judge-parse':
        return this.withClassifier(() => this.onSql(f, 'extended'));
      case 'forward':
        if (this.held.active) return this.forwardExtended(f);
        if (this.track(f)) this.forward(f);
        return;
      case 'sync':
        this.discarding = false;
        this.executedUnsynced = false;
        this.shapes?.sync();
        this.forward(f);
        this.endCycle();
        return;
      case 'discard':
        return;
      case 'refuse-function-call':
        this.summary.denied++;
        this.poison('simple', errorFields('CHAP_ERR_PG_FUNCTION_CALL', {}));
        return;
      case 'protocol-violation':
        this.fatal(errorFields('CHAP_ERR_PG_PROTOCOL', { detail: "a password message ('p') after authentication" }, 'FATAL'), 'protocol-error');
        return;
      case 'terminate':
        this.forward(f);
        this.close('client-terminated');
        return;
    }
  }

  /** Bind names the statement it executes (for the result line); Close 'S' forgets one. False: refused (not to be forwarded). */
  private track(f: FrontendFrame): boolean {
    switch (f.code) {
      case FrontendCode.Bind: {
        const b = decodeBind(f);
        if (this.refusedSqlPreparedBind(b.statement)) return false;
        const cmd = this.statementCmd.get(b.statement);
        if (cmd !== undefined) this.open.cmd ??= cmd;
        this.shapes?.bind(b.portal, b.statement, b.resultFormats);
        return true;
      }
      case FrontendCode.Close:
      case FrontendCode.Describe: {
        const c = decodeDescribeOrClose(f);
        if (c.name === 'close' && c.target === 'S') this.statementCmd.delete(c.targetName);
        this.shapeDescribeOrClose(c.name, c.target, c.targetName);
        return true;
      }
      case FrontendCode.Execute:
        this.shapeExecute(decodeExecute(f).portal);
        return true;
      default:
        return true;
    }
  }

  /** Before an Execute goes upstream: a Describe of our own first when its binary cells would have no known types. */
  private shapeExecute(portal: string): void {
    const shapes = this.shapes;
    if (shapes === null) return;
    if (shapes.needsDescribe(portal)) {
      shapes.describeInternal(portal);
      this.writeUpstream(describeMessage('P', portal));
    }
    shapes.execute(portal);
  }

  private shapeDescribeOrClose(name: 'describe' | 'close', target: 'S' | 'P', targetName: string): void {
    if (name === 'close') this.shapes?.close(target, targetName);
    else this.shapes?.describe(target, targetName);
  }

  /** Once a held statement exists: Bind, Describe, Close and Execute are checked against the held names and portals. */
  private forwardExtended(f: FrontendFrame): void | Promise<void> {
    switch (f.code) {
      case FrontendCode.Bind:
        return this.onBind(f);
      case FrontendCode.Execute:
        return this.onExecute(f);
      case FrontendCode.Describe:
      case FrontendCode.Close:
        return this.onDescribeOrClose(f);
      default:
        this.forward(f);
        return;
    }
  }

  /** A Bind from a held statement is sent to its private name; the hash and the approver's text are fixed here, from the exact bytes sent. */
  private onBind(f: FrontendFrame): void {
    const b = decodeBind(f);
    if (isPrivateName(b.statement)) return this.refuseReservedName(b.statement);
    if (this.refusedSqlPreparedBind(b.statement)) return;
    const cmd = this.statementCmd.get(b.statement);
    if (cmd !== undefined) this.open.cmd ??= cmd;
    const s = this.held.statement(b.statement);
    if (s === undefined) {
      this.held.bind(b.portal, undefined);
      this.shapes?.bind(b.portal, b.statement, b.resultFormats);
      this.forward(f);
      return;
    }
    if (!this.held.roomFor('portal', b.portal)) return this.refuseTooManyHeld(cmd);
    this.shapes?.bind(b.portal, b.statement, b.resultFormats);
    const { hash, parametersHash } = bindHash(s.sql, s.paramTypes, b.paramFormats, b.params);
    const shown = shownCommand(s.text, b.paramFormats, b.params, (v) => this.ctx.masker.maskText(v).value);
    this.held.bind(b.portal, { statement: s, hash, parametersHash, shown });
    this.deferred ??= [];
    this.writeUpstream(bindMessage({ portal: b.portal, statement: s.privateName, paramFormats: b.paramFormats, params: b.params, resultFormats: b.resultFormats }));
  }

  /** Every Execute of a held portal waits for its own approval; anything after it waits in the inbox, in order. */
  private onExecute(f: FrontendFrame): void | Promise<void> {
    const portal = decodeExecute(f).portal;
    const p = this.held.heldPortals > 0 ? this.held.portal(portal) : undefined;
    if (p === undefined) {
      this.shapeExecute(portal);
      this.forward(f);
      return;
    }
    return this.awaitApproval(p.statement.payload.judged, p.statement.payload.d, { frame: f, portal: p });
  }

  private onDescribeOrClose(f: FrontendFrame): void {
    const c = decodeDescribeOrClose(f);
    if (isPrivateName(c.targetName)) return this.refuseReservedName(c.targetName);
    this.shapeDescribeOrClose(c.name, c.target, c.targetName);
    if (c.target === 'P') {
      if (c.name === 'close') this.held.closePortal(c.targetName);
      this.forward(f);
      return;
    }
    if (c.name === 'close') this.statementCmd.delete(c.targetName);
    const priv = c.name === 'close' ? this.held.closeStatement(c.targetName) : this.held.statement(c.targetName)?.privateName;
    if (priv === undefined) this.forward(f);
    else this.writeUpstream(c.name === 'close' ? closeMessage('S', priv) : describeMessage('S', priv));
  }

  private refuseTooManyHeld(cmd: number | undefined): void {
    this.summary.denied++;
    this.refuse('extended', errorFields('CHAP_ERR_SQL_DENIED', { rule: 'chaperone.held-limit', reason: 'too-many-held', detail: `this session already has ${MAX_HELD} named statements or portals waiting for approval; Close some first` }), cmd);
  }

  private refuseReservedName(name: string): void {
    this.summary.denied++;
    this.poison('extended', errorFields('CHAP_ERR_SQL_DENIED', { rule: 'chaperone.held-name', reason: 'reserved-name', detail: `the name ${name} is reserved for statements Chaperone holds for approval; use another name` }));
  }

  /** Statement names with the held prefix are the sidecar's: a client may not Parse or EXECUTE them (they could run a held statement unapproved). */
  private guardReservedNames(j: Judgement, parseName: string | undefined): Judgement {
    let bad = parseName !== undefined && isPrivateName(parseName) ? parseName : undefined;
    if (bad === undefined && this.held.active) bad = j.facts.flatMap((x) => x.executes).find(isPrivateName);
    if (bad === undefined) return j;
    return { ...j, decision: { action: 'deny', rule: 'chaperone.held-name', reason: 'reserved-name', message: `the name ${bad} is reserved for statements Chaperone holds for approval`, statementIndex: null } };
  }

  private withClassifier(fn: () => void | Promise<void>): void | Promise<void> {
    if (this.cls !== null) return fn();
    return this.ctx.classifier().then((c) => {
      this.cls = c;
      return fn();
    });
  }

  private onSql(f: FrontendFrame, protocol: 'simple' | 'extended'): void | Promise<void> {
    const cls = this.cls;
    if (cls === null) throw new Error('classifier not loaded');
    const parse = protocol === 'extended' ? decodeParse(f) : undefined;
    const sql = parse?.sql ?? decodeQuery(f).sql;
    if (this.lexingBlocked(sql)) return this.lexingBarrier(f, protocol);
    const j = this.guardReservedNames(judge({ cls, policy: this.ctx.policy, prepared: this.prepared, readOnly: this.ctx.conn.readOnly }, sql, protocol), parse?.statement);
    const cmd = ++this.cmdSeq;
    this.summary.commands++;
    const decision: Decision = j.decision.action === 'allow' ? 'allow' : j.decision.action === 'deny' ? 'deny' : 'approval';
    this.ctx.metrics.statement?.(this.ctx.conn.name, decision);
    // Masked text is needed only for the recording and an approver; skip the scan otherwise (hot path).
    const text = this.ctx.recorder !== null || j.decision.action === 'require-approval' ? this.ctx.masker.maskText(sql).value : '';
    const ev: RecordEvent = {
      type: 'statement', session: this.id, cmd, text, classification: j.classification, decision,
      rule: j.decision.rule, reason: j.decision.reason, statementHash: j.hash,
    };
    const judged: Judged = { f, j, cmd, protocol, text, statement: parse?.statement };
    const rec = this.ctx.recorder;
    if (rec === null) return this.decide(judged);
    // Write-ahead: decide only once the line is accepted (one promise, no async wrapper: hot path).
    return rec.record(ev).then(
      () => (this.closed ? undefined : this.decide(judged)),
      (err: unknown) => this.recordRefused(judged, ev, err),
    );
  }

  private lexingBlocked(sql: string): boolean {
    return (this.executedUnsynced || this.cycles.length > 0) && LEXING_SENSITIVE.test(sql);
  }

  /** A lexing-sensitive statement (LEXING_SENSITIVE) while earlier ones are unanswered: wait for them, or refuse it inside an unsynced batch. */
  private lexingBarrier(f: FrontendFrame, protocol: 'simple' | 'extended'): void | Promise<void> {
    if (this.executedUnsynced) return this.refuseLexingSensitive(protocol);
    return this.upstreamIdle().then(() => (this.closed ? undefined : this.onSql(f, protocol)));
  }

  /** Resolves once every statement sent upstream has answered ReadyForQuery (or the session closed). */
  private upstreamIdle(): Promise<void> {
    return new Promise((resolve) => {
      this.idleWaiter = resolve;
    });
  }

  private wakeIdleWaiter(): void {
    const w = this.idleWaiter;
    if (w === null || (this.cycles.length > 0 && !this.closed)) return;
    this.idleWaiter = null;
    w();
  }

  /**
   * A backslash or non-ASCII text after an Execute in the same unsynced batch would be parsed by the
   * server after that Execute ran, with no ReadyForQuery between to report a changed lexing setting.
   */
  private refuseLexingSensitive(protocol: 'simple' | 'extended'): void {
    this.summary.denied++;
    this.ctx.metrics.statement?.(this.ctx.conn.name, 'deny');
    this.refuse(protocol, errorFields('CHAP_ERR_SQL_DENIED', {
      rule: 'chaperone.lexing-barrier', reason: 'unsynced-batch',
      detail: 'a statement whose text holds a backslash or non-ASCII characters cannot follow an Execute in the same batch (the server would parse it after that Execute ran, unjudged settings included); send Sync before it',
    }));
  }

  private decide(p: Judged): void | Promise<void> {
    const { j, cmd, protocol } = p;
    const d = j.decision;
    if (d.action === 'allow') return this.forwardJudged(p);
    if (d.action === 'deny') {
      this.summary.denied++;
      this.log.info({ cmd, rule: d.rule, reason: d.reason }, 'statement denied');
      return this.refuse(protocol, denialFields(d), cmd);
    }
    // Extended protocol: the parameters are not known yet; each Execute of a portal bound from it is held instead.
    if (protocol === 'extended') return this.parseHeld(p, d);
    return this.awaitApproval(p, d);
  }

  /** A Parse that needs approval goes upstream under a private name (held-extended.ts says why); nothing runs until an Execute is approved. */
  private parseHeld(p: Judged, d: ApprovalDecision): void {
    const parse = decodeParse(p.f);
    if (!this.held.roomFor('statement', parse.statement)) return this.refuseTooManyHeld(p.cmd);
    this.shapes?.parse(parse.statement);
    const privateName = this.held.parseHeld(parse.statement, { sql: parse.sql, paramTypes: parse.paramTypes, text: p.text, payload: { judged: p, d } });
    this.deferred ??= [];
    this.observe(p.j);
    this.open.cmd = p.cmd;
    if (parse.statement !== '') this.statementCmd.set(parse.statement, p.cmd);
    this.writeUpstream(parseMessage(privateName, parse.sql, parse.paramTypes));
  }

  private forwardJudged({ f, j, cmd, protocol, statement }: Judged): void {
    if (statement !== undefined && this.held.active) this.held.parseAllowed(statement);
    this.observe(j);
    this.open.cmd = cmd;
    if (statement !== undefined && statement !== '') this.statementCmd.set(statement, cmd);
    if (protocol === 'simple') this.shapes?.query();
    else this.shapes?.parse(statement ?? '');
    this.forward(f);
    if (protocol === 'simple') this.endCycle();
  }

  /** PREPARE/DEALLOCATE effects of a statement on its way upstream. */
  private observe(j: Judgement): void {
    for (const fact of j.facts) {
      this.prepared.observe(fact);
      if (fact.prepares !== null) this.sqlPrepared.add(fact.prepares);
    }
  }

  /**
   * A Bind of a statement made by SQL PREPARE runs that statement: it gets the decision SQL
   * `EXECUTE name` would get. Allowed: false (the caller forwards it). Denied: refused here.
   * Held for approval: refused too, since an approval covers one execution with its values, which
   * SQL EXECUTE gives the approver and a Bind of a SQL-prepared name cannot (no held private name).
   */
  private refusedSqlPreparedBind(statement: string): boolean {
    if (this.sqlPrepared.size === 0 || !this.sqlPrepared.has(statement)) return false;
    const cls = this.cls;
    const j = cls === null ? null : judge({ cls, policy: this.ctx.policy, prepared: this.prepared, readOnly: this.ctx.conn.readOnly }, `EXECUTE ${quoteIdent(statement)}`, 'simple');
    const d = j?.decision;
    if (d?.action === 'allow') return false;
    this.summary.denied++;
    this.ctx.metrics.statement?.(this.ctx.conn.name, 'deny');
    this.log.info({ statement, rule: d?.rule, action: d?.action }, 'bind of a SQL-prepared statement refused');
    if (d?.action === 'deny') {
      this.poison('extended', denialFields(d));
    } else {
      const detail = d === undefined
        ? 'the statement could not be judged'
        : `this statement was made with SQL PREPARE and needs approval for each execution (${d.message}); run it with SQL EXECUTE, which holds each execution with its values for an approver`;
      this.poison('extended', errorFields('CHAP_ERR_SQL_DENIED', { rule: d?.rule ?? 'chaperone.prepared-bind', reason: 'approval-per-execution', detail }));
    }
    return true;
  }

  private refuse(protocol: 'simple' | 'extended', fields: Record<string, string>, cmd?: number): void {
    if (cmd !== undefined) this.open.cmd = cmd;
    this.poison(protocol, fields);
  }

  /** The held command: the masked text and hash are the Execute's (statement plus parameters) for the extended protocol. */
  private approvalRequest(judged: Judged, d: ApprovalDecision, bound: BoundExecute | undefined): ApprovalRequest {
    const { j, cmd } = judged;
    const p = this.principal;
    if (p === null) throw new Error('no principal');
    const groups = Array.isArray(d.approval['approverGroups']) ? (d.approval['approverGroups'] as unknown[]).filter((g): g is string => typeof g === 'string') : [];
    const seconds = typeof d.approval['timeoutSeconds'] === 'number' ? d.approval['timeoutSeconds'] : undefined;
    const timeoutMs = seconds !== undefined && seconds > 0 ? Math.min(seconds * 1000, this.ctx.approvalTimeoutMs) : this.ctx.approvalTimeoutMs;
    return {
      id: newApprovalId(), session: this.id, cmd, connection: this.ctx.conn.name, identity: this.ctx.identity, subject: p.subject, username: p.username,
      groups: p.groups, statement: bound?.portal.shown ?? judged.text, statementHash: bound?.portal.hash ?? j.hash, rule: d.rule, reason: d.reason, message: d.message, approverGroups: groups, timeoutMs, settings: d.approval,
      protocol: 'postgres', issuer: p.issuer, ...(p.actingFor !== undefined ? { actingFor: p.actingFor } : {}), classification: j.classification,
      ...(bound !== undefined ? { parametersHash: bound.portal.parametersHash } : {}),
      ...(this.startup?.parameters.get('application_name') ? { purpose: this.ctx.masker.maskText(this.startup.parameters.get('application_name') ?? '').value } : {}),
    };
  }

  /** `bound`: an extended-protocol Execute; the approval binds to its statement and exact parameters and covers that one Execute. */
  private async awaitApproval(judged: Judged, d: ApprovalDecision, bound?: BoundExecute): Promise<void> {
    const { cmd, protocol } = judged;
    this.summary.approvals++;
    const req = this.approvalRequest(judged, d, bound);
    const { approverGroups: groups, timeoutMs } = req;
    this.writeClient(be.noticeResponse({
      S: 'NOTICE', V: 'NOTICE', C: '01000',
      M: `Chaperone is holding this statement for approval (rule ${d.rule}: ${d.message}); waiting up to ${Math.round(timeoutMs / 1000)} s for request ${req.id}`,
      H: this.ctx.approvals.howToApprove(req),
    }));
    const waitOk = await this.record({ type: 'approval.wait', session: this.id, cmd, request: req.id, approverGroups: groups, timeoutMs });
    const started = Date.now();
    this.hold = new AbortController();
    const onGone = (): void => this.hold?.abort();
    this.gone.signal.addEventListener('abort', onGone, { once: true });
    const o = waitOk ? await holdForApproval(this.ctx.approvals, req, this.hold.signal) : { outcome: 'denied' as const, reason: 'the wait could not be recorded' };
    this.gone.signal.removeEventListener('abort', onGone);
    this.hold = null;
    await this.record({ type: 'approval.outcome', session: this.id, cmd, request: req.id, outcome: o.outcome, by: 'by' in o ? (o.by ?? []) : [], waitedMs: Date.now() - started });
    if (this.closed) return;
    if (bound !== undefined) this.releaseDeferred();
    this.log.info({ cmd, request: req.id, outcome: o.outcome }, 'approval outcome');
    if (o.outcome === 'approved') return bound === undefined ? this.forwardJudged(judged) : this.forwardApprovedExecute(bound, cmd);
    this.summary.denied++;
    return this.refuse(protocol, errorFields('CHAP_ERR_SQL_APPROVAL_DENIED', { rule: d.rule, outcome: o.outcome, detail: o.reason }), cmd);
  }

  private forwardApprovedExecute(bound: BoundExecute, cmd: number): void {
    this.open.cmd ??= cmd;
    this.shapeExecute(decodeExecute(bound.frame).portal);
    this.forward(bound.frame);
  }

  /**
   * Refuses in place without breaking the server's view of the protocol: a statement that cannot
   * parse is sent instead, so PostgreSQL itself aborts the transaction and (extended protocol)
   * discards until Sync exactly as for a real error; its syntax error is replaced by ours on the way back.
   */
  private poison(protocol: 'simple' | 'extended', fields: Record<string, string>): void {
    const token = `${POISON_PREFIX}${this.nonce}_${++this.poisonSeq}`;
    this.poisons.set(token, be.errorResponse(fields));
    (this.open.poisons ??= []).push(token);
    if (protocol === 'simple') {
      this.shapes?.query();
      this.writeUpstream(queryMessage(token));
      this.endCycle();
    } else {
      this.writeUpstream(parseMessage(token, token));
      this.discarding = true;
    }
  }

  private forward(f: FrontendFrame): void {
    if (this.deferred !== null) this.defer(Buffer.from(f.raw));
    else this.toUpstream.pass(f.raw);
  }

  /** Bounded: a client that never syncs just gets its frames sent (deferring only spares the server's locks). */
  private defer(b: Buffer): void {
    const d = this.deferred;
    if (d === null) return;
    d.push(b);
    if (d.length >= MAX_DEFERRED) this.releaseDeferred();
  }

  private releaseDeferred(): void {
    const d = this.deferred;
    this.deferred = null;
    if (d !== null) for (const b of d) this.toUpstream.write(b);
  }

  private endCycle(): void {
    this.cycles.push(this.open);
    this.open = newCycle();
  }

  // ---- upstream side ----

  private onUpstreamData(chunk: Buffer): void {
    const up = this.up;
    if (up === null || this.closed) return;
    this.client.cork();
    try {
      up.framer.push(chunk, this.onBackendFrame);
    } catch (e) {
      this.log.error({ err: (e as Error).message }, 'upstream stream broken');
      this.fatal(errorFields('CHAP_ERR_UPSTREAM_LOST', { detail: `the upstream sent data the sidecar could not read: ${(e as Error).message}` }, 'FATAL'), 'upstream-error');
    } finally {
      this.toClient.flush();
      this.client.uncork();
      this.recordResults();
    }
  }

  private onUpstreamFrame(f: BackendFrame): void {
    const rm = this.rm;
    // Closed by an earlier frame of the same chunk (a FATAL): nothing more reaches the client.
    if (rm === null || this.closed) return;
    const c = this.cycles[0] ?? this.open;
    c.bytes += f.raw.length;
    if (f.code === BackendCode.DataRow) {
      c.rows++;
      if (!rm.described) this.shapeRows(rm);
      this.passOr(f, rm.dataRow(f));
      return;
    }
    const shapes = this.shapes;
    if (shapes !== null && SHAPE_ANSWERS.has(f.code) && shapeAnswer(shapes, f.code, rm)) return;
    const out = this.otherFrame(f, c, rm);
    if (out !== null) this.passOr(f, out);
  }

  /** Rows with no RowDescription before them: the executing portal's columns, when an earlier Describe told them. */
  private shapeRows(rm: ResponseMasker): void {
    const columns = this.shapes?.rowsWithoutDescription();
    if (columns !== undefined) rm.useColumns(columns);
  }

  /** The frame's own bytes join the pending run; anything else is written after it. */
  private passOr(f: BackendFrame, out: Buffer): void {
    if (out === f.raw) this.toClient.pass(out);
    else this.toClient.write(out);
  }

  /** Every server message but DataRow: what to send the client (null = nothing). */
  private otherFrame(f: BackendFrame, c: Cycle, rm: ResponseMasker): Buffer | null {
    if (RESULT_ENDS.has(f.code)) rm.endResult();
    switch (f.code) {
      case BackendCode.RowDescription:
        return this.rowDescription(f, rm);
      case BackendCode.ErrorResponse:
        return this.upstreamError(f, c, rm);
      case BackendCode.NoticeResponse:
        return rm.errorOrNotice(f);
      case BackendCode.NotificationResponse:
        return rm.notification(f);
      case BackendCode.ParameterStatus:
        return this.parameterStatus(f, rm);
      case BackendCode.CopyOutResponse:
      case BackendCode.CopyBothResponse:
        rm.copyStart(f);
        return f.raw;
      case BackendCode.CopyData:
        return rm.copyData(f);
      case BackendCode.CopyDone:
        this.writeOpt(rm.copyEnd());
        return f.raw;
      case BackendCode.ReadyForQuery:
        this.ready(f);
        return f.raw;
      case BackendCode.BackendKeyData:
      case BackendCode.Authentication:
      case BackendCode.NegotiateProtocolVersion:
        return null;
      default:
        return f.raw;
    }
  }

  /** A statement's description has all-text formats: it shapes later Executes (with their Bind's formats), never the rows that follow it. */
  private rowDescription(f: BackendFrame, rm: ResponseMasker): Buffer | null {
    const out = rm.rowDescription(f);
    const d = this.shapes?.described(() => decodeRowDescription(f).fields, () => rm.currentColumns);
    if (d === 'statement') rm.endResult();
    return d === 'internal' ? null : out;
  }

  /**
   * The server now lexes SQL differently from the judge's parser (a client_encoding whose multi-byte
   * characters swallow a quote or backslash, standard_conforming_strings off) — set by a path the
   * SQL rules did not see (a function body, a role default): every later judgement would be a guess,
   * so the session ends (FATAL) before another statement is judged. True when it did.
   */
  private lexingChanged(f: BackendFrame): boolean {
    const m = decodeBackend(f);
    if (m.name !== 'parameterStatus') return false;
    const setting = lexingDivergence(m.parameter, m.value);
    if (setting === null) return false;
    this.log.warn({ setting }, 'the server lexes SQL differently from the sidecar now; closing the session');
    this.toClient.flush();
    this.fatal(errorFields('CHAP_ERR_PG_PROTOCOL', { detail: `the server now runs with ${setting}, which makes it read SQL differently from the sidecar's parser; Chaperone needs client_encoding UTF8 and standard_conforming_strings on` }, 'FATAL'), 'parser-divergence');
    return true;
  }

  private parameterStatus(f: BackendFrame, rm: ResponseMasker): Buffer | null {
    return this.lexingChanged(f) ? null : rm.parameterStatus(f);
  }

  private writeOpt(b: Buffer | null): void {
    if (b !== null) this.writeClient(b);
  }

  private upstreamError(f: BackendFrame, c: Cycle, rm: ResponseMasker): Buffer {
    if (rm.inCopy) this.writeOpt(rm.copyEnd(true));
    if (this.poisons.size > 0 && f.raw.includes(POISON_PREFIX)) {
      const token = POISON_RE.exec(f.raw.toString('latin1'))?.[0];
      const ours = token === undefined ? undefined : this.poisons.get(token);
      if (ours !== undefined && token !== undefined) {
        this.poisons.delete(token);
        c.sqlState = '42501';
        c.error = 'refused by chaperone';
        return ours;
      }
    }
    const out = rm.errorOrNotice(f);
    // A second decode is cheap and only on errors: the recording gets the SQLSTATE and masked message.
    const m = /C([0-9A-Z]{5})\0/.exec(f.raw.toString('latin1', 5));
    c.sqlState = m?.[1];
    return out;
  }

  private ready(f: BackendFrame): void {
    this.lastStatus = decodeReadyStatus(f);
    this.lastReadyAt = performance.now();
    const c = this.cycles.shift() ?? this.open;
    if (c === this.open) this.open = newCycle();
    if (c.poisons !== null) for (const t of c.poisons) this.poisons.delete(t);
    this.wakeIdleWaiter();
    const findings = this.rm?.takeFindings() ?? NO_FINDINGS;
    this.summary.rows += c.rows;
    this.summary.bytes += c.bytes;
    if (findings !== NO_FINDINGS) {
      for (const k in findings) {
        const n = findings[k] ?? 0;
        this.summary.masked[k] = (this.summary.masked[k] ?? 0) + n;
        this.ctx.metrics.masked?.(this.ctx.conn.name, k, n);
      }
    }
    if (c.cmd === null || this.ctx.recorder === null) return;
    const ev: RecordEvent = {
      type: 'result', session: this.id, cmd: c.cmd, rows: c.rows, bytes: c.bytes, masked: findings,
      durationMs: Math.round((performance.now() - c.started) * 1000) / 1000,
      ...(c.sqlState !== undefined ? { sqlState: c.sqlState } : {}),
    };
    this.results.push(ev);
  }

  /**
   * Results are not write-ahead: the response is already on its way. They are recorded after the
   * chunk's bytes went to the client, and lazily (sharing the next statement's write); a failure is
   * logged by the recorder.
   */
  private recordResults(): void {
    const rec = this.ctx.recorder;
    if (this.results.length === 0 || rec === null) return;
    const evs = this.results;
    this.results = [];
    for (const ev of evs) rec.record(ev, LAZY).catch(ignore);
  }

  private upstreamLost(why: string): void {
    if (this.closed) return;
    this.log.warn({ why }, 'upstream lost');
    this.fatal(errorFields('CHAP_ERR_UPSTREAM_LOST', { detail: why }, 'FATAL'), 'upstream-closed');
  }

  // ---- I/O and teardown ----

  private writeClient(b: Buffer): void {
    this.toClient.write(b);
  }

  private sendClient(b: Buffer): void {
    if (this.client.destroyed) return;
    if (!this.client.write(b) && !this.upstreamPaused && this.upSocket !== null) {
      // Backpressure: a slow client stops us reading the upstream, so memory stays bounded.
      this.upstreamPaused = true;
      this.upSocket.pause();
    }
  }

  private resumeUpstream(): void {
    if (!this.upstreamPaused) return;
    this.upstreamPaused = false;
    this.upSocket?.resume();
  }

  private writeUpstream(b: Buffer): void {
    if (this.deferred !== null) this.defer(b);
    else this.toUpstream.write(b);
  }

  private sendUpstream(b: Buffer): void {
    const s = this.upSocket;
    if (s === null || s.destroyed) return;
    if (!s.write(b) && !this.clientPaused) {
      this.clientPaused = true;
      this.client.pause();
    }
  }

  private resumeClient(): void {
    if (!this.clientPaused || this.inbox.length >= INBOX_HIGH_WATER / 2) return;
    this.clientPaused = false;
    this.client.resume();
  }

  private recordRefused(p: Judged, ev: RecordEvent, err: unknown): void {
    this.log.error({ err: (err as Error)?.message ?? String(err), type: ev.type }, 'recording failed; refusing');
    if (this.closed) return;
    this.refuse(p.protocol, errorFields('CHAP_ERR_RECORDING_FAILED', { detail: 'statement' }));
  }

  /** Records an event; false when the recorder refused (the caller refuses the command: write-ahead). */
  private async record(e: RecordEvent): Promise<boolean> {
    if (this.ctx.recorder === null) return true;
    try {
      await this.ctx.recorder.record(e);
      return true;
    } catch (err) {
      this.log.error({ err: (err as Error).message, type: e.type }, 'recording failed; refusing');
      return false;
    }
  }

  private fatal(fields: Record<string, string>, reason: string): void {
    this.writeClient(be.errorResponse(fields));
    this.close(reason);
  }

  close(reason: string): void {
    if (this.closed) return;
    this.closed = true;
    this.state = SessionState.Closed;
    this.gone.abort();
    this.hold?.abort();
    this.wakeIdleWaiter();
    if (this.fakePid !== 0) this.ctx.cancels.unregister(this.fakePid);
    this.toUpstream.flush();
    this.toClient.flush();
    this.recordResults();
    const s = this.upSocket;
    if (s !== null && !s.destroyed) {
      if (reason !== 'upstream-closed' && reason !== 'client-terminated') s.write(terminateMessage());
      s.end();
      setTimeout(() => s.destroy(), 2000).unref();
    }
    this.client.end();
    setTimeout(() => this.client.destroy(), 2000).unref();
    if (this.sessionRecorded) {
      const summary = { ...this.summary, durationMs: Date.now() - this.startedAt };
      this.ctx.recorder?.record({ type: 'session.end', session: this.id, reason, summary }).catch(() => undefined);
      this.ctx.metrics.sessionEnded?.(this.ctx.conn.name, reason);
    }
    this.log.debug({ reason }, 'session closed');
    this.onClosed(this);
  }
}
