// The egress forward proxy: proxy token → allow-list → resolve once and check the address → plain HTTP through the HTTP gateway (rules, masking, recording), CONNECT as a recorded opaque tunnel.
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { lookup } from 'node:dns/promises';
import type { IncomingMessage, OutgoingHttpHeaders, ServerResponse } from 'node:http';
import { createRequire } from 'node:module';
import { connect as netConnect, isIP, type Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { EgressConfig } from '../../core/config-types.ts';
import { authenticateAgent } from '../../identity/authenticate.ts';
import { bearerToken } from '../../identity/bearer.ts';
import type { Principal } from '../../identity/verify-token.ts';
import { createMasker, type Masker, type MaskerOptions } from '../../masking/index.ts';
import type { HttpDecision } from '../../policy/http-rules.ts';
import type { RecordEvent, RequestClassification } from '../../recording/event.ts';
import { refusal, jsonBody, type HttpRefusal } from '../http/errors.ts';
import { Gateway, type GatewayConfig, type GatewayDeps, type GatewayProfile } from '../http/gateway.ts';
import { HTTP_PROFILE } from '../http/listener.ts';
import { holdForApproval, type ApprovalRequest } from '../postgres/approval-hold.ts';
import { checkAddress, type OwnListeners } from './address.ts';
import { matchHost, type AllowEntry } from './allow-list.ts';
import { framingProblem, parseAbsoluteTarget, parseConnectTarget, proxyToken, type Target } from './request.ts';
import type { EgressPolicy } from './rules.ts';

const require = createRequire(import.meta.url);
const http = require('node:http') as typeof import('node:http');

/** Gateways kept per (host, port, address) for plain HTTP (each holds a keep-alive pool); the least recently used idle one is closed. */
export const MAX_CACHED_GATEWAYS = 32;
/** How long one DNS resolution may take before the request is refused. */
export const DEFAULT_RESOLVE_TIMEOUT_MS = 5000;

/** Everything compiled from one good `egress` section. */
export interface EgressState {
  readonly config: EgressConfig;
  readonly entries: readonly AllowEntry[];
  /** The HTTP rules, narrowed per host for the gateways; the CONNECT decision. */
  readonly policy: EgressPolicy;
  readonly masking: MaskerOptions;
  /** sha256 of the config file that produced it: a new one empties the gateway cache. */
  readonly hash: string;
}

export type Resolver = (host: string) => Promise<readonly string[]>;

export interface EgressDeps extends Omit<GatewayDeps, 'metrics'> {
  readonly metrics: GatewayDeps['metrics'];
  readonly own: OwnListeners;
  /** DNS (tests replace it to play a rebinding resolver). */
  readonly resolve?: Resolver;
  readonly resolveTimeoutMs?: number;
}

interface ProxySession {
  readonly id: string;
  readonly key: string;
  cmd: number;
  readonly started: number;
  readonly summary: { commands: number; denied: number; approvals: number; bytes: number; masked: Record<string, number> };
}

type Admitted = { readonly ok: true; readonly principal: Principal; readonly token: string } | { readonly ok: false; readonly r: HttpRefusal };

/** Where a request may go: the address to dial, or the refusal with its rule and reason for the recording. */
type Route = { readonly ok: true; readonly address: string; readonly entry: AllowEntry } | { readonly ok: false; readonly rule: string; readonly reason: string; readonly message: string };

const defaultResolve: Resolver = async (host) => (await lookup(host, { all: true, order: 'ipv4first' })).map((a) => a.address);

function shownTarget(t: Target): string {
  return `${t.host.includes(':') ? `[${t.host}]` : t.host}:${t.port}`;
}

/** A refusal written on a raw socket (CONNECT, parse errors): status line, JSON body, connection closed. */
export function rawResponse(socket: Duplex, r: HttpRefusal, extra: readonly string[] = []): void {
  if (!socket.writable) return void socket.destroy();
  const body = jsonBody(r);
  const lines = [`HTTP/1.1 ${r.status} ${http.STATUS_CODES[r.status] ?? 'Error'}`, 'content-type: application/json', `content-length: ${Buffer.byteLength(body)}`, 'connection: close', `x-chaperone-error: ${r.code}`, ...extra];
  socket.end(`${lines.join('\r\n')}\r\n\r\n${body}`);
}

/**
 * Where the agent's own Authorization waits while the gateway authenticates from (and strips)
 * Authorization: the profile puts it back on the upstream request. Any agent-sent header of this
 * name is dropped first, so only the proxy ever sets it.
 */
export const STASHED_AUTHORIZATION = 'x-chaperone-egress-authorization';

/**
 * Hands a plain-HTTP proxy request to the gateway: the proxy token goes into Authorization (what the
 * gateway authenticates from and strips), the agent's own Authorization is kept for the upstream —
 * the proxy injects no credential, so it belongs to the origin — unless it is the agent's token itself.
 */
function forGateway(req: IncomingMessage, path: string, token: string): void {
  const own = req.headers.authorization;
  delete req.headers[STASHED_AUTHORIZATION];
  if (typeof own === 'string' && bearerToken(own) !== token) req.headers[STASHED_AUTHORIZATION] = own;
  req.url = path;
  req.headers.authorization = `Bearer ${token}`;
  delete req.headers['proxy-authorization'];
}

/** A rule's action as the recording names the decision. */
const RECORDED_DECISION = { allow: 'allow', deny: 'deny', 'require-approval': 'approval' } as const;

const PROXY_AUTHENTICATE = ['proxy-authenticate: Bearer realm="chaperone"', 'proxy-authenticate: Basic realm="chaperone"'];

export class EgressProxy {
  private state: EgressState;
  private masker: Masker;
  private readonly gateways = new Map<string, Gateway>();
  private readonly retired = new Set<Gateway>();
  private readonly sessions = new WeakMap<Duplex, ProxySession>();
  private readonly open = new Set<ProxySession>();
  private readonly tunnels = new Set<Socket>();

  constructor(
    state: EgressState,
    readonly deps: EgressDeps,
  ) {
    this.state = state;
    this.masker = createMasker(state.masking);
  }

  get name(): string {
    return this.state.config.name;
  }

  /** A reloaded `egress` section: new requests and tunnels use it; open ones keep theirs. */
  update(state: EgressState): void {
    if (state.hash === this.state.hash) return;
    this.state = state;
    this.masker = createMasker(state.masking);
    for (const gw of this.gateways.values()) this.retired.add(gw);
    this.gateways.clear();
    this.sweep();
  }

  /** Gateways of an older state or evicted while busy are closed once their last request is done. */
  private sweep(): void {
    for (const gw of this.retired) {
      if (gw.inflight > 0) continue;
      gw.close();
      this.retired.delete(gw);
    }
  }

  close(): void {
    for (const gw of [...this.gateways.values(), ...this.retired]) gw.close();
    this.gateways.clear();
    this.retired.clear();
    for (const t of this.tunnels) t.destroy();
  }

  // ------------------------------------------------------------------------------------------
  // Who is asking

  private async admit(header: string | string[] | undefined): Promise<Admitted> {
    const name = this.state.config.name;
    const token = proxyToken(header);
    const hint = 'send the agent\'s token as Proxy-Authorization: Bearer <token> (curl --proxy-header), or as the password of the proxy URL (http://agent:<token>@127.0.0.1:<port>)';
    const a = await authenticateAgent(this.deps.verifier, token, name, this.state.config.access, hint);
    if (a.ok) return { ok: true, principal: a.principal, token: token ?? '' };
    this.deps.metrics.authFailure?.(name, a.reason);
    const r = refusal(a.code, a.params);
    // 407 tells proxy clients to authenticate to the proxy (a 401 would be taken as the origin's answer).
    return { ok: false, r: r.status === 401 ? { ...r, status: 407 } : r };
  }

  private async record(e: RecordEvent, lazy = false): Promise<boolean> {
    if (this.deps.recorder === null) return true;
    try {
      await this.deps.recorder.record(e, lazy ? { lazy: true } : undefined);
      return true;
    } catch (err) {
      this.deps.logger.error({ err: (err as Error).message, type: e.type }, 'recording failed; refusing');
      return false;
    }
  }

  /** The socket's proxy session (tunnels and refusals of the proxy itself; plain HTTP forwarded goes through the gateway's own). */
  private async session(socket: Duplex, p: Principal): Promise<ProxySession | undefined> {
    const key = `${p.issuer}#${p.subject}`;
    const cur = this.sessions.get(socket);
    if (cur !== undefined && cur.key === key) return cur;
    if (cur !== undefined) this.endSession(cur, 'principal-changed');
    const s: ProxySession = { id: `egress-${randomBytes(8).toString('hex')}`, key, cmd: 0, started: Date.now(), summary: { commands: 0, denied: 0, approvals: 0, bytes: 0, masked: {} } };
    const sock = socket as Duplex & { remoteAddress?: string; remotePort?: number };
    const pod = p.pod ? `${p.serviceAccount?.namespace ?? ''}/${p.pod.name}` : null;
    const ok = await this.record({ type: 'session.start', session: s.id, identity: this.deps.identity, subject: p.subject, groups: p.groups, pod, client: `${sock.remoteAddress ?? '?'}:${sock.remotePort ?? 0}`, connection: this.name, protocol: 'http' });
    if (!ok) return undefined;
    this.sessions.set(socket, s);
    this.open.add(s);
    this.deps.metrics.sessionStarted?.(this.name);
    socket.once('close', () => this.endSession(s, 'client-closed'));
    return s;
  }

  private endSession(s: ProxySession, reason: string): void {
    if (!this.open.delete(s)) return;
    this.deps.metrics.sessionEnded?.(this.name);
    this.deps.recorder?.record({ type: 'session.end', session: s.id, reason, summary: { ...s.summary, rows: 0, durationMs: Date.now() - s.started } }).catch(() => undefined);
  }

  // ------------------------------------------------------------------------------------------
  // Where it may go

  private async resolveOnce(host: string): Promise<readonly string[]> {
    if (isIP(host) !== 0) return [host];
    const ms = this.deps.resolveTimeoutMs ?? DEFAULT_RESOLVE_TIMEOUT_MS;
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_r, reject) => (timer = setTimeout(() => reject(new Error(`DNS did not answer within ${ms} ms`)), ms)));
    try {
      return await Promise.race([(this.deps.resolve ?? defaultResolve)(host), timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  /**
   * Allow-list, then one resolution whose every address must pass (a name that also resolves to
   * a blocked address is refused as a whole); the first address is the one dialed, never re-resolved.
   */
  private async route(t: Target, mode: 'connect' | 'http'): Promise<Route> {
    const m = matchHost(this.state.entries, t.host, t.port, mode);
    if (!m.ok) return { ok: false, rule: 'egress.default-deny', reason: m.reason, message: m.message };
    let addresses: readonly string[];
    try {
      addresses = await this.resolveOnce(t.host);
    } catch (e) {
      return { ok: false, rule: m.entry.rule, reason: 'unresolvable', message: `${t.host} did not resolve (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})` };
    }
    if (addresses.length === 0) return { ok: false, rule: m.entry.rule, reason: 'unresolvable', message: `${t.host} resolved to no address` };
    for (const a of addresses) {
      const c = checkAddress(a, t.port, m.entry.addresses, t.ipLiteral && m.entry.kind === 'ip', this.deps.own);
      if (!c.ok) return { ok: false, rule: m.entry.rule, reason: c.reason, message: c.message };
    }
    return { ok: true, address: addresses[0]!, entry: m.entry };
  }

  // ------------------------------------------------------------------------------------------
  // Plain HTTP (absolute form)

  /** Entry point for a plain-HTTP proxy request. Never throws. */
  handleRequest(req: IncomingMessage, res: ServerResponse): void {
    this.request(req, res).catch((e: unknown) => {
      this.deps.logger.error({ err: (e as Error)?.message ?? String(e) }, 'egress request failed inside the proxy');
      this.send(res, refusal('CHAP_ERR_INTERNAL', { detail: 'see the sidecar log' }));
    });
  }

  private send(res: ServerResponse, r: HttpRefusal): void {
    if (res.headersSent) return void res.destroy();
    const body = jsonBody(r);
    const headers: OutgoingHttpHeaders = { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), 'cache-control': 'no-store', 'x-chaperone-error': r.code };
    if (r.status === 407) headers['proxy-authenticate'] = PROXY_AUTHENTICATE.map((l) => l.slice('proxy-authenticate: '.length));
    // A refused request may have an unread body: close rather than parse what follows as the next request.
    if (r.status === 400 || !req(res).complete) headers['connection'] = 'close';
    res.writeHead(r.status, headers);
    res.end(body);
  }

  private async request(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const framing = framingProblem(req.headers, req.rawHeaders);
    if (framing !== undefined) return this.send(res, refusal('CHAP_ERR_HTTP_BAD_REQUEST', { detail: framing }));
    const parsed = parseAbsoluteTarget(req.url);
    if (!parsed.ok) return this.send(res, refusal('CHAP_ERR_HTTP_BAD_REQUEST', { detail: parsed.message }));
    const t = parsed.target;
    const who = await this.admit(req.headers['proxy-authorization']);
    if (!who.ok) return this.send(res, who.r);
    const route = await this.route(t, 'http');
    if (!route.ok) return this.refuseHttp(req, res, who.principal, t, route);
    const gw = this.gatewayFor(t.host, t.port, route.address, parsed.target.hostHeader);
    // The gateway authenticates from Authorization and strips it (and Proxy-Authorization, hop-by-hop): the token never travels on.
    forGateway(req, t.path, who.token);
    gw.handle(req, res);
  }

  /** A refusal by the proxy itself (allow-list, address): recorded like a denied request, then 403. */
  private async refuseHttp(req: IncomingMessage, res: ServerResponse, p: Principal, t: Target & { path?: string }, route: Extract<Route, { ok: false }>): Promise<void> {
    const s = await this.session(req.socket, p);
    if (s === undefined) return this.send(res, refusal('CHAP_ERR_RECORDING_FAILED', { detail: 'session start' }));
    const cmd = ++s.cmd;
    s.summary.commands++;
    s.summary.denied++;
    const method = (req.method ?? 'GET').toUpperCase();
    const url = this.masker.maskText(req.url ?? '').value;
    const classification: RequestClassification = Object.assign({ kind: 'egress-http' }, { host: t.host, port: t.port });
    const ok = await this.record({ type: 'request', session: s.id, cmd, method, url, classification, decision: 'deny', rule: route.rule, reason: route.reason });
    if (!ok) return this.send(res, refusal('CHAP_ERR_RECORDING_FAILED', { detail: 'request' }));
    this.deps.metrics.statement?.(this.name, 'deny');
    void this.record({ type: 'result', session: s.id, cmd, rows: null, bytes: 0, masked: {}, durationMs: 0, httpStatus: 403 }, true);
    this.send(res, refusal('CHAP_ERR_HTTP_DENIED', { rule: route.rule, reason: route.reason, detail: route.message }, { rule: route.rule }));
  }

  /** One gateway per (host, port, address): upstream is the checked address, Host is the name the agent asked for. */
  private gatewayFor(host: string, port: number, address: string, hostHeader: string): Gateway {
    const key = `${host}|${port}|${address}`;
    const hit = this.gateways.get(key);
    if (hit !== undefined) {
      this.gateways.delete(key);
      this.gateways.set(key, hit);
      return hit;
    }
    this.sweep();
    if (this.gateways.size >= MAX_CACHED_GATEWAYS) {
      const [k, oldest] = this.gateways.entries().next().value as [string, Gateway];
      this.gateways.delete(k);
      this.retired.add(oldest);
      this.sweep();
    }
    const c = this.state.config;
    const classification: RequestClassification = Object.assign({ kind: 'egress-http' }, { host, port });
    const profile: GatewayProfile = {
      protocol: 'http',
      classify: () => ({ classification }),
      adjustHeaders: (h) => {
        h['host'] = hostHeader;
        const own = h[STASHED_AUTHORIZATION];
        delete h[STASHED_AUTHORIZATION];
        if (typeof own === 'string') h['authorization'] = own;
      },
      bodyOptions: (f, ct, m) => HTTP_PROFILE.bodyOptions(f, ct, m),
      render: (r) => HTTP_PROFILE.render(r),
    };
    const url = `http://${isIP(address) === 6 ? `[${address}]` : address}:${port}`;
    // `compiledMasker`: the proxy's one masker for this config (no credential adds keywords here). The
    // gateway compiles its own from `masking` until it reads this field (docs/http.md §7, limits).
    const cfg: GatewayConfig & { readonly compiledMasker: Masker } = {
      name: c.name, upstream: { url, tls: { caFile: undefined, serverName: undefined, certFile: undefined, keyFile: undefined } }, credentials: { type: 'none' }, access: c.access, limits: c.limits, readOnly: false,
      masking: this.state.masking, compiledMasker: this.masker,
    };
    const gw = new Gateway(
      cfg,
      this.state.policy.forHost(host, port),
      profile,
      this.deps,
    );
    this.gateways.set(key, gw);
    return gw;
  }

  /** Upgrades (ws:// through the proxy): the gateway refuses them unless a rule allows, as on an http connection. */
  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    this.upgrade(req, socket, head).catch(() => socket.destroy());
  }

  private async upgrade(req: IncomingMessage, socket: Duplex, head: Buffer): Promise<void> {
    socket.on('error', () => socket.destroy());
    const parsed = parseAbsoluteTarget(req.url);
    if (!parsed.ok) return rawResponse(socket, refusal('CHAP_ERR_HTTP_BAD_REQUEST', { detail: parsed.message }));
    const who = await this.admit(req.headers['proxy-authorization']);
    if (!who.ok) return rawResponse(socket, who.r, who.r.status === 407 ? PROXY_AUTHENTICATE : []);
    const route = await this.route(parsed.target, 'http');
    if (!route.ok) return rawResponse(socket, refusal('CHAP_ERR_HTTP_DENIED', { rule: route.rule, reason: route.reason, detail: route.message }, { rule: route.rule }));
    const gw = this.gatewayFor(parsed.target.host, parsed.target.port, route.address, parsed.target.hostHeader);
    forGateway(req, parsed.target.path, who.token);
    gw.handleUpgrade(req, socket, head);
  }

  // ------------------------------------------------------------------------------------------
  // CONNECT

  /** Entry point for `CONNECT host:port`. Never throws. */
  handleConnect(req: IncomingMessage, socket: Socket, head: Buffer): void {
    socket.on('error', () => socket.destroy());
    this.connect(req, socket, head).catch((e: unknown) => {
      this.deps.logger.error({ err: (e as Error)?.message ?? String(e) }, 'CONNECT failed inside the proxy');
      rawResponse(socket, refusal('CHAP_ERR_INTERNAL', { detail: 'see the sidecar log' }));
    });
  }

  private async connect(req: IncomingMessage, socket: Socket, head: Buffer): Promise<void> {
    const t0 = performance.now();
    const parsed = parseConnectTarget(req.url);
    if (!parsed.ok) return rawResponse(socket, refusal('CHAP_ERR_HTTP_BAD_REQUEST', { detail: parsed.message }));
    const t = parsed.target;
    const who = await this.admit(req.headers['proxy-authorization']);
    if (!who.ok) return rawResponse(socket, who.r, who.r.status === 407 ? PROXY_AUTHENTICATE : []);
    const s = await this.session(socket, who.principal);
    if (s === undefined) return rawResponse(socket, refusal('CHAP_ERR_RECORDING_FAILED', { detail: 'session start' }));
    const route = await this.route(t, 'connect');
    const d = this.tunnelDecision(t, route);
    const cmd = ++s.cmd;
    s.summary.commands++;
    const classification: RequestClassification = Object.assign({ kind: 'egress-tunnel' }, { host: t.host, port: t.port, ...(route.ok ? { address: route.address } : {}) });
    const decision = RECORDED_DECISION[d.action];
    // Write-ahead: the decision is on record before a byte is dialed.
    const recorded = await this.record({ type: 'request', session: s.id, cmd, method: 'CONNECT', url: shownTarget(t), classification, decision, rule: d.rule, ...(d.action !== 'allow' ? { reason: d.reason } : {}) });
    if (!recorded) return rawResponse(socket, refusal('CHAP_ERR_RECORDING_FAILED', { detail: 'request' }));
    this.deps.metrics.statement?.(this.name, d.action);
    const line = { t0, s, cmd, t, address: route.ok ? route.address : undefined, decision };
    if (d.action === 'deny' || !route.ok) return this.refuseTunnel(socket, line, d);
    if (d.action === 'require-approval' && !(await this.holdTunnel(socket, who.principal, line, d))) return;
    this.dial(socket, head, route.address, line);
  }

  /** A tunnel refused by the allow-list or a rule: its result line, then 403 naming the rule. */
  private refuseTunnel(socket: Socket, line: Parameters<EgressProxy['tunnelResult']>[0], d: HttpDecision): void {
    line.s.summary.denied++;
    const message = d.action === 'allow' ? '' : d.message;
    this.tunnelResult(line, 403, 0, 0, message);
    rawResponse(socket, refusal('CHAP_ERR_HTTP_DENIED', { rule: d.rule ?? '', reason: d.reason, detail: message }, { rule: d.rule ?? '' }));
  }

  /** The allow-list's refusal, else the proxy rules' decision for host:port (an unmatched tunnel keeps the allow-list entry as its rule). */
  private tunnelDecision(t: Target, route: Route): HttpDecision {
    if (!route.ok) return { action: 'deny', rule: route.rule, reason: route.reason, message: route.message };
    const d = this.state.policy.connect(t.host, t.port);
    return d.action === 'allow' && d.rule === null ? { ...d, rule: route.entry.rule } : d;
  }

  /**
   * RequireApproval on a tunnel: the CONNECT is answered only once approved (the client waits for
   * its 200), so nothing is dialed before. True = approved; otherwise the refusal is written.
   */
  private async holdTunnel(socket: Socket, p: Principal, line: Parameters<EgressProxy['tunnelResult']>[0], d: Extract<HttpDecision, { action: 'require-approval' }>): Promise<boolean> {
    const { s, cmd, t } = line;
    s.summary.approvals++;
    const groups = Array.isArray(d.approval['approverGroups']) ? (d.approval['approverGroups'] as unknown[]).filter((g): g is string => typeof g === 'string') : [];
    const seconds = typeof d.approval['timeoutSeconds'] === 'number' ? d.approval['timeoutSeconds'] : undefined;
    const timeoutMs = seconds !== undefined && seconds > 0 ? Math.min(seconds * 1000, this.deps.approvalTimeoutMs) : this.deps.approvalTimeoutMs;
    const statement = `CONNECT ${shownTarget(t)}`;
    const req: ApprovalRequest = {
      id: `http-${randomUUID()}`, session: s.id, cmd, connection: this.name, identity: this.deps.identity, subject: p.subject, username: p.username, groups: p.groups,
      statement, statementHash: createHash('sha256').update(`${statement}\n`).digest('hex'), rule: d.rule, reason: d.reason, message: d.message, approverGroups: groups, timeoutMs,
      settings: d.approval, protocol: 'http', issuer: p.issuer,
    };
    const started = Date.now();
    const waitOk = await this.record({ type: 'approval.wait', session: s.id, cmd, request: req.id, approverGroups: groups, timeoutMs });
    const gone = new AbortController();
    const onClose = (): void => gone.abort();
    socket.once('close', onClose);
    this.deps.logger.info({ request: req.id, rule: d.rule, how: this.deps.approvals.howToApprove(req) }, 'tunnel held for approval');
    const o = waitOk ? await holdForApproval(this.deps.approvals, req, gone.signal) : { outcome: 'denied' as const, reason: 'the wait could not be recorded' };
    socket.off('close', onClose);
    await this.record({ type: 'approval.outcome', session: s.id, cmd, request: req.id, outcome: o.outcome, by: 'by' in o ? (o.by ?? []) : [], waitedMs: Date.now() - started });
    if (o.outcome === 'approved') {
      this.deps.metrics.statement?.(this.name, 'approved');
      return true;
    }
    this.deps.metrics.statement?.(this.name, o.outcome === 'expired' ? 'approval-expired' : 'approval-denied');
    const r = refusal(o.outcome === 'expired' ? 'CHAP_ERR_HTTP_APPROVAL_EXPIRED' : 'CHAP_ERR_HTTP_APPROVAL_DENIED', { rule: d.rule, request: req.id, detail: o.reason }, { rule: d.rule, request: req.id });
    this.tunnelResult(line, o.outcome === 'cancelled' ? 499 : r.status, 0, 0, o.reason);
    if (o.outcome !== 'cancelled') rawResponse(socket, r);
    else socket.destroy();
    return false;
  }

  /** The one line per tunnel: host, port, address, decision, bytes each way, duration. */
  private tunnelResult(l: { t0: number; s: ProxySession; cmd: number; t: Target; address: string | undefined; decision: string }, status: number, up: number, down: number, error: string | undefined): void {
    l.s.summary.bytes += up + down;
    const base = { type: 'result' as const, session: l.s.id, cmd: l.cmd, rows: null, bytes: up + down, masked: {}, durationMs: Math.round((performance.now() - l.t0) * 1000) / 1000, httpStatus: status, ...(error !== undefined ? { error } : {}) };
    const ev: RecordEvent = Object.assign(base, { tunnel: { host: l.t.host, port: l.t.port, address: l.address ?? null, decision: l.decision, bytesToUpstream: up, bytesFromUpstream: down } });
    void this.record(ev, true);
  }

  private dial(socket: Socket, head: Buffer, address: string, line: Parameters<EgressProxy['tunnelResult']>[0]): void {
    const c = this.state.config;
    const upstream = netConnect({ host: address, port: line.t.port, family: isIP(address), noDelay: true });
    let up = 0;
    let down = 0;
    let open = false;
    let done = false;
    const connectTimer = setTimeout(() => upstream.destroy(new Error(`connect timeout after ${c.limits.connectTimeoutSeconds} s`)), c.limits.connectTimeoutSeconds * 1000);
    const finish = (status: number, error: string | undefined): void => {
      if (done) return;
      done = true;
      clearTimeout(connectTimer);
      this.tunnels.delete(upstream);
      this.tunnelResult(line, status, up, down, error);
    };
    this.tunnels.add(upstream);
    upstream.once('error', (e: NodeJS.ErrnoException) => {
      if (open) return;
      const detail = e.code ?? e.message;
      finish(/timeout/i.test(e.message) ? 504 : 502, detail);
      rawResponse(socket, refusal(/timeout/i.test(e.message) ? 'CHAP_ERR_HTTP_UPSTREAM_TIMEOUT' : 'CHAP_ERR_HTTP_UPSTREAM_UNAVAILABLE', { connection: `${c.name} (${shownTarget(line.t)})`, detail }));
    });
    socket.once('close', () => {
      if (!open) upstream.destroy();
    });
    upstream.once('connect', () => {
      clearTimeout(connectTimer);
      if (socket.destroyed) return void (upstream.destroy(), finish(499, 'the agent went away before the tunnel opened'));
      open = true;
      socket.write('HTTP/1.1 200 Connection Established\r\n\r\n');
      if (head.length > 0) {
        up += head.length;
        upstream.write(head);
      }
      socket.on('data', (b: Buffer) => (up += b.length));
      upstream.on('data', (b: Buffer) => (down += b.length));
      const idleMs = c.tunnelIdleTimeoutSeconds * 1000;
      socket.setTimeout(idleMs, () => socket.destroy());
      upstream.setTimeout(idleMs, () => upstream.destroy());
      // pipe(): backpressure both ways, so a slow side holds at most a stream buffer per direction.
      socket.pipe(upstream);
      upstream.pipe(socket);
      const end = (): void => {
        socket.destroy();
        upstream.destroy();
        finish(200, undefined);
      };
      upstream.once('close', end);
      socket.once('close', end);
      upstream.on('error', () => upstream.destroy());
    });
  }

  /** Open tunnels and sessions (readiness, drain). */
  openCount(): number {
    return this.open.size + this.tunnels.size;
  }
}

function req(res: ServerResponse): IncomingMessage {
  return (res as ServerResponse & { req: IncomingMessage }).req;
}
