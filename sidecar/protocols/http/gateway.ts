// The HTTP gateway core shared by `http` and `kubernetes` connections: authenticate → classify → judge → record (write-ahead) → hold → forward with the credential → mask the response → record the result.
import { isUtf8 } from 'node:buffer';
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { Agent as HttpAgent, ClientRequest, IncomingMessage, OutgoingHttpHeaders, RequestOptions, ServerResponse } from 'node:http';
import { createRequire } from 'node:module';
import type { Duplex } from 'node:stream';
import type { AccessConfig, HttpCredentialsConfig, LimitsConfig, UrlUpstreamConfig } from '../../core/config-types.ts';
import type { StatementDecision } from '../../core/metrics.ts';
import { authenticateAgent } from '../../identity/authenticate.ts';
import { requestBearer } from '../../identity/bearer.ts';
import type { Principal, TokenVerifier } from '../../identity/verify-token.ts';
import { createMasker, type Masker, type MaskerOptions } from '../../masking/index.ts';
import { evaluateHttp, type CompiledHttpPolicy, type HttpDecision, type HttpFacts } from '../../policy/http-rules.ts';
import type { Decision, RecordEvent, RequestClassification } from '../../recording/event.ts';
import { holdForApproval, type ApprovalBackend, type ApprovalRequest } from '../postgres/approval-hold.ts';
import { refusal, type HttpRefusal } from './errors.ts';
import { bombGuard, decodersFor } from './decode.ts';
import { agentHeaders, upstreamHeaders } from './headers.ts';
import { CredentialSource, type Credential } from './inject.ts';
import { judgeBody, type JudgedBody } from './judged-body.ts';
import { DEFAULT_MAX_UNIT_BYTES, MaskingTransform, UnmaskableError, type BodyMaskOptions } from './mask-body.ts';

// node:http(s) through createRequire: their ESM namespace evaluates undici's lazy WebSocket getters (~9–14 MB, docs/sidecar.md).
const require = createRequire(import.meta.url);
const http = require('node:http') as typeof import('node:http');
const https = require('node:https') as typeof import('node:https');

/** Request bodies read to judge JSON body predicates are capped here (larger: 413). */
export const DEFAULT_MAX_JUDGED_BODY_BYTES = 1024 * 1024;
/** How long the upstream may take to send response headers (LLM completions can take minutes). */
export const DEFAULT_RESPONSE_HEADERS_TIMEOUT_MS = 300_000;
/** Keep-alive sockets per upstream. */
export const DEFAULT_UPSTREAM_SOCKETS = 256;

export interface GatewayLogger {
  debug(obj: object, msg: string): void;
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

export interface GatewayMetrics {
  sessionStarted?(connection: string): void;
  sessionEnded?(connection: string): void;
  statement?(connection: string, decision: StatementDecision): void;
  authFailure?(connection: string, reason: string): void;
  masked?(findings: Readonly<Record<string, number>>): void;
  upstreamLatency?(connection: string, seconds: number): void;
}

export interface RecorderLike {
  record(event: RecordEvent, opts?: { readonly lazy?: boolean }): Promise<unknown>;
}

/** What differs between plain HTTP and the Kubernetes API. */
export interface GatewayProfile {
  readonly protocol: 'http' | 'kubernetes';
  /** Facts for the policy and the classification for the recording. */
  classify(method: string, path: string, query: URLSearchParams): { readonly kube?: HttpFacts['kube']; readonly classification: RequestClassification };
  /** Last changes to the upstream request headers (Kubernetes: no protobuf). */
  adjustHeaders?(h: OutgoingHttpHeaders, facts: HttpFacts): void;
  /** How the response body is masked. */
  bodyOptions(facts: HttpFacts, contentType: string | undefined, masker: Masker): BodyMaskOptions;
  /** Refusal body and its content type. */
  render(r: HttpRefusal): string;
}

export interface GatewayConfig {
  readonly name: string;
  readonly upstream: UrlUpstreamConfig;
  readonly credentials: HttpCredentialsConfig;
  readonly access: AccessConfig;
  readonly limits: LimitsConfig;
  readonly readOnly: boolean;
  /** Masking options (the HMAC key already read); the credential is added as a keyword list. */
  readonly masking: MaskerOptions;
  /** The masker already compiled from `masking` by the caller (the egress proxy shares one): used while the credential adds no keyword. */
  readonly compiledMasker?: Masker;
}

export interface GatewayDeps {
  readonly verifier: TokenVerifier;
  readonly recorder: RecorderLike | null;
  readonly approvals: ApprovalBackend;
  readonly approvalTimeoutMs: number;
  readonly logger: GatewayLogger;
  readonly metrics: GatewayMetrics;
  readonly identity: string;
  readonly maxJudgedBodyBytes?: number;
  readonly responseHeadersTimeoutMs?: number;
}

interface SocketSession {
  readonly id: string;
  readonly key: string;
  cmd: number;
  recorded: boolean;
  summary: { commands: number; denied: number; approvals: number; bytes: number; masked: Record<string, number> };
  readonly started: number;
}

/** One request on its way: what the result line and the metrics need. */
interface Exchange {
  readonly req: IncomingMessage;
  readonly res: ServerResponse;
  readonly t0: number;
  readonly session: SocketSession;
  readonly cmd: number;
  readonly facts: HttpFacts;
  readonly maskedUrl: string;
  readonly upstreamPath: string;
  body: Buffer | undefined;
}

const READ_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);
const CREDENTIAL_RULE = 'upstream-credential';

function addCounts(into: Record<string, number>, f: Readonly<Record<string, number>>): void {
  for (const [k, n] of Object.entries(f)) into[k] = (into[k] ?? 0) + n;
}

const STRENGTH: Readonly<Record<HttpDecision['action'], number>> = { deny: 3, 'require-approval': 2, allow: 1 };
const OVERRIDE_HEADERS = ['x-http-method-override', 'x-http-method', 'x-method-override'] as const;

/** Methods named by override headers and the `_method` parameter (upper case). */
function overrideMethods(req: IncomingMessage, query: URLSearchParams): string[] {
  const out: string[] = [];
  for (const h of OVERRIDE_HEADERS) {
    const v = req.headers[h];
    for (const x of (Array.isArray(v) ? v : [v ?? '']).flatMap((s) => s.split(','))) if (x.trim() !== '') out.push(x.trim().toUpperCase());
  }
  for (const v of query.getAll('_method')) if (v.trim() !== '') out.push(v.trim().toUpperCase());
  return out;
}

function requestFacts(method: string, target: { u: URL; path: string }, judged: JudgedBody, body: Buffer | undefined, kube: HttpFacts['kube']): HttpFacts {
  return { method, path: target.path, query: target.u.searchParams, body: judged.parsed, ...(judged.unknown ? { bodyUnknown: true } : {}), ...(body !== undefined ? { rawBody: body } : {}), websocket: false, ...(kube !== undefined ? { kube } : {}) };
}

/** The request says a body follows (Content-Length over 0, or Transfer-Encoding). */
function announcesBody(req: IncomingMessage): boolean {
  const cl = req.headers['content-length'];
  return req.headers['transfer-encoding'] !== undefined || (cl !== undefined && cl !== '0');
}

/**
 * The path the rules judge: percent-decoded (`%2F` too: stricter), then read the way the laxest
 * upstream would — `\\` as a separator (IIS), `;params` dropped from each segment (Tomcat, Jetty),
 * repeated slashes merged (nginx). Refused (a string saying why): a malformed escape or invalid UTF-8,
 * control characters (`%00`), and dot segments that only appear after decoding (`..%2F`, `..;`) — the
 * URL parser already resolved the literal ones, so what is left means something else to some upstream.
 */
export function matchPath(pathname: string): { path: string } | { bad: string } {
  let d: string;
  try {
    d = decodeURIComponent(pathname);
  } catch {
    return { bad: 'the path has a malformed percent-escape' };
  }
  for (let i = 0; i < d.length; i++) {
    const c = d.charCodeAt(i);
    if (c < 0x20 || c === 0x7f) return { bad: 'the path has a control character' };
  }
  const segs = d.replace(/\\/g, '/').split('/').map((seg) => {
    const semi = seg.indexOf(';');
    return semi < 0 ? seg : seg.slice(0, semi);
  });
  if (segs.some((seg) => seg === '.' || seg === '..')) return { bad: 'the path has an encoded dot segment' };
  return { path: segs.join('/').replace(/\/{2,}/g, '/') };
}

/** `//host/x` and `/\\host/x` would be read as a host by the URL parser (the path was `/x`): repeated separators before the query are merged first. */
function mergeSeparators(raw: string): string {
  const q = raw.search(/[?#]/);
  const path = q < 0 ? raw : raw.slice(0, q);
  if (!/[/\\]{2}/.test(path)) return raw;
  return path.replace(/[/\\]{2,}/g, '/') + (q < 0 ? '' : raw.slice(q));
}

/**
 * upstream → … → agent with `pipe` (backpressure both ways) and one callback. Not stream.pipeline:
 * it aborts an AbortController at every finish, and the DOMException it builds (with a stack) cost
 * ~15 % of the gateway's CPU per request (measured with --cpu-prof).
 */
function pipeAll(first: IncomingMessage, middle: readonly NodeJS.ReadWriteStream[], last: ServerResponse, done: (err: NodeJS.ErrnoException | null) => void): void {
  let called = false;
  const all: (NodeJS.ReadableStream | NodeJS.WritableStream | ServerResponse)[] = [first, ...middle, last];
  const finish = (err: NodeJS.ErrnoException | null): void => {
    if (called) return;
    called = true;
    // Headers not sent yet (a decoded body whose first bytes failed): `done` answers with an error instead.
    if (err && last.headersSent) abortResponse(last);
    if (err) for (const s of all) if (s !== last || last.headersSent) (s as { destroy?: () => void }).destroy?.();
    done(err);
  };
  let cur: NodeJS.ReadableStream = first;
  for (const m of middle) cur = cur.pipe(m);
  cur.pipe(last);
  for (const s of all) s.once('error', (e: NodeJS.ErrnoException) => finish(e));
  last.once('finish', () => finish(null));
  last.once('close', () => {
    if (!last.writableFinished) finish(Object.assign(new Error('the agent closed the connection'), { code: 'ERR_STREAM_PREMATURE_CLOSE' }));
  });
  first.once('close', () => {
    if (!first.complete) finish(Object.assign(new Error('the upstream closed mid-body'), { code: 'ECONNRESET' }));
  });
}

/** What the result line says about a body that did not finish. */
function abortReason(err: NodeJS.ErrnoException, upRes: IncomingMessage): string {
  if (err instanceof UnmaskableError) return `unmaskable: ${err.message}`;
  if (upRes.readableAborted || err.code === 'ECONNRESET' || err.code === 'ERR_STREAM_PREMATURE_CLOSE') return `aborted mid-body (${err.code ?? err.message})`;
  return err.message;
}

/** Responses that carry no body (RFC 9110 §6.4.1). */
function hasNoBody(method: string, status: number): boolean {
  return method === 'HEAD' || status === 204 || status === 304 || (status >= 100 && status < 200);
}

/**
 * Ends a response that failed after its headers went out so that no client can take it for complete:
 * a TCP reset (an HTTP/1.0 or close-delimited body ended by a FIN would look whole), else destroy.
 */
function abortResponse(res: ServerResponse): void {
  const sock = res.socket;
  try {
    if (sock !== null && !sock.destroyed) sock.resetAndDestroy();
  } catch {
    // A TLS socket has no TCP handle of its own to reset: destroyed below.
  }
  if (!res.destroyed) res.destroy();
}

export class Gateway {
  private readonly base: URL;
  private readonly basePath: string;
  private readonly agent: HttpAgent;
  private readonly credential: CredentialSource;
  private maskerFor: { version: string; masker: Masker } | undefined;
  private readonly sessions = new WeakMap<Duplex, SocketSession>();
  private readonly openSessions = new Set<SocketSession>();
  inflight = 0;

  constructor(
    readonly cfg: GatewayConfig,
    readonly policy: CompiledHttpPolicy,
    readonly profile: GatewayProfile,
    readonly deps: GatewayDeps,
  ) {
    this.base = new URL(cfg.upstream.url);
    this.basePath = this.base.pathname.replace(/\/+$/, '');
    this.credential = new CredentialSource(cfg.credentials);
    const tls = cfg.upstream.tls;
    const common = { keepAlive: true, maxSockets: DEFAULT_UPSTREAM_SOCKETS, maxFreeSockets: DEFAULT_UPSTREAM_SOCKETS, scheduling: 'lifo' as const };
    this.agent =
      this.base.protocol === 'https:'
        ? new https.Agent({
            ...common,
            rejectUnauthorized: true,
            ...(tls.caFile !== undefined ? { ca: readFileSync(tls.caFile) } : {}),
            ...(tls.serverName !== undefined ? { servername: tls.serverName } : {}),
            ...(tls.certFile !== undefined && tls.keyFile !== undefined ? { cert: readFileSync(tls.certFile), key: readFileSync(tls.keyFile) } : {}),
          })
        : new http.Agent(common);
  }

  close(): void {
    this.agent.destroy();
  }

  /** The masker with the current credential as a keyword (an echo of it is masked like a secret). */
  private masker(cred: Credential): Masker {
    const m = this.maskerFor;
    if (m !== undefined && m.version === cred.version) return m.masker;
    const words = cred.secrets.filter((s) => s.length >= 2);
    const opts = this.cfg.masking;
    // Without credential keywords the caller's compiled masker is this one (compiling costs ms and MBs).
    const masker = words.length === 0 ? (this.cfg.compiledMasker ?? createMasker(opts)) : createMasker({ ...opts, keywordLists: [...(opts.keywordLists ?? []), { id: CREDENTIAL_RULE, words }] });
    this.maskerFor = { version: cred.version, masker };
    return masker;
  }

  private send(res: ServerResponse, r: HttpRefusal): void {
    if (res.headersSent) {
      res.destroy();
      return;
    }
    const body = this.profile.render(r);
    const headers: OutgoingHttpHeaders = { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), 'cache-control': 'no-store', 'x-chaperone-error': r.code };
    if (r.status === 401) headers['www-authenticate'] = 'Bearer realm="chaperone"';
    res.writeHead(r.status, headers);
    res.end(body);
  }

  private async authenticate(req: IncomingMessage): Promise<{ ok: true; principal: Principal } | { ok: false; r: HttpRefusal }> {
    const name = this.cfg.name;
    const a = await authenticateAgent(this.deps.verifier, requestBearer(req), name, this.cfg.access, 'send the agent\'s token as Authorization: Bearer <token>');
    if (a.ok) return a;
    this.deps.metrics.authFailure?.(name, a.reason);
    return { ok: false, r: refusal(a.code, a.params) };
  }

  /** The socket's session for this principal; a different principal on the same socket starts a new one. */
  private async session(socket: Duplex, p: Principal): Promise<SocketSession | undefined> {
    const key = `${p.issuer}#${p.subject}`;
    const cur = this.sessions.get(socket);
    if (cur !== undefined && cur.key === key && cur.recorded) return cur;
    if (cur !== undefined) this.endSession(cur, 'principal-changed');
    const s: SocketSession = { id: `${this.profile.protocol}-${randomBytes(8).toString('hex')}`, key, cmd: 0, recorded: false, summary: { commands: 0, denied: 0, approvals: 0, bytes: 0, masked: {} }, started: Date.now() };
    const sock = socket as Duplex & { remoteAddress?: string; remotePort?: number };
    const pod = p.pod ? `${p.serviceAccount?.namespace ?? ''}/${p.pod.name}` : null;
    const ok = await this.record({ type: 'session.start', session: s.id, identity: this.deps.identity, subject: p.subject, groups: p.groups, pod, client: `${sock.remoteAddress ?? '?'}:${sock.remotePort ?? 0}`, connection: this.cfg.name, protocol: this.profile.protocol });
    if (!ok) return undefined;
    s.recorded = true;
    this.sessions.set(socket, s);
    this.openSessions.add(s);
    this.deps.metrics.sessionStarted?.(this.cfg.name);
    socket.once('close', () => this.endSession(s, 'client-closed'));
    return s;
  }

  private endSession(s: SocketSession, reason: string): void {
    if (!this.openSessions.delete(s)) return;
    this.deps.metrics.sessionEnded?.(this.cfg.name);
    const summary = { ...s.summary, rows: 0, durationMs: Date.now() - s.started };
    this.deps.recorder?.record({ type: 'session.end', session: s.id, reason, summary }).catch(() => undefined);
  }

  private async record(e: RecordEvent): Promise<boolean> {
    if (this.deps.recorder === null) return true;
    try {
      await this.deps.recorder.record(e);
      return true;
    } catch (err) {
      this.deps.logger.error({ err: (err as Error).message, type: e.type }, 'recording failed; refusing');
      return false;
    }
  }

  /** Reads the request body (bounded) when a rule needs it; undefined = too large. */
  private readBody(req: IncomingMessage): Promise<Buffer | undefined> {
    const max = this.deps.maxJudgedBodyBytes ?? DEFAULT_MAX_JUDGED_BODY_BYTES;
    return new Promise((resolve, reject) => {
      const parts: Buffer[] = [];
      let n = 0;
      req.on('data', (c: Buffer) => {
        n += c.length;
        if (n > max) {
          req.removeAllListeners('data');
          req.resume();
          resolve(undefined);
          return;
        }
        parts.push(c);
      });
      req.once('end', () => resolve(Buffer.concat(parts, n)));
      req.once('error', reject);
    });
  }

  /** Entry point for every request (not upgrades). Never throws. */
  handle(req: IncomingMessage, res: ServerResponse): void {
    this.inflight++;
    res.once('close', () => this.inflight--);
    this.run(req, res).catch((e: unknown) => {
      this.deps.logger.error({ err: (e as Error)?.message ?? String(e) }, 'request failed inside the gateway');
      this.send(res, refusal('CHAP_ERR_INTERNAL', { detail: 'see the sidecar log' }));
    });
  }

  private parseTarget(req: IncomingMessage): { u: URL; path: string } | HttpRefusal {
    const raw = req.url ?? '';
    if (!raw.startsWith('/')) return refusal('CHAP_ERR_HTTP_BAD_REQUEST', { detail: 'the request target must be a path such as /v1/items (this is a reverse proxy, not a forward proxy)' });
    let u: URL;
    try {
      u = new URL(mergeSeparators(raw), 'http://sidecar.invalid');
    } catch {
      return refusal('CHAP_ERR_HTTP_BAD_REQUEST', { detail: 'the request target is not a valid URL path' });
    }
    if (u.host !== 'sidecar.invalid') return refusal('CHAP_ERR_HTTP_BAD_REQUEST', { detail: 'the request target must be a path, not a network-path reference' });
    const m = matchPath(u.pathname);
    if ('bad' in m) return refusal('CHAP_ERR_HTTP_BAD_REQUEST', { detail: m.bad });
    return { u, path: m.path };
  }

  /** Target, token, session: who is asking for what, or the refusal already sent. */
  private async admit(req: IncomingMessage, res: ServerResponse): Promise<{ target: { u: URL; path: string }; principal: Principal; session: SocketSession } | undefined> {
    const target = this.parseTarget(req);
    if ('status' in target) return void this.send(res, target);
    const auth = await this.authenticate(req);
    if (!auth.ok) return void this.send(res, auth.r);
    const session = await this.session(req.socket, auth.principal);
    if (session === undefined) return void this.send(res, refusal('CHAP_ERR_RECORDING_FAILED', { detail: 'session start' }));
    return { target, principal: auth.principal, session };
  }

  /** The request body, read only when a rule judges bodies: raw bytes and the parsed JSON; null = refused (too large). */
  private async judgedBody(req: IncomingMessage, res: ServerResponse): Promise<{ body: Buffer | undefined; judged: JudgedBody } | null> {
    // A GET may carry a body too (search APIs read it): whatever the method, an announced body is judged.
    if (!this.policy.needsBody || !announcesBody(req)) return { body: undefined, judged: { parsed: undefined, unknown: false } };
    const max = this.deps.maxJudgedBodyBytes ?? DEFAULT_MAX_JUDGED_BODY_BYTES;
    const body = await this.readBody(req);
    if (body === undefined) {
      this.send(res, refusal('CHAP_ERR_HTTP_BODY_TOO_LARGE', { limit: max, detail: 'a rule of this connection judges request bodies' }));
      return null;
    }
    return { body, judged: judgeBody(body, req.headers, max) };
  }

  /**
   * Judged as every method the upstream might run: the request's own, and (plain HTTP) those named by
   * X-HTTP-Method-Override and kin or a `_method` parameter (Rails, Laravel, Express middleware, Google
   * APIs honour them). The strictest verdict wins. The API server honours none of them.
   */
  private decideAll(facts: HttpFacts, req: IncomingMessage): HttpDecision {
    let d = this.decide(facts);
    if (this.profile.protocol === 'kubernetes') return d;
    for (const m of overrideMethods(req, facts.query)) {
      if (m === facts.method) continue;
      const alt = this.decide({ ...facts, method: m });
      if (STRENGTH[alt.action] > STRENGTH[d.action]) d = alt;
    }
    return d;
  }

  private decide(facts: HttpFacts): HttpDecision {
    const d = evaluateHttp(this.policy, facts);
    if (this.cfg.readOnly && d.action !== 'deny' && !READ_METHODS.has(facts.method)) {
      return { action: 'deny', rule: 'chaperone.read-only', reason: 'read-only', message: 'the connection is read-only: only GET, HEAD and OPTIONS are forwarded' };
    }
    return d;
  }

  private async run(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const t0 = performance.now();
    const who = await this.admit(req, res);
    if (who === undefined) return;
    const { target, session } = who;
    const method = (req.method ?? 'GET').toUpperCase();
    const jb = await this.judgedBody(req, res);
    if (jb === null) return;
    const { body, judged } = jb;
    const cls = this.profile.classify(method, target.path, target.u.searchParams);
    const facts = requestFacts(method, target, judged, body, cls.kube);
    const cred = this.credentialOr(res);
    if (cred === undefined) return;
    const masker = this.masker(cred);
    const maskedUrl = masker.maskText(`${target.u.pathname}${target.u.search}`).value;
    const cmd = ++session.cmd;
    session.summary.commands++;
    const ex: Exchange = { req, res, t0, session, cmd, facts, maskedUrl, upstreamPath: `${this.basePath}${target.u.pathname}${target.u.search}`, body };
    const d = this.decideAll(facts, req);
    const decision: Decision = d.action === 'allow' ? 'allow' : d.action === 'deny' ? 'deny' : 'approval';
    const recorded = await this.record({ type: 'request', session: session.id, cmd, method, url: maskedUrl, classification: cls.classification, decision, rule: d.rule, ...(d.action !== 'allow' ? { reason: d.reason } : {}) });
    if (!recorded) return this.send(res, refusal('CHAP_ERR_RECORDING_FAILED', { detail: 'request' }));
    this.deps.metrics.statement?.(this.cfg.name, d.action);
    if (d.action === 'deny') {
      session.summary.denied++;
      this.finish(ex, 403, 0, {}, undefined);
      return this.send(res, refusal('CHAP_ERR_HTTP_DENIED', { rule: d.rule, reason: d.reason, detail: d.message }, { rule: d.rule }));
    }
    if (d.action === 'require-approval' && !(await this.hold(ex, d, who.principal))) return;
    this.forward(ex, cred, masker);
  }

  private credentialOr(res: ServerResponse): Credential | undefined {
    try {
      return this.credential.get();
    } catch (e) {
      this.deps.logger.error({ err: (e as Error).message }, 'credential unreadable');
      this.send(res, refusal('CHAP_ERR_HTTP_UPSTREAM_UNAVAILABLE', { connection: this.cfg.name, detail: 'the sidecar cannot read its credential for this connection; see the sidecar log' }));
      return undefined;
    }
  }

  /** Waits for a decision; true = approved (forward). Answers the client itself otherwise. */
  private async hold(ex: Exchange, d: Extract<HttpDecision, { action: 'require-approval' }>, p: Principal): Promise<boolean> {
    const { session, cmd, res } = ex;
    session.summary.approvals++;
    const groups = Array.isArray(d.approval['approverGroups']) ? (d.approval['approverGroups'] as unknown[]).filter((g): g is string => typeof g === 'string') : [];
    const seconds = typeof d.approval['timeoutSeconds'] === 'number' ? d.approval['timeoutSeconds'] : undefined;
    const timeoutMs = seconds !== undefined && seconds > 0 ? Math.min(seconds * 1000, this.deps.approvalTimeoutMs) : this.deps.approvalTimeoutMs;
    const statement = `${ex.facts.method} ${ex.maskedUrl}`;
    const hash = createHash('sha256').update(`${ex.facts.method} ${ex.upstreamPath}\n`).update(ex.body ?? Buffer.alloc(0)).digest('hex');
    const req: ApprovalRequest = {
      id: `${this.profile.protocol}-${randomUUID()}`, session: session.id, cmd, connection: this.cfg.name, identity: this.deps.identity, subject: p.subject, username: p.username,
      groups: p.groups, statement, statementHash: hash, rule: d.rule, reason: d.reason, message: d.message, approverGroups: groups, timeoutMs, settings: d.approval,
    };
    const started = Date.now();
    const waitOk = await this.record({ type: 'approval.wait', session: session.id, cmd, request: req.id, approverGroups: groups, timeoutMs });
    const gone = new AbortController();
    const onClose = (): void => {
      if (!res.writableFinished) gone.abort();
    };
    res.once('close', onClose);
    this.deps.logger.info({ request: req.id, rule: d.rule, how: this.deps.approvals.howToApprove(req) }, 'request held for approval');
    const o = waitOk ? await holdForApproval(this.deps.approvals, req, gone.signal) : { outcome: 'denied' as const, reason: 'the wait could not be recorded' };
    res.off('close', onClose);
    await this.record({ type: 'approval.outcome', session: session.id, cmd, request: req.id, outcome: o.outcome, by: 'by' in o ? (o.by ?? []) : [], waitedMs: Date.now() - started });
    if (o.outcome === 'approved') {
      this.deps.metrics.statement?.(this.cfg.name, 'approved');
      return true;
    }
    this.deps.metrics.statement?.(this.cfg.name, o.outcome === 'expired' ? 'approval-expired' : 'approval-denied');
    if (o.outcome === 'cancelled') return false;
    const code = o.outcome === 'expired' ? 'CHAP_ERR_HTTP_APPROVAL_EXPIRED' : 'CHAP_ERR_HTTP_APPROVAL_DENIED';
    const r = refusal(code, { rule: d.rule, request: req.id, detail: o.reason }, { rule: d.rule, request: req.id });
    this.finish(ex, r.status, 0, {}, undefined);
    this.send(res, r);
    return false;
  }

  private upstreamRequest(ex: Exchange, cred: Credential): ClientRequest {
    let path = ex.upstreamPath;
    if (cred.query !== undefined) {
      // The agent's own parameter of that name is dropped: the upstream sees exactly one credential, ours.
      const q = path.indexOf('?');
      const params = new URLSearchParams(q < 0 ? '' : path.slice(q + 1));
      params.delete(cred.query.name);
      params.append(cred.query.name, cred.query.value);
      path = `${q < 0 ? path : path.slice(0, q)}?${params.toString()}`;
    }
    const dropped = new Set<string>();
    if (cred.header !== undefined) dropped.add(cred.header.name);
    const headers = upstreamHeaders(ex.req.headers, { host: this.base.host, ...(cred.header !== undefined ? { credential: cred.header } : {}), drop: dropped });
    this.profile.adjustHeaders?.(headers, ex.facts);
    if (ex.body !== undefined) {
      delete headers['transfer-encoding'];
      headers['content-length'] = ex.body.length;
    }
    const opts: RequestOptions = { protocol: this.base.protocol, hostname: this.base.hostname.replace(/^\[|\]$/g, ''), port: this.base.port, method: ex.facts.method, path, headers, agent: this.agent };
    return (this.base.protocol === 'https:' ? https : http).request(opts);
  }

  private forward(ex: Exchange, cred: Credential, masker: Masker): void {
    const { req, res } = ex;
    const upReq = this.upstreamRequest(ex, cred);
    const sentAt = performance.now();
    const connectMs = this.cfg.limits.connectTimeoutSeconds * 1000;
    const headersMs = this.deps.responseHeadersTimeoutMs ?? DEFAULT_RESPONSE_HEADERS_TIMEOUT_MS;
    let timer: NodeJS.Timeout | undefined = setTimeout(() => upReq.destroy(new Error(`no response headers within ${Math.round(headersMs / 1000)} s`)), headersMs);
    upReq.once('socket', (s) => {
      if (!(s as { connecting?: boolean }).connecting) return;
      const t = setTimeout(() => upReq.destroy(new Error(`connect timeout after ${connectMs / 1000} s`)), connectMs);
      s.once('connect', () => clearTimeout(t));
      s.once('secureConnect', () => clearTimeout(t));
      s.once('close', () => clearTimeout(t));
    });
    const clientGone = (): void => {
      if (!res.writableFinished) upReq.destroy();
    };
    res.once('close', clientGone);
    upReq.once('error', (e: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      timer = undefined;
      if (res.headersSent || res.destroyed) return;
      const detail = e.code !== undefined ? `${e.code}` : e.message;
      const code = /timeout/i.test(e.message) ? 'CHAP_ERR_HTTP_UPSTREAM_TIMEOUT' : 'CHAP_ERR_HTTP_UPSTREAM_UNAVAILABLE';
      this.deps.logger.warn({ err: detail }, 'upstream request failed');
      const r = refusal(code, { connection: this.cfg.name, detail });
      this.finish(ex, r.status, 0, {}, detail);
      this.send(res, r);
    });
    upReq.once('response', (upRes) => {
      clearTimeout(timer);
      timer = undefined;
      this.deps.metrics.upstreamLatency?.(this.cfg.name, (performance.now() - sentAt) / 1000);
      this.respond(ex, upRes, masker, cred);
    });
    if (ex.body !== undefined) upReq.end(ex.body);
    else req.pipe(upReq);
  }

  private respond(ex: Exchange, upRes: IncomingMessage, masker: Masker, cred: Credential): void {
    const { res } = ex;
    const status = upRes.statusCode ?? 502;
    const h = agentHeaders(upRes.headers, masker, cred.secrets);
    const headerFindings = h.findings;
    const opts = this.profile.bodyOptions(ex.facts, upRes.headers['content-type'], masker);
    const decoders = decodersFor(upRes.headers['content-encoding'], upRes.headers['transfer-encoding']);
    if (hasNoBody(ex.facts.method, status)) {
      if (opts.mode !== 'none' || decoders?.length !== 0) delete h.headers['content-length'];
      if (decoders?.length !== 0) delete h.headers['content-encoding'];
      res.writeHead(status, h.headers);
      res.end();
      upRes.resume();
      this.finish(ex, status, 0, headerFindings, undefined);
      return;
    }
    if (opts.mode === 'refuse') return this.refuseBody(ex, upRes, headerFindings, 'type');
    if (decoders === undefined && opts.mode === 'none') return this.streamBody(ex, upRes, { status, headers: h.headers, opts, headerFindings, decoders: [] });
    if (decoders === undefined) return this.refuseBody(ex, upRes, headerFindings, 'encoding');
    if (decoders.length === 0 && opts.mode === 'json') return this.respondDocument(ex, upRes, { status, headers: h.headers, opts, headerFindings });
    this.streamBody(ex, upRes, { status, headers: h.headers, opts, headerFindings, decoders });
  }

  /** A response that is not passed on (an encoding we cannot decode; a Kubernetes object in YAML, protobuf, CBOR): 502 before any byte. */
  private refuseBody(ex: Exchange, upRes: IncomingMessage, headerFindings: Record<string, number>, why: 'type' | 'encoding'): void {
    upRes.destroy();
    const detail = why === 'encoding' ? `content-encoding ${String(upRes.headers['content-encoding'] ?? 'identity')} / transfer-encoding ${String(upRes.headers['transfer-encoding'] ?? 'identity')} cannot be decoded` : `a ${String(upRes.headers['content-type'] ?? 'untyped')} answer cannot be masked by meaning here`;
    const r = refusal('CHAP_ERR_HTTP_UNMASKABLE', { connection: this.cfg.name, detail });
    this.finish(ex, r.status, 0, headerFindings, r.message);
    this.send(ex.res, r);
  }

  /** Every other body: [decode →] mask as it streams → the agent (identity encoding when it was decoded). */
  private streamBody(ex: Exchange, upRes: IncomingMessage, o: { status: number; headers: OutgoingHttpHeaders; opts: BodyMaskOptions; headerFindings: Record<string, number>; decoders: readonly NodeJS.ReadWriteStream[] }): void {
    const { res } = ex;
    const { status, headers, opts, headerFindings, decoders } = o;
    const decoded = decoders.length > 0;
    // Decoded bytes are always scanned, even of a type that is otherwise passed through.
    const t = new MaskingTransform(!decoded ? opts : { ...opts, mode: opts.mode === 'none' ? 'text' : opts.mode });
    if (opts.mode !== 'none' || decoded) delete headers['content-length'];
    if (decoded) delete headers['content-encoding'];
    if (decoded) {
      // A coded body's headers go out with its first decoded bytes: a body that does not decode (not
      // gzip at all, truncated, a bomb cut early) is answered 502 instead of a 200 that breaks off.
      res.statusCode = status;
      for (const [k, v] of Object.entries(headers)) if (v !== undefined) res.setHeader(k, v);
    } else {
      res.writeHead(status, headers);
      // Streams show their start at once (a watch may be quiet for minutes; text is held back by the masking window).
      res.flushHeaders();
    }
    const done = (err: NodeJS.ErrnoException | null): void => {
      const findings = { ...headerFindings };
      addCounts(findings, t.findings());
      if (err && !res.headersSent && !res.destroyed) {
        for (const n of res.getHeaderNames()) res.removeHeader(n);
        const r = refusal('CHAP_ERR_HTTP_UNMASKABLE', { connection: this.cfg.name, detail: `the ${String(upRes.headers['content-encoding'] ?? upRes.headers['transfer-encoding'])} body could not be decoded and masked: ${err.message}` });
        this.finish(ex, r.status, 0, findings, abortReason(err, upRes));
        return this.send(res, r);
      }
      if (err && !res.destroyed) res.destroy();
      this.finish(ex, status, t.bytesOut, findings, err ? abortReason(err, upRes) : undefined);
    };
    const guard = decoded ? bombGuard() : undefined;
    pipeAll(upRes, guard !== undefined ? [guard.count, ...decoders, guard.check, t] : [t], res, done);
  }

  /**
   * An uncompressed JSON answer (the common case): collected, masked whole and sent with its
   * Content-Length in one write, without a stream pipeline. Over the unit limit it continues as a stream.
   */
  private respondDocument(ex: Exchange, upRes: IncomingMessage, o: { status: number; headers: OutgoingHttpHeaders; opts: BodyMaskOptions; headerFindings: Record<string, number> }): void {
    const { res } = ex;
    const { status, headers, opts, headerFindings } = o;
    const max = opts.maxUnitBytes ?? DEFAULT_MAX_UNIT_BYTES;
    const parts: Buffer[] = [];
    let n = 0;
    let settled = false;
    const fail = (why: string): void => {
      if (settled) return;
      settled = true;
      // Nothing was sent yet: the agent gets a clear 502, not a connection that just closes.
      const r = refusal('CHAP_ERR_HTTP_UPSTREAM_UNAVAILABLE', { connection: this.cfg.name, detail: why });
      this.finish(ex, r.status, 0, headerFindings, why);
      this.send(res, r);
    };
    const onData = (c: Buffer): void => {
      n += c.length;
      parts.push(c);
      if (n <= max) return;
      // Too big to mask whole: the rest streams through the transform (or is refused: overflow fail).
      settled = true;
      upRes.off('data', onData);
      upRes.off('end', onEnd);
      upRes.off('error', onError);
      upRes.pause();
      const t = new MaskingTransform(opts);
      delete headers['content-length'];
      res.writeHead(status, headers);
      for (const p of parts) t.write(p);
      pipeAll(upRes, [t], res, (err) => {
        const findings = { ...headerFindings };
        addCounts(findings, t.findings());
        if (err && !res.destroyed) res.destroy();
        this.finish(ex, status, t.bytesOut, findings, err ? abortReason(err, upRes) : undefined);
      });
    };
    const onEnd = (): void => {
      if (settled) return;
      settled = true;
      const raw = parts.length === 1 ? parts[0]! : Buffer.concat(parts, n);
      const r = (opts.maskDocument ?? ((d: string) => opts.masker.maskJson(d)))(raw.toString('utf8'));
      // Unchanged valid UTF-8: the upstream's own bytes go out. Invalid bytes go out as the text that was scanned (a lax decoder must not read more than we did).
      const body = r.changed || !isUtf8(raw) ? Buffer.from(r.value, 'utf8') : raw;
      headers['content-length'] = body.length;
      res.writeHead(status, headers);
      res.end(body);
      const findings = { ...headerFindings };
      if (r.changed) addCounts(findings, r.findings);
      this.finish(ex, status, body.length, findings, undefined);
    };
    const onError = (e: NodeJS.ErrnoException): void => fail(`aborted mid-body (${e.code ?? e.message})`);
    upRes.on('data', onData);
    upRes.once('end', onEnd);
    upRes.once('error', onError);
    upRes.once('close', () => {
      if (!upRes.complete) fail('aborted mid-body (upstream closed)');
    });
  }

  /** The result line (lazy: not write-ahead), counters and metrics. */
  private finish(ex: Exchange, status: number, bytes: number, masked: Readonly<Record<string, number>>, error: string | undefined): void {
    const s = ex.session.summary;
    s.bytes += bytes;
    addCounts(s.masked, masked);
    if (Object.keys(masked).length > 0) this.deps.metrics.masked?.(masked);
    const ev: RecordEvent = { type: 'result', session: ex.session.id, cmd: ex.cmd, rows: null, bytes, masked, durationMs: Math.round((performance.now() - ex.t0) * 1000) / 1000, httpStatus: status, ...(error !== undefined ? { error } : {}) };
    this.deps.recorder?.record(ev, { lazy: true }).catch(() => undefined);
  }

  /** Upgrade requests (WebSocket, SPDY): judged like requests; refused unless a rule allows them, then tunneled as opaque bytes. */
  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    this.upgrade(req, socket, head).catch((e: unknown) => {
      this.deps.logger.error({ err: (e as Error)?.message ?? String(e) }, 'upgrade failed inside the gateway');
      socket.destroy();
    });
  }

  private refuseRaw(socket: Duplex, r: HttpRefusal): void {
    const body = this.profile.render(r);
    socket.end(`HTTP/1.1 ${r.status} ${http.STATUS_CODES[r.status] ?? 'Error'}\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\nx-chaperone-error: ${r.code}\r\n\r\n${body}`);
  }

  private upgradeDecision(facts: HttpFacts): HttpDecision {
    const d = this.decide(facts);
    // Kubernetes upgrades (exec, attach, port-forward over SPDY/WebSocket) carry unmaskable streams: always refused.
    if (this.profile.protocol === 'kubernetes' && d.action === 'allow') return { action: 'deny', rule: 'chaperone.kubernetes-upgrade', reason: 'upgrade-refused', message: 'exec, attach and port-forward streams cannot be masked, so the Kubernetes gateway refuses every upgrade' };
    if (d.action === 'require-approval') return { action: 'deny', rule: d.rule, reason: 'upgrade-refused', message: 'an upgrade cannot wait for approval' };
    return d;
  }

  private async upgrade(req: IncomingMessage, socket: Duplex, head: Buffer): Promise<void> {
    socket.on('error', () => socket.destroy());
    const target = this.parseTarget(req);
    if ('status' in target) return this.refuseRaw(socket, target);
    const auth = await this.authenticate(req);
    if (!auth.ok) return this.refuseRaw(socket, auth.r);
    const session = await this.session(socket, auth.principal);
    if (session === undefined) return this.refuseRaw(socket, refusal('CHAP_ERR_RECORDING_FAILED', { detail: 'session start' }));
    const method = (req.method ?? 'GET').toUpperCase();
    const cls = this.profile.classify(method, target.path, target.u.searchParams);
    const facts: HttpFacts = { method, path: target.path, query: target.u.searchParams, body: undefined, websocket: true, ...(cls.kube !== undefined ? { kube: cls.kube } : {}) };
    const d = this.upgradeDecision(facts);
    const proto = String(req.headers.upgrade ?? 'unknown');
    const cmd = ++session.cmd;
    const cred = this.credential.get();
    const masker = this.masker(cred);
    const maskedUrl = masker.maskText(`${target.u.pathname}${target.u.search}`).value;
    const recorded = await this.record({ type: 'request', session: session.id, cmd, method, url: maskedUrl, classification: { ...cls.classification, kind: `${cls.classification.kind}-upgrade` }, decision: d.action === 'allow' ? 'allow' : 'deny', rule: d.rule, ...(d.action !== 'allow' ? { reason: d.reason } : {}) });
    if (!recorded) return this.refuseRaw(socket, refusal('CHAP_ERR_RECORDING_FAILED', { detail: 'request' }));
    this.deps.metrics.statement?.(this.cfg.name, d.action === 'allow' ? 'allow' : 'deny');
    if (d.action !== 'allow') {
      session.summary.denied++;
      return this.refuseRaw(socket, refusal('CHAP_ERR_HTTP_UPGRADE_REFUSED', { protocol: proto, detail: `rule ${d.rule}: ${d.message}` }, { rule: d.rule }));
    }
    this.tunnel({ req, res: undefined as unknown as ServerResponse, t0: performance.now(), session, cmd, facts, maskedUrl, upstreamPath: `${this.basePath}${target.u.pathname}${target.u.search}`, body: undefined }, socket, head, cred);
  }

  /** An allowed upgrade: the upstream handshake with the credential, then raw bytes both ways (recorded as opaque). */
  private tunnel(ex: Exchange, socket: Duplex, head: Buffer, cred: Credential): void {
    const upReq = this.upstreamRequest(ex, cred);
    upReq.setHeader('connection', 'Upgrade');
    upReq.setHeader('upgrade', String(ex.req.headers.upgrade));
    upReq.once('upgrade', (upRes, upSocket, upHead) => {
      // The status text is the gateway's own, the headers scrubbed like any response's (detectors and the credential).
      const lines = [`HTTP/1.1 ${upRes.statusCode ?? 101} Switching Protocols`];
      const h = agentHeaders(upRes.headers, this.masker(cred), cred.secrets).headers;
      h['connection'] = 'Upgrade';
      if (upRes.headers.upgrade !== undefined) h['upgrade'] = upRes.headers.upgrade;
      for (const [k, v] of Object.entries(h)) for (const x of Array.isArray(v) ? v : [String(v)]) lines.push(`${k}: ${x.replace(/[\r\n]/g, ' ')}`);
      socket.write(`${lines.join('\r\n')}\r\n\r\n`);
      if (upHead.length > 0) socket.write(upHead);
      if (head.length > 0) upSocket.write(head);
      let bytes = 0;
      upSocket.on('data', (c: Buffer) => (bytes += c.length));
      upSocket.pipe(socket).pipe(upSocket);
      const end = (): void => {
        upSocket.destroy();
        socket.destroy();
      };
      // node:http sockets allow half-open connections: a FIN from either side ends the tunnel.
      upSocket.once('end', end);
      socket.once('end', end);
      upSocket.once('close', end);
      socket.once('close', () => {
        end();
        this.finish(ex, 101, bytes, {}, undefined);
      });
    });
    upReq.once('response', (upRes) => {
      upRes.resume();
      this.refuseRaw(socket, refusal('CHAP_ERR_HTTP_UPGRADE_REFUSED', { protocol: String(ex.req.headers.upgrade), detail: `the upstream answered ${upRes.statusCode ?? 0} instead of switching protocols` }));
    });
    upReq.once('error', (e) => this.refuseRaw(socket, refusal('CHAP_ERR_HTTP_UPSTREAM_UNAVAILABLE', { connection: this.cfg.name, detail: e.message })));
    upReq.end();
  }
}
