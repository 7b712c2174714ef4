// The HTTP API gateway's listener module (main.ts imports it for `protocol: http`): one loopback reverse proxy per connection.
import { readFileSync } from 'node:fs';
import type { HttpConnectionConfig, ListenerContext, RunningListener, SidecarServices } from '../../core/config-types.ts';
import type { MaskerOptions } from '../../masking/index.ts';
import { compileHttpPolicy, type CompiledHttpPolicy } from '../../policy/http-rules.ts';
import { jsonBody } from './errors.ts';
import { Gateway, type GatewayDeps, type GatewayMetrics, type GatewayProfile } from './gateway.ts';
import { modeFor } from './mask-body.ts';
import { startServer, type RunningServer, type ServerOptions } from './server.ts';
import { TlsFilePair, type TlsFileLogger } from '../../tls/file-pair.ts';

/** Plain HTTP: facts are method, path, query, body; every response body masked by its content type. */
export const HTTP_PROFILE: GatewayProfile = {
  protocol: 'http',
  classify: () => ({ classification: { kind: 'http' } }),
  bodyOptions: (_f, ct, masker) => ({ mode: modeFor(ct), masker, overflow: 'stream' }),
  render: jsonBody,
};

/** The listener's TLS pair, when configured: read at start, re-read for new connections when the files change. */
export function listenTls(l: HttpConnectionConfig['listen'], log?: TlsFileLogger): ServerOptions['tls'] {
  if (l.tls === undefined) return undefined;
  const files = new TlsFilePair(l.tls.certFile, l.tls.keyFile, log);
  return { ...files.current, reload: () => files.poll() };
}

export function maskingOptions(m: HttpConnectionConfig['masking']): MaskerOptions {
  const { hmacKeyFile, ...rest } = m;
  return { ...rest, ...(hmacKeyFile !== undefined ? { hmacKey: readFileSync(hmacKeyFile) } : {}) };
}

export function policyOrThrow(name: string, cfg: HttpConnectionConfig['policy']['http'], block: 'http' | 'kubernetes'): CompiledHttpPolicy {
  const r = compileHttpPolicy(cfg, block);
  if (!r.ok) throw new Error(`connection ${name}: the request policy is invalid: ${r.errors.map((e) => `policy.http.${e.path}: ${e.message}`).join('; ')}`);
  return r.policy;
}

export function metricsOf(svc: SidecarServices, protocol: string): GatewayMetrics {
  return {
    sessionStarted: (c) => svc.metrics.sessionStarted(c, protocol),
    sessionEnded: (c) => svc.metrics.sessionEnded(c, protocol),
    statement: (c, d) => svc.metrics.statement(c, d),
    authFailure: (c, r) => svc.metrics.authFailure(c, r),
    masked: (f) => svc.metrics.maskedAll(f),
    upstreamLatency: (c, s) => svc.metrics.upstreamLatency(c, s),
  };
}

export type ListenerTuning = Partial<Pick<ServerOptions, 'maxHeaderBytes' | 'headersTimeoutMs' | 'keepAliveTimeoutMs'>>;

/** Starts the gateway for one http connection (tests call this directly with their own deps). */
export async function startHttpGateway(conn: HttpConnectionConfig, deps: GatewayDeps, tuning: ListenerTuning = {}): Promise<RunningServer & { gateway: Gateway }> {
  const gw = new Gateway(
    { name: conn.name, upstream: conn.upstream, credentials: conn.credentials, access: conn.access, limits: conn.limits, readOnly: conn.readOnly, masking: maskingOptions(conn.masking) },
    policyOrThrow(conn.name, conn.policy.http, 'http'),
    HTTP_PROFILE,
    deps,
  );
  const tls = listenTls(conn.listen, deps.logger);
  const s = await startServer(gw, { host: conn.listen.host, port: conn.listen.port, maxConnections: conn.limits.maxSessions, ...(tls !== undefined ? { tls } : {}), ...tuning });
  return { ...s, gateway: gw };
}

export function depsOf(lc: ListenerContext, protocol: string): GatewayDeps {
  const state = lc.current();
  const svc = lc.services;
  return {
    verifier: svc.verifier,
    recorder: svc.recorder,
    approvals: svc.approvals,
    approvalTimeoutMs: state.approvals.timeoutSeconds * 1000,
    logger: svc.log.child({ connection: lc.name, protocol }),
    metrics: metricsOf(svc, protocol),
    identity: state.identityName ?? lc.pod.name ?? lc.name,
  };
}

/** ProtocolModule entry (config-types.ts): policy, masking and credentials are taken at start; a reload starts a fresh listener. */
export async function startListener(lc: ListenerContext): Promise<RunningListener> {
  const conn = lc.current().config;
  if (conn.protocol !== 'http') throw new Error(`connection ${lc.name} is ${conn.protocol}, not http`);
  const s = await startHttpGateway(conn, depsOf(lc, 'http'));
  return { address: s.address, sessions: () => s.sessions(), stop: (deadline) => s.close(deadline) };
}
